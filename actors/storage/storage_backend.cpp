#include "actors/storage/storage_backend.hpp"

#include <algorithm>
#include <optional>

#include "actors/common/apply_change.hpp"

namespace memsync {

namespace {

/// What every change of a commit is checked against, and what the commit
/// collects.
struct commit_rules {
  const data_limits& limits;
  const scope_rules& rules;
  std::vector<std::string>& touched; ///< scopes written, before or after
};

sync_error forbidden(const std::string& scope, const change& c, const char* what) {
  return {sync_errc::forbidden, "this token may not write scope '" + scope + "' (" + c.id
                                  + " " + what + " it)"};
}

// `version`: what the change was written under (left alone if nothing was).
// A live entity's scope before the change and its scope after must both be
// writable; a tombstone stays in the scope its entity was in.
sync_error write_change(storage_tx& tx, const log_push& push, const change& c,
                        const commit_rules& cr, uint64_t& version) {
  entity current;
  std::string before;
  bool stored = tx.load_entity(c.id, current, before);
  bool exists = stored && !current.deleted;
  auto applied = memsync::apply_change(exists ? &current : nullptr, c, &cr.limits);
  if (!applied.error.ok() || !applied.writes)
    return applied.error;
  auto after = before;
  if (!applied.next.deleted)
    if (auto err = derive_scope(cr.rules, applied.next.type, applied.next.data, after);
        !err.ok())
      return err;
  if (exists && !can_write(push.granted, before))
    return forbidden(before, c, "is in");
  if (!can_write(push.granted, after))
    return forbidden(after, c, "would be in");
  version = tx.write_entity(applied.next, after, push.request.client_id, c.mutation_id);
  if (stored && before != after)
    cr.touched.push_back(before);
  cr.touched.push_back(after);
  return {};
}

// Appends what it wrote to `written` (as push `index`).
push_outcome apply_push(storage_tx& tx, const log_push& push, uint32_t index,
                        const std::string& epoch, const commit_rules& cr,
                        std::vector<written_change>& written) {
  auto& req = push.request;
  // Checked before the backend sees anything: an id a column cannot hold
  // would fail the whole group's transaction (or be stored wrapped).
  for (auto& c : req.changes)
    if (c.mutation_id == 0 || c.mutation_id > max_mutation_id)
      return {{sync_errc::invalid_request, "mutation id " + std::to_string(c.mutation_id)
                                             + " is outside 1.."
                                             + std::to_string(max_mutation_id)},
              {}};
  auto last = tx.last_mutation_id(req.client_id);
  auto known = last;
  // Check the ids before touching anything: a gap rejects the whole push.
  auto expected = last + 1;
  bool first = true;
  for (auto& c : req.changes) {
    if (c.mutation_id <= last)
      continue;
    if (first && c.mutation_id > expected && req.epoch != epoch)
      expected = c.mutation_id; // a restored server lost the ids below
    first = false;
    if (c.mutation_id != expected)
      return {{sync_errc::mutation_gap, "mutation " + std::to_string(c.mutation_id)
                                          + " of " + req.client_id + " follows "
                                          + std::to_string(expected - 1) + "; expected "
                                          + std::to_string(expected)},
              {last, {}, epoch}};
    ++expected;
  }
  push_outcome out;
  if (!req.changes.empty()) {
    // The client was answered for every id below its first (it pushes only
    // what is not acknowledged): those refusals are done with. Those of
    // duplicates are answered again, as their first reply may be lost.
    auto kept = tx.refusals(req.client_id);
    auto first_id = req.changes.front().mutation_id;
    if (!kept.empty() && kept.front().mutation_id < first_id)
      tx.drop_refusals(req.client_id, first_id);
    auto by_id = [](const refusal& r, uint64_t id) {
      return r.mutation_id < id;
    };
    for (auto& c : req.changes) {
      if (c.mutation_id > last)
        continue;
      auto it = std::lower_bound(kept.begin(), kept.end(), c.mutation_id, by_id);
      if (it != kept.end() && it->mutation_id == c.mutation_id)
        out.reply.refused.push_back(*it);
    }
  }
  for (size_t i = 0; i < req.changes.size(); ++i) {
    auto& c = req.changes[i];
    if (c.mutation_id <= last)
      continue;
    auto verdict = i < push.verdicts.size() ? push.verdicts[i] : sync_error{};
    uint64_t version = 0;
    if (verdict.ok())
      verdict = write_change(tx, push, c, cr, version);
    if (version != 0)
      written.push_back({index, static_cast<uint32_t>(i), version});
    if (!verdict.ok()) {
      refusal r{c.mutation_id, std::move(verdict)};
      tx.add_refusal(req.client_id, r);
      out.reply.refused.push_back(std::move(r));
    }
    last = c.mutation_id;
  }
  if (last != known) // an empty push, or only duplicates, writes nothing
    tx.set_last_mutation_id(req.client_id, last);
  out.reply.last_mutation_id = last;
  out.reply.epoch = epoch;
  return out;
}

} // namespace

std::vector<page_rows> page_ranges(bool reset, const cookie& since,
                                   const page_request& page) {
  std::vector<page_rows> out;
  if (page.parts.empty()) { // every scope from the cookie: fresh only on a reset
    if (reset)
      out.push_back({"*", page.after, page.after != 0});
    else
      out.push_back({"*", std::max(since.version, page.after), true});
    return out;
  }
  for (auto& p : page.parts) {
    auto progress = reset ? 0 : p.since;
    auto fresh = progress == 0 && page.after == 0 && !page.refetch;
    out.push_back({p.pattern, std::max(progress, page.after), !fresh});
  }
  return out;
}

scope_range scope_range_of(const std::string& pattern) {
  if (pattern == "*")
    return {};
  if (pattern.empty() || pattern.back() != '*')
    return {scope_range::exact, pattern, {}};
  // Scope names are printable ASCII: the incremented byte never overflows.
  auto lo = pattern.substr(0, pattern.size() - 1);
  auto hi = lo;
  hi.back() = static_cast<char>(hi.back() + 1);
  return {scope_range::prefix, std::move(lo), std::move(hi)};
}

bool every_scope_with_tombstones(const std::vector<page_rows>& ranges) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [](const page_rows& r) { return r.pattern == "*" && r.tombstones; });
}

