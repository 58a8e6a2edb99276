// Private: the PE headers as validated by our own code, before anything else (LIEF included) looks at the file.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/format.hpp"
#include "tagwho/byte_view.hpp"
#include "tagwho/pe_image.hpp"
#include "tagwho/result.hpp"

namespace tagwho::pe {

// Limits that keep the work on any input bounded.
inline constexpr uint32_t kMaxSections = 96;
inline constexpr uint32_t kMaxDataDirectories = 16;
inline constexpr uint64_t kMaxSizeOfImage = 1ull << 30;  // 1 GiB
inline constexpr uint64_t kMaxFileOffset = 1ull << 31;   // no loadable PE file is 2 GiB or more

inline constexpr uint16_t kMagicPe32 = 0x10b;
inline constexpr uint16_t kMagicPe32Plus = 0x20b;
inline constexpr uint32_t kFileHeaderSize = 20;
inline constexpr uint32_t kSectionHeaderSize = 40;

enum DirectoryIndex : uint32_t { kExportDirectory = 0, kImportDirectory = 1, kResourceDirectory = 2,
                                 kExceptionDirectory = 3 };

struct DataDirectory {
  uint32_t rva = 0;
  uint32_t size = 0;
  bool present() const { return rva != 0 && size != 0; }
};

struct PeHeaders {
  uint32_t pe_offset = 0;               // e_lfanew
  uint16_t machine = 0;
  uint16_t magic = 0;                   // 0x10b or 0x20b
  uint16_t size_of_optional_header = 0;
  uint32_t declared_directory_count = 0;  // NumberOfRvaAndSizes as written
  uint64_t optional_header_offset = 0;
  uint64_t section_table_offset = 0;
  uint64_t image_base = 0;
  uint32_t entry_rva = 0;
  uint32_t size_of_image = 0;
  std::array<DataDirectory, kMaxDataDirectories> directories{};  // missing ones stay zero
  std::vector<Section> sections;        // file order, raw_size clipped to the file
  std::vector<std::string> warnings;

  bool is_64bit() const { return magic == kMagicPe32Plus; }
  uint64_t headers_end() const { return section_table_offset + uint64_t{kSectionHeaderSize} * sections.size(); }
  // The fixed part of the optional header, before the data directories.
  uint32_t optional_header_fixed_size() const { return is_64bit() ? 112 : 96; }
  bool canonical_optional_header() const {
    return declared_directory_count == kMaxDataDirectories &&
           size_of_optional_header == optional_header_fixed_size() + 8 * kMaxDataDirectories;
  }
};

// Validates the DOS header, PE signature, file and optional headers, section table and the data directories
// we use. Returns a one-line Error for anything that cannot be trusted; recoverable oddities become warnings.
Result<PeHeaders> parse_headers(ByteView file);

// Text from the file made safe for a one-line message: bytes outside printable ASCII become \xNN.
std::string printable(std::string_view text);

}  // namespace tagwho::pe
