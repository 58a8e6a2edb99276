// The backward data-flow walk: from a program point, follow a value (in a register or a stack slot) back
// through the region's control-flow graph to the instructions that define it.
#include "core/budget.hpp"
#include "analysis/x86_dataflow.hpp"

#include <algorithm>
#include <string_view>

namespace tagwho::x86 {
namespace {

constexpr uint16_t bit(uint8_t reg) { return static_cast<uint16_t>(1u << reg); }

uint64_t mask_to(uint64_t value, uint8_t size) {
  if (size >= 8) return value;
  if (size == 0) return value;
  return value & ((1ull << (size * 8)) - 1);
}

bool is_stack_base(const Operand& op) {
  return op.kind == OpKind::mem && op.base == kRsp && op.index == kNoReg && !op.segment_override;
}
bool is_frame_base(const Operand& op, uint8_t base) {
  return op.kind == OpKind::mem && op.base == base && op.index == kNoReg && !op.segment_override;
}
bool overlaps(int64_t a, int64_t a_size, int64_t b, int64_t b_size) { return a < b + b_size && b < a + a_size; }

// stdcall argument bytes of imports that the x86 walk may have to step over (the callee pops them).
struct KnownPops {
  std::string_view name;
  uint32_t bytes;
};
constexpr KnownPops kKnownPops[] = {
    {"ExAllocatePoolWithTag", 12}, {"ExAllocatePoolWithQuotaTag", 12}, {"ExAllocatePoolWithTagPriority", 16},
    {"ExAllocatePool2", 16}, {"ExAllocatePool3", 24}, {"ExAllocatePool", 8}, {"ExAllocatePoolWithQuota", 8},
    {"ExFreePoolWithTag", 8}, {"ExFreePool2", 16}, {"ExFreePool", 4},
    {"ExInitializeNPagedLookasideList", 28}, {"ExInitializePagedLookasideList", 28},
    {"ExInitializeLookasideListEx", 32}, {"ExDeleteNPagedLookasideList", 4}, {"ExDeletePagedLookasideList", 4},
    {"ExCreatePool", 16}, {"IoInitializeRemoveLockEx", 20},
    {"NdisAllocateMemoryWithTag", 12}, {"NdisAllocateMemoryWithTagPriority", 16},
    {"NdisFreeMemoryWithTag", 8}, {"NdisFreeMemoryWithTagPriority", 12}, {"NdisFreeMemory", 12},
    {"FltAllocatePoolAlignedWithTag", 16}, {"FltFreePoolAlignedWithTag", 12}, {"VideoPortAllocatePool", 16},
    {"ObReferenceObjectByHandleWithTag", 28}, {"ObReferenceObjectByPointerWithTag", 20},
    {"ObfReferenceObjectWithTag", 0}, {"ObfDereferenceObjectWithTag", 0},  // __fastcall: both in registers
    {"ObDereferenceObjectDeferDeleteWithTag", 8}, {"ObfReferenceObject", 0}, {"ObfDereferenceObject", 0},
    {"RtlInitUnicodeString", 8}, {"RtlCompareMemory", 12}, {"KeBugCheckEx", 20}, {"KeBugCheck", 4},
    {"IoCreateDevice", 28}, {"IoDeleteDevice", 4}, {"IoCompleteRequest", 8},
    {"KeInitializeSpinLock", 4}, {"KeWaitForSingleObject", 20}, {"KeSetEvent", 12}, {"KeInitializeEvent", 12},
    // cdecl: the caller pops.
    {"DbgPrint", 0}, {"DbgPrintEx", 0}, {"memset", 0}, {"memcpy", 0}, {"memmove", 0}, {"memcmp", 0},
    {"strlen", 0}, {"wcslen", 0}, {"_snprintf", 0}, {"_snwprintf", 0}, {"sprintf", 0}, {"swprintf", 0},
    {"vsprintf", 0}, {"_vsnprintf", 0}, {"strcpy", 0}, {"wcscpy", 0}, {"strcmp", 0}, {"wcscmp", 0},
    {"_stricmp", 0}, {"_wcsicmp", 0}, {"strncpy", 0}, {"wcsncpy", 0},
};

}  // namespace

std::optional<uint32_t> Analysis::import_pops(const ImportRef* import) const {
  if (!import) return std::nullopt;
  std::string_view name = import->name;
  for (const KnownPops& k : kKnownPops)
    if (k.name == name) return k.bytes;
  // Decorated stdcall names (_Name@12) carry the argument bytes.
  if (auto at = name.rfind('@'); at != std::string_view::npos && at + 1 < name.size()) {
    uint32_t bytes = 0;
    for (size_t i = at + 1; i < name.size(); ++i) {
      if (name[i] < '0' || name[i] > '9' || bytes > 4096) return std::nullopt;
      bytes = bytes * 10 + static_cast<uint32_t>(name[i] - '0');
    }
    return bytes;
  }
  return std::nullopt;
}

std::optional<uint32_t> Analysis::callee_pops(uint32_t target, int depth) {
  if (depth > 4) return std::nullopt;
  if (auto it = pops_cache_.find(target); it != pops_cache_.end()) return it->second;
  pops_cache_[target] = std::nullopt;  // guards against cycles
  std::optional<uint32_t> result;
  const CodeSection* sec = model_.section_at(target);
  if (sec && sec->executable) {
    const size_t n = sec->file_size();
    uint32_t rva = target;
    for (int count = 0; count < 4000 && rva - sec->rva < n; ++count) {
      Insn insn;
      size_t off = rva - sec->rva;
      if (!decoder_.decode(sec->bytes.data() + off, n - off, rva, insn)) break;
      if (count > 0 && is_known_start(rva)) break;  // ran into the next function
      if (count == 0 && insn.flow == Flow::jmp && insn.has_target) {
        result = callee_pops(insn.target, depth + 1);
        break;
      }
      if (count == 0 && insn.flow == Flow::jmp_indirect && insn.mem_rva) {
        result = import_pops(slot(*insn.mem_rva));
        break;
      }
      if (insn.flow == Flow::ret) {
        result = insn.operand_count > 0 && insn.op[0].kind == OpKind::imm ? static_cast<uint32_t>(insn.op[0].imm & 0xffff)
                                                                            : 0u;
        break;
      }
      rva = insn.end();
    }
  }
  pops_cache_[target] = result;
  return result;
}

// Bytes the callee of the call at region.insns[index] removes from the stack (x86 stdcall).
std::optional<uint32_t> Analysis::call_pops(const Region& region, int index) {
  const Insn& call = region.insns[static_cast<size_t>(index)];
  std::optional<uint32_t> pops;
  if (call.flow == Flow::call && call.has_target) {
    pops = callee_pops(call.target, 0);
  } else if (call.mem_rva) {
    pops = import_pops(slot(*call.mem_rva));
  } else if (call.flow == Flow::call_indirect && call.operand_count > 0 && call.op[0].kind == OpKind::reg &&
             call.op[0].reg < 16 && nested_resolves_ == 0) {
    // call reg: when reg holds an import loaded from the IAT, that import's argument bytes.
    auto cached = call_reg_pops_.find(call.rva);
    if (cached == call_reg_pops_.end()) {
      std::optional<uint32_t> found;
      bool consistent = true;
      ++nested_resolves_;
      for (const Def& d : resolve(&region, index, Loc{Loc::in_reg, call.op[0].reg, 0})) {
        std::optional<uint32_t> p = d.kind == Def::slot_load ? import_pops(slot(static_cast<uint32_t>(d.value)))
                                                            : std::nullopt;
        if (!p || (found && *found != *p)) consistent = false;
        found = p;
      }
      --nested_resolves_;
      cached = call_reg_pops_.emplace(call.rva, consistent ? found : std::nullopt).first;
    }
    pops = cached->second;
  }
  if (pops) return pops;
  // Look at what the caller does right after the call: "add esp, n" cleans up a cdecl call, while GCC
  // re-reserves a stdcall callee's argument bytes with "sub esp, n".
  for (size_t i = static_cast<size_t>(index) + 1; i < region.insns.size() && i <= static_cast<size_t>(index) + 8;
       ++i) {
    const Insn& next = region.insns[i];
    if (next.flow != Flow::normal) break;
    if (!(next.gpr_writes & bit(kRsp))) continue;
    if ((next.mnemonic == ZYDIS_MNEMONIC_ADD || next.mnemonic == ZYDIS_MNEMONIC_SUB) && next.operand_count == 2 &&
        next.op[0].kind == OpKind::reg && next.op[0].reg == kRsp && next.op[1].kind == OpKind::imm) {
      if (next.mnemonic == ZYDIS_MNEMONIC_ADD) return 0u;
      return static_cast<uint32_t>(next.op[1].imm & 0xffff);
    }
    break;
  }
  return std::nullopt;
}

// When `reg` holds rsp + k at region.insns[index] (set by mov reg, rsp or lea reg, [rsp+k] earlier in the
// same straight-line code, rsp unchanged since), k.
std::optional<int64_t> Analysis::sp_alias(const Region& region, int index, uint8_t reg) const {
  for (int i = index - 1, n = 0; i >= 0 && n < 16; --i, ++n) {
    const Insn& insn = region.insns[static_cast<size_t>(i)];
    const Insn& next = region.insns[static_cast<size_t>(i + 1)];
    if (insn.end() != next.rva || !insn.falls_through()) return std::nullopt;
    auto joined = std::lower_bound(region.branch_in.begin(), region.branch_in.end(), std::make_pair(next.rva, 0u));
    if (joined != region.branch_in.end() && joined->first == next.rva) return std::nullopt;
    if (insn.gpr_writes & bit(reg)) {
      if (insn.gpr_partial & bit(reg)) return std::nullopt;
      if (insn.mnemonic == ZYDIS_MNEMONIC_MOV && insn.operand_count == 2 && insn.op[1].kind == OpKind::reg &&
          insn.op[1].reg == kRsp)
        return 0;
      if (insn.mnemonic == ZYDIS_MNEMONIC_LEA && insn.operand_count == 2 && is_stack_base(insn.op[1]))
        return insn.op[1].disp;
      return std::nullopt;
    }
    if (insn.gpr_writes & bit(kRsp)) return std::nullopt;
  }
  return std::nullopt;
}

Analysis::Outcome Analysis::value_of_operand(const Insn& insn, const Operand& op, uint8_t dest_size) {
  Outcome o;
  o.kind = Outcome::defined;
  o.def.rva = insn.rva;
  switch (op.kind) {
    case OpKind::imm:
      o.def.kind = Def::constant;
      o.def.value = mask_to(op.imm, dest_size);
      return o;
    case OpKind::reg:
      if (op.reg < 16 && op.size >= 4 && op.reg != kRsp) {
        o.kind = Outcome::pass;
        o.loc = Loc{Loc::in_reg, op.reg, 0};
        return o;
      }
      break;
    case OpKind::mem:
      if (op.segment_override || op.size < 4) break;
      if (op.base == kRip || (op.base == kNoReg && op.index == kNoReg)) {
        if (insn.mem_rva && slot(*insn.mem_rva)) {
          o.def.kind = Def::slot_load;
          o.def.value = *insn.mem_rva;
          return o;
        }
        if (insn.mem_rva && (op.size == 4 || op.size == 8)) {
          o.def.kind = Def::mem_load;
          o.def.value = *insn.mem_rva;
          o.def.size = std::min(op.size, dest_size);
          return o;
        }
        break;
      }
      if (is_stack_base(op)) {
        o.kind = Outcome::pass;
        o.loc = Loc{Loc::at_sp, kNoReg, static_cast<int32_t>(op.disp)};
        if (o.loc.off < 0) break;
        return o;
      }
      if (is_frame_base(op, kRbp)) {
        o.kind = Outcome::pass;
        o.loc = Loc{Loc::at_fp, kRbp, static_cast<int32_t>(op.disp)};
        return o;
      }
      break;
    default:
      break;
  }
  o.kind = Outcome::defined;
  o.def.kind = Def::unknown;
  return o;
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
      case ValueOp::shl: value <<= shift; break;
      case ValueOp::shr: value = mask_to(value, op.size) >> shift; break;
      case ValueOp::sar:
        value = op.size >= 8 ? static_cast<uint64_t>(static_cast<int64_t>(value) >> shift)
                             : static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(value)) >> shift);
        break;
      case ValueOp::neg: value = 0 - value; break;
      case ValueOp::not_: value = ~value; break;
    }
    value = mask_to(value, op.size);
  }
  return value;
}

