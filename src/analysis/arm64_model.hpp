// The view of an ARM64 image that the ARM64 analysis works on: code bytes, IAT slots and function bounds.
// Built from a PeImage (model_from_image) or by hand in unit tests, so that the analysis can be tested on
// hand-written instruction words without a PE file around them.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/code_analysis.hpp"
#include "tagwho/pe_image.hpp"
#include "tagwho/tag_api.hpp"

namespace tagwho::arm64 {

struct CodeSection {
  std::string name;
  uint32_t rva = 0;
  uint32_t size = 0;    // mapped size
  ByteView bytes;       // file-backed bytes from rva (may be shorter than size)
  bool executable = false;
  bool writable = false;  // IMAGE_SCN_MEM_WRITE: globals there are constants only when no code writes them

  size_t file_size() const { return bytes.size() < size ? bytes.size() : size; }
  // The instruction word at rva (little-endian), when it is file-backed. (Inline: the sweep reads every word.)
  std::optional<uint32_t> word(uint32_t at) const {
    if (at < rva) return std::nullopt;
    const uint64_t off = at - rva;
    if (off + 4 > file_size()) return std::nullopt;
    return bytes.u32(off);
  }
};

struct ImportRef {
  uint32_t slot_rva = 0;
  std::string name;              // imported name ("" for ordinals)
  const TagApi* api = nullptr;   // set when the import is a tag-taking API
};

struct CodeModel {
  uint64_t image_base = 0;
  uint32_t entry_rva = 0;
  std::vector<CodeSection> sections;
  std::vector<ImportRef> imports;
  std::vector<RuntimeFunction> functions;  // sorted by begin_rva (ARM64 .pdata)

  const CodeSection* section_at(uint32_t rva) const;
  const RuntimeFunction* function_at(uint32_t rva) const;
};

CodeModel model_from_image(const PeImage& image, bool with_imports = true);

// full_sweep: resolve every indirect branch, not only those an IAT slot address can reach (Limits::targeted).
// focus: the only words where the `only` tags can be formed (Analysis::focus_on()).
CallSiteAnalysis analyse_call_sites(const CodeModel& model, const std::vector<Tag>* only = nullptr,
                                    bool full_sweep = false, const std::vector<uint32_t>* focus = nullptr);
// ARM64 meaning of immediate_at(): the 4 bytes at rva are one aligned instruction word in executable code,
// and that instruction is a MOVZ or MOVK (W or X destination, LSL #0 or #16): the instruction that carries a
// 16-bit half of a 32-bit constant. The mnemonic is "movz" or "movk". Anything else (a literal pool, data
// between functions, other instructions) is not an immediate use.
std::optional<ImmediateUse> immediate_use_at(const CodeModel& model, uint32_t rva);

const CodeAnalyser& arm64_analyser();

}  // namespace tagwho::arm64
