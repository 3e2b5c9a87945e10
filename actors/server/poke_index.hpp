// poke_index: which poke listeners (sessions) a commit must poke, by the
// scopes it touched. A listener holds a filter of scope patterns (the
// readable parts of its client's subscription) or none (it gets every
// poke). Names are found in a hash map and prefixes by the touched scope's
// own prefixes, so finding the listeners of a commit costs the touched
// scopes' lengths plus the listeners found, not the number of listeners.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/actor_addr.hpp>

namespace memsync {

class poke_index {
public:
  /// A new listener, without filter. Adding a known one changes nothing.
  void add(const caf::actor_addr& listener);

  /// Replaces a known listener's filter with `patterns` (valid patterns;
  /// empty: it is poked for nothing). False, and nothing changed, for a
  /// listener never added or already removed.
  bool set_filter(const caf::actor_addr& listener, std::vector<std::string> patterns);

  void remove(const caf::actor_addr& listener);

  /// Every listener a commit that touched `scopes` must poke, once each.
  std::vector<caf::actor_addr> touched_by(const std::vector<std::string>& scopes) const;

  std::size_t size() const { return filters_.size() + unfiltered_.size(); }

private:
  using listener_set = std::unordered_set<caf::actor_addr>;
  void unindex(const caf::actor_addr& listener, const std::vector<std::string>& patterns);

  listener_set unfiltered_;
  std::unordered_map<caf::actor_addr, std::vector<std::string>> filters_;
  std::unordered_map<std::string, listener_set> names_;
  /// By the prefix before the '*' ("" for "*").
  std::unordered_map<std::string, listener_set> prefixes_;
  /// How many prefixes of each length are held: only those lengths are tried.
  std::map<std::size_t, std::size_t> prefix_lengths_;
};

} // namespace memsync
