#include "tagwho/literal_matcher.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <limits>

namespace tagwho {

struct LiteralMatcher::Database {
  hs_database_t* handle = nullptr;
  ~Database() { hs_free_database(handle); }
};

LiteralMatcher::Scratch::~Scratch() { hs_free_scratch(static_cast<hs_scratch_t*>(handle_)); }

namespace {

// Pattern ids encode (tag index, protected variant) as 2*index + protected.
unsigned pattern_id(size_t tag_index, bool protected_bit) {
  return static_cast<unsigned>(tag_index * 2 + (protected_bit ? 1 : 0));
}

std::string little_endian_bytes(uint32_t value) {
  std::string bytes(4, '\0');
  for (int i = 0; i < 4; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>(value >> (8 * i));
  return bytes;
}

struct ScanContext {
  std::vector<LiteralHit>* hits;
  uint64_t chunk_start;
  uint64_t accept_below;  // hits starting at or after this offset belong to the next chunk
};

int on_match(unsigned int id, unsigned long long /*from*/, unsigned long long to, unsigned int /*flags*/,
             void* context_pointer) {
  auto* context = static_cast<ScanContext*>(context_pointer);
  // Hyperscan reports the end of the match; every pattern is exactly four bytes long.
  uint64_t start = context->chunk_start + to - 4;
  if (start < context->accept_below) context->hits->push_back(LiteralHit{id / 2, start, (id & 1) != 0});
  return 0;
}

}  // namespace

Result<LiteralMatcher> LiteralMatcher::build(const std::vector<Tag>& tags) {
  if (tags.empty()) return Error{"no tags to match"};
  std::vector<std::string> patterns;
  std::vector<unsigned> ids;
  for (size_t i = 0; i < tags.size(); ++i) {
    Tag plain = tags[i].without_protected_bit();
    patterns.push_back(little_endian_bytes(plain.value));
    ids.push_back(pattern_id(i, false));
    patterns.push_back(little_endian_bytes(plain.with_protected_bit().value));
    ids.push_back(pattern_id(i, true));
  }
  std::vector<const char*> expressions;
  std::vector<size_t> lengths;
  std::vector<unsigned> flags(patterns.size(), 0);
  for (const std::string& pattern : patterns) {
    expressions.push_back(pattern.data());
    lengths.push_back(pattern.size());
  }
  hs_database_t* handle = nullptr;
  hs_compile_error_t* compile_error = nullptr;
  if (hs_compile_lit_multi(expressions.data(), flags.data(), ids.data(), lengths.data(),
                           static_cast<unsigned>(patterns.size()), HS_MODE_BLOCK, nullptr, &handle,
                           &compile_error) != HS_SUCCESS) {
    std::string message = compile_error && compile_error->message ? compile_error->message : "unknown";
    hs_free_compile_error(compile_error);
    return Error{"cannot compile the tag patterns: " + message};
  }
  LiteralMatcher matcher;
  matcher.database_ = std::make_unique<Database>();
  matcher.database_->handle = handle;
  matcher.tags_ = tags;
  return matcher;
}

LiteralMatcher::LiteralMatcher(LiteralMatcher&&) noexcept = default;
LiteralMatcher& LiteralMatcher::operator=(LiteralMatcher&&) noexcept = default;
LiteralMatcher::~LiteralMatcher() = default;

std::unique_ptr<LiteralMatcher::Scratch> LiteralMatcher::make_scratch() const {
  hs_scratch_t* scratch = nullptr;
  if (hs_alloc_scratch(database_->handle, &scratch) != HS_SUCCESS) return nullptr;
  return std::unique_ptr<Scratch>(new Scratch(scratch));
}

Result<std::vector<LiteralHit>> LiteralMatcher::scan(ByteView bytes, Scratch& scratch) const {
  std::vector<LiteralHit> hits;
  // hs_scan takes a 32-bit length: scan files of 4 GB and more in chunks that overlap by three bytes, so
  // a tag straddling a boundary is still seen exactly once.
  constexpr uint64_t kChunk = 1ull << 30;
  for (uint64_t start = 0; start < bytes.size(); start += kChunk) {
    ByteView chunk = bytes.clipped(start, kChunk + 3);
    ScanContext context{&hits, start, start + kChunk};
    hs_error_t status = hs_scan(database_->handle, reinterpret_cast<const char*>(chunk.data()),
                                static_cast<unsigned>(chunk.size()), 0, static_cast<hs_scratch_t*>(scratch.handle_), on_match, &context);
    if (status != HS_SUCCESS) return Error{"literal scan failed (hyperscan error " + std::to_string(status) + ")"};
  }
  std::sort(hits.begin(), hits.end(), [](const LiteralHit& a, const LiteralHit& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.tag_index < b.tag_index;
  });
  return hits;
}

}  // namespace tagwho
