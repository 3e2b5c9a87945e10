#include "actors/server/replication_log.hpp"

#include "actors/server/cookie_signer.hpp"
#include "actors/server/poke_index.hpp"

#include <deque>
#include <set>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

namespace memsync {

namespace {

/// Trace ids of recently written versions, so pull replies can name them.
class recent_traces {
public:
  void put(uint64_t version, uint64_t trace_id) {
    slots_[version % slots_.size()] = {version, trace_id};
  }
  uint64_t get(uint64_t version) const {
    auto& s = slots_[version % slots_.size()];
    return s.first == version ? s.second : 0;
  }

private:
  std::vector<std::pair<uint64_t, uint64_t>>
    slots_ = std::vector<std::pair<uint64_t, uint64_t>>(1 << 16);
};

struct queued_push {
  log_push push;
  caf::typed_response_promise<push_reply> promise;
};

/// The log's full interface: what others may send plus its own timer.
using log_impl_actor = replication_log_actor::extend<
  /// Commit the queued pushes (sent to itself).
  caf::reacts_to<commit_atom>>;

struct replication_log_state {
  std::shared_ptr<storage_backend> backend;
  std::unique_ptr<cookie_signer> signer; ///< signs and checks pull cookies
  log_settings settings;
  std::deque<queued_push> queue;
  bool commit_scheduled = false;
  /// By address: a departing listener is found in O(1) (a linear scan per
  /// departure made the teardown of many sessions quadratic).
  std::unordered_map<caf::actor_addr, poke_listener_actor> listeners;
  poke_index pokes;  ///< which listeners hold which scopes
  scope_rules rules; ///< the scopes file as last (re)loaded
  /// The head the last poke of another node's commit named, and the
  /// versions this node wrote above it: a head the relay reports pokes
  /// every listener unless every version since the last one is ours (ours
  /// poked only the listeners of their scopes when they committed; pokes of
  /// other scopes must not be lost to them).
  uint64_t relayed_version = 0;
  std::set<uint64_t> own_versions;
  log_stats stats;
  std::shared_ptr<trace_sink> trace;
  std::unique_ptr<recent_traces> recent; ///< while tracing
  const char* name = "replication_log";
};

using self_ptr = log_impl_actor::stateful_pointer<replication_log_state>;

std::size_t push_bytes(const log_push& p) {
  std::size_t n = 0;
  for (auto& c : p.request.changes)
    n += c.id.size() + c.type.size() + c.data.size();
  return n;
}

void schedule_commit(self_ptr self) {
  if (self->state.commit_scheduled || self->state.queue.empty())
    return;
  self->state.commit_scheduled = true;
  // Every push already in the mailbox is handled before this message, so
  // they all join the same group.
  self->send(self, commit_atom::value);
}

/// Records the version each traced change got; returns a trace id of the
/// commit for its pokes (0: none).
uint64_t trace_commit(self_ptr self, trace_scope& ts, const std::vector<log_push>& pushes,
                      const std::vector<written_change>& written) {
  auto& st = self->state;
  uint64_t poke_trace = 0;
  for (auto& w : written) {
    auto& c = pushes[w.push].request.changes[w.change];
    auto trace_id = c.trace.trace_id;
    st.recent->put(w.version, trace_id);
    ts.item(trace_id, c.id, w.version, c.mutation_id);
    if (trace_id && (!poke_trace || !st.trace->sampled(poke_trace)))
      poke_trace = trace_id; // prefer one that sampling records
  }
  return poke_trace;
}

/// True if the relay's report of `head` names versions other nodes wrote:
/// some version since the last report is not one of ours. A node hears its
/// own commits from the database as well, and a report may cover several
/// commits of several nodes at once.
bool foreign_head(replication_log_state& st, uint64_t head) {
  if (head <= st.relayed_version)
    return false;
  bool foreign = false;
  for (auto v = st.relayed_version + 1; v <= head && !foreign; ++v)
    foreign = !st.own_versions.count(v);
  st.relayed_version = head;
  st.own_versions.erase(st.own_versions.begin(), st.own_versions.upper_bound(head));
  return foreign;
}

// `trace_id`: a traced change of that version's commit (0: none known).
// `scopes`: the scopes the commit touched; null (not known): every listener.
void poke_listeners(self_ptr self, uint64_t version, uint64_t trace_id,
                    const std::vector<std::string>* scopes) {
  auto& st = self->state;
  trace_scope ts{st.trace.get(), self, "poke_sent"};
  ts.version(version);
  ts.mark(trace_id);
  poke p{version, trace_id};
  if (!scopes) {
    for (auto& [addr, listener] : st.listeners)
      self->send(listener, poke_atom::value, p);
    return;
  }
  for (auto& addr : st.pokes.touched_by(*scopes))
    if (auto it = st.listeners.find(addr); it != st.listeners.end())
      self->send(it->second, poke_atom::value, p);
}

// Takes the oldest queued pushes up to the group caps (at least one).
std::vector<queued_push> next_group(replication_log_state& st) {
  std::vector<queued_push> batch;
  std::size_t bytes = 0;
  while (!st.queue.empty() && batch.size() < st.settings.max_group_pushes) {
    auto size = push_bytes(st.queue.front().push);
    if (!batch.empty() && bytes + size > st.settings.max_group_bytes)
      break;
    bytes += size;
    batch.push_back(std::move(st.queue.front()));
    st.queue.pop_front();
  }
  return batch;
}

void commit(self_ptr self) {
  auto& st = self->state;
  st.commit_scheduled = false;
  auto batch = next_group(st);
  if (batch.empty())
    return;
  trace_scope ts{st.trace.get(), self, "commit"};
  std::vector<log_push> pushes;
  pushes.reserve(batch.size());
  for (auto& q : batch)
    pushes.push_back(std::move(q.push));
  // apply_pushes answers a failing backend per push; anything else thrown
  // here (out of memory while building the result) fails the group, never
  // the log.
  try {
    auto result = apply_pushes(*st.backend, pushes, st.settings.data, st.rules);
    uint64_t poke_trace = 0;
    if (st.trace)
      poke_trace = trace_commit(self, ts, pushes, result.written);
    ts.version(result.version);
    ++st.stats.commits;
    st.stats.pushes += pushes.size();
    for (auto& p : pushes)
      st.stats.changes += p.request.changes.size();
    st.stats.version = result.version;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& outcome = result.outcomes[i];
      if (outcome.error.ok())
        batch[i].promise.deliver(std::move(outcome.reply));
      else
        batch[i].promise.deliver(make_error(outcome.error));
    }
    for (auto& w : result.written)
      if (w.version > self->state.relayed_version)
        self->state.own_versions.insert(w.version);
    if (!result.written.empty()) // a commit that wrote nothing new pokes nobody
      poke_listeners(self, result.version, poke_trace, &result.scopes);
  } catch (const std::exception& e) {
    auto err = make_error(storage_failure(e));
    for (auto& q : batch)
      if (q.promise.pending())
        q.promise.deliver(err);
  }
  // What the caps left behind goes next, with whatever arrived meanwhile.
  schedule_commit(self);
}

log_impl_actor::behavior_type
replication_log_impl(self_ptr self, std::shared_ptr<storage_backend> backend,
                     log_settings settings, std::shared_ptr<trace_sink> trace) {
  self->state.signer = std::make_unique<cookie_signer>(backend->cookie_secret());
  self->state.backend = std::move(backend);
  self->state.rules = settings.rules;
  self->state.settings = std::move(settings);
  if (trace)
    self->state.recent = std::make_unique<recent_traces>();
  self->state.trace = std::move(trace);
  self->state.relayed_version = self->state.backend->head_version();
  self->set_down_handler([=](const caf::down_msg& msg) {
    self->state.listeners.erase(msg.source);
    self->state.pokes.remove(msg.source);
  });
  return {
    [=](push_atom, log_push& push) {
      auto& st = self->state;
      trace_scope ts{st.trace.get(), self, "push"};
      if (ts) {
        auto& cs = push.request.changes;
        if (!cs.empty())
          ts.sent(cs.front().trace.sent_ns);
        for (auto& c : cs)
          ts.item(c.trace.trace_id, c.id, 0, c.mutation_id);
      }
      auto promise = self->make_response_promise<push_reply>();
      st.queue.push_back({std::move(push), promise});
      schedule_commit(self);
      return promise;
    },
    [=](pull_atom, const log_pull& pull) -> caf::result<pull_reply> {
      auto& st = self->state;
      ++st.stats.pulls;
      auto& req = pull.request;
      trace_scope ts{st.trace.get(), self, "pull"};
      try {
        // A cookie of this epoch that the server did not sign is forged: it
        // must not make the server think its database was restored (which
        // renews the epoch and resets every client). It gets what a new
        // client gets, for this client alone.
        auto since = req.since;
        if (!since.epoch.empty() && since.epoch == st.backend->epoch()
            && !st.signer->verify(since))
          since = cookie{};
        page_request page{req.after, st.settings.max_pull_bytes, pull.parts,
                          pull.refetch};
        // Empty parts would read every scope: a part that names no scope
        // (no scope name is empty) reads only the cookie and the client's
        // record.
        if (page.parts.empty())
          page.parts.push_back(scope_since{"", 0});
        auto reply = st.backend->pull_page(req.client_id, since, page);
        reply.rules = st.rules;
        reply.next.mac = st.signer->sign(reply.next);
        if (st.recent) {
          reply.traces.reserve(reply.entities.size());
          for (auto& e : reply.entities) {
            reply.traces.push_back(st.recent->get(e.version));
            ts.item(reply.traces.back(), e.id, e.version);
          }
        }
        return reply;
      } catch (const std::exception& e) { // storage_error, sqlite_error, bad_alloc
        return make_error(storage_failure(e));
      }
    },
    [=](subscribe_atom, poke_listener_actor& listener) {
      if (!listener)
        return;
      self->monitor(listener);
      auto addr = listener.address();
      self->state.pokes.add(addr);
      self->state.listeners.emplace(std::move(addr), std::move(listener));
    },
    [=](scopes_atom, const poke_listener_actor& listener,
        std::vector<std::string>& patterns) {
      if (listener)
        self->state.pokes.set_filter(listener.address(), std::move(patterns));
    },
    [=](reload_atom, scope_rules& rules) { self->state.rules = std::move(rules); },
    [=](poke_atom, const relayed_commit& c) {
      if (foreign_head(self->state, c.version))
        poke_listeners(self, c.version, 0, c.scopes_known ? &c.scopes : nullptr);
    },
    [=](stats_atom) {
      auto out = self->state.stats;
      out.listeners = self->state.listeners.size();
      return out;
    },
    [=](commit_atom) { commit(self); },
  };
}

} // namespace

replication_log_actor spawn_replication_log(caf::actor_system& sys,
                                            std::unique_ptr<storage_backend> backend,
                                            log_settings settings, bool detached,
                                            std::shared_ptr<trace_sink> trace) {
  std::shared_ptr<storage_backend> shared{std::move(backend)};
  log_impl_actor log;
  if (detached)
    log = sys.spawn<caf::detached>(replication_log_impl, shared, settings,
                                   std::move(trace));
  else
    log = sys.spawn(replication_log_impl, shared, settings, std::move(trace));
  return caf::actor_cast<replication_log_actor>(std::move(log));
}

} // namespace memsync
