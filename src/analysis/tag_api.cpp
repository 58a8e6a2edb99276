// The tag-taking API table (see ../shared/formats/api_tag_positions.tsv for the sources of each position).
// x86_slot is the 0-based dword slot on the stdcall stack: it equals index-1 except after 64-bit arguments.
#include "tagwho/tag_api.hpp"

#include <array>

namespace tagwho {
namespace {

constexpr ArgPosition arg(int index) { return ArgPosition{index, index - 1}; }
constexpr ArgPosition arg_slot(int index, int slot) { return ArgPosition{index, slot}; }
constexpr ArgPosition none() { return ArgPosition{}; }
// x86 __fastcall: the first two arguments in ecx (reg 0) and edx (reg 1).
constexpr ArgPosition fast_reg(int index) { return ArgPosition{index, -1, index - 1}; }

// ExAllocatePool / ExAllocatePoolWithQuota call ExAllocatePoolWithTag / ...QuotaTag with 'None' (bytes N,o,n,e).
constexpr uint32_t kNone = 0x656e6f4e;

constexpr std::string_view kNt = "ntoskrnl.exe";
constexpr std::string_view kNdis = "ndis.sys";
constexpr std::string_view kFlt = "fltmgr.sys";
constexpr std::string_view kVideo = "videoprt.sys";
constexpr std::string_view kWdf = "wdf01000.sys";  // reached through the WdfFunctions table, not imported

constexpr TagKind kPool = TagKind::pool;
constexpr TagKind kObj = TagKind::objref;

constexpr std::array kApis = {
    //      name                                 module kind                tag          pool_type   size        flags
    TagApi{"ExAllocatePoolWithTag", kNt, ApiKind::allocate, arg(3), arg(1), arg(2), false},
    TagApi{"ExAllocatePoolWithQuotaTag", kNt, ApiKind::allocate, arg(3), arg(1), arg(2), false},
    TagApi{"ExAllocatePoolWithTagPriority", kNt, ApiKind::allocate, arg(3), arg(1), arg(2), false},
    // POOL_FLAGS is a ULONG64: on x86 it takes slots 0-1, so NumberOfBytes is slot 2 and Tag slot 3.
    TagApi{"ExAllocatePool2", kNt, ApiKind::allocate, arg_slot(3, 3), arg_slot(1, 0), arg_slot(2, 2), true},
    TagApi{"ExAllocatePool3", kNt, ApiKind::allocate, arg_slot(3, 3), arg_slot(1, 0), arg_slot(2, 2), true},
    TagApi{"ExFreePoolWithTag", kNt, ApiKind::free, arg(2), none(), none(), false},
    TagApi{"ExFreePool2", kNt, ApiKind::free, arg(2), none(), none(), false},
    TagApi{"ExInitializeNPagedLookasideList", kNt, ApiKind::lookaside, arg(6), none(), arg(5), false},
    TagApi{"ExInitializePagedLookasideList", kNt, ApiKind::lookaside, arg(6), none(), arg(5), false},
    TagApi{"ExInitializeLookasideListEx", kNt, ApiKind::lookaside, arg(7), arg(4), arg(6), false},
    TagApi{"ExCreatePool", kNt, ApiKind::other, arg(2), none(), none(), false},
    TagApi{"IoInitializeRemoveLockEx", kNt, ApiKind::other, arg(2), none(), none(), false},
    TagApi{"NdisAllocateMemoryWithTag", kNdis, ApiKind::allocate, arg(3), none(), arg(2), false},
    TagApi{"NdisAllocateMemoryWithTagPriority", kNdis, ApiKind::allocate, arg(3), none(), arg(2), false},
    TagApi{"NdisFreeMemoryWithTag", kNdis, ApiKind::free, arg(2), none(), none(), false},
    TagApi{"NdisFreeMemoryWithTagPriority", kNdis, ApiKind::free, arg(3), none(), none(), false},
    TagApi{"FltAllocatePoolAlignedWithTag", kFlt, ApiKind::allocate, arg(4), arg(2), arg(3), false},
    TagApi{"FltFreePoolAlignedWithTag", kFlt, ApiKind::free, arg(3), none(), none(), false},
    TagApi{"VideoPortAllocatePool", kVideo, ApiKind::allocate, arg(4), arg(2), arg(3), false},
    // Untagged allocators: the kernel passes 'None' on to the tagged variant; no tag argument to recover.
    TagApi{"ExAllocatePool", kNt, ApiKind::allocate, none(), arg(1), arg(2), false, kPool, kNone},
    TagApi{"ExAllocatePoolWithQuota", kNt, ApiKind::allocate, none(), arg(1), arg(2), false, kPool, kNone},
    // Object-reference tags (TagKind::objref): never pool tags. ObReferenceObjectWithTag and
    // ObDereferenceObjectWithTag are macros for the Obf* exports, which are __fastcall on x86 (ecx, edx).
    TagApi{"ObReferenceObjectByHandleWithTag", kNt, ApiKind::other, arg(5), none(), none(), false, kObj},
    TagApi{"ObReferenceObjectByPointerWithTag", kNt, ApiKind::other, arg(5), none(), none(), false, kObj},
    TagApi{"ObfReferenceObjectWithTag", kNt, ApiKind::other, fast_reg(2), none(), none(), false, kObj},
    TagApi{"ObfDereferenceObjectWithTag", kNt, ApiKind::other, fast_reg(2), none(), none(), false, kObj},
    TagApi{"ObDereferenceObjectDeferDeleteWithTag", kNt, ApiKind::other, arg(2), none(), none(), false, kObj},
};

// KMDF (wdffuncenum.h: WdfMemoryCreateTableIndex = 192, WdfLookasideListCreateTableIndex = 198). The API's
// own tag positions are 3 and 5; the call through the table prepends DriverGlobals, so 4 and 6 here.
constexpr std::array kWdfApis = {
    TagApi{"WdfMemoryCreate", kWdf, ApiKind::allocate, arg(4), arg(3), arg(5), false},
    TagApi{"WdfLookasideListCreate", kWdf, ApiKind::lookaside, arg(6), arg(4), arg(3), false},
};
constexpr std::array kWdfTable = {
    WdfTableApi{192, &kWdfApis[0]},
    WdfTableApi{198, &kWdfApis[1]},
};

}  // namespace

const char* tag_kind_name(TagKind kind) { return kind == TagKind::objref ? "objref" : "pool"; }

std::span<const TagApi> builtin_tag_apis() { return kApis; }

std::span<const WdfTableApi> kmdf_table_apis() { return kWdfTable; }

bool starts_tag_analysis(std::string_view import_name) {
  return import_name == kWdfBindImport || find_tag_api(import_name) != nullptr;
}

const TagApi* find_tag_api(std::string_view import_name) {
  for (const TagApi& api : kApis)
    if (api.name == import_name) return &api;
  for (const TagApi& api : kWdfApis)  // never imported: found by name for evidence read back (api field)
    if (api.name == import_name) return &api;
  return nullptr;
}

}  // namespace tagwho
