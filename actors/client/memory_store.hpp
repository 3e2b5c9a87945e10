// memory_store: the hot layer. The actor owns the store_core (visible map,
// base and pending changes); it drains the application's writes to the flush
// scheduler, records what became durable, rebases on pull results and
// delivers change events to subscribers. The application talks to the core
// through `store`, synchronously and without messages.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/client/flush_scheduler.hpp"
#include "actors/common/trace_sink.hpp"
#include "actors/hot/store.hpp"
#include "actors/hot/store_core.hpp"
#include "actors/hot/subscribers.hpp"
#include "messages/atoms.hpp"
#include "messages/protocol.hpp"

namespace memsync {

using memory_store_actor = caf::typed_actor<
  /// The store's write queue is not empty: take it.
  caf::reacts_to<write_atom>,
  /// Mutation ids and durable watermark from the flush scheduler, or the
  /// renumbering of a restored database.
  caf::reacts_to<flushed_atom, flush_report>,
  /// Apply a pull result on top of the pending changes.
  caf::replies_to<rebase_atom, pull_reply>::with<ok_atom>,
  /// Flush every write made so far now, skipping the debounce; replies with
  /// the durable seq once they are in the local database.
  caf::replies_to<flush_atom>::with<uint64_t>,
  /// The server refused these changes.
  caf::reacts_to<refused_atom, std::vector<refusal>>,
  /// The server's hello reply: local writes from now on must fit its data
  /// and push limits too (store_core::set_server_limits).
  caf::reacts_to<hello_atom, hello_reply>,
  /// The token's grants and the scope rules (from the hello and every pull):
  /// local writes outside the writable scopes are refused at once
  /// (store_core::set_scopes).
  caf::reacts_to<grants_atom, grants, scope_rules>,
  /// Drops the synced entities of the scopes no longer held (under the
  /// rules: scope_held); pending changes stay until answered. Subscribers
  /// see the removals as deletions.
  caf::replies_to<prune_atom, scope_rules, std::vector<std::string>>::with<ok_atom>>;

memory_store_actor
spawn_memory_store(caf::actor_system& sys, std::shared_ptr<store_core> core,
                   std::shared_ptr<subscriber_list> subs, flush_scheduler_actor flusher,
                   std::shared_ptr<trace_sink> trace = nullptr);

} // namespace memsync
