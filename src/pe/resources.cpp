// The resource directory: a three-level tree (type, name, language) of IMAGE_RESOURCE_DIRECTORY tables whose
// offsets are relative to the directory's start. We walk exactly three levels, so no loop is possible, and
// scan a bounded number of entries per table.
#include "pe/resources.hpp"

#include <algorithm>

#include "pe/address_map.hpp"

namespace tagwho::pe {
namespace {

constexpr uint32_t kTableHeaderSize = 16;
constexpr uint32_t kEntrySize = 8;
constexpr uint32_t kSubdirectoryFlag = 0x80000000u;
constexpr uint32_t kMaxEntriesScanned = 4096;
constexpr uint32_t kMaxResourceSize = 1u << 20;

struct Entry {
  uint32_t id = 0;      // name offset when the high bit is set
  uint32_t target = 0;  // subdirectory (high bit) or data entry offset
  bool subdirectory() const { return (target & kSubdirectoryFlag) != 0; }
  uint32_t offset() const { return target & ~kSubdirectoryFlag; }
};

// The first entry of the table at `offset` accepted by `match`; nullopt when none or unreadable.
template <typename Match>
std::optional<Entry> find_entry(ByteView tree, uint32_t offset, Match match) {
  const auto named = tree.u16(uint64_t{offset} + 12);
  const auto numbered = tree.u16(uint64_t{offset} + 14);
  if (!named || !numbered) return std::nullopt;
  const uint32_t count = std::min<uint32_t>(uint32_t{*named} + *numbered, kMaxEntriesScanned);
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t at = uint64_t{offset} + kTableHeaderSize + uint64_t{kEntrySize} * i;
    const auto id = tree.u32(at);
    const auto target = tree.u32(at + 4);
    if (!id || !target) return std::nullopt;
    const Entry entry{*id, *target};
    if (match(entry)) return entry;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ByteView> find_resource(ByteView file, const PeHeaders& headers, uint32_t type,
                                      std::vector<std::string>& warnings) {
  const DataDirectory& directory = headers.directories[kResourceDirectory];
  if (!directory.present()) return std::nullopt;
  const ByteView tree = bytes_at_rva(file, headers.sections, directory.rva);
  const auto by_type = find_entry(tree, 0, [type](const Entry& e) { return e.id == type; });
  if (!by_type) return std::nullopt;
  const auto is_directory = [](const Entry& e) { return e.subdirectory(); };
  const auto is_data = [](const Entry& e) { return !e.subdirectory(); };
  const auto by_name = by_type->subdirectory() ? find_entry(tree, by_type->offset(), is_directory) : std::nullopt;
  const auto by_language = by_name ? find_entry(tree, by_name->offset(), is_data) : std::nullopt;
  const auto data_rva = by_language ? tree.u32(by_language->offset()) : std::nullopt;
  const auto data_size = by_language ? tree.u32(uint64_t{by_language->offset()} + 4) : std::nullopt;
  if (!data_rva || !data_size) {
    warnings.push_back("resource directory: type " + std::to_string(type) + " entry is malformed");
    return std::nullopt;
  }
  const ByteView data = bytes_at_rva(file, headers.sections, *data_rva).clipped(0, *data_size);
  if (data.size() < std::min(*data_size, kMaxResourceSize)) {
    warnings.push_back("resource directory: type " + std::to_string(type) + " data at " + hex(*data_rva) +
                       " is truncated (" + hex(data.size()) + " of " + hex(*data_size) + " bytes)");
  }
  return data.clipped(0, kMaxResourceSize);
}

}  // namespace tagwho::pe
