// network_syncer, scopes: the subscription (entries with their progress),
// what the local data holds, and pruning it when that shrinks. Invariants:
// an entry's progress only ever reaches a version whose answer is applied,
// and only for the entries that answer's request named; local_db saves that
// progress in the transaction that stores the answer, and the rest of the
// subscription after the answer it reflects is applied, so the local
// database is never ahead of its data; the data holds nothing outside
// `sub.held` once a prune it implies is done.
#include <algorithm>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/client/network_syncer_state.hpp"

namespace memsync::network_syncer_detail {

namespace {

bool covered(const std::vector<std::string>& by, const std::vector<std::string>& xs) {
  return std::all_of(xs.begin(), xs.end(), [&](const std::string& x) {
    return std::any_of(by.begin(), by.end(),
                       [&](const std::string& b) { return pattern_covers(b, x); });
  });
}

bool same_rules(const scope_rules& a, const scope_rules& b) {
  if (a.size() != b.size())
    return false;
  return std::all_of(a.begin(), a.end(), [&](const scope_rule& r) {
    auto field = scope_field(b, r.type);
    return field && *field == r.field;
  });
}

bool asked_for(const std::vector<scope_since>& asked, const std::string& pattern) {
  return std::any_of(asked.begin(), asked.end(),
                     [&](const scope_since& e) { return e.pattern == pattern; });
}

std::vector<std::string> patterns_of(const std::vector<scope_since>& entries) {
  std::vector<std::string> out;
  for (auto& e : entries)
    out.push_back(e.pattern);
  return out;
}

/// The readable parts of `entries` under `g`.
std::vector<std::string> readable(const std::vector<scope_since>& entries,
                                  const grants& g) {
  std::vector<std::string> out;
  for (auto& e : entries)
    for (auto& part : readable_part(g, e.pattern))
      out.push_back(std::move(part));
  return minimal_patterns(std::move(out));
}

/// The grants the local data is known to be readable under: the token's
/// once known, else read grants of the known reads (none known: every
/// scope).
grants reads_known(const network_syncer_state& st) {
  if (st.grants_known)
    return st.granted;
  if (st.sub.known_reads.empty())
    return all_grants();
  grants out;
  for (auto& p : st.sub.known_reads)
    out.push_back({p, false});
  return out;
}

bool same(const scope_subscription& a, const scope_subscription& b) {
  auto same_entries = [](const std::vector<scope_since>& x,
                         const std::vector<scope_since>& y) {
    return std::equal(x.begin(), x.end(), y.begin(), y.end(), [](auto& l, auto& r) {
      return l.pattern == r.pattern && l.since == r.since;
    });
  };
  return same_entries(a.entries, b.entries) && a.known_reads == b.known_reads
         && a.held == b.held && same_rules(a.rules, b.rules)
         && a.configured == b.configured;
}

/// Saves the subscription unless local_db has it already (a pull that
/// brought nothing new changes nothing). A failed save is only counted: the
/// stored progress stays behind, which costs a refetch, never a skipped
/// change; the next save retries; the disk's trouble is the flush
/// scheduler's to report (local_error).
void save_as(self_ptr self, const scope_subscription& sub) {
  auto& st = self->state;
  if (st.saved && same(*st.saved, sub))
    return;
  st.saved = sub;
  self->request(st.db, caf::infinite, scopes_atom::value, sub)
    .then([](ok_atom) {},
          [=](caf::error& err) {
            ++self->state.status.layers.errors[to_string(to_sync_error(err).code)];
            self->state.saved.reset();
          });
}

void save(self_ptr self) {
  save_as(self, self->state.sub);
}

/// The scopes the entries with progress hold. An entry still at 0 holds
/// nothing yet (its answer from 0 brings what is live, no deletions): what
/// other entries held goes even where such an entry covers it, and comes
/// back whole with that answer.
std::vector<std::string> held_by_progress(const network_syncer_state& st) {
  std::vector<scope_since> holding;
  std::copy_if(st.sub.entries.begin(), st.sub.entries.end(), std::back_inserter(holding),
               [](const scope_since& e) { return e.since > 0; });
  return readable(holding, reads_known(st));
}

/// Drops the synced entities outside `held` (under `rules`) from the store
/// and local_db. The file says it may hold anything until local_db has
/// pruned (a crash in between prunes again at start), then `held`: saved
/// before and after the prune (local_db handles them in order). A failed
/// prune is noted (status) and leaves `held` at "anything": the next answer
/// prunes again. `done` runs once both answered; until then no `sync`
/// completes: the application reads the store directly, and must not see
/// what was pruned after its sync.
void prune_to(self_ptr self, std::vector<std::string> held, const scope_rules& rules,
              std::function<void()> done = {}) {
  auto& st = self->state;
  st.sub.held = held;
  st.sub.rules = rules;
  ++st.pruning;
  auto mine = ++st.prunes_sent;
  auto wide = st.sub;
  wide.held = {"*"};
  save_as(self, wide);
  auto left = std::make_shared<int>(2);
  auto answered = [=](const caf::error& err) {
    if (err)
      note_error(self, err);
    if (--*left > 0)
      return;
    --self->state.pruning;
    if (done)
      done();
    complete_waiters(self);
  };
  self->request(st.store, caf::infinite, prune_atom::value, rules, held)
    .then([=](ok_atom) { answered({}); }, [=](caf::error& err) { answered(err); });
  self->request(st.db, caf::infinite, prune_atom::value, rules, std::move(held))
    .then(
      [=](ok_atom) {
        if (self->state.prunes_sent == mine) // a later prune saves its own
          save(self);
        answered({});
      },
      [=](caf::error& err) {
        self->state.sub.held = {"*"};
        save(self);
        answered(err);
      });
}

} // namespace

void init_scopes(self_ptr self) {
  auto& st = self->state;
  auto stored = std::move(st.cfg.subscription);
  auto configured = minimal_patterns(st.cfg.scopes);
  if (configured.empty())
    configured = {"*"};
  auto cursor = st.cfg.cursor.version;
  if (!stored.stored) // a database from before scopes: every scope, to the cookie
    stored.entries = {{"*", cursor}};
  if (!stored.stored || stored.configured != configured || stored.entries.empty()) {
    std::vector<scope_since> entries;
    for (auto& p : configured) {
      uint64_t since = 0;
      for (auto& e : stored.entries)
        if (pattern_covers(e.pattern, p))
          since = std::max(since, e.since);
      entries.push_back({p, since});
    }
    stored.entries = std::move(entries);
    stored.configured = std::move(configured);
  }
  for (auto& e : stored.entries)
    e.since = std::min(e.since, cursor);
  st.rules = stored.rules;
  st.sub = std::move(stored);
  st.status.scopes = current_scopes(st);
  // The file may hold more than the entries with progress do (a prune that
  // failed on a full disk before a crash, or client.scopes narrowed): pruned
  // before the first answer goes in, as an answer from 0 stored beside those
  // rows would keep what the server deleted meanwhile.
  auto keep = held_by_progress(st);
  if (!covered(keep, st.sub.held))
    prune_to(self, std::move(keep), st.rules);
}

std::vector<std::string> current_scopes(const network_syncer_state& st) {
  if (st.grants_known)
    return readable(st.sub.entries, st.granted);
  return patterns_of(st.sub.entries);
}

void learn_grants(self_ptr self, const grants& granted, const scope_rules& rules) {
  auto& st = self->state;
  st.grants_known = true;
  st.granted = granted;
  st.rules = rules;
  st.status.scopes = current_scopes(st);
  self->send(st.store, grants_atom::value, granted, rules);
}

caf::result<ok_atom> subscribe(self_ptr self, const std::string& pattern) {
  auto& st = self->state;
  if (auto err = validate_pattern(pattern); !err.ok())
    return make_error(err);
  if (st.grants_known && readable_part(st.granted, pattern).empty())
    return make_error(sync_errc::forbidden,
                      "this client's token may read nothing of '" + pattern + "'");
  auto& es = st.sub.entries;
  if (std::any_of(es.begin(), es.end(), [&](const scope_since& e) {
        return pattern_covers(e.pattern, pattern);
      }))
    return ok_atom::value;
  // Entries the new one covers stay until an answer covered them all (see
  // scopes_applied): a part from 0 brings live entities only, so their
  // progress is what brings the deletions in their scopes meanwhile.
  es.push_back({pattern, 0});
  st.status.scopes = current_scopes(st);
  save(self);
  try_pull(self);
  return ok_atom::value;
}

caf::result<ok_atom> unsubscribe(self_ptr self, const std::string& pattern) {
  auto& st = self->state;
  auto& es = st.sub.entries;
  auto it = std::find_if(es.begin(), es.end(),
                         [&](const scope_since& e) { return e.pattern == pattern; });
  if (it == es.end())
    return make_error(sync_errc::not_found, "'" + pattern
                                              + "' is not in the subscription "
                                              + nlohmann::json(patterns_of(es)).dump());
  if (es.size() == 1)
    return make_error(sync_errc::invalid_request,
                      "'" + pattern
                        + "' is the last scope of the subscription, which is never "
                          "empty: subscribe to another first");
  es.erase(it);
  st.status.scopes = current_scopes(st);
  // The entry is gone whatever becomes of the prune: a failed one is noted
  // and done again by the next answer, so the reply is no error.
  auto rp = self->make_response_promise<ok_atom>();
  prune_to(self, held_by_progress(st), st.rules,
           [rp]() mutable { rp.deliver(ok_atom::value); });
  return rp;
}

bool scopes_applied(self_ptr self, const scope_answer& answer) {
  auto& st = self->state;
  st.grants_known = true;
  st.granted = answer.granted;
  st.rules = answer.rules;
  auto& es = st.sub.entries;
  auto advance = [&](std::vector<scope_since>& entries) {
    for (auto& e : entries)
      if (asked_for(answer.answered, e.pattern))
        e.since = answer.version;
  };
  advance(es);
  // local_db advanced the same entries when it stored the answer (a save
  // handed to it after that answer is then counted ahead of what it holds:
  // its progress stays behind, which costs a refetch, never a skip).
  if (st.saved)
    advance(st.saved->entries);
  // An entry that another entry of this answer's request covers gives way
  // to it now: both are at the answer's version.
  std::vector<std::string> given_way;
  for (auto& e : es)
    if (asked_for(answer.answered, e.pattern)
        && std::any_of(es.begin(), es.end(), [&](const scope_since& f) {
             return f.pattern != e.pattern && asked_for(answer.answered, f.pattern)
                    && pattern_covers(f.pattern, e.pattern);
           }))
      given_way.push_back(e.pattern);
  std::erase_if(es, [&](const scope_since& e) {
    return std::find(given_way.begin(), given_way.end(), e.pattern) != given_way.end();
  });
  if (!answer.forbidden.empty()) {
    auto forbidden = [&](const scope_since& e) {
      return std::find(answer.forbidden.begin(), answer.forbidden.end(), e.pattern)
             != answer.forbidden.end();
    };
    // The subscription is never empty: if every entry is forbidden they
    // stay, and keep getting nothing.
    if (!std::all_of(es.begin(), es.end(), forbidden))
      std::erase_if(es, forbidden);
    ++st.status.layers.errors[to_string(sync_errc::forbidden)];
    st.status.last_error = "forbidden: this client's token may read nothing of "
                           + nlohmann::json(answer.forbidden).dump();
  }
  st.sub.known_reads = read_patterns(answer.granted);
  auto now = readable(es, answer.granted);
  // What the data may hold now: what it held, and what this answer brought.
  auto before = st.sub.held;
  for (auto& part : readable(answer.asked, answer.granted))
    before.push_back(std::move(part));
  st.status.scopes = current_scopes(st);
  if (!covered(now, before) || !same_rules(st.sub.rules, answer.rules)) {
    prune_to(self, std::move(now), answer.rules);
  } else {
    st.sub.held = std::move(now);
    save(self);
  }
  return std::any_of(es.begin(), es.end(), [&](const scope_since& e) {
    return !asked_for(answer.answered, e.pattern);
  });
}

} // namespace memsync::network_syncer_detail
