#include "analysis/arm64_insn.hpp"

#include <capstone/capstone.h>

#include <string_view>
#include <utility>

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

// The PC-relative words, whose last operand Capstone gives as an absolute address: PC + offset, or for
// ADRP the PC's page + offset. Their decodings are kept as made at address 0, and moved to the word's
// address (what Capstone computes, modulo 2^64). The other words of the groups address_dependent() names
// (branches to a register, RET, system instructions, exceptions) have no address operand: kept as any word.
enum class PcRelative { no, offset, page };
PcRelative pc_relative(uint32_t word) {
  if ((word & 0x7c000000u) == 0x14000000u ||  // B, BL
      (word & 0x7e000000u) == 0x34000000u ||  // CBZ, CBNZ
      (word & 0x7e000000u) == 0x36000000u ||  // TBZ, TBNZ
      (word & 0xff000010u) == 0x54000000u ||  // B.cond
      (word & 0x9f000000u) == 0x10000000u ||  // ADR
      (word & 0x3b000000u) == 0x18000000u)    // LDR, LDRSW, PRFM (literal)
    return PcRelative::offset;
  if ((word & 0x9f000000u) == 0x90000000u) return PcRelative::page;  // ADRP
  return PcRelative::no;
}

// Decoder::decode()'s kept decodings: tables of the thread's, indexed by word (Fibonacci hashing, the top
// bits; two ways per set, KeptTable), made on the thread's first decode: 16,384 for the words that decode
// the same anywhere (2.7 MB), 4,096 for the PC-relative ones, kept as decoded at address 0. Per decoder, a
// table of 4,096 began empty for every file: a third of the ARM64 words went to Capstone again, most of
// them words another driver had.
struct Kept {
  uint32_t word = 0;
  bool used = false;
  bool ok = false;
  Insn insn;
};
// Two ways per set, the most recently used first: a word that misses takes the first slot and moves the
// set's other word to the second. Direct-mapped, the 16,384 slots sent 204,000 of the 1.77 million
// decodings of a search of the bench corpus to Capstone (48,600 distinct words); two ways, 141,000.
class KeptTable {
 public:
  explicit KeptTable(int bits) : set_bits_(bits - 1), slots_(size_t{1} << bits) {}
  // The word's slot: holding its decoding, or unused (for the caller to fill).
  Kept& at(uint32_t word) {
    Kept* set = &slots_[size_t{(word * 2654435761u) >> (32 - set_bits_)} * 2];
    if (set[0].used && set[0].word == word) return set[0];
    if (set[1].used && set[1].word == word) {
      std::swap(set[0], set[1]);
    } else {
      set[1] = set[0];
      set[0].used = false;
    }
    return set[0];
  }

 private:
  int set_bits_;
  std::vector<Kept> slots_;
};

Kept& kept_for(uint32_t word, PcRelative relative) {
  thread_local KeptTable anywhere(14), at_zero(12);
  return (relative == PcRelative::no ? anywhere : at_zero).at(word);
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

bool Decoder::decode(uint32_t word, uint32_t rva, Insn& out) { return decode_to(word, rva, &out, nullptr); }

bool Decoder::decode_append(uint32_t word, uint32_t rva, std::vector<Insn>& out) {
  return decode_to(word, rva, nullptr, &out);
}

bool Decoder::decode_to(uint32_t word, uint32_t rva, Insn* into, std::vector<Insn>* append) {
  const PcRelative relative = pc_relative(word);
  Kept& kept = kept_for(word, relative);
  if (!kept.used || kept.word != word) {
    kept.used = true;
    kept.word = word;
    kept.ok = capstone_decode(word, relative == PcRelative::no ? image_base_ + rva : 0, kept.insn);
  }
  Insn& out = into ? (*into = kept.insn) : append->emplace_back(kept.insn);
  out.rva = rva;
  if (relative == PcRelative::no || !kept.ok || out.nops == 0 || out.op[out.nops - 1].kind != Operand::k_imm)
    return kept.ok;
  // Moved from address 0 to the word's.
  const uint64_t pc = image_base_ + rva;
  Operand& address = out.op[out.nops - 1];
  address.imm = static_cast<int64_t>((relative == PcRelative::page ? pc & ~uint64_t{0xfff} : pc) +
                                     static_cast<uint64_t>(address.imm));
  set_target(out);
  return true;
}

bool Decoder::decode_with_capstone(uint32_t word, uint32_t rva, Insn& out) {
  const bool ok = capstone_decode(word, image_base_ + rva, out);
  out.rva = rva;
  if (ok) set_target(out);
  return ok;
}

// The branch target of B, BL, B.cond, CBZ/CBNZ and TBZ/TBNZ, as an RVA, when the address is in the image.
void Decoder::set_target(Insn& out) const {
  out.has_target = false;
  out.target = 0;
  int index = -1;
  switch (out.id) {
    case ARM64_INS_BL:
    case ARM64_INS_B:
      index = 0;
      break;
    case ARM64_INS_CBZ:
    case ARM64_INS_CBNZ:
      index = 1;
      break;
    case ARM64_INS_TBZ:
    case ARM64_INS_TBNZ:
      index = 2;
      break;
    default:
      return;
  }
  if (out.nops <= index || out.op[index].kind != Operand::k_imm) return;
  const uint64_t va = static_cast<uint64_t>(out.op[index].imm);
  if (va < image_base_ || va - image_base_ > 0xffffffffull) return;
  out.has_target = true;
  out.target = static_cast<uint32_t>(va - image_base_);
}

// Capstone's decoding of the word at address, without the branch target (set_target) and with rva 0.
bool Decoder::capstone_decode(uint32_t word, uint64_t address, Insn& out) {
  out = Insn{};
  out.word = word;
  out.flow = Flow::stop;
  if (!insn_) return false;
  uint8_t bytes[4] = {static_cast<uint8_t>(word), static_cast<uint8_t>(word >> 8), static_cast<uint8_t>(word >> 16),
                      static_cast<uint8_t>(word >> 24)};
  const uint8_t* code = bytes;
  size_t size = 4;
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

  switch (insn->id) {
    case ARM64_INS_BL:
      out.flow = Flow::call;
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
      break;
    case ARM64_INS_CBZ:
    case ARM64_INS_CBNZ:
    case ARM64_INS_TBZ:
    case ARM64_INS_TBNZ:
      out.flow = Flow::jcc;
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
