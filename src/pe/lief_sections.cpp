// LIEF 0.9 sees only what we validated: a copy of the file's headers (DOS header through the section table),
// with the COFF symbol table fields and every data directory zeroed. That keeps LIEF's work bounded whatever
// the input: it copies no section data (raw ranges all lie past the end of the copy), parses no symbol table
// (NumberOfSymbols can claim 4 billion entries), and walks none of the directories where 0.9 reads through
// unchecked pointers (imports), copies resource data once per leaf (a memory bomb with shared leaves) or
// parses PKCS#7. Imports, the exception directory and version info are read by our own code.
#include "pe/lief_sections.hpp"

#include <LIEF/PE.hpp>
#include <LIEF/exception.hpp>
#include <LIEF/logging.hpp>

#include <cstring>
#include <mutex>

namespace tagwho::pe {
namespace {

constexpr uint64_t kSymbolTableFields = 8;  // PointerToSymbolTable, NumberOfSymbols at +8 in IMAGE_FILE_HEADER
constexpr uint64_t kMaxHeaderCopy = 1u << 20;  // e_lfanew can be anywhere in the file: copy at most 1 MiB

// LIEF 0.9 logs through a global easylogging++ instance that is not thread-safe: silence it once and
// serialise parses (each is a few microseconds on a header-only copy).
std::mutex& lief_mutex() {
  static std::mutex mutex;
  static std::once_flag silenced;
  std::call_once(silenced, [] { LIEF::Logger::disable(); });
  return mutex;
}

std::vector<uint8_t> sanitized_header_copy(ByteView file, const PeHeaders& headers) {
  std::vector<uint8_t> copy(file.data(), file.data() + headers.headers_end());
  const uint64_t file_header = uint64_t{headers.pe_offset} + 4;
  std::memset(copy.data() + file_header + 8, 0, kSymbolTableFields);
  const uint64_t directories = headers.optional_header_offset + headers.optional_header_fixed_size();
  std::memset(copy.data() + directories, 0, 8 * kMaxDataDirectories);
  return copy;
}

Section from_lief(const LIEF::PE::Section& lief) {
  Section section;
  section.name = lief.name().substr(0, 8);
  section.rva = static_cast<uint32_t>(lief.virtual_address());
  section.virtual_size = lief.virtual_size();
  section.raw_offset = lief.pointerto_raw_data();
  section.raw_size = lief.sizeof_raw_data();
  section.characteristics = lief.characteristics();
  return section;
}

// LIEF must describe the same table we validated (raw sizes aside: ours are clipped to the file).
bool same_table(const std::vector<Section>& lief, const std::vector<Section>& ours) {
  if (lief.size() != ours.size()) return false;
  for (size_t i = 0; i < lief.size(); ++i) {
    if (lief[i].name != ours[i].name || lief[i].rva != ours[i].rva || lief[i].virtual_size != ours[i].virtual_size ||
        lief[i].raw_offset != ours[i].raw_offset || lief[i].raw_size < ours[i].raw_size ||
        lief[i].characteristics != ours[i].characteristics) {
      return false;
    }
  }
  return true;
}

std::string lief_failure(const char* what) {
  return "LIEF failed on the headers (" + printable(what) + "); using our own section table";
}

}  // namespace

std::optional<std::vector<Section>> read_sections_with_lief(ByteView file, const PeHeaders& headers,
                                                            std::vector<std::string>& warnings) {
  // LIEF 0.9 always reads 16 data directories right after the fixed optional header, and the section table
  // at SizeOfOptionalHeader: anything else would make it read the section table as directories.
  if (!headers.canonical_optional_header() || headers.headers_end() > kMaxHeaderCopy) return std::nullopt;
  std::vector<Section> sections;
  try {
    const std::vector<uint8_t> copy = sanitized_header_copy(file, headers);
    std::lock_guard<std::mutex> lock(lief_mutex());
    const std::unique_ptr<LIEF::PE::Binary> binary = LIEF::PE::Parser::parse(copy, "");
    if (!binary) {
      warnings.push_back("LIEF could not parse the headers; using our own section table");
      return std::nullopt;
    }
    for (const LIEF::PE::Section& section : binary->sections()) sections.push_back(from_lief(section));
  } catch (const LIEF::exception& e) {
    warnings.push_back(lief_failure(e.what()));
    return std::nullopt;
  } catch (const std::exception& e) {
    warnings.push_back(lief_failure(e.what()));
    return std::nullopt;
  }
  if (!same_table(sections, headers.sections)) {
    warnings.push_back("LIEF's section table differs from the headers; using our own");
    return std::nullopt;
  }
  for (size_t i = 0; i < sections.size(); ++i) sections[i].raw_size = headers.sections[i].raw_size;
  return sections;
}

}  // namespace tagwho::pe
