// Cheap proofs of a call site's argument. Most call sites set their arguments a few instructions before the
// call (mov r8d, 'Tag1' / push 'Tag1' / mov [esp+8], 'Tag1'). When nothing joins the code between that
// instruction and the call (no jump lands in it, no function starts in it), the backward walk of resolve()
// follows exactly that one path, so its answer is the one definition found by stepping back along it with
// the same step() (straight_line_def): without decoding the region around the site, which is most of the
// cost of analysing a driver with thousands of call sites. Reaching an instruction that does not fall
// through proves that nothing reaches the argument (resolve() finds only an unknown value there too).
// Where paths do join, possible_constants() follows all of them to bound the constants (for a search,
// which only needs to know that none is wanted).
//
// The steps must see the instructions the region would. The region decodes linearly from a known function
// start or from a boundary of the sweep; the proofs step back over the sweep's own boundaries (recorded as
// it went). Both are the same instructions from the first boundary they share on, when no .pdata function
// starts between the region's start and the site (the sweep resynchronises on those). Steps that would look
// at more of the region than one instruction (setcc after a cleared register, table loads, a call through a
// register for a stack slot) are left to the full walk; a store through another register than rsp is
// proved not to go through a copy of rsp, or left to it too.
#include <algorithm>

#include "analysis/x86_dataflow.hpp"