void Analysis::step(const Region& region, int index, const Loc& loc, std::vector<Outcome>& out) {
  const Insn& insn = region.insns[static_cast<size_t>(index)];
  const bool is_call = insn.flow == Flow::call || insn.flow == Flow::call_indirect;
  const uint8_t width = model_.x64 ? 8 : 4;
  const Operand& op0 = insn.op[0];
  const Operand& op1 = insn.op[1];
  const bool two = insn.operand_count >= 2;

  Outcome unknown;
  unknown.kind = Outcome::defined;
  unknown.def = Def{Def::unknown, 0, insn.rva};
  Outcome same;
  same.kind = Outcome::pass;
  same.loc = loc;
  // A constant defined here, with the pending arithmetic applied.
  const auto constant = [&](uint64_t value) {
    Outcome o;
    o.kind = Outcome::defined;
    o.def = Def{Def::constant, apply_ops(value, loc), insn.rva};
    return o;
  };
  // An outcome of value_of_operand() with the pending arithmetic carried over.
  const auto carried = [&](Outcome o) {
    if (o.kind == Outcome::pass) {
      o.loc.nops = loc.nops;
      o.loc.ops = loc.ops;
    } else if (o.def.kind == Def::constant) {
      o.def.value = apply_ops(o.def.value, loc);
    } else if (o.def.kind == Def::slot_load && loc.nops > 0) {
      o.def.kind = Def::unknown;
    } else if (o.def.kind == Def::mem_load) {
      o.def.loc.nops = loc.nops;
      o.def.loc.ops = loc.ops;
    }
    return o;
  };
  // Continue with `next` after prepending an operation to the pending arithmetic.
  const auto then_op = [&](Loc next, ValueOp::Kind kind, uint64_t imm, uint8_t size) {
    if (loc.nops >= kMaxValueOps) return unknown;
    Outcome o;
    o.kind = Outcome::pass;
    o.loc = next;
    o.loc.nops = static_cast<uint8_t>(loc.nops + 1);
    o.loc.ops[0] = ValueOp{kind, size, imm};
    for (uint8_t i = 0; i < loc.nops; ++i) o.loc.ops[i + 1] = loc.ops[i];
    return o;
  };

  if (loc.kind == Loc::in_reg) {
    const uint8_t r = loc.reg;
    if (!(insn.gpr_writes & bit(r))) {
      if (is_call && is_volatile(model_.x64, r)) return out.push_back(unknown);
      return out.push_back(same);
    }
    const bool dest_is_r = op0.kind == OpKind::reg && op0.reg == r && op0.write;
    if (insn.gpr_partial & bit(r)) {
      // setcc r8b: 0 or 1 in the low byte. Usable when the upper bits do not matter (movzx or "and 0xff" after
      // it) or were cleared before it (xor r8d, r8d; ...; sete r8b).
      const bool setcc = insn.mnemonic >= ZYDIS_MNEMONIC_SETB && insn.mnemonic <= ZYDIS_MNEMONIC_SETZ;
      if (setcc && dest_is_r && op0.size == 1 &&
          ((loc.nops > 0 && loc.ops[0].kind == ValueOp::and_ && loc.ops[0].imm <= 0xff) || cleared_before(region, index, r))) {
        out.push_back(constant(0));
        out.push_back(constant(1));
        return;
      }
      return out.push_back(unknown);
    }
    const bool imm_src = dest_is_r && two && op1.kind == OpKind::imm && op0.size >= 4;
    switch (insn.mnemonic) {
      case ZYDIS_MNEMONIC_MOV:
        if (dest_is_r && two && op1.kind == OpKind::mem && op1.index < 16 && op0.size >= 4) {
          // A load from a constant table indexed by a bounded register (switch lowered to a lookup table).
          if (auto values = table_values(region, index, op1)) {
            for (uint64_t v : *values) out.push_back(constant(mask_to(v, op0.size)));
            return;
          }
          return out.push_back(unknown);
        }
        if (dest_is_r && two) return out.push_back(carried(value_of_operand(insn, op1, op0.size)));
        break;
      case ZYDIS_MNEMONIC_MOVZX:
        // movzx eax, al: the low byte/word of another register.
        if (dest_is_r && two && op1.kind == OpKind::reg && op1.reg < 16 && (op1.size == 1 || op1.size == 2))
          return out.push_back(then_op(Loc{Loc::in_reg, op1.reg, 0}, ValueOp::and_, op1.size == 1 ? 0xffu : 0xffffu, 4));
        break;
      case ZYDIS_MNEMONIC_XOR:
      case ZYDIS_MNEMONIC_SUB:
        if (dest_is_r && two && op1.kind == OpKind::reg && op1.reg == r) return out.push_back(constant(0));
        if (imm_src)
          return out.push_back(insn.mnemonic == ZYDIS_MNEMONIC_XOR
                                   ? then_op(loc, ValueOp::xor_, op1.imm, op0.size)
                                   : then_op(loc, ValueOp::add, 0 - op1.imm, op0.size));
        break;
      case ZYDIS_MNEMONIC_SBB:
        // sbb eax, eax: 0 or -1 depending on the carry flag.
        if (dest_is_r && two && op1.kind == OpKind::reg && op1.reg == r && op0.size >= 4) {
          out.push_back(constant(0));
          out.push_back(constant(mask_to(~0ull, op0.size)));
          return;
        }
        break;
      case ZYDIS_MNEMONIC_ADD:
        if (imm_src) return out.push_back(then_op(loc, ValueOp::add, op1.imm, op0.size));
        break;
      case ZYDIS_MNEMONIC_AND:
        if (imm_src) {
          if (mask_to(op1.imm, op0.size) == 0) return out.push_back(constant(0));
          return out.push_back(then_op(loc, ValueOp::and_, op1.imm, op0.size));
        }
        break;
      case ZYDIS_MNEMONIC_OR:
        if (imm_src) {
          if (mask_to(op1.imm, op0.size) == mask_to(~0ull, op0.size)) return out.push_back(constant(mask_to(~0ull, op0.size)));
          return out.push_back(then_op(loc, ValueOp::or_, op1.imm, op0.size));
        }
        break;
      case ZYDIS_MNEMONIC_SHL:
      case ZYDIS_MNEMONIC_SHR:
      case ZYDIS_MNEMONIC_SAR:
        if (imm_src)
          return out.push_back(then_op(loc,
                                       insn.mnemonic == ZYDIS_MNEMONIC_SHL   ? ValueOp::shl
                                       : insn.mnemonic == ZYDIS_MNEMONIC_SHR ? ValueOp::shr
                                                                             : ValueOp::sar,
                                       op1.imm, op0.size));
        break;
      case ZYDIS_MNEMONIC_INC:
      case ZYDIS_MNEMONIC_DEC:
        if (dest_is_r && op0.size >= 4)
          return out.push_back(then_op(loc, ValueOp::add, insn.mnemonic == ZYDIS_MNEMONIC_INC ? 1 : ~0ull, op0.size));
        break;
      case ZYDIS_MNEMONIC_NEG:
      case ZYDIS_MNEMONIC_NOT:
        if (dest_is_r && op0.size >= 4)
          return out.push_back(
              then_op(loc, insn.mnemonic == ZYDIS_MNEMONIC_NEG ? ValueOp::neg : ValueOp::not_, 0, op0.size));
        break;
      case ZYDIS_MNEMONIC_LEA:
        if (dest_is_r && two && op1.base == kRip && insn.mem_rva && loc.nops == 0) {
          Outcome o;
          o.kind = Outcome::defined;
          o.def = Def{Def::address, model_.image_base + *insn.mem_rva, insn.rva};
          return out.push_back(o);
        }
        // lea r, [s + disp]: s plus a constant (lea esi, [esi+0] is a multi-byte nop).
        if (dest_is_r && two && op1.base < 16 && op1.index == kNoReg && !op1.segment_override && op0.size >= 4) {
          Loc next{Loc::in_reg, op1.base, 0};
          if (op1.disp == 0) {
            Outcome o;
            o.kind = Outcome::pass;
            o.loc = next;
            return out.push_back(carried(o));
          }
          return out.push_back(then_op(next, ValueOp::add, static_cast<uint64_t>(op1.disp), op0.size));
        }
        break;
      case ZYDIS_MNEMONIC_POP:
        if (dest_is_r) {
          Outcome o;
          o.kind = Outcome::pass;
          o.loc = Loc{Loc::at_sp, kNoReg, 0};
          return out.push_back(carried(o));
        }
        break;
      case ZYDIS_MNEMONIC_CMOVB: case ZYDIS_MNEMONIC_CMOVBE: case ZYDIS_MNEMONIC_CMOVL:
      case ZYDIS_MNEMONIC_CMOVLE: case ZYDIS_MNEMONIC_CMOVNB: case ZYDIS_MNEMONIC_CMOVNBE:
      case ZYDIS_MNEMONIC_CMOVNL: case ZYDIS_MNEMONIC_CMOVNLE: case ZYDIS_MNEMONIC_CMOVNO:
      case ZYDIS_MNEMONIC_CMOVNP: case ZYDIS_MNEMONIC_CMOVNS: case ZYDIS_MNEMONIC_CMOVNZ:
      case ZYDIS_MNEMONIC_CMOVO: case ZYDIS_MNEMONIC_CMOVP: case ZYDIS_MNEMONIC_CMOVS:
      case ZYDIS_MNEMONIC_CMOVZ:
        // Conditional move: either value reaches the point after it.
        if (dest_is_r && two && op0.size >= 4) {
          out.push_back(same);
          out.push_back(carried(value_of_operand(insn, op1, op0.size)));
          return;
        }
        break;
      default:
        break;
    }
    return out.push_back(unknown);
  }

  // A stack slot: [rsp+off] or [frame+off].
  const bool stack_sp = loc.kind == Loc::at_sp;
  const auto addresses_slot_base = [&](const Operand& op) {
    return stack_sp ? is_stack_base(op) : is_frame_base(op, loc.reg);
  };
  if (op0.kind == OpKind::mem && op0.write && insn.mnemonic != ZYDIS_MNEMONIC_LEA &&
      insn.mnemonic != ZYDIS_MNEMONIC_PUSH && insn.mnemonic != ZYDIS_MNEMONIC_POP) {
    std::optional<int64_t> store;  // the store's offset from the slot's base register
    if (addresses_slot_base(op0)) {
      store = op0.disp;
    } else if (stack_sp && op0.base < 16 && op0.index == kNoReg && !op0.segment_override) {
      // A copy of rsp used as the base (clang -O0: mov eax, esp; mov [eax+12], tag).
      if (auto alias = sp_alias(region, index, op0.base)) store = *alias + op0.disp;
    }
    if (store && *store == loc.off && op0.size >= 4) {
      if (insn.mnemonic == ZYDIS_MNEMONIC_MOV && two) return out.push_back(carried(value_of_operand(insn, op1, op0.size)));
      return out.push_back(unknown);
    }
    if (store && overlaps(*store, op0.size, loc.off, 4)) return out.push_back(unknown);
  }
  if (!stack_sp) {
    if (insn.gpr_writes & bit(loc.reg)) {
      // The frame being set up (mov rbp, rsp / lea rbp, [rsp+k]): the slot relative to rsp before it.
      int64_t base = -1;
      if (insn.mnemonic == ZYDIS_MNEMONIC_MOV && two && op0.kind == OpKind::reg && op0.reg == loc.reg &&
          op0.size == width && op1.kind == OpKind::reg && op1.reg == kRsp)
        base = 0;
      else if (insn.mnemonic == ZYDIS_MNEMONIC_LEA && two && op0.kind == OpKind::reg && op0.reg == loc.reg &&
               op0.size == width && is_stack_base(op1))
        base = op1.disp;
      const int64_t off = base + loc.off;
      if (base < 0 || off < 0 || off > 0x100000) return out.push_back(unknown);
      Outcome o = same;
      o.loc.kind = Loc::at_sp;
      o.loc.reg = kNoReg;
      o.loc.off = static_cast<int32_t>(off);
      return out.push_back(o);
    }
    return out.push_back(same);
  }
  if (!(insn.gpr_writes & bit(kRsp))) return out.push_back(same);

  // rsp changes: express the slot relative to rsp before the instruction.
  Outcome moved = same;
  int64_t off = loc.off;
  switch (insn.mnemonic) {
    case ZYDIS_MNEMONIC_PUSH:
    case ZYDIS_MNEMONIC_PUSHFD:
    case ZYDIS_MNEMONIC_PUSHFQ:
      if (off == 0) {
        if (insn.mnemonic != ZYDIS_MNEMONIC_PUSH || insn.operand_count < 1) return out.push_back(unknown);
        return out.push_back(carried(value_of_operand(insn, op0, width)));
      }
      if (off < width) return out.push_back(unknown);
      off -= width;
      break;
    case ZYDIS_MNEMONIC_POP:
    case ZYDIS_MNEMONIC_POPFD:
    case ZYDIS_MNEMONIC_POPFQ:
      off += width;
      break;
    case ZYDIS_MNEMONIC_ADD:
    case ZYDIS_MNEMONIC_SUB:
      if (!(op0.kind == OpKind::reg && op0.reg == kRsp && two && op1.kind == OpKind::imm))
        return out.push_back(unknown);
      off += insn.mnemonic == ZYDIS_MNEMONIC_ADD ? static_cast<int64_t>(op1.imm) : -static_cast<int64_t>(op1.imm);
      break;
    case ZYDIS_MNEMONIC_LEA:
      if (!(op0.kind == OpKind::reg && op0.reg == kRsp && two && is_stack_base(op1))) return out.push_back(unknown);
      off += op1.disp;
      break;
    default:
      if (is_call) {
        // x64: the callee owns the 32-byte home area above the return address and may spill into it.
        if (model_.x64 && off < 0x20) return out.push_back(unknown);
        if (!model_.x64) {
          std::optional<uint32_t> pops = call_pops(region, index);
          if (!pops) return out.push_back(unknown);
          off += *pops;
        }
        break;
      }
      return out.push_back(unknown);
  }
  if (off < 0 || off > 0x100000) return out.push_back(unknown);
  moved.loc.off = static_cast<int32_t>(off);
  out.push_back(moved);
}

