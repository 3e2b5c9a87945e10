// Messages that never leave a server node: between its sessions and the
// replication log.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/errors.hpp"
#include "messages/protocol.hpp"

namespace memsync {

/// A push as a session hands it to the replication log. `verdicts` holds one
/// entry per change (or none): a change the session found invalid is refused
/// with that reason; its mutation id is used up all the same. `granted`:
/// the pushing token's grants, which every change must satisfy (the scope of
/// the entity before and after it writable).
struct log_push {
  push_request request;
  std::vector<sync_error> verdicts;
  grants granted = all_grants();
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_push& x) {
  return f(caf::meta::type_name("memsync::log_push"), x.request, x.verdicts, x.granted);
}

/// A pull as a session hands it to the replication log: the client's
/// request, and the parts of its subscription the token may read (see
/// page_request in actors/storage/storage_backend.hpp).
struct log_pull {
  pull_request request;
  std::vector<scope_since> parts;
  bool refetch = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_pull& x) {
  return f(caf::meta::type_name("memsync::log_pull"), x.request, x.parts, x.refetch);
}

/// A commit another server node made on the shared database, as its
/// notification told this node: the head it reached and the scopes it
/// touched (`scopes_known` false: not told, e.g. after the listener
/// reconnected; every session is poked then).
struct relayed_commit {
  uint64_t version = 0;
  std::vector<std::string> scopes;
  bool scopes_known = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, relayed_commit& x) {
  return f(caf::meta::type_name("memsync::relayed_commit"), x.version, x.scopes,
           x.scopes_known);
}

/// Counters of a replication log, for benchmarks and status.
struct log_stats {
  uint64_t commits = 0; ///< transactions (groups)
  uint64_t pushes = 0;
  uint64_t changes = 0;
  uint64_t version = 0;   ///< head version
  uint64_t listeners = 0; ///< subscribed poke listeners (sessions)
  uint64_t pulls = 0;     ///< pull pages answered
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_stats& x) {
  return f(caf::meta::type_name("memsync::log_stats"), x.commits, x.pushes, x.changes,
           x.version, x.listeners, x.pulls);
}

} // namespace memsync
