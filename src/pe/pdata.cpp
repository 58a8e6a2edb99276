// The exception directory, read through ByteView (LIEF 0.9's has_exceptions() is always false).
//   x64 / IA-64: 12-byte entries {BeginAddress, EndAddress, UnwindInfo}.
//   ARM64: 8-byte entries {BeginAddress, UnwindData}; when (UnwindData & 3) != 0 the entry is packed and
//   FunctionLength = ((UnwindData >> 2) & 0x7ff) * 4, otherwise UnwindData is the RVA of .xdata whose first
//   word holds FunctionLength / 4 in bits 0-17.
#include "pe/pdata.hpp"

#include <algorithm>
#include <optional>

#include "pe/address_map.hpp"

namespace tagwho::pe {
namespace {

constexpr uint16_t kMachineX64 = 0x8664;
constexpr uint16_t kMachineIa64 = 0x200;
constexpr uint16_t kMachineArm64 = 0xaa64;

uint32_t entry_size(uint16_t machine) {
  switch (machine) {
    case kMachineX64:
    case kMachineIa64: return 12;
    case kMachineArm64: return 8;
    default: return 0;
  }
}

std::optional<RuntimeFunction> read_x64_entry(ByteView entry) {
  return RuntimeFunction{*entry.u32(0), *entry.u32(4)};
}

std::optional<RuntimeFunction> read_arm64_entry(ByteView entry, ByteView file, const PeHeaders& headers) {
  const uint32_t begin = *entry.u32(0);
  const uint32_t unwind = *entry.u32(4);
  uint64_t length = 0;
  if ((unwind & 3) != 0) {
    length = uint64_t{(unwind >> 2) & 0x7ff} * 4;
  } else {
    const auto offset = rva_to_file_offset(headers.sections, unwind);
    const auto word = offset ? file.u32(*offset) : std::nullopt;
    if (!word) return std::nullopt;
    length = uint64_t{*word & 0x3ffff} * 4;
  }
  const uint64_t end = uint64_t{begin} + length;
  if (end > UINT32_MAX) return std::nullopt;
  return RuntimeFunction{begin, static_cast<uint32_t>(end)};
}

bool inside_image(const RuntimeFunction& function, const PeHeaders& headers) {
  return function.begin_rva != 0 && function.begin_rva < function.end_rva &&
         function.end_rva <= headers.size_of_image;
}

}  // namespace

std::vector<RuntimeFunction> read_function_table(ByteView file, const PeHeaders& headers,
                                                 std::vector<std::string>& warnings) {
  const DataDirectory& directory = headers.directories[kExceptionDirectory];
  if (!directory.present()) return {};
  const uint32_t size = entry_size(headers.machine);
  if (size == 0) {
    warnings.push_back("exception directory ignored for machine " + hex(headers.machine));
    return {};
  }
  const ByteView table = bytes_at_rva(file, headers.sections, directory.rva).clipped(0, directory.size);
  if (table.size() < directory.size) {
    warnings.push_back("exception directory is truncated (" + hex(table.size()) + " of " + hex(directory.size) +
                       " bytes in the file)");
  }
  size_t count = table.size() / size;
  if (count > kMaxRuntimeFunctions) {
    warnings.push_back("exception directory has " + std::to_string(count) + " entries; only the first " +
                       std::to_string(kMaxRuntimeFunctions) + " are read");
    count = kMaxRuntimeFunctions;
  }

  std::vector<RuntimeFunction> functions;
  functions.reserve(count);
  size_t dropped = 0;
  for (size_t i = 0; i < count; ++i) {
    const ByteView entry = *table.sub(i * size, size);
    if (entry.u64(0) == 0 && (size == 8 || entry.u32(8) == 0)) continue;  // zero padding
    const auto function = size == 8 ? read_arm64_entry(entry, file, headers) : read_x64_entry(entry);
    if (!function || !inside_image(*function, headers)) {
      ++dropped;
      continue;
    }
    functions.push_back(*function);
  }
  if (dropped != 0) {
    warnings.push_back("dropped " + std::to_string(dropped) + " exception directory entries outside the image");
  }
  std::sort(functions.begin(), functions.end(), [](const RuntimeFunction& a, const RuntimeFunction& b) {
    return a.begin_rva != b.begin_rva ? a.begin_rva < b.begin_rva : a.end_rva < b.end_rva;
  });
  functions.erase(std::unique(functions.begin(), functions.end(),
                              [](const RuntimeFunction& a, const RuntimeFunction& b) {
                                return a.begin_rva == b.begin_rva && a.end_rva == b.end_rva;
                              }),
                  functions.end());
  return functions;
}

}  // namespace tagwho::pe
