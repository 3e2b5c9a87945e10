// Time spent in the layers of a client's sync (for load tests and status):
// a compact logarithmic histogram and the counters a network_syncer keeps.
// Plain values; the syncer owns its copy and hands it out with its status.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace memsync {

/// Counts of non-negative values (microseconds, by convention) in buckets
/// that grow geometrically: 8 per power of two, so a bucket is at most 12.5%
/// wide and a percentile read from it is within about 6% of the truth. Grows
/// only as far as the largest value recorded (a few hundred bytes for
/// values up to seconds).
struct log_histogram {
  static constexpr unsigned sub_bits = 3;
  static constexpr uint64_t sub_count = uint64_t{1} << sub_bits;

  std::vector<uint64_t> buckets;
  uint64_t count = 0;
  uint64_t sum = 0;
  uint64_t max = 0;

  static size_t bucket_of(uint64_t v) {
    if (v < sub_count)
      return static_cast<size_t>(v);
    unsigned exp = 63u - static_cast<unsigned>(__builtin_clzll(v));
    auto sub = (v >> (exp - sub_bits)) & (sub_count - 1);
    return static_cast<size_t>(sub_count + (exp - sub_bits) * sub_count + sub);
  }

  /// The smallest value that falls into bucket `i`.
  static uint64_t lower_bound(size_t i) {
    if (i < sub_count)
      return i;
    auto exp = (i - sub_count) / sub_count + sub_bits;
    auto sub = (i - sub_count) % sub_count;
    return (sub_count + sub) << (exp - sub_bits);
  }

  void record(uint64_t v, uint64_t times = 1) {
    auto i = bucket_of(v);
    if (buckets.size() <= i)
      buckets.resize(i + 1, 0);
    buckets[i] += times;
    count += times;
    sum += v * times;
    max = std::max(max, v);
  }

  void merge(const log_histogram& other) {
    if (buckets.size() < other.buckets.size())
      buckets.resize(other.buckets.size(), 0);
    for (size_t i = 0; i < other.buckets.size(); ++i)
      buckets[i] += other.buckets[i];
    count += other.count;
    sum += other.sum;
    max = std::max(max, other.max);
  }

  /// The value below which a share `q` (0..1) of the recorded values lie:
  /// the middle of the bucket holding that rank, never above `max`. 0 when
  /// nothing was recorded.
  uint64_t percentile(double q) const {
    if (count == 0)
      return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(count) + 0.999999);
    rank = std::clamp<uint64_t>(rank, 1, count);
    uint64_t seen = 0;
    for (size_t i = 0; i < buckets.size(); ++i) {
      seen += buckets[i];
      if (seen >= rank) {
        auto lo = lower_bound(i);
        auto width = lower_bound(i + 1) - lo;
        return std::min(lo + width / 2, max);
      }
    }
    return max;
  }

  double mean() const {
    return count == 0 ? 0.0 : static_cast<double>(sum) / static_cast<double>(count);
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_histogram& x) {
  return f(caf::meta::type_name("memsync::log_histogram"), x.buckets, x.count, x.sum,
           x.max);
}

/// What a network_syncer measured since it started. Durations in
/// microseconds.
struct layer_stats {
  log_histogram push_round_trip; ///< push request sent -> reply received
  log_histogram poke_to_pull;    ///< poke received -> the pull it caused is applied
  log_histogram apply;           ///< pull reply received -> visible in the store
  uint64_t pushes = 0;           ///< acknowledged pushes
  uint64_t pulls = 0;            ///< applied pulls
  uint64_t pulls_ahead = 0;      ///< pulls that took an answer read ahead, not asked
  uint64_t disconnects = 0;      ///< connections lost (not counting going offline)
  std::map<std::string, uint64_t> errors; ///< by kind ("timeout", "refused:...")
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, layer_stats& x) {
  return f(caf::meta::type_name("memsync::layer_stats"), x.push_round_trip,
           x.poke_to_pull, x.apply, x.pushes, x.pulls, x.pulls_ahead, x.disconnects,
           x.errors);
}

} // namespace memsync
