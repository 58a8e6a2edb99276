// The ARM64 CodeAnalyser (Capstone): call sites of tag-taking APIs and the constant tags passed there, and
// the MOVZ/MOVK instructions that carry the halves of a literal tag.
//
// Call sites are branches that reach the IAT slot of a tag-taking import:
//   bl thunk, thunk: adrp x16, page; ldr x16, [x16, #off]; br x16     (thunk; b thunk is a tail call)
//   adrp xN, page; ldr xM, [xN, #off] ... blr xM                        (call reg; the slot may travel
//                                                                         through callee-saved registers
//                                                                         or a stack slot before the call)
//   ... br xM                                                            (tail call through the IAT)
// Arguments are then followed backwards through the function (see arm64_dataflow.cpp): a 32-bit tag is
// usually built by "movz wN, #lo" and a later "movk wN, #hi, lsl #16", not necessarily adjacent. Tags loaded
// from read-only data or from globals never written count as constants (arm64_wrappers.cpp); a tag that is
// the enclosing function's parameter seeds the wrapper fixpoint (wrappers.hpp), whose evidence is kind wrapper.
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "core/budget.hpp"
#include "analysis/arm64_dataflow.hpp"
#include "analysis/call_sites.hpp"
#include "tagwho/code_analysis.hpp"

