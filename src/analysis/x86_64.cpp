// The x86 and x64 CodeAnalyser (Zydis): call sites of tag-taking APIs and the constant tags passed there,
// and immediate operands covering literal hits.
//
// Call sites are references to the IAT slots of tag-taking imports, reached as
//   call [slot]                      (iat; x64 RIP-relative, possibly with a negative displacement)
//   mov reg, [slot] ... call reg     (reg; also jmp reg)
//   call thunk, thunk: jmp [slot]    (thunk; thunks may chain through jmp rel stubs)
//   jmp [slot] / jmp thunk           (tail: arguments set up before a tail call)
// Arguments are then followed backwards through the function (see x86_dataflow.cpp). Tags loaded from
// read-only data or from globals never written count as constants (x86_wrappers.cpp); a tag that is the
// enclosing function's parameter seeds the wrapper fixpoint (wrappers.hpp), whose evidence is kind wrapper.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "analysis/x86_dataflow.hpp"
#include "analysis/call_sites.hpp"
#include "tagwho/code_analysis.hpp"

namespace tagwho::x86 {
namespace {

bool inside_function_body(const CodeModel& model, uint32_t rva) {
  if (!model.x64) return false;
  const RuntimeFunction* f = model.function_at(rva);
  return f && f->begin_rva < rva;
}

}  // namespace

void SiteSet::add(const Site& site) {
  if (!settled_)
    sorted_.push_back(site);
  else if (!has(site.rva))
    later_.emplace(site.rva, site);
}

void SiteSet::settle() {
  // Stable: of the sites at one address, the first found stays.
  std::stable_sort(sorted_.begin(), sorted_.end(), [](const Site& a, const Site& b) { return a.rva < b.rva; });
  sorted_.erase(std::unique(sorted_.begin(), sorted_.end(), [](const Site& a, const Site& b) { return a.rva == b.rva; }),
                sorted_.end());
  settled_ = true;
}

bool SiteSet::has(uint32_t rva) const {
  const auto it = std::lower_bound(sorted_.begin(), sorted_.end(), rva, [](const Site& s, uint32_t x) { return s.rva < x; });
  return (it != sorted_.end() && it->rva == rva) || later_.count(rva);
}

std::vector<Site> SiteSet::take() {
  if (!settled_) settle();
  std::vector<Site> all;
  all.reserve(sorted_.size() + later_.size());
  auto later = later_.begin();
  for (const Site& site : sorted_) {
    for (; later != later_.end() && later->first < site.rva; ++later) all.push_back(later->second);
    all.push_back(site);
  }
  for (; later != later_.end(); ++later) all.push_back(later->second);
  sorted_.clear();
  later_.clear();
  return all;
}

std::vector<Site> Analysis::find_sites() {
  SiteSet sites;
  const auto add = [&](const Site& s) { sites.add(s); };

  struct Thunk {
    const ImportRef* import;
  };
  std::map<uint32_t, Thunk> thunks;
  for (const SlotRef& ref : slot_refs_) {
    if (ref.flow == Flow::call_indirect) {
      add(Site{ref.rva, ref.import, CallForm::iat, ref.negative, false});
    } else if (ref.flow == Flow::jmp_indirect) {
      const bool thunk = !inside_function_body(model_, ref.rva) &&
                         (std::binary_search(call_targets_.begin(), call_targets_.end(), ref.rva) ||
                          !ref.has_fallthrough_pred);
      if (thunk)
        thunks.emplace(ref.rva, Thunk{ref.import});
      else
        add(Site{ref.rva, ref.import, CallForm::tail, ref.negative, true});
    }
  }
  const auto edges_to = [this](uint32_t target) {
    auto lo = std::lower_bound(edges_.begin(), edges_.end(), target,
                               [](const Edge& e, uint32_t x) { return e.target < x; });
    auto hi = std::upper_bound(lo, edges_.end(), target, [](uint32_t x, const Edge& e) { return x < e.target; });
    return std::make_pair(lo, hi);
  };
  // Stubs made of a single "jmp thunk" are thunks too.
  std::vector<uint32_t> pending;
  for (const auto& [rva, t] : thunks) pending.push_back(rva);
  for (size_t round = 0; !pending.empty() && round < 16; ++round) {
    std::vector<uint32_t> next;
    for (uint32_t target : pending) {
      auto [lo, hi] = edges_to(target);
      for (auto it = lo; it != hi; ++it) {
        if (it->kind != Edge::jmp || thunks.count(it->source)) continue;
        const bool stub = !inside_function_body(model_, it->source) &&
                          (std::binary_search(call_targets_.begin(), call_targets_.end(), it->source) ||
                           !it->source_has_fallthrough_pred);
        if (!stub) continue;
        thunks.emplace(it->source, thunks.at(target));
        next.push_back(it->source);
      }
    }
    pending = std::move(next);
  }
  for (const auto& [rva, t] : thunks) {
    auto [lo, hi] = edges_to(rva);
    for (auto it = lo; it != hi; ++it) {
      if (thunks.count(it->source)) continue;
      if (it->kind == Edge::call)
        add(Site{it->source, t.import, CallForm::thunk, false, false});
      else
        add(Site{it->source, t.import, CallForm::tail, false, true});
    }
    known_starts_.push_back(rva);
    entry_like_.push_back(rva);
  }
  std::sort(known_starts_.begin(), known_starts_.end());
  known_starts_.erase(std::unique(known_starts_.begin(), known_starts_.end()), known_starts_.end());
  joins_built_ = false;  // (thunks are function starts too)
  std::sort(entry_like_.begin(), entry_like_.end());
  entry_like_.erase(std::unique(entry_like_.begin(), entry_like_.end()), entry_like_.end());

  // mov reg, [slot] ... call reg: look at the indirect calls of the region holding each load.
  sites.settle();
  std::set<std::pair<uint32_t, uint32_t>> scanned;
  for (const SlotRef& ref : slot_refs_) {
    if (ref.flow != Flow::normal) continue;
    trim_cache();
    const Region* region = region_for(ref.rva);
    if (!region || !scanned.insert({region->start, region->end}).second) continue;
    for (size_t i = 0; i < region->insns.size(); ++i) {
      const Insn& insn = region->insns[i];
      if ((insn.flow != Flow::call_indirect && insn.flow != Flow::jmp_indirect) || insn.operand_count < 1 ||
          sites.has(insn.rva))
        continue;
      // call reg, or call [local] (-O0 keeps the function pointer in a stack slot).
      const Operand& target = insn.op[0];
      Loc loc;
      if (target.kind == OpKind::reg && target.reg < 16) {
        loc = Loc{Loc::in_reg, target.reg, 0};
      } else if (target.kind == OpKind::mem && target.base == kRsp && target.index == kNoReg &&
                 !target.segment_override && target.disp >= 0) {
        loc = Loc{Loc::at_sp, kNoReg, static_cast<int32_t>(target.disp)};
      } else if (target.kind == OpKind::mem && target.base == kRbp && target.index == kNoReg &&
                 !target.segment_override) {
        loc = Loc{Loc::at_fp, kRbp, static_cast<int32_t>(target.disp)};
      } else {
        continue;
      }
      for (const Def& d : resolve(region, static_cast<int>(i), loc)) {
        if (d.kind != Def::slot_load) continue;
        const ImportRef* import = slot(static_cast<uint32_t>(d.value));
        if (!import || !import->api) continue;
        add(Site{insn.rva, import, CallForm::reg, false, insn.flow == Flow::jmp_indirect});
        break;
      }
    }
  }
  if (kmdf_) add_kmdf_sites(sites);
  // Finding the sites and resolving their arguments each get the whole decode budget (as on ARM64).
  decoded_ = 0;
  return sites.take();
}

void Analysis::add_kmdf_sites(SiteSet& sites) {
  // One synthetic import per table function: immutable, shared by every analysis.
  static const std::vector<ImportRef> refs = [] {
    std::vector<ImportRef> r;
    for (const WdfTableApi& t : kmdf_table_apis()) r.push_back(ImportRef{0, std::string(t.api->name), t.api});
    return r;
  }();
  const uint32_t ptr = model_.x64 ? 8 : 4;
  // Offsets added to a register by the pending arithmetic of a def (add only), or nullopt.
  const auto added = [](const Loc& loc) -> std::optional<int64_t> {
    int64_t sum = 0;
    for (uint8_t i = 0; i < loc.nops; ++i) {
      if (loc.ops[i].kind != ValueOp::add) return std::nullopt;
      sum += static_cast<int64_t>(loc.ops[i].imm);
    }
    return sum;
  };
  for (uint32_t rva : table_calls_) {
    if (sites.has(rva)) continue;
    trim_cache();
    const Region* region = region_for(rva);
    if (!region) continue;
    const int index = region->index_of(rva);
    if (index < 0) continue;
    const Insn& call = region->insns[static_cast<size_t>(index)];
    // The memory operand [base + disp] that holds the function pointer, and where it is read.
    std::vector<std::pair<int, Operand>> reads;
    const Operand& target = call.op[0];
    if (target.kind == OpKind::mem) {
      reads.emplace_back(index, target);
    } else if (target.kind == OpKind::reg && target.reg < 16) {
      for (const Def& d : resolve(region, index, Loc{Loc::in_reg, target.reg, 0})) {
        if (d.kind != Def::unknown || d.loc.nops) continue;
        const int at = region->index_of(d.rva);
        if (at < 0) continue;
        const Insn& load = region->insns[static_cast<size_t>(at)];
        if (load.mnemonic == ZYDIS_MNEMONIC_MOV && load.operand_count == 2 && load.op[1].kind == OpKind::mem)
          reads.emplace_back(at, load.op[1]);
      }
    }
    for (const auto& [at, mem] : reads) {
      if (mem.base >= 16 || mem.base == kRsp || mem.index != kNoReg || mem.segment_override) continue;
      bool found = false;
      for (const Def& d : resolve(region, at, Loc{Loc::in_reg, mem.base, 0})) {
        if (d.kind != Def::mem_load || d.size != ptr) continue;
        const CodeSection* sec = model_.section_at(static_cast<uint32_t>(d.value));
        if (!sec || !sec->writable || sec->executable) continue;  // the table pointer is a data global
        const std::optional<int64_t> offset = added(d.loc);
        if (!offset) continue;
        const int64_t slot_off = mem.disp + *offset;
        if (slot_off < 0 || slot_off % ptr != 0) continue;
        for (size_t k = 0; k < kmdf_table_apis().size(); ++k) {
          if (kmdf_table_apis()[k].index != static_cast<uint64_t>(slot_off) / ptr) continue;
          const bool tail = call.flow == Flow::jmp_indirect;
          sites.add(Site{rva, &refs[k], tail ? CallForm::tail : CallForm::reg, false, tail});
          found = true;
        }
        if (found) break;
      }
      if (found) break;
    }
  }
}

std::optional<Loc> Analysis::argument_loc(const Site& site, const ArgPosition& arg) const {
  if (!arg.present()) return std::nullopt;
  if (model_.x64) {
    static constexpr uint8_t kArgRegs[4] = {kRcx, kRdx, kR8, kR9};
    if (arg.index <= 4) return Loc{Loc::in_reg, kArgRegs[arg.index - 1], 0};
    return Loc{Loc::at_sp, kNoReg, 8 * (arg.index - 1) + (site.tail ? 8 : 0)};
  }
  if (arg.x86_reg >= 0) {  // __fastcall: ecx, edx
    if (arg.x86_reg > 1) return std::nullopt;
    return Loc{Loc::in_reg, arg.x86_reg == 0 ? kRcx : kRdx, 0};
  }
  if (arg.x86_slot < 0) return std::nullopt;
  return Loc{Loc::at_sp, kNoReg, 4 * arg.x86_slot + (site.tail ? 4 : 0)};
}

std::vector<Def> Analysis::resolve_argument(const Site& site, const ArgPosition& arg) {
  if (!arg.present()) return {};
  const Region* region = region_for(site.rva);
  if (!region) return {Def{}};
  const std::optional<Loc> loc = argument_loc(site, arg);
  if (!loc) return {Def{}};
  return resolve(region, region->index_of(site.rva), *loc);
}

CallSiteAnalysis analyse_call_sites(const CodeModel& model, const std::vector<Tag>* only) {
  Analysis analysis(model);
  analysis.sweep();
  return analysis::analyse_call_sites(analysis, model, static_cast<uint8_t>(model.x64 ? 8 : 4), only);
}

namespace {

// Where decoding for rva starts: its .pdata function, else 2 KiB before it (x86 code has no bounds).
uint32_t decode_start(const CodeModel& model, const CodeSection& sec, uint32_t rva) {
  uint32_t start = rva - sec.rva > 2048 ? rva - 2048 : sec.rva;
  if (const RuntimeFunction* f = model.function_at(rva); f && f->begin_rva >= sec.rva && f->begin_rva <= rva)
    start = f->begin_rva;
  return start;
}

// The use of the 4 bytes at rva by insn (which covers rva), if they lie inside one of its immediates.
std::optional<ImmediateUse> use_of(const Insn& insn, uint32_t rva) {
  for (int i = 0; i < 2; ++i) {
    if (insn.imm_size[i] == 0) continue;
    const uint64_t lo = static_cast<uint64_t>(insn.rva) + insn.imm_offset[i];
    const uint64_t hi = lo + insn.imm_size[i] / 8;
    if (rva >= lo && static_cast<uint64_t>(rva) + 4 <= hi) {
      ImmediateUse use;
      use.instruction_rva = insn.rva;
      use.mnemonic = ZydisMnemonicGetString(insn.mnemonic);
      for (char& c : use.mnemonic) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return use;
    }
  }
  return std::nullopt;
}

// Linear decoding from a start address: the addresses it visits (an undecodable byte is stepped over)
// and, once an instruction reaches past rva, that instruction. Which addresses are visited after a given
// one depends only on that address, so two walks that meet at an address go on together.
class Walk {
 public:
  Walk(const Decoder& decoder, const CodeSection& sec)
      : decoder_(decoder), sec_(sec), size_(sec.file_size()) {}

