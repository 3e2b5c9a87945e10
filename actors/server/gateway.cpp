#include "actors/server/gateway.hpp"

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace memsync {

namespace {

struct gateway_state {
  // Not an aggregate: CAF would try to build the state from the actor
  // pointer, which C++20 allows for an aggregate whose first member is a handle.
  gateway_state() = default;
  replication_log_actor log;
  gateway_config cfg;
  const char* name = "gateway";
};

using self_ptr = gateway_actor::stateful_pointer<gateway_state>;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

gateway_actor::behavior_type gateway_impl(self_ptr self, replication_log_actor log,
                                          gateway_config cfg) {
  self->state.log = std::move(log);
  self->state.cfg = std::move(cfg);
  return {
    [=](hello_atom, const hello_request& req,
        poke_listener_actor& listener) -> caf::result<hello_reply, session_actor> {
      auto& st = self->state;
      trace_scope ts{st.cfg.trace.get(), self, "hello"};
      if (req.protocol != protocol_version)
        return make_error(sync_errc::protocol_mismatch,
                          "client speaks protocol " + std::to_string(req.protocol)
                            + ", server " + std::to_string(protocol_version));
      auto token = st.cfg.tokens.find(req.token);
      if (token == st.cfg.tokens.end())
        return make_error(sync_errc::unauthorized, "unknown token");
      if (!client_id_belongs_to(req.client_id, token->second))
        return make_error(sync_errc::unauthorized, "token of client '" + token->second
                                                     + "' does not permit client id '"
                                                     + req.client_id + "'");
      auto sender = self->current_sender();
      if (!sender || !listener)
        return make_error(sync_errc::invalid_request, "no poke listener");
      session_config scfg{req.client_id, sender->node(), std::move(listener),
                          st.cfg.limits, st.cfg.trace};
      auto session = spawn_session(self->system(), st.log, std::move(scfg));
      return {hello_reply{protocol_version, st.cfg.server_id, st.cfg.epoch, now_us()},
              std::move(session)};
    },
  };
}

} // namespace

gateway_actor spawn_gateway(caf::actor_system& sys, replication_log_actor log,
                            gateway_config cfg) {
  return sys.spawn(gateway_impl, std::move(log), std::move(cfg));
}

} // namespace memsync
