// An open-addressing hash table of entities keyed by id: linear probing and
// backward-shift deletion (no tombstones). Each slot keeps the id's hash next
// to the pointer, so a lookup reads one slot and then the entity itself; a
// node-based map costs two more dependent cache misses per read at 1M
// entities. Not thread-safe: left_right keeps readers and the writer apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "messages/entity.hpp"

namespace memsync {

using entity_ptr = std::shared_ptr<const entity>;

class entity_table {
public:
  static uint64_t hash(std::string_view id) { return std::hash<std::string_view>{}(id); }

  /// The slot holding `id`, or null. `h` must be hash(id).
  const entity_ptr* find(std::string_view id, uint64_t h) const {
    auto i = index_of(id, h);
    return i == npos ? nullptr : &slots_[i].value;
  }

  /// Inserts `value`, or replaces the entity with the same id.
  void assign(const entity_ptr& value, uint64_t h) {
    if ((size_ + 1) * 10 > slots_.size() * 7)
      rehash(slots_.empty() ? 16 : slots_.size() * 2);
    for (auto i = h & mask_;; i = (i + 1) & mask_) {
      auto& s = slots_[i];
      if (!s.value) {
        s = {h, value};
        ++size_;
        return;
      }
      if (s.hash == h && s.value->id == value->id) {
        s.value = value;
        return;
      }
    }
  }

  /// Removes `id`; false if it was not there.
  bool erase(std::string_view id, uint64_t h) {
    auto i = index_of(id, h);
    if (i == npos)
      return false;
    // Shift later members of the probe run back so lookups never stop early.
    for (auto j = (i + 1) & mask_; slots_[j].value; j = (j + 1) & mask_) {
      auto home = slots_[j].hash & mask_;
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        slots_[i] = std::move(slots_[j]);
        i = j;
      }
    }
    slots_[i] = slot{};
    --size_;
    return true;
  }

  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap * 7 < n * 10)
      cap *= 2;
    if (cap > slots_.size())
      rehash(cap);
  }

  std::size_t size() const { return size_; }

  template <class F>
  void for_each(F&& f) const {
    for (auto& s : slots_)
      if (s.value)
        f(s.value);
  }

private:
  struct slot {
    uint64_t hash = 0;
    entity_ptr value; ///< null: empty
  };

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  std::size_t index_of(std::string_view id, uint64_t h) const {
    if (size_ == 0)
      return npos;
    for (auto i = h & mask_;; i = (i + 1) & mask_) {
      auto& s = slots_[i];
      if (!s.value)
        return npos;
      if (s.hash == h && s.value->id == id)
        return i;
    }
  }

  void rehash(std::size_t capacity) {
    std::vector<slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    for (auto& s : old) {
      if (!s.value)
        continue;
      auto i = s.hash & mask_;
      while (slots_[i].value)
        i = (i + 1) & mask_;
      slots_[i] = std::move(s);
    }
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

} // namespace memsync
