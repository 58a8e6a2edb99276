// The ARM64 sweep, regions and the backward data-flow walk: from a program point, follow a value (in a
// register or a stack slot) back through the region's control-flow graph to the instructions defining it.
#include "core/budget.hpp"
#include "analysis/arm64_dataflow.hpp"
#include "analysis/radix_sort.hpp"

#include <capstone/capstone.h>

#include <algorithm>
#include <cstring>
#include <iterator>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tagwho::arm64 {
namespace {

uint64_t mask_to(uint64_t value, uint8_t size) {
  if (size == 0 || size >= 8) return value;
  return value & ((uint64_t{1} << (size * 8)) - 1);
}

bool overlaps(int64_t a, int64_t a_size, int64_t b, int64_t b_size) { return a < b + b_size && b < a + a_size; }

bool volatile_reg(uint8_t r) { return r <= 18 || r == kLr; }

using analysis::sort_unique;

// udf and zero padding: no instruction has a zero upper half.
constexpr Decoder::Group kPadding{0xffff0000u, 0};
bool is_padding(uint32_t w) { return (w & kPadding.mask) == kPadding.value; }

// Words after which execution does not fall through: b, br, ret, brk, udf / zero padding.
bool stops(uint32_t w) {
  return enc::is_b(w) || enc::is_br(w) || enc::is_ret(w) || (w & 0xffe0001fu) == 0xd4200000u /* brk */ ||
         is_padding(w);
}

}  // namespace

std::string hex(uint64_t value) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[value & 0xf]);
    value >>= 4;
  } while (value);
  return "0x" + out;
}

uint64_t apply_ops(uint64_t value, const Loc& loc) {
  for (uint8_t i = 0; i < loc.nops; ++i) {
    const ValueOp& op = loc.ops[i];
    const unsigned shift = static_cast<unsigned>(op.imm & (op.size >= 8 ? 63 : 31));
    switch (op.kind) {
      case ValueOp::add: value += op.imm; break;
      case ValueOp::and_: value &= op.imm; break;
      case ValueOp::or_: value |= op.imm; break;
      case ValueOp::xor_: value ^= op.imm; break;
      case ValueOp::shl: value = mask_to(value, op.size) << shift; break;
      case ValueOp::shr: value = mask_to(value, op.size) >> shift; break;
    }
    value = mask_to(value, op.size);
  }
  return value;
}

// --- Model ----------------------------------------------------------------------------------------------

const CodeSection* CodeModel::section_at(uint32_t rva) const {
  for (const CodeSection& s : sections)
    if (rva >= s.rva && rva - s.rva < s.size) return &s;
  return nullptr;
}

const RuntimeFunction* CodeModel::function_at(uint32_t rva) const {
  auto it = std::upper_bound(functions.begin(), functions.end(), rva,
                             [](uint32_t x, const RuntimeFunction& f) { return x < f.begin_rva; });
  if (it == functions.begin()) return nullptr;
  --it;
  return rva >= it->begin_rva && rva < it->end_rva ? &*it : nullptr;
}

int Region::index_of(uint32_t rva) const {
  if (rva < start || rva >= end || (rva - start) % 4 != 0) return -1;
  const size_t i = (rva - start) / 4;
  return i < insns.size() ? static_cast<int>(i) : -1;
}

// --- Analysis: pass 1 -------------------------------------------------------------------------------------

Analysis::Analysis(const CodeModel& model, Limits limits)
    : model_(model), limits_(limits), decoder_(model.image_base) {
  for (const ImportRef& import : model_.imports) {
    slots_.emplace(import.slot_rva, &import);
    kmdf_ = kmdf_ || import.name == kWdfBindImport;
  }
  if (!decoder_.ok()) problem("capstone: cannot open an ARM64 disassembler");
}

void Analysis::problem(std::string text) {
  if (problems_.size() < limits_.max_problems) problems_.push_back(std::move(text));
}

const ImportRef* Analysis::slot(uint32_t rva) const {
  auto it = slots_.find(rva);
  return it == slots_.end() ? nullptr : it->second;
}

bool Analysis::is_known_start(uint32_t rva) const {
  return std::binary_search(known_starts_.begin(), known_starts_.end(), rva);
}

bool Analysis::branched_to(const std::vector<Branch>& branches, uint32_t target) {
  auto it = std::lower_bound(branches.begin(), branches.end(), target,
                             [](const Branch& b, uint32_t x) { return b.target < x; });
  return it != branches.end() && it->target == target;
}

bool Analysis::joins_at_exactly(uint32_t rva) const {
  return is_known_start(rva) || branched_to(branches_, rva) || branched_to(cond_branches_, rva);
}

bool Analysis::may_join(uint32_t rva) const {
  const uint64_t slot = (uint64_t{rva} - join_base_) >> 2;  // (huge below join_base_)
  if (rva < join_base_ || slot >= uint64_t{join_bits_.size()} * 64) return true;
  return (join_bits_[slot >> 6] >> (slot & 63)) & 1;
}

