// Wall-clock readings for traces, clock-offset samples and handshakes. They
// are informative only: no ordering anywhere depends on them (the server's
// version order decides).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace memsync {

namespace test_faults {
/// Added to every wall-clock reading. Only the deterministic simulator
/// (tools/sim) sets it, to make the clock of every node jump and show that
/// nothing depends on it; always 0 otherwise.
inline std::atomic<int64_t> wall_clock_jump_us{0};
} // namespace test_faults

/// Microseconds since the Unix epoch, system clock.
inline int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::system_clock::now().time_since_epoch())
           .count()
         + test_faults::wall_clock_jump_us.load(std::memory_order_relaxed);
}

} // namespace memsync
