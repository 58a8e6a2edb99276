// Our own validation of the PE headers. Nothing here trusts a field before checking it against the file size;
// every read goes through ByteView. The result is the only header data the rest of the PE code uses.
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string>

#include "pe/pe_headers.hpp"
#include "core/format.hpp"

namespace tagwho::pe {

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
      out += c;
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    }
  }
  return out;
}

namespace {

constexpr uint32_t kDosHeaderSize = 64;
constexpr uint32_t kLfanewOffset = 0x3c;
constexpr uint32_t kDirectoryEntrySize = 8;
constexpr uint64_t kRawSizeSlack = 0x10000;  // SizeOfRawData may exceed the image by at most one FileAlignment

Error truncated(const char* what, uint64_t end, uint64_t size) {
  return Error{std::string("truncated: ") + what + " ends beyond the file (" + hex(end) + " > " + hex(size) + ")"};
}

std::string section_label(const Section& section, size_t index) {
  return section.name.empty() ? "#" + std::to_string(index) : printable(section.name);
}

// MZ and e_lfanew; returns the offset of the PE signature.
Result<uint32_t> check_dos_header(ByteView file) {
  if (file.empty()) return Error{"empty file"};
  if (file.size() < 2 || file.data()[0] != 'M' || file.data()[1] != 'Z') {
    return Error{"not a PE file (no MZ signature)"};
  }
  if (file.size() < kDosHeaderSize) return truncated("DOS header", kDosHeaderSize, file.size());
  const uint32_t lfanew = *file.u32(kLfanewOffset);
  if (lfanew % 4 != 0) return Error{"e_lfanew " + hex(lfanew) + " is not 4-byte aligned"};
  if (!file.contains(lfanew, 4)) {
    return Error{"e_lfanew " + hex(lfanew) + " points beyond the end of the file (size " + hex(file.size()) + ")"};
  }
  return lfanew;
}

std::optional<Error> check_pe_signature(ByteView file, uint32_t pe_offset) {
  if (file.u32(pe_offset) != 0x00004550u) return Error{"not a PE file (no PE signature at " + hex(pe_offset) + ")"};
  return std::nullopt;
}

// IMAGE_FILE_HEADER: machine, section count, size of the optional header.
struct FileHeader {
  uint16_t machine = 0;
  uint16_t section_count = 0;
  uint16_t size_of_optional_header = 0;
};

Result<FileHeader> read_file_header(ByteView file, uint64_t offset) {
  if (!file.contains(offset, kFileHeaderSize)) return truncated("file header", offset + kFileHeaderSize, file.size());
  FileHeader header;
  header.machine = *file.u16(offset);
  header.section_count = *file.u16(offset + 2);
  header.size_of_optional_header = *file.u16(offset + 16);
  if (header.section_count == 0) return Error{"no sections"};
  if (header.section_count > kMaxSections) {
    return Error{"too many sections (" + std::to_string(header.section_count) + " > " +
                 std::to_string(kMaxSections) + ")"};
  }
  return header;
}

// IMAGE_OPTIONAL_HEADER32/64: magic, sizes, data directories. Fills headers; the section table offset follows.
std::optional<Error> read_optional_header(ByteView file, PeHeaders& headers) {
  const uint64_t base = headers.optional_header_offset;
  const auto magic = file.u16(base);
  if (!magic) return truncated("optional header", base + 2, file.size());
  if (*magic != kMagicPe32 && *magic != kMagicPe32Plus) {
    return Error{"unknown optional header magic " + hex(*magic) + " (expected 0x10b or 0x20b)"};
  }
  headers.magic = *magic;
  const uint32_t fixed = headers.optional_header_fixed_size();
  if (headers.size_of_optional_header < fixed) {
    return Error{"SizeOfOptionalHeader " + hex(headers.size_of_optional_header) + " is too small (at least " +
                 hex(fixed) + " needed)"};
  }
  if (!file.contains(base, fixed)) return truncated("optional header", base + fixed, file.size());

  headers.entry_rva = *file.u32(base + 16);
  headers.image_base = headers.is_64bit() ? *file.u64(base + 24) : *file.u32(base + 28);
  headers.size_of_image = *file.u32(base + 56);
  headers.declared_directory_count = *file.u32(base + fixed - 4);
  if (headers.size_of_image == 0 || headers.size_of_image > kMaxSizeOfImage) {
    return Error{"SizeOfImage " + hex(headers.size_of_image) + " is absurd (must be 1 byte to 1 GiB)"};
  }

  uint32_t directory_count = headers.declared_directory_count;
  if (directory_count > kMaxDataDirectories) {
    headers.warnings.push_back("NumberOfRvaAndSizes " + hex(directory_count) + " is above 16; only 16 are read");
    directory_count = kMaxDataDirectories;
  }
  const uint32_t needed = fixed + kDirectoryEntrySize * directory_count;
  if (headers.size_of_optional_header < needed) {
    return Error{"SizeOfOptionalHeader " + hex(headers.size_of_optional_header) + " is too small for " +
                 std::to_string(directory_count) + " data directories (" + hex(needed) + " needed)"};
  }
  if (!file.contains(base, needed)) return truncated("optional header", base + needed, file.size());
  for (uint32_t i = 0; i < directory_count; ++i) {
    headers.directories[i] = {*file.u32(base + fixed + kDirectoryEntrySize * i),
                              *file.u32(base + fixed + kDirectoryEntrySize * i + 4)};
  }
  return std::nullopt;
}

Section read_section_header(ByteView table_entry) {
  Section section;
  const auto name = table_entry.clipped(0, 8);
  size_t length = 0;
  while (length < name.size() && name.data()[length] != 0) ++length;
  section.name.assign(reinterpret_cast<const char*>(name.data()), length);
  section.virtual_size = *table_entry.u32(8);
  section.rva = *table_entry.u32(12);
  section.raw_size = *table_entry.u32(16);
  section.raw_offset = *table_entry.u32(20);
  section.characteristics = *table_entry.u32(36);
  return section;
}

// The section must fit the image; its raw data must be plausible, and is clipped to the file with a warning.
std::optional<Error> check_section(Section& section, size_t index, ByteView file, PeHeaders& headers) {
  const std::string label = section_label(section, index);
  const uint64_t virtual_end = uint64_t{section.rva} + section.mapped_size();
  if (virtual_end > headers.size_of_image) {
    return Error{"section " + label + " extends beyond SizeOfImage (" + hex(virtual_end) + " > " +
                 hex(headers.size_of_image) + ")"};
  }
  if (section.raw_size == 0) return std::nullopt;
  if (section.raw_size > uint64_t{headers.size_of_image} + kRawSizeSlack) {
    return Error{"section " + label + " SizeOfRawData " + hex(section.raw_size) + " is absurd (SizeOfImage " +
                 hex(headers.size_of_image) + ")"};
  }
  const uint64_t raw_end = uint64_t{section.raw_offset} + section.raw_size;
  if (raw_end > kMaxFileOffset) {
    return Error{"section " + label + " raw data ends at " + hex(raw_end) + ", beyond any plausible file"};
  }
  if (raw_end > file.size()) {
    headers.warnings.push_back("section " + label + " raw data runs past the end of the file (" + hex(raw_end) +
                               " > " + hex(file.size()) + "); clipped");
    section.raw_size = static_cast<uint32_t>(file.clipped(section.raw_offset, section.raw_size).size());
  }
  return std::nullopt;
}

std::optional<Error> read_section_table(ByteView file, uint16_t count, PeHeaders& headers) {
  const uint64_t end = headers.section_table_offset + uint64_t{kSectionHeaderSize} * count;
  if (end > file.size()) return truncated("section table", end, file.size());
  headers.sections.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    Section section =
        read_section_header(*file.sub(headers.section_table_offset + kSectionHeaderSize * i, kSectionHeaderSize));
    if (auto error = check_section(section, i, file, headers)) return error;
    headers.sections.push_back(std::move(section));
  }
  return std::nullopt;
}

