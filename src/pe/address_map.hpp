// Private: RVA <-> file offset translation over a section list, usable before a PeImage exists.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/pe_image.hpp"

namespace tagwho::pe {

// First section whose mapped range [rva, rva + mapped_size) holds the address.
const Section* section_containing_rva(const std::vector<Section>& sections, uint32_t rva);
// First section whose raw data [raw_offset, raw_offset + raw_size) holds the offset.
const Section* section_containing_offset(const std::vector<Section>& sections, uint64_t offset);
// The file offset of a file-backed address (not in the zero-filled tail of a section, not in the headers).
std::optional<uint64_t> rva_to_file_offset(const std::vector<Section>& sections, uint32_t rva);
std::optional<uint32_t> file_offset_to_rva(const std::vector<Section>& sections, uint64_t offset);
// The file-backed bytes from rva to the end of its section's mapped raw data; empty when not file-backed.
ByteView bytes_at_rva(ByteView file, const std::vector<Section>& sections, uint32_t rva);

}  // namespace tagwho::pe
