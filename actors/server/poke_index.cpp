#include "actors/server/poke_index.hpp"

namespace memsync {

namespace {

bool is_prefix(const std::string& pattern) {
  return !pattern.empty() && pattern.back() == '*';
}

} // namespace

void poke_index::add(const caf::actor_addr& listener) {
  if (!filters_.count(listener))
    unfiltered_.insert(listener);
}

bool poke_index::set_filter(const caf::actor_addr& listener,
                            std::vector<std::string> patterns) {
  if (unfiltered_.erase(listener) == 0) {
    auto it = filters_.find(listener);
    if (it == filters_.end())
      return false;
    unindex(listener, it->second);
  }
  for (auto& p : patterns) {
    if (is_prefix(p)) {
      auto stem = p.substr(0, p.size() - 1);
      auto size = stem.size();
      if (prefixes_[std::move(stem)].insert(listener).second)
        ++prefix_lengths_[size];
    } else {
      names_[p].insert(listener);
    }
  }
  filters_[listener] = std::move(patterns);
  return true;
}

void poke_index::unindex(const caf::actor_addr& listener,
                         const std::vector<std::string>& patterns) {
  for (auto& p : patterns) {
    bool prefix = is_prefix(p);
    auto key = prefix ? p.substr(0, p.size() - 1) : p;
    auto& map = prefix ? prefixes_ : names_;
    auto it = map.find(key);
    if (it == map.end() || it->second.erase(listener) == 0)
      continue; // a pattern listed twice
    if (prefix && --prefix_lengths_[key.size()] == 0)
      prefix_lengths_.erase(key.size());
    if (it->second.empty())
      map.erase(it);
  }
}

void poke_index::remove(const caf::actor_addr& listener) {
  if (unfiltered_.erase(listener) != 0)
    return;
  auto it = filters_.find(listener);
  if (it == filters_.end())
    return;
  unindex(listener, it->second);
  filters_.erase(it);
}

std::vector<caf::actor_addr>
poke_index::touched_by(const std::vector<std::string>& scopes) const {
  listener_set found{unfiltered_};
  auto take = [&](const std::unordered_map<std::string, listener_set>& map,
                  const std::string& key) {
    if (auto it = map.find(key); it != map.end())
      found.insert(it->second.begin(), it->second.end());
  };
  for (auto& scope : scopes) {
    take(names_, scope);
    for (auto [size, count] : prefix_lengths_) {
      if (size > scope.size())
        break;
      take(prefixes_, scope.substr(0, size));
    }
  }
  return {found.begin(), found.end()};
}

} // namespace memsync
