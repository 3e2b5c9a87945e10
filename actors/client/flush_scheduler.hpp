// flush_scheduler: receives every local change from the memory store, waits
// `debounce` after the first one (so a burst becomes one transaction),
// coalesces writes to the same entity, and hands batches of at most
// `max_batch` changes to local_db, one batch in flight at a time. A failed
// batch goes back to the front and is retried with exponential backoff:
// nothing is dropped and the order of writes is kept; the error stays in
// its status until a batch commits again. A batch that timed
// out may still commit (local_db may only be slow): it is retried unchanged
// under the same batch number, which local_db applies at most once, so a
// change never gets two mutation ids.
//
// It also runs the repair of a database restored from an older copy
// (restored_atom, from the syncer) between two batches, and reports it to
// the listeners in order with the batches (see flush_report).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/client/local_db.hpp"
#include "actors/client/tuning.hpp"
#include "actors/common/trace_sink.hpp"
#include "messages/atoms.hpp"
#include "messages/client_local.hpp"
#include "messages/entity.hpp"

namespace memsync {

/// Who learns about durable batches (the memory store, later the syncer).
using flush_listener_actor = caf::typed_actor<caf::reacts_to<flushed_atom, flush_report>>;

using flush_scheduler_actor = caf::typed_actor<
  /// Local changes in seq order.
  caf::reacts_to<write_atom, std::vector<change>>,
  /// Adds a listener for flush reports.
  caf::reacts_to<subscribe_atom, flush_listener_actor>,
  /// Flushes now, skipping the debounce; replies with the durable seq once
  /// every change received before the request is durable.
  caf::replies_to<flush_atom>::with<uint64_t>,
  /// The server's last mutation id for this client id is above any the
  /// local database sent (client id, that record): has local_db repair it
  /// before the next batch, reports a move to the listeners, then replies
  /// with the client id in force. A failed repair is retried like a batch.
  caf::replies_to<restored_atom, std::string, uint64_t>::with<std::string>,
  /// Why the local database failed the last attempt ("code: what", e.g. a
  /// full disk), while it keeps failing; "" once a batch (or a repair) has
  /// committed after it, and before any failure.
  caf::replies_to<status_atom>::with<std::string>>;

flush_scheduler_actor spawn_flush_scheduler(caf::actor_system& sys, local_db_actor db,
                                            flush_settings settings,
                                            std::shared_ptr<trace_sink> trace = nullptr);

} // namespace memsync
