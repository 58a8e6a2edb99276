// All requested tags matched in one pass over a file: as raw little-endian bytes (one Hyperscan pass), and
// as the ARM64 instruction words that build a 32-bit constant from two halves (MOVZ Rd, #lo16 and MOVK Rd,
// #hi16, LSL #16, W or X destination, any register; a scan of the 4-byte-aligned words), so that ARM64 code
// where the 4 bytes never appear is found too.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/result.hpp"
#include "tagwho/tag.hpp"

namespace tagwho {

// What matched: the tag's 4 bytes, or one ARM64 instruction carrying one half of it.
enum class LiteralEncoding : uint8_t {
  bytes,            // the 4 bytes of the tag, little-endian
  arm64_movz_low,   // MOVZ Wd/Xd, #(tag & 0xffff)            (the low half, LSL #0)
  arm64_movk_high,  // MOVK Wd/Xd, #(tag >> 16), LSL #16       (the high half)
};
// "bytes", "movz", "movk"
const char* literal_encoding_name(LiteralEncoding encoding);

struct LiteralHit {
  size_t tag_index = 0;      // index into the tags the matcher was built for
  uint64_t offset = 0;       // start of the 4 bytes in the file (the instruction word for ARM64 encodings)
  bool protected_bit = false;  // matched the tag with the PROTECTED_POOL bit set (only the high half has it)
  LiteralEncoding encoding = LiteralEncoding::bytes;
  uint8_t reg = 0;           // ARM64 encodings: the destination register number (0-31)
  bool wide = false;         // ARM64 encodings: X destination (else W)
};

// Where in a PE file the search prefilter's matches can matter (file offset ranges of its sections' raw
// data). Call-site analysis decodes executable sections only, so an instruction idiom or an immediate
// counts there; elsewhere only a constant the code can load from memory: inside a section, and naturally
// aligned (compilers align 4-byte globals). Headers, the overlay and misaligned data bytes never count.
struct PrefilterPlaces {
  std::vector<std::pair<uint64_t, uint64_t>> code;  // [begin, end): executable sections' raw data
  std::vector<std::pair<uint64_t, uint64_t>> data;  // [begin, end): the other sections' raw data
  bool x86_code = true;  // the code is x86 or x64: the choice idiom (x86 instructions) can count in it
};

class LiteralMatcher {
 public:
  // Compiles one database for the tags and their PROTECTED_POOL variants, as bytes and as ARM64 MOVZ/MOVK
  // words (classification decides later whether an instruction hit means anything for the file at hand),
  // and the prefilter's patterns (see count_prefilter).
  // with_prefilter: also the prefilter's patterns (see count_prefilter); a search needs them, the index does not.
  // engine: which engine matches the tags' bytes. fitting: Hyperscan with the prefilter or for up to 256
  // tags, else a hash table of the 4-byte values (no compile step: Hyperscan's compile of an index build's
  // tens of thousands of tags took seconds). hyperscan: Hyperscan always; table: the table always (the
  // tests hold the two to the same hits).
  enum class Engine { fitting, hyperscan, table };
  static Result<LiteralMatcher> build(const std::vector<Tag>& tags, bool with_prefilter = false,
                                      Engine engine = Engine::fitting);
  LiteralMatcher(LiteralMatcher&&) noexcept;
  LiteralMatcher& operator=(LiteralMatcher&&) noexcept;
  ~LiteralMatcher();

  // Hyperscan's per-thread working memory. The database is shared read-only; every thread scanning at
  // the same time needs its own Scratch.
  class Scratch {
   public:
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

   private:
    friend class LiteralMatcher;
    explicit Scratch(void* handle) : handle_(handle) {}
    void* handle_;  // hs_scratch_t*
  };
  // nullptr when Hyperscan cannot allocate it.
  std::unique_ptr<Scratch> make_scratch() const;
  // Every hit in the bytes, ordered by offset.
  // arm64_words false: the MOVZ/MOVK words are not looked for (they are evidence in ARM64 images only).
  Result<std::vector<LiteralHit>> scan(ByteView bytes, Scratch& scratch, bool arm64_words = true) const;

  struct Scan {
    std::vector<LiteralHit> hits;  // as scan() finds them
    // With hint places: count_prefilter(bytes, scratch, places) > 0, decided in the same pass. nullopt when no
    // places were given or a hit of a tag's bytes was found (the search prefilter asks only without one).
    std::optional<bool> prefilter_hint;
  };
  // scan() over the windows of a file (one pass over its bytes), and the prefilter's second look with it.
  // An error when the scan failed or a window could not be read.
  Result<Scan> scan(WindowReader& windows, Scratch& scratch, bool arm64_words,
                    const PrefilterPlaces* hint_places = nullptr) const;

  // The places a requested tag may be computed from without its bytes, which are never evidence: a nearby
  // constant (the tag +/- 1, 3, 5, 9 or 2^k: a branchless choice between two constants, SETcc + LEA/SHL/ADD
  // or ARM64 CINC) and the x86 idiom of a branchless choice between two arbitrary constants (AND reg, imm32
  // then ADD/SUB reg, imm32). The search prefilter asks for them only for a file whose hits do not already
  // decide that its code is analysed (scanner.cpp, may_hold_call_evidence). places: when given, only
  // matches where they can matter are counted (PrefilterPlaces), and counting stops at the first (0 or 1);
  // else every match is counted. 0 for a matcher built without the prefilter.
  size_t count_prefilter(ByteView bytes, Scratch& scratch, const PrefilterPlaces* places = nullptr) const;

  const std::vector<Tag>& tags() const { return tags_; }
  bool has_prefilter() const { return with_prefilter_; }  // built with_prefilter

 private:
  LiteralMatcher() = default;
  struct Database;
  std::unique_ptr<Database> database_;
  std::vector<Tag> tags_;
  bool with_prefilter_ = false;
};

}  // namespace tagwho