namespace tagwho::x86 {
namespace {

constexpr uint32_t kProofWindow = 256;  // bytes stepped back over at most before giving up

constexpr uint16_t bit(uint8_t reg) { return static_cast<uint16_t>(1u << reg); }

// Whether step() would look at other instructions of the region than `insn` for `loc`.
bool step_needs_region(const Insn& insn, const Loc& loc, bool x64) {
  const bool call = insn.flow == Flow::call || insn.flow == Flow::call_indirect;
  if (call && loc.kind != Loc::in_reg && !x64) return true;  // call_pops()
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

bool Analysis::may_copy_sp_before(uint32_t rva, uint8_t reg, const ProofContext& ctx) const {
  // sp_alias() steps back at most 16 instructions and finds a copy only in a mov/lea from rsp that writes
  // reg; it gives up at the first other write of reg or rsp and at code that does not fall through.
  uint32_t at = rva;
  for (int steps = 0; steps < 16; ++steps) {
    if (at == ctx.region_start) return false;  // the region's first instruction: nothing before it
    const std::optional<uint32_t> prev_rva = sweep_boundary_before(at, ctx.from);
    if (!prev_rva) return true;  // (what lies before is not known to be the region's)
    Insn prev;
    if (!decode_at(*ctx.sec, *prev_rva, prev) || prev.end() != at) return true;
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

bool Analysis::decode_at(const CodeSection& sec, uint32_t rva, Insn& out, bool sweep_only) const {
  const size_t n = sec.file_size();
  if (rva < sec.rva || rva - sec.rva >= n) return false;
  const size_t off = rva - sec.rva;
  if (sweep_only) return decoder_.decode_for_sweep(sec.bytes.data() + off, n - off, rva, out);
  if (decode_cache_.empty()) decode_cache_.resize(kDecodeCacheSize);
  DecodedInsn& cached = decode_cache_[rva % kDecodeCacheSize];
  if (cached.sec != &sec || cached.rva != rva) {
    cached.sec = &sec;
    cached.rva = rva;
    cached.ok = decoder_.decode(sec.bytes.data() + off, n - off, rva, cached.insn);
  }
  if (cached.ok) out = cached.insn;
  return cached.ok;
}

bool Analysis::joins_at(uint32_t rva) {
  if (!joins_built_) {
    joins_built_ = true;
    for (SweepSection& ss : sweep_sections_) {
      ss.joins.assign(ss.boundaries.size(), 0);
      const uint32_t base = ss.section->rva;
      const size_t n = ss.section->file_size();
      const auto mark = [&](uint32_t at) {
        if (at >= base && at - base < n) set_bit(ss.joins, at - base);
      };
      for (const Edge& e : edges_) mark(e.target);
      for (uint32_t start : known_starts_) mark(start);
    }
  }
  const SweepSection* ss = sweep_section_at(rva);
  if (!ss) return is_known_start(rva) || is_function_entry(rva) || has_edge_to(rva);
  const size_t off = rva - ss->section->rva;
  return bit_at(ss->joins, off);
}

bool Analysis::has_edge_to(uint32_t rva) const {
  auto it = std::lower_bound(edges_.begin(), edges_.end(), rva, [](const Edge& e, uint32_t x) { return e.target < x; });
  return it != edges_.end() && it->target == rva;
}

bool Analysis::on_sweep_stream(uint32_t rva) const {
  const SweepSection* ss = sweep_section_at(rva);
  if (!ss) return false;
  const size_t off = rva - ss->section->rva;
  return bit_at(ss->boundaries, off);
}

const Analysis::Join& Analysis::joins_sweep_stream(uint32_t start) {
  if (auto known = joins_.find(start); known != joins_.end()) return known->second;
  // Decode from start as build_region() does (an undecodable byte is a one-byte instruction) until an
  // instruction starts where one of the sweep's did: from there on both decode the same instructions. The
  // branches of the instructions before that point are the region's own (not among the sweep's edges).
  Join join;
  const CodeSection* sec = model_.section_at(start);
  const size_t n = sec ? sec->file_size() : 0;
  uint32_t at = start;
  for (int steps = 0; sec && steps < 64 && at - sec->rva < n; ++steps) {
    if (on_sweep_stream(at)) {
      join.at = at;
      break;
    }
    Insn insn;
    if (!decode_at(*sec, at, insn)) {
      ++at;
      continue;
    }
    if (insn.has_target && (insn.flow == Flow::jmp || insn.flow == Flow::jcc)) join.branch_targets.push_back(insn.target);
    at = insn.end();
  }
  std::sort(join.branch_targets.begin(), join.branch_targets.end());
  return joins_.emplace(start, std::move(join)).first->second;
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

std::optional<Analysis::ProofContext> Analysis::proof_context(uint32_t site) {
  const std::optional<RegionPlan> plan = plan_region(site);
  if (!plan || !on_sweep_stream(site)) return std::nullopt;
  ProofContext ctx;
  ctx.sec = model_.section_at(site);
  ctx.hi = plan->hi;
  // The region reads the bytes of the section holding its start (sections may overlap in a hostile file).
  if (ctx.sec != sweep_section_at(site)->section) return std::nullopt;
  // Where the region's decoding starts, and from where its stream is the sweep's.
  ctx.region_start = ctx.from = plan->sweep_start;
  if (plan->start) {
    const Join& join = joins_sweep_stream(*plan->start);
    if (!join.at) return std::nullopt;
    if (*join.at <= site) {
      ctx.region_start = *plan->start;
      ctx.from = *join.at;
      ctx.pre_join_targets = &join.branch_targets;
    }  // else decoding from the start steps over the site: region_for() decodes from sweep_start instead
  }
  if (ctx.from > site || site - ctx.region_start >= limits_.max_region_insns) return std::nullopt;  // (never clipped)
  if (model_.section_at(ctx.region_start) != ctx.sec) return std::nullopt;
  auto f = std::upper_bound(model_.functions.begin(), model_.functions.end(), ctx.region_start,
                            [](uint32_t x, const RuntimeFunction& fn) { return x < fn.begin_rva; });
  if (f != model_.functions.end() && f->begin_rva <= site) return std::nullopt;  // a resynchronisation
  if (decoded_ >= limits_.decode_budget) return std::nullopt;  // (the full walk reports the exhausted budget)
  ctx.lowest = std::max(ctx.from, site > kProofWindow ? site - kProofWindow : 0);
  return ctx;
}

Analysis::Before Analysis::instruction_before(uint32_t at, const ProofContext& ctx, Insn& prev) const {
  const std::optional<uint32_t> prev_rva = sweep_boundary_before(at, ctx.lowest);
  if (!prev_rva) return Before::unknown;
  if (!decode_at(*ctx.sec, *prev_rva, prev)) {
    // A byte the sweep stepped over is a one-byte instruction of the region that does not fall through.
    Insn skipped;
    if (*prev_rva + 1 == at && !decode_at(*ctx.sec, *prev_rva, skipped, true))
      return Before::none;
    return Before::unknown;
  }
  if (prev.end() != at) return Before::unknown;
  return prev.falls_through() ? Before::falls_in : Before::none;
}

bool Analysis::proof_step(const Insn& insn, const Loc& loc, const ProofContext& ctx, std::vector<Outcome>& out) {
  if (!proof_run_) proof_run_ = std::make_shared<InsnRun>();
  proof_run_->insns.assign(1, insn);
  const bool call = insn.flow == Flow::call || insn.flow == Flow::call_indirect;
  if (call && loc.kind != Loc::in_reg && !model_.x64) {
    // x86: what the callee pops (call_pops()) comes from the callee or the import, else from the caller's
    // next instructions (add esp, n / sub esp, n): the region's, which are the sweep's up to its end.
    if (!insn.has_target && !insn.mem_rva) return false;  // call reg: the register is resolved in the region
    if (ctx.hi - ctx.region_start >= limits_.max_region_insns) return false;  // (a clipped region ends sooner)
    const size_t n = ctx.sec->file_size();
    for (uint32_t at = insn.end(); proof_run_->insns.size() <= 8 && at < ctx.hi && at - ctx.sec->rva < n;) {
      Insn next;
      if (!decode_at(*ctx.sec, at, next)) {
        next = Insn{};  // as run_at() keeps an undecodable byte
        next.rva = at;
        next.length = 1;
        next.flow = Flow::stop;
      }
      proof_run_->insns.push_back(next);
      at = next.end();
    }
  } else if (step_needs_region(insn, loc, model_.x64)) {
    return false;
  }
  if (stores_through_other_base(insn, loc) && may_copy_sp_before(insn.rva, insn.op[0].base, ctx)) return false;
  proof_region_.insns.clear();
  proof_region_.insns.append(proof_run_, 0, proof_run_->insns.size());
  out.clear();
  step(proof_region_, 0, loc, out);
  return true;
}

std::optional<Def> Analysis::straight_line_def(const Site& site, const ArgPosition& arg) {
  const std::optional<Loc> arg_loc = argument_loc(site, arg);
  const std::optional<ProofContext> ctx = arg_loc ? proof_context(site.rva) : std::nullopt;
  if (!ctx) return std::nullopt;
  // Step back from the call along the one path, as resolve() would, one instruction at a time.
  Loc loc = *arg_loc;
  std::vector<Outcome> outcomes;
  for (uint32_t at = site.rva;;) {
    if (joins_at(at) || ctx->branched_to_before_join(at))
      return std::nullopt;
    Insn prev;
    switch (instruction_before(at, *ctx, prev)) {
      case Before::unknown:
        return std::nullopt;
      case Before::none:  // nothing else reaches `at` either: resolve() finds nothing
        return Def{Def::unknown, 0, at};
      case Before::falls_in:
        break;
    }
    if (!proof_step(prev, loc, *ctx, outcomes) || outcomes.size() != 1) return std::nullopt;
    if (outcomes[0].kind == Outcome::defined) return outcomes[0].def;
    loc = outcomes[0].loc;
    at = prev.rva;
  }
}

std::optional<std::vector<uint64_t>> Analysis::possible_constants(const Site& site, const ArgPosition& arg) {
  const std::optional<Loc> arg_loc = argument_loc(site, arg);
  const std::optional<ProofContext> ctx = arg_loc ? proof_context(site.rva) : std::nullopt;
  if (!ctx) return std::nullopt;
  constexpr size_t kMaxPoints = 64;  // (instruction, location) pairs looked at
  std::vector<uint64_t> values;
  std::vector<std::pair<uint32_t, Loc>> work{{site.rva, *arg_loc}};
  std::vector<std::pair<uint32_t, Loc>> seen = work;
  std::vector<Outcome> outcomes;
  std::vector<Insn> preds;
  while (!work.empty()) {
    const auto [at, loc] = work.back();
    work.pop_back();
    // At a function entry the value may be the caller's: a parameter is never settled here.
    if (is_function_entry(at) && entry_def(loc, at).kind == Def::param) return std::nullopt;
    if (ctx->branched_to_before_join(at)) return std::nullopt;  // (from code the proof does not see)
    preds.clear();
    if (!is_known_start(at)) {  // (resolve() does not fall into a known function start either)
      Insn prev;
      const Before before = instruction_before(at, *ctx, prev);
      if (before == Before::unknown) return std::nullopt;
      if (before == Before::falls_in) preds.push_back(prev);
    }
    // Jumps into `at`: from the region's own code only (a jump from another region is followed there, in
    // code this does not look at).
    auto edge = std::lower_bound(edges_.begin(), edges_.end(), at, [](const Edge& e, uint32_t x) { return e.target < x; });
    for (; edge != edges_.end() && edge->target == at; ++edge) {
      if (edge->kind == Edge::call) continue;
      // (A region is clipped at max_region_insns instructions: no further than as many bytes.)
      if (edge->source < ctx->from || edge->source >= ctx->hi ||
          edge->source - ctx->region_start >= limits_.max_region_insns)
        return std::nullopt;
      Insn source;
      if (!decode_at(*ctx->sec, edge->source, source)) return std::nullopt;
      preds.push_back(source);
    }
    for (const Insn& pred : preds) {
      if (!proof_step(pred, loc, *ctx, outcomes)) return std::nullopt;
      for (const Outcome& o : outcomes) {
        if (o.kind == Outcome::defined) {
          if (o.def.kind == Def::param || o.def.kind == Def::mem_load) return std::nullopt;
          if (o.def.kind == Def::constant) values.push_back(o.def.value);
          continue;
        }
        const std::pair<uint32_t, Loc> point{pred.rva, o.loc};
        if (std::find(seen.begin(), seen.end(), point) != seen.end()) continue;
        if (seen.size() >= kMaxPoints) return std::nullopt;
        seen.push_back(point);
        work.push_back(point);
      }
    }
  }
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

}  // namespace tagwho::x86
