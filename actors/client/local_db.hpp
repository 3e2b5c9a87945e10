// local_db: the warm layer. Owns the client's SQLite file (see
// local_database.hpp for its layout and guarantees) and serves the other
// client actors; nothing else touches the file while the node runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/common/trace_sink.hpp"
#include "messages/atoms.hpp"
#include "messages/client_local.hpp"
#include "messages/entity.hpp"
#include "messages/protocol.hpp"

namespace memsync {

class local_database;

using local_db_actor = caf::typed_actor<
  /// Appends coalesced changes (batch number, changes) to the outbox in one
  /// transaction; replies with the mutation id of each, in order, or a
  /// memsync error (file unchanged). A batch with the number of the batch
  /// applied last is a retry of one that committed: it is not applied again
  /// and gets the same ids (see local_database::append).
  caf::replies_to<flush_atom, uint64_t, std::vector<change>>::with<std::vector<uint64_t>>,
  /// Stores a pull result (base, cookie, confirmed outbox) and the progress
  /// of the subscription entries its request named (patterns) in one
  /// transaction (local_database::apply_pull), after the prunes owed (see
  /// prune_atom): an error if one of them fails again, nothing stored.
  caf::replies_to<rebase_atom, pull_reply, std::vector<std::string>>::with<ok_atom>,
  /// Outbox changes above a mutation id to push: (after, max changes, max
  /// bytes). Records, before replying, that they may reach the server.
  caf::replies_to<outbox_atom, uint64_t, uint64_t, uint64_t>::with<std::vector<change>>,
  /// The highest mutation id ever handed out for a push.
  caf::replies_to<pushed_atom>::with<uint64_t>,
  /// (client id, the server's last mutation id for it): moves to a new client
  /// id if the server has seen ids this database never sent; replies with
  /// the client id in force and the old ids of the renumbered outbox (empty
  /// if nothing changed). See local_database::repair.
  caf::replies_to<restored_atom, std::string, uint64_t>::with<std::string,
                                                              std::vector<uint64_t>>,
  /// Remembers the epoch of the last acknowledged push.
  caf::replies_to<epoch_atom, std::string>::with<ok_atom>,
  /// The highest mutation id in the outbox (0: the outbox is empty).
  caf::replies_to<outbox_max_atom>::with<uint64_t>,
  /// Stores the subscription with its progress (local_database::
  /// save_subscription).
  caf::replies_to<scopes_atom, scope_subscription>::with<ok_atom>,
  /// Deletes the base entities of the scopes no longer held (rules, held
  /// patterns), never the outbox (local_database::prune). One that fails
  /// (a full disk) is owed: done, in order, before the next answer is
  /// stored or the next prune is done. An answer for an entry that held
  /// nothing yet brings live entities only, no deletions: stored without
  /// the prune before it, it would leave what the server deleted meanwhile
  /// in the file for good.
  caf::replies_to<prune_atom, scope_rules, std::vector<std::string>>::with<ok_atom>>;

/// Spawns the actor; it takes ownership of the open database.
local_db_actor spawn_local_db(caf::actor_system& sys, std::unique_ptr<local_database> db,
                              std::shared_ptr<trace_sink> trace = nullptr);

} // namespace memsync