// The entries a table load [base + index*scale + disp] can read: the base must resolve to one constant address
// and the index must be bounded by "cmp index, N; ja/jae" just before; at most 256 entries, all in the file.
std::optional<std::vector<uint64_t>> Analysis::table_values(const Region& region, int index, const Operand& op) {
  if (nested_resolves_ > 0 || op.segment_override || (op.size != 4 && op.size != 8) || op.scale == 0) return std::nullopt;
  uint64_t base = 0;  // without a base register the displacement is the whole address
  if (op.base < 16) {
    std::optional<uint64_t> found;
    ++nested_resolves_;
    std::vector<Def> defs = resolve(&region, index, Loc{Loc::in_reg, op.base, 0});
    --nested_resolves_;
    for (const Def& d : defs) {
      if ((d.kind != Def::constant && d.kind != Def::address) || (found && *found != d.value)) return std::nullopt;
      found = d.value;
    }
    if (!found) return std::nullopt;
    base = *found;
  } else if (op.base != kNoReg) {
    return std::nullopt;
  }
  uint64_t va = base + static_cast<uint64_t>(op.disp);
  if (!model_.x64) va &= 0xffffffffull;
  if (va < model_.image_base || va - model_.image_base > 0xffffffffull) return std::nullopt;
  const uint32_t rva = static_cast<uint32_t>(va - model_.image_base);
  std::optional<uint32_t> count = index_bound(region, index, op.index);
  if (!count || *count == 0 || *count > 256) return std::nullopt;
  const CodeSection* sec = model_.section_at(rva);
  if (!sec) return std::nullopt;
  std::vector<uint64_t> values;
  for (uint32_t i = 0; i < *count; ++i) {
    const uint64_t at = static_cast<uint64_t>(rva - sec->rva) + static_cast<uint64_t>(i) * op.scale;
    std::optional<uint64_t> v;
    if (op.size == 8) {
      v = sec->bytes.u64(at);
    } else if (auto v32 = sec->bytes.u32(at)) {
      v = *v32;
    }
    if (!v) return std::nullopt;
    if (std::find(values.begin(), values.end(), *v) == values.end()) values.push_back(*v);
  }
  return values;
}