void Analysis::note_joins() {
  uint64_t lo = UINT64_MAX, hi = 0, bytes = 0;
  for (const CodeSection& sec : model_.sections) {
    if (!sec.executable) continue;
    lo = std::min<uint64_t>(lo, sec.rva & ~3u);
    hi = std::max<uint64_t>(hi, uint64_t{sec.rva} + sec.size);
    bytes += sec.file_size();
  }
  if (lo >= hi || (hi - lo) / 4 > 4 * bytes + 4096) return;  // (sections far apart: no map)
  join_base_ = static_cast<uint32_t>(lo);
  join_bits_.assign(static_cast<size_t>(((hi - lo) / 4 + 64) / 64), 0);
  budget::charge(join_bits_.size() * sizeof(uint64_t));
  const auto set = [this](uint32_t rva) {
    const uint64_t slot = (uint64_t{rva} - join_base_) >> 2;
    if (rva >= join_base_ && slot < uint64_t{join_bits_.size()} * 64) join_bits_[slot >> 6] |= uint64_t{1} << (slot & 63);
  };
  for (const uint32_t start : known_starts_) set(start);
  for (const Branch& branch : branches_) set(branch.target);
  for (const Branch& branch : cond_branches_) set(branch.target);
}

bool Analysis::inside_function_body(uint32_t rva) const {
  const RuntimeFunction* f = model_.function_at(rva);
  return f && f->begin_rva < rva;
}

// "adrp xN, page; ldr xN, [xN, #off]; br xN" at rva: the IAT slot it jumps through.
std::optional<uint32_t> Analysis::thunk_slot(const CodeSection& sec, uint32_t rva) const {
  auto w0 = sec.word(rva), w1 = sec.word(rva + 4), w2 = sec.word(rva + 8);
  if (!w0 || !w1 || !w2 || !enc::is_adrp(*w0) || !enc::is_ldr_x_uimm(*w1) || !enc::is_br(*w2)) return std::nullopt;
  const uint8_t r = enc::rd(*w0);
  if (enc::rd(*w1) != r || enc::rn(*w1) != r || enc::rn(*w2) != r) return std::nullopt;
  const uint64_t page = ((model_.image_base + rva) & ~uint64_t{0xfff}) + static_cast<uint64_t>(enc::adrp_offset(*w0));
  const uint64_t va = page + enc::ldr_x_uimm_offset(*w1);
  if (va < model_.image_base || va - model_.image_base > 0xffffffffull) return std::nullopt;
  return static_cast<uint32_t>(va - model_.image_base);
}

void Analysis::sweep() {
  const auto in_code = [this](int64_t rva) {
    if (rva < 0 || rva > 0xffffffffll) return false;
    const CodeSection* s = model_.section_at(static_cast<uint32_t>(rva));
    return s && s->executable;
  };
  std::vector<std::pair<uint32_t, const CodeSection*>> thunk_candidates;
  std::vector<uint32_t> literal_loads;
  for (const CodeSection& sec : model_.sections) {
    if (!sec.executable) continue;
    // The words [first, end) in 4-byte steps: on the section's 4-byte grid of RVAs, below 4 GB (a hostile
    // section may start in the last 3 bytes, or run past it).
    const uint64_t first = (uint64_t{sec.rva} + 3) & ~uint64_t{3};
    const uint64_t end = std::min(uint64_t{sec.rva} + sec.file_size(), uint64_t{1} << 32);
    if (first + 4 > end) continue;
    const uint8_t* const bytes = sec.bytes.data();  // (the word at rva: bytes + (rva - sec.rva))
    // The word at rva: what it means for the model, and whether it is one after which execution does not
    // fall through (the next word is then noted in after_stop_, as is the section's first).
    const auto look_at = [&](uint32_t rva) {
      uint32_t w;
      std::memcpy(&w, bytes + (rva - sec.rva), 4);
      // Most words (data processing, loads and stores) are none of what follows: one test passes them
      // (of stops(), only udf and padding lie outside these groups).
      bool stop;
      if (!Decoder::address_dependent(w)) {
        stop = is_padding(w);
      } else {
        stop = stops(w);
        if (enc::is_bl(w) || enc::is_b(w)) {
          const int64_t target = static_cast<int64_t>(rva) + enc::branch26(w);
          if (in_code(target)) {
            branches_.push_back(Branch{rva, static_cast<uint32_t>(target), enc::is_bl(w)});
            if (enc::is_bl(w)) known_starts_.push_back(static_cast<uint32_t>(target));
          }
        } else if (enc::is_blr(w) || enc::is_br(w)) {
          indirect_.push_back(rva);
        } else if (enc::is_adrp(w)) {
          thunk_candidates.emplace_back(rva, &sec);
          const int64_t page = static_cast<int64_t>(((model_.image_base + rva) & ~uint64_t{0xfff}) - model_.image_base) +
                               enc::adrp_offset(w);
          if (page >= 0 && page <= 0xffffffffll) adrps_.emplace_back(static_cast<uint32_t>(page), rva);
        } else if ((w & 0xbf000000u) == 0x18000000u || (w & 0xff000000u) == 0x98000000u) {  // ldr/ldrsw literal
          literal_loads.push_back(rva);
        } else if ((w & 0x9f000000u) == 0x10000000u) {  // adr
          const uint32_t imm = ((w >> 5) & 0x7ffff) << 2 | ((w >> 29) & 3);
          const int64_t target = static_cast<int64_t>(rva) + (static_cast<int32_t>(imm << 11) >> 11);
          if (target >= 0 && target <= 0xffffffffll) adrps_.emplace_back(static_cast<uint32_t>(target), rva);
        } else {
          // Conditional branches (tail calls to wrappers may be conditional).
          int64_t offset = 0;
          bool cond = false;
          if ((w & 0xff000010u) == 0x54000000u || (w & 0x7e000000u) == 0x34000000u) {  // b.cond, cbz, cbnz
            offset = static_cast<int64_t>(static_cast<int32_t>(((w >> 5) & 0x7ffff) << 13) >> 13) * 4;
            cond = true;
          } else if ((w & 0x7e000000u) == 0x36000000u) {  // tbz, tbnz
            offset = static_cast<int64_t>(static_cast<int32_t>(((w >> 5) & 0x3fff) << 18) >> 18) * 4;
            cond = true;
          }
          const int64_t target = static_cast<int64_t>(rva) + offset;
          if (cond && in_code(target)) cond_branches_.push_back(Branch{rva, static_cast<uint32_t>(target), false});
        }
      }
      if (stop && uint64_t{rva} + 8 <= end) after_stop_.push_back(rva + 4);
    };
    after_stop_.push_back(static_cast<uint32_t>(first));
    uint64_t at = first;
#if defined(__SSE2__)
    // Four words at a time: only those address_dependent() or with a zero upper half are looked at (the
    // word-by-word loop was 13% of a search's time over files without the tag, most of it in large ARM64
    // drivers that hold one half of it somewhere).
    const auto with = [](uint32_t value) { return _mm_set1_epi32(static_cast<int>(value)); };
    const auto in_group = [&](__m128i v, Decoder::Group group) {
      return _mm_cmpeq_epi32(_mm_and_si128(v, with(group.mask)), with(group.value));
    };
    for (; at + 16 <= end; at += 16) {
      budget::tick();
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + (at - sec.rva)));
      __m128i wanted = in_group(v, kPadding);
      for (const Decoder::Group& group : Decoder::kAddressDependent)
        wanted = _mm_or_si128(wanted, in_group(v, group));
      for (auto lanes = static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(wanted))); lanes != 0; lanes &= lanes - 1)
        look_at(static_cast<uint32_t>(at + 4 * static_cast<unsigned>(__builtin_ctz(lanes))));
    }
