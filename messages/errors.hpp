// Error codes shared by every layer and both sides of the network. They travel
// inside replies as `sync_error` and inside CAF errors under the "memsync"
// category, so a client can tell a refused change from a dead connection.
#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>

namespace memsync {

enum class sync_errc : uint8_t {
  none = 0,
  invalid_id,
  invalid_type,
  invalid_json,
  too_large,
  too_deep,
  not_found,
  invalid_request,
  db_error,
  db_corrupt,
  db_locked,
  db_schema_newer,
  db_foreign,
  protocol_mismatch,
  unauthorized,
  mutation_gap,
  timeout,
  unavailable,
  forbidden, ///< the token may not write (or read) that scope
};

const char* to_string(sync_errc x);

/// An error with a code and a message a human can act on.
struct sync_error {
  sync_errc code = sync_errc::none;
  std::string message;

  bool ok() const { return code == sync_errc::none; }
  /// "code: message", e.g. "invalid_id: entity id must not be empty".
  std::string describe() const;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_error& x) {
  return f(caf::meta::type_name("memsync::sync_error"), x.code, x.message);
}

inline bool operator==(const sync_error& a, const sync_error& b) {
  return a.code == b.code && a.message == b.message;
}

/// The CAF error category of sync_errc.
constexpr caf::atom_value error_category = caf::atom("memsync");

caf::error make_error(sync_errc code, std::string message);
caf::error make_error(const sync_error& err);

/// Turns any CAF error into a sync_error (memsync errors keep their code and
/// message; others become `unavailable` with CAF's description).
sync_error to_sync_error(const caf::error& err);

} // namespace memsync
