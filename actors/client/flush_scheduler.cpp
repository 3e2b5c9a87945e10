#include "actors/client/flush_scheduler.hpp"

#include <algorithm>
#include <list>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/common/backoff.hpp"
#include "actors/common/merge_patch.hpp"
#include "messages/errors.hpp"

namespace memsync {

namespace {

/// The interface plus the actor's own timer: the debounce or retry timer of
/// generation N (stale generations are ignored).
using flush_scheduler_impl_actor = flush_scheduler_actor::extend<
  caf::reacts_to<tick_atom, uint64_t>>;

struct buffered {
  change c;           ///< coalesced; c.seq is the seq of the last write
  uint64_t first_seq; ///< seq of the first write folded into it
};

struct flush_scheduler_state {
  using buffer_list = std::list<buffered>;

  flush_settings cfg;
  local_db_actor db;
  std::shared_ptr<trace_sink> trace;
  std::vector<flush_listener_actor> listeners;

  buffer_list buffer;                                            ///< sorted by c.seq
  std::unordered_map<std::string, buffer_list::iterator> latest; ///< by id
  /// The batch sent to local_db (or timed out and to be sent again as it
  /// is), numbered `batch`.
  std::vector<buffered> in_flight;
  uint64_t batch = 0;
  bool busy = false;          ///< a request to local_db is outstanding
  std::string repair_id;      ///< a repair to run for this client id ...
  uint64_t repair_record = 0; ///< ... with this server record
  std::vector<caf::typed_response_promise<std::string>> repair_waiters;

  uint64_t received_seq = 0;
  uint64_t durable_seq = 0;
  uint64_t generation = 0; ///< invalidates timers armed before a flush
  bool timer_armed = false;
  bool due = false;        ///< the debounce elapsed: flush when possible
  bool retry_wait = false; ///< the last batch failed; wait for the timer
  uint64_t failures = 0;   ///< consecutive failed batches, for backoff
  std::string last_error;  ///< of the last failure; cleared by a commit
  std::vector<std::pair<uint64_t, caf::typed_response_promise<uint64_t>>> waiters;

  const char* name = "flush_scheduler";

  void add(change c) {
    received_seq = std::max(received_seq, c.seq);
    if (auto hit = latest.find(c.id); hit != latest.end()) {
      auto it = hit->second;
      if (coalesce(it->c, c)) {
        buffer.splice(buffer.end(), buffer, it); // keep sorted by last seq
        return;
      }
    }
    auto first = c.seq;
    auto id = c.id;
    buffer.push_back({std::move(c), first});
    latest[id] = std::prev(buffer.end());
  }

  std::vector<change> take_batch() {
    ++batch;
    auto n = std::min(cfg.max_batch, buffer.size());
    std::vector<change> batch;
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      auto it = buffer.begin();
      if (auto hit = latest.find(it->c.id); hit != latest.end() && hit->second == it)
        latest.erase(hit);
      batch.push_back(it->c);
      in_flight.push_back(std::move(*it));
      buffer.erase(it);
    }
    return batch;
  }

  /// A failed batch goes back in front of everything written after it.
  void restore_in_flight() {
    for (auto it = in_flight.rbegin(); it != in_flight.rend(); ++it) {
      buffer.push_front(std::move(*it));
      latest.try_emplace(buffer.front().c.id, buffer.begin());
    }
    in_flight.clear();
  }

