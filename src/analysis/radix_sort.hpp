// Sorting the sweeps' findings (branches and their targets, stores, addresses taken): hundreds of thousands
// to millions on a large driver, found in increasing source address and sorted once, where a comparison sort
// costs several times a few linear passes.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tagwho::analysis {

// Sorts v stably by key(element) < 2^key_bits, in one linear pass per 11 bits of the key (a digit on which
// all keys agree is skipped); small vectors by std::stable_sort.
template <typename T, typename Key>
void radix_sort(std::vector<T>& v, Key key, unsigned key_bits) {
  if (v.size() < 1024) {  // (a pass reads 2,048 counters)
    std::stable_sort(v.begin(), v.end(), [&key](const T& a, const T& b) { return key(a) < key(b); });
    return;
  }
  constexpr unsigned kDigitBits = 11;
  constexpr size_t kBuckets = size_t{1} << kDigitBits;
  std::vector<T> scattered(v.size());
  for (unsigned shift = 0; shift < key_bits; shift += kDigitBits) {
    std::vector<size_t> starts(kBuckets + 1, 0);
    for (const T& x : v) ++starts[((key(x) >> shift) & (kBuckets - 1)) + 1];
    if (std::count(starts.begin(), starts.end(), v.size()) == 1) continue;  // one digit for all: in order
    for (size_t b = 1; b <= kBuckets; ++b) starts[b] += starts[b - 1];
    for (const T& x : v) scattered[starts[(key(x) >> shift) & (kBuckets - 1)]++] = x;
    v.swap(scattered);
  }
}

inline void sort_unique(std::vector<uint32_t>& v) {
  radix_sort(v, [](uint32_t x) { return x; }, 32);
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// Sorts v by (target, source), 32-bit addresses. A sweep finds them in increasing source order (unless
// sections overlap or come out of order): then a stable radix sort on the target alone gives that order.
template <typename T, typename Target, typename Source>
void sort_by_target(std::vector<T>& v, Target target, Source source) {
  const bool by_source =
      std::adjacent_find(v.begin(), v.end(), [&](const T& a, const T& b) { return source(a) >= source(b); }) == v.end();
  if (by_source) {
    radix_sort(v, target, 32);
    return;
  }
  std::sort(v.begin(), v.end(), [&](const T& a, const T& b) {
    return target(a) != target(b) ? target(a) < target(b) : source(a) < source(b);
  });
}

}  // namespace tagwho::analysis
