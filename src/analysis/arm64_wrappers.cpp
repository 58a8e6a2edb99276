// The ARM64 side of wrappers across functions (wrappers.hpp): function entries and their parameters,
// callers of a function, and constants loaded from memory.
//
// Parameters. The backward walk stops at a function entry (a .pdata start, a bl target, the entry point);
// the value is then a parameter when it sits in x0-x7 or in a stack slot [sp+8k] at entry (no return address
// on the ARM64 stack: the first stack argument is at [sp]), with no pending arithmetic other than the
// truncation to 32 bits of "mov wD, wS". The same register or slot is the argument at a bl to the entry and
// at a b / b.cond / cbz / tbz from another function (a tail call).
//
// Memory constants. A load of 4 or 8 bytes through a base register that holds an image address (adrp, adrp +
// add, adr; possibly spilled to the stack and reloaded), not an IAT slot, gives a constant when
//   - the section is not writable (.rdata): "tag loaded from .rdata at 0x...", or
//   - the bytes are initialised writable data that no code writes and whose address is never taken. Every
//     adrp / adr into the global's page (and the page holding the 64 bytes below it) is followed forward
//     through the code (bounded, both ways at conditional branches), tracking the registers and sp-relative
//     spill slots that hold addresses derived from it (add/sub #imm, mov, str/ldr to [sp, #k]):
//       loads through them are harmless; stores through them ([base, #imm], any width, pairs) are recorded
//       with their address and size; any other use of them (passed to a call in x0-x7 or returned, stored as a
//       value, register-offset or writeback stores, atomics, unknown instructions, the walk's budget running
//       out) is an escape: of the exact address (then, as on x86, an escape up to 64 bytes below the global
//       makes it unprovable: the address of an enclosing struct or array), or of a bare page address (then
//       nothing in the page is provable). 8-byte image pointers in data or code (pointer tables, literal
//       pools) into the global's 8 bytes count as escapes too.
//     "tag loaded from global at 0x... (never written)".
//   Out of reach (reported as unknown, never as a wrong constant): globals in a page whose address escapes,
//   and stores through a pointer computed from an object more than 64 bytes below the global.
#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <tuple>

#include <capstone/capstone.h>

#include "analysis/arm64_dataflow.hpp"
#include "analysis/call_sites.hpp"
#include "core/format.hpp"

