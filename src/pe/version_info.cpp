// VS_VERSIONINFO through ByteView. We do not use LIEF's ResourcesManager::version(): in 0.9 it dereferences
// dynamic_cast<ResourceData*> of the first language node without a null check (a crash when that node is a
// directory) and lets std::stoul's std::invalid_argument escape on a malformed StringTable key.
//
// Every block is { u16 wLength; u16 wValueLength; u16 wType; WCHAR szKey[]; pad to 4; Value; pad to 4;
// Children[] }, with offsets aligned relative to the resource start.
#include "pe/version_info.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string_view>

#include "pe/resources.hpp"

namespace tagwho::pe {
namespace {

constexpr uint32_t kFixedFileInfoSignature = 0xfeef04bdu;
constexpr size_t kMaxKeyLength = 64;
constexpr size_t kMaxValueLength = 1024;
constexpr size_t kMaxChildren = 256;

uint64_t align4(uint64_t value) { return (value + 3) & ~uint64_t{3}; }

struct Block {
  uint64_t value_offset = 0;     // absolute, in the resource
  uint16_t value_length = 0;     // bytes for binary values, characters for text
  uint16_t type = 0;             // 1 text, 0 binary
  std::u16string key;
  uint64_t children_offset = 0;  // absolute
  uint64_t end = 0;              // absolute, clipped to the parent
};

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xe0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
}

std::string to_utf8(std::u16string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char32_t c = text[i];
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.size() && text[i + 1] >= 0xdc00 && text[i + 1] < 0xe000) {
      c = 0x10000 + ((c - 0xd800) << 10) + (text[i + 1] - 0xdc00);
      ++i;
    } else if (c >= 0xd800 && c < 0xe000) {
      c = 0xfffd;  // unpaired surrogate
    }
    append_utf8(out, c);
  }
  return out;
}

// UTF-16LE characters from offset up to a NUL, the limit or max_length; nullopt when no NUL within bounds
// and strict is set.
std::optional<std::u16string> read_utf16(ByteView data, uint64_t offset, uint64_t limit, size_t max_length,
                                         bool strict) {
  std::u16string text;
  for (uint64_t at = offset; at + 2 <= limit; at += 2) {
    const auto unit = data.u16(at);
    if (!unit || *unit == 0) return text;
    if (text.size() == max_length) break;
    text += static_cast<char16_t>(*unit);
  }
  if (strict) return std::nullopt;
  return text;
}

std::optional<Block> read_block(ByteView data, uint64_t offset, uint64_t parent_end) {
  const auto length = data.u16(offset);
  const auto value_length = data.u16(offset + 2);
  const auto type = data.u16(offset + 4);
  if (!length || !value_length || !type || *length < 6) return std::nullopt;
  Block block;
  block.end = std::min<uint64_t>({offset + *length, parent_end, data.size()});
  block.value_length = *value_length;
  block.type = *type;
  auto key = read_utf16(data, offset + 6, block.end, kMaxKeyLength, true);
  if (!key) return std::nullopt;
  block.key = std::move(*key);
  block.value_offset = align4(offset + 6 + 2 * (block.key.size() + 1));
  const uint64_t value_bytes = block.type == 1 ? uint64_t{block.value_length} * 2 : block.value_length;
  block.children_offset = align4(block.value_offset + value_bytes);
  return block;
}

// Calls visit(child) for each child block, in order, with a bounded count.
template <typename Visit>
void for_each_child(ByteView data, const Block& parent, Visit visit) {
  uint64_t offset = parent.children_offset;
  for (size_t i = 0; i < kMaxChildren && offset + 6 <= parent.end; ++i) {
    const auto child = read_block(data, offset, parent.end);
    if (!child) return;
    visit(*child);
    offset = align4(child->end);  // end >= offset + 6: always progresses
  }
}

std::string fixed_file_version(ByteView data, const Block& root) {
  if (root.value_length < 52 || data.u32(root.value_offset) != kFixedFileInfoSignature) return {};
  const auto ms = data.u32(root.value_offset + 8);
  const auto ls = data.u32(root.value_offset + 12);
  if (!ms || !ls) return {};
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%" PRIu32 ".%" PRIu32 ".%" PRIu32 ".%" PRIu32, *ms >> 16, *ms & 0xffff,
                *ls >> 16, *ls & 0xffff);
  return buffer;
}

// Fills the still-empty fields from one StringTable's String children.
void read_string_table(ByteView data, const Block& table, VersionInfo& info, std::string& string_file_version) {
  for_each_child(data, table, [&](const Block& string) {
    std::string* field = nullptr;
    if (string.key == u"CompanyName") field = &info.company;
    else if (string.key == u"FileDescription") field = &info.description;
    else if (string.key == u"FileVersion") field = &string_file_version;
    else if (string.key == u"ProductName") field = &info.product_name;
    else if (string.key == u"OriginalFilename") field = &info.original_filename;
    if (field == nullptr || !field->empty()) return;
    // wValueLength is unreliable (bytes in some files, characters in others): read up to the NUL.
    const auto value = read_utf16(data, string.value_offset, string.end, kMaxValueLength, false);
    if (value) *field = to_utf8(*value);
  });
}

}  // namespace

VersionInfo parse_version_info(ByteView resource, std::vector<std::string>& warnings) {
  VersionInfo info;
  const auto root = read_block(resource, 0, resource.size());
  if (!root || root->key != u"VS_VERSION_INFO") {
    warnings.push_back("version resource is malformed (no VS_VERSION_INFO block)");
    return info;
  }
  std::string string_file_version;
  for_each_child(resource, *root, [&](const Block& child) {
    if (child.key != u"StringFileInfo") return;
    for_each_child(resource, child, [&](const Block& table) {
      read_string_table(resource, table, info, string_file_version);
    });
  });
  info.file_version = fixed_file_version(resource, *root);
  if (info.file_version.empty()) info.file_version = string_file_version;
  return info;
}

VersionInfo read_version_info(ByteView file, const PeHeaders& headers, std::vector<std::string>& warnings) {
  const auto resource = find_resource(file, headers, kResourceTypeVersion, warnings);
  if (!resource) return {};
  return parse_version_info(*resource, warnings);
}

}  // namespace tagwho::pe
