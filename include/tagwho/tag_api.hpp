// The kernel APIs that take a pool tag, and where the tag sits among their arguments.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace tagwho {

enum class ApiKind { allocate, free, lookaside, other };

// How one argument is passed, so analysers can find it: its 1-based C position, and for x86 stdcall its
// 0-based 4-byte stack slot (64-bit arguments such as ExAllocatePool2's POOL_FLAGS take two slots).
struct ArgPosition {
  int index = 0;     // 1-based C argument position; 0 = absent
  int x86_slot = -1; // 0-based dword slot on the x86 stack at the call
  bool present() const { return index > 0; }
};

struct TagApi {
  std::string_view name;    // "ExAllocatePoolWithTag"
  std::string_view module;  // "ntoskrnl.exe"
  ApiKind kind = ApiKind::other;
  ArgPosition tag;
  ArgPosition pool_type;    // POOL_TYPE, or POOL_FLAGS for ExAllocatePool2/3
  ArgPosition size;         // NumberOfBytes
  bool pool_flags = false;  // pool_type holds 64-bit POOL_FLAGS (ExAllocatePool2/3) rather than POOL_TYPE
};

std::span<const TagApi> builtin_tag_apis();
// Looks an import up by name (exact, case-sensitive, as written in the import table).
const TagApi* find_tag_api(std::string_view import_name);

}  // namespace tagwho
