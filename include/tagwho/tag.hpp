// A pool tag: the 32-bit value drivers pass to ExAllocatePoolWithTag, shown the way poolmon shows it.
#pragma once
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "tagwho/result.hpp"

namespace tagwho {

struct Tag {
  // The kernel sets this bit on tags of PROTECTED_POOL allocations; poolmon shows the tag without it.
  static constexpr uint32_t kProtectedBit = 0x80000000u;

  uint32_t value = 0;  // little-endian: 'Leak' is 0x6b61654c

  // Parses user text: 1-4 printable characters (padded with spaces: "Cc" means "Cc  "), "0xXXXXXXXX", or
  // "\xNN" escapes (mixable with printable characters). Anything else is an error naming the problem.
  static Result<Tag> parse(std::string_view text);

  // Printable bytes as is, others as \xNN; always 4 bytes' worth ("Cc  " keeps its spaces).
  std::string display() const;
  // "0x6b61654c"
  std::string hex() const;
  Tag without_protected_bit() const { return Tag{value & ~kProtectedBit}; }
  Tag with_protected_bit() const { return Tag{value | kProtectedBit}; }

  // True when all four bytes are printable ASCII (0x20..0x7e), as most real tags are.
  bool looks_printable() const;

  auto operator<=>(const Tag&) const = default;
};

}  // namespace tagwho
