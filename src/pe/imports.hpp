// Private: the import directory, read through ByteView with bounded work.
#pragma once
#include <string>
#include <vector>

#include "pe/pe_headers.hpp"

namespace tagwho::pe {

inline constexpr uint32_t kMaxImportDescriptors = 4096;
inline constexpr uint32_t kMaxImportThunks = 65536;  // over all modules

// One ImportSlot per imported function, in descriptor then thunk order. Structural damage (an unterminated
// or looping descriptor table, too many entries) is an Error; an unreadable function name is a warning.
Result<std::vector<ImportSlot>> read_imports(ByteView file, const PeHeaders& headers,
                                             std::vector<std::string>& warnings);

}  // namespace tagwho::pe