#endif
    for (; at + 4 <= end; at += 4) {
      budget::tick();
      look_at(static_cast<uint32_t>(at));
    }
  }
  for (const RuntimeFunction& f : model_.functions) known_starts_.push_back(f.begin_rva);
  if (model_.entry_rva) known_starts_.push_back(model_.entry_rva);
  note_slot_reach(literal_loads);
  sort_unique(known_starts_);
  const auto target = [](const Branch& b) { return b.target; };
  const auto source = [](const Branch& b) { return b.source; };
  // With focus_on(): every direct branch as (source, target), by source, for note_focus_points() (only: a
  // large driver has a million). Both lists are in the sweep's order, by source (unless the sections are not
  // in address order).
  std::vector<std::pair<uint32_t, uint32_t>> branch_sources;
  if (focus_words_) {
    const auto as_pair = [](const Branch& b) { return std::make_pair(b.source, b.target); };
    branch_sources.reserve(branches_.size() + cond_branches_.size());
    std::transform(branches_.begin(), branches_.end(), std::back_inserter(branch_sources), as_pair);
    std::transform(cond_branches_.begin(), cond_branches_.end(), std::back_inserter(branch_sources), as_pair);
    const auto middle = branch_sources.begin() + static_cast<std::ptrdiff_t>(branches_.size());
    if (std::is_sorted(branch_sources.begin(), middle) && std::is_sorted(middle, branch_sources.end()))
      std::inplace_merge(branch_sources.begin(), middle, branch_sources.end());
    else
      std::sort(branch_sources.begin(), branch_sources.end());
  }
  analysis::sort_by_target(branches_, target, source);
  analysis::sort_by_target(cond_branches_, target, source);
  // (page, rva): by the page the adrp addresses, then by where it is
  analysis::sort_by_target(adrps_, [](const std::pair<uint32_t, uint32_t>& a) { return a.first; },
                           [](const std::pair<uint32_t, uint32_t>& a) { return a.second; });
  for (const auto& [rva, sec] : thunk_candidates) {
    auto slot_rva = thunk_slot(*sec, rva);
    if (!slot_rva) continue;
    const ImportRef* import = slot(*slot_rva);
    if (!import || inside_function_body(rva)) continue;
    const bool starts = branched_to(branches_, rva) || std::binary_search(after_stop_.begin(), after_stop_.end(), rva) ||
                        is_known_start(rva);
    if (starts) thunks_.emplace(rva, import);
  }
  for (const auto& [rva, import] : thunks_) known_starts_.push_back(rva);
  sort_unique(known_starts_);
  note_joins();
  if (focus_words_) note_focus_points(branch_sources);
}

// Where an IAT slot of a tag-taking API can be addressed from (Limits::targeted): an adrp of the slot's own
// page (then ldr [xN, #lo12], or add #lo12 first), an adr at most one page below the slot, and any load from
// a literal pool (an absolute address, from wherever).
void Analysis::note_slot_reach(const std::vector<uint32_t>& literal_loads) {
  std::vector<uint32_t> slots;
  for (const auto& [slot_rva, import] : slots_)
    if (import->api) slots.push_back(slot_rva);
  std::sort(slots.begin(), slots.end());
  slot_reach_ = literal_loads;
  for (const auto& [target, rva] : adrps_) {
    auto it = std::lower_bound(slots.begin(), slots.end(), target);
    if (it != slots.end() && *it - target < 0x1000) slot_reach_.push_back(rva);
  }
  sort_unique(slot_reach_);
}

