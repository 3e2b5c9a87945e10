#include "actors/common/apply_change.hpp"

#include <nlohmann/json.hpp>

namespace memsync {

change_result apply_change(const entity* current, const change& c,
                           const data_limits* limits) {
  change_result out;
  out.next = {c.id, c.type, c.data, current ? current->version : 0, false};
  switch (c.kind) {
    case change_kind::put: break;
    case change_kind::patch: {
      if (!current) {
        out.error = {sync_errc::not_found, "cannot patch '" + c.id + "': no such entity"};
        return out;
      }
      // Inputs are validated where they enter; a value that slipped through
      // must be refused here, never thrown.
      auto doc = nlohmann::json::parse(current->data, nullptr, false);
      if (doc.is_discarded()) {
        out.error = {sync_errc::invalid_json, "the stored entity is not JSON"};
        return out;
      }
      auto patch = nlohmann::json::parse(c.data, nullptr, false);
      if (patch.is_discarded() || !patch.is_object()) {
        out.error = {sync_errc::invalid_json, "the patch is not a JSON object"};
        return out;
      }
      doc.merge_patch(patch);
      out.next.type = current->type;
      out.next.data = doc.dump();
      if (limits)
        if (auto err = check_limits(out.next.data, *limits); !err.ok()) {
          out.error = {err.code, "patched entity would be invalid: " + err.message};
          return out;
        }
      break;
    }
    case change_kind::del:
      if (!current)
        return out; // already gone: nothing to record
      out.next.type = current->type;
      out.next.data.clear();
      out.next.deleted = true;
      break;
  }
  out.writes = true;
  return out;
}

} // namespace memsync
