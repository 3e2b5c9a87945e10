// Applying one change to an entity: the rule the hot layer (local writes and
// the pending changes re-applied on a new base) and the server's storage
// (every pushed change) share, so a client's visible value and the server's
// stored one come from the same code.
#pragma once

#include "messages/entity.hpp"
#include "messages/errors.hpp"
#include "messages/validation.hpp"

namespace memsync {

/// What applying a change leaves.
struct change_result {
  sync_error error;    ///< set: the change is refused and nothing changes
  bool writes = false; ///< false: nothing to record (deleting what is gone)
  entity next;         ///< when `writes`: the new state, a tombstone if deleted
};

/// Applies `c` to `current` (null: no live entity). `next.version` is the
/// current version (0 if none): whoever stores the result assigns its own.
/// - put: `next` is c's id, type and data;
/// - patch: c.data is merged (RFC 7386) into current's data, keeping
///   current's type; `not_found` if there is no current entity,
///   `invalid_json` if either text is not JSON or the patch not an object;
///   with `limits`, a result outside them is refused;
/// - del: a tombstone of current's type; with no current entity nothing is
///   written (`writes` false, no error).
change_result apply_change(const entity* current, const change& c,
                           const data_limits* limits = nullptr);

} // namespace memsync