// --- Regions ------------------------------------------------------------------------------------------------

void Analysis::trim_cache() {
  regions_.trim(limits_.max_regions_cached, limits_.max_cached_insns);
}

std::optional<std::pair<uint32_t, uint32_t>> Analysis::region_bounds(uint32_t rva) const {
  const CodeSection* sec = model_.section_at(rva);
  if (!sec || !sec->executable) return std::nullopt;
  const uint64_t sec_end = uint64_t{sec->rva} + sec->file_size();
  if (rva + uint64_t{4} > sec_end) return std::nullopt;
  uint64_t start = 0, end = 0;
  if (const RuntimeFunction* f = model_.function_at(rva); f && f->begin_rva >= sec->rva) {
    start = f->begin_rva;
    end = std::min<uint64_t>(f->end_rva, sec_end);
    if (end - start > limits_.max_function_bytes) {
      start = std::max<uint64_t>(start, rva > limits_.max_function_bytes - 4096 ? rva - (limits_.max_function_bytes - 4096) : 0);
      end = std::min<uint64_t>(end, uint64_t{rva} + 4096);
    }
  } else {
    start = std::max<uint64_t>(sec->rva, rva > limits_.window_before ? rva - limits_.window_before : 0);
    end = std::min<uint64_t>(sec_end, uint64_t{rva} + limits_.window_after);
    // Start at the nearest known function start, never inside a .pdata function that ends before rva.
    auto it = std::upper_bound(known_starts_.begin(), known_starts_.end(), rva);
    if (it != known_starts_.begin() && *std::prev(it) >= start) start = *std::prev(it);
    auto fit = std::upper_bound(model_.functions.begin(), model_.functions.end(), rva,
                                [](uint32_t x, const RuntimeFunction& fn) { return x < fn.begin_rva; });
    if (fit != model_.functions.end()) end = std::min<uint64_t>(end, fit->begin_rva);
    if (fit != model_.functions.begin() && std::prev(fit)->end_rva > start && std::prev(fit)->end_rva <= rva)
      start = std::prev(fit)->end_rva;
    if (it != known_starts_.end() && *it < end) end = *it;
  }
  start = sec->rva + ((start - sec->rva + 3) & ~uint64_t{3});
  if (start > rva) start = rva;
  if (end <= rva) end = uint64_t{rva} + 4;
  return std::make_pair(static_cast<uint32_t>(start), static_cast<uint32_t>(end));
}

const Region* Analysis::region_for(uint32_t rva) {
  const auto bounds = region_bounds(rva);
  return bounds ? build_region(bounds->first, bounds->second) : nullptr;
}

const Region* Analysis::build_region(uint32_t start, uint32_t end) {
  auto key = std::make_pair(start, end);
  if (const Region* cached = regions_.find(key)) return cached;
  const CodeSection* sec = model_.section_at(start);
  if (!sec) return nullptr;
  const uint64_t count = (end - start) / 4;
  if (decoded_ + count > limits_.decode_budget) {
    if (!budget_reported_) problem("decode budget exhausted: later call sites not analysed");
    budget_reported_ = true;
    return nullptr;
  }
  decoded_ += count;
  auto region = std::make_unique<Region>();
  region->start = start;
  region->end = start + static_cast<uint32_t>(count * 4);
  runs_.trim(SIZE_MAX, limits_.max_cached_insns);
  for (uint64_t at = start; at < region->end;) {
    const uint32_t rva = static_cast<uint32_t>(at);
    const uint32_t block = sec->rva + ((rva - sec->rva) & ~0xffu);  // on the section's word grid
    const std::shared_ptr<const InsnRun> run = block_at(*sec, block);
    const size_t from = (rva - block) / 4;
    const size_t to = std::min<size_t>(run->insns.size(), from + (region->end - rva) / 4);
    if (to <= from) break;  // (the end of the address space)
    region->insns.append(run, from, to);
    at = uint64_t{block} + to * 4;
  }
  for (size_t i = 0; i < region->insns.size(); ++i) {
    const Insn& insn = region->insns[i];
    if (insn.has_target && (insn.flow == Flow::jmp || insn.flow == Flow::jcc) && insn.target >= region->start &&
        insn.target < region->end && (insn.target - region->start) % 4 == 0)
      region->branch_in.emplace_back(insn.target, static_cast<uint32_t>(i));
  }
  std::sort(region->branch_in.begin(), region->branch_in.end());
  return regions_.add(key, std::move(region));
}

