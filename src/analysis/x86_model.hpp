// The view of an image that the x86/x64 analysis works on: code bytes, IAT slots and function bounds.
// Built from a PeImage (model_from_image) or by hand in unit tests, so that the analysis can be tested on
// hand-assembled code without a PE file around it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/code_analysis.hpp"
#include "tagwho/pe_image.hpp"
#include "tagwho/tag_api.hpp"

namespace tagwho::x86 {

struct CodeSection {
  std::string name;
  uint32_t rva = 0;
  uint32_t size = 0;    // mapped size
  ByteView bytes;       // file-backed bytes from rva (may be shorter than size)
  bool executable = false;
  bool writable = false;  // IMAGE_SCN_MEM_WRITE: loads from other sections are constants

  // The bytes the file backs (what can be decoded), as arm64::CodeSection::file_size().
  size_t file_size() const { return bytes.size() < size ? bytes.size() : size; }
};

struct ImportRef {
  uint32_t slot_rva = 0;
  std::string name;              // imported name ("" for ordinals)
  const TagApi* api = nullptr;   // set when the import is a tag-taking API
};

struct CodeModel {
  bool x64 = true;
  uint64_t image_base = 0;
  uint32_t entry_rva = 0;
  std::vector<CodeSection> sections;
  std::vector<ImportRef> imports;
  std::vector<RuntimeFunction> functions;  // sorted by begin_rva (x64 .pdata)

  const CodeSection* section_at(uint32_t rva) const;
  const RuntimeFunction* function_at(uint32_t rva) const;
};

CodeModel model_from_image(const PeImage& image, bool with_imports = true);

CallSiteAnalysis analyse_call_sites(const CodeModel& model, const std::vector<Tag>* only = nullptr);
std::optional<ImmediateUse> immediate_use_at(const CodeModel& model, uint32_t rva);
// The same for many addresses (answers in the order of rvas), sharing the decoding: see x86_64.cpp.
std::vector<std::optional<ImmediateUse>> immediate_uses_at(const CodeModel& model, const std::vector<uint32_t>& rvas);

// The analyser instances behind analyser_for().
const CodeAnalyser& x86_analyser();
const CodeAnalyser& x64_analyser();

}  // namespace tagwho::x86
