// The set of states a data-flow walk has visited. A search resolves thousands of arguments, each walk
// visiting a few dozen states: a node-based set allocated and freed every node of every walk (a third of the
// walk's time on x86), and an open-addressing set cleared on every walk cost more than it saved. This one
// keeps its slots from walk to walk and empties them all at once by starting a new generation: a slot
// belongs to the set only when stamped with the current one.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tagwho::analysis {

template <typename Key, typename Hash>
class VisitedSet {
 public:
  // Empties the set (without touching its slots, but once every 2^32 walks). A table grown large for one
  // long walk is dropped, with its keys: the short walks after it would each touch a few cache lines spread
  // over all of it, and the keys (a walk stopped at its step limit: some 20,000, 2 MB) would stay held.
  void clear() {
    keys_.clear();
    if (slots_.size() > kKeptSlots) {
      slots_ = {};
      keys_ = {};
    }
    if (++generation_ != 0) return;
    for (Slot& slot : slots_) slot.generation = 0;
    generation_ = 1;
  }

  // True when key was not in the set (and is now).
  bool insert(const Key& key) {
    if ((keys_.size() + 1) * 2 > slots_.size()) grow();
    const uint64_t hash = mixed_hash(key);
    const size_t mask = slots_.size() - 1;
    for (size_t i = static_cast<size_t>(hash >> shift_);; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.generation != generation_) {
        slot = Slot{hash, generation_, static_cast<uint32_t>(keys_.size())};
        keys_.push_back(key);
        return true;
      }
      if (slot.hash == hash && keys_[slot.key] == key) return false;
    }
  }

  size_t size() const { return keys_.size(); }

 private:
  // 16 bytes, the key kept apart: a probe reads the hash, and compares keys only when the hashes agree.
  struct Slot {
    uint64_t hash = 0;
    uint32_t generation = 0;
    uint32_t key = 0;  // index into keys_
  };
  static constexpr size_t kFirstSlots = 64;
  static constexpr size_t kKeptSlots = 1024;

  // Hash's low bits can be weak (sums of small multiples): the slot comes from the high bits of a
  // multiplicative mix.
  static uint64_t mixed_hash(const Key& key) { return static_cast<uint64_t>(Hash{}(key)) * 0x9e3779b97f4a7c15ull; }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    const size_t capacity = std::max(kFirstSlots, old.size() * 2);
    slots_.assign(capacity, Slot{});
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(capacity));
    const uint32_t current = generation_;
    generation_ = 1;
    const size_t mask = capacity - 1;
    for (const Slot& slot : old) {
      if (slot.generation != current) continue;
      size_t i = static_cast<size_t>(slot.hash >> shift_);
      while (slots_[i].generation == generation_) i = (i + 1) & mask;
      slots_[i] = Slot{slot.hash, generation_, slot.key};
    }
  }

  std::vector<Slot> slots_;
  std::vector<Key> keys_;  // this walk's keys, in the order inserted
  unsigned shift_ = 64;
  uint32_t generation_ = 1;
};

// One VisitedSet per depth of walks started inside walks (a table's base register resolved in the middle of
// a walk): the walk at each depth has a set of its own for as long as it runs.
template <typename Key, typename Hash>
class VisitedSets {
 public:
  class Lease {
   public:
    explicit Lease(VisitedSets& sets) : sets_(sets) {
      if (sets_.depth_ == sets_.sets_.size()) sets_.sets_.push_back(std::make_unique<VisitedSet<Key, Hash>>());
      set_ = sets_.sets_[sets_.depth_++].get();
      set_->clear();
    }
    ~Lease() { --sets_.depth_; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    VisitedSet<Key, Hash>& operator*() const { return *set_; }
    VisitedSet<Key, Hash>* operator->() const { return set_; }

   private:
    VisitedSets& sets_;
    VisitedSet<Key, Hash>* set_;
  };

 private:
  std::vector<std::unique_ptr<VisitedSet<Key, Hash>>> sets_;
  size_t depth_ = 0;
};

}  // namespace tagwho::analysis
