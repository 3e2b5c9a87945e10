#include "actors/server/gateway.hpp"

#include "actors/common/clock.hpp"

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
  struct open_session {
    std::string client; ///< the token's client name
    caf::node_id node;
  };
  std::map<caf::actor_addr, open_session> sessions;
  std::map<std::string, std::size_t> per_client; ///< live sessions by client name
  const char* name = "gateway";
};

using self_ptr = gateway_actor::stateful_pointer<gateway_state>;

gateway_actor::behavior_type gateway_impl(self_ptr self, replication_log_actor log,
                                          gateway_config cfg) {
  self->state.log = std::move(log);
  self->state.cfg = std::move(cfg);
  self->set_down_handler([=](const caf::down_msg& msg) {
    auto& st = self->state;
    auto it = st.sessions.find(msg.source);
    if (it == st.sessions.end())
      return;
    if (auto n = st.per_client.find(it->second.client); --n->second == 0)
      st.per_client.erase(n);
    if (st.cfg.session_closed)
      st.cfg.session_closed(it->second.node, msg.source.id());
    st.sessions.erase(it);
  });
  return {
    [=](hello_atom, const hello_request& req,
        poke_listener_actor& listener) -> caf::result<hello_reply, session_actor> {
      auto& st = self->state;
      trace_scope ts{st.cfg.trace.get(), self, "hello"};
      if (req.protocol != protocol_version)
        return make_error(sync_errc::protocol_mismatch,
                          "client speaks protocol " + std::to_string(req.protocol)
                            + ", server " + std::to_string(protocol_version));
      // One answer for an unknown token and for a token of another client:
      // the reply must not tell a guesser that a token exists, nor whose.
      auto client = st.cfg.tokens.client_of(req.token);
      if (client.empty() || !client_id_belongs_to(req.client_id, client))
        return make_error(sync_errc::unauthorized,
                          "the token does not permit client id '" + req.client_id + "'");
      auto sender = self->current_sender();
      if (!sender || !listener)
        return make_error(sync_errc::invalid_request, "no poke listener");
      // Refused rather than ending the oldest: that one may be in use.
      auto& live = st.per_client[client];
      if (live >= st.cfg.max_sessions)
        return make_error(sync_errc::unavailable,
                          "client '" + client + "' already has " + std::to_string(live)
                            + " live sessions (limits.max-sessions); a hello is "
                              "accepted again when one of them ends");
      session_config scfg{req.client_id, sender->node(), std::move(listener),
                          st.cfg.limits, st.cfg.trace};
      auto session = spawn_session(self->system(), st.log, std::move(scfg));
      ++live;
      self->monitor(session);
      st.sessions.emplace(session.address(),
                          gateway_state::open_session{client, sender->node()});
      // Before the reply leaves: the client's first message to its session
      // may follow the reply at once.
      if (st.cfg.session_opened)
        st.cfg.session_opened(sender->node(), session.id());
      hello_reply reply{protocol_version, st.cfg.server_id, st.cfg.epoch,
                        wall_clock_us()};
      reply.max_data_bytes = st.cfg.limits.data.max_bytes;
      reply.max_data_depth = st.cfg.limits.data.max_depth;
      reply.max_push_changes = st.cfg.limits.max_push_changes;
      reply.max_push_bytes = st.cfg.limits.max_push_bytes;
      return {std::move(reply), std::move(session)};
    },
  };
}

} // namespace

gateway_actor spawn_gateway(caf::actor_system& sys, replication_log_actor log,
                            gateway_config cfg) {
  return sys.spawn(gateway_impl, std::move(log), std::move(cfg));
}

} // namespace memsync