// N when "cmp reg, N-1; ja" (or "cmp reg, N; jae") guards the straight-line code reaching region.insns[index].
std::optional<uint32_t> Analysis::index_bound(const Region& region, int index, uint8_t reg) const {
  for (int i = index - 1, n = 0; i >= 0 && n < 12; --i, ++n) {
    const Insn& insn = region.insns[static_cast<size_t>(i)];
    const Insn& next = region.insns[static_cast<size_t>(i + 1)];
    if (insn.end() != next.rva || !insn.falls_through() || insn.flow == Flow::call ||
        insn.flow == Flow::call_indirect)
      return std::nullopt;
    auto joined = std::lower_bound(region.branch_in.begin(), region.branch_in.end(), std::make_pair(next.rva, 0u));
    if (joined != region.branch_in.end() && joined->first == next.rva) return std::nullopt;
    if (insn.mnemonic == ZYDIS_MNEMONIC_CMP && insn.operand_count == 2 && insn.op[0].kind == OpKind::reg &&
        insn.op[0].reg == reg && insn.op[1].kind == OpKind::imm && insn.op[0].size >= 4) {
      if (next.flow != Flow::jcc) return std::nullopt;
      const uint64_t limit = mask_to(insn.op[1].imm, insn.op[0].size);
      if (limit > 0xffff) return std::nullopt;
      if (next.mnemonic == ZYDIS_MNEMONIC_JNBE) return static_cast<uint32_t>(limit + 1);
      if (next.mnemonic == ZYDIS_MNEMONIC_JNB) return static_cast<uint32_t>(limit);
      return std::nullopt;
    }
    if (insn.gpr_writes & bit(reg)) return std::nullopt;
  }
  return std::nullopt;
}

