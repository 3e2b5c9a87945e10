// network_syncer, pushing: reads the outbox above the acknowledged mutation
// id from local_db in a bounded batch and pushes it on the session, one push
// in flight. A failed push pauses pushing for a backoff (and pulls: a
// restored server resets us); the acknowledged id and any refusals come back
// in the reply (and in pulls, when a reply was lost). Pushes of a client id
// start only after a pull showed that the server's record of it is ours (see
// check_record).
#include <algorithm>
#include <string>
#include <utility>

#include "actors/client/network_syncer_state.hpp"

namespace memsync::network_syncer_detail {

namespace {

constexpr size_t max_kept_refusals = 100;

void on_pushed(self_ptr self, push_reply& reply, caf::actor_clock::time_point sent) {
  auto& st = self->state;
  trace_scope ts{st.trace.get(), self, "push_reply"};
  st.push_in_flight = false;
  if (!check_record(self, reply.last_mutation_id))
    return;
  ++st.status.layers.pushes;
  st.status.layers.push_round_trip.record(micros_since(self, sent));
  st.failures = 0;
  st.status.acknowledged = std::max(st.status.acknowledged, reply.last_mutation_id);
  if (!reply.epoch.empty() && reply.epoch != st.cfg.push_epoch) {
    st.cfg.push_epoch = reply.epoch;
    self->request(st.db, caf::infinite, epoch_atom::value, reply.epoch)
      .then([](ok_atom) {}, [=](caf::error& err) { note_error(self, err); });
  }
  report_refusals(self, std::move(reply.refused), reply.last_mutation_id, false);
  // The server pokes after its commit; more outbox goes out right away.
  if (st.durable_mid > st.status.acknowledged)
    try_push(self);
}

/// Lost reply, busy server or a gap after a restore: pull (a restored server
/// resets us) and push again after a pause.
void on_push_failed(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  st.push_in_flight = false;
  note_error(self, err);
  // We push from the first id no pull confirmed, and a record never goes
  // back within one history: a gap in the epoch we push in proves an older
  // copy that lost what a pull had confirmed to us, when neither a cookie
  // nor a record below an acknowledged push showed it (what was
  // acknowledged is not kept across a restart: simulator, seed 6350). What
  // it lost is gone with the copy; the next push starts above its record.
  if (to_sync_error(err).code == sync_errc::mutation_gap && !st.cfg.push_epoch.empty())
    forget_push_epoch(self);
  ++st.failures;
  st.push_wait = push_timer::backoff;
  self->delayed_send(self, retry_delay(self), push_due_atom::value, ++st.push_timer_gen);
  try_pull(self);
}

/// The outbox batch read for this push: send it.
void push_batch(self_ptr self, std::vector<change>& changes) {
  auto& st = self->state;
  trace_scope ts{st.trace.get(), self, "push"};
  for (auto& c : changes)
    ts.item(c.trace.trace_id, c.id, 0, c.mutation_id);
  if (changes.empty()) {
    st.push_in_flight = false;
    return;
  }
  // local_db recorded these ids as pushed before replying.
  st.pushed_mid = std::max(st.pushed_mid, changes.back().mutation_id);
  // The outbox hands out its first change even when it alone is over the
  // byte limit. If the server said it takes no push that large, sending it
  // would only be refused again and again: say which change holds the
  // outbox back, and look again after a backoff (a later hello may bring
  // other limits).
  if (auto size = push_bytes(changes.front()); size > st.server_push_bytes) {
    st.push_in_flight = false;
    ++st.status.layers.errors[to_string(sync_errc::too_large)];
    st.status.last_error = "mutation " + std::to_string(changes.front().mutation_id)
                           + " counts " + std::to_string(size)
                           + " bytes (id, type and data), above the server's limit of "
                           + std::to_string(st.server_push_bytes)
                           + " bytes per push: it cannot be pushed and holds back "
                             "the outbox";
    ++st.failures;
    st.push_wait = push_timer::backoff;
    self->delayed_send(self, retry_delay(self), push_due_atom::value,
                       ++st.push_timer_gen);
    return;
  }
  push_request req{st.cfg.client_id, st.cfg.push_epoch, std::move(changes)};
  auto sent = self->clock().now();
  self
    ->request(st.session, st.cfg.settings.request_timeout, push_atom::value,
              std::move(req))
    .then(on_link<push_reply>(self,
                              [=](push_reply& reply) { on_pushed(self, reply, sent); }),
          on_link<caf::error>(self, [=](caf::error& err) { on_push_failed(self, err); }));
}

} // namespace

void report_refusals(self_ptr self, std::vector<refusal> refused, uint64_t up_to,
                     bool reset) {
  auto& st = self->state;
  auto done = st.reported_mid;
  // Another epoch's record of us replaces ours: ids above it are pushed
  // again and may be refused again.
  st.reported_mid = reset ? up_to : std::max(st.reported_mid, up_to);
  refused.erase(std::remove_if(refused.begin(), refused.end(),
                               [&](const refusal& r) { return r.mutation_id <= done; }),
                refused.end());
  if (refused.empty())
    return;
  auto& kept = st.status.refused;
  kept.insert(kept.end(), refused.begin(), refused.end());
  for (auto& r : refused)
    ++st.status.layers.errors[std::string{"refused:"} + to_string(r.reason.code)];
  if (kept.size() > max_kept_refusals)
    kept.erase(kept.begin(), kept.end() - max_kept_refusals);
  self->send(st.store, refused_atom::value, std::move(refused));
}

void arm_push(self_ptr self, caf::timespan delay) {
  auto& st = self->state;
  if (st.push_wait != push_timer::none)
    return;
  st.push_wait = push_timer::debounce;
  self->delayed_send(self, delay, push_due_atom::value, st.push_timer_gen);
}

void push_due(self_ptr self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.push_timer_gen)
    return; // a push started since this timer was armed
  st.push_wait = push_timer::none;
  try_push(self);
}

void try_push(self_ptr self) {
  auto& st = self->state;
  if (st.link != link_state::connected || st.push_in_flight
      || st.push_wait == push_timer::backoff || !st.record_checked || st.repairing)
    return;
  if (st.durable_mid <= st.status.acknowledged)
    return;
  st.push_in_flight = true;
  st.push_wait = push_timer::none;
  ++st.push_timer_gen; // an armed debounce is superseded by this push
  auto& s = st.cfg.settings;
  // At least one change: a server stating 0 would otherwise stall us silently.
  auto max_changes = std::max<uint64_t>(1, std::min(s.max_push_changes,
                                                    st.server_push_changes));
  auto max_bytes = std::min(s.max_push_bytes, st.server_push_bytes);
  self
    ->request(st.db, s.request_timeout, outbox_atom::value, st.status.acknowledged,
              max_changes, max_bytes)
    .then(on_link<std::vector<change>>(
            self, [=](std::vector<change>& changes) { push_batch(self, changes); }),
          on_link<caf::error>(self, [=](caf::error& err) {
            self->state.push_in_flight = false;
            note_error(self, err);
          }));
}

} // namespace memsync::network_syncer_detail
