#include "actors/storage/storage_backend.hpp"

#include <algorithm>

#include "actors/common/apply_change.hpp"

namespace memsync {

namespace {

// `version`: what the change was written under (left alone if nothing was).
sync_error write_change(storage_tx& tx, const std::string& client_id, const change& c,
                        const data_limits& limits, uint64_t& version) {
  entity current;
  bool exists = tx.load_entity(c.id, current) && !current.deleted;
  auto applied = memsync::apply_change(exists ? &current : nullptr, c, &limits);
  if (applied.error.ok() && applied.writes)
    version = tx.write_entity(applied.next, client_id, c.mutation_id);
  return applied.error;
}

// Appends what it wrote to `written` (as push `index`).
push_outcome apply_push(storage_tx& tx, const log_push& push, uint32_t index,
                        const std::string& epoch, const data_limits& limits,
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
      verdict = write_change(tx, req.client_id, c, limits, version);
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

page_rows page_range(bool reset, const cookie& since, uint64_t after) {
  if (reset)
    return {after, after != 0};
  return {std::max(since.version, after), true};
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
                  const data_limits& limits, commit_result& out) {
  std::vector<written_change> written;
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
    outcomes.push_back(apply_push(*tx, pushes[i], i, epoch, limits, written));
  tx->commit();
  for (size_t k = 0; k < which.size(); ++k)
    out.outcomes[which[k]] = std::move(outcomes[k]);
  out.written.insert(out.written.end(), written.begin(), written.end());
}

} // namespace

commit_result apply_pushes(storage_backend& backend, const std::vector<log_push>& pushes,
                           const data_limits& limits) {
  commit_result out;
  out.outcomes.resize(pushes.size());
  std::vector<uint32_t> all;
  for (uint32_t i = 0; i < pushes.size(); ++i)
    all.push_back(i);
  try {
    commit_group(backend, pushes, all, backend.epoch(), limits, out);
  } catch (const std::exception& group_failure) {
    if (pushes.size() == 1) {
      out.outcomes[0].error = storage_failure(group_failure);
    } else {
      // One push may have failed the group (a database constraint, a value
      // the backend cannot store): each in a transaction of its own, so it
      // fails alone. Nothing of the failed group was applied.
      for (auto i : all) {
        try {
          commit_group(backend, pushes, {i}, backend.epoch(), limits, out);
        } catch (const std::exception& e) {
          out.outcomes[i].error = storage_failure(e);
        }
      }
    }
  }
  out.version = backend.head_version();
  return out;
}

} // namespace memsync
