// Architecture-specific code analysis behind one interface: tags recovered at the call sites of
// tag-taking APIs, and the classification of a literal hit inside code.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/evidence.hpp"
#include "tagwho/pe_image.hpp"

namespace tagwho {

// An instruction whose immediate operand covers some bytes.
struct ImmediateUse {
  uint32_t instruction_rva = 0;
  std::string mnemonic;  // "mov", "cmp", "push"...
};

struct CallSiteAnalysis {
  std::vector<Evidence> calls;       // one per (call site, recovered tag value): kind call at calls of a
                                     // tag-taking API, kind wrapper at calls of a function passing it on
  std::vector<std::string> problems; // analysis limits hit, undecodable regions... (for diagnostics)
  size_t call_sites = 0;             // call sites of tag-taking APIs found, recovered or not
};

class CodeAnalyser {
 public:
  virtual ~CodeAnalyser() = default;
  // Every tag value passed to a tag-taking API (builtin_tag_apis()) at a call site in the image. only: when
  // given, the evidence of other tags is not kept (a search holds only its own: a large driver has
  // hundreds of thousands of call sites).
  virtual CallSiteAnalysis find_call_site_tags(const PeImage& image, const std::vector<Tag>* only = nullptr) const = 0;
  // find_call_site_tags(image, &only) for a search whose tags the code can form only at `words` (RVAs): the
  // ARM64 MOVZ/MOVK words holding a half of one, when the file holds no other encoding of them. The same
  // evidence; an analyser may resolve only the call sites whose data flow can reach one of the words (the
  // ARM64 one does). The default ignores them.
  virtual CallSiteAnalysis find_call_site_tags_near(const PeImage& image, const std::vector<Tag>& only,
                                                    const std::vector<uint32_t>& words) const {
    (void)words;
    return find_call_site_tags(image, &only);
  }
  // When the 4 bytes at rva are (part of) an immediate operand of a decoded instruction, that instruction.
  virtual std::optional<ImmediateUse> immediate_at(const PeImage& image, uint32_t rva) const = 0;
  // immediate_at for many addresses at once (one answer per rva, in the same order). A file with thousands
  // of literal hits in code is classified with one pass of decoding instead of one per hit.
  virtual std::vector<std::optional<ImmediateUse>> immediates_at(const PeImage& image,
                                                                 const std::vector<uint32_t>& rvas) const {
    std::vector<std::optional<ImmediateUse>> uses;
    for (uint32_t rva : rvas) uses.push_back(immediate_at(image, rva));
    return uses;
  }
};

// The analyser for the image's machine (x86 and x64 with Zydis), or nullptr when none exists yet.
const CodeAnalyser* analyser_for(Machine machine);

}  // namespace tagwho
