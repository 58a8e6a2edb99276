#include "analysis/arm64_insn.hpp"

#include <capstone/capstone.h>

#include <string_view>

namespace tagwho::arm64 {
namespace {

uint8_t map_reg(unsigned r, uint8_t& size) {
  size = 0;
  if (r >= ARM64_REG_X0 && r <= ARM64_REG_X28) {
    size = 8;
    return static_cast<uint8_t>(r - ARM64_REG_X0);
  }
  if (r >= ARM64_REG_W0 && r <= ARM64_REG_W30) {
    size = 4;
    return static_cast<uint8_t>(r - ARM64_REG_W0);
  }
  switch (r) {
    case ARM64_REG_X29: size = 8; return 29;
    case ARM64_REG_X30: size = 8; return 30;
    case ARM64_REG_SP: size = 8; return kSp;
    case ARM64_REG_WSP: size = 4; return kSp;
    case ARM64_REG_XZR: size = 8; return kZr;
    case ARM64_REG_WZR: size = 4; return kZr;
    case ARM64_REG_INVALID: return kNoReg;
    default: return kOtherReg;
  }
}

uint8_t map_reg(unsigned r) {
  uint8_t size = 0;
  return map_reg(r, size);
}

void set_write(Insn& insn, uint8_t r) {
  if (r <= kSp) insn.writes |= uint64_t{1} << r;
}

}  // namespace

Decoder::Decoder(uint64_t image_base) : image_base_(image_base) {
  csh handle = 0;
  if (cs_open(CS_ARCH_ARM64, CS_MODE_ARM, &handle) != CS_ERR_OK) return;
  cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
  handle_ = handle;
  insn_ = cs_malloc(handle);
}

Decoder::~Decoder() {
  if (insn_) cs_free(static_cast<cs_insn*>(insn_), 1);
  if (handle_) {
    csh handle = handle_;
    cs_close(&handle);
  }
}

std::string_view Decoder::mnemonic(uint32_t word, uint32_t rva) {
  if (!insn_) return {};
  uint8_t bytes[4] = {static_cast<uint8_t>(word), static_cast<uint8_t>(word >> 8), static_cast<uint8_t>(word >> 16),
                      static_cast<uint8_t>(word >> 24)};
  const uint8_t* code = bytes;
  size_t size = 4;
  uint64_t address = image_base_ + rva;
  auto* insn = static_cast<cs_insn*>(insn_);
  if (!cs_disasm_iter(handle_, &code, &size, &address, insn)) return {};
  return insn->mnemonic;
}

bool Decoder::decode(uint32_t word, uint32_t rva, Insn& out) {
  if (address_dependent(word)) return decode_with_capstone(word, rva, out);
  if (kept_.empty()) kept_.resize(kKept);
  Kept& kept = kept_[(word * 2654435761u) >> 20];  // (Fibonacci hashing: the top 12 bits)
  if (!kept.used || kept.word != word) {
    kept.used = true;
    kept.word = word;
    kept.ok = decode_with_capstone(word, rva, kept.insn);
  }
  out = kept.insn;
  out.rva = rva;
  return kept.ok;
}

bool Decoder::decode_with_capstone(uint32_t word, uint32_t rva, Insn& out) {
  out = Insn{};
  out.rva = rva;
  out.word = word;
  out.flow = Flow::stop;
  if (!insn_) return false;
  uint8_t bytes[4] = {static_cast<uint8_t>(word), static_cast<uint8_t>(word >> 8), static_cast<uint8_t>(word >> 16),
                      static_cast<uint8_t>(word >> 24)};
  const uint8_t* code = bytes;
  size_t size = 4;
  uint64_t address = image_base_ + rva;
  auto* insn = static_cast<cs_insn*>(insn_);
  if (!cs_disasm_iter(handle_, &code, &size, &address, insn)) return false;
  const cs_arm64& d = insn->detail->arm64;
  out.id = insn->id;
  out.cc = static_cast<uint8_t>(d.cc);
  out.writeback = d.writeback;
  out.nops = static_cast<uint8_t>(d.op_count < 5 ? d.op_count : 5);
  for (uint8_t i = 0; i < out.nops; ++i) {
    const cs_arm64_op& src = d.operands[i];
    Operand& op = out.op[i];
    if (src.shift.type == ARM64_SFT_LSL) {
      op.shift = static_cast<uint8_t>(src.shift.value);
    } else if (src.shift.type != ARM64_SFT_INVALID) {
      op.other_shift = true;
    }
    if (src.ext != ARM64_EXT_INVALID) op.other_shift = true;
    switch (src.type) {
      case ARM64_OP_REG:
        op.kind = Operand::k_reg;
        op.reg = map_reg(src.reg, op.size);
        if (src.access & CS_AC_WRITE) set_write(out, op.reg);
        break;
      case ARM64_OP_IMM:
      case ARM64_OP_CIMM:
        op.kind = Operand::k_imm;
        op.imm = src.imm;
        break;
      case ARM64_OP_MEM:
        op.kind = Operand::k_mem;
        op.base = map_reg(src.mem.base);
        op.index = src.mem.index == ARM64_REG_INVALID ? kNoReg : map_reg(src.mem.index);
        op.disp = src.mem.disp;
        if (out.writeback) set_write(out, op.base);
        break;
      default:
        op.kind = Operand::k_none;
        op.reg = kOtherReg;
        break;
    }
  }
  cs_regs read_regs, write_regs;
  uint8_t n_read = 0, n_write = 0;
  if (cs_regs_access(handle_, insn, read_regs, &n_read, write_regs, &n_write) == CS_ERR_OK)
    for (uint8_t i = 0; i < n_write; ++i) set_write(out, map_reg(write_regs[i]));

  const auto target_of = [&](const Operand& op) {
    if (op.kind != Operand::k_imm) return;
    const uint64_t va = static_cast<uint64_t>(op.imm);
    if (va < image_base_ || va - image_base_ > 0xffffffffull) return;
    out.has_target = true;
    out.target = static_cast<uint32_t>(va - image_base_);
  };
  switch (insn->id) {
    case ARM64_INS_BL:
      out.flow = Flow::call;
      target_of(out.op[0]);
      break;
    case ARM64_INS_BLR:
      out.flow = Flow::call_reg;
      break;
    case ARM64_INS_BR:
      out.flow = Flow::jmp_reg;
      break;
    case ARM64_INS_RET:
      out.flow = Flow::ret;
      break;
    case ARM64_INS_B:
      out.flow = (d.cc == ARM64_CC_INVALID || d.cc == ARM64_CC_AL) ? Flow::jmp : Flow::jcc;
      target_of(out.op[0]);
      break;
    case ARM64_INS_CBZ:
    case ARM64_INS_CBNZ:
      out.flow = Flow::jcc;
      if (out.nops >= 2) target_of(out.op[1]);
      break;
    case ARM64_INS_TBZ:
    case ARM64_INS_TBNZ:
      out.flow = Flow::jcc;
      if (out.nops >= 3) target_of(out.op[2]);
      break;
    case ARM64_INS_BRK:
    case ARM64_INS_HLT:
    case ARM64_INS_ERET:
      out.flow = Flow::stop;
      break;
    default:
      out.flow = Flow::normal;
      break;
  }
  // Calls write the link register.
  if (out.flow == Flow::call || out.flow == Flow::call_reg) set_write(out, kLr);
  return true;
}

bool is_load(unsigned id) {
  switch (id) {
    case ARM64_INS_LDR:
    case ARM64_INS_LDUR:
    case ARM64_INS_LDP:
      return true;
    default:
      return false;
  }
}

bool is_store(unsigned id) {
  switch (id) {
    case ARM64_INS_STR:
    case ARM64_INS_STUR:
    case ARM64_INS_STP:
      return true;
    default:
      return false;
  }
}

MemAccess mem_access(const Insn& insn) {
  MemAccess access;
  int mem = -1;
  for (int i = 0; i < insn.nops; ++i)
    if (insn.op[i].kind == Operand::k_mem) {
      mem = i;
      break;
    }
  if (mem < 1 || insn.op[mem].index != kNoReg || insn.op[mem].base == kNoReg || insn.op[mem].base == kOtherReg)
    return access;
  const Operand& m = insn.op[mem];
  access.base = m.base;
  access.size = insn.op[0].kind == Operand::k_reg ? insn.op[0].size : 0;
  if (insn.op[0].reg == kOtherReg) access.size = 0;  // FP/SIMD registers: sizes not modelled
  if (insn.writeback) {
    if (mem + 1 < insn.nops && insn.op[mem + 1].kind == Operand::k_imm) {  // post-index: [base], #imm
      access.offset = 0;
      access.delta = insn.op[mem + 1].imm;
    } else {  // pre-index: [base, #imm]!
      access.offset = m.disp;
      access.delta = m.disp;
    }
  } else {
    access.offset = m.disp;
  }
  return access;
}

}  // namespace tagwho::arm64
