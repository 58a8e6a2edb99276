#include "scan/classify.hpp"

#include <algorithm>
#include <cstdio>

#include "tagwho/code_analysis.hpp"

namespace tagwho {
namespace {

std::string hex(uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
  return buffer;
}

bool is_resource_section(const Section& section) { return section.name == ".rsrc"; }

// Where a hit outside every section lies: before the first section's raw data it is in the headers.
std::string outside_sections(const PeImage& image, uint64_t offset) {
  uint64_t first_raw = UINT64_MAX;
  for (const Section& section : image.sections())
    if (section.raw_size) first_raw = std::min<uint64_t>(first_raw, section.raw_offset);
  return offset < first_raw ? "in headers" : "in overlay (after the last section)";
}

bool same_instruction_as_call(uint32_t instruction_rva, const std::vector<Evidence>& calls) {
  return std::any_of(calls.begin(), calls.end(),
                     [&](const Evidence& call) { return call.kind == Confidence::call && call.tag_rva == instruction_rva; });
}

}  // namespace

std::vector<Evidence> classify_literal_hits(const std::vector<LiteralHit>& hits, const std::vector<Tag>& tags,
                                            const PeImage* image,
                                            const std::vector<Evidence>& call_evidence) {
  std::vector<Evidence> evidence;
  const CodeAnalyser* analyser = image ? analyser_for(image->machine()) : nullptr;
  for (const LiteralHit& hit : hits) {
    Evidence item;
    item.tag = tags[hit.tag_index].without_protected_bit();
    item.file_offset = hit.offset;
    item.protected_pool = hit.protected_bit;
    item.kind = Confidence::raw;
    if (!image) {
      item.detail = "file did not parse";
      evidence.push_back(std::move(item));
      continue;
    }
    const Section* section = image->section_at_offset(hit.offset);
    if (!section) {
      item.detail = outside_sections(*image, hit.offset);
      evidence.push_back(std::move(item));
      continue;
    }
    item.section = section->name;
    item.rva = image->offset_to_rva(hit.offset).value_or(0);
    if (section->is_code()) {
      auto immediate = analyser ? analyser->immediate_at(*image, item.rva) : std::nullopt;
      if (immediate) {
        if (same_instruction_as_call(immediate->instruction_rva, call_evidence)) continue;
        item.kind = Confidence::code;
        item.detail = "immediate of " + immediate->mnemonic + " at " + hex(immediate->instruction_rva);
      } else {
        item.detail = "in code, not an immediate operand";
      }
    } else if (is_resource_section(*section)) {
      item.detail = "in resources";
    } else {
      item.kind = Confidence::data;
      item.detail = section->writable() ? "in writable data" : "in read-only data";
    }
    evidence.push_back(std::move(item));
  }
  return evidence;
}

}  // namespace tagwho
