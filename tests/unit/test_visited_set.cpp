// analysis/visited_set.hpp: the data-flow walks' visited sets, checked against std::set on random walks,
// including the walks after one that grew the table past what is kept, and walks nested inside walks.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <set>
#include <utility>

#include "analysis/visited_set.hpp"

using namespace tagwho::analysis;

namespace {

struct Key {
  uint32_t a = 0;
  int32_t b = 0;
  bool operator==(const Key&) const = default;
  bool operator<(const Key& o) const { return std::pair(a, b) < std::pair(o.a, o.b); }
};
// Deliberately poor: the low bits carry little (as sums of small multiples do); many keys share a hash.
struct WeakHash {
  size_t operator()(const Key& k) const { return (size_t{k.a} << 12) + static_cast<size_t>(k.b & 7); }
};
using Sets = VisitedSets<Key, WeakHash>;

// One walk of `inserts` random keys from a range of `distinct` values, checked against std::set.
void walk(Sets& sets, std::mt19937& random, size_t inserts, uint32_t distinct) {
  const Sets::Lease set(sets);
  std::set<Key> reference;
  CHECK(set->size() == 0);
  for (size_t i = 0; i < inserts; ++i) {
    const Key key{static_cast<uint32_t>(random() % distinct), static_cast<int32_t>(random() % 3) - 1};
    const bool fresh = reference.insert(key).second;
    REQUIRE(set->insert(key) == fresh);
  }
  CHECK(set->size() == reference.size());
  for (const Key& key : reference) CHECK_FALSE(set->insert(key));
}

}  // namespace

TEST_CASE("a visited set answers as std::set does, walk after walk, whatever the table's size before") {
  std::mt19937 random(7);
  Sets sets;
  for (int round = 0; round < 200; ++round) {
    // Mostly short walks, now and then one that grows the table far past the slots it keeps.
    const bool long_walk = round % 37 == 5;
    walk(sets, random, long_walk ? 20000 : 1 + random() % 60, long_walk ? 15000 : 1 + random() % 50);
  }
}

TEST_CASE("a walk nested inside another has a set of its own, and the outer one's is intact after it") {
  Sets sets;
  const Sets::Lease outer(sets);
  for (uint32_t i = 0; i < 100; ++i) REQUIRE(outer->insert(Key{i, 0}));
  {
    const Sets::Lease inner(sets);
    CHECK(inner->size() == 0);
    for (uint32_t i = 0; i < 3000; ++i) REQUIRE(inner->insert(Key{i, 0}));  // (grows past the kept slots)
    std::mt19937 random(11);
    walk(sets, random, 500, 300);  // a third level, twice
    walk(sets, random, 500, 300);
  }
  CHECK(outer->size() == 100);
  for (uint32_t i = 0; i < 100; ++i) CHECK_FALSE(outer->insert(Key{i, 0}));
  CHECK(outer->insert(Key{100, 0}));
  const Sets::Lease again(sets);  // the inner level, leased afresh: empty
  CHECK(again->size() == 0);
  CHECK(again->insert(Key{1, 0}));
}
