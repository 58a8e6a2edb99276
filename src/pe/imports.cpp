// The import directory, walked by our own code. LIEF 0.9 is not used for imports: its parser walks the
// descriptor and thunk arrays with raw pointers (no bounds check after the first element), maps RVAs
// differently from the loader (VirtualSize only, rounded offsets, "RVA = offset" fallback) and silently drops
// modules whose name is shorter than 4 characters.
#include "pe/imports.hpp"

#include <algorithm>
#include <optional>

#include "pe/address_map.hpp"

namespace tagwho::pe {
namespace {

constexpr uint32_t kDescriptorSize = 20;
constexpr size_t kMaxModuleNameLength = 256;
constexpr size_t kMaxFunctionNameLength = 4096;
constexpr size_t kMaxNameBytes = 16u << 20;  // module + function names kept over all slots

struct Descriptor {
  uint32_t lookup_table = 0;  // OriginalFirstThunk (0 in some old linkers' output: use the IAT)
  uint32_t name = 0;
  uint32_t address_table = 0;  // FirstThunk
  // The loader stops at the first descriptor without a name or an IAT.
  bool terminator() const { return name == 0 || address_table == 0; }
};

// Walks thunk arrays and descriptors with a shared budget.
class ImportReader {
 public:
  ImportReader(ByteView file, const PeHeaders& headers, std::vector<std::string>& warnings)
      : file_(file), headers_(headers), warnings_(warnings), thunk_size_(headers.is_64bit() ? 8 : 4) {}

  Result<std::vector<ImportSlot>> read(uint32_t directory_rva);

 private:
  std::optional<std::string_view> string_at(uint32_t rva, size_t max_length) const {
    return bytes_at_rva(file_, headers_.sections, rva).c_string(0, max_length);
  }
  std::optional<Error> read_module(size_t index, const Descriptor& descriptor);
  std::optional<uint64_t> thunk(ByteView table, uint64_t index) const {
    if (thunk_size_ == 8) return table.u64(index * 8);
    auto value = table.u32(index * 4);
    if (!value) return std::nullopt;
    return *value;
  }
  bool is_ordinal(uint64_t value) const {
    return thunk_size_ == 8 ? (value >> 63) != 0 : (value & 0x80000000u) != 0;
  }

  ByteView file_;
  const PeHeaders& headers_;
  std::vector<std::string>& warnings_;
  const uint32_t thunk_size_;
  uint32_t thunks_seen_ = 0;
  size_t name_bytes_ = 0;
  std::vector<ImportSlot> slots_;
};

std::optional<Error> ImportReader::read_module(size_t index, const Descriptor& descriptor) {
  const auto module = string_at(descriptor.name, kMaxModuleNameLength);
  if (!module) {
    return Error{"import descriptor " + std::to_string(index) + ": module name at " + hex(descriptor.name) +
                 " is unreadable"};
  }
  const uint32_t source_rva = descriptor.lookup_table != 0 ? descriptor.lookup_table : descriptor.address_table;
  const ByteView table = bytes_at_rva(file_, headers_.sections, source_rva);
  size_t unreadable_names = 0;
  for (uint64_t i = 0;; ++i) {
    const auto value = thunk(table, i);
    if (!value) {
      return Error{"imports from " + printable(*module) + ": lookup table at " + hex(source_rva) +
                   " is not terminated inside its section"};
    }
    if (*value == 0) break;
    if (++thunks_seen_ > kMaxImportThunks) {
      return Error{"too many imported functions (> " + std::to_string(kMaxImportThunks) + ")"};
    }
    const uint64_t slot_rva = descriptor.address_table + i * thunk_size_;
    if (slot_rva + thunk_size_ > headers_.size_of_image) {
      return Error{"imports from " + printable(*module) + ": IAT slot " + hex(slot_rva) +
                   " lies outside the image"};
    }
    ImportSlot slot;
    slot.module = std::string(*module);
    slot.iat_rva = static_cast<uint32_t>(slot_rva);
    if (is_ordinal(*value)) {
      slot.ordinal = static_cast<uint16_t>(*value & 0xffff);
    } else {
      // Hint/name entry: a 2-byte hint, then the NUL-terminated name.
      const auto name = *value > 0x7fffffffu ? std::nullopt
                                             : string_at(static_cast<uint32_t>(*value) + 2, kMaxFunctionNameLength);
      if (!name || name->empty()) {
        ++unreadable_names;
        continue;
      }
      slot.name = std::string(*name);
    }
    name_bytes_ += slot.module.size() + slot.name.size();
    if (name_bytes_ > kMaxNameBytes) return Error{"imported names take more than 16 MiB"};
    slots_.push_back(std::move(slot));
  }
  if (unreadable_names != 0) {
    warnings_.push_back("imports from " + printable(*module) + ": " + std::to_string(unreadable_names) +
                        " entries with unreadable names skipped");
  }
  return std::nullopt;
}

Result<std::vector<ImportSlot>> ImportReader::read(uint32_t directory_rva) {
  const ByteView table = bytes_at_rva(file_, headers_.sections, directory_rva);
  if (table.empty()) return Error{"import directory " + hex(directory_rva) + " is not backed by file data"};
  std::vector<uint32_t> seen_address_tables;
  for (size_t i = 0;; ++i) {
    const auto entry = table.sub(i * kDescriptorSize, kDescriptorSize);
    if (!entry) {
      return Error{"import descriptor table at " + hex(directory_rva) + " is not terminated inside its section"};
    }
    const Descriptor descriptor{*entry->u32(0), *entry->u32(12), *entry->u32(16)};
    if (descriptor.terminator()) break;
    if (i >= kMaxImportDescriptors) {
      return Error{"too many import descriptors (> " + std::to_string(kMaxImportDescriptors) + ")"};
    }
    // Two descriptors sharing an IAT would make the same slots mean two functions: a loop or a forgery.
    if (std::find(seen_address_tables.begin(), seen_address_tables.end(), descriptor.address_table) !=
        seen_address_tables.end()) {
      return Error{"import descriptor " + std::to_string(i) + " repeats IAT " + hex(descriptor.address_table) +
                   " (loop in the import directory)"};
    }
    seen_address_tables.push_back(descriptor.address_table);
    if (auto error = read_module(i, descriptor)) return *error;
  }
  return std::move(slots_);
}

}  // namespace

Result<std::vector<ImportSlot>> read_imports(ByteView file, const PeHeaders& headers,
                                             std::vector<std::string>& warnings) {
  const DataDirectory& directory = headers.directories[kImportDirectory];
  if (!directory.present()) return std::vector<ImportSlot>{};
  return ImportReader(file, headers, warnings).read(directory.rva);
}

}  // namespace tagwho::pe
