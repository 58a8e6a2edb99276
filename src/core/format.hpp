// Small text formatting shared by messages and reports.
#pragma once
#include <cstdint>
#include <string>

namespace tagwho {

// "0x1a2b": addresses, offsets and values in messages and output.
std::string hex(uint64_t value);

}  // namespace tagwho
