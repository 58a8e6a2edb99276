// A cheap proof of a call site's argument, for searches: most call sites set the tag argument a few
// instructions before the call (mov r8d, 'Tag1' / push 'Tag1' / mov [esp+8], 'Tag1'). When nothing joins the
// code between that instruction and the call (no jump lands in it, no function starts in it), the backward
// walk of resolve() follows exactly that one path, so its answer is the one definition found by stepping
// back along it with the same step(): without decoding the region around the site, which is most of the
// cost of a search in a driver with thousands of call sites. Reaching an instruction that does not fall
// through proves that nothing reaches the argument (resolve() finds only an unknown value there too).
//
// The steps must see the instructions the region would. The region decodes linearly from a known function
// start or from a boundary of the sweep; the proof steps back over the sweep's own boundaries (recorded as
// it went). Both are the same instructions from the first boundary they share on, when no .pdata function
// starts between the region's start and the site (the sweep resynchronises on those). Steps that would look
// at more of the region than one instruction (setcc after a cleared register, table loads, calls for a
// stack slot) are left to the full walk; a store through another register than rsp is proved not to go
// through a copy of rsp, or left to it too.
#include <algorithm>

#include "analysis/x86_dataflow.hpp"

namespace tagwho::x86 {
namespace {

constexpr uint32_t kProofWindow = 256;  // bytes stepped back over at most before giving up

constexpr uint16_t bit(uint8_t reg) { return static_cast<uint16_t>(1u << reg); }

// Whether step() would look at other instructions of the region than `insn` for `loc`.
bool step_needs_region(const Insn& insn, const Loc& loc) {
  const bool call = insn.flow == Flow::call || insn.flow == Flow::call_indirect;
  if (call && loc.kind != Loc::in_reg) return true;  // call_pops()
  if (loc.kind == Loc::in_reg) {
    if (!(insn.gpr_writes & bit(loc.reg))) return false;
    if (insn.gpr_partial & bit(loc.reg)) return true;  // setcc: cleared_before()
    return insn.mnemonic == ZYDIS_MNEMONIC_MOV && insn.operand_count == 2 && insn.op[1].kind == OpKind::mem &&
           insn.op[1].index < 16;  // table_values()
  }
  return false;
}

// A store through another base register than rsp, which step() looks up as a copy of rsp (sp_alias()).
bool stores_through_other_base(const Insn& insn, const Loc& loc) {
  const Operand& op = insn.op[0];
  return loc.kind == Loc::at_sp && op.kind == OpKind::mem && op.write && op.base != kRsp && op.base < 16 &&
         op.index == kNoReg && !op.segment_override && insn.mnemonic != ZYDIS_MNEMONIC_LEA &&
         insn.mnemonic != ZYDIS_MNEMONIC_PUSH && insn.mnemonic != ZYDIS_MNEMONIC_POP;
}

}  // namespace

bool Analysis::may_copy_sp_before(uint32_t rva, uint8_t reg, uint32_t from, uint32_t region_start) const {
  // sp_alias() steps back at most 16 instructions and finds a copy only in a mov/lea from rsp that writes
  // reg; it gives up at the first other write of reg or rsp and at code that does not fall through.
  const CodeSection* sec = model_.section_at(rva);
  const size_t n = std::min<size_t>(sec->bytes.size(), sec->size);
  uint32_t at = rva;
  for (int steps = 0; steps < 16; ++steps) {
    if (at == region_start) return false;  // the region's first instruction: nothing before it
    const std::optional<uint32_t> prev_rva = sweep_boundary_before(at, from);
    if (!prev_rva) return true;  // (what lies before is not known to be the region's)
    Insn prev;
    const size_t off = *prev_rva - sec->rva;
    if (!decoder_.decode(sec->bytes.data() + off, n - off, *prev_rva, prev) || prev.end() != at) return true;
    if (!prev.falls_through()) return false;
    if (prev.gpr_writes & bit(reg)) {
      if (prev.gpr_partial & bit(reg)) return false;
      const bool from_sp = prev.operand_count == 2 &&
                           ((prev.mnemonic == ZYDIS_MNEMONIC_MOV && prev.op[1].kind == OpKind::reg && prev.op[1].reg == kRsp) ||
                            (prev.mnemonic == ZYDIS_MNEMONIC_LEA && prev.op[1].base == kRsp));
      return from_sp;
    }
    if (prev.gpr_writes & bit(kRsp)) return false;
    at = *prev_rva;
  }
  return false;
}

bool Analysis::has_edge_to(uint32_t rva) const {
  auto it = std::lower_bound(edges_.begin(), edges_.end(), rva, [](const Edge& e, uint32_t x) { return e.target < x; });
  return it != edges_.end() && it->target == rva;
}

bool Analysis::on_sweep_stream(uint32_t rva) const {
  const SweepSection* ss = sweep_section_at(rva);
  if (!ss) return false;
  const size_t off = rva - ss->section->rva;
  return (ss->boundaries[off / 64] >> (off % 64)) & 1;
}

std::optional<uint32_t> Analysis::joins_sweep_stream(uint32_t start, uint32_t limit) {
  if (auto known = joins_sweep_stream_.find(start); known != joins_sweep_stream_.end()) return known->second;
  // Decode from start as build_region() does (an undecodable byte is a one-byte instruction) until an
  // instruction starts where one of the sweep's did: from there on both decode the same instructions. The
  // branches of the instructions before that point are the region's own (not among the sweep's edges), so
  // a start whose decoding branches before it joins is not used.
  std::optional<uint32_t> joined;
  const CodeSection* sec = model_.section_at(start);
  const size_t n = sec ? std::min<size_t>(sec->bytes.size(), sec->size) : 0;
  uint32_t at = start;
  for (int steps = 0; sec && steps < 64 && at - sec->rva < n; ++steps) {
    if (on_sweep_stream(at)) {
      joined = at;
      break;
    }
    Insn insn;
    const size_t off = at - sec->rva;
    if (!decoder_.decode(sec->bytes.data() + off, n - off, at, insn)) {
      ++at;
      continue;
    }
    // A branch decoded only by the region (not by the sweep) may land on the proof's path.
    if (insn.has_target && (insn.flow == Flow::jmp || insn.flow == Flow::jcc)) break;
    at = insn.end();
  }
  joins_sweep_stream_.emplace(start, joined);
  return joined && *joined <= limit ? joined : std::nullopt;
}

std::optional<uint32_t> Analysis::sweep_boundary_before(uint32_t rva, uint32_t lowest) const {
  const SweepSection* ss = sweep_section_at(rva);
  if (!ss || rva <= lowest) return std::nullopt;
  const uint32_t base = ss->section->rva;
  const size_t floor = lowest > base ? lowest - base : 0;
  size_t off = rva - base;  // looking below off
  while (off > floor) {
    const size_t word = (off - 1) / 64;
    uint64_t bits = ss->boundaries[word];
    const size_t top = (off - 1) % 64;  // highest bit position allowed in this word
    if (top < 63) bits &= (uint64_t{1} << (top + 1)) - 1;
    if (bits) {
      const size_t found = word * 64 + (63 - static_cast<size_t>(__builtin_clzll(bits)));
      return found >= floor ? std::optional<uint32_t>(static_cast<uint32_t>(base + found)) : std::nullopt;
    }
    off = word * 64;
  }
  return std::nullopt;
}

std::optional<Def> Analysis::straight_line_def(const Site& site, const ArgPosition& arg) {
  const std::optional<Loc> arg_loc = argument_loc(site, arg);
  const std::optional<RegionPlan> plan = arg_loc ? plan_region(site.rva) : std::nullopt;
  if (!plan || !on_sweep_stream(site.rva)) return std::nullopt;
  // Where the region's decoding starts, when its stream is the sweep's.
  const uint32_t region_start = plan->start.value_or(plan->sweep_start);
  uint32_t from = plan->sweep_start;
  if (plan->start) {
    const std::optional<uint32_t> joined = joins_sweep_stream(*plan->start, site.rva);
    if (!joined) return std::nullopt;
    from = *joined;
  }
  if (from > site.rva || site.rva - region_start >= limits_.max_region_insns) return std::nullopt;  // (never clipped)
  auto f = std::upper_bound(model_.functions.begin(), model_.functions.end(), region_start,
                            [](uint32_t x, const RuntimeFunction& fn) { return x < fn.begin_rva; });
  if (f != model_.functions.end() && f->begin_rva <= site.rva) return std::nullopt;  // a resynchronisation
  if (decoded_ >= limits_.decode_budget) return std::nullopt;  // (the full walk reports the exhausted budget)
  const CodeSection* sec = model_.section_at(site.rva);
  const size_t n = std::min<size_t>(sec->bytes.size(), sec->size);
  const uint32_t lowest = std::max(from, site.rva > kProofWindow ? site.rva - kProofWindow : 0);

  // Step back from the call along the one path, as resolve() would, one instruction at a time.
  Loc loc = *arg_loc;
  std::vector<Outcome> outcomes;
  if (!proof_run_) proof_run_ = std::make_shared<InsnRun>();
  for (uint32_t at = site.rva;;) {
    if (is_known_start(at) || is_function_entry(at) || has_edge_to(at)) return std::nullopt;
    const std::optional<uint32_t> prev_rva = sweep_boundary_before(at, lowest);
    if (!prev_rva) return std::nullopt;
    Insn prev;
    const size_t off = *prev_rva - sec->rva;
    if (!decoder_.decode(sec->bytes.data() + off, n - off, *prev_rva, prev)) {
      // A byte the sweep stepped over is a one-byte instruction of the region that does not fall through.
      Insn skipped;
      if (*prev_rva + 1 == at && !decoder_.decode_for_sweep(sec->bytes.data() + off, n - off, *prev_rva, skipped))
        return Def{Def::unknown, 0, at};
      return std::nullopt;
    }
    if (prev.end() != at) return std::nullopt;
    // Nothing else reaches `at`, and the instruction before does not fall into it: resolve() finds nothing.
    if (!prev.falls_through()) return Def{Def::unknown, 0, at};
    if (step_needs_region(prev, loc)) return std::nullopt;
    if (stores_through_other_base(prev, loc) && may_copy_sp_before(prev.rva, prev.op[0].base, from, region_start))
      return std::nullopt;
    proof_run_->insns.assign(1, prev);
    proof_region_.insns.clear();
    proof_region_.insns.append(proof_run_, 0, 1);
    outcomes.clear();
    step(proof_region_, 0, loc, outcomes);
    if (outcomes.size() != 1) return std::nullopt;
    if (outcomes[0].kind == Outcome::defined) return outcomes[0].def;
    loc = outcomes[0].loc;
    at = *prev_rva;
  }
}

}  // namespace tagwho::x86
