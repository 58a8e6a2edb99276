// Turns raw literal hits into evidence by where they lie in the file.
#pragma once
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/code_analysis.hpp"
#include "tagwho/evidence.hpp"
#include "tagwho/literal_matcher.hpp"
#include "tagwho/pe_image.hpp"

namespace tagwho {

// Classifies each hit: an immediate operand in code => code; other bytes in code => raw; a data section
// => data; headers, resources, overlay, or a file that did not parse (image == nullptr) => raw.
// Hits that are the very instruction a call-site evidence took its tag from are dropped (same fact).
// ARM64 instruction hits (MOVZ low half, MOVK high half) become code evidence only as a pair on the same
// register in the same function; lone halves, and instruction hits in any other file, are dropped.
//
// `uses`: the immediates of the hits' instructions, when the caller has looked them up already (for all
// tags of a file at once); else they are looked up here.
class ImmediateUses;
std::vector<Evidence> classify_literal_hits(const std::vector<LiteralHit>& hits, const std::vector<Tag>& tags,
                                            const PeImage* image, const std::vector<Evidence>& call_evidence,
                                            const ImmediateUses* uses = nullptr);
// The same, given only the instructions the call and wrapper evidence took their tags from (sorted, as
// call_tag_instructions() gives them): a large driver has hundreds of thousands of call evidence items,
// not worth copying to classify a tag's hits.
std::vector<Evidence> classify_literal_hits_beside(std::span<const LiteralHit> hits, const std::vector<Tag>& tags,
                                                   const PeImage* image, std::span<const uint32_t> call_tag_rvas,
                                                   const ImmediateUses* uses = nullptr);
std::vector<uint32_t> call_tag_instructions(const std::vector<Evidence>& calls);

// For every hit in an image's code that classification asks about (byte hits in x86/x64 code, MOVZ/MOVK
// hits in ARM64 code), the instruction whose immediate holds it: looked up in one batch per file
// (CodeAnalyser::immediates_at) rather than one decoding per hit and tag.
class ImmediateUses {
 public:
  ImmediateUses(std::span<const LiteralHit> hits, const PeImage* image);
  // nullopt when no immediate covers rva, or rva was not among the hits looked up.
  std::optional<ImmediateUse> at(uint32_t rva) const;

 private:
  // Only the rvas an immediate covers, in 12 bytes each: a large driver's code holds hundreds of thousands
  // of hits (a 34 MB x86 one: 340,000), and ImmediateUse's string made them 48 bytes each, held twice
  // while being built.
  struct Use {
    uint32_t rva;
    uint32_t instruction_rva;
    uint32_t mnemonic;  // index into mnemonics_
  };
  std::vector<Use> uses_;  // sorted by rva
  std::vector<std::string> mnemonics_;
  // Where the uses of each 256-byte block of addresses from base_ start in uses_: at() searches its block's
  // few uses, not all of them (a binary search over a large driver's was a third of classification's
  // time). Empty when there would be more blocks than uses (code far apart): at() searches them all.
  uint32_t base_ = 0;
  std::vector<uint32_t> block_first_;  // block b: uses_[block_first_[b], block_first_[b + 1])
};

}  // namespace tagwho