std::vector<entity> removals(std::vector<moved_out> candidates,
                             const std::vector<page_rows>& ranges) {
  std::vector<entity> out;
  for (auto& m : candidates) {
    bool brought = std::any_of(ranges.begin(), ranges.end(), [&](const page_rows& r) {
      return pattern_matches(r.pattern, m.scope) && (!m.deleted || r.tombstones);
    });
    if (!brought)
      out.push_back({std::move(m.id), std::move(m.type), "", m.version, true});
  }
  std::sort(out.begin(), out.end(),
            [](const entity& a, const entity& b) { return a.version < b.version; });
  return out;
}

void fill_merged(page_filler& fill, std::vector<row_stream> streams) {
  // Each stream's next row; a stream whose slot is empty has ended.
  std::vector<std::optional<entity>> heads(streams.size());
  auto advance = [&](size_t i) {
    entity e;
    if (streams[i](e))
      heads[i] = std::move(e);
    else
      heads[i].reset();
  };
  for (size_t i = 0; i < streams.size(); ++i)
    advance(i);
  uint64_t last = 0;
  for (;;) {
    std::optional<size_t> low;
    for (size_t i = 0; i < heads.size(); ++i)
      if (heads[i] && (!low || heads[i]->version < heads[*low]->version))
        low = i;
    if (!low)
      return;
    auto e = std::move(*heads[*low]);
    advance(*low);
    if (e.version == last) // the same row, read by another part
      continue;
    last = e.version;
    if (!fill.add(std::move(e)))
      return;
  }
}

bool page_filler::add(entity e) {
  auto bytes = pull_bytes(e);
  if (!out_.entities.empty() && bytes > room_) {
    out_.complete = false;
    return false;
  }
  room_ -= std::min(bytes, room_);
  out_.entities.push_back(std::move(e));
  return true;
}

sync_error storage_failure(const std::exception& e) {
  if (auto* se = dynamic_cast<const storage_error*>(&e))
    return {se->retryable() ? sync_errc::unavailable : sync_errc::db_error, se->what()};
  if (dynamic_cast<const std::bad_alloc*>(&e)) // memory may come back: push again
    return {sync_errc::unavailable, "out of memory while writing"};
  return {sync_errc::db_error, e.what()};
}

namespace {

// One transaction for all of `pushes` (given by index); throws on failure,
// nothing is applied then.
void commit_group(storage_backend& backend, const std::vector<log_push>& pushes,
                  const std::vector<uint32_t>& which, const std::string& epoch,
                  const data_limits& limits, const scope_rules& rules,
                  commit_result& out) {
  std::vector<written_change> written;
  std::vector<std::string> touched;
  commit_rules cr{limits, rules, touched};
  std::vector<push_outcome> outcomes;
  auto tx = backend.begin();
  if (which.size() == pushes.size()) {
    tx->prefetch(pushes);
  } else {
    std::vector<log_push> some;
    for (auto i : which)
      some.push_back(pushes[i]);
    tx->prefetch(some);
  }
  for (auto i : which)
    outcomes.push_back(apply_push(*tx, pushes[i], i, epoch, cr, written));
  tx->commit();
  out.scopes.insert(out.scopes.end(), touched.begin(), touched.end());
  for (size_t k = 0; k < which.size(); ++k)
    out.outcomes[which[k]] = std::move(outcomes[k]);
  out.written.insert(out.written.end(), written.begin(), written.end());
}

} // namespace

commit_result apply_pushes(storage_backend& backend, const std::vector<log_push>& pushes,
                           const data_limits& limits, const scope_rules& rules) {
  commit_result out;
  out.outcomes.resize(pushes.size());
  std::vector<uint32_t> all;
  for (uint32_t i = 0; i < pushes.size(); ++i)
    all.push_back(i);
  try {
    commit_group(backend, pushes, all, backend.epoch(), limits, rules, out);
  } catch (const std::exception& group_failure) {
    if (pushes.size() == 1) {
      out.outcomes[0].error = storage_failure(group_failure);
    } else {
      // One push may have failed the group (a database constraint, a value
      // the backend cannot store): each in a transaction of its own, so it
      // fails alone. Nothing of the failed group was applied.
      for (auto i : all) {
        try {
          commit_group(backend, pushes, {i}, backend.epoch(), limits, rules, out);
        } catch (const std::exception& e) {
          out.outcomes[i].error = storage_failure(e);
        }
      }
    }
  }
  std::sort(out.scopes.begin(), out.scopes.end());
  out.scopes.erase(std::unique(out.scopes.begin(), out.scopes.end()), out.scopes.end());
  out.version = backend.head_version();
  return out;
}

} // namespace memsync
