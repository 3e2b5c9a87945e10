// Validation of everything an application or a peer hands us, next to the
// types it guards. Each rejection says what was wrong, so `put` and a server
// session can pass the message straight to the user.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "messages/entity.hpp"
#include "messages/errors.hpp"

namespace memsync {

/// Caps on entity data; both configurable per node.
struct data_limits {
  std::size_t max_bytes = 1 << 20; ///< serialized JSON, default 1 MiB
  std::size_t max_depth = 64;      ///< nesting of objects and arrays
};

constexpr std::size_t max_id_bytes = 256;
constexpr std::size_t max_type_bytes = 64;

/// Entity ids: non-empty, at most 256 bytes, no control characters.
sync_error validate_id(std::string_view id);

/// Entity types: [a-z0-9_-]{1,64}.
sync_error validate_type(std::string_view type);

/// True if `client_id` is "<name>-<16 lowercase hex digits>": the id a
/// client database named `name` made for itself. Names may contain '-', so
/// the suffix is checked exactly rather than by prefix.
bool client_id_belongs_to(std::string_view client_id, std::string_view name);

/// What one change counts for against a push's byte limit: id, type and data
/// bytes. The server's session and the client's push sizing both count by
/// this, so a client never builds a push the server refuses for its size.
std::size_t push_bytes(const change& c);

/// What one entity counts for against a pull page's byte limit: id, type
/// and data bytes plus a fixed allowance for its version, flags and framing,
/// so a page of many tiny entities is bounded too.
std::size_t pull_bytes(const entity& e);

/// Checks serialized JSON against `limits` (size, nesting) without parsing.
sync_error check_limits(std::string_view text, const data_limits& limits);

/// Parses `text` into `out`. It must be a JSON object within `limits`; the
/// nesting depth is checked before parsing so hostile input cannot exhaust
/// the stack.
sync_error parse_object(std::string_view text, const data_limits& limits,
                        nlohmann::json& out);

/// Checks a change as received from a peer: known kind, valid id and type,
/// and data that is a JSON object within limits (empty for deletes).
sync_error validate_change(const change& c, const data_limits& limits);

/// Checks an entity received from a server: valid id and type, and (unless
/// it is a tombstone) data that is a JSON object within limits.
sync_error validate_entity(const entity& e, const data_limits& limits);

/// validate_change, then rewrites the data in canonical form (compact, keys
/// sorted) so every node stores and compares the same text. The canonical
/// form must be within `limits` too (it can be longer than the original);
/// on any error `c` is unchanged.
sync_error canonicalize_change(change& c, const data_limits& limits);

} // namespace memsync
