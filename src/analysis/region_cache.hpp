// The decoded regions an analysis keeps (x86 and ARM64 alike): looked up by their bounds, iterated to
// reuse what overlapping regions already decoded, and trimmed oldest first.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <utility>

#include "core/budget.hpp"

namespace tagwho::analysis {

// Region: any type with `insns` (size()) and memory_bytes(). Pointers returned stay valid until trim().
template <typename Region>
class RegionCache {
 public:
  using Key = std::pair<uint32_t, uint32_t>;  // (start, end)

  const Region* find(const Key& key) const {
    auto it = regions_.find(key);
    return it == regions_.end() ? nullptr : it->second.get();
  }

  // The cached region for key: `region` when there was none.
  const Region* add(const Key& key, std::unique_ptr<Region> region) {
    auto [it, inserted] = regions_.try_emplace(key, std::move(region));
    if (inserted) {
      instructions_ += it->second->insns.size();
      order_.push_back(key);
      budget::charge(bytes_of(*it->second));  // may throw: the region is already owned by the cache
    }
    return it->second.get();
  }

  // Calls visit(const Region&) for every cached region.
  RegionCache() = default;
  RegionCache(const RegionCache&) = delete;
  RegionCache& operator=(const RegionCache&) = delete;
  ~RegionCache() {
    for (const auto& [key, region] : regions_) budget::release(bytes_of(*region));
  }

  template <typename Visit>
  void for_each(Visit visit) const {
    for (const auto& [key, region] : regions_) visit(*region);
  }

  // Above either bound, the older half goes: the newer regions are the ones the next call sites (taken in
  // address order) overlap.
  void trim(size_t max_regions, size_t max_instructions) {
    if (regions_.size() <= max_regions && instructions_ <= max_instructions) return;
    while ((regions_.size() > max_regions / 2 || instructions_ > max_instructions / 2) && !order_.empty()) {
      auto oldest = regions_.find(order_.front());
      instructions_ -= oldest->second->insns.size();
      budget::release(bytes_of(*oldest->second));
      regions_.erase(oldest);
      order_.pop_front();
    }
  }

 private:
  static uint64_t bytes_of(const Region& region) { return region.memory_bytes(); }

  std::map<Key, std::unique_ptr<Region>> regions_;
  std::deque<Key> order_;  // keys of regions_, oldest first
  size_t instructions_ = 0;
};

}  // namespace tagwho::analysis
