// The steps of one file's analysis that the scanner and the index share, so that an answer read from the
// index is built by exactly the code that builds a scan's answer.
#pragma once
#include <string>
#include <vector>

#include "tagwho/evidence.hpp"
#include "tagwho/literal_matcher.hpp"
#include "tagwho/pe_image.hpp"
#include "tagwho/scan.hpp"

namespace tagwho {

// Groups evidence by tag (the protected bit stripped): tags in the order of their characters, each
// finding's evidence strongest first in a total order (so it never depends on the order it came in).
std::vector<Finding> group_by_tag(std::vector<Evidence> evidence);

// Classifies literal hits tag by tag: the hits of each tag with the call evidence of that tag only, so the
// answer for a tag never depends on which other tags were searched in the same run.
// uses: the immediates of these hits' instructions when already looked up (for more hits than these).
class ImmediateUses;
std::vector<Evidence> classify_per_tag(const std::vector<LiteralHit>& hits, const std::vector<Tag>& tags,
                                       const PeImage* image, const std::vector<Evidence>& calls,
                                       const ImmediateUses* uses = nullptr);

// One file: call-site evidence (every tag when all_calls, else only `tags`), plus literal evidence for the
// matcher's tags when a matcher is given. Findings hold, per tag, what a search for that tag alone finds.
// prefilter (a search: not all_calls, a matcher built with_prefilter): the code is analysed only when the
// file holds some encoding of a requested tag (see may_hold_call_evidence in scanner.cpp); same answer.
// A file over its limits gets one error and no findings. windows: the literal scan's pass over the bytes
// (MappedFile::windows()); null: over `bytes`.
FileResult analyse_file_bytes(const std::string& path, ByteView bytes, bool all_calls, const std::vector<Tag>& tags,
                              const LiteralMatcher* matcher, bool prefilter = true, const FileLimits& limits = {},
                              WindowReader* windows = nullptr);

}  // namespace tagwho
