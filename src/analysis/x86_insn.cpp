#include "analysis/x86_insn.hpp"

#include <algorithm>

namespace tagwho::x86 {
namespace {

uint8_t gpr_id(ZydisMachineMode mode, ZydisRegister reg) {
  if (reg == ZYDIS_REGISTER_NONE) return kNoReg;
  if (reg == ZYDIS_REGISTER_RIP || reg == ZYDIS_REGISTER_EIP) return kRip;
  ZydisRegister largest = ZydisRegisterGetLargestEnclosing(mode, reg);
  ZydisRegisterClass cls = ZydisRegisterGetClass(largest);
  if (cls != ZYDIS_REGCLASS_GPR64 && cls != ZYDIS_REGCLASS_GPR32) return kNoReg;
  ZyanI8 id = ZydisRegisterGetId(largest);
  if (id < 0 || id > 15) return kNoReg;
  return static_cast<uint8_t>(id);
}

// ops may be null only for instructions that are not branches and not INT.
Flow classify(const ZydisDecodedInstruction& insn, const ZydisDecodedOperand* ops, bool& direct) {
  direct = ops && insn.operand_count_visible > 0 && ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
           ops[0].imm.is_relative;
  switch (insn.meta.category) {
    case ZYDIS_CATEGORY_CALL:
      return direct ? Flow::call : Flow::call_indirect;
    case ZYDIS_CATEGORY_UNCOND_BR:
      return direct ? Flow::jmp : Flow::jmp_indirect;
    case ZYDIS_CATEGORY_COND_BR:
      return direct ? Flow::jcc : Flow::jmp_indirect;  // (no indirect conditional branches exist)
    case ZYDIS_CATEGORY_RET:
    case ZYDIS_CATEGORY_SYSRET:
      return Flow::ret;
    default:
      break;
  }
  switch (insn.mnemonic) {
    case ZYDIS_MNEMONIC_INT3:
    case ZYDIS_MNEMONIC_UD0:
    case ZYDIS_MNEMONIC_UD1:
    case ZYDIS_MNEMONIC_UD2:
    case ZYDIS_MNEMONIC_HLT:
    case ZYDIS_MNEMONIC_IRET:
    case ZYDIS_MNEMONIC_IRETD:
    case ZYDIS_MNEMONIC_IRETQ:
      return Flow::stop;
    case ZYDIS_MNEMONIC_INT:
      // int 0x29 (__fastfail) and int 0x2c (assertion failure) never return.
      if (ops && insn.operand_count_visible > 0 && ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
          (ops[0].imm.value.u == 0x29 || ops[0].imm.value.u == 0x2c))
        return Flow::stop;
      return Flow::normal;
    default:
      return Flow::normal;
  }
}

}  // namespace

bool is_padding(const Insn& insn) {
  if (insn.mnemonic == ZYDIS_MNEMONIC_NOP) return true;
  if (insn.operand_count != 2 || insn.op[0].kind != OpKind::reg) return false;
  if (insn.mnemonic == ZYDIS_MNEMONIC_LEA)
    return insn.op[1].base == insn.op[0].reg && insn.op[1].index == kNoReg && insn.op[1].disp == 0;
  if (insn.mnemonic == ZYDIS_MNEMONIC_MOV || insn.mnemonic == ZYDIS_MNEMONIC_XCHG)
    return insn.op[1].kind == OpKind::reg && insn.op[1].reg == insn.op[0].reg && insn.op[0].size == insn.op[1].size &&
           insn.op[0].reg < 16;
  return false;
}

SweepFacts Decoder::facts_of(const Insn& insn) const {
  SweepFacts f = kNoFacts;
  f.length = insn.length;
  f.flow = insn.flow;
  f.has_target = insn.has_target;
  f.target = insn.target;
  f.padding = is_padding(insn);
  f.mem_rva = insn.mem_rva;
  if (insn.mem_rva) {
    f.negative_disp = insn.negative_disp;
    f.mov = insn.mnemonic == ZYDIS_MNEMONIC_MOV;
    f.lea = insn.mnemonic == ZYDIS_MNEMONIC_LEA;
    if (!f.lea) {
      f.write = true;  // a memory operand the decoder did not keep: assume the worst
      f.size = 16;
      for (int i = 0; i < insn.operand_count; ++i)
        if (insn.op[i].kind == OpKind::mem) {
          f.write = insn.op[i].write;
          f.size = f.write ? insn.op[i].size : 0;
          break;
        }
    }
  }
  const bool indirect = insn.flow == Flow::call_indirect || insn.flow == Flow::jmp_indirect;
  f.through_operand = indirect && insn.operand_count > 0 &&
                      (insn.op[0].kind == OpKind::reg || insn.op[0].kind == OpKind::mem);
  const bool mov_or_push = insn.mnemonic == ZYDIS_MNEMONIC_MOV || insn.mnemonic == ZYDIS_MNEMONIC_PUSH;
  // A direct branch's immediate is a displacement from the next instruction, never an address.
  const bool direct_branch = insn.flow == Flow::call || insn.flow == Flow::jmp || insn.flow == Flow::jcc;
  for (int i = 0; i < insn.operand_count; ++i) {
    const Operand& op = insn.op[i];
    std::optional<uint32_t> taken;
    const bool imm = op.kind == OpKind::imm && op.size >= 4 && !direct_branch;
    if (imm) {
      taken = taken_rva(op.imm);
    } else if (op.kind == OpKind::mem && !op.segment_override && op.base != kRip &&
               (op.base != kNoReg || op.index != kNoReg) && insn.disp_bits >= 16) {
      // [reg + image address], [index*scale + image address]: the base of an array or struct (an 8-bit
      // displacement is an offset into one, never an address in the image).
      taken = taken_rva(static_cast<uint64_t>(op.disp));
    }
    if (!taken) continue;
    f.code_pointer[f.taken_count] = imm && !x64_ && mov_or_push;
    f.taken[f.taken_count++] = *taken;
  }
  return f;
}

Decoder::Decoder(bool x64, uint64_t image_base, uint64_t address_span)
    : x64_(x64), image_base_(image_base), address_span_(std::min<uint64_t>(address_span, uint64_t{1} << 32)) {
  ZydisDecoderInit(&decoder_, x64 ? ZYDIS_MACHINE_MODE_LONG_64 : ZYDIS_MACHINE_MODE_LEGACY_32,
                   x64 ? ZYDIS_STACK_WIDTH_64 : ZYDIS_STACK_WIDTH_32);
}

bool Decoder::decode(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const {
  return decode_table(data, available, rva, out) || decode(data, available, rva, out, false);
}

bool Decoder::decode_with_zydis(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const {
  return decode(data, available, rva, out, false);
}

bool Decoder::decode_for_sweep(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const {
  return decode_plain(data, available, rva, out) || decode(data, available, rva, out, true);
}

bool Decoder::decode_for_sweep_with_zydis(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const {
  return decode(data, available, rva, out, true);
}



bool Decoder::decode(const uint8_t* data, size_t available, uint32_t rva, Insn& out, bool sweep_only) const {
  ZydisDecodedInstruction insn;
  ZydisDecoderContext context;
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder_, &context, data, available, &insn))) return false;
  out = kEmptyInsn;
  out.rva = rva;
  out.length = insn.length;
  out.mnemonic = insn.mnemonic;
  out.disp_bits = insn.raw.disp.size;
  for (int i = 0; i < 2; ++i) {
    out.imm_offset[i] = insn.raw.imm[i].offset;
    out.imm_size[i] = insn.raw.imm[i].size;
  }
  if (sweep_only) {
    const ZydisInstructionCategory category = insn.meta.category;
    const bool branch = category == ZYDIS_CATEGORY_CALL || category == ZYDIS_CATEGORY_UNCOND_BR ||
                        category == ZYDIS_CATEGORY_COND_BR || category == ZYDIS_CATEGORY_RET ||
                        category == ZYDIS_CATEGORY_SYSRET || insn.mnemonic == ZYDIS_MNEMONIC_INT;
    // A memory operand matters only with a displacement that can be an address in the image (absolute, RIP-
    // relative, or the base of an array or struct): 16 bits or more, never an 8-bit struct offset.
    const bool modrm = (insn.attributes & ZYDIS_ATTRIB_HAS_MODRM) != 0;
    const bool memory = ((modrm && insn.raw.modrm.mod != 3) || insn.raw.disp.size > 0) && insn.raw.disp.size >= 16;
    const bool wide_immediate = insn.raw.imm[0].size >= 32 || insn.raw.imm[1].size >= 32;
    // Padding: mov edi, edi / xchg ax, ax (register to register) and lea esi, [esi+0].
    const bool padding_like = ((insn.mnemonic == ZYDIS_MNEMONIC_MOV || insn.mnemonic == ZYDIS_MNEMONIC_XCHG) &&
                               (!modrm || insn.raw.modrm.mod == 3)) ||
                              insn.mnemonic == ZYDIS_MNEMONIC_LEA;
    if (!branch && !memory && !wide_immediate && !padding_like) {
      bool direct = false;
      out.flow = classify(insn, nullptr, direct);  // (no operand is read for these categories)
      return true;
    }
  }
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeOperands(&decoder_, &context, &insn, ops, ZYDIS_MAX_OPERAND_COUNT)))
    return false;
  const ZydisMachineMode mode = insn.machine_mode;
  bool direct = false;
  out.flow = classify(insn, ops, direct);
  if (direct) {
    ZyanU64 target = 0;
    if (ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&insn, &ops[0], rva, &target))) {
      out.target = static_cast<uint32_t>(target);
      out.has_target = x64_ ? target <= 0xffffffffull : true;
    }
  }
  bool mem_done = false;
  for (uint8_t i = 0; i < insn.operand_count; ++i) {
    const ZydisDecodedOperand& op = ops[i];
    const bool visible = op.visibility == ZYDIS_OPERAND_VISIBILITY_EXPLICIT ||
                         op.visibility == ZYDIS_OPERAND_VISIBILITY_IMPLICIT;
    const bool write = (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
    const bool read = (op.actions & ZYDIS_OPERAND_ACTION_MASK_READ) != 0;
    if (op.type == ZYDIS_OPERAND_TYPE_REGISTER && write) {
      uint8_t id = gpr_id(mode, op.reg.value);
      if (id < 16) {
        out.gpr_writes |= static_cast<uint16_t>(1u << id);
        if (ZydisRegisterGetWidth(mode, op.reg.value) < 32) out.gpr_partial |= static_cast<uint16_t>(1u << id);
      }
    }
    if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && !mem_done && visible) {
      mem_done = true;
      const bool segment = op.mem.segment == ZYDIS_REGISTER_FS || op.mem.segment == ZYDIS_REGISTER_GS;
      uint64_t va = 0;
      bool absolute = false;
      if (!segment && (op.mem.base == ZYDIS_REGISTER_RIP)) {
        va = image_base_ + static_cast<uint64_t>(rva) + insn.length + static_cast<uint64_t>(op.mem.disp.value);
        absolute = true;
        out.negative_disp = op.mem.disp.value < 0;
      } else if (!segment && op.mem.base == ZYDIS_REGISTER_NONE && op.mem.index == ZYDIS_REGISTER_NONE) {
        va = x64_ ? static_cast<uint64_t>(op.mem.disp.value)
                  : static_cast<uint64_t>(static_cast<uint32_t>(op.mem.disp.value));
        absolute = true;
      }
      if (absolute && va >= image_base_ && va - image_base_ <= 0xffffffffull)
        out.mem_rva = static_cast<uint32_t>(va - image_base_);
    }
    if (i < 2 && i < insn.operand_count_visible && visible) {
      Operand& o = out.op[i];
      o.size = static_cast<uint8_t>(op.size / 8);
      o.read = read;
      o.write = write;
      switch (op.type) {
        case ZYDIS_OPERAND_TYPE_REGISTER:
          o.kind = OpKind::reg;
          o.reg = gpr_id(mode, op.reg.value);
          if (o.reg == kRip) o.reg = kNoReg;
          break;
        case ZYDIS_OPERAND_TYPE_MEMORY:
          o.kind = OpKind::mem;  // (lea's address operand too)
          o.scale = op.mem.scale;
          o.base = gpr_id(mode, op.mem.base);
          o.index = gpr_id(mode, op.mem.index);
          if (op.mem.index != ZYDIS_REGISTER_NONE && o.index == kNoReg) o.index = kRip;  // vector index: unusable
          o.segment_override = op.mem.segment == ZYDIS_REGISTER_FS || op.mem.segment == ZYDIS_REGISTER_GS;
          o.disp = op.mem.disp.value;
          break;
        case ZYDIS_OPERAND_TYPE_IMMEDIATE:
          o.kind = OpKind::imm;
          o.imm = op.imm.value.u;
          break;
        default:
          o.kind = OpKind::other;
          break;
      }
      out.operand_count = static_cast<uint8_t>(i + 1);
    }
  }
  return true;
}

}  // namespace tagwho::x86
