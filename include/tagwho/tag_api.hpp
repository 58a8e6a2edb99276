// The kernel APIs that take a pool tag, and where the tag sits among their arguments.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace tagwho {

enum class ApiKind { allocate, free, lookaside, other };

// What the tag argument is: a pool tag, or an object-reference tag (Ob*WithTag: the tag the object manager
// records with a reference when reference tracing is on). Object-reference tags are never pool tags: they are
// reported on their own (Evidence::tag_kind, DriverReport::objref_findings) and never in pool-tag findings.
enum class TagKind : uint8_t { pool, objref };
const char* tag_kind_name(TagKind kind);  // "pool", "objref"

// How one argument is passed, so analysers can find it: its 1-based C position, and for x86 stdcall its
// 0-based 4-byte stack slot (64-bit arguments such as ExAllocatePool2's POOL_FLAGS take two slots).
struct ArgPosition {
  int index = 0;     // 1-based C argument position; 0 = absent
  int x86_slot = -1; // 0-based dword slot on the x86 stack at the call
  int x86_reg = -1;  // x86 __fastcall register arguments: 0 = ecx, 1 = edx (x86_slot unused then)
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
  TagKind tag_kind = TagKind::pool;
  // APIs without a tag argument whose allocations the kernel tags anyway (ExAllocatePool: 'None'); 0 = none.
  uint32_t implicit_tag = 0;
};

std::span<const TagApi> builtin_tag_apis();
// Looks an import up by name (exact, case-sensitive, as written in the import table).
const TagApi* find_tag_api(std::string_view import_name);

// KMDF: the functions reached through the WdfFunctions table of a driver bound by WdfVersionBind (WDFLDR.SYS),
// with the tag position of the actual call (DriverGlobals prepended).
struct WdfTableApi {
  uint32_t index = 0;   // WdfXxxTableIndex (wdffuncenum.h)
  const TagApi* api = nullptr;
};
std::span<const WdfTableApi> kmdf_table_apis();
// KMDF drivers import WdfVersionBind (WDFLDR.SYS), which fills their WdfFunctions table.
constexpr std::string_view kWdfBindImport = "WdfVersionBind";

// Whether an import makes call-site analysis worthwhile: a tag-taking API, or WdfVersionBind (KMDF).
bool starts_tag_analysis(std::string_view import_name);

}  // namespace tagwho
