// RVA <-> file offset translation. Only section raw data is file-backed here: the headers and the zero-filled
// tail of a section (beyond SizeOfRawData) have no file offset.
#include "pe/address_map.hpp"

#include <algorithm>

namespace tagwho::pe {
namespace {

// How many bytes of the section both exist in the file and are mapped.
uint32_t backed_size(const Section& section) { return std::min(section.raw_size, section.mapped_size()); }

}  // namespace

const Section* section_containing_rva(const std::vector<Section>& sections, uint32_t rva) {
  for (const Section& section : sections) {
    if (section.contains_rva(rva)) return &section;
  }
  return nullptr;
}

const Section* section_containing_offset(const std::vector<Section>& sections, uint64_t offset) {
  for (const Section& section : sections) {
    if (offset >= section.raw_offset && offset - section.raw_offset < section.raw_size) return &section;
  }
  return nullptr;
}

std::optional<uint64_t> rva_to_file_offset(const std::vector<Section>& sections, uint32_t rva) {
  const Section* section = section_containing_rva(sections, rva);
  if (section == nullptr) return std::nullopt;
  const uint32_t delta = rva - section->rva;
  if (delta >= backed_size(*section)) return std::nullopt;
  return uint64_t{section->raw_offset} + delta;
}

std::optional<uint32_t> file_offset_to_rva(const std::vector<Section>& sections, uint64_t offset) {
  const Section* section = section_containing_offset(sections, offset);
  if (section == nullptr) return std::nullopt;
  const uint64_t delta = offset - section->raw_offset;
  if (delta >= section->mapped_size()) return std::nullopt;  // raw padding past VirtualSize is not mapped
  return static_cast<uint32_t>(section->rva + delta);
}

ByteView bytes_at_rva(ByteView file, const std::vector<Section>& sections, uint32_t rva) {
  const Section* section = section_containing_rva(sections, rva);
  if (section == nullptr) return {};
  const uint32_t delta = rva - section->rva;
  const uint32_t backed = backed_size(*section);
  if (delta >= backed) return {};
  return file.clipped(uint64_t{section->raw_offset} + delta, backed - delta);
}

}  // namespace tagwho::pe
