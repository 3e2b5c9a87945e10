// Left-right concurrency control (Ramalhete & Correia): two copies of a value.
// Readers never lock and never wait for the writer: they announce themselves
// on a per-thread counter and read the copy `side_` points at. The writer
// changes the copy nobody reads, flips `side_`, waits until the readers of the
// old copy have left, and applies the same change to it. A read therefore sees
// either all or none of one write, and a write is visible to every read that
// starts after it returns.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace memsync {

namespace detail {

constexpr std::size_t reader_slots = 32;

/// Spreads reader threads over the slots; threads beyond 32 share a slot,
/// which stays correct because slots are counters, not flags.
inline std::size_t reader_slot() {
  static std::atomic<std::size_t> next{0};
  thread_local std::size_t slot = next.fetch_add(1) % reader_slots;
  return slot;
}

} // namespace detail

template <class T>
class left_right {
public:
  left_right() = default;
  left_right(const left_right&) = delete;
  left_right& operator=(const left_right&) = delete;

  /// Calls `f(const T&)` on the current copy. `f` must not call write().
  template <class F>
  decltype(auto) read(F&& f) const {
    auto& slot = slots_[detail::reader_slot()];
    auto version = version_.load();
    slot.count[version].fetch_add(1);
    struct depart {
      std::atomic<int64_t>& counter;
      ~depart() { counter.fetch_sub(1, std::memory_order_release); }
    } guard{slot.count[version]};
    return f(copies_[side_.load()]);
  }

  /// Applies `f(T&)` to both copies, one after the other; `f` must have the
  /// same effect both times. REQUIRES: writers are serialized by the caller.
  template <class F>
  void write(F&& f) {
    auto side = side_.load(std::memory_order_relaxed);
    f(copies_[1 - side]);
    side_.store(1 - side);
    auto version = version_.load(std::memory_order_relaxed);
    wait_until_empty(1 - version);
    version_.store(1 - version);
    wait_until_empty(version);
    f(copies_[side]);
  }

  /// Builds the first copy with `f` and copies it, for set-up before any
  /// reader exists. REQUIRES: no concurrent reader or writer.
  template <class F>
  void initialize(F&& f) {
    f(copies_[0]);
    copies_[1] = copies_[0];
  }

private:
  struct alignas(64) slot {
    std::atomic<int64_t> count[2] = {0, 0};
  };

  void wait_until_empty(int version) const {
    for (auto& slot : slots_) {
      for (int spins = 0; slot.count[version].load() != 0; ++spins)
        if (spins > 64)
          std::this_thread::yield();
    }
  }

  T copies_[2];
  std::atomic<int> side_{0};
  std::atomic<int> version_{0};
  mutable std::array<slot, detail::reader_slots> slots_;
};

} // namespace memsync