namespace tagwho::arm64 {
namespace {

constexpr uint32_t kTakenWindow = 64;      // bytes below a global whose escape makes it unprovable
constexpr uint32_t kFollowSteps = 1024;    // instructions followed per adrp / adr
constexpr size_t kMaxTracked = 8;          // registers and slots tracked at once per path
constexpr int kMaxStackArgs = 64;

// A truncation of the value to its low 32 bits or more (mov wD, wS): harmless for a 32-bit tag parameter.
bool only_truncations(const Loc& loc) {
  for (uint8_t i = 0; i < loc.nops; ++i)
    if (loc.ops[i].kind != ValueOp::and_ || (loc.ops[i].imm & 0xffffffffull) != 0xffffffffull) return false;
  return true;
}

bool plain_load(unsigned id) {
  switch (id) {
    case ARM64_INS_LDR: case ARM64_INS_LDUR: case ARM64_INS_LDP: case ARM64_INS_LDNP: case ARM64_INS_LDPSW:
    case ARM64_INS_LDRB: case ARM64_INS_LDRH: case ARM64_INS_LDRSB: case ARM64_INS_LDRSH: case ARM64_INS_LDRSW:
    case ARM64_INS_LDURB: case ARM64_INS_LDURH: case ARM64_INS_LDURSB: case ARM64_INS_LDURSH:
    case ARM64_INS_LDURSW: case ARM64_INS_LDAR: case ARM64_INS_LDARB: case ARM64_INS_LDARH:
    case ARM64_INS_LDXR: case ARM64_INS_LDXRB: case ARM64_INS_LDXRH: case ARM64_INS_LDAXR:
    case ARM64_INS_LDAXRB: case ARM64_INS_LDAXRH: case ARM64_INS_LDXP: case ARM64_INS_LDAXP:
    case ARM64_INS_LDTR: case ARM64_INS_LDTRB: case ARM64_INS_LDTRH: case ARM64_INS_LDTRSB:
    case ARM64_INS_LDTRSH: case ARM64_INS_LDTRSW: case ARM64_INS_PRFM: case ARM64_INS_PRFUM:
    case ARM64_INS_LD1: case ARM64_INS_LD1R: case ARM64_INS_LD2: case ARM64_INS_LD2R: case ARM64_INS_LD3:
    case ARM64_INS_LD3R: case ARM64_INS_LD4: case ARM64_INS_LD4R:
      return true;
    default:
      return false;
  }
}

// Plain stores with a [base, #imm] form: the bytes one register transfer writes (0: not such a store).
uint32_t plain_store_unit(const Insn& insn) {
  switch (insn.id) {
    case ARM64_INS_STRB: case ARM64_INS_STURB: case ARM64_INS_STLRB: case ARM64_INS_STTRB:
      return 1;
    case ARM64_INS_STRH: case ARM64_INS_STURH: case ARM64_INS_STLRH: case ARM64_INS_STTRH:
      return 2;
    case ARM64_INS_STR: case ARM64_INS_STUR: case ARM64_INS_STP: case ARM64_INS_STNP: case ARM64_INS_STLR:
    case ARM64_INS_STTR:
      return insn.op[0].kind == Operand::k_reg && (insn.op[0].size == 4 || insn.op[0].size == 8) ? insn.op[0].size
                                                                                                  : 16;
    default:
      return 0;
  }
}

bool pair_store(unsigned id) { return id == ARM64_INS_STP || id == ARM64_INS_STNP; }

// Instructions that read a register only to compare or test it: an address there goes nowhere.
bool compare_only(unsigned id) {
  switch (id) {
    case ARM64_INS_CMP: case ARM64_INS_CMN: case ARM64_INS_TST: case ARM64_INS_CBZ: case ARM64_INS_CBNZ:
    case ARM64_INS_TBZ: case ARM64_INS_TBNZ: case ARM64_INS_CCMP: case ARM64_INS_CCMN:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool Analysis::is_function_entry(uint32_t rva) const {
  return is_known_start(rva) && !thunks_.count(rva);
}

Def Analysis::entry_def(const Loc& loc, uint32_t entry) const {
  Def d{Def::unknown, 0, entry};
  if (!only_truncations(loc)) return d;
  Loc clean{loc.kind, loc.reg, loc.off};
  bool param = false;
  if (loc.kind == Loc::in_reg) {
    param = loc.reg <= 7;
  } else if (loc.kind == Loc::at_sp) {
    param = loc.off >= 0 && loc.off % 8 == 0 && loc.off < 8 * kMaxStackArgs;
  }
  if (param) {
    d.kind = Def::param;
    d.loc = clean;
  }
  return d;
}

std::vector<wrappers::CallerSite> Analysis::callers_of(uint32_t entry, size_t limit) {
  std::vector<wrappers::CallerSite> out;
  const RuntimeFunction* fn = model_.function_at(entry);
  if (fn && fn->begin_rva != entry) fn = nullptr;
  // A branch is a tail call only from another function (not a loop back to the entry).
  const auto same_function = [&](uint32_t source) {
    if (fn) return source >= fn->begin_rva && source < fn->end_rva;
    if (source < entry) return false;
    auto ks = std::upper_bound(known_starts_.begin(), known_starts_.end(), source);
    return ks != known_starts_.begin() && *(ks - 1) == entry;
  };
  const auto to = [entry](const std::vector<Branch>& list) {
    auto lo = std::lower_bound(list.begin(), list.end(), entry, [](const Branch& b, uint32_t x) { return b.target < x; });
    auto hi = std::upper_bound(lo, list.end(), entry, [](uint32_t x, const Branch& b) { return x < b.target; });
    return std::make_pair(lo, hi);
  };
  auto [lo, hi] = to(branches_);
  for (auto it = lo; it != hi && out.size() < limit; ++it) {
    if (it->call) {
      out.push_back({it->source, CallForm::direct, false});
    } else if (!same_function(it->source)) {
      out.push_back({it->source, CallForm::direct_tail, true});
    }
  }
  auto [clo, chi] = to(cond_branches_);
  for (auto it = clo; it != chi && out.size() < limit; ++it)
    if (!same_function(it->source)) out.push_back({it->source, CallForm::direct_tail, true});
  std::sort(out.begin(), out.end(), [](const wrappers::CallerSite& a, const wrappers::CallerSite& b) { return a.rva < b.rva; });
  return out;
}

std::vector<wrappers::Value> Analysis::values_at(const wrappers::CallerSite& site, const wrappers::EntryArg& arg) {
  trim_cache();
  const Region* region = region_for(site.rva);
  const int index = region ? region->index_of(site.rva) : -1;
  if (index < 0) return {wrappers::Value{}};
  Loc loc;
  if (arg.kind == wrappers::EntryArg::in_reg) {
    if (arg.reg > 30) return {wrappers::Value{}};
    loc = Loc{Loc::in_reg, arg.reg, 0};
  } else {
    // No return address on the stack: [sp+off] at the bl or b is [sp+off] at the callee's entry.
    if (arg.off < 0) return {wrappers::Value{}};
    loc = Loc{Loc::at_sp, kNoReg, arg.off};
  }
  return values_of(resolve(region, index, loc));
}

std::vector<wrappers::Value> Analysis::values_of(const std::vector<Def>& defs) {
  return analysis::values_of(defs, [this](uint32_t rva, uint8_t size) { return memory_constant(rva, size); });
}

// --- Never written ------------------------------------------------------------------------------------------

void Analysis::follow_address(uint32_t rva, uint8_t reg, uint64_t va, bool exact) {
  // A register (reg <= 30) or an sp-relative spill slot holding an address derived from the adrp / adr.
  struct Track {
    bool slot = false;
    uint8_t reg = 0;
    int64_t off = 0;  // slot: offset from the current sp
    uint64_t va = 0;
    bool exact = false;
    bool operator<(const Track& o) const {
      return std::tie(slot, reg, off, va, exact) < std::tie(o.slot, o.reg, o.off, o.va, o.exact);
    }
    bool operator==(const Track& o) const = default;
  };
  using State = std::vector<Track>;
  const auto to_rva = [this](uint64_t address) -> std::optional<uint32_t> {
    if (address < model_.image_base || address - model_.image_base > 0xffffffffull) return std::nullopt;
    return static_cast<uint32_t>(address - model_.image_base);
  };
  const auto escape = [&](const Track& t) {
    auto r = to_rva(t.va);
    if (!r) return;
    if (t.exact) {
      taken_.push_back(*r);
    } else {
      unprovable_pages_.push_back(*r & ~0xfffu);
    }
  };
  const auto escape_all = [&](const State& s) {
    for (const Track& t : s) {
      // Uses not seen: nothing in the page (or the pages around an exact address) is provable.
      if (auto r = to_rva(t.va)) {
        unprovable_pages_.push_back(*r & ~0xfffu);
        if (t.exact) unprovable_pages_.push_back((*r + 0xfffu) & ~0xfffu);
      }
    }
  };
  const auto find_reg = [](State& s, uint8_t r) -> Track* {
    for (Track& t : s)
      if (!t.slot && t.reg == r) return &t;
    return nullptr;
  };
  const auto drop_reg = [](State& s, uint8_t r) {
    s.erase(std::remove_if(s.begin(), s.end(), [r](const Track& t) { return !t.slot && t.reg == r; }), s.end());
  };

  std::vector<std::pair<uint32_t, State>> work;
  work.push_back({rva + 4, State{Track{false, reg, 0, va, exact}}});
  std::set<std::pair<uint32_t, State>> visited;
  uint32_t steps = 0;
  Insn insn;
  while (!work.empty()) {
    auto [at, state] = std::move(work.back());
    work.pop_back();
    if (state.empty()) continue;
    std::sort(state.begin(), state.end());
    if (!visited.insert({at, state}).second) continue;
    if (++steps > kFollowSteps || follow_budget_ == 0) {
      escape_all(state);
      for (auto& [a, s] : work) escape_all(s);
      return;
    }
    --follow_budget_;
    const CodeSection* sec = model_.section_at(at);
    auto word = sec && sec->executable ? sec->word(at) : std::nullopt;
    if (!word) {
      escape_all(state);
      continue;
    }
    if (!decoder_.decode(*word, at, insn) || insn.id == 0) {
      // udf / zero padding traps: nothing follows on this path.
      if ((*word & 0xffff0000u) == 0) continue;
      // Capstone 4 does not know every instruction (ARMv8.1 atomics: ldadd, stadd, swp, cas... write memory):
      // a tracked register in any register field escapes, and the path goes on.
      for (const Track& t : state)
        if (!t.slot)
          for (unsigned shift : {0u, 5u, 10u, 16u})
            if (((*word >> shift) & 31) == t.reg) {
              escape(t);
              break;
            }
      work.push_back({at + 4, std::move(state)});
      continue;
    }
    State next = state;
    std::vector<Track> defined;  // tracks this instruction creates (their registers are written by it)
    int mem = -1;
    for (int i = 0; i < insn.nops; ++i)
      if (insn.op[i].kind == Operand::k_mem) {
        mem = i;
        break;
      }
    const Operand* m = mem >= 0 ? &insn.op[mem] : nullptr;
    const bool load = plain_load(insn.id);
    const uint32_t unit = plain_store_unit(insn);
    // Registers the instruction reads as values (not as the base of a load/store).
    std::vector<int> value_ops;
    for (int i = 0; i < insn.nops; ++i) {
      const Operand& op = insn.op[i];
      if (op.kind != Operand::k_reg || op.reg > 30) continue;
      const bool dest = i == 0 && insn.writes_reg(op.reg) && insn.id != ARM64_INS_MOVK && insn.id != ARM64_INS_BFI &&
                        insn.id != ARM64_INS_BFXIL && insn.id != ARM64_INS_BFM;
      // The destinations of loads (ldp: two) are not reads.
      const bool load_dest = load && i < mem;
      if (!dest && !load_dest) value_ops.push_back(i);
    }

    if (m) {
      Track* base = m->base <= 30 ? find_reg(state, m->base) : nullptr;
      if (m->index != kNoReg && m->index <= 30 && find_reg(state, m->index)) escape(*find_reg(state, m->index));
      if (base) {
        if (insn.writeback) {
          escape(*base);
        } else if (load) {
          // harmless
        } else if (unit && m->index == kNoReg) {
          const uint32_t bytes = unit * (pair_store(insn.id) ? 2 : 1);
          if (auto r = to_rva(base->va + static_cast<uint64_t>(static_cast<int64_t>(m->disp))))
            stores_.emplace_back(*r, bytes);
        } else {
          escape(*base);  // register-offset stores, exclusive stores, anything else through the address
        }
      }
      // Spills: a tracked register stored to [sp, #k]; reloads from such a slot.
      const MemAccess access = mem_access(insn);
      if (m->base == kSp && access.base == kSp) {
        if (unit) {
          const int nregs = pair_store(insn.id) ? 2 : 1;
          const int64_t step = access.size ? access.size : 16;
          for (int i = 0; i < nregs; ++i) {
            const int64_t off = access.offset + i * step;
            // Overwritten slots are no longer tracked.
            next.erase(std::remove_if(next.begin(), next.end(),
                                      [&](const Track& t) { return t.slot && t.off < off + step && off < t.off + 8; }),
                       next.end());
            const Operand& src = insn.op[i];
            if (src.kind == Operand::k_reg && src.reg <= 30 && src.size == 8)
              if (Track* t = find_reg(state, src.reg)) {
                Track s = *t;
                s.slot = true;
                s.reg = 0;
                s.off = off;
                next.push_back(s);
              }
          }
          value_ops.erase(std::remove_if(value_ops.begin(), value_ops.end(),
                                         [&](int i) { return i < nregs && insn.op[i].size == 8; }),
                          value_ops.end());
        } else if (load) {
          const int nregs = insn.id == ARM64_INS_LDP ? 2 : 1;
          for (int i = 0; i < nregs && i < mem; ++i) {
            const Operand& dst = insn.op[i];
            if (dst.kind != Operand::k_reg || dst.reg > 30 || dst.size != 8) continue;
            const int64_t off = access.offset + i * (access.size ? access.size : 8);
            for (const Track& t : state)
              if (t.slot && t.off == off) {
                Track r = t;
                r.slot = false;
                r.reg = dst.reg;
                r.off = 0;
                defined.push_back(r);
              }
          }
        }
      }
      if (access.base == kSp && insn.writeback)
        for (Track& t : next)
          if (t.slot) t.off -= access.delta;
    }

    // Address arithmetic: add/sub xD, xT, #imm; mov xD, xT.
    bool arithmetic = false;
    if ((insn.id == ARM64_INS_ADD || insn.id == ARM64_INS_SUB) && insn.nops == 3 && insn.op[1].kind == Operand::k_reg &&
        insn.op[2].kind == Operand::k_imm && insn.op[0].kind == Operand::k_reg) {
      if (insn.op[0].reg == kSp && insn.op[1].reg == kSp) {
        const int64_t v = static_cast<int64_t>(static_cast<uint64_t>(insn.op[2].imm) << insn.op[2].shift);
        for (Track& t : next)
          if (t.slot) t.off -= insn.id == ARM64_INS_ADD ? v : -v;
        arithmetic = true;
      } else if (Track* t = insn.op[1].reg <= 30 ? find_reg(state, insn.op[1].reg) : nullptr) {
        if (insn.op[0].reg <= 30 && insn.op[0].size == 8) {
          const uint64_t v = static_cast<uint64_t>(insn.op[2].imm) << insn.op[2].shift;
          Track d = *t;
          d.reg = insn.op[0].reg;
          d.va = insn.id == ARM64_INS_ADD ? t->va + v : t->va - v;
          d.exact = true;
          defined.push_back(d);
          arithmetic = true;
        }
      }
    } else if (insn.id == ARM64_INS_MOV && insn.nops == 2 && insn.op[1].kind == Operand::k_reg &&
               insn.op[1].reg <= 30 && insn.op[0].kind == Operand::k_reg && insn.op[0].reg <= 30 &&
               insn.op[0].size == 8) {
      if (Track* t = find_reg(state, insn.op[1].reg)) {
        Track d = *t;
        d.reg = insn.op[0].reg;
        defined.push_back(d);
        arithmetic = true;
      }
    }
    if (!arithmetic && !compare_only(insn.id))
      for (int i : value_ops)
        if (Track* t = find_reg(state, insn.op[i].reg)) escape(*t);
    // sp changed some other way: spilled addresses can no longer be followed.
    if (insn.writes_reg(kSp) && !arithmetic && !(m && m->base == kSp && insn.writeback)) {
      State slots;
      for (const Track& t : next)
        if (t.slot) slots.push_back(t);
      escape_all(slots);
      next.erase(std::remove_if(next.begin(), next.end(), [](const Track& t) { return t.slot; }), next.end());
    }

    // Control flow and calls.
    // x0-x7 are arguments, x8 the indirect result address (an exact address: adrp alone leaves a page there,
    // which compilers never pass; a page left over in x8 is common and dead).
    const auto escape_args = [&](const State& s) {
      for (const Track& t : s)
        if (!t.slot && (t.reg <= 7 || (t.reg == 8 && t.exact))) escape(t);
    };
    for (uint8_t r = 0; r <= 30; ++r)
      if (insn.writes_reg(r)) drop_reg(next, r);
    for (const Track& d : defined) {
      drop_reg(next, d.reg);
      next.push_back(d);
    }
    if (next.size() > kMaxTracked) {
      escape_all(next);
      continue;
    }
    switch (insn.flow) {
      case Flow::normal:
        work.push_back({at + 4, std::move(next)});
        break;
      case Flow::call:
      case Flow::call_reg:
        escape_args(state);
        if (insn.flow == Flow::call_reg && insn.op[0].reg <= 30)
          if (Track* t = find_reg(state, insn.op[0].reg)) escape(*t);
        for (uint8_t r = 0; r <= 18; ++r) drop_reg(next, r);
        drop_reg(next, kLr);
        work.push_back({at + 4, std::move(next)});
        break;
      case Flow::jcc:
        if (insn.has_target) {
          if (is_known_start(insn.target)) escape_args(state);  // a conditional tail call
          else work.push_back({insn.target, next});
        }
        work.push_back({at + 4, std::move(next)});
        break;
      case Flow::jmp:
        if (!insn.has_target || is_known_start(insn.target)) {
          escape_args(state);  // a tail call
        } else {
          work.push_back({insn.target, std::move(next)});
        }
        break;
      case Flow::jmp_reg:
        escape_args(state);
        if (insn.op[0].reg <= 30)
          if (Track* t = find_reg(state, insn.op[0].reg)) escape(*t);
        break;
      case Flow::ret:
        if (Track* t = find_reg(state, 0)) escape(*t);
        break;
      case Flow::stop:
        break;
    }
  }
}

void Analysis::scan_page_uses(uint32_t page) {
  auto it = std::lower_bound(scanned_pages_.begin(), scanned_pages_.end(), page);
  if (it != scanned_pages_.end() && *it == page) return;
  scanned_pages_.insert(it, page);
  auto lo = std::lower_bound(adrps_.begin(), adrps_.end(), std::make_pair(page, 0u));
  for (auto a = lo; a != adrps_.end() && a->first < page + 0x1000u; ++a) {
    const CodeSection* sec = model_.section_at(a->second);
    auto word = sec ? sec->word(a->second) : std::nullopt;
    if (!word) continue;
    const bool adr = !enc::is_adrp(*word);
    follow_address(a->second, enc::rd(*word), model_.image_base + a->first, adr);
  }
  std::sort(stores_.begin(), stores_.end());
  std::sort(taken_.begin(), taken_.end());
  std::sort(unprovable_pages_.begin(), unprovable_pages_.end());
  unprovable_pages_.erase(std::unique(unprovable_pages_.begin(), unprovable_pages_.end()), unprovable_pages_.end());
}

bool Analysis::address_taken_near(uint32_t rva) {
  if (!data_pointers_) {
    std::vector<uint32_t> pointers;
    for (const CodeSection& sec : model_.sections) {
      const size_t n = sec.file_size();
      const size_t step = sec.executable ? 4 : 8;  // literal pools in code are 4-aligned
      for (size_t at = 0; at + 8 <= n && pointers.size() < 1'000'000; at += step) {
        const uint64_t va = sec.bytes.u64(at).value_or(0);
        if (va >= model_.image_base && va - model_.image_base <= 0xffffffffull)
          pointers.push_back(static_cast<uint32_t>(va - model_.image_base));
      }
    }
    std::sort(pointers.begin(), pointers.end());
    pointers.erase(std::unique(pointers.begin(), pointers.end()), pointers.end());
    data_pointers_ = std::move(pointers);
  }
  const CodeSection* sec = model_.section_at(rva);
  uint32_t lo = rva > kTakenWindow ? rva - kTakenWindow : 0;
  if (sec) lo = std::max(lo, sec->rva);
  const uint32_t hi = rva + 8;
  auto it = std::lower_bound(taken_.begin(), taken_.end(), lo);
  if (it != taken_.end() && *it < hi) return true;
  it = std::lower_bound(data_pointers_->begin(), data_pointers_->end(), rva);
  return it != data_pointers_->end() && *it < hi;
}

std::optional<MemoryConstant> Analysis::memory_constant(uint32_t rva, uint8_t size) {
  if (size != 4 && size != 8) return std::nullopt;
  if (slot(rva)) return std::nullopt;
  const CodeSection* sec = model_.section_at(rva);
  if (!sec) return std::nullopt;
  const size_t off = rva - sec->rva;
  if (off + size > sec->file_size()) return std::nullopt;  // not file-backed (.bss): no initial value to read
  MemoryConstant c;
  c.value = size == 8 ? sec->bytes.u64(off).value_or(0) : sec->bytes.u32(off).value_or(0);
  if (!sec->writable) {
    c.detail = "tag loaded from " + (sec->name.empty() ? std::string("read-only data") : sec->name) + " at " +
               hex(rva);
    return c;
  }
  if (sec->executable) return std::nullopt;
  const uint32_t first = std::max(sec->rva, rva > kTakenWindow ? rva - kTakenWindow : 0u) & ~0xfffu;
  const uint32_t last = (rva + size - 1) & ~0xfffu;
  for (uint32_t page = first; page <= last; page += 0x1000) {
    scan_page_uses(page);
    if (std::binary_search(unprovable_pages_.begin(), unprovable_pages_.end(), page)) return std::nullopt;
  }
  // Any store overlapping [rva, rva+size)? stores_ is sorted by start; stores are at most 32 bytes long.
  auto it = std::lower_bound(stores_.begin(), stores_.end(), std::make_pair(rva > 64 ? rva - 64 : 0u, 0u));
  for (; it != stores_.end() && it->first < rva + size; ++it)
    if (it->first + it->second > rva) return std::nullopt;
  if (address_taken_near(rva)) return std::nullopt;
  c.detail = "tag loaded from global at " + hex(rva) + " (never written)";
  return c;
}

}  // namespace tagwho::arm64
