// Exponential backoff between retries: `min` after the first failure,
// doubling per further failure, capped at `max`. One rule for every retry
// loop (reconnects, pushes, pulls, flushes, the PostgreSQL listener).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace memsync {

/// The delay before the next attempt after `failures` consecutive failures
/// (1: the first). REQUIRES: min <= max.
template <class Duration>
Duration backoff_delay(Duration min, Duration max, uint64_t failures) {
  auto delay = min;
  for (uint64_t i = 1; i < failures && delay < max; ++i)
    delay *= 2;
  return std::min(delay, max);
}

/// backoff_delay with jitter: a uniform pick between half and all of it, so
/// clients that lost the same server do not all come back in the same
/// instant.
template <class Duration, class Rng>
Duration jittered_backoff(Duration min, Duration max, uint64_t failures, Rng& rng) {
  auto delay = backoff_delay(min, max, failures);
  std::uniform_int_distribution<typename Duration::rep> pick{delay.count() / 2,
                                                             delay.count()};
  return Duration{pick(rng)};
}

} // namespace memsync
