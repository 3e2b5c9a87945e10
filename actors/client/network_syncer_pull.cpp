// network_syncer, pulling, in three steps, one pull at a time:
//   1. request the changes since our cookie from the session, page by page
//      until the answer is complete (a large state comes in pages of the
//      server's limits.max-pull-bytes);
//   2. drop invalid entities, make the whole answer durable in local_db;
//   3. report the refusals it carries that no push reply reported, make it
//      visible in the memory store, then advance the cookie and answer the
//      `sync` requests it confirms.
// A failure anywhere retries the pull after a backoff pause; the pages
// received so far are kept, and the retry resumes after them. Only step 1
// has a timeout (request-timeout, per page): it covers the network. The
// local steps have none, as their time grows with the answer; local_db and
// the store always answer, or their death does.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
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

/// What the bookkeeping needs of an answer once it is applied.
struct applied_answer {
  cookie next;
  uint64_t last_mutation_id = 0;
  bool reset = false;
};

/// Step 3 done: the pull is durable and visible. `more`: an entry of the
/// subscription was not in its request.
void on_pulled(self_ptr self, const applied_answer& reply, time_point poked,
               time_point received, bool more) {
  auto& st = self->state;
  trace_scope ts{st.trace.get(), self, "pulled"};
  auto again = st.pull == pull_phase::again || more;
  st.pull = pull_phase::idle;
  ++st.pulls_done;
  auto& layers = st.status.layers;
  ++layers.pulls;
  layers.apply.record(micros_since(self, received));
  if (poked != time_point{})
    layers.poke_to_pull.record(micros_since(self, poked));
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

/// An answer left the apply pipeline (applied or failed): a pull deferred
/// behind it goes now.
void applied(self_ptr self) {
  auto& st = self->state;
  if (--st.applying == 0 && st.pull_deferred) {
    st.pull_deferred = false;
    try_pull(self);
  }
}

/// The error handler of a step of the apply pipeline: a failed pull if the
/// link `gen` is still the current one, and out of the pipeline either way.
auto apply_failed(self_ptr self, uint64_t gen) {
  return [=](caf::error& err) {
    if (is_current(self, gen))
      on_pull_failed(self, err);
    applied(self);
  };
}

/// Step 3: local_db has the pull; now the memory store. (Sent even if the
/// link `gen` dropped meanwhile: what is durable must become visible; only
/// the bookkeeping of that link's pull is then stale.) A pull of a client id
/// being replaced (`identity` is stale, or the move is under way) confirms
/// nothing in the store: the store may already number its changes for the
/// new id, and what local_db dropped before the move the store drops when
/// it renumbers.
///
/// `prunes`: the prunes sent when local_db got the answer. One sent since
/// has dropped, from local_db or the store or both, what the answer's
/// entries from 0 brought (they held nothing yet, so it kept nothing of
/// them: an unsubscribe while the answer of a new entry was going in).
/// Those entries count as not answered: the next pull asks them from 0
/// again.
void make_visible(self_ptr self, uint64_t gen, uint64_t identity,
                  const std::shared_ptr<pull_reply>& answer, time_point poked,
                  time_point received, std::vector<scope_since> asked, uint64_t prunes) {
  auto& st = self->state;
  if (st.repairing || identity != st.identity_gen)
    answer->last_mutation_id = 0;
  else // before the rebase drops the refused changes (same mailbox: in order)
    report_refusals(self, std::move(answer->refused), answer->last_mutation_id,
                    answer->reset);
  applied_answer done{answer->next, answer->last_mutation_id, answer->reset};
  scope_answer scoped{answer->next.version, asked, std::move(asked), answer->granted,
                      answer->rules, answer->forbidden};
  // Before the rebase: its writes are checked under what this answer says.
  self->send(st.store, grants_atom::value, answer->granted, answer->rules);
  self->request(st.store, caf::infinite, rebase_atom::value, std::move(*answer))
    .then(
      [=](ok_atom) mutable {
        if (self->state.prunes_sent != prunes)
          std::erase_if(scoped.answered, [](const scope_since& e) { return e.since == 0; });
        // The answer is applied whatever became of the link: its progress,
        // its cookie and what it implies for the held scopes count.
        auto more = scopes_applied(self, scoped);
        self->state.status.cursor = done.next;
        if (is_current(self, gen))
          on_pulled(self, done, poked, received, more);
        applied(self);
      },
      apply_failed(self, gen));
}

/// Step 2: what a server sends is checked like what a client sends (an
/// invalid entity never reaches the local database or the store), then made
/// durable first: after a crash between steps 2 and 3 the local database is
/// the truth and is loaded again.
void make_durable(self_ptr self, pull_reply& reply, time_point poked, int64_t sent_us,
                  std::vector<scope_since> asked) {
  auto& st = self->state;
  auto received = self->clock().now();
  if (sent_us != 0) // an answer read ahead had no round trip to sample
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
  auto prunes = st.prunes_sent;
  // One copy for local_db; the store then gets the answer itself (a large
  // answer is not held three times over).
  auto answer = std::make_shared<pull_reply>(std::move(reply));
  std::vector<std::string> progressed;
  for (auto& e : asked)
    progressed.push_back(e.pattern);
  ++st.applying;
  self->request(st.db, caf::infinite, rebase_atom::value, *answer, std::move(progressed))
    .then(
      [=](ok_atom) {
        make_visible(self, gen, identity, answer, poked, received, asked, prunes);
      },
      apply_failed(self, gen));
}

void request_page(self_ptr self, time_point poked);

/// The pages received and `last` as one answer. An id can appear twice only
/// if it was written after the first page was read (its new version is then
/// above the first page's head, and a later page carries it): the later
/// copy wins.
pull_reply whole_answer(pull_pages& pages, pull_reply& last) {
  auto& es = pages.entities;
  auto& ts = pages.traces;
  pull_reply out;
  // Decided before anything moves: the map's keys view the entities' ids.
  std::vector<bool> superseded(es.size(), false);
  {
    std::unordered_map<std::string_view, std::size_t> newest;
    for (std::size_t i = 0; i < es.size(); ++i)
      if (es[i].version > pages.first_head)
        newest[es[i].id] = i; // the last copy
    if (!newest.empty())
      for (std::size_t i = 0; i < es.size(); ++i)
        if (auto it = newest.find(es[i].id); it != newest.end() && it->second != i)
          superseded[i] = true;
  }
  for (std::size_t i = 0; i < es.size(); ++i) {
    if (superseded[i])
      continue;
    out.entities.push_back(std::move(es[i]));
    if (!ts.empty())
      out.traces.push_back(ts[i]);
  }
  out.reset = pages.reset;
  out.next = std::move(last.next);
  out.last_mutation_id = last.last_mutation_id;
  out.server_time_us = last.server_time_us;
  out.refused = std::move(last.refused); // of the same snapshot as last_mutation_id
  out.granted = std::move(last.granted);
  out.rules = std::move(last.rules);
  out.forbidden = std::move(last.forbidden);
  pages = {};
  return out;
}

/// Keeps `page` with the others of its answer.
void add_page(pull_pages& pages, pull_reply& page) {
  if (!pages.active) {
    pages.active = true;
    pages.reset = page.reset;
    pages.epoch = page.next.epoch;
    pages.first_head = page.next.version;
    pages.total = page.total;
  }
  auto& es = pages.entities;
  bool traced = page.traces.size() == page.entities.size() && !page.traces.empty();
  if (traced || !pages.traces.empty()) {
    pages.traces.resize(es.size(), 0);
    if (traced)
      pages.traces.insert(pages.traces.end(), page.traces.begin(), page.traces.end());
    else
      pages.traces.resize(es.size() + page.entities.size(), 0);
  }
  for (auto& e : page.entities) {
    pages.after = std::max(pages.after, e.version);
    es.push_back(std::move(e));
  }
}

/// An answer in the epoch of our last acknowledged push that resets us
/// (we had left that epoch: a restore brought its name back), or whose
/// record of us is below what was acknowledged to us (a record never goes
/// back within one history: a restore no cookie revealed), comes from an
/// older copy of the history that acknowledged our pushes: what it
/// acknowledged after the copy is gone. Our next push must then count as
/// from another epoch so that it may start above the record (within one
/// epoch a gap is refused, every time). local_db hears it before it stores
/// the answer, which lowers its record.
void forget_replaced_epoch(self_ptr self, const pull_reply& page) {
  auto& st = self->state;
  if (st.cfg.push_epoch.empty() || page.next.epoch != st.cfg.push_epoch)
    return;
  if (!page.reset && page.last_mutation_id >= st.status.acknowledged)
    return;
  // What it acknowledged above its record and no pull confirmed is still in
  // the outbox: push it again (found by the simulator, seed 2673: a client
  // that writes nothing more would keep it pending for good).
  if (!page.reset)
    st.status.acknowledged = page.last_mutation_id;
  forget_push_epoch(self);
}

/// Step 1, one page arrived: ask for the next, or go on with the answer.
void on_page(self_ptr self, pull_reply& page, time_point poked, int64_t sent_us) {
  auto& st = self->state;
  // Never applied if the server has seen ids we never sent: it would drop
  // our changes that reuse them from the outbox (see check_record).
  if (!check_record(self, page.last_mutation_id)) {
    st.pull = pull_phase::idle;
    return;
  }
  forget_replaced_epoch(self, page);
  if (!st.record_checked) {
    st.record_checked = true;
    try_push(self);
  }
  auto& pages = st.pages;
  if (pages.active && (page.reset != pages.reset || page.next.epoch != pages.epoch)) {
    // The server's history changed under the answer: the pages received
    // belong to another one. Start again.
    pages = {};
    st.status.pull_received = st.status.pull_total = 0;
    request_page(self, poked);
    return;
  }
  if (!pages.active && page.complete) { // the usual case: one page
    make_durable(self, page, poked, sent_us, st.asking);
    return;
  }
  if (!pages.active) { // every page is asked for with this request's scopes
    pages.scopes = st.asking;
    pages.known_reads = st.asking_reads;
  }
  add_page(pages, page);
  if (!page.complete) {
    st.status.pull_received = pages.entities.size();
    st.status.pull_total = std::max(pages.total, pages.entities.size());
    request_page(self, poked);
    return;
  }
  st.status.pull_received = st.status.pull_total = 0;
  auto asked = std::move(pages.scopes);
  auto answer = whole_answer(pages, page);
  make_durable(self, answer, poked, sent_us, std::move(asked));
}

/// The answer the session read ahead for `req`, if it sent one that may
/// stand in for asking: the last one read (a session reads one request
/// again for each commit that pokes it while the client does not ask, and
/// an earlier read lacks the later commits), and only if it was read at or
/// after the last poke we heard (a pull asked now would be: an answer read
/// before it would leave that poke unserved, as nothing pokes again). None
/// while a `sync` waits (it needs a pull asked after it), nor one whose
/// record of us is below what a push reply acknowledged since it was read
/// (it would look like an older copy of the history, see
/// forget_replaced_epoch). Answers read for this cursor or an earlier one
/// go either way: no later request asks for them.
std::optional<pull_reply> take_ahead(self_ptr self, const pull_request& req) {
  auto& st = self->state;
  auto& q = st.ahead;
  std::optional<pull_reply> out;
  auto it = std::find_if(q.rbegin(), q.rend(),
                         [&](const pushed_answer& a) { return a.asked == req; });
  if (it != q.rend() && st.waiters.empty()
      && it->answer.last_mutation_id >= st.status.acknowledged
      && it->answer.next.version >= st.poked_version)
    out = std::move(it->answer);
  std::erase_if(q, [&](const pushed_answer& a) {
    return a.asked.since.epoch != req.since.epoch
           || a.asked.since.version <= req.since.version;
  });
  return out;
}

void request_page(self_ptr self, time_point poked) {
  auto& st = self->state;
  auto sent_us = wall_clock_us();
  auto after = st.pages.active ? st.pages.after : 0;
  pull_request req{st.cfg.client_id, st.status.cursor, after};
  if (st.pages.active) {
    req.scopes = st.pages.scopes;
    req.known_reads = st.pages.known_reads;
  } else { // a new answer: the subscription as it is now
    st.asking = st.sub.entries;
    for (auto& e : st.asking)
      e.since = std::min(e.since, st.status.cursor.version);
    st.asking_reads = st.sub.known_reads;
    req.scopes = st.asking;
    req.known_reads = st.asking_reads;
    if (auto answer = take_ahead(self, req)) {
      ++st.status.layers.pulls_ahead;
      on_page(self, *answer, poked, 0);
      return;
    }
  }
  self
    ->request(st.session, st.cfg.settings.request_timeout, pull_atom::value,
              std::move(req))
    .then(on_link<pull_reply>(
            self, [=](pull_reply& page) { on_page(self, page, poked, sent_us); }),
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
  if (st.applying > 0) { // an answer of a dropped connection is still going in
    st.pull_deferred = true;
    return;
  }
  // Step 1.
  st.pull = pull_phase::in_flight;
  request_page(self, std::exchange(st.poked_at, time_point{}));
}

void poked(self_ptr self, const poke& p) {
  auto& st = self->state;
  trace_scope ts{st.trace.get(), self, "poke"};
  ts.version(p.version);
  ts.mark(p.trace_id);
  st.poked_version = std::max(st.poked_version, p.version);
  if (p.version <= st.status.cursor.version)
    return;
  if (st.poked_at == time_point{})
    st.poked_at = self->clock().now();
  try_pull(self);
}

void answered_ahead(self_ptr self, pushed_answer& a, const caf::actor_addr& sender) {
  auto& st = self->state;
  if (st.link != link_state::connected || sender != st.session.address())
    return;
  auto cause = a.cause;
  if (cause.version > st.status.cursor.version) {
    if (st.ahead.size() >= st.cfg.settings.max_answers_ahead)
      st.ahead.erase(st.ahead.begin());
    st.ahead.push_back(std::move(a));
  }
  poked(self, cause);
}

void complete_waiters(self_ptr self) {
  auto& st = self->state;
  auto& ws = st.waiters;
  for (auto it = ws.begin(); it != ws.end();) {
    if (st.status.last_mutation_id >= it->target && st.pulls_done > it->after_pulls
        && st.pruning == 0) {
      it->promise.deliver(ok_atom::value);
      it = ws.erase(it);
    } else {
      ++it;
    }
  }
}

} // namespace memsync::network_syncer_detail
