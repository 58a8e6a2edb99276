#include "scan/classify.hpp"

#include "core/budget.hpp"
#include "core/format.hpp"

#include <algorithm>
#include <cstdio>

#include "tagwho/code_analysis.hpp"

namespace tagwho {
namespace {

// What the per-file memory budget counts for one evidence item (the struct and its strings).
constexpr uint64_t kEvidenceBytes = sizeof(Evidence) + 64;

bool is_resource_section(const Section& section) { return section.name == ".rsrc"; }

// Where a hit outside every section lies: before the first section's raw data it is in the headers.
std::string outside_sections(const PeImage& image, uint64_t offset) {
  uint64_t first_raw = UINT64_MAX;
  for (const Section& section : image.sections())
    if (section.raw_size) first_raw = std::min<uint64_t>(first_raw, section.raw_offset);
  return offset < first_raw ? "in headers" : "in overlay (after the last section)";
}

bool same_instruction_as_call(uint32_t instruction_rva, std::span<const uint32_t> call_tag_rvas) {
  return std::binary_search(call_tag_rvas.begin(), call_tag_rvas.end(), instruction_rva);
}

// An ARM64 MOVZ/MOVK hit confirmed as an instruction of the image's code.
struct MoveHit {
  const LiteralHit* hit;
  uint32_t rva;
  const Section* section;
};

// Largest distance between a MOVZ and the MOVK that completes it when no .pdata function holds both.
constexpr uint32_t kPairWindow = 256;
// ... and inside one function (compilers hoist the MOVZ, but not across a whole large function).
constexpr uint32_t kPairWindowInFunction = 4096;

// ARM64: the 32-bit tag built by "movz Rd, #lo" and a later "movk Rd, #hi, lsl #16" on the same register, in
// the same function (or within kPairWindow bytes when no .pdata entry covers them), is code evidence. A lone
// half is no evidence at all: a 16-bit constant says nothing about a 32-bit tag, and reporting it would put
// every ARM64 file that uses the number 0x654c among the results for "Leak".
void pair_arm64_halves(std::span<const LiteralHit> hits, const std::vector<Tag>& tags, const PeImage& image,
                       const ImmediateUses& uses, std::span<const uint32_t> call_tag_rvas,
                       std::vector<Evidence>& evidence) {
  // Only halves whose partner (same tag, register and width) matched somewhere are worth decoding.
  const auto key = [](const LiteralHit& h) { return (uint64_t{h.tag_index} << 8) | uint64_t{h.reg} << 1 | (h.wide ? 1 : 0); };
  std::vector<uint64_t> low_keys, high_keys;
  for (const LiteralHit& hit : hits) {
    if (hit.encoding == LiteralEncoding::arm64_movz_low) low_keys.push_back(key(hit));
    if (hit.encoding == LiteralEncoding::arm64_movk_high) high_keys.push_back(key(hit));
  }
  std::sort(low_keys.begin(), low_keys.end());
  std::sort(high_keys.begin(), high_keys.end());
  std::vector<MoveHit> lows, highs;
  for (const LiteralHit& hit : hits) {
    if (hit.encoding == LiteralEncoding::bytes) continue;
    const auto& partners = hit.encoding == LiteralEncoding::arm64_movz_low ? high_keys : low_keys;
    if (!std::binary_search(partners.begin(), partners.end(), key(hit))) continue;
    const Section* section = image.section_at_offset(hit.offset);
    if (!section || !section->is_code()) continue;
    auto rva = image.offset_to_rva(hit.offset);
    if (!rva) continue;
    auto use = uses.at(*rva);
    const char* expected = hit.encoding == LiteralEncoding::arm64_movz_low ? "movz" : "movk";
    if (!use || use->instruction_rva != *rva || use->mnemonic != expected) continue;
    (hit.encoding == LiteralEncoding::arm64_movz_low ? lows : highs).push_back(MoveHit{&hit, *rva, section});
  }
  std::vector<uint32_t> used_lows;
  for (const MoveHit& high : highs) {
    const RuntimeFunction* function = image.function_at(high.rva);
    const MoveHit* best = nullptr;
    for (const MoveHit& low : lows) {
      if (low.hit->tag_index != high.hit->tag_index || low.hit->reg != high.hit->reg ||
          low.hit->wide != high.hit->wide || low.rva >= high.rva || low.section != high.section)
        continue;
      const uint32_t distance = high.rva - low.rva;
      const bool same_function = function && function->begin_rva <= low.rva;
      if (distance > (same_function ? kPairWindowInFunction : kPairWindow)) continue;
      if (!function && image.function_at(low.rva)) continue;  // low half in a function, high half outside it
      if (!best || low.rva > best->rva) best = &low;
    }
    if (!best) continue;
    if (std::find(used_lows.begin(), used_lows.end(), best->rva) != used_lows.end()) continue;
    used_lows.push_back(best->rva);
    if (same_instruction_as_call(best->rva, call_tag_rvas) || same_instruction_as_call(high.rva, call_tag_rvas))
      continue;  // the very instructions a call site took its tag from
    Evidence item;
    item.kind = Confidence::code;
    item.tag = tags[high.hit->tag_index].without_protected_bit();
    item.file_offset = best->hit->offset;
    item.rva = best->rva;
    item.section = best->section->name;
    item.protected_pool = high.hit->protected_bit;
    const std::string reg = (high.hit->wide ? "x" : "w") + std::to_string(high.hit->reg);
    item.detail = "movz/movk " + reg + " at " + hex(best->rva) + ", " + hex(high.rva);
    evidence.push_back(std::move(item));
  }
}

}  // namespace

ImmediateUses::ImmediateUses(std::span<const LiteralHit> hits, const PeImage* image) {
  const CodeAnalyser* analyser = image ? analyser_for(image->machine()) : nullptr;
  if (!analyser) return;
  const bool arm64 = image->machine() == Machine::arm64;
  std::vector<uint32_t> rvas;
  for (const LiteralHit& hit : hits) {
    // x86/x64 ask about byte hits, ARM64 about instruction hits (its code holds no 32-bit immediates).
    if ((hit.encoding == LiteralEncoding::bytes) == arm64) continue;
    const Section* section = image->section_at_offset(hit.offset);
    if (!section || !section->is_code()) continue;
    if (auto rva = image->offset_to_rva(hit.offset)) rvas.push_back(*rva);
  }
  std::sort(rvas.begin(), rvas.end());
  rvas.erase(std::unique(rvas.begin(), rvas.end()), rvas.end());
  if (rvas.empty()) return;
  const std::vector<std::optional<ImmediateUse>> found = analyser->immediates_at(*image, rvas);
  uses_.reserve(static_cast<size_t>(std::count_if(found.begin(), found.end(), [](const auto& use) { return use.has_value(); })));
  for (size_t i = 0; i < rvas.size(); ++i) {
    if (!found[i]) continue;
    // A handful of distinct mnemonics (mov, cmp, push...): a linear search finds them.
    auto known = std::find(mnemonics_.begin(), mnemonics_.end(), found[i]->mnemonic);
    if (known == mnemonics_.end()) known = mnemonics_.insert(known, found[i]->mnemonic);
    uses_.push_back({rvas[i], found[i]->instruction_rva, static_cast<uint32_t>(known - mnemonics_.begin())});
  }
  if (uses_.empty()) return;
  base_ = uses_.front().rva;
  const size_t blocks = ((uses_.back().rva - base_) >> 8) + 1;
  if (blocks > uses_.size()) return;
  block_first_.assign(blocks + 1, 0);
  for (const Use& use : uses_) ++block_first_[((use.rva - base_) >> 8) + 1];
  for (size_t b = 0; b < blocks; ++b) block_first_[b + 1] += block_first_[b];
}

std::optional<ImmediateUse> ImmediateUses::at(uint32_t rva) const {
  auto first = uses_.begin(), last = uses_.end();
  if (!block_first_.empty()) {
    const uint64_t block = (uint64_t{rva} - base_) >> 8;  // (huge when rva < base_)
    if (rva < base_ || block + 1 >= block_first_.size()) return std::nullopt;
    first = uses_.begin() + block_first_[block];
    last = uses_.begin() + block_first_[block + 1];
  }
  auto it = std::lower_bound(first, last, rva, [](const Use& use, uint32_t x) { return use.rva < x; });
  if (it == last || it->rva != rva) return std::nullopt;
  return ImmediateUse{it->instruction_rva, mnemonics_[it->mnemonic]};
}

std::vector<uint32_t> call_tag_instructions(const std::vector<Evidence>& calls) {
  std::vector<uint32_t> rvas;
  for (const Evidence& call : calls)
    if (call.kind == Confidence::call || call.kind == Confidence::wrapper) rvas.push_back(call.tag_rva);
  std::sort(rvas.begin(), rvas.end());
  rvas.erase(std::unique(rvas.begin(), rvas.end()), rvas.end());
  return rvas;
}

std::vector<Evidence> classify_literal_hits(const std::vector<LiteralHit>& hits, const std::vector<Tag>& tags,
                                            const PeImage* image, const std::vector<Evidence>& call_evidence,
                                            const ImmediateUses* uses) {
  return classify_literal_hits_beside(hits, tags, image, call_tag_instructions(call_evidence), uses);
}

std::vector<Evidence> classify_literal_hits_beside(std::span<const LiteralHit> hits, const std::vector<Tag>& tags,
                                                   const PeImage* image, std::span<const uint32_t> call_tag_rvas,
                                                   const ImmediateUses* uses) {
  std::optional<ImmediateUses> own_uses;
  if (!uses) uses = &own_uses.emplace(hits, image);
  std::vector<Evidence> evidence;
  const bool arm64 = image && image->machine() == Machine::arm64;
  for (const LiteralHit& hit : hits) {
    budget::tick();
    // Instruction encodings only mean something in ARM64 code: paired below, dropped everywhere else.
    if (hit.encoding != LiteralEncoding::bytes) continue;
    budget::charge(kEvidenceBytes);
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
    if (section->is_code() && arm64) {
      // ARM64 instructions have no 32-bit immediates: the 4 bytes are data in code (a literal pool) or chance.
      item.detail = "in code, not an instruction";
    } else if (section->is_code()) {
      const std::optional<ImmediateUse> immediate = uses->at(item.rva);
      if (immediate) {
        if (same_instruction_as_call(immediate->instruction_rva, call_tag_rvas)) continue;
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
  if (arm64) pair_arm64_halves(hits, tags, *image, *uses, call_tag_rvas, evidence);
  return evidence;
}

}  // namespace tagwho
