// replication_log: the cold, authoritative layer of a server node. Owns the
// storage backend; applies pushes with group commit (every push that arrives
// while a transaction is being written goes into the next one, up to the
// group caps, so one disk sync serves many clients), answers pulls, and
// pokes the subscribers whose scopes a commit touched (every subscriber for
// a commit another server node on the same database reported). Runs on
// its own thread: backend calls block.
// Nothing a backend throws ends it: every failure is answered as an error
// (`unavailable`: retryable, or `db_error`), and a push that fails by itself
// fails alone while the rest of its group commits.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
  /// One page of the answer to a pull, read from `parts` only (the session
  /// computed them from the token's grants: the log trusts them). No parts:
  /// the token may read nothing of what was asked; the reply then carries
  /// no entities, only the cookie, mutation id and refusals. The reply's
  /// `rules` are the log's current ones.
  caf::replies_to<pull_atom, log_pull>::with<pull_reply>,
  /// Adds a listener for pokes; it is dropped when it terminates. Until it
  /// sets a filter it gets a poke for every commit.
  caf::reacts_to<subscribe_atom, poke_listener_actor>,
  /// Sets a subscribed listener's poke filter: from now on it is poked only
  /// for commits that touched a scope one of these patterns names (empty:
  /// none). The cost of a commit's pokes follows the listeners it pokes.
  caf::reacts_to<scopes_atom, poke_listener_actor, std::vector<std::string>>,
  /// New scope rules (a reload): every write from now on derives scopes by
  /// them; stored entities keep theirs until written again.
  caf::reacts_to<reload_atom, scope_rules>,
  /// Another server node on the same database committed up to this version:
  /// the listeners of the scopes it touched are poked (every listener if
  /// those are not known), unless every version since the last such report
  /// is this node's own (already poked when it committed).
  caf::reacts_to<poke_atom, relayed_commit>,
  /// Counters for benchmarks and status.
  caf::replies_to<stats_atom>::with<log_stats>>;

/// `detached`: on a thread of its own (the default: backend calls block);
/// unit tests on the deterministic scheduler pass false.
replication_log_actor spawn_replication_log(caf::actor_system& sys,
                                            std::unique_ptr<storage_backend> backend,
                                            log_settings settings, bool detached = true,
                                            std::shared_ptr<trace_sink> trace = nullptr);

} // namespace memsync
