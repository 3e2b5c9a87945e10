// The application's handle on the hot layer: synchronous reads and writes
// on the store core and subscriptions to its change events. Plain C++ (no
// actors), so an application reaches it without CAF's actor headers; the
// memory_store actor owns the core behind it.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "actors/hot/store_core.hpp"
#include "actors/hot/subscribers.hpp"

namespace memsync {

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
  /// data, for a change that could never be pushed (too_large: see
  /// store_core::put), or for patch/erase of an entity that is not visible.
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
