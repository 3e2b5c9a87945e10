// The server's tunables in one place, each with the reason for its default.
// The server config ([limits]) overrides the per-client ones and takes its
// defaults from here; the group caps are for the replication log alone.
#pragma once

#include <chrono>
#include <cstddef>

#include <caf/timespan.hpp>

#include "messages/scopes.hpp"
#include "messages/validation.hpp"

namespace memsync {

namespace tuning {

/// Changes per push. A client's syncer sends its outbox in batches of at
/// most this; 1,000 small changes serialise to about 25 KB, enough to
/// amortise a round trip, while one push stays a short transaction.
constexpr std::size_t max_push_changes = 1000;

/// Bytes per push (ids, types and data). Eight entities of the largest size
/// (data_limits: 1 MiB) fit; more would hold the log's thread for one client.
constexpr std::size_t max_push_bytes = std::size_t{8} << 20;

/// Bytes of entities in one pull reply (pull_bytes()); a larger answer comes
/// in pages. 4 MiB takes the log milliseconds to read and the network a
/// fraction of a second, so no client holds the log long and a 100 MB state
/// arrives in 25 round trips; it stays far below BASP's 32-bit frame length
/// and below what the front queues towards one client.
constexpr std::size_t max_pull_bytes = std::size_t{4} << 20;

/// How long a session waits for the replication log before the client gets
/// `timeout`. A commit takes milliseconds; 30 s covers a PostgreSQL failover
/// without letting a stuck log pin sessions forever.
constexpr caf::timespan log_timeout = std::chrono::seconds(30);

/// Pushes in one group commit. One transaction and one disk sync serve them
/// all; the cap keeps the first push of a group from waiting behind an
/// unbounded queue and bounds what one failed group must retry push by push.
constexpr std::size_t max_group_pushes = 256;

/// Bytes of change data in one group commit (a group always takes at least
/// one push). 64 MiB is eight full pushes: a group never needs more memory
/// than that twice over (the request and the backend's statements).
constexpr std::size_t max_group_bytes = std::size_t{64} << 20;

/// Entries of a pull's subscription (and patterns of its known reads). A
/// client holds a handful of scopes; each entry costs the backend one range
/// to read per page, so a few hundred bound one pull's work and the poke
/// filter it leaves.
constexpr std::size_t max_pull_scopes = 256;

} // namespace tuning

/// Per-client limits, from the server config.
struct session_limits {
  data_limits data;
  std::size_t max_push_changes = tuning::max_push_changes;
  std::size_t max_push_bytes = tuning::max_push_bytes;
  std::size_t max_pull_bytes = tuning::max_pull_bytes;
  std::size_t max_pull_scopes = tuning::max_pull_scopes;
  caf::timespan log_timeout = tuning::log_timeout;
};

/// How the replication log forms its commit groups.
struct log_settings {
  data_limits data;
  std::size_t max_group_pushes = tuning::max_group_pushes;
  std::size_t max_group_bytes = tuning::max_group_bytes;
  std::size_t max_pull_bytes = tuning::max_pull_bytes; ///< per pull reply
  scope_rules rules; ///< the scopes file at start-up (none: all in `default`)
};

} // namespace memsync
