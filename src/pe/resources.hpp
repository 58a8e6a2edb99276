// Private: finding one resource's data in the resource directory tree.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "pe/pe_headers.hpp"

namespace tagwho::pe {

inline constexpr uint32_t kResourceTypeVersion = 16;  // RT_VERSION

// The data of the first resource of the given type (first name, first language), clipped to the file;
// nullopt when absent or unreadable (with a warning in the latter case).
std::optional<ByteView> find_resource(ByteView file, const PeHeaders& headers, uint32_t type,
                                      std::vector<std::string>& warnings);

}  // namespace tagwho::pe
