// Subscriptions to change events. The memory_store actor delivers each batch
// of events on its own thread, never on the writer's; a subscription ends
// when its handle is destroyed, and no callback runs after that returns.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/hot/store_core.hpp"

namespace memsync {

/// Receives the events of one applied batch that match the subscription.
/// Runs on the memory store's thread: keep it short; it may read and write
/// the store.
using event_callback = std::function<void(const std::vector<change_event>&)>;

namespace detail {
struct subscriber {
  std::string type;         ///< empty: every type
  std::recursive_mutex mtx; ///< recursive: a callback may end its own subscription
  event_callback callback;
};
} // namespace detail

/// Ends the subscription when destroyed or cancelled. Move-only.
class subscription {
public:
  subscription() = default;
  explicit subscription(std::shared_ptr<detail::subscriber> sub) : sub_(std::move(sub)) {}
  subscription(subscription&&) = default;
  subscription& operator=(subscription&& other) noexcept;
  ~subscription() { cancel(); }

  void cancel();
  bool active() const { return sub_ != nullptr; }

private:
  std::shared_ptr<detail::subscriber> sub_;
};

class subscriber_list {
public:
  subscription add(std::string type, event_callback callback);

  /// Calls every live subscriber with the events of its type, in order.
  void dispatch(const std::vector<change_event>& events);

  std::size_t size() const;

private:
  mutable std::mutex mtx_;
  std::vector<std::weak_ptr<detail::subscriber>> subs_;
};

} // namespace memsync
