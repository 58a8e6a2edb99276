#include "tagwho/literal_matcher.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/budget.hpp"

namespace tagwho {

namespace {
uint32_t le32(const uint8_t* p) { return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24; }
}  // namespace

// The ARM64 halves of every tag, for the word scan: which tags have a given 16-bit half, and a bitmap of
// the halves that occur at all (most words are rejected by one bit test).
struct HalfIndex {
  struct Entry {
    uint16_t half;
    uint32_t tag_index;
    bool protected_bit;  // high halves: the PROTECTED_POOL variant
    bool operator<(const Entry& other) const {
      return std::tie(half, tag_index, protected_bit) < std::tie(other.half, other.tag_index, other.protected_bit);
    }
  };
  std::vector<Entry> low, high;  // sorted
  std::vector<uint64_t> low_seen = std::vector<uint64_t>(1024), high_seen = std::vector<uint64_t>(1024);

  void add(std::vector<Entry>& entries, std::vector<uint64_t>& seen, uint16_t half, size_t tag_index, bool guarded) {
    entries.push_back(Entry{half, static_cast<uint32_t>(tag_index), guarded});
    seen[half >> 6] |= uint64_t{1} << (half & 63);
  }
  static bool has(const std::vector<uint64_t>& seen, uint16_t half) { return (seen[half >> 6] >> (half & 63)) & 1; }
};

// The tags' byte patterns as a hash table of 4-byte values, for matchers without the prefilter's patterns
// (an index build's thousands of tags). Hyperscan took 1.6 s to compile the 54,000 patterns of the bench
// corpus's 27,000 tags, serially: a tenth of the whole build. This is built in milliseconds and scans at
// about 0.8 GB/s, against Hyperscan's 1.0 GB/s on that database. Every pattern is exactly four bytes, so a
// lookup of the word at each offset finds them all. A blocked Bloom filter (two bits in one 64-bit word,
// 256 KB at most: it stays in the L2 cache) turns away all but about 1% of the offsets with one load; a
// one-bit filter of 128 KB let 4.6% through, each then a miss in the 1 MB table (0.5 against 0.8 GB/s).
class WordTable {
 public:
  struct Entry {
    uint32_t value;
    uint32_t tag_index;
    bool protected_bit;
    bool operator<(const Entry& other) const {
      return std::tie(value, tag_index, protected_bit) < std::tie(other.value, other.tag_index, other.protected_bit);
    }
  };

  explicit WordTable(std::vector<Entry> entries) : entries_(std::move(entries)) {
    std::sort(entries_.begin(), entries_.end());
    int bits = 4;
    while ((size_t{1} << bits) < 2 * entries_.size()) ++bits;  // at most half full
    slot_shift_ = 64 - bits;
    slots_.assign(size_t{1} << bits, Slot{});
    const int filter_words_bits = std::clamp(bits + 4, 10, 21) - 6;  // up to 2^21 bits: 256 KB
    filter_shift_ = 64 - filter_words_bits;
    filter_.assign(size_t{1} << filter_words_bits, 0);
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (i > 0 && entries_[i].value == entries_[i - 1].value) continue;  // (the same tag twice)
      set_pair(pairs_low_, entries_[i].value & 0xffff);
      set_pair(pairs_high_, entries_[i].value >> 16);
      const uint64_t hash = hash_of(entries_[i].value);
      filter_[hash >> filter_shift_] |= filter_bits(hash);
      size_t slot = hash >> slot_shift_;
      while (slots_[slot].first != 0) slot = (slot + 1) & (slots_.size() - 1);
      slots_[slot] = Slot{entries_[i].value, static_cast<uint32_t>(i + 1)};
    }
  }

