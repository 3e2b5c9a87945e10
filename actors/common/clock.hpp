// Wall-clock readings for traces, clock-offset samples and handshakes. They
// are informative only: no ordering anywhere depends on them (the server's
// version order decides).
#pragma once

#include <chrono>
#include <cstdint>

namespace memsync {

/// Microseconds since the Unix epoch, system clock.
inline int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace memsync
