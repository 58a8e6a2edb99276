// All requested tags matched as raw little-endian bytes in one Hyperscan pass over a file.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/result.hpp"
#include "tagwho/tag.hpp"

namespace tagwho {

struct LiteralHit {
  size_t tag_index = 0;      // index into the tags the matcher was built for
  uint64_t offset = 0;       // start of the 4 bytes in the file
  bool protected_bit = false;  // matched the tag with the PROTECTED_POOL bit set
};

class LiteralMatcher {
 public:
  // Compiles one database for the tags and their PROTECTED_POOL variants.
  static Result<LiteralMatcher> build(const std::vector<Tag>& tags);
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
  Result<std::vector<LiteralHit>> scan(ByteView bytes, Scratch& scratch) const;

  const std::vector<Tag>& tags() const { return tags_; }

 private:
  LiteralMatcher() = default;
  struct Database;
  std::unique_ptr<Database> database_;
  std::vector<Tag> tags_;
};

}  // namespace tagwho
