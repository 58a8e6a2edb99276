// What an analysis keeps of what it decoded (x86 and ARM64 alike): the regions around call sites, looked up
// by their bounds, and the runs of instructions they share (insn_runs.hpp), looked up by start address.
// Both are charged to the file's budget while cached and trimmed oldest first.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <type_traits>
#include <utility>

#include "core/budget.hpp"

namespace tagwho::analysis {

// Items owned by key (Owner: unique_ptr<T>, handed out as const T*, or shared_ptr<const T>, handed out as a
// shared_ptr). T has `insns` (size()) and memory_bytes(). Handed-out pointers from a unique_ptr stay valid
// until trim(); shared ones as long as their holder keeps them.
template <typename Key, typename Owner>
class FifoCache {
 public:
  using Handle = std::conditional_t<std::is_copy_constructible_v<Owner>, Owner, const typename Owner::element_type*>;

  FifoCache() = default;
  FifoCache(const FifoCache&) = delete;
  FifoCache& operator=(const FifoCache&) = delete;
  ~FifoCache() {
    for (const auto& [key, item] : items_) budget::release(item->memory_bytes());
  }

  // The cached item for key, or null.
  Handle find(const Key& key) const {
    auto it = items_.find(key);
    return it == items_.end() ? Handle{} : handle(it->second);
  }

  // The cached item for key: `item` when there was none.
  Handle add(const Key& key, Owner item) {
    auto [it, inserted] = items_.try_emplace(key, std::move(item));
    if (inserted) {
      instructions_ += it->second->insns.size();
      order_.push_back(key);
      budget::charge(it->second->memory_bytes());  // may throw: the item is already owned by the cache
    }
    return handle(it->second);
  }

  // Above either bound, the older half goes: the newer items are the ones the next call sites (taken in
  // address order) overlap.
  void trim(size_t max_items, size_t max_instructions) {
    if (items_.size() <= max_items && instructions_ <= max_instructions) return;
    while ((items_.size() > max_items / 2 || instructions_ > max_instructions / 2) && !order_.empty()) {
      auto oldest = items_.find(order_.front());
      instructions_ -= oldest->second->insns.size();
      budget::release(oldest->second->memory_bytes());
      items_.erase(oldest);
      order_.pop_front();
    }
  }

 private:
  static Handle handle(const Owner& owner) {
    if constexpr (std::is_copy_constructible_v<Owner>)
      return owner;
    else
      return owner.get();
  }

  std::map<Key, Owner> items_;
  std::deque<Key> order_;  // keys of items_, oldest first
  size_t instructions_ = 0;
};

// Regions by (start, end).
template <typename Region>
using RegionCache = FifoCache<std::pair<uint32_t, uint32_t>, std::unique_ptr<Region>>;

}  // namespace tagwho::analysis