// The 64 words of the 256-byte block at `block` (counted from the section's start), decoded once and shared
// by every region that covers them. Words past the file's bytes decode as nothing.
std::shared_ptr<const InsnRun> Analysis::block_at(const CodeSection& sec, uint32_t block) {
  if (auto known = runs_.find(block)) return known;
  auto run = std::make_shared<InsnRun>();
  run->start = block;
  run->insns.reserve(64);
  for (uint64_t at = block; at < uint64_t{block} + 0x100 && at <= 0xfffffffcull; at += 4) {
    budget::tick();
    const uint32_t rva = static_cast<uint32_t>(at);
    if (auto w = sec.word(rva)) {
      decoder_.decode_append(*w, rva, run->insns);
    } else {
      run->insns.emplace_back().rva = rva;
    }
  }
  run->next = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{block} + 0x100, 0xffffffffull));
  run->insns.shrink_to_fit();  // (charged by its capacity)
  return runs_.add(block, std::move(run));
}

// --- The backward step ------------------------------------------------------------------------------------

Analysis::Outcome Analysis::load_from(const Region& region, int index, const Insn& insn, const MemAccess& access,
                                      uint8_t size, const Loc& loc) {
  Outcome o;
  o.kind = Outcome::defined;
  o.def = Def{Def::unknown, 0, insn.rva};
  if (size < 4 || access.base == kNoReg) return o;
  if (access.base == kSp || access.base == kFp) {
    if (access.base == kSp && access.offset < 0) return o;
    if (access.offset < INT32_MIN || access.offset > INT32_MAX) return o;
    o.kind = Outcome::pass;
    o.loc = Loc{access.base == kSp ? Loc::at_sp : Loc::at_fp, kNoReg, static_cast<int32_t>(access.offset)};
    o.loc.nops = loc.nops;
    o.loc.ops = loc.ops;
    return o;
  }
  // Another base register holding an image address (adrp [+ add]): an IAT slot (8 bytes), or memory that
  // may hold a constant (4 or 8 bytes: memory_constant() decides).
  if (access.base > 30 || (size != 4 && size != 8) || nested_ >= limits_.max_nested) return o;
  ++nested_;
  std::vector<Def> bases = resolve(&region, index, Loc{Loc::in_reg, access.base, 0});
  --nested_;
  std::optional<uint32_t> found;
  for (const Def& b : bases) {
    if (b.kind != Def::address && b.kind != Def::constant) return o;
    const uint64_t va = b.value + static_cast<uint64_t>(access.offset);
    if (va < model_.image_base || va - model_.image_base > 0xffffffffull) return o;
    const uint32_t rva = static_cast<uint32_t>(va - model_.image_base);
    if (found && *found != rva) return o;
    found = rva;
  }
  if (!found) return o;
  if (slot(*found)) {
    if (size != 8 || loc.nops > 0) return o;
    o.def = Def{Def::slot_load, *found, insn.rva};
    return o;
  }
  o.def = Def{Def::mem_load, *found, insn.rva, size, loc};
  return o;
}

