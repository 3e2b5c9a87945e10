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
#include "actors/hot/store_core.hpp"
#include "actors/hot/subscribers.hpp"
#include "messages/atoms.hpp"
#include "messages/protocol.hpp"

namespace memsync {

using memory_store_actor = caf::typed_actor<
  /// The store's write queue is not empty: take it.
  caf::reacts_to<write_atom>,
  /// Mutation ids and durable watermark from the flush scheduler.
  caf::reacts_to<flushed_atom, flush_report>,
  /// Apply a pull result on top of the pending changes.
  caf::replies_to<rebase_atom, pull_reply>::with<ok_atom>,
  /// Flush every write made so far now, skipping the debounce; replies with
  /// the durable seq once they are in the local database.
  caf::replies_to<flush_atom>::with<uint64_t>,
  /// The server refused these changes.
  caf::reacts_to<refused_atom, std::vector<refusal>>>;

memory_store_actor
spawn_memory_store(caf::actor_system& sys, std::shared_ptr<store_core> core,
                   std::shared_ptr<subscriber_list> subs, flush_scheduler_actor flusher,
                   std::shared_ptr<trace_sink> trace = nullptr);

/// The application's handle. Reads never block and never send a message; a
/// write is visible to the next read on any thread as soon as it returns.
/// Thread-safe; cheap to copy.
class store {
public:
  store(std::shared_ptr<store_core> core, std::shared_ptr<subscriber_list> subs)
      : core_(std::move(core)), subs_(std::move(subs)) {}

  entity_ptr get(std::string_view id) const { return core_->get(id); }
  std::vector<entity_ptr> by_type(std::string_view type) const {
    return core_->by_type(type);
  }
  std::vector<entity_ptr> all() const { return core_->all(); }
  std::size_t size() const { return core_->size(); }

  /// Each returns an error (and changes nothing) for an invalid id, type or
  /// data, or for patch/erase of an entity that is not visible.
  sync_error put(std::string_view id, std::string_view type, const nlohmann::json& data) {
    return core_->put(id, type, data);
  }
  sync_error put_json(std::string_view id, std::string_view type, std::string_view json) {
    return core_->put_json(id, type, json);
  }
  sync_error patch(std::string_view id, const nlohmann::json& patch) {
    return core_->patch(id, patch);
  }
  sync_error patch_json(std::string_view id, std::string_view json) {
    return core_->patch_json(id, json);
  }
  sync_error erase(std::string_view id) { return core_->erase(id); }

  /// Events for `type` (empty: all types), batched per applied batch, only
  /// for entities whose visible value changed.
  subscription subscribe(std::string type, event_callback callback) {
    return subs_->add(std::move(type), std::move(callback));
  }

  /// Waits until every write made so far is durable in the local database.
  /// Returns false on timeout.
  bool flushed(std::chrono::nanoseconds timeout = std::chrono::seconds(30)) const {
    return core_->wait_durable(core_->last_seq(), timeout);
  }

  store_counts counts() const { return core_->counts(); }
  /// Changes the server refused recently (each also arrives as an event
  /// with `refusal` set).
  std::vector<refused_change> refusals() const { return core_->refusals(); }
  /// Local changes the server has not confirmed yet, in write order.
  std::vector<change> pending() const { return core_->pending(); }

private:
  std::shared_ptr<store_core> core_;
  std::shared_ptr<subscriber_list> subs_;
};

} // namespace memsync