  // The instruction at `at`, recorded as visited: where it ends, or nullopt when undecodable. Only its length
  // is decoded (as the sweep decodes): a walk steps over hundreds of instructions for each one it looks into.
  std::optional<uint32_t> step(uint32_t at) {
    visited_.push_back(at);
    const size_t off = at - sec_.rva;
    const uint8_t* p = sec_.bytes.data() + off;
    // Most instructions: their length from a table, without taking their operands apart (the same: the table
    // test holds plain_length() to decode_plain()).
    if (const int length = decoder_.plain_length(p, size_ - off)) return at + static_cast<uint32_t>(length);
    const int quiet = decoder_.sweep_step_whole(p, size_ - off, at, scratch_);
    if (quiet < 0) return std::nullopt;
    return at + static_cast<uint32_t>(quiet > 0 ? quiet : scratch_.length);
  }
  // The instruction at `at`, decoded whole (the same length and validity as step(): both decodings are held
  // to Zydis's).
  std::optional<Insn> decode_whole(uint32_t at) const {
    const size_t off = at - sec_.rva;
    Insn insn;
    if (!decoder_.decode(sec_.bytes.data() + off, size_ - off, at, insn)) return std::nullopt;
    return insn;
  }
  // Continues from `at` (which this walk visits next, or a fresh start) until an instruction covers rva;
  // records every address visited. The covering instruction, or nullopt when none (end of section).
  std::optional<Insn> run_to(uint32_t at, uint32_t rva) {
    while (at <= rva && at - sec_.rva < size_) {
      const std::optional<uint32_t> end = step(at);
      if (!end) {
        ++at;
        continue;
      }
      if (*end > rva) return decode_whole(at);
      at = *end;
    }
    return std::nullopt;
  }
  const CodeSection& section() const { return sec_; }
  std::vector<uint32_t>& visited() { return visited_; }
  // Drops the addresses visited below `rva`, once they are most of them: a walk that goes on through a
  // whole code section would otherwise hold every address in it (a 34 MB x86 driver: 40 MB). Only an
  // optimisation is lost if a later search starts below `rva` after all: it decodes on its own. Looked at
  // only when the walk has twice the addresses it kept at the last look (and at least kForgetFrom): a
  // search of the addresses at every lookup was 7% of the lookups' time.
  void forget_below(uint32_t rva) {
    if (visited_.size() < next_forget_) return;
    const auto keep = std::lower_bound(visited_.begin(), visited_.end(), rva);
    if (keep - visited_.begin() > visited_.end() - keep) visited_.erase(visited_.begin(), keep);
    next_forget_ = std::max(kForgetFrom, 2 * visited_.size());
  }