  // Every hit that starts in the window (at file offset window_start) below accept_below, appended to hits
  // (in offset order). False when the file's memory or time limit stopped it.
  bool scan(ByteView window, uint64_t window_start, uint64_t accept_below, std::vector<LiteralHit>& hits) const {
    if (window.size() < 4) return true;
    const uint8_t* data = window.data();
    const uint64_t end = std::min<uint64_t>(window.size() - 3, accept_below - window_start);
    // A tick per KB: the clock is read every 4096 ticks, so a file without hits still reads it every 4 MB
    // (Hyperscan's scan ticks on matches only).
    constexpr uint64_t kTickEvery = uint64_t{1} << 10;
    for (uint64_t offset = 0; offset < end; ++offset) {
      if ((offset & (kTickEvery - 1)) == 0 && !budget::try_tick()) return false;
      const uint32_t word = le32(data + offset);
      if (!has_pair(pairs_low_, word & 0xffff) || !has_pair(pairs_high_, word >> 16)) continue;
      const uint64_t hash = hash_of(word);
      const uint64_t bits = filter_bits(hash);
      if ((filter_[hash >> filter_shift_] & bits) != bits) continue;
      for (size_t slot = hash >> slot_shift_; slots_[slot].first != 0; slot = (slot + 1) & (slots_.size() - 1)) {
        if (slots_[slot].value != word) continue;
        for (size_t i = slots_[slot].first - 1; i < entries_.size() && entries_[i].value == word; ++i) {
          if (!budget::try_charge(sizeof(LiteralHit)) || !budget::try_tick()) return false;
          LiteralHit hit;
          hit.offset = window_start + offset;
          hit.tag_index = entries_[i].tag_index;
          hit.protected_bit = entries_[i].protected_bit;
          hits.push_back(hit);
        }
        break;
      }
    }
    return true;
  }

 private:
  struct Slot {
    uint32_t value = 0;
    uint32_t first = 0;  // 1 + the index of the value's first entry; 0: empty
  };
  // Multiplicative: the top bits pick the slot and the filter's word, bits 32-43 (which every bit of the
  // value reaches) its two bits.
  static uint64_t hash_of(uint32_t value) { return uint64_t{value} * 0x9e3779b97f4a7c15ull; }
  static uint64_t filter_bits(uint64_t hash) {
    return uint64_t{1} << ((hash >> 32) & 63) | uint64_t{1} << ((hash >> 38) & 63);
  }

  // The first two and the last two bytes of the values, one bit per 16-bit pair (8 KB each: they stay in
  // the L1 cache). Tags are text: most offsets of code and data hold a pair no tag starts or ends with, and
  // are turned away before the hash and the filter's load from the L2 cache.
  using PairBits = std::array<uint64_t, 1024>;
  static void set_pair(PairBits& bits, uint32_t pair) { bits[pair >> 6] |= uint64_t{1} << (pair & 63); }
  static bool has_pair(const PairBits& bits, uint32_t pair) { return (bits[pair >> 6] >> (pair & 63)) & 1; }
  PairBits pairs_low_{};
  PairBits pairs_high_{};
  std::vector<Entry> entries_;  // sorted
  std::vector<Slot> slots_;     // open addressing, linear probing
  int slot_shift_ = 0;
  std::vector<uint64_t> filter_;  // word hash >> filter_shift_ holds filter_bits(hash) of every value
  int filter_shift_ = 0;
};

struct LiteralMatcher::Database {
  hs_database_t* handle = nullptr;   // Hyperscan's, of the tags' bytes (with the prefilter, or when asked for)
  std::optional<WordTable> words;    // else this
  hs_database_t* nearby = nullptr;   // with the prefilter: the nearby constants (count_prefilter)
  HalfIndex halves;
  std::vector<uint32_t> values;  // every tag's value, plain and with the protected bit, sorted
  ~Database() {
    hs_free_database(handle);
    hs_free_database(nearby);
  }
};

LiteralMatcher::Scratch::~Scratch() { hs_free_scratch(static_cast<hs_scratch_t*>(handle_)); }

