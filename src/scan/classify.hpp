// Turns raw literal hits into evidence by where they lie in the file.
#pragma once
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/evidence.hpp"
#include "tagwho/literal_matcher.hpp"
#include "tagwho/pe_image.hpp"

namespace tagwho {

// Classifies each hit: an immediate operand in code => code; other bytes in code => raw; a data section
// => data; headers, resources, overlay, or a file that did not parse (image == nullptr) => raw.
// Hits that are the very instruction a call-site evidence took its tag from are dropped (same fact).
// ARM64 instruction hits (MOVZ low half, MOVK high half) become code evidence only as a pair on the same
// register in the same function; lone halves, and instruction hits in any other file, are dropped.
std::vector<Evidence> classify_literal_hits(const std::vector<LiteralHit>& hits, const std::vector<Tag>& tags,
                                            const PeImage* image,
                                            const std::vector<Evidence>& call_evidence);

}  // namespace tagwho