 private:
  const Decoder& decoder_;
  const CodeSection& sec_;
  size_t size_;
  static constexpr size_t kForgetFrom = size_t{1} << 14;
  std::vector<uint32_t> visited_;  // increasing
  size_t next_forget_ = kForgetFrom;  // forget_below() looks when visited_ holds this many
  SweepFacts scratch_;             // step()'s sweep facts, when it reads them
};

}  // namespace

std::optional<ImmediateUse> immediate_use_at(const CodeModel& model, uint32_t rva) {
  return immediate_uses_at(model, {rva}).front();
}

std::vector<std::optional<ImmediateUse>> immediate_uses_at(const CodeModel& model, const std::vector<uint32_t>& rvas) {
  std::vector<std::optional<ImmediateUse>> uses(rvas.size());
  std::vector<size_t> order(rvas.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rvas[a] < rvas[b]; });
  // The walks read lengths and the covering instruction's immediates, and look no address up: with no span
  // of addresses to look up, the table decodes every immediate. With the default span (4 GB above the
  // image base), a 32-bit x86 immediate at or above it, such as every pushed tag, sent its instruction to
  // Zydis: 2 million decodings in the x86 benchmark drivers' walks.
  const Decoder decoder(model.x64, model.image_base, 0);
  std::optional<Walk> walk;  // the walk that reached the previous (lower) rva
  for (size_t k : order) {
    const uint32_t rva = rvas[k];
    const CodeSection* sec = model.section_at(rva);
    if (!sec || !sec->executable) continue;
    if (rva - sec->rva >= sec->file_size()) continue;
    if (walk && &walk->section() != sec) walk.reset();
    // Decode from this rva's own start until it meets an address the previous walk visited: from there on
    // both visit the same addresses, so the previous walk's last address at or before rva is where the
    // covering instruction's search resumes (instead of decoding the same bytes again).
    Walk fresh(decoder, *sec);
    uint32_t at = decode_start(model, *sec, rva);
    if (walk) walk->forget_below(at);  // the rvas come in increasing order, and so mostly do their starts
    std::optional<uint32_t> resume;
    std::optional<Insn> covering;
    // The previous walk's first address at or after `at`: both go up, so it moves forward as `at` does.
    const std::vector<uint32_t>* seen = walk ? &walk->visited() : nullptr;
    auto next_seen = seen ? std::lower_bound(seen->begin(), seen->end(), at) : std::vector<uint32_t>::const_iterator{};
    while (at <= rva && at - sec->rva < sec->file_size()) {
      if (seen) {
        while (next_seen != seen->end() && *next_seen < at) ++next_seen;
        if (next_seen != seen->end() && *next_seen == at) {
          resume = *(std::upper_bound(next_seen, seen->end(), rva) - 1);
          break;
        }
      }
      const std::optional<uint32_t> end = fresh.step(at);
      if (end && *end > rva) {
        covering = fresh.decode_whole(at);
        break;
      }
      at = end ? *end : at + 1;
    }
    if (resume) {
      // Continue the previous walk: drop what it visited after `resume` (re-visited below) and go on.
      std::vector<uint32_t>& seen = walk->visited();
      seen.erase(std::upper_bound(seen.begin(), seen.end(), *resume) - 1, seen.end());
      covering = walk->run_to(*resume, rva);
    } else {
      walk.emplace(std::move(fresh));
    }
    if (covering && covering->end() > rva) uses[k] = use_of(*covering, rva);
  }
  return uses;
}