  uint64_t compute_durable_seq() const {
    uint64_t lowest = received_seq + 1;
    for (auto& b : buffer)
      lowest = std::min(lowest, b.first_seq);
    for (auto& b : in_flight)
      lowest = std::min(lowest, b.first_seq);
    return lowest - 1;
  }
};

using self_ptr = flush_scheduler_impl_actor::stateful_pointer<flush_scheduler_state>;

void try_flush(self_ptr self);

void arm_timer(self_ptr self, caf::timespan delay) {
  auto& st = self->state;
  st.timer_armed = true;
  self->delayed_send(self, delay, tick_atom::value, st.generation);
}

void notify(self_ptr self, const flush_report& report) {
  for (auto& listener : self->state.listeners)
    self->send(listener, flushed_atom::value, report);
}

void on_flushed(self_ptr self, const std::vector<uint64_t>& ids) {
  auto& st = self->state;
  trace_scope ts{st.trace.get(), self, "flushed"};
  st.busy = false;
  flush_report report;
  report.changes.reserve(st.in_flight.size());
  for (size_t i = 0; i < st.in_flight.size() && i < ids.size(); ++i) {
    auto& c = st.in_flight[i].c;
    report.changes.push_back({c.id, c.seq, ids[i]});
    ts.item(c.trace.trace_id, c.id, 0, ids[i]);
  }
  st.in_flight.clear();
  st.failures = 0;
  st.last_error.clear();
  st.durable_seq = st.compute_durable_seq();
  report.durable_seq = st.durable_seq;
  notify(self, report);
  auto& ws = st.waiters;
  for (auto it = ws.begin(); it != ws.end();) {
    if (it->first <= st.durable_seq) {
      it->second.deliver(st.durable_seq);
      it = ws.erase(it);
    } else {
      ++it;
    }
  }
  if (!st.buffer.empty() && !st.due && !st.timer_armed)
    arm_timer(self, st.cfg.debounce);
  try_flush(self);
}

/// An error reply means the transaction did not commit: the batch goes back
/// and may grow. A timeout says nothing: the batch stays as it is, to be
/// sent again under its number.
void on_failed(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  st.busy = false;
  if (err != caf::sec::request_timeout)
    st.restore_in_flight();
  st.last_error = to_sync_error(err).describe();
  ++st.failures;
  st.retry_wait = true;
  ++st.generation;
  arm_timer(self, backoff_delay(st.cfg.retry_min, st.cfg.retry_max, st.failures));
}

/// Listeners hear of a move first, then whoever asked gets the client id in
/// force (the same sender: in that order).
void on_repaired(self_ptr self, std::string& client_id, std::vector<uint64_t>& old_ids) {
  auto& st = self->state;
  st.busy = false;
  st.failures = 0;
  st.last_error.clear();
  if (client_id != st.repair_id) {
    flush_report report;
    report.durable_seq = st.durable_seq;
    report.new_client_id = client_id;
    report.renumbered = std::move(old_ids);
    notify(self, report);
  }
  st.repair_id.clear();
  for (auto& rp : st.repair_waiters)
    rp.deliver(client_id);
  st.repair_waiters.clear();
}

/// The repair goes between two batches: every report before it has the old
/// numbering, every one after it the new.
void start_repair(self_ptr self) {
  auto& st = self->state;
  st.busy = true;
  self
    ->request(st.db, st.cfg.db_timeout, restored_atom::value, st.repair_id,
              st.repair_record)
    .then(
      [=](std::string& id, std::vector<uint64_t>& old_ids) {
        on_repaired(self, id, old_ids);
        try_flush(self);
      },
      [=](caf::error& err) { on_failed(self, err); });
}

void try_flush(self_ptr self) {
  auto& st = self->state;
  if (st.busy || st.retry_wait)
    return;
  if (!st.repair_id.empty() && st.in_flight.empty())
    return start_repair(self);
  std::vector<change> batch;
  if (!st.in_flight.empty()) { // timed out: the same batch again
    for (auto& b : st.in_flight)
      batch.push_back(b.c);
  } else {
    if (st.buffer.empty())
      return;
    bool urgent = !st.waiters.empty();
    if (!st.due && !urgent && st.buffer.size() < st.cfg.max_batch)
      return;
    batch = st.take_batch();
  }
  if (st.trace) {
    auto now = trace_now_ns();
    for (auto& c : batch)
      c.trace.sent_ns = now;
  }
  st.due = !st.buffer.empty(); // the rest of a split burst goes right after
  ++st.generation;
  st.timer_armed = false;
  st.busy = true;
  self->request(st.db, st.cfg.db_timeout, flush_atom::value, st.batch, std::move(batch))
    .then([=](const std::vector<uint64_t>& ids) { on_flushed(self, ids); },
          [=](caf::error& err) { on_failed(self, err); });
}

flush_scheduler_impl_actor::behavior_type
flush_scheduler_impl(self_ptr self, local_db_actor db, flush_settings cfg,
                     std::shared_ptr<trace_sink> trace) {
  self->state.db = std::move(db);
  self->state.cfg = cfg;
  self->state.trace = std::move(trace);
  return {
    [=](write_atom, std::vector<change>& changes) {
      auto& st = self->state;
      trace_scope ts{st.trace.get(), self, "write"};
      if (ts && !changes.empty()) {
        ts.sent(changes.front().trace.sent_ns);
        for (auto& c : changes)
          ts.item(c.trace.trace_id, c.id);
      }
      for (auto& c : changes)
        st.add(std::move(c));
      if (!st.buffer.empty() && !st.timer_armed && !st.due && !st.retry_wait)
        arm_timer(self, st.cfg.debounce);
      try_flush(self);
    },
    [=](subscribe_atom, flush_listener_actor& listener) {
      self->state.listeners.push_back(std::move(listener));
    },
    [=](flush_atom) -> caf::result<uint64_t> {
      auto& st = self->state;
      trace_scope ts{st.trace.get(), self, "flush"};
      if (st.durable_seq >= st.received_seq)
        return st.durable_seq;
      auto promise = self->make_response_promise<uint64_t>();
      st.waiters.emplace_back(st.received_seq, promise);
      try_flush(self);
      return promise;
    },
    [=](restored_atom, std::string& client_id,
        uint64_t server_record) -> caf::result<std::string> {
      auto& st = self->state;
      trace_scope ts{st.trace.get(), self, "restored"};
      auto promise = self->make_response_promise<std::string>();
      st.repair_waiters.push_back(promise);
      if (st.repair_id.empty() || st.repair_record < server_record) {
        st.repair_id = std::move(client_id);
        st.repair_record = server_record;
      }
      try_flush(self);
      return promise;
    },
    [=](status_atom) { return self->state.last_error; },
    [=](tick_atom, uint64_t generation) {
      auto& st = self->state;
      trace_scope ts{st.trace.get(), self, "tick"};
      if (generation != st.generation)
        return; // a flush started since this timer was armed
      st.timer_armed = false;
      st.retry_wait = false;
      st.due = true;
      try_flush(self);
    },
  };
}

} // namespace

flush_scheduler_actor spawn_flush_scheduler(caf::actor_system& sys, local_db_actor db,
                                            flush_settings settings,
                                            std::shared_ptr<trace_sink> trace) {
  return sys.spawn(flush_scheduler_impl, std::move(db), settings, std::move(trace));
}

} // namespace memsync
