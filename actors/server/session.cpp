#include "actors/server/session.hpp"

#include "actors/common/clock.hpp"

#include <memory>
#include <optional>
#include <utility>

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
  /// The pull the client makes next, as far as the last answer it got
  /// tells (see next_pull): after a poke the session reads it ahead and
  /// sends the answer instead. None (also from new grants on, until the
  /// next answer): the client pulls after a poke itself.
  std::optional<pull_request> expected;
  uint64_t expected_gen = 0;    ///< bumps whenever `expected` changes
  bool ahead_in_flight = false; ///< reading `expected` ahead
  std::optional<poke> ahead_again; ///< a poke that came meanwhile
  grants granted;
  /// The patterns of the last pull's subscription: the poke filter follows
  /// them when the grants change.
  std::vector<std::string> subscription;
  bool filter_sent = false; ///< until the first pull, every commit pokes
  std::vector<std::string> filter;
  const char* name = "session";
};

using self_ptr = session_control_actor::stateful_pointer<session_state>;

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

caf::error check_pull(const session_limits& limits, const pull_request& req) {
  if (req.scopes.size() > limits.max_pull_scopes
      || req.known_reads.size() > limits.max_pull_scopes)
    return make_error(sync_errc::too_large,
                      "pull of " + std::to_string(req.scopes.size()) + " scopes and "
                        + std::to_string(req.known_reads.size())
                        + " known reads; at most "
                        + std::to_string(limits.max_pull_scopes) + " of each allowed");
  for (auto& e : req.scopes) {
    if (auto err = validate_pattern(e.pattern); !err.ok())
      return make_error(sync_errc::invalid_request, "scopes: " + err.message);
    if (e.since > req.since.version)
      return make_error(sync_errc::invalid_request,
                        "scope '" + e.pattern + "' is known up to version "
                          + std::to_string(e.since) + ", beyond the cookie's "
                          + std::to_string(req.since.version));
  }
  for (auto& k : req.known_reads)
    if (auto err = validate_pattern(k); !err.ok())
      return make_error(sync_errc::invalid_request, "known_reads: " + err.message);
  return {};
}

/// True if `g` may read a scope no pattern of `known_reads` names (empty:
/// every scope): the client may lack entities it never was allowed to see.
bool reads_grew(const grants& g, const std::vector<std::string>& known_reads) {
  if (known_reads.empty())
    return false;
  for (auto& x : g) {
    bool covered = false;
    for (auto& k : known_reads)
      covered = covered || pattern_covers(k, x.pattern);
    if (!covered)
      return true;
  }
  return false;
}

/// The request's subscription; none means every scope from the cookie.
std::vector<scope_since> entries_of(const pull_request& req) {
  if (req.scopes.empty())
    return {scope_since{"*", req.since.version}};
  return req.scopes;
}

/// What the client may be poked for: the readable parts of `subscription`.
std::vector<std::string> poke_filter(const grants& g,
                                     const std::vector<std::string>& subscription) {
  std::vector<std::string> out;
  for (auto& pattern : subscription)
    for (auto& part : readable_part(g, pattern))
      out.push_back(std::move(part));
  return minimal_patterns(std::move(out));
}

void send_filter(self_ptr self) {
  auto& st = self->state;
  auto filter = poke_filter(st.granted, st.subscription);
  if (st.filter_sent && filter == st.filter)
    return;
  st.filter_sent = true;
  st.filter = filter;
  self->send(st.log, scopes_atom::value, caf::actor_cast<poke_listener_actor>(self),
             std::move(filter));
}

/// A client's pull as the log reads it (`read`, moved to the log; `asked`
/// stays for the reply): the readable part of each entry
/// under the grants (entries of which nothing is readable get nothing and
/// are named in the reply), all parts from the start when the grants grew
/// beyond what the client's data was pulled under.
struct planned_pull {
  pull_request asked;
  log_pull read;
  std::vector<std::string> forbidden;
  std::vector<std::string> subscription; ///< the request's patterns
  /// The reply names the grants the parts were read under, not newer ones
  /// that arrive meanwhile: the client takes them as its known reads, and
  /// a grant it was not answered under must still refetch.
  grants read_under;
};

planned_pull plan_pull(const grants& g, pull_request req) {
  planned_pull out;
  out.read_under = g;
  out.read.refetch = reads_grew(g, req.known_reads);
  for (auto& entry : entries_of(req)) {
    auto part = readable_part(g, entry.pattern);
    if (part.empty())
      out.forbidden.push_back(entry.pattern);
    for (auto& p : part)
      out.read.parts.push_back({std::move(p), out.read.refetch ? 0 : entry.since});
    out.subscription.push_back(entry.pattern);
  }
  out.asked = req;
  out.read.request = std::move(req);
  return out;
}

