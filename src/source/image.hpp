// Internal: disk images read with The Sleuth Kit (read-only; never mounted, never written).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "source/tree.hpp"

namespace tagwho::source {

// A disk image by its signature (E01, VHD, VHDX, VMDK, MBR/GPT or a boot sector) or, failing that, its
// extension (.raw .dd .img .001 .e01 .vhd .vhdx .vmdk).
bool looks_like_image(const std::string& path);

// Opens the image and returns a tree per NTFS volume holding Windows/System32, partition order. A
// partition is named in display paths ("disk.img:p2:/...") when there are several such volumes.
Result<std::vector<std::shared_ptr<Tree>>> open_image(const std::string& path);

std::vector<std::string> tsk_formats();

}  // namespace tagwho::source