namespace {

// Pattern ids encode (tag index, variant) as kVariants * index + variant. Only byte patterns go to
// Hyperscan: ARM64 instruction words are found by the word scan (scan_arm64_halves). As Hyperscan
// patterns (a class of 32 first bytes each) they made compiling a database of 1,000 tags take 30 s.
enum Variant : unsigned { v_bytes, v_bytes_protected, kVariants };

unsigned pattern_id(size_t tag_index, Variant variant) { return static_cast<unsigned>(tag_index * kVariants + variant); }

std::string escaped(uint8_t byte) {
  static const char digits[] = "0123456789abcdef";
  return std::string("\\x") + digits[byte >> 4] + digits[byte & 15];
}

// The 4 bytes of value, little-endian, as a Hyperscan expression.
std::string bytes_pattern(uint32_t value) {
  std::string pattern;
  for (int i = 0; i < 4; ++i) pattern += escaped(static_cast<uint8_t>(value >> (8 * i)));
  return pattern;
}

// ARM64 move-wide words: bits 21-31 (sf, opc, the opcode, hw) under kMoveWideMask; imm16 is bits 5-20 and the
// destination register bits 0-4.
constexpr uint32_t kMoveWideMask = 0x7fe00000u;  // all but sf (bit 31: X or W destination)
constexpr uint32_t kMovzLsl0 = 0x52800000u;      // MOVZ Wd/Xd, #imm16
constexpr uint32_t kMovkLsl16 = 0x72a00000u;     // MOVK Wd/Xd, #imm16, LSL #16

// Every 4-byte-aligned word of the window (at file offset window_start, a multiple of 4) below accept_below
// that is a MOVZ of a tag's low half or a MOVK of its high half. ARM64 code is 4-byte aligned in the file
// as in memory (section file offsets are multiples of 512).
void scan_arm64_halves(ByteView window, uint64_t window_start, uint64_t accept_below, const HalfIndex& halves,
                       std::vector<LiteralHit>& hits) {
  const uint8_t* data = window.data();
  // The words wholly in the window that start below accept_below.
  const uint64_t end = std::min<uint64_t>(window.size() & ~uint64_t{3}, accept_below - window_start);
  const auto look_at = [&](uint64_t offset) {
    const uint32_t word = le32(data + offset);
    const uint32_t kind = word & kMoveWideMask;
    if (kind != kMovzLsl0 && kind != kMovkLsl16) return;
    const auto half = static_cast<uint16_t>(word >> 5);
    const bool low = kind == kMovzLsl0;
    if (!HalfIndex::has(low ? halves.low_seen : halves.high_seen, half)) return;
    const std::vector<HalfIndex::Entry>& entries = low ? halves.low : halves.high;
    auto it = std::lower_bound(entries.begin(), entries.end(), HalfIndex::Entry{half, 0, false});
    for (; it != entries.end() && it->half == half; ++it) {
      LiteralHit hit;
      hit.tag_index = it->tag_index;
      hit.offset = window_start + offset;
      hit.protected_bit = it->protected_bit;
      hit.encoding = low ? LiteralEncoding::arm64_movz_low : LiteralEncoding::arm64_movk_high;
      hit.reg = static_cast<uint8_t>(word & 0x1f);
      hit.wide = (word >> 31) != 0;
      budget::charge(sizeof(LiteralHit));
      hits.push_back(hit);
    }
  };
  uint64_t offset = 0;
#if defined(__SSE2__)
  // Four words at a time: most are neither a MOVZ nor a MOVK (the scalar loop was 8% of a search's time
  // over files without the tag, most of it in ARM64 code).
  const __m128i mask = _mm_set1_epi32(static_cast<int>(kMoveWideMask));
  const __m128i movz = _mm_set1_epi32(static_cast<int>(kMovzLsl0));
  const __m128i movk = _mm_set1_epi32(static_cast<int>(kMovkLsl16));
  for (; offset + 16 <= end; offset += 16) {
    const __m128i kinds = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + offset)), mask);
    const __m128i either = _mm_or_si128(_mm_cmpeq_epi32(kinds, movz), _mm_cmpeq_epi32(kinds, movk));
    for (auto words = static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(either))); words != 0; words &= words - 1)
      look_at(offset + 4 * static_cast<uint64_t>(__builtin_ctz(words)));
  }
#endif
  for (; offset < end; offset += 4) look_at(offset);
}

