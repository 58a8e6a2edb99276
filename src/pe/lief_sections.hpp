// Private: the section table as LIEF 0.9 reads it, after our own validation.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "pe/pe_headers.hpp"

namespace tagwho::pe {

// The sections LIEF parses from the validated headers (raw sizes clipped to the file as in headers.sections),
// or nullopt when LIEF is not used for this file (non-standard optional header layout), fails, throws or
// disagrees with our own table (each of the last three with a warning).
std::optional<std::vector<Section>> read_sections_with_lief(ByteView file, const PeHeaders& headers,
                                                            std::vector<std::string>& warnings);

}  // namespace tagwho::pe
