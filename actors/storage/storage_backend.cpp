#include "actors/storage/storage_backend.hpp"

#include <nlohmann/json.hpp>

namespace memsync {

namespace {

// `version`: what the change was written under (left alone if nothing was).
sync_error apply_change(storage_tx& tx, const std::string& client_id, const change& c,
                        const data_limits& limits, uint64_t& version) {
  entity current;
  bool exists = tx.load_entity(c.id, current) && !current.deleted;
  entity next{c.id, c.type, c.data, 0, false};
  switch (c.kind) {
    case change_kind::put: break;
    case change_kind::patch: {
      if (!exists)
        return {sync_errc::not_found, "cannot patch '" + c.id + "': no such entity"};
      // Sessions validate patches; a log fed directly must not throw here.
      auto doc = nlohmann::json::parse(current.data, nullptr, false);
      auto patch = nlohmann::json::parse(c.data, nullptr, false);
      if (doc.is_discarded() || patch.is_discarded() || !patch.is_object())
        return {sync_errc::invalid_json, "the patch is not a JSON object"};
      doc.merge_patch(patch);
      next.type = current.type;
      next.data = doc.dump();
      if (auto err = check_limits(next.data, limits); !err.ok())
        return {err.code, "patched entity would be invalid: " + err.message};
      break;
    }
    case change_kind::del:
      if (!exists)
        return {}; // already gone: nothing to record
      next.type = current.type;
      next.data.clear();
      next.deleted = true;
      break;
  }
  version = tx.write_entity(next, client_id, c.mutation_id);
  return {};
}

// Appends what it wrote to `written` (as push `index`).
push_outcome apply_push(storage_tx& tx, const log_push& push, uint32_t index,
                        const std::string& epoch, const data_limits& limits,
                        std::vector<written_change>& written) {
  auto& req = push.request;
  auto last = tx.last_mutation_id(req.client_id);
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
  for (size_t i = 0; i < req.changes.size(); ++i) {
    auto& c = req.changes[i];
    if (c.mutation_id <= last)
      continue;
    auto verdict = i < push.verdicts.size() ? push.verdicts[i] : sync_error{};
    uint64_t version = 0;
    if (verdict.ok())
      verdict = apply_change(tx, req.client_id, c, limits, version);
    if (version != 0)
      written.push_back({index, static_cast<uint32_t>(i), version});
    if (!verdict.ok())
      out.reply.refused.push_back({c.mutation_id, std::move(verdict)});
    last = c.mutation_id;
  }
  tx.set_last_mutation_id(req.client_id, last);
  out.reply.last_mutation_id = last;
  out.reply.epoch = epoch;
  return out;
}

} // namespace

commit_result apply_pushes(storage_backend& backend, const std::vector<log_push>& pushes,
                           const data_limits& limits) {
  auto epoch = backend.epoch();
  commit_result out;
  auto tx = backend.begin();
  tx->prefetch(pushes);
  for (uint32_t i = 0; i < pushes.size(); ++i)
    out.outcomes.push_back(apply_push(*tx, pushes[i], i, epoch, limits, out.written));
  tx->commit();
  out.version = backend.head_version();
  return out;
}

} // namespace memsync