// Values a compiler may build a tag from when it picks between two constants without a branch (x86
// SETcc + LEA/SHL/ADD, ARM64 CINC): the other constant is the tag plus or minus 1, 3, 5, 9 or a power of two,
// and only that other constant's bytes are in the file. Counted for the search prefilter, never evidence.
std::vector<uint32_t> nearby_deltas() {
  std::vector<uint32_t> deltas = {3, 5, 9};
  for (int shift = 0; shift < 32; ++shift) deltas.push_back(uint32_t{1} << shift);
  return deltas;
}

// GCC's branchless choice between two arbitrary constants (x86 and x64): SBB/NEG makes a mask, then
// AND reg, (B - A) and ADD reg, A (or SUB). The tag B is never in the file, and nothing ties A to it, so
// a file with this idiom anywhere in its code is always analysed. Register numbers are not compared (a
// superset). It starts with the AND: 25 imm32 (eax), or [REX] 81 /4 imm32; then the ADD or SUB: 05 / 2d
// imm32 (eax), or [REX] 81 /0 or /5 imm32 (register operand).

// The value the choice idiom starting at p (and ending by end) computes when its mask is all ones: AND imm X
// then ADD imm Y gives X + Y, SUB imm Y gives X - Y. nullopt when the bytes there are not the idiom.
std::optional<uint32_t> choice_idiom_value(const uint8_t* p, const uint8_t* end) {
  size_t i = 0;
  if (end - p >= 5 && p[0] == 0x25) {
    i = 1;
  } else {
    if (end - p >= 1 && (p[0] & 0xf0) == 0x40) i = 1;
    if (end - p < static_cast<long>(i + 6) || p[i] != 0x81 || (p[i + 1] & 0xf8) != 0xe0) return std::nullopt;
    i += 2;
  }
  const uint32_t mask = le32(p + i);
  const uint8_t* q = p + i + 4;
  bool add = false;
  size_t j = 0;
  if (end - q >= 5 && (q[0] == 0x05 || q[0] == 0x2d)) {
    add = q[0] == 0x05;
    j = 1;
  } else {
    if (end - q >= 1 && (q[0] & 0xf0) == 0x40) j = 1;
    if (end - q < static_cast<long>(j + 6) || q[j] != 0x81) return std::nullopt;
    const uint8_t reg = (q[j + 1] >> 3) & 7;
    if ((q[j + 1] & 0xc0) != 0xc0 || (reg != 0 && reg != 5)) return std::nullopt;
    add = reg == 0;
    j += 2;
  }
  const uint32_t other = le32(q + j);
  return add ? mask + other : mask - other;
}

// The choice idioms starting in [begin, end) of the bytes and ending by `last` (the end of their section, or
// of the bytes) that compute one of `values` (sorted): every place that starts with an AND's opcode (25, or
// 81 with a ModRM of /4 and a register; a REX before it changes nothing the value depends on), both opcodes
// found in one pass. At most one when stop_at_first. A hand-written scan: as one more Hyperscan pattern (a regular
// expression of one-byte literals and gaps, with its start reported), the idiom cost a fifth of a search's
// time over files without the tag.
size_t count_choice_idioms(ByteView bytes, uint64_t begin, uint64_t end, uint64_t last,
                           const std::vector<uint32_t>& values, bool stop_at_first) {
  const uint8_t* p = bytes.data() + begin;
  const uint8_t* const candidates_end = bytes.data() + end;
  const uint8_t* const stop = bytes.data() + last;
  size_t count = 0;
  // Counts the idiom starting at `at` when it computes a value asked for; true when that ends the scan.
  const auto count_and_stop = [&](const uint8_t* at) {
    budget::tick();
    const std::optional<uint32_t> value = choice_idiom_value(at, stop);
    if (!value || !std::binary_search(values.begin(), values.end(), *value)) return false;
    ++count;
    return stop_at_first;
  };
#if defined(__SSE2__)
  // Both opcodes in one pass, 16 bytes at a time: two memchr passes read a large driver's code twice.
  const __m128i and_eax = _mm_set1_epi8(0x25);
  const __m128i and_reg = _mm_set1_epi8(static_cast<char>(0x81));
  for (; candidates_end - p >= 16; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i either = _mm_or_si128(_mm_cmpeq_epi8(v, and_eax), _mm_cmpeq_epi8(v, and_reg));
    auto mask = static_cast<unsigned>(_mm_movemask_epi8(either));
    for (; mask != 0; mask &= mask - 1)
      if (count_and_stop(p + __builtin_ctz(mask))) return count;
  }
#endif
  for (; p < candidates_end; ++p)
    if ((*p == 0x25 || *p == 0x81) && count_and_stop(p)) return count;
  return count;
}

