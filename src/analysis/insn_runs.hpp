// Decoded instructions shared between the regions of one analysis (x86 and ARM64 alike). Regions around
// nearby call sites overlap (a window per site, a function per site): an instruction depends only on its
// address and bytes, so each run of instructions is decoded once and every region that covers it refers to
// it (8 bytes per instruction) instead of holding a copy.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/budget.hpp"

namespace tagwho::analysis {

// Instructions decoded linearly from `start`; `next` is where decoding goes on after them.
template <typename Insn>
struct InsnRun {
  uint32_t start = 0;
  uint32_t next = 0;
  std::vector<Insn> insns;
};

// A region's instructions: references into shared runs.
template <typename Insn>
class InsnList {
 public:
  using Run = InsnRun<Insn>;
  const Insn& operator[](size_t i) const { return *at_[i]; }
  size_t size() const { return at_.size(); }
  bool empty() const { return at_.empty(); }
  // Appends run->insns[from, to).
  void append(const std::shared_ptr<const Run>& run, size_t from, size_t to) {
    if (from >= to) return;
    if (runs_.empty() || runs_.back() != run) runs_.push_back(run);
    for (size_t i = from; i < to; ++i) at_.push_back(&run->insns[i]);
  }
  // Charged as if the region held copies: runs it shares may outlive the cache that charged them.
  uint64_t memory_bytes() const {
    return at_.capacity() * (sizeof(const Insn*) + sizeof(Insn)) + runs_.capacity() * sizeof(runs_[0]);
  }
  // The index of the instruction starting at rva, or -1 (instructions are in address order).
  int index_of(uint32_t rva) const {
    size_t lo = 0, hi = at_.size();
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      if (at_[mid]->rva < rva) lo = mid + 1; else hi = mid;
    }
    return lo < at_.size() && at_[lo]->rva == rva ? static_cast<int>(lo) : -1;
  }

 private:
  std::vector<const Insn*> at_;
  std::vector<std::shared_ptr<const Run>> runs_;
};

// The runs decoded so far, by start address: at most `max_insns` instructions, the older half dropped beyond
// that (regions keep the runs they use). Charged to the file's budget while cached.
template <typename Insn>
class RunCache {
 public:
  using Run = InsnRun<Insn>;
  RunCache() = default;
  RunCache(const RunCache&) = delete;
  RunCache& operator=(const RunCache&) = delete;
  ~RunCache() {
    for (const auto& [start, run] : runs_) budget::release(bytes_of(*run));
  }

  std::shared_ptr<const Run> find(uint32_t start) const {
    auto it = runs_.find(start);
    return it == runs_.end() ? nullptr : it->second;
  }
  std::shared_ptr<const Run> add(std::shared_ptr<Run> run) {
    run->insns.shrink_to_fit();
    const uint32_t start = run->start;
    auto [it, inserted] = runs_.emplace(start, std::move(run));
    if (inserted) {
      instructions_ += it->second->insns.size();
      order_.push_back(start);
      budget::charge(bytes_of(*it->second));  // may throw: the run is already owned by the cache
    }
    return it->second;
  }
  void trim(size_t max_insns) {
    if (instructions_ <= max_insns) return;
    while (instructions_ > max_insns / 2 && !order_.empty()) {
      auto oldest = runs_.find(order_.front());
      instructions_ -= oldest->second->insns.size();
      budget::release(bytes_of(*oldest->second));
      runs_.erase(oldest);
      order_.pop_front();
    }
  }

 private:
  static uint64_t bytes_of(const Run& run) { return run.insns.capacity() * sizeof(Insn) + sizeof(Run); }

  std::unordered_map<uint32_t, std::shared_ptr<const Run>> runs_;
  std::deque<uint32_t> order_;  // starts of runs_, oldest first
  size_t instructions_ = 0;
};

}  // namespace tagwho::analysis