/// The pull a client makes after it took `reply` to `asked` (the client's
/// request_page and scopes_applied): from the reply's cookie, every entry
/// at the reply's version, known reads those of the reply's grants. None
/// where the answer changes the subscription (a forbidden entry is
/// dropped) or is not whole yet: the client then pulls on a poke itself.
std::optional<pull_request> next_pull(const pull_request& asked, const pull_reply& reply) {
  if (!reply.complete || !reply.forbidden.empty())
    return std::nullopt;
  pull_request next{asked.client_id, reply.next, 0, asked.scopes,
                    read_patterns(reply.granted)};
  for (auto& e : next.scopes)
    e.since = reply.next.version;
  return next;
}

/// The log's answer to `plan` as it goes to the client. The poke filter
/// follows the answer's subscription, and the pull the client makes next
/// follows the answer.
void finish_reply(self_ptr self, const planned_pull& plan, pull_reply& reply) {
  auto& st = self->state;
  trace_scope ts{st.cfg.trace.get(), self, "pull_reply"};
  ts.peer(st.cfg.client_id);
  ts.pull_items(reply);
  reply.server_time_us = wall_clock_us();
  reply.granted = plan.read_under;
  reply.forbidden = plan.forbidden;
  st.subscription = plan.subscription;
  send_filter(self);
  st.expected = next_pull(plan.asked, reply);
  ++st.expected_gen;
}

void forward_poke(self_ptr self, const poke& p) {
  self->send(self->state.cfg.listener, poke_atom::value, p);
}

void on_poke(self_ptr self, const poke& p);

/// Reads the pull the client makes next and sends it the answer, for poke
/// `p`. What was read goes out as a poke instead if the client asked for a
/// pull meanwhile (the answer may not be the one it asks for next), or if
/// it is in pages or a reset (those the client asks for page by page).
void read_ahead(self_ptr self, const poke& p) {
  auto& st = self->state;
  st.ahead_in_flight = true;
  auto gen = st.expected_gen;
  auto plan = std::make_shared<planned_pull>(plan_pull(st.granted, *st.expected));
  auto done = [=] {
    auto& st = self->state;
    st.ahead_in_flight = false;
    if (auto again = std::exchange(st.ahead_again, std::nullopt))
      on_poke(self, *again);
  };
  // No timeout: the log answers every request or bounces it when it ends,
  // and a timed request costs two trips through CAF's clock thread, made
  // here for every poke. The client's own pulls keep theirs (it sees them).
  self->request(st.log, caf::infinite, pull_atom::value, std::move(plan->read))
    .then(
      [=](pull_reply& reply) {
        auto& st = self->state;
        if (gen != st.expected_gen || st.pull_in_flight || !reply.complete || reply.reset) {
          forward_poke(self, p);
        } else {
          finish_reply(self, *plan, reply);
          self->send(st.cfg.listener, pulled_atom::value,
                     pushed_answer{p, std::move(plan->asked), std::move(reply)});
        }
        done();
      },
      [=](caf::error&) { // the client's own pull will tell it what failed
        forward_poke(self, p);
        done();
      });
}

/// A commit touched the client's scopes: read ahead for it if the client
/// is expected to pull next and is not pulling, or else poke it.
void on_poke(self_ptr self, const poke& p) {
  auto& st = self->state;
  if (!st.expected || st.pull_in_flight)
    forward_poke(self, p);
  else if (st.ahead_in_flight)
    st.ahead_again = p; // one read after this one serves every poke meanwhile
  else
    read_ahead(self, p);
}

session_control_actor::behavior_type
session_impl(self_ptr self, replication_log_actor log, session_config cfg) {
  self->state.log = log;
  self->state.granted = cfg.granted;
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
      push.granted = st.granted;
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
      if (auto err = check_pull(st.cfg.limits, req))
        return err;
      auto plan = std::make_shared<planned_pull>(plan_pull(st.granted, std::move(req)));
      st.pull_in_flight = true;
      // Not delegate(): the reply would come from the log and hand the
      // client the log's handle. The answer goes through this session.
      auto promise = self->make_response_promise<pull_reply>();
      self->request(st.log, st.cfg.limits.log_timeout, pull_atom::value, std::move(plan->read))
        .then(
          [=](pull_reply& reply) mutable {
            self->state.pull_in_flight = false;
            finish_reply(self, *plan, reply);
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
        on_poke(self, p);
    },
    [=](grants_atom, grants& g) {
      // Only the gateway that opened this session may change what it
      // permits: a client (or any peer) that sent this would raise its own.
      auto& st = self->state;
      auto sender = self->current_sender();
      if (!sender || sender->address() != st.cfg.gateway)
        return;
      st.granted = std::move(g);
      if (st.filter_sent)
        send_filter(self);
      // New grants may change what the client holds: it pulls itself (and
      // a read under way goes to it as a poke).
      st.expected.reset();
      ++st.expected_gen;
    },
  };
}

} // namespace

session_control_actor spawn_session(caf::actor_system& sys, replication_log_actor log,
                                    session_config cfg) {
  return sys.spawn(session_impl, std::move(log), std::move(cfg));
}

} // namespace memsync