struct ScanContext {
  std::vector<LiteralHit>* hits;
  uint64_t chunk_start;
  uint64_t accept_below;  // hits starting at or after this offset belong to the next chunk
  bool over_budget = false;  // the file's memory or time limit was reached: the scan was stopped
};

bool inside(const std::vector<std::pair<uint64_t, uint64_t>>& ranges, uint64_t begin, uint64_t end) {
  for (const auto& [lo, hi] : ranges)
    if (begin >= lo && end <= hi) return true;
  return false;
}

int on_match(unsigned int id, unsigned long long /*from*/, unsigned long long to, unsigned int /*flags*/,
             void* context_pointer) {
  auto* context = static_cast<ScanContext*>(context_pointer);
  // Hyperscan reports the end of the match; every tag pattern is exactly four bytes long.
  const uint64_t start = context->chunk_start + to - 4;
  if (start >= context->accept_below) return 0;
  if (!budget::try_charge(sizeof(LiteralHit)) || !budget::try_tick()) {
    context->over_budget = true;
    return 1;  // stops hs_scan
  }
  LiteralHit hit;
  hit.offset = start;
  hit.tag_index = id / kVariants;
  hit.protected_bit = id % kVariants == v_bytes_protected;
  context->hits->push_back(hit);
  return 0;
}

struct NearbyContext {
  uint64_t chunk_start;
  uint64_t accept_below;
  const PrefilterPlaces* places;  // where a nearby constant counts (everywhere when null)
  size_t count = 0;
  bool over_budget = false;
};

// A nearby constant counts in code anywhere, and as an aligned 4-byte value in another section.
int on_nearby(unsigned int /*id*/, unsigned long long /*from*/, unsigned long long to, unsigned int /*flags*/,
              void* context_pointer) {
  auto* context = static_cast<NearbyContext*>(context_pointer);
  const uint64_t start = context->chunk_start + to - 4;
  if (start >= context->accept_below) return 0;
  if (!budget::try_tick()) {
    context->over_budget = true;
    return 1;
  }
  const PrefilterPlaces* places = context->places;
  if (places && !inside(places->code, start, start + 4) &&
      !(start % 4 == 0 && inside(places->data, start, start + 4)))
    return 0;
  ++context->count;
  return places ? 1 : 0;  // with places, the first is all the prefilter needs (a hostile file can hold millions)
}

// The ranges sorted, overlapping ones merged: each byte is looked at once even when a hostile PE's sections
// overlap (then an idiom across two of them counts too: more files analysed, never fewer).
std::vector<std::pair<uint64_t, uint64_t>> merged(std::vector<std::pair<uint64_t, uint64_t>> ranges, uint64_t size) {
  for (auto& [lo, hi] : ranges) {
    lo = std::min(lo, size);
    hi = std::min(hi, size);
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& range : ranges) {
    if (range.first >= range.second) continue;
    if (!out.empty() && range.first < out.back().second) out.back().second = std::max(out.back().second, range.second);
    else out.push_back(range);
  }
  return out;
}

// A file is scanned in windows (WindowReader::step() bytes from each other; hs_scan also takes a 32-bit
// length) that overlap by this much, so that a match straddling a boundary is still seen exactly once: a
// match belongs to the window it starts in (the callbacks drop matches that start at or after accept_below).
// A tag is 4 bytes; a choice idiom at most 14.
constexpr uint64_t kOverlap = 16;

