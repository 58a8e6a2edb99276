// Private: VS_VERSIONINFO, parsed by our own code.
#pragma once
#include <string>
#include <vector>

#include "pe/pe_headers.hpp"

namespace tagwho::pe {

// Parses a VS_VERSIONINFO resource (fixed file info, first StringFileInfo values). Never fails: damage
// leaves fields empty and adds a warning.
VersionInfo parse_version_info(ByteView resource, std::vector<std::string>& warnings);

// The version info of the image; empty when it has no version resource.
VersionInfo read_version_info(ByteView file, const PeHeaders& headers, std::vector<std::string>& warnings);

}  // namespace tagwho::pe
