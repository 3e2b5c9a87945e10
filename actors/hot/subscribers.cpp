#include "actors/hot/subscribers.hpp"

namespace memsync {

subscription& subscription::operator=(subscription&& other) noexcept {
  if (this != &other) {
    cancel();
    sub_ = std::move(other.sub_);
  }
  return *this;
}

void subscription::cancel() {
  if (!sub_)
    return;
  std::lock_guard<std::recursive_mutex> guard{sub_->mtx};
  sub_->callback = nullptr;
  sub_.reset();
}

subscription subscriber_list::add(std::string type, event_callback callback) {
  auto sub = std::make_shared<detail::subscriber>();
  sub->type = std::move(type);
  sub->callback = std::move(callback);
  std::lock_guard<std::mutex> guard{mtx_};
  subs_.push_back(sub);
  return subscription{std::move(sub)};
}

void subscriber_list::dispatch(const std::vector<change_event>& events) {
  if (events.empty())
    return;
  std::vector<std::shared_ptr<detail::subscriber>> live;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto it = subs_.begin(); it != subs_.end();) {
      if (auto sub = it->lock()) {
        live.push_back(std::move(sub));
        ++it;
      } else {
        it = subs_.erase(it); // its subscription ended
      }
    }
  }
  std::vector<change_event> filtered;
  for (auto& sub : live) {
    std::lock_guard<std::recursive_mutex> guard{sub->mtx};
    if (!sub->callback)
      continue;
    if (sub->type.empty()) {
      sub->callback(events);
      continue;
    }
    filtered.clear();
    for (auto& ev : events)
      if (ev.type == sub->type)
        filtered.push_back(ev);
    if (!filtered.empty())
      sub->callback(filtered);
  }
}

std::size_t subscriber_list::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return subs_.size();
}

} // namespace memsync