// count_prefilter's matches, one window after another (each counted in the window it starts in).
class PrefilterCount {
 public:
  PrefilterCount(hs_database_t* nearby, hs_scratch_t* scratch, const std::vector<uint32_t>& values,
                 const PrefilterPlaces* places, uint64_t size)
      : nearby_(nearby), scratch_(scratch), values_(values), places_(places),
        code_(places ? merged(places->code, size) : std::vector<std::pair<uint64_t, uint64_t>>{{0, size}}) {}

  // With places, the first match that counts ends the count (1): a hostile file can hold millions.
  bool done() const { return places_ && count_ > 0; }
  size_t count() const { return count_; }

  void add(ByteView window, uint64_t window_start, uint64_t accept_below) {
    if (done()) return;
    NearbyContext context{window_start, accept_below, places_};
    const hs_error_t status = hs_scan(nearby_, reinterpret_cast<const char*>(window.data()),
                                      static_cast<unsigned>(window.size()), 0, scratch_, on_nearby, &context);
    if (context.over_budget) budget::tick_now();  // over time: throws
    count_ += context.count;
    // (HS_SCAN_TERMINATED: stopped at the first that counts. Another error: the file is analysed.)
    if (places_ && status != HS_SUCCESS) count_ = std::max<size_t>(count_, 1);
    if (done()) return;
    // The choice idiom: in executable sections only (call-site analysis decodes nothing else), and only in
    // x86 or x64 code (an ARM64 image's analysis never reads x86 instructions).
    if (places_ && !places_->x86_code) return;
    const uint64_t window_end = window_start + window.size();
    for (const auto& [begin, end] : code_) {
      const uint64_t from = std::max(begin, window_start), to = std::min(end, accept_below);
      if (from >= to) continue;
      count_ += count_choice_idioms(window, from - window_start, to - window_start,
                                    std::min(end, window_end) - window_start, values_, places_ != nullptr);
      if (done()) return;
    }
  }

 private:
  hs_database_t* nearby_;
  hs_scratch_t* scratch_;
  const std::vector<uint32_t>& values_;
  const PrefilterPlaces* places_;
  std::vector<std::pair<uint64_t, uint64_t>> code_;  // where the choice idiom is looked for: merged
  size_t count_ = 0;
};

}  // namespace

const char* literal_encoding_name(LiteralEncoding encoding) {
  switch (encoding) {
    case LiteralEncoding::bytes: return "bytes";
    case LiteralEncoding::arm64_movz_low: return "movz";
    case LiteralEncoding::arm64_movk_high: return "movk";
  }
  return "?";
}

namespace {

// A Hyperscan database of 4-byte literals, with these ids.
Result<hs_database_t*> compile_literals(const std::vector<uint32_t>& values, const std::vector<unsigned>& ids) {
  std::vector<std::string> patterns;
  for (uint32_t value : values) patterns.push_back(bytes_pattern(value));
  std::vector<const char*> expressions;
  for (const std::string& pattern : patterns) expressions.push_back(pattern.c_str());
  // DOTALL for good measure (no pattern has a dot); no UTF-8 mode, so \xNN is one byte.
  std::vector<unsigned> flags(patterns.size(), HS_FLAG_DOTALL);
  hs_database_t* handle = nullptr;
  hs_compile_error_t* compile_error = nullptr;
  if (hs_compile_multi(expressions.data(), flags.data(), ids.data(), static_cast<unsigned>(patterns.size()),
                       HS_MODE_BLOCK, nullptr, &handle, &compile_error) != HS_SUCCESS) {
    std::string message = compile_error && compile_error->message ? compile_error->message : "unknown";
    hs_free_compile_error(compile_error);
    return Error{"cannot compile the tag patterns: " + message};
  }
  return handle;
}

// The tags' byte patterns: each tag plain and with the protected bit (ids: pattern_id).
Result<hs_database_t*> compile_patterns(const std::vector<Tag>& tags) {
  std::vector<uint32_t> values;
  std::vector<unsigned> ids;
  for (size_t i = 0; i < tags.size(); ++i) {
    values.push_back(tags[i].without_protected_bit().value);
    ids.push_back(pattern_id(i, v_bytes));
    values.push_back(tags[i].without_protected_bit().with_protected_bit().value);
    ids.push_back(pattern_id(i, v_bytes_protected));
  }
  return compile_literals(values, ids);
}

// The prefilter's nearby constants of every tag (one id: which tag does not matter).
Result<hs_database_t*> compile_nearby(const std::vector<Tag>& tags) {
  std::vector<uint32_t> values;
  for (const Tag& tag : tags) {
    const uint32_t plain = tag.without_protected_bit().value;
    for (uint32_t delta : nearby_deltas()) {
      values.push_back(plain + delta);
      values.push_back(plain - delta);
    }
  }
  return compile_literals(values, std::vector<unsigned>(values.size(), 0));
}

}  // namespace

