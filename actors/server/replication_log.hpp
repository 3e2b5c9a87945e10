// replication_log: the cold, authoritative layer of a server node. Owns the
// storage backend; applies pushes with group commit (every push that arrives
// while a transaction is being written goes into the next one, up to the
// group caps, so one disk sync serves many clients), answers pulls, and
// pokes its subscribers after every commit that produced a new version (its
// own, or one another server node on the same database reported). Runs on
// its own thread: backend calls block.
// Nothing a backend throws ends it: every failure is answered as an error
// (`unavailable`: retryable, or `db_error`), and a push that fails by itself
// fails alone while the rest of its group commits.
#pragma once

#include <cstdint>
#include <memory>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/common/trace_sink.hpp"
#include "actors/server/tuning.hpp"
#include "actors/storage/storage_backend.hpp"
#include "messages/atoms.hpp"
#include "messages/protocol.hpp"
#include "messages/remote.hpp"
#include "messages/server_local.hpp"
#include "messages/validation.hpp"

namespace memsync {

/// What sessions and the node may send; the log's own timer messages are
/// not part of it.
using replication_log_actor = caf::typed_actor<
  /// Applies a validated push; replies with the client's reply or an error
  /// (mutation_gap: rejected; unavailable: storage failed, push again;
  /// db_error: storage refused this push).
  caf::replies_to<push_atom, log_push>::with<push_reply>,
  caf::replies_to<pull_atom, pull_request>::with<pull_reply>,
  /// Adds a listener for pokes (one per commit); it is dropped when it
  /// terminates.
  caf::reacts_to<subscribe_atom, poke_listener_actor>,
  /// Another server node on the same database committed up to this version.
  caf::reacts_to<poke_atom, poke>,
  /// Counters for benchmarks and status.
  caf::replies_to<stats_atom>::with<log_stats>>;

/// `detached`: on a thread of its own (the default: backend calls block);
/// unit tests on the deterministic scheduler pass false.
replication_log_actor spawn_replication_log(caf::actor_system& sys,
                                            std::unique_ptr<storage_backend> backend,
                                            log_settings settings, bool detached = true,
                                            std::shared_ptr<trace_sink> trace = nullptr);

} // namespace memsync
