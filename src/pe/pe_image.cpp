// PeImage::load: our header validation first, then the readers (imports, .pdata, version info) through
// ByteView, and LIEF for the section table. Also the address lookups and looks_like_pe.
#include "tagwho/pe_image.hpp"

#include <algorithm>

#include "pe/address_map.hpp"
#include "pe/imports.hpp"
#include "pe/lief_sections.hpp"
#include "pe/pdata.hpp"
#include "pe/pe_headers.hpp"
#include "pe/version_info.hpp"

namespace tagwho {

namespace {

constexpr size_t kMaxWarnings = 64;

Machine machine_from_code(uint16_t code) {
  switch (code) {
    case 0x14c: return Machine::x86;
    case 0x8664: return Machine::x64;
    case 0xaa64: return Machine::arm64;
    case 0x200: return Machine::ia64;
    default: return Machine::other;
  }
}

}  // namespace

// Assembles a PeImage from the validated headers and the readers' results.
class PeImageBuilder {
 public:
  static Result<PeImage> build(ByteView file) {
    auto headers = pe::parse_headers(file);
    if (!headers) return Error{headers.error()};
    std::vector<std::string> warnings = std::move(headers->warnings);
    auto imports = pe::read_imports(file, *headers, warnings);
    if (!imports) return Error{imports.error()};

    PeImage image;
    image.file_ = file;
    image.machine_code_ = headers->machine;
    image.machine_ = machine_from_code(headers->machine);
    image.is_64bit_ = headers->is_64bit();
    image.image_base_ = headers->image_base;
    image.size_of_image_ = headers->size_of_image;
    image.entry_rva_ = headers->entry_rva;
    auto lief_sections = pe::read_sections_with_lief(file, *headers, warnings);
    image.sections_ = lief_sections ? std::move(*lief_sections) : headers->sections;
    image.imports_ = std::move(*imports);
    image.functions_ = pe::read_function_table(file, *headers, warnings);
    image.version_ = pe::read_version_info(file, *headers, warnings);
    if (warnings.size() > kMaxWarnings) {
      const size_t more = warnings.size() - kMaxWarnings;
      warnings.resize(kMaxWarnings);
      warnings.push_back(std::to_string(more) + " more warnings");
    }
    image.warnings_ = std::move(warnings);
    return image;
  }
};

const char* machine_name(Machine machine) {
  switch (machine) {
    case Machine::x86: return "x86";
    case Machine::x64: return "x64";
    case Machine::arm64: return "arm64";
    case Machine::ia64: return "ia64";
    case Machine::other: break;
  }
  return "other";
}

Result<PeImage> PeImage::load(ByteView file) { return PeImageBuilder::build(file); }

bool PeImage::looks_like_pe(ByteView file) {
  if (file.u16(0) != uint16_t{0x5a4d}) return false;  // "MZ"
  const auto pe_offset = file.u32(0x3c);
  return pe_offset && file.u32(*pe_offset) == uint32_t{0x00004550};  // "PE\0\0"
}

const Section* PeImage::section_at_rva(uint32_t rva) const { return pe::section_containing_rva(sections_, rva); }

const Section* PeImage::section_at_offset(uint64_t file_offset) const {
  return pe::section_containing_offset(sections_, file_offset);
}

std::optional<uint64_t> PeImage::rva_to_offset(uint32_t rva) const { return pe::rva_to_file_offset(sections_, rva); }

std::optional<uint32_t> PeImage::offset_to_rva(uint64_t file_offset) const {
  return pe::file_offset_to_rva(sections_, file_offset);
}

ByteView PeImage::section_bytes(const Section& section) const {
  return file_.clipped(section.raw_offset, section.raw_size);
}

const RuntimeFunction* PeImage::function_at(uint32_t rva) const {
  auto next = std::upper_bound(functions_.begin(), functions_.end(), rva,
                               [](uint32_t value, const RuntimeFunction& f) { return value < f.begin_rva; });
  if (next == functions_.begin()) return nullptr;
  const RuntimeFunction& candidate = *std::prev(next);
  return rva < candidate.end_rva ? &candidate : nullptr;
}

}  // namespace tagwho
