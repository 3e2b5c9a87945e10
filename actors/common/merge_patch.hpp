// JSON merge patch (RFC 7386) and the algebra the flush scheduler uses to fold
// several writes to one entity into one change with the same effect.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "messages/entity.hpp"

namespace memsync {

/// Composes merge patch `later` into `earlier` so that applying the result
/// equals applying `earlier` then `later` to any document. Returns false (and
/// leaves `earlier` untouched) when no single merge patch has that effect:
/// when `later` patches into a member that `earlier` replaced by a non-object
/// or deleted, the sequence depends on the document's old members.
bool compose_merge_patches(nlohmann::json& earlier, const nlohmann::json& later);

/// Folds `later` into `earlier` (same entity, `later` written after). The
/// result carries `later`'s seq and trace. Returns false when the two must
/// stay separate changes (a patch after a delete, or patches that do not
/// compose); `earlier` is then unchanged.
bool coalesce(change& earlier, const change& later);

} // namespace memsync
