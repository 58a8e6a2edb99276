// The model of one PE file that analysis needs: machine, sections, imports with their IAT slots, the
// function table (.pdata) and version info. Headers are validated by our own code before LIEF sees the file.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/result.hpp"

namespace tagwho {

enum class Machine { x86, x64, arm64, ia64, other };
const char* machine_name(Machine machine);  // "x86", "x64", "arm64", "ia64", "other"

struct Section {
  std::string name;             // ".text", "PAGE", "INIT"... (up to 8 characters)
  uint32_t rva = 0;             // VirtualAddress
  uint32_t virtual_size = 0;    // as mapped (0 in the header means raw_size)
  uint32_t raw_offset = 0;      // PointerToRawData
  uint32_t raw_size = 0;        // SizeOfRawData, clipped to the file
  uint32_t characteristics = 0;

  bool executable() const { return characteristics & 0x20000000u; }  // IMAGE_SCN_MEM_EXECUTE
  bool contains_code() const { return characteristics & 0x00000020u; }  // IMAGE_SCN_CNT_CODE
  bool writable() const { return characteristics & 0x80000000u; }
  bool is_code() const { return executable() || contains_code(); }
  bool contains_rva(uint32_t address) const { return address >= rva && address - rva < mapped_size(); }
  uint32_t mapped_size() const { return virtual_size ? virtual_size : raw_size; }
};

// One imported function: the IAT slot the loader fills with its address.
struct ImportSlot {
  std::string module;             // "ntoskrnl.exe" as written in the file
  std::string name;               // empty when imported by ordinal
  std::optional<uint16_t> ordinal;
  uint32_t iat_rva = 0;           // RVA of the IAT slot (4 bytes on x86, 8 on 64-bit)
};

// One entry of the exception directory (x64, ARM64): a function's bounds.
struct RuntimeFunction {
  uint32_t begin_rva = 0;
  uint32_t end_rva = 0;  // exclusive; for ARM64 packed entries, computed from the function length
};

struct VersionInfo {
  std::string company;
  std::string description;
  std::string file_version;     // "10.0.19041.1" from the fixed file info, or the string table
  std::string product_name;
  std::string original_filename;
};

class PeImage {
 public:
  // Validates the headers, then parses with LIEF. The view must outlive the image.
  // Errors are one line: "not a PE file (no MZ signature)", "section .text raw data beyond end of file"...
  static Result<PeImage> load(ByteView file);

  // Cheap content check used to pick PE files out of a directory: MZ, e_lfanew in bounds, "PE\0\0".
  static bool looks_like_pe(ByteView file);

  Machine machine() const { return machine_; }
  uint16_t machine_code() const { return machine_code_; }  // raw IMAGE_FILE_HEADER.Machine
  bool is_64bit() const { return is_64bit_; }
  uint64_t image_base() const { return image_base_; }
  uint32_t size_of_image() const { return size_of_image_; }
  uint32_t entry_rva() const { return entry_rva_; }
  const std::vector<Section>& sections() const { return sections_; }
  const std::vector<ImportSlot>& imports() const { return imports_; }
  const std::vector<RuntimeFunction>& functions() const { return functions_; }  // sorted by begin_rva
  const VersionInfo& version() const { return version_; }
  // Problems that did not stop the load (bad .pdata entries, unreadable version resource...).
  const std::vector<std::string>& warnings() const { return warnings_; }
  ByteView file() const { return file_; }

  const Section* section_at_rva(uint32_t rva) const;
  const Section* section_at_offset(uint64_t file_offset) const;
  std::optional<uint64_t> rva_to_offset(uint32_t rva) const;
  std::optional<uint32_t> offset_to_rva(uint64_t file_offset) const;
  // File-backed bytes of the section (its raw data, clipped to the file).
  ByteView section_bytes(const Section& section) const;
  // The function-table entry containing rva, if any.
  const RuntimeFunction* function_at(uint32_t rva) const;

 private:
  PeImage() = default;
  friend class PeImageBuilder;

  ByteView file_;
  Machine machine_ = Machine::other;
  uint16_t machine_code_ = 0;
  bool is_64bit_ = false;
  uint64_t image_base_ = 0;
  uint32_t size_of_image_ = 0;
  uint32_t entry_rva_ = 0;
  std::vector<Section> sections_;
  std::vector<ImportSlot> imports_;
  std::vector<RuntimeFunction> functions_;
  VersionInfo version_;
  std::vector<std::string> warnings_;
};

}  // namespace tagwho
