#include "actors/server/session.hpp"

#include "actors/common/clock.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

namespace memsync {

namespace {

struct session_state {
  session_state() = default; // not an aggregate (see gateway_state)
  replication_log_actor log;
  session_config cfg;
  bool push_in_flight = false;
  bool pull_in_flight = false; // each answer is the client's whole diff: one at a time
  const char* name = "session";
};

using self_ptr = session_actor::stateful_pointer<session_state>;

/// The request must come from the client's own node and name its own id:
/// CAF lets any peer address an actor whose handle it learned.
caf::error check_origin(self_ptr self, const std::string& client_id) {
  auto& cfg = self->state.cfg;
  auto sender = self->current_sender();
  if (!sender || sender->node() != cfg.client_node)
    return make_error(sync_errc::unauthorized,
                      "request from a node that did not open this session");
  if (client_id != cfg.client_id)
    return make_error(sync_errc::unauthorized, "this session belongs to " + cfg.client_id
                                                 + ", not to " + client_id);
  return {};
}

caf::error check_push(const session_limits& limits, const push_request& req) {
  if (req.changes.size() > limits.max_push_changes)
    return make_error(sync_errc::too_large,
                      "push of " + std::to_string(req.changes.size())
                        + " changes; at most " + std::to_string(limits.max_push_changes)
                        + " allowed");
  std::size_t bytes = 0;
  uint64_t previous = 0;
  for (auto& c : req.changes) {
    bytes += push_bytes(c);
    if (c.mutation_id <= previous)
      return make_error(sync_errc::invalid_request,
                        "mutation ids must increase within a push");
    if (c.mutation_id > max_mutation_id) // no backend could store it
      return make_error(sync_errc::invalid_request, "mutation id "
                                                      + std::to_string(c.mutation_id)
                                                      + " is above the largest allowed, "
                                                      + std::to_string(max_mutation_id));
    previous = c.mutation_id;
  }
  if (bytes > limits.max_push_bytes)
    return make_error(sync_errc::too_large,
                      "push of " + std::to_string(bytes) + " bytes; at most "
                        + std::to_string(limits.max_push_bytes) + " allowed");
  return {};
}

session_actor::behavior_type session_impl(self_ptr self, replication_log_actor log,
                                          session_config cfg) {
  self->state.log = log;
  self->state.cfg = std::move(cfg);
  auto& listener = self->state.cfg.listener;
  self->monitor(listener);
  // Monitored, never linked: a link is a kill switch both ways, and a peer
  // can send this session an exit message. The node's shutdown (which stops
  // the log) still ends every session, from here.
  self->monitor(log);
  self->set_down_handler([=](const caf::down_msg& msg) {
    if (msg.source == self->state.log.address())
      self->quit(msg.reason);
    else if (msg.source == self->state.cfg.listener.address())
      self->quit(); // the client left
  });
  self->send(log, subscribe_atom::value, caf::actor_cast<poke_listener_actor>(self));
  return {
    [=](push_atom, push_request& req) -> caf::result<push_reply> {
      auto& st = self->state;
      trace_scope ts{st.cfg.trace.get(), self, "push"};
      ts.peer(st.cfg.client_id);
      if (ts) {
        auto now = trace_now_ns();
        for (auto& c : req.changes) {
          ts.item(c.trace.trace_id, c.id, 0, c.mutation_id);
          c.trace.sent_ns = now; // towards the replication log
        }
      }
      if (auto err = check_origin(self, req.client_id))
        return err;
      if (st.push_in_flight)
        return make_error(sync_errc::invalid_request,
                          "a push is already in flight for this client");
      if (auto err = check_push(st.cfg.limits, req))
        return err;
      log_push push;
      push.verdicts.reserve(req.changes.size());
      for (auto& c : req.changes)
        push.verdicts.push_back(canonicalize_change(c, st.cfg.limits.data));
      push.request = std::move(req);
      st.push_in_flight = true;
      auto promise = self->make_response_promise<push_reply>();
      self->request(st.log, st.cfg.limits.log_timeout, push_atom::value, std::move(push))
        .then(
          [=](push_reply& reply) mutable {
            self->state.push_in_flight = false;
            promise.deliver(std::move(reply));
          },
          [=](caf::error& err) mutable {
            self->state.push_in_flight = false;
            promise.deliver(std::move(err));
          });
      return promise;
    },
    [=](pull_atom, pull_request& req) -> caf::result<pull_reply> {
      auto& st = self->state;
      if (auto err = check_origin(self, req.client_id))
        return err;
      if (st.pull_in_flight)
        return make_error(sync_errc::invalid_request,
                          "a pull is already in flight for this client");
      st.pull_in_flight = true;
      // Not delegate(): the reply would come from the log and hand the
      // client the log's handle. The answer goes through this session.
      auto promise = self->make_response_promise<pull_reply>();
      self->request(st.log, st.cfg.limits.log_timeout, pull_atom::value, std::move(req))
        .then(
          [=](pull_reply& reply) mutable {
            self->state.pull_in_flight = false;
            trace_scope ts{self->state.cfg.trace.get(), self, "pull_reply"};
            ts.peer(self->state.cfg.client_id);
            ts.pull_items(reply);
            reply.server_time_us = wall_clock_us();
            promise.deliver(std::move(reply));
          },
          [=](caf::error& err) mutable {
            self->state.pull_in_flight = false;
            promise.deliver(std::move(err));
          });
      return promise;
    },
    [=](poke_atom, const poke& p) {
      trace_scope ts{self->state.cfg.trace.get(), self, "poke"};
      ts.peer(self->state.cfg.client_id);
      ts.version(p.version);
      ts.mark(p.trace_id);
      auto sender = self->current_sender();
      if (sender && sender == caf::actor_cast<caf::strong_actor_ptr>(self->state.log))
        self->send(self->state.cfg.listener, poke_atom::value, p);
    },
  };
}

} // namespace

session_actor spawn_session(caf::actor_system& sys, replication_log_actor log,
                            session_config cfg) {
  return sys.spawn(session_impl, std::move(log), std::move(cfg));
}

} // namespace memsync