namespace tagwho::arm64 {

namespace {

// blr xN / br xN with xN a general register (x0-x30).
bool branches_through_register(const Insn& insn) {
  return (insn.flow == Flow::call_reg || insn.flow == Flow::jmp_reg) && insn.nops >= 1 && insn.op[0].reg <= 30;
}

}  // namespace

std::vector<Site> Analysis::find_sites() {
  std::map<uint32_t, Site> sites;
  const auto add = [&](const Site& s) { sites.emplace(s.rva, s); };
  const auto in_thunk = [this](uint32_t rva) {
    auto it = thunks_.upper_bound(rva);
    if (it == thunks_.begin()) return false;
    --it;
    return rva - it->first < 12;
  };
  // Direct branches to thunks; a "b thunk" stub that is itself only branched to is a thunk too.
  std::map<uint32_t, const ImportRef*> all_thunks = thunks_;
  std::vector<uint32_t> pending;
  for (const auto& [rva, import] : thunks_) pending.push_back(rva);
  const auto branches_to = [this](uint32_t target) {
    auto lo = std::lower_bound(branches_.begin(), branches_.end(), target,
                               [](const Branch& b, uint32_t x) { return b.target < x; });
    auto hi = std::upper_bound(lo, branches_.end(), target, [](uint32_t x, const Branch& b) { return x < b.target; });
    return std::make_pair(lo, hi);
  };
  for (int round = 0; round < 4 && !pending.empty(); ++round) {
    std::vector<uint32_t> next;
    for (uint32_t target : pending) {
      auto [lo, hi] = branches_to(target);
      for (auto it = lo; it != hi; ++it) {
        if (it->call || all_thunks.count(it->source) || inside_function_body(it->source)) continue;
        if (!std::binary_search(after_stop_.begin(), after_stop_.end(), it->source)) continue;
        auto [slo, shi] = branches_to(it->source);
        if (slo == shi) continue;  // nobody branches to the stub: the end of a function, a tail call
        all_thunks.emplace(it->source, all_thunks.at(target));
        next.push_back(it->source);
      }
    }
    pending = std::move(next);
  }
  for (const auto& [rva, import] : all_thunks) {
    if (!import->api) continue;
    auto [lo, hi] = branches_to(rva);
    for (auto it = lo; it != hi; ++it) {
      if (all_thunks.count(it->source) || in_thunk(it->source)) continue;
      if (it->call)
        add(Site{it->source, import, CallForm::thunk, false});
      else
        add(Site{it->source, import, CallForm::tail, true});
    }
  }
  // KMDF: blr xN where xN = ldr [xM, #index*8] and xM = the WdfFunctions table pointer, a global in writable
  // data (adrp + ldr), at the index of a tag-taking Wdf function. The site's import is a synthetic ImportRef.
  static const std::vector<ImportRef> kmdf_refs = [] {
    std::vector<ImportRef> r;
    for (const WdfTableApi& t : kmdf_table_apis()) r.push_back(ImportRef{0, std::string(t.api->name), t.api});
    return r;
  }();
  const auto kmdf_import = [this](const Region* region, const std::vector<Def>& defs) -> const ImportRef* {
    for (const Def& d : defs) {
      if (d.kind != Def::unknown || d.loc.nops) continue;
      const int at = region->index_of(d.rva);
      if (at < 0) continue;
      const Insn& load = region->insns[static_cast<size_t>(at)];
      if (!is_load(load.id) || load.writeback) continue;
      const MemAccess access = mem_access(load);
      if (access.size != 8 || access.base > 30 || access.offset < 0 || access.offset % 8 != 0) continue;
      for (const Def& b : resolve(region, at, Loc{Loc::in_reg, access.base, 0})) {
        if (b.kind != Def::mem_load || b.size != 8 || b.loc.nops) continue;
        const CodeSection* sec = model_.section_at(static_cast<uint32_t>(b.value));
        if (!sec || !sec->writable || sec->executable) continue;
        for (size_t k = 0; k < kmdf_table_apis().size(); ++k)
          if (kmdf_table_apis()[k].index == static_cast<uint64_t>(access.offset) / 8) return &kmdf_refs[k];
      }
    }
    return nullptr;
  };
  // blr / br through a register holding an IAT slot's value.
  size_t resolved = 0;
  for (uint32_t rva : indirect_) {
    if (in_thunk(rva) || sites.count(rva)) continue;
    if (limits_.targeted && !kmdf_ && !may_reach_slot(rva)) continue;
    if (!focused(rva)) continue;
    if (++resolved > limits_.max_indirect_branches) {
      problem("too many indirect branches: the rest were not analysed");
      break;
    }
    trim_cache();
    if (!kmdf_ && limits_.straight_line) {
      // The branch register proved along straight-line code (adrp; ldr; blr): no region to decode.
      Insn branch;
      const CodeSection* sec = model_.section_at(rva);
      const auto word = sec ? sec->word(rva) : std::nullopt;
      const auto bounds = region_bounds(rva);
      if (word && bounds && (rva - bounds->first) % 4 == 0 && model_.section_at(bounds->first) == sec) {
        decoder_.decode(*word, rva, branch);
        if (!branches_through_register(branch)) continue;
        if (const auto def = straight_line_walk(rva, Loc{Loc::in_reg, branch.op[0].reg, 0}, bounds->first)) {
          const ImportRef* import = def->kind == Def::slot_load ? slot(static_cast<uint32_t>(def->value)) : nullptr;
          const bool tail = branch.flow == Flow::jmp_reg;
          if (import && import->api) add(Site{rva, import, tail ? CallForm::tail : CallForm::reg, tail});
          continue;
        }
      }
    }
    const Region* region = region_for(rva);
    if (!region) continue;
    const int index = region->index_of(rva);
    if (index < 0) continue;
    const Insn& insn = region->insns[static_cast<size_t>(index)];
    if (!branches_through_register(insn)) continue;
    const std::vector<Def> defs = resolve(region, index, Loc{Loc::in_reg, insn.op[0].reg, 0});
    const bool tail = insn.flow == Flow::jmp_reg;
    for (const Def& d : defs) {
      if (d.kind != Def::slot_load) continue;
      const ImportRef* import = slot(static_cast<uint32_t>(d.value));
      if (!import || !import->api) continue;
      add(Site{rva, import, tail ? CallForm::tail : CallForm::reg, tail});
      break;
    }
    if (kmdf_ && !sites.count(rva))
      if (const ImportRef* import = kmdf_import(region, defs))
        add(Site{rva, import, tail ? CallForm::tail : CallForm::reg, tail});
  }
  // Finding the sites and resolving their arguments each get the whole decode budget: a driver whose
  // thousands of indirect branches used it up here would otherwise have none of its sites' tags resolved.
  decoded_ = 0;
  std::vector<Site> result;
  result.reserve(sites.size());
  for (const auto& [rva, s] : sites) result.push_back(s);
  return result;
}

// The branch's region (region_for) starts no lower than its .pdata function (clipped to max_function_bytes)
// or, outside one, its window (window_before): an address formed before that is not one the walk can see.
bool Analysis::may_reach_slot(uint32_t branch_rva) const {
  uint32_t lowest = branch_rva > limits_.window_before ? branch_rva - limits_.window_before : 0;
  const CodeSection* sec = model_.section_at(branch_rva);
  if (const RuntimeFunction* f = model_.function_at(branch_rva); f && sec && f->begin_rva >= sec->rva) {
    const uint32_t clip = limits_.max_function_bytes > 4096 ? limits_.max_function_bytes - 4096 : 0;
    lowest = std::max(f->begin_rva, branch_rva > clip ? branch_rva - clip : 0);
  }
  auto it = std::lower_bound(slot_reach_.begin(), slot_reach_.end(), lowest);
  return it != slot_reach_.end() && *it < branch_rva;
}

void Analysis::focus_on(std::vector<uint32_t> words) { focus_words_ = std::move(words); }

void Analysis::note_focus_points(const std::vector<std::pair<uint32_t, uint32_t>>& branch_sources) {
  // No region reaches farther than this from its branch, either way (region_bounds).
  const uint64_t reach = std::max({limits_.max_function_bytes, limits_.window_before, limits_.window_after});
  std::unordered_map<size_t, std::optional<std::pair<uint32_t, uint32_t>>> bounds;  // of branch_sources[i]
  // The points: the words, then each entry a branch reaches from a region holding a point (a parameter is
  // what the function at an entry inside the region received). Bounded: past kMaxPoints, the analysis goes
  // on whole (a hostile file's call graph cannot make this the slow part).
  constexpr size_t kMaxPoints = 4096;
  std::set<uint32_t> points;
  std::vector<uint32_t> pending = std::move(*focus_words_);
  focus_words_.reset();
  while (!pending.empty()) {
    const uint32_t point = pending.back();
    pending.pop_back();
    if (!points.insert(point).second) continue;
    if (points.size() > kMaxPoints) return;
    auto it = std::lower_bound(branch_sources.begin(), branch_sources.end(),
                               std::make_pair(static_cast<uint32_t>(point > reach ? point - reach : 0), uint32_t{0}));
    for (; it != branch_sources.end() && it->first <= point + reach; ++it) {
      budget::tick();
      auto [known, added] = bounds.try_emplace(static_cast<size_t>(it - branch_sources.begin()));
      if (added) known->second = region_bounds(it->first);
      const auto& region = known->second;
      if (region && region->first <= point && point < region->second && is_function_entry(it->second))
        pending.push_back(it->second);
    }
  }
  focus_points_.emplace(points.begin(), points.end());
}

bool Analysis::focused(uint32_t branch_rva) const {
  if (!focus_points_) return true;
  const auto bounds = region_bounds(branch_rva);
  if (!bounds) return true;  // (no region either: resolved as before, to nothing)
  auto it = std::lower_bound(focus_points_->begin(), focus_points_->end(), bounds->first);
  return it != focus_points_->end() && *it < bounds->second;
}

namespace {

// AAPCS64 / Windows ARM64: arguments 1-8 in x0-x7, then 8-byte stack slots from [sp] at the branch (a tail
// branch leaves sp where the caller's own caller put its arguments, so the same offsets hold).
Loc argument_loc(const ArgPosition& arg) {
  if (arg.index <= 8) return Loc{Loc::in_reg, static_cast<uint8_t>(arg.index - 1), 0};
  return Loc{Loc::at_sp, kNoReg, 8 * (arg.index - 9)};
}

}  // namespace

std::vector<Def> Analysis::resolve_argument(const Site& site, const ArgPosition& arg) {
  if (!arg.present()) return {};
  const Region* region = region_for(site.rva);
  if (!region) return {Def{}};
  return resolve(region, region->index_of(site.rva), argument_loc(arg));
}

// See x86_straight_line.cpp: when nothing joins the words between the site and the instruction that sets
// the argument (no branch lands on them, no function starts there), resolve() follows that one path, and
// its answer is what step() gives along it. Words are fixed-size: the region holds exactly these words.
std::optional<Def> Analysis::straight_line_def(const Site& site, const ArgPosition& arg) {
  if (!arg.present() || !limits_.straight_line) return std::nullopt;
  const auto bounds = region_bounds(site.rva);
  if (!bounds || (site.rva - bounds->first) % 4 != 0) return std::nullopt;
  // The region reads the words of the section holding its start (sections may overlap in a hostile file).
  if (model_.section_at(bounds->first) != model_.section_at(site.rva)) return std::nullopt;
  return straight_line_walk(site.rva, argument_loc(arg), bounds->first);
}

// The walk from the instruction at rva (in a region starting at region_start) for loc. A step that walks
// further (a load through a base register, an operation on two registers) asks resolve(), which walks the
// same way from that instruction (as deeply as step() nests resolves: max_nested), or declines.
std::optional<Def> Analysis::straight_line_walk(uint32_t rva, Loc loc, uint32_t region_start) {
  const CodeSection* sec = model_.section_at(region_start);  // (the region's words are this section's)
  if (!sec || rva < sec->rva) return std::nullopt;
  // Each step holds its own one-instruction region: a nested walk steps with another. The region holds the
  // walk's one instruction, which each step decodes anew.
  auto run = std::make_shared<InsnRun>();
  run->insns.resize(1);
  Insn& prev = run->insns[0];
  Region region;
  region.insns.append(run, 0, 1);
  std::vector<Outcome> outcomes;
  for (uint32_t at = rva, steps = 0; steps < 64; at -= 4, ++steps) {
    if (at == region_start || joins_at(at)) return std::nullopt;
    if (auto word = sec->word(at - 4)) {
      decoder_.decode(*word, at - 4, prev);
    } else {
      prev = Insn{};
      prev.rva = at - 4;
    }
    // Nothing else reaches `at`, and the instruction before does not fall into it: resolve() finds nothing.
    if (!prev.falls_through()) return Def{Def::unknown, 0, at};
    region.start = prev.rva;
    region.end = at;
    outcomes.clear();
    const uint32_t saved_start = proof_region_start_;
    const bool saved_proving = proving_;
    const bool saved_needed = needed_region_;
    proof_region_start_ = region_start;
    proving_ = true;
    needed_region_ = false;
    step(region, 0, loc, outcomes);
    const bool needed = needed_region_;
    proof_region_start_ = saved_start;
    proving_ = saved_proving;
    needed_region_ = saved_needed;
    if (needed || outcomes.size() != 1) return std::nullopt;
    if (outcomes[0].kind == Outcome::defined) return outcomes[0].def;
    loc = outcomes[0].loc;
  }
  return std::nullopt;
}

CallSiteAnalysis analyse_call_sites(const CodeModel& model, const std::vector<Tag>* only, bool full_sweep,
                                    const std::vector<uint32_t>* focus) {
  Limits limits;
  limits.targeted = !full_sweep;
  Analysis analysis(model, limits);
  if (focus && only) analysis.focus_on(*focus);
  analysis.sweep();
  return analysis::analyse_call_sites(analysis, model, static_cast<uint8_t>(8), only);
}

namespace {

// immediate_use_at with the decoder that confirms the word, and the words it has confirmed (or refused)
// so far: an index build looks up hundreds of thousands of MOVZ/MOVK words, many of them the same, and a
// decoder made and a word disassembled for each were 7.7% of its literal pass's time.
std::optional<ImmediateUse> immediate_use_in(const CodeModel& model, uint32_t rva, Decoder& decoder,
                                             std::unordered_map<uint32_t, bool>& confirmed) {
  if (rva % 4 != 0) return std::nullopt;
  const CodeSection* sec = model.section_at(rva);
  if (!sec || !sec->executable) return std::nullopt;
  auto word = sec->word(rva);
  if (!word || enc::move_hw(*word) > 1) return std::nullopt;
  const bool movz = enc::is_movz(*word);
  if (!movz && !enc::is_movk(*word)) return std::nullopt;
  // Confirm with the disassembler (every such encoding is valid, but keep one decoder as the authority).
  // A MOVZ/MOVK's decoding does not depend on its address: once per word.
  auto known = confirmed.find(*word);
  if (known == confirmed.end())
    known = confirmed.emplace(*word, decoder.ok() && !decoder.mnemonic(*word, rva).empty()).first;
  if (!known->second) return std::nullopt;
  ImmediateUse use;
  use.instruction_rva = rva;
  use.mnemonic = movz ? "movz" : "movk";
  return use;
}

}  // namespace

std::optional<ImmediateUse> immediate_use_at(const CodeModel& model, uint32_t rva) {
  Decoder decoder(model.image_base);
  std::unordered_map<uint32_t, bool> confirmed;
  return immediate_use_in(model, rva, decoder, confirmed);
}

CodeModel model_from_image(const PeImage& image, bool with_imports) {
  CodeModel m;
  m.image_base = image.image_base();
  m.entry_rva = image.entry_rva();
  for (const Section& s : image.sections()) {
    CodeSection c;
    c.name = s.name;
    c.rva = s.rva;
    c.size = s.mapped_size();
    c.bytes = image.section_bytes(s);
    c.executable = s.is_code();
    c.writable = s.writable();
    m.sections.push_back(std::move(c));
  }
  if (with_imports) {
    for (const ImportSlot& slot : image.imports()) {
      ImportRef ref;
      ref.slot_rva = slot.iat_rva;
      ref.name = slot.name;
      ref.api = slot.name.empty() ? nullptr : find_tag_api(slot.name);
      m.imports.push_back(std::move(ref));
    }
  }
  m.functions = image.functions();
  std::sort(m.functions.begin(), m.functions.end(),
            [](const RuntimeFunction& a, const RuntimeFunction& b) { return a.begin_rva < b.begin_rva; });
  return m;
}

namespace {

// Stateless: one instance serves every thread.
class CapstoneArm64Analyser final : public CodeAnalyser {
 public:
  CallSiteAnalysis find_call_site_tags(const PeImage& image, const std::vector<Tag>* only) const override {
    if (image.machine() != Machine::arm64) return {};
    return analyse_call_sites(model_from_image(image, true), only);
  }
  CallSiteAnalysis find_call_site_tags_near(const PeImage& image, const std::vector<Tag>& only,
                                            const std::vector<uint32_t>& words) const override {
    if (image.machine() != Machine::arm64) return {};
    return analyse_call_sites(model_from_image(image, true), &only, false, &words);
  }
  std::optional<ImmediateUse> immediate_at(const PeImage& image, uint32_t rva) const override {
    if (image.machine() != Machine::arm64) return std::nullopt;
    return immediate_use_at(model_from_image(image, false), rva);
  }
  std::vector<std::optional<ImmediateUse>> immediates_at(const PeImage& image,
                                                         const std::vector<uint32_t>& rvas) const override {
    std::vector<std::optional<ImmediateUse>> uses(rvas.size());
    if (image.machine() != Machine::arm64) return uses;
    const CodeModel model = model_from_image(image, false);  // once, not once per address
    Decoder decoder(model.image_base);
    std::unordered_map<uint32_t, bool> confirmed;
    for (size_t i = 0; i < rvas.size(); ++i) uses[i] = immediate_use_in(model, rvas[i], decoder, confirmed);
    return uses;
  }
};

}  // namespace

const CodeAnalyser& arm64_analyser() {
  static const CapstoneArm64Analyser analyser;
  return analyser;
}

}  // namespace tagwho::arm64
