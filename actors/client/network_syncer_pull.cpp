// network_syncer, pulling, in three steps, one pull at a time:
//   1. request the changes since our cookie from the session;
//   2. drop invalid entities, make the result durable in local_db;
//   3. make it visible in the memory store, then advance the cookie and
//      answer the `sync` requests it confirms.
// A failure anywhere retries the pull after a backoff pause.
#include <algorithm>
#include <string>
#include <utility>

#include "actors/client/network_syncer_state.hpp"
#include "actors/common/clock.hpp"
#include "messages/validation.hpp"

namespace memsync::network_syncer_detail {

namespace {

using time_point = caf::actor_clock::time_point;

/// Not only at the next poke or fallback tick: what this pull (and any poke
/// held back behind it) was to fetch is fetched after a pause.
void on_pull_failed(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  st.pull = pull_phase::idle;
  note_error(self, err);
  self->delayed_send(self, retry_delay(self), pull_retry_atom::value);
}

/// Step 3 done: the pull is durable and visible.
void on_pulled(self_ptr self, const pull_reply& reply, time_point poked,
               time_point received) {
  auto& st = self->state;
  trace_scope ts{st.trace.get(), self, "pulled"};
  auto again = st.pull == pull_phase::again;
  st.pull = pull_phase::idle;
  ++st.pulls_done;
  auto& layers = st.status.layers;
  ++layers.pulls;
  layers.apply.record(micros_since(self, received));
  if (poked != time_point{})
    layers.poke_to_pull.record(micros_since(self, poked));
  st.status.cursor = reply.next;
  st.status.last_mutation_id = reply.last_mutation_id;
  if (reply.reset) // another epoch: its record of us is what counts now
    st.status.acknowledged = reply.last_mutation_id;
  else
    st.status.acknowledged = std::max(st.status.acknowledged, reply.last_mutation_id);
  complete_waiters(self);
  if (again)
    try_pull(self);
  try_push(self);
}

/// Step 3: local_db has the pull; now the memory store. (Sent even if the
/// link `gen` dropped meanwhile: what is durable must become visible; only
/// the bookkeeping of that link's pull is then stale.) A pull of a client id
/// being replaced (`identity` is stale, or the move is under way) confirms
/// nothing in the store: the store may already number its changes for the
/// new id, and what local_db dropped before the move the store drops when
/// it renumbers.
void make_visible(self_ptr self, uint64_t gen, uint64_t identity, pull_reply reply,
                  time_point poked, time_point received) {
  auto& st = self->state;
  if (st.repairing || identity != st.identity_gen)
    reply.last_mutation_id = 0;
  self->request(st.store, st.cfg.settings.request_timeout, rebase_atom::value, reply)
    .then(on_link_of<ok_atom>(self, gen,
                              [=](ok_atom) { on_pulled(self, reply, poked, received); }),
          on_link_of<caf::error>(self, gen,
                                 [=](caf::error& err) { on_pull_failed(self, err); }));
}

/// Step 2: what a server sends is checked like what a client sends (an
/// invalid entity never reaches the local database or the store), then made
/// durable first: after a crash between steps 2 and 3 the local database is
/// the truth and is loaded again.
void make_durable(self_ptr self, pull_reply& reply, time_point poked, int64_t sent_us) {
  auto& st = self->state;
  // Never applied if the server has seen ids we never sent: it would drop
  // our changes that reuse them from the outbox (see check_record).
  if (!check_record(self, reply.last_mutation_id)) {
    st.pull = pull_phase::idle;
    return;
  }
  if (!st.record_checked) {
    st.record_checked = true;
    try_push(self);
  }
  auto received = self->clock().now();
  clock_sample(self, sent_us, reply.server_time_us, wall_clock_us(), false);
  trace_scope ts{st.trace.get(), self, "pull_reply"};
  ts.pull_items(reply);
  auto& es = reply.entities;
  auto& limits = st.server_data;
  auto bad = std::remove_if(es.begin(), es.end(), [&](const entity& e) {
    return !validate_entity(e, limits).ok();
  });
  if (bad != es.end()) {
    st.status.last_error = "ignored " + std::to_string(es.end() - bad)
                           + " invalid entities from the server";
    es.erase(bad, es.end());
  }
  auto gen = st.link_gen;
  auto identity = st.identity_gen;
  self->request(st.db, st.cfg.settings.request_timeout, rebase_atom::value, reply)
    .then([=](ok_atom) { make_visible(self, gen, identity, reply, poked, received); },
          on_link<caf::error>(self, [=](caf::error& err) { on_pull_failed(self, err); }));
}

} // namespace

void try_pull(self_ptr self) {
  auto& st = self->state;
  if (st.link != link_state::connected)
    return;
  if (st.pull != pull_phase::idle) {
    st.pull = pull_phase::again; // coalesce: one more pull after this one
    return;
  }
  // Step 1.
  st.pull = pull_phase::in_flight;
  auto poked = std::exchange(st.poked_at, time_point{});
  auto sent_us = wall_clock_us();
  self
    ->request(st.session, st.cfg.settings.request_timeout, pull_atom::value,
              pull_request{st.cfg.client_id, st.status.cursor})
    .then(on_link<pull_reply>(
            self, [=](pull_reply& reply) { make_durable(self, reply, poked, sent_us); }),
          on_link<caf::error>(self, [=](caf::error& err) { on_pull_failed(self, err); }));
}

void complete_waiters(self_ptr self) {
  auto& st = self->state;
  auto& ws = st.waiters;
  for (auto it = ws.begin(); it != ws.end();) {
    if (st.status.last_mutation_id >= it->target && st.pulls_done > it->after_pulls) {
      it->promise.deliver(ok_atom::value);
      it = ws.erase(it);
    } else {
      ++it;
    }
  }
}

} // namespace memsync::network_syncer_detail