// True when reg's 32-bit register was zeroed (xor r,r / mov r,0) earlier in straight-line code before
// region.insns[index], with no other write to reg in between.
bool Analysis::cleared_before(const Region& region, int index, uint8_t reg) const {
  for (int i = index - 1, n = 0; i >= 0 && n < 8; --i, ++n) {
    const Insn& insn = region.insns[static_cast<size_t>(i)];
    const Insn& next = region.insns[static_cast<size_t>(i + 1)];
    if (insn.end() != next.rva || !insn.falls_through() || insn.flow == Flow::call ||
        insn.flow == Flow::call_indirect)
      return false;
    auto joined = std::lower_bound(region.branch_in.begin(), region.branch_in.end(), std::make_pair(next.rva, 0u));
    if (joined != region.branch_in.end() && joined->first == next.rva) return false;
    if (!(insn.gpr_writes & bit(reg))) continue;
    if (insn.gpr_partial & bit(reg) || insn.operand_count != 2 || insn.op[0].kind != OpKind::reg ||
        insn.op[0].reg != reg || insn.op[0].size < 4)
      return false;
    if ((insn.mnemonic == ZYDIS_MNEMONIC_XOR || insn.mnemonic == ZYDIS_MNEMONIC_SUB) &&
        insn.op[1].kind == OpKind::reg && insn.op[1].reg == reg)
      return true;
    return insn.mnemonic == ZYDIS_MNEMONIC_MOV && insn.op[1].kind == OpKind::imm && insn.op[1].imm == 0;
  }
  return false;
}

