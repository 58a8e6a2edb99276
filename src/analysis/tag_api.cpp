// The tag-taking API table (see ../shared/formats/api_tag_positions.tsv for the sources of each position).
// x86_slot is the 0-based dword slot on the stdcall stack: it equals index-1 except after 64-bit arguments.
#include "tagwho/tag_api.hpp"

#include <array>

namespace tagwho {
namespace {

constexpr ArgPosition arg(int index) { return ArgPosition{index, index - 1}; }
constexpr ArgPosition arg_slot(int index, int slot) { return ArgPosition{index, slot}; }
constexpr ArgPosition none() { return ArgPosition{}; }

constexpr std::string_view kNt = "ntoskrnl.exe";
constexpr std::string_view kNdis = "ndis.sys";
constexpr std::string_view kFlt = "fltmgr.sys";
constexpr std::string_view kVideo = "videoprt.sys";

// Object-reference tags (ObReferenceObjectWithTag...) are not pool tags and are deliberately absent.
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
};

}  // namespace

std::span<const TagApi> builtin_tag_apis() { return kApis; }

const TagApi* find_tag_api(std::string_view import_name) {
  for (const TagApi& api : kApis)
    if (api.name == import_name) return &api;
  return nullptr;
}

}  // namespace tagwho
