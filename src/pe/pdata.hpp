// Private: the exception directory (.pdata) of x64, IA-64 and ARM64 images.
#pragma once
#include <string>
#include <vector>

#include "pe/pe_headers.hpp"

namespace tagwho::pe {

inline constexpr size_t kMaxRuntimeFunctions = 1u << 20;

// Function bounds sorted by begin_rva; entries outside the image are dropped with a warning.
// Empty for machines without a function table (x86).
std::vector<RuntimeFunction> read_function_table(ByteView file, const PeHeaders& headers,
                                                 std::vector<std::string>& warnings);

}  // namespace tagwho::pe