CodeModel model_from_image(const PeImage& image, bool with_imports) {
  CodeModel m;
  m.x64 = image.machine() == Machine::x64;
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
  for (const ImportSlot& slot : with_imports ? image.imports() : std::vector<ImportSlot>{}) {
    ImportRef ref;
    ref.slot_rva = slot.iat_rva;
    ref.name = slot.name;
    ref.api = slot.name.empty() ? nullptr : find_tag_api(slot.name);
    m.imports.push_back(std::move(ref));
  }
  m.functions = image.functions();
  std::sort(m.functions.begin(), m.functions.end(),
            [](const RuntimeFunction& a, const RuntimeFunction& b) { return a.begin_rva < b.begin_rva; });
  return m;
}

namespace {

bool supported(const PeImage& image) { return image.machine() == Machine::x86 || image.machine() == Machine::x64; }

// Stateless: one instance serves every thread. The image's own machine selects the decoder mode.
class ZydisAnalyser final : public CodeAnalyser {
 public:
  CallSiteAnalysis find_call_site_tags(const PeImage& image, const std::vector<Tag>* only) const override {
    if (!supported(image)) return {};
    return analyse_call_sites(model_from_image(image, true), only);
  }
  std::optional<ImmediateUse> immediate_at(const PeImage& image, uint32_t rva) const override {
    if (!supported(image)) return std::nullopt;
    return immediate_use_at(model_from_image(image, false), rva);
  }
  std::vector<std::optional<ImmediateUse>> immediates_at(const PeImage& image,
                                                         const std::vector<uint32_t>& rvas) const override {
    if (!supported(image)) return std::vector<std::optional<ImmediateUse>>(rvas.size());
    return immediate_uses_at(model_from_image(image, false), rvas);
  }
};

}  // namespace

const CodeAnalyser& x86_analyser() {
  static const ZydisAnalyser analyser;
  return analyser;
}

const CodeAnalyser& x64_analyser() {
  static const ZydisAnalyser analyser;
  return analyser;
}

}  // namespace tagwho::x86
