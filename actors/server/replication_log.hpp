// replication_log: the cold, authoritative layer of a server node. Owns the
// storage backend; applies pushes with group commit (every push that arrives
// while a transaction is being written goes into the next one, so one disk
// sync serves many clients), answers pulls, and pokes its subscribers after
// every commit that produced a new version (its own, or one another server
// node on the same database reported). Runs on its own thread: backend
// calls block.
#pragma once

#include <cstdint>
#include <memory>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/common/trace_sink.hpp"
#include "actors/storage/storage_backend.hpp"
#include "messages/atoms.hpp"
#include "messages/protocol.hpp"
#include "messages/remote.hpp"
#include "messages/server_local.hpp"
#include "messages/validation.hpp"

namespace memsync {

using replication_log_actor = caf::typed_actor<
  /// Applies a validated push; replies with the client's reply or an error
  /// (mutation_gap: rejected; unavailable: storage failed, push again).
  caf::replies_to<push_atom, log_push>::with<push_reply>,
  caf::replies_to<pull_atom, pull_request>::with<pull_reply>,
  /// Adds a listener for pokes; it is dropped when it terminates.
  caf::reacts_to<subscribe_atom, poke_listener_actor>,
  /// Another server node on the same database committed up to this version.
  caf::reacts_to<poke_atom, poke>, caf::replies_to<get_atom>::with<log_stats>,
  /// Internal: commit the queued pushes.
  caf::reacts_to<commit_atom>>;

/// `detached`: on a thread of its own (the default: backend calls block);
/// unit tests on the deterministic scheduler pass false.
replication_log_actor spawn_replication_log(caf::actor_system& sys,
                                            std::unique_ptr<storage_backend> backend,
                                            data_limits limits, bool detached = true,
                                            std::shared_ptr<trace_sink> trace = nullptr);

} // namespace memsync