void Analysis::step(const Region& region, int index, const Loc& loc, std::vector<Outcome>& out) {
  const Insn& insn = region.insns[static_cast<size_t>(index)];
  const bool is_call = insn.flow == Flow::call || insn.flow == Flow::call_reg;

  Outcome unknown;
  unknown.kind = Outcome::defined;
  unknown.def = Def{Def::unknown, 0, insn.rva};
  Outcome same;
  same.kind = Outcome::pass;
  same.loc = loc;
  const auto constant = [&](uint64_t value) {
    Outcome o;
    o.kind = Outcome::defined;
    o.def = Def{Def::constant, apply_ops(value, loc), insn.rva};
    return o;
  };
  const auto pass_to = [&](Loc next) {
    Outcome o;
    o.kind = Outcome::pass;
    o.loc = next;
    o.loc.nops = loc.nops;
    o.loc.ops = loc.ops;
    return o;
  };
  // The value of a source register operand (xzr reads as 0).
  const auto from_reg = [&](const Operand& op) {
    if (op.kind != Operand::k_reg || op.other_shift || op.shift) return unknown;
    if (op.reg == kZr) return constant(0);
    if (op.reg > 30) return unknown;
    return pass_to(Loc{Loc::in_reg, op.reg, 0});
  };
  // Continue with `next` after prepending operations (in execution order) to the pending arithmetic.
  const auto then_ops = [&](Loc next, std::initializer_list<ValueOp> ops) {
    if (loc.nops + ops.size() > kMaxValueOps) return unknown;
    Outcome o;
    o.kind = Outcome::pass;
    o.loc = next;
    o.loc.nops = static_cast<uint8_t>(loc.nops + ops.size());
    size_t i = 0;
    for (const ValueOp& op : ops) o.loc.ops[i++] = op;
    for (uint8_t k = 0; k < loc.nops; ++k) o.loc.ops[i++] = loc.ops[k];
    return o;
  };
  const auto then_op_on = [&](const Operand& src, ValueOp op) {
    if (src.kind != Operand::k_reg || src.other_shift || src.shift) return unknown;
    if (src.reg == kZr) {
      Loc one;
      one.nops = 1;
      one.ops[0] = op;
      return constant(apply_ops(0, one));
    }
    if (src.reg > 30) return unknown;
    return then_ops(Loc{Loc::in_reg, src.reg, 0}, {op});
  };

  // "op wD, wA, wB[, lsl #k]" where one source is a constant (orr w8, w20, w8 after mov w8, #0x140000): a
  // nested walk of the other register (bounded by max_nested) finds the constant, the walk goes on with the
  // other one. `commutes`: either source may be the constant (else only the second: sub).
  const auto reg_reg = [&](ValueOp::Kind kind, bool commutes) {
    const Operand& d = insn.op[0];
    const Operand& a = insn.op[1];
    const Operand& b = insn.op[2];
    if (a.kind != Operand::k_reg || b.kind != Operand::k_reg || a.other_shift || b.other_shift || a.shift ||
        a.reg > 30 || (b.reg > 30 && b.reg != kZr) || nested_ >= limits_.max_nested || d.size < 4)
      return unknown;
    const auto single_constant = [&](const Operand& src) -> std::optional<uint64_t> {
      if (src.reg == kZr) return 0;
      ++nested_;
      const std::vector<Def> defs = resolve(&region, index, Loc{Loc::in_reg, src.reg, 0});
      --nested_;
      std::optional<uint64_t> value;
      for (const Def& def : defs) {
        if (def.kind != Def::constant) return std::nullopt;
        const uint64_t v = mask_to(def.value, src.size);
        if (value && *value != v) return std::nullopt;
        value = v;
      }
      return value;
    };
    const auto with = [&](const Operand& other, uint64_t c) {
      if (kind == ValueOp::add && insn.id == ARM64_INS_SUB) c = 0 - c;
      return then_op_on(other, ValueOp{kind, d.size, mask_to(c, d.size)});
    };
    if (auto c = single_constant(b)) return with(a, mask_to(*c << (b.shift & 63), d.size));
    if (commutes && !b.shift) {
      if (auto c = single_constant(a)) return with(b, *c);
    }
    return unknown;
  };

  if (insn.id == 0) return out.push_back(unknown);

  if (loc.kind == Loc::in_reg) {
    const uint8_t r = loc.reg;
    if (!insn.writes_reg(r)) {
      if (is_call && volatile_reg(r)) return out.push_back(unknown);
      return out.push_back(same);
    }
    const Operand& d = insn.op[0];
    const bool dest = insn.nops >= 1 && d.kind == Operand::k_reg && d.reg == r && d.size >= 4;
    const uint8_t size = d.size;
    const Operand& a = insn.op[1];
    const Operand& b = insn.op[2];
    if (!dest) {
      // The second register of ldp.
      if (insn.id == ARM64_INS_LDP && insn.nops >= 3 && a.kind == Operand::k_reg && a.reg == r && a.size >= 4) {
        MemAccess access = mem_access(insn);
        if (access.base != r && access.base != insn.op[0].reg) {
          access.offset += access.size;
          return out.push_back(load_from(region, index, insn, access, a.size, loc));
        }
      }
      return out.push_back(unknown);
    }
    switch (insn.id) {
      case ARM64_INS_MOVZ:
        if (insn.nops == 2 && a.kind == Operand::k_imm) return out.push_back(constant(mask_to(static_cast<uint64_t>(a.imm) << a.shift, size)));
        break;
      case ARM64_INS_MOVN:
        if (insn.nops == 2 && a.kind == Operand::k_imm)
          return out.push_back(constant(mask_to(~(static_cast<uint64_t>(a.imm) << a.shift), size)));
        break;
      case ARM64_INS_MOVK:
        if (insn.nops == 2 && a.kind == Operand::k_imm && a.shift < 64) {
          const uint64_t field = uint64_t{0xffff} << a.shift;
          return out.push_back(then_ops(Loc{Loc::in_reg, r, 0},
                                        {ValueOp{ValueOp::and_, size, ~field},
                                         ValueOp{ValueOp::or_, size, (static_cast<uint64_t>(a.imm) << a.shift) & field}}));
        }
        break;
      case ARM64_INS_MOV:
        if (insn.nops == 2 && a.kind == Operand::k_imm) return out.push_back(constant(mask_to(static_cast<uint64_t>(a.imm), size)));
        if (insn.nops == 2 && a.kind == Operand::k_reg && a.reg != kSp) {
          if (size == 4 && a.reg <= 30) return out.push_back(then_ops(Loc{Loc::in_reg, a.reg, 0}, {ValueOp{ValueOp::and_, 4, 0xffffffffu}}));
          return out.push_back(from_reg(a));
        }
        break;
      case ARM64_INS_ORR:
      case ARM64_INS_AND:
      case ARM64_INS_EOR:
        if (insn.nops == 3 && b.kind == Operand::k_imm) {
          const ValueOp::Kind kind = insn.id == ARM64_INS_ORR ? ValueOp::or_ : insn.id == ARM64_INS_AND ? ValueOp::and_ : ValueOp::xor_;
          return out.push_back(then_op_on(a, ValueOp{kind, size, mask_to(static_cast<uint64_t>(b.imm), size)}));
        }
        if (insn.id == ARM64_INS_ORR && insn.nops == 3 && a.kind == Operand::k_reg && a.reg == kZr)
          return out.push_back(from_reg(b));
        if (insn.nops == 3) {
          const ValueOp::Kind kind = insn.id == ARM64_INS_ORR ? ValueOp::or_ : insn.id == ARM64_INS_AND ? ValueOp::and_ : ValueOp::xor_;
          return out.push_back(reg_reg(kind, true));
        }
        break;
      case ARM64_INS_ADD:
      case ARM64_INS_SUB:
        if (insn.nops == 3 && b.kind == Operand::k_imm && a.kind == Operand::k_reg && a.reg <= 30) {
          uint64_t v = static_cast<uint64_t>(b.imm) << b.shift;
          if (insn.id == ARM64_INS_SUB) v = 0 - v;
          return out.push_back(then_ops(Loc{Loc::in_reg, a.reg, 0}, {ValueOp{ValueOp::add, size, mask_to(v, size)}}));
        }
        if (insn.nops == 3) return out.push_back(reg_reg(ValueOp::add, insn.id == ARM64_INS_ADD));
        break;
      case ARM64_INS_LSL:
      case ARM64_INS_LSR:
        if (insn.nops == 3 && b.kind == Operand::k_imm)
          return out.push_back(then_op_on(a, ValueOp{insn.id == ARM64_INS_LSL ? ValueOp::shl : ValueOp::shr, size,
                                                     static_cast<uint64_t>(b.imm)}));
        break;
      case ARM64_INS_ADRP:
      case ARM64_INS_ADR:
        if (insn.nops == 2 && a.kind == Operand::k_imm && size == 8) {
          Outcome o;
          o.kind = Outcome::defined;
          o.def = Def{Def::address, apply_ops(static_cast<uint64_t>(a.imm), loc), insn.rva};
          return out.push_back(o);
        }
        break;
      case ARM64_INS_LDR:
      case ARM64_INS_LDUR:
      case ARM64_INS_LDP: {
        if (insn.id == ARM64_INS_LDR && insn.nops == 2 && a.kind == Operand::k_imm) {
          // ldr wN, label: a constant from a literal pool.
          const uint64_t va = static_cast<uint64_t>(a.imm);
          if (va >= model_.image_base && va - model_.image_base < 0xffffffffull) {
            const uint32_t at = static_cast<uint32_t>(va - model_.image_base);
            if (const CodeSection* s = model_.section_at(at); s && s->executable) {
              if (auto lo = s->word(at)) {
                uint64_t v = *lo;
                if (size == 8) {
                  auto hi = s->word(at + 4);
                  if (!hi) break;
                  v |= uint64_t{*hi} << 32;
                }
                return out.push_back(constant(v));
              }
            }
          }
          break;
        }
        const MemAccess access = mem_access(insn);
        if (access.base == r && insn.writeback) break;  // writeback into the loaded register: unpredictable
        return out.push_back(load_from(region, index, insn, access, size, loc));
      }
      case ARM64_INS_CSEL:
        if (insn.nops == 3) {
          out.push_back(from_reg(a));
          out.push_back(from_reg(b));
          return;
        }
        break;
      case ARM64_INS_CSINC:
        if (insn.nops == 3) {
          out.push_back(from_reg(a));
          out.push_back(then_op_on(b, ValueOp{ValueOp::add, size, 1}));
          return;
        }
        break;
      case ARM64_INS_CINC:
        if (insn.nops == 2) {
          out.push_back(from_reg(a));
          out.push_back(then_op_on(a, ValueOp{ValueOp::add, size, 1}));
          return;
        }
        break;
      case ARM64_INS_CSET:
        if (insn.nops == 1) {
          out.push_back(constant(0));
          out.push_back(constant(1));
          return;
        }
        break;
      case ARM64_INS_CSETM:
        if (insn.nops == 1) {
          out.push_back(constant(0));
          out.push_back(constant(mask_to(~uint64_t{0}, size)));
          return;
        }
        break;
      default:
        break;
    }
    return out.push_back(unknown);
  }

  // A stack slot: [sp + off] or [x29 + off] at the point after the instruction.
  const uint8_t base = loc.kind == Loc::at_sp ? kSp : kFp;
  int64_t off = loc.off;
  const bool moves_base = insn.writes_reg(base);
  MemAccess access;
  if (is_load(insn.id) || is_store(insn.id)) access = mem_access(insn);
  if (moves_base && access.base == base && insn.writeback) off += access.delta;  // the slot relative to base before
  if (is_store(insn.id) && access.base == base) {
    const int nregs = insn.id == ARM64_INS_STP ? 2 : 1;
    const int64_t unit = access.size ? access.size : 16;
    for (int i = 0; i < nregs; ++i) {
      const int64_t at = access.offset + i * unit;
      const Operand& src = insn.op[i];
      if (at == off && access.size >= 4 && src.kind == Operand::k_reg) {
        if (src.reg == kZr) return out.push_back(constant(0));
        if (src.reg > 30) return out.push_back(unknown);
        return out.push_back(pass_to(Loc{Loc::in_reg, src.reg, 0}));
      }
      if (overlaps(at, unit, off, 4)) return out.push_back(unknown);
    }
  } else if (is_store(insn.id) && access.base == kNoReg) {
    // Register-offset stores: only a problem when they address the slot's base.
    for (int i = 0; i < insn.nops; ++i)
      if (insn.op[i].kind == Operand::k_mem && insn.op[i].base == base) return out.push_back(unknown);
  }
  if (moves_base && !(access.base == base && insn.writeback)) {
    const Operand& d = insn.op[0];
    const Operand& a = insn.op[1];
    const Operand& b = insn.op[2];
    if (base == kSp && (insn.id == ARM64_INS_SUB || insn.id == ARM64_INS_ADD) && insn.nops == 3 &&
        d.kind == Operand::k_reg && d.reg == kSp && a.kind == Operand::k_reg && a.reg == kSp && b.kind == Operand::k_imm) {
      const int64_t v = static_cast<int64_t>(static_cast<uint64_t>(b.imm) << b.shift);
      off += insn.id == ARM64_INS_SUB ? -v : v;
    } else if (base == kFp && insn.id == ARM64_INS_MOV && insn.nops == 2 && a.kind == Operand::k_reg && a.reg == kSp) {
      Outcome o = pass_to(Loc{Loc::at_sp, kNoReg, loc.off});
      if (loc.off < 0) return out.push_back(unknown);
      return out.push_back(o);
    } else if (base == kFp && insn.id == ARM64_INS_ADD && insn.nops == 3 && a.kind == Operand::k_reg && a.reg == kSp &&
               b.kind == Operand::k_imm) {
      const int64_t v = loc.off + static_cast<int64_t>(static_cast<uint64_t>(b.imm) << b.shift);
      if (v < 0 || v > INT32_MAX) return out.push_back(unknown);
      return out.push_back(pass_to(Loc{Loc::at_sp, kNoReg, static_cast<int32_t>(v)}));
    } else {
      return out.push_back(unknown);
    }
  }
  if ((base == kSp && off < 0) || off < INT32_MIN || off > INT32_MAX) return out.push_back(unknown);
  Outcome moved = same;
  moved.loc.off = static_cast<int32_t>(off);
  out.push_back(moved);
}

