// local_db: the warm layer. Owns the client's SQLite file (see
// local_database.hpp for its layout and guarantees) and serves the other
// client actors; nothing else touches the file while the node runs.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/common/trace_sink.hpp"
#include "messages/atoms.hpp"
#include "messages/entity.hpp"
#include "messages/protocol.hpp"

namespace memsync {

class local_database;

using local_db_actor = caf::typed_actor<
  /// Appends coalesced changes to the outbox in one transaction; replies with
  /// the mutation id of each, in order, or a memsync error (file unchanged).
  caf::replies_to<flush_atom, std::vector<change>>::with<std::vector<uint64_t>>,
  /// Stores a pull result (base, cookie, confirmed outbox) in one transaction.
  caf::replies_to<rebase_atom, pull_reply>::with<ok_atom>,
  /// Outbox changes above a mutation id: (after, max changes, max bytes).
  caf::replies_to<outbox_atom, uint64_t, uint64_t, uint64_t>::with<std::vector<change>>,
  /// Remembers the epoch of the last acknowledged push.
  caf::replies_to<epoch_atom, std::string>::with<ok_atom>,
  /// The highest mutation id in the outbox (0: the outbox is empty).
  caf::replies_to<outbox_max_atom>::with<uint64_t>>;

/// Spawns the actor; it takes ownership of the open database.
local_db_actor spawn_local_db(caf::actor_system& sys, std::unique_ptr<local_database> db,
                              std::shared_ptr<trace_sink> trace = nullptr);

} // namespace memsync
