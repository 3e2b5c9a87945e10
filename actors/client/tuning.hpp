// Every tunable of the client's actors, in one place, with why each default
// is what it is. A client node reads them from its config file
// (node/client/client_config.hpp declares the options and takes their
// defaults from these structs); tests and tools set them directly.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <caf/timespan.hpp>

namespace memsync {

/// flush_scheduler: memory -> local database. Options under [flush].
struct flush_settings {
  /// Wait after the first unflushed write: a burst of writes (a form, an
  /// import) becomes one SQLite transaction instead of one per write. The
  /// design's starting value; a write is visible in memory at once anyway,
  /// so this only delays durability.
  caf::timespan debounce = std::chrono::milliseconds(100);
  /// Changes per transaction: large enough that a burst needs few commits,
  /// small enough that one transaction never holds the file for long. A
  /// buffer this full flushes without waiting for the debounce.
  std::size_t max_batch = 1000;
  /// First retry after a failed flush (a locked or full disk): soon enough
  /// that a passing lock costs little.
  caf::timespan retry_min = std::chrono::milliseconds(100);
  /// Longest retry delay: a lasting problem is retried every few seconds,
  /// not hammered; the changes wait in memory meanwhile.
  caf::timespan retry_max = std::chrono::seconds(5);
  /// How long one flush may take before it counts as failed (and is retried
  /// whole). Generous: a slow disk is not a failure. Not in the config file.
  caf::timespan db_timeout = std::chrono::seconds(30);
};

/// network_syncer: local database <-> server. Options under [sync]; the
/// token under [server].
struct sync_settings {
  std::string token; ///< this client's token; no default
  /// Wait after a flush before pushing: several flushes go out as one push.
  /// The design's starting value; `sync` skips it.
  caf::timespan push_debounce = std::chrono::seconds(1);
  /// Fallback pull when no poke arrives: pokes are best effort (a lost
  /// connection can swallow one), so this bounds how stale a client gets.
  caf::timespan pull_interval = std::chrono::seconds(5);
  /// First reconnect / retry delay: a server restart is noticed quickly.
  caf::timespan retry_min = std::chrono::milliseconds(100);
  /// Longest reconnect / retry delay: many clients of a server that is down
  /// for long poll it only every few seconds (the delays are jittered).
  caf::timespan retry_max = std::chrono::seconds(10);
  /// How long any request to the server (or to local_db on the syncer's
  /// behalf) may take: a reply lost with a connection only times out (BASP
  /// does not fail requests in flight), so this is how long that takes.
  caf::timespan request_timeout = std::chrono::seconds(10);
  /// Changes per push: bounds one server transaction and one reply.
  uint64_t max_push_changes = 500;
  /// Bytes per push, each change counted by push_bytes (id, type, data):
  /// flow control, so one push never puts many megabytes in a BASP buffer on
  /// either side. A server stating a smaller limit in its hello wins. 2 MiB:
  /// a change with the largest data (limits.max-data-bytes, 1 MiB), id and
  /// type always fits, so the default limits never refuse a valid entity.
  uint64_t max_push_bytes = 2 << 20;
  /// Seeds the jitter of the retry delays; 0: a random seed. Only the
  /// deterministic simulator (tools/sim) sets it, so one seed replays one
  /// run. Not in the config file.
  uint64_t jitter_seed = 0;
  /// Answers the session read ahead (pushed_answer) kept until a pull may
  /// take one: each stands for one poke coalesced behind the pull under way,
  /// so a few suffice; the bound keeps a server that sends too many from
  /// filling memory. Not in the config file.
  std::size_t max_answers_ahead = 4;
};

/// local_database: the client's SQLite file. Options under [client] and
/// [local-db].
struct local_db_settings {
  std::string path;        ///< file, or ":memory:"; no default here
  std::string client_name; ///< the configured [client] id
  /// "off", "normal" or "full". normal (WAL): a flushed change survives a
  /// crash of the process, the promise the flush makes; full adds power loss
  /// at the price of an fsync per transaction.
  std::string synchronous = "normal";
  /// How long to wait for a file locked by someone else (a backup, a
  /// viewer) before a transaction fails and the flush is retried.
  std::chrono::milliseconds busy_timeout{1000};
};

} // namespace memsync
