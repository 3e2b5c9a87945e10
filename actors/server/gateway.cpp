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
    token_table::digest token; ///< which token opened it: its grants on a reload
    session_control_actor session;
  };
  std::map<caf::actor_addr, open_session> sessions;
  std::map<std::string, std::size_t> per_client; ///< live sessions by client name
  const char* name = "gateway";
};

using self_ptr = gateway_control_actor::stateful_pointer<gateway_state>;

caf::result<std::string> reload(self_ptr self) {
  auto& st = self->state;
  token_table tokens;
  scope_rules rules;
  try {
    tokens = st.cfg.tokens_file.empty() ? st.cfg.tokens
                                        : token_table::load(st.cfg.tokens_file);
    if (!st.cfg.scopes_file.empty())
      rules = load_scope_rules(st.cfg.scopes_file);
  } catch (const std::invalid_argument& e) {
    return make_error(sync_errc::invalid_request,
                      std::string{e.what()} + " (nothing reloaded)");
  }
  st.cfg.tokens = std::move(tokens);
  st.cfg.rules = rules;
  for (auto& [addr, open] : st.sessions) {
    auto now = st.cfg.tokens.find(open.token);
    self->send(open.session, grants_atom::value,
               now.client == open.client ? now.granted : grants{});
  }
  auto line = "reloaded tokens (" + std::to_string(st.cfg.tokens.size())
              + ") and scope rules (" + std::to_string(rules.size()) + ")";
  self->send(st.log, reload_atom::value, std::move(rules));
  return line;
}

gateway_control_actor::behavior_type
gateway_impl(self_ptr self, replication_log_actor log, gateway_config cfg) {
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
        client_listener_actor& listener) -> caf::result<hello_reply, session_actor> {
      auto& st = self->state;
      trace_scope ts{st.cfg.trace.get(), self, "hello"};
      if (req.protocol != protocol_version)
        return make_error(sync_errc::protocol_mismatch,
                          "client speaks protocol " + std::to_string(req.protocol)
                            + ", server " + std::to_string(protocol_version));
      // One answer for an unknown token and for a token of another client:
      // the reply must not tell a guesser that a token exists, nor whose.
      auto match = st.cfg.tokens.lookup(req.token);
      auto& client = match.client;
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
      session_config scfg{req.client_id,  sender->node(), std::move(listener),
                          st.cfg.limits,  st.cfg.trace,   match.granted,
                          self->address()};
      auto session = spawn_session(self->system(), st.log, std::move(scfg));
      ++live;
      self->monitor(session);
      st.sessions.emplace(session.address(),
                          gateway_state::open_session{client, sender->node(), match.hash,
                                                      session});
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
      reply.granted = std::move(match.granted);
      reply.rules = st.cfg.rules;
      return {std::move(reply), session_actor{std::move(session)}};
    },
    [=](reload_atom) -> caf::result<std::string> {
      // Only the node's own actors: the gateway is published, and a peer
      // must not make it re-read files (or time it doing so).
      auto sender = self->current_sender();
      if (!sender || sender->node() != self->node())
        return make_error(sync_errc::unauthorized, "a reload comes from the server node");
      return reload(self);
    },
  };
}

} // namespace

gateway_control_actor spawn_gateway(caf::actor_system& sys, replication_log_actor log,
                                    gateway_config cfg) {
  return sys.spawn(gateway_impl, std::move(log), std::move(cfg));
}

} // namespace memsync