// The directories we read must lie inside the image. A bad import directory is fatal (imports are what the
// analysis needs); a bad resource or exception directory is dropped with a warning.
std::optional<Error> check_directories(PeHeaders& headers) {
  static constexpr struct {
    DirectoryIndex index;
    const char* name;
    bool fatal;
  } kChecked[] = {{kImportDirectory, "import", true},
                  {kResourceDirectory, "resource", false},
                  {kExceptionDirectory, "exception", false}};
  for (const auto& checked : kChecked) {
    DataDirectory& directory = headers.directories[checked.index];
    if (!directory.present()) continue;
    const uint64_t end = uint64_t{directory.rva} + directory.size;
    if (end <= headers.size_of_image) continue;
    std::string message = std::string(checked.name) + " directory " + hex(directory.rva) + "+" +
                          hex(directory.size) + " lies outside the image (SizeOfImage " +
                          hex(headers.size_of_image) + ")";
    if (checked.fatal) return Error{message};
    headers.warnings.push_back(message + "; ignored");
    directory = {};
  }
  return std::nullopt;
}

}  // namespace

Result<PeHeaders> parse_headers(ByteView file) {
  auto pe_offset = check_dos_header(file);
  if (!pe_offset) return Error{pe_offset.error()};
  if (auto error = check_pe_signature(file, *pe_offset)) return *error;
  auto file_header = read_file_header(file, uint64_t{*pe_offset} + 4);
  if (!file_header) return Error{file_header.error()};

  PeHeaders headers;
  headers.pe_offset = *pe_offset;
  headers.machine = file_header->machine;
  headers.size_of_optional_header = file_header->size_of_optional_header;
  headers.optional_header_offset = uint64_t{*pe_offset} + 4 + kFileHeaderSize;
  if (auto error = read_optional_header(file, headers)) return *error;
  headers.section_table_offset = headers.optional_header_offset + headers.size_of_optional_header;
  if (auto error = read_section_table(file, file_header->section_count, headers)) return *error;
  if (auto error = check_directories(headers)) return *error;
  if (headers.entry_rva >= headers.size_of_image) {
    headers.warnings.push_back("entry point " + hex(headers.entry_rva) + " lies outside the image");
  }
  return headers;
}

}  // namespace tagwho::pe
