// Decoded instructions shared between the regions of one analysis (x86 and ARM64 alike). Regions around
// nearby call sites overlap (a window per site, a function per site): an instruction depends only on its
// address and bytes, so each run of instructions is decoded once and every region that covers it refers to
// it (8 bytes per instruction) instead of holding a copy.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "analysis/region_cache.hpp"

namespace tagwho::analysis {

// Instructions decoded linearly from `start`; `next` is where decoding goes on after them.
template <typename Insn>
struct InsnRun {
  uint32_t start = 0;
  uint32_t next = 0;
  std::vector<Insn> insns;
  uint64_t memory_bytes() const { return insns.capacity() * sizeof(Insn) + sizeof(InsnRun); }
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
  void clear() {
    at_.clear();
    runs_.clear();
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

// The runs decoded so far, by start address (at most a given number of instructions: trim(SIZE_MAX, n)).
template <typename Insn>
using RunCache = FifoCache<uint32_t, std::shared_ptr<const InsnRun<Insn>>>;

}  // namespace tagwho::analysis