size_t Analysis::ResolveKeyHash::operator()(const ResolveKey& k) const {
  uint64_t h = k.region_start * 0x9e3779b97f4a7c15ull ^ k.region_end;
  h = h * 31 + static_cast<uint64_t>(k.index);
  h = h * 31 + (static_cast<uint64_t>(k.loc.kind) << 8 | k.loc.reg);
  h = h * 31 + static_cast<uint32_t>(k.loc.off);
  for (uint8_t i = 0; i < k.loc.nops; ++i) h = h * 31 + (k.loc.ops[i].imm ^ (uint64_t{k.loc.ops[i].kind} << 56));
  return static_cast<size_t>(h ^ (h >> 29));
}

std::vector<Def> Analysis::resolve(const Region* region, int index, Loc loc) {
  struct Item {
    const Region* region;
    int index;
    Loc loc;
    uint32_t hops;
  };
  std::vector<Def> defs;
  const auto add_def = [&](const Def& d) {
    for (const Def& e : defs)
      if (e.kind == d.kind && e.value == d.value && (d.kind != Def::unknown) &&
          (d.kind != Def::param || (e.rva == d.rva && e.loc == d.loc)) && (d.kind != Def::mem_load || e.loc == d.loc))
        return;
    if (d.kind == Def::unknown) {
      for (const Def& e : defs)
        if (e.kind == Def::unknown) return;
    }
    if (defs.size() < limits_.max_defs) defs.push_back(d);
  };
  if (!region || index < 0) return {Def{}};

  std::vector<Item> work{Item{region, index, loc, 0}};
  const ResolveVisits::Lease visited(resolve_visits_);
  std::vector<Outcome> outcomes;
  std::vector<std::pair<const Region*, int>> preds;
  uint32_t steps = 0;
  uint32_t foreign = 0;  // regions of other functions looked at
  while (!work.empty()) {
    budget::tick();
    Item item = work.back();
    work.pop_back();
    if (++steps > limits_.max_steps) {
      problem("data-flow step limit reached at " + hex(item.region->insns[static_cast<size_t>(item.index)].rva));
      add_def(Def{});
      break;
    }
    const Region& r = *item.region;
    const Insn& at = r.insns[static_cast<size_t>(item.index)];
    // Branch targets and function starts all have their join bit: most instructions have none, and skip
    // the searches of the (large) sorted tables below.
    const bool joins = joins_at(at.rva);
    const bool known = joins && is_known_start(at.rva);
    preds.clear();
    if (item.index > 0 && !known) {
      const Insn& prev = r.insns[static_cast<size_t>(item.index - 1)];
      if (prev.end() == at.rva && prev.falls_through()) preds.emplace_back(&r, item.index - 1);
    }
    auto range = std::equal_range(r.branch_in.begin(), r.branch_in.end(), std::make_pair(at.rva, 0u),
                                  [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto it = range.first; it != range.second; ++it) {
      const Insn& src = r.insns[it->second];
      if (known && src.rva < at.rva) continue;  // a jump into a function start from before it: a tail call
      preds.emplace_back(&r, static_cast<int>(it->second));
    }
    int foreign_taken = 0;
    if (joins && !is_entry_like(at.rva) && item.hops < limits_.max_hops) {
      auto it = std::lower_bound(edges_.begin(), edges_.end(), at.rva,
                                 [](const Edge& e, uint32_t x) { return e.target < x; });
      int taken = 0;
      for (; it != edges_.end() && it->target == at.rva && taken < 8; ++it) {
        if (it->kind == Edge::call || (it->source >= r.start && it->source < r.end)) continue;
        if (++foreign > limits_.max_foreign_regions) break;
        const Region* other = region_for(it->source);
        if (!other) continue;
        int idx = other->index_of(it->source);
        if (idx < 0) continue;
        preds.emplace_back(other, idx);
        ++taken;
      }
      foreign_taken = taken;
    }
    // At a function entry the value may come from the caller (a parameter), whatever jumps back to the
    // entry. (A .pdata start reached only by jumps from other functions is followed into them instead.)
    if (joins && is_function_entry(at.rva) && (is_entry_like(at.rva) || foreign_taken == 0)) add_def(entry_def(item.loc, at.rva));
    else if (preds.empty()) add_def(Def{Def::unknown, 0, at.rva});
    if (preds.empty()) continue;
    for (const auto& [pr, pi] : preds) {
      if (!visited->insert(ResolveKey{pr->start, pr->end, pi, item.loc})) continue;
      outcomes.clear();
      step(*pr, pi, item.loc, outcomes);
      for (const Outcome& o : outcomes) {
        if (o.kind == Outcome::defined) {
          add_def(o.def);
        } else {
          work.push_back(Item{pr, pi, o.loc, item.hops + (pr != item.region ? 1u : 0u)});
        }
      }
    }
  }
  return defs;
}

}  // namespace tagwho::x86
