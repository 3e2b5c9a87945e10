// Clock alignment of the trace tool (see align() in trace_model.hpp).
#include <algorithm>
#include <cstdlib>
#include <map>

#include "tools/trace/trace_model.hpp"

namespace memsync::trace {

namespace {

constexpr int64_t window_ns = 60'000'000'000; // clocks drift: stay local

/// The estimate with the shortest round trip (tightest bound) within a
/// minute of `t`, else the nearest one in time.
int64_t estimate(const std::vector<clock_estimate>& clocks, int64_t t) {
  const clock_estimate* best = nullptr;
  const clock_estimate* nearest = nullptr;
  for (auto& c : clocks) {
    if (!nearest || std::llabs(c.at_ns - t) < std::llabs(nearest->at_ns - t))
      nearest = &c;
    if (std::llabs(c.at_ns - t) <= window_ns && (!best || c.rtt_ns < best->rtt_ns))
      best = &c;
  }
  return (best ? best : nearest)->offset_ns;
}

/// Bounds on a client's offset from messages it exchanged with the server,
/// per minute of its clock: a push is received after it was sent (offset <=
/// server receipt - client send), a poke after the server sent it (offset
/// >= server send - client receipt).
struct causal_bounds {
  std::map<int64_t, std::pair<int64_t, int64_t>> by_minute; // lo, hi

  void add(int64_t local, int64_t lo, int64_t hi) {
    auto [it, added] = by_minute.try_emplace(local / window_ns, lo, hi);
    if (!added) {
      it->second.first = std::max(it->second.first, lo);
      it->second.second = std::min(it->second.second, hi);
    }
  }
  /// Clamps `offset` into the bounds around `local`, if they are consistent.
  int64_t clamp(int64_t local, int64_t offset) const {
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    auto minute = local / window_ns;
    for (auto m = minute - 1; m <= minute + 1; ++m)
      if (auto it = by_minute.find(m); it != by_minute.end()) {
        lo = std::max(lo, it->second.first);
        hi = std::min(hi, it->second.second);
      }
    return lo <= hi ? std::clamp(offset, lo, hi) : offset;
  }
};

std::map<std::size_t, causal_bounds> bounds_from_messages(const trace_set& set) {
  std::map<std::pair<uint64_t, uint64_t>, int64_t> received; // trace, mid
  std::map<uint64_t, int64_t> poked;                         // version
  for (auto& ev : set.events) {
    if (set.files[ev.file].role != "server")
      continue;
    if (ev.actor == "session" && ev.kind == "push")
      for (auto& i : ev.items)
        received.try_emplace({i.trace_id, i.mutation_id}, ev.local_ns);
    if (ev.kind == "poke_sent")
      poked.try_emplace(ev.version, ev.local_ns);
  }
  std::map<std::size_t, causal_bounds> out;
  for (auto& ev : set.events) {
    if (set.files[ev.file].role != "client" || ev.actor != "network_syncer")
      continue;
    if (ev.kind == "push")
      for (auto& i : ev.items)
        if (auto it = received.find({i.trace_id, i.mutation_id}); it != received.end())
          out[ev.file].add(ev.local_ns, INT64_MIN, it->second - ev.local_ns);
    if (ev.kind == "poke")
      if (auto it = poked.find(ev.version); it != poked.end())
        out[ev.file].add(ev.local_ns, it->second - ev.local_ns, INT64_MAX);
  }
  return out;
}

} // namespace

void align(trace_set& set) {
  auto bounds = bounds_from_messages(set);
  for (auto& ev : set.events) {
    auto& clocks = set.files[ev.file].clocks;
    int64_t offset = clocks.empty() ? 0 : estimate(clocks, ev.local_ns);
    if (auto it = bounds.find(ev.file); it != bounds.end())
      offset = it->second.clamp(ev.local_ns, offset);
    ev.t_ns = ev.local_ns + offset;
  }
  std::stable_sort(set.events.begin(), set.events.end(),
                   [](const event& a, const event& b) { return a.t_ns < b.t_ns; });
}

} // namespace memsync::trace