// --- The walk ----------------------------------------------------------------------------------------------

size_t Analysis::ResolveKeyHash::operator()(const ResolveKey& k) const {
  uint64_t h = static_cast<uint64_t>(k.index) * 0x9e3779b97f4a7c15ull;
  h = h * 31 + (static_cast<uint64_t>(k.loc.kind) << 8 | k.loc.reg);
  h = h * 31 + static_cast<uint32_t>(k.loc.off);
  for (uint8_t i = 0; i < k.loc.nops; ++i) h = h * 31 + (k.loc.ops[i].imm ^ (uint64_t{k.loc.ops[i].kind} << 56));
  return static_cast<size_t>(h ^ (h >> 29));
}

std::vector<Def> Analysis::resolve(const Region* region, int index, Loc loc) {
  struct Item {
    int index;
    Loc loc;
  };
  std::vector<Def> defs;
  const auto add_def = [&](const Def& d) {
    for (Def& e : defs) {
      if (e.kind == d.kind && (d.kind == Def::unknown || e.value == d.value) &&
          (d.kind != Def::param || (e.rva == d.rva && e.loc == d.loc)) &&
          (d.kind != Def::mem_load || (e.loc == d.loc && e.size == d.size))) {
        if (d.kind != Def::param) e.rva = std::min(e.rva, d.rva);
        return;
      }
    }
    if (defs.size() < limits_.max_defs) defs.push_back(d);
  };
  if (proving_) {
    // straight_line_walk(): a step walks further back from its one instruction, along the same line.
    const std::optional<Def> def =
        region && index == 0 && region->insns.size() == 1
            ? straight_line_walk(region->insns[0].rva, loc, proof_region_start_)
            : std::nullopt;
    if (def) return {*def};
    needed_region_ = true;
    return {Def{}};
  }
  if (!region || index < 0 || static_cast<size_t>(index) >= region->insns.size()) return {Def{}};
  const Region& r = *region;
  std::vector<Item> work{Item{index, loc}};
  const ResolveVisits::Lease visited(resolve_visits_);
  std::vector<Outcome> outcomes;
  std::vector<int> preds;
  uint32_t steps = 0;
  if (nested_ == 0) total_steps_ = 0;
  while (!work.empty()) {
    budget::tick();
    Item item = work.back();
    work.pop_back();
    if (++steps > limits_.max_steps || ++total_steps_ > limits_.max_total_steps) {
      problem("data-flow step limit reached at " + hex(r.insns[static_cast<size_t>(item.index)].rva));
      add_def(Def{});
      break;
    }
    const Insn& at = r.insns[static_cast<size_t>(item.index)];
    const bool known = is_known_start(at.rva);
    preds.clear();
    if (item.index > 0 && !known && r.insns[static_cast<size_t>(item.index - 1)].falls_through())
      preds.push_back(item.index - 1);
    auto range = std::equal_range(r.branch_in.begin(), r.branch_in.end(), std::make_pair(at.rva, 0u),
                                  [](const auto& x, const auto& y) { return x.first < y.first; });
    for (auto it = range.first; it != range.second; ++it) {
      if (known && r.insns[it->second].rva < at.rva) continue;  // a jump into a function start: a tail call
      preds.push_back(static_cast<int>(it->second));
    }
    // At a function entry the value may come from the caller (a parameter), whatever jumps back to the entry.
    if (known && is_function_entry(at.rva)) add_def(entry_def(item.loc, at.rva));
    else if (preds.empty()) add_def(Def{Def::unknown, 0, at.rva});
    if (preds.empty()) continue;
    for (int p : preds) {
      if (!visited->insert(ResolveKey{p, item.loc})) continue;
      outcomes.clear();
      step(r, p, item.loc, outcomes);
      for (const Outcome& o : outcomes) {
        if (o.kind == Outcome::defined)
          add_def(o.def);
        else
          work.push_back(Item{p, o.loc});
      }
    }
  }
  return defs;
}

}  // namespace tagwho::arm64