// Up to this many tags, Hyperscan is the faster engine: it compiles them in milliseconds, and a database of
// a few patterns scans at several GB/s, where the table stays under 1 GB/s.
constexpr size_t kHyperscanAtMost = 256;

Result<LiteralMatcher> LiteralMatcher::build(const std::vector<Tag>& tags, bool with_prefilter, Engine engine) {
  if (tags.empty()) return Error{"no tags to match"};
  LiteralMatcher matcher;
  matcher.database_ = std::make_unique<Database>();
  Database& database = *matcher.database_;
  HalfIndex& halves = database.halves;
  std::vector<WordTable::Entry> table_entries;
  for (size_t i = 0; i < tags.size(); ++i) {
    const uint32_t plain = tags[i].without_protected_bit().value;
    const uint32_t guarded = tags[i].without_protected_bit().with_protected_bit().value;
    halves.add(halves.low, halves.low_seen, static_cast<uint16_t>(plain & 0xffff), i, false);
    halves.add(halves.high, halves.high_seen, static_cast<uint16_t>(plain >> 16), i, false);
    halves.add(halves.high, halves.high_seen, static_cast<uint16_t>(guarded >> 16), i, true);
    database.values.push_back(plain);
    database.values.push_back(guarded);
    table_entries.push_back(WordTable::Entry{plain, static_cast<uint32_t>(i), false});
    table_entries.push_back(WordTable::Entry{guarded, static_cast<uint32_t>(i), true});
  }
  std::sort(halves.low.begin(), halves.low.end());
  std::sort(halves.high.begin(), halves.high.end());
  std::sort(database.values.begin(), database.values.end());
  const bool hyperscan = with_prefilter || engine == Engine::hyperscan ||
                         (engine == Engine::fitting && tags.size() <= kHyperscanAtMost);
  if (hyperscan) {
    auto handle = compile_patterns(tags);
    if (!handle) return Error{handle.error()};
    database.handle = *handle;
  } else {
    database.words.emplace(std::move(table_entries));
  }
  if (with_prefilter) {
    auto nearby = compile_nearby(tags);
    if (!nearby) return Error{nearby.error()};
    database.nearby = *nearby;
  }
  matcher.tags_ = tags;
  matcher.with_prefilter_ = with_prefilter;
  return matcher;
}

LiteralMatcher::LiteralMatcher(LiteralMatcher&&) noexcept = default;
LiteralMatcher& LiteralMatcher::operator=(LiteralMatcher&&) noexcept = default;
LiteralMatcher::~LiteralMatcher() = default;

std::unique_ptr<LiteralMatcher::Scratch> LiteralMatcher::make_scratch() const {
  // One scratch serves both databases (hs_alloc_scratch grows it to fit the second).
  hs_scratch_t* scratch = nullptr;
  for (hs_database_t* database : {database_->handle, database_->nearby})
    if (database && hs_alloc_scratch(database, &scratch) != HS_SUCCESS) {
      hs_free_scratch(scratch);
      return nullptr;
    }
  return std::unique_ptr<Scratch>(new Scratch(scratch));
}

Result<std::vector<LiteralHit>> LiteralMatcher::scan(ByteView bytes, Scratch& scratch, bool arm64_words) const {
  WindowReader windows(bytes);
  auto scanned = scan(windows, scratch, arm64_words);
  if (!scanned) return Error{scanned.error()};
  return std::move(scanned->hits);
}

Result<LiteralMatcher::Scan> LiteralMatcher::scan(WindowReader& windows, Scratch& scratch, bool arm64_words,
                                                  const PrefilterPlaces* hint_places) const {
  auto* hs_scratch = static_cast<hs_scratch_t*>(scratch.handle_);
  Scan result;
  std::vector<LiteralHit>& hits = result.hits;  // the byte hits first; the word hits are merged in at the end
  std::vector<LiteralHit> word_hits;
  std::optional<PrefilterCount> prefilter;
  if (hint_places && database_->nearby)
    prefilter.emplace(database_->nearby, hs_scratch, database_->values, hint_places, windows.size());
  const uint64_t step = windows.step();
  for (uint64_t start = 0; start < windows.size(); start += step) {
    const ByteView window = windows.window(start, step + kOverlap);
    if (windows.failure()) return Error{*windows.failure()};
    const uint64_t accept_below = start + step;
    if (database_->words && !database_->words->scan(window, start, accept_below, hits)) {
      budget::tick_now();  // over time: throws; else it was memory
      budget::stop_for_memory();
    }
    if (database_->handle) {
      ScanContext context{&hits, start, accept_below};
      const hs_error_t status = hs_scan(database_->handle, reinterpret_cast<const char*>(window.data()),
                                        static_cast<unsigned>(window.size()), 0, hs_scratch, on_match, &context);
      if (context.over_budget) {
        budget::tick_now();  // over time: throws; else it was memory
        budget::stop_for_memory();
      }
      if (status != HS_SUCCESS) return Error{"literal scan failed (hyperscan error " + std::to_string(status) + ")"};
    }
    if (arm64_words) scan_arm64_halves(window, start, accept_below, database_->halves, word_hits);
    // The prefilter's look is wanted only while no byte hit is found.
    if (prefilter && hits.empty()) prefilter->add(window, start, accept_below);
  }
  if (prefilter && hits.empty()) result.prefilter_hint = prefilter->count() > 0;
  // Ordered by offset, then tag and encoding: no two hits are equal in that order (a word is one tag's
  // plain or protected value, a MOVZ or a MOVK), so sorting the byte hits and the word hits apart and
  // merging them gives the one order. The table and the word scan find theirs in that order already
  // (a sort of an index build's millions of hits was 4% of its literal pass).
  const auto before = [](const LiteralHit& a, const LiteralHit& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    if (a.tag_index != b.tag_index) return a.tag_index < b.tag_index;
    return a.encoding < b.encoding;
  };
  if (!std::is_sorted(hits.begin(), hits.end(), before)) std::sort(hits.begin(), hits.end(), before);
  if (!word_hits.empty()) {
    if (!std::is_sorted(word_hits.begin(), word_hits.end(), before)) std::sort(word_hits.begin(), word_hits.end(), before);
    const auto byte_hits = static_cast<std::ptrdiff_t>(hits.size());
    hits.insert(hits.end(), word_hits.begin(), word_hits.end());
    std::inplace_merge(hits.begin(), hits.begin() + byte_hits, hits.end(), before);
  }
  return result;
}

size_t LiteralMatcher::count_prefilter(ByteView bytes, Scratch& scratch, const PrefilterPlaces* places) const {
  if (!database_->nearby) return 0;
  WindowReader windows(bytes);
  PrefilterCount prefilter(database_->nearby, static_cast<hs_scratch_t*>(scratch.handle_), database_->values, places,
                           bytes.size());
  const uint64_t step = windows.step();
  for (uint64_t start = 0; start < bytes.size() && !prefilter.done(); start += step)
    prefilter.add(windows.window(start, step + kOverlap), start, start + step);
  return prefilter.done() ? 1 : prefilter.count();
}

}  // namespace tagwho
