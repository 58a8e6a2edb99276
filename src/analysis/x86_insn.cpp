#include "analysis/x86_insn.hpp"

#include <algorithm>
#include <initializer_list>

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


// --- Plain instructions ----------------------------------------------------------------------------------
// From most instructions the sweep needs only the length; from direct branches the flow and target; from
// memory operands the address when absolute or RIP-relative, whether they are written, and the displacement;
// from immediates only those that can be an address it looks up. Zydis costs some 70 ns an instruction; the
// common encodings ("plain" instructions) are decoded here from a table instead, in a few ns, into the
// fields the sweep reads (length, flow, target, mnemonic when mov, lea or nop, the memory operand, raw
// immediate and displacement sizes). Anything else, or anything not sure to be valid, goes to Zydis. The
// unit tests hold every encoding this takes to what the sweep reads from Zydis's decoding, exhaustively over
// prefixes, opcodes and ModRM bytes, and at every offset of the sample and corpus drivers' code.
enum class PlainForm : uint8_t {
  none,        // not plain: Zydis
  bare,        // opcode only
  imm8,        // opcode, imm8
  imm16,       // opcode, imm16 (ret imm16)
  immz,        // opcode, imm16 or imm32 by operand size
  rel8,        // direct branch, rel8
  rel32,       // direct branch, rel32
  moffs,       // x86 mov between eAX/al and an absolute address (32 bits)
  modrm,       // opcode, ModRM (SIB, displacement)
  modrm_imm8,  // ... then imm8 (for the ModRM.reg values in imm_regs)
  modrm_immz,  // ... then imm16 or imm32 (for the ModRM.reg values in imm_regs)
};

// What else the table must check before an instruction counts as plain.
enum class PlainCheck : uint8_t {
  none,
  nop,       // a nop: padding, which keeps the flow state before it (66 and 2E prefixes allowed, repeated)
  nop_1,     // 90: a nop without REX (41 90 is xchg r8d, eax)
  mov_rr,    // mov between registers: padding (mov edi, edi) goes to Zydis
  mov_rr8,   // the same with byte registers
  lea,       // lea: padding (lea esi, [esi+0]) goes to Zydis
  imm64,     // mov reg, imm: REX.W makes the immediate 64 bits (movabs): Zydis
  group5,    // FF: /2 and /4 are indirect calls and jumps
};

// The width of the memory operand, which the sweep reads for stores.
enum class PlainWidth : uint8_t { full, byte, word, dword };

struct PlainOp {
  PlainForm form = PlainForm::none;
  uint8_t regs = 0xff;      // ModRM.reg values allowed (group opcodes: the others are other instructions)
  uint8_t imm_regs = 0xff;  // ModRM.reg values whose form has the immediate (test in groups F6/F7)
  Flow flow = Flow::normal;
  PlainCheck check = PlainCheck::none;
  uint8_t write_regs = 0;   // ModRM.reg values for which the memory operand is written
  PlainWidth width = PlainWidth::full;
  ZydisMnemonic mnemonic = ZYDIS_MNEMONIC_INVALID;  // only what the sweep tells apart: mov, lea, nop
};

struct PlainTable {
  PlainOp one[256];  // one-byte opcodes
  PlainOp two[256];  // 0F xx
};

PlainTable make_plain_table(bool x64) {
  PlainTable t;
  const auto set = [](PlainOp* ops, std::initializer_list<int> codes, PlainOp op) {
    for (int c : codes) ops[c] = op;
  };
  const auto range = [](PlainOp* ops, int lo, int hi, PlainOp op) {
    for (int c = lo; c <= hi; ++c) ops[c] = op;
  };
  using F = PlainForm;
  using W = PlainWidth;
  constexpr Flow N = Flow::normal;
  constexpr PlainCheck C = PlainCheck::none;
  constexpr uint8_t all = 0xff;
  // add, or, adc, sbb, and, sub, xor, cmp: r/m8 r8, r/m r (written but by cmp), r8 r/m8, r r/m, al imm8, eAX imm.
  for (int base = 0x00; base <= 0x38; base += 8) {
    const uint8_t written = base == 0x38 ? 0 : all;
    set(t.one, {base}, {F::modrm, all, all, N, C, written, W::byte});
    set(t.one, {base + 1}, {F::modrm, all, all, N, C, written});
    set(t.one, {base + 2}, {F::modrm, all, all, N, C, 0, W::byte});
    set(t.one, {base + 3}, {F::modrm});
    set(t.one, {base + 4}, {F::imm8});
    set(t.one, {base + 5}, {F::immz});
  }
  if (!x64) range(t.one, 0x40, 0x4f, {F::bare});  // inc/dec r32 (REX prefixes in 64-bit mode)
  range(t.one, 0x50, 0x5f, {F::bare});             // push/pop reg
  if (x64) set(t.one, {0x63}, {F::modrm, all, all, N, C, 0, W::dword});  // movsxd
  set(t.one, {0x68}, {F::immz});                   // push imm
  set(t.one, {0x69}, {F::modrm_immz});             // imul r, r/m, imm
  set(t.one, {0x6a, 0xa8}, {F::imm8});             // push imm8, test al, imm8
  set(t.one, {0x6b}, {F::modrm_imm8});             // imul r, r/m, imm8
  set(t.one, {0x80}, {F::modrm_imm8, all, all, N, C, 0x7f, W::byte});  // group 1 (cmp is /7)
  set(t.one, {0x81}, {F::modrm_immz, all, all, N, C, 0x7f});
  set(t.one, {0x83}, {F::modrm_imm8, all, all, N, C, 0x7f});
  range(t.one, 0x70, 0x7f, {F::rel8, all, all, Flow::jcc});
  set(t.one, {0x84}, {F::modrm, all, all, N, C, 0, W::byte});  // test r/m, r
  set(t.one, {0x85}, {F::modrm});
  set(t.one, {0x88}, {F::modrm, all, all, N, PlainCheck::mov_rr8, all, W::byte, ZYDIS_MNEMONIC_MOV});  // mov r/m, r
  set(t.one, {0x89}, {F::modrm, all, all, N, PlainCheck::mov_rr, all, W::full, ZYDIS_MNEMONIC_MOV});
  set(t.one, {0x8a}, {F::modrm, all, all, N, PlainCheck::mov_rr8, 0, W::byte, ZYDIS_MNEMONIC_MOV});  // mov r, r/m
  set(t.one, {0x8b}, {F::modrm, all, all, N, PlainCheck::mov_rr, 0, W::full, ZYDIS_MNEMONIC_MOV});
  set(t.one, {0x8d}, {F::modrm, all, all, N, PlainCheck::lea, 0, W::full, ZYDIS_MNEMONIC_LEA});
  set(t.one, {0x90}, {F::bare, all, all, N, PlainCheck::nop_1, 0, W::full, ZYDIS_MNEMONIC_NOP});
  set(t.one, {0x98, 0x99}, {F::bare});             // cbw/cwde/cdqe, cwd/cdq/cqo
  if (!x64) {  // mov al/eAX from and to an absolute address (x64: a 64-bit address, to Zydis)
    set(t.one, {0xa0}, {F::moffs, all, all, N, C, 0, W::byte, ZYDIS_MNEMONIC_MOV});
    set(t.one, {0xa1}, {F::moffs, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_MOV});
    set(t.one, {0xa2}, {F::moffs, all, all, N, C, all, W::byte, ZYDIS_MNEMONIC_MOV});
    set(t.one, {0xa3}, {F::moffs, all, all, N, C, all, W::full, ZYDIS_MNEMONIC_MOV});
  }
  set(t.one, {0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf}, {F::bare});  // string ops
  set(t.one, {0xa9}, {F::immz});                   // test eAX, imm
  range(t.one, 0xb0, 0xb7, {F::imm8});             // mov r8, imm8
  range(t.one, 0xb8, 0xbf, {F::immz, all, all, N, PlainCheck::imm64});  // mov r, imm
  set(t.one, {0xc0}, {F::modrm_imm8, 0xbf, all, N, C, all, W::byte});  // shifts by imm8 (not the /6 alias)
  set(t.one, {0xc1}, {F::modrm_imm8, 0xbf, all, N, C, all});
  set(t.one, {0xc2}, {F::imm16, all, all, Flow::ret});
  set(t.one, {0xc3}, {F::bare, all, all, Flow::ret});
  set(t.one, {0xc6}, {F::modrm_imm8, 0x01, all, N, C, all, W::byte, ZYDIS_MNEMONIC_MOV});  // mov r/m, imm
  set(t.one, {0xc7}, {F::modrm_immz, 0x01, all, N, C, all, W::full, ZYDIS_MNEMONIC_MOV});
  set(t.one, {0xcc}, {F::bare, all, all, Flow::stop});  // int3
  set(t.one, {0xd0, 0xd2}, {F::modrm, 0xbf, all, N, C, all, W::byte});  // shifts by 1 and cl
  set(t.one, {0xd1, 0xd3}, {F::modrm, 0xbf, all, N, C, all});
  set(t.one, {0xe8}, {F::rel32, all, all, Flow::call});
  set(t.one, {0xe9}, {F::rel32, all, all, Flow::jmp});
  set(t.one, {0xeb}, {F::rel8, all, all, Flow::jmp});
  // test r/m, imm; not, neg (written); mul, imul, div, idiv.
  set(t.one, {0xf6}, {F::modrm_imm8, 0xfd, 0x01, N, C, 0x0c, W::byte});
  set(t.one, {0xf7}, {F::modrm_immz, 0xfd, 0x01, N, C, 0x0c});
  set(t.one, {0xfe}, {F::modrm, 0x03, all, N, C, 0x03, W::byte});  // inc/dec r/m8
  // inc/dec (written), call, jmp, push r/m.
  set(t.one, {0xff}, {F::modrm, 0x57, all, N, PlainCheck::group5, 0x03});
  set(t.two, {0x1f}, {F::modrm, 0x01, all, N, PlainCheck::nop, 0, W::full, ZYDIS_MNEMONIC_NOP});  // multi-byte nop
  range(t.two, 0x40, 0x4f, {F::modrm});             // cmovcc
  range(t.two, 0x80, 0x8f, {F::rel32, all, all, Flow::jcc});
  range(t.two, 0x90, 0x9f, {F::modrm, 0x01, all, N, C, all, W::byte});  // setcc
  set(t.two, {0xa3, 0xaf}, {F::modrm});             // bt, imul
  set(t.two, {0xab, 0xb3, 0xbb, 0xa5, 0xad, 0xb1, 0xc1}, {F::modrm, all, all, N, C, all});  // bts/btr/btc, shld/shrd cl,
  set(t.two, {0xb0, 0xc0}, {F::modrm, all, all, N, C, all, W::byte});                       // cmpxchg, xadd
  set(t.two, {0xb6, 0xbe}, {F::modrm, all, all, N, C, 0, W::byte});  // movzx, movsx
  set(t.two, {0xb7, 0xbf}, {F::modrm, all, all, N, C, 0, W::word});
  set(t.two, {0xa4, 0xac}, {F::modrm_imm8, all, all, N, C, all});    // shld/shrd imm8
  set(t.two, {0xba}, {F::modrm_imm8, 0xf0, all, N, C, 0xe0});        // bt (read), bts/btr/btc imm8
  range(t.two, 0xc8, 0xcf, {F::bare});              // bswap
  return t;
}

// Copied over an instruction to clear it: a temporary Insn{} is built on the stack with narrow stores and
// copied with wide loads, which stalls on store forwarding (a third of the table decoder's time).
const Insn kEmptyInsn{};

uint32_t read_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

bool Decoder::may_be_image_address(int64_t value) const {
  // As the sweep reads immediates and displacements (note_memory_use): 32 bits wide on x86, sign-extended
  // to 64 on x64.
  const uint64_t va = x64_ ? static_cast<uint64_t>(value) : static_cast<uint64_t>(value) & 0xffffffffull;
  return va >= image_base_ && va - image_base_ < address_span_;
}

bool Decoder::decode_plain(const uint8_t* p, size_t available, uint32_t rva, Insn& out) const {
  static const PlainTable x86_table = make_plain_table(false);
  static const PlainTable x64_table = make_plain_table(true);
  const PlainTable& table = x64_ ? x64_table : x86_table;
  size_t i = 0;
  bool operand16 = false;
  size_t segment_prefixes = 0;  // 2E, only before a nop
  while (i < available && i < 14 && (p[i] == 0x66 || p[i] == 0x2e)) {
    operand16 = operand16 || p[i] == 0x66;
    segment_prefixes += p[i] == 0x2e;
    ++i;
  }
  const size_t legacy_prefixes = i;
  uint8_t rex = 0;
  if (x64_ && i < available && (p[i] & 0xf0) == 0x40) rex = p[i++];  // REX, right before the opcode
  if (i >= available) return false;
  const uint8_t opcode = p[i++];
  const PlainOp* op = &table.one[opcode];
  if (opcode == 0x0f) {
    if (i >= available) return false;
    op = &table.two[p[i++]];
  }
  if (op->form == PlainForm::none) return false;
  // Prefixes: direct branches take none (66 truncates the target), a nop takes 66 and 2E repeated, others
  // at most one 66.
  if (op->flow != Flow::normal && (legacy_prefixes || rex)) return false;
  if (op->check != PlainCheck::nop && (segment_prefixes || legacy_prefixes > 1)) return false;
  if (op->check == PlainCheck::nop_1 && rex) return false;
  if (op->check == PlainCheck::imm64 && (rex & 0x08)) return false;

  out = kEmptyInsn;
  Flow flow = op->flow;
  size_t imm_bytes = 0;
  const size_t immz = operand16 && !(rex & 0x08) ? 2 : 4;  // (REX.W overrides 66)
  const uint8_t full_width = rex & 0x08 ? 8 : operand16 ? 2 : 4;
  const auto width = [&] {
    switch (op->width) {
      case PlainWidth::byte: return uint8_t{1};
      case PlainWidth::word: return uint8_t{2};
      case PlainWidth::dword: return operand16 ? uint8_t{2} : uint8_t{4};
      default: return full_width;
    }
  };
  // The memory operand, when there is one: out.op[0], and its address when absolute or RIP-relative.
  bool rip_relative = false;
  bool absolute = false;
  int64_t disp = 0;
  switch (op->form) {
    case PlainForm::none:
      return false;
    case PlainForm::bare:
      break;
    case PlainForm::imm8:
    case PlainForm::rel8:
      imm_bytes = 1;
      break;
    case PlainForm::imm16:
      imm_bytes = 2;
      break;
    case PlainForm::immz:
      imm_bytes = immz;
      break;
    case PlainForm::rel32:
      imm_bytes = 4;
      break;
    case PlainForm::moffs: {
      if (i + 4 > available) return false;
      disp = read_u32(p + i);
      i += 4;
      out.disp_bits = 32;
      absolute = true;
      Operand& mem = out.op[0];
      mem.kind = OpKind::mem;
      mem.disp = disp;
      mem.write = op->write_regs != 0;
      mem.size = width();
      out.operand_count = 1;
      break;
    }
    case PlainForm::modrm:
    case PlainForm::modrm_imm8:
    case PlainForm::modrm_immz: {
      if (i >= available) return false;
      const uint8_t modrm = p[i++];
      const uint8_t mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
      if (!((op->regs >> reg) & 1)) return false;
      if (op->check == PlainCheck::group5 && (reg == 2 || reg == 4)) {
        if (legacy_prefixes) return false;  // (66 makes the target 16 bits)
        flow = reg == 2 ? Flow::call_indirect : Flow::jmp_indirect;
      }
      const uint8_t reg_id = static_cast<uint8_t>(reg | ((rex & 0x04) << 1));
      const uint8_t rm_id = static_cast<uint8_t>(rm | ((rex & 0x01) << 3));
      if (mod == 3) {
        if (op->check == PlainCheck::lea) return false;  // (undefined)
        // mov reg, reg: padding when both name one register (ah..bh stand for rax..rbx without REX).
        const auto byte_id = [rex](uint8_t id) { return !rex && id >= 4 && id < 8 ? id - 4 : id; };
        if (op->check == PlainCheck::mov_rr && rm_id == reg_id) return false;
        if (op->check == PlainCheck::mov_rr8 && byte_id(rm_id) == byte_id(reg_id)) return false;
        if (flow == Flow::call_indirect || flow == Flow::jmp_indirect) {
          out.op[0].kind = OpKind::reg;
          out.op[0].reg = rm_id;
          out.operand_count = 1;
        }
      } else {
        Operand& mem = out.op[0];
        mem.kind = OpKind::mem;
        uint8_t base = rm;
        bool has_base = true;
        if (rm == 4) {
          if (i >= available) return false;
          const uint8_t sib = p[i++];
          base = sib & 7;
          const uint8_t index = static_cast<uint8_t>(((sib >> 3) & 7) | ((rex & 0x02) << 2));
          if (index != 4) {
            mem.index = index;
            mem.scale = static_cast<uint8_t>(1u << (sib >> 6));
          }
          if (mod == 0 && base == 5) {
            has_base = false;  // [index*scale + disp32], or an absolute address without an index
            absolute = mem.index == kNoReg;
          }
        } else if (mod == 0 && rm == 5) {
          has_base = false;
          rip_relative = x64_;
          absolute = !x64_;
        }
        if (has_base) mem.base = static_cast<uint8_t>(base | ((rex & 0x01) << 3));
        if (rip_relative) mem.base = kRip;
        if (mod == 1) {
          if (i >= available) return false;
          disp = static_cast<int8_t>(p[i++]);
          out.disp_bits = 8;
        } else if (mod == 2 || !has_base) {
          if (i + 4 > available) return false;
          disp = static_cast<int32_t>(read_u32(p + i));
          out.disp_bits = 32;
          i += 4;
        }
        mem.disp = disp;
        mem.write = (op->write_regs >> reg) & 1;
        mem.size = op->check == PlainCheck::lea ? 0 : width();
        out.operand_count = 1;
        if (op->check == PlainCheck::nop && (absolute || rip_relative)) return false;
        if (op->check == PlainCheck::lea && mem.index == kNoReg && mem.base == reg_id && disp == 0) return false;
      }
      if (op->form != PlainForm::modrm && ((op->imm_regs >> reg) & 1))
        imm_bytes = op->form == PlainForm::modrm_imm8 ? 1 : immz;
      break;
    }
  }
  const size_t imm_at = i;
  i += imm_bytes;
  if (i > available || i > 15) return false;
  int64_t imm = 0;
  if (imm_bytes == 4) {
    imm = static_cast<int32_t>(read_u32(p + imm_at));
    // A 32-bit immediate is plain only where it cannot be an address the sweep looks up.
    if (op->form != PlainForm::rel32 && (may_be_image_address(imm) || may_be_image_address(imm & 0xffffffffll)))
      return false;
  } else if (imm_bytes == 1) {
    imm = static_cast<int8_t>(p[imm_at]);
  }
  out.rva = rva;
  out.length = static_cast<uint8_t>(i);
  out.flow = flow;
  out.mnemonic = op->mnemonic;
  if (imm_bytes) {
    out.imm_offset[0] = static_cast<uint8_t>(imm_at);
    out.imm_size[0] = static_cast<uint8_t>(imm_bytes * 8);
  }
  if (op->form == PlainForm::rel8 || op->form == PlainForm::rel32) {
    // As ZydisCalcAbsoluteAddress: 64-bit arithmetic on x64, 32-bit on x86.
    const uint64_t target = static_cast<uint64_t>(rva) + i + static_cast<uint64_t>(imm);
    out.target = static_cast<uint32_t>(target);
    out.has_target = x64_ ? target <= 0xffffffffull : true;
  }
  // The address of an absolute or RIP-relative memory operand, as decode() computes it.
  if (rip_relative || absolute) {
    const uint64_t va = rip_relative ? image_base_ + rva + i + static_cast<uint64_t>(disp)
                        : x64_       ? static_cast<uint64_t>(disp)
                                     : static_cast<uint64_t>(static_cast<uint32_t>(disp));
    out.negative_disp = rip_relative && disp < 0;
    if (va >= image_base_ && va - image_base_ <= 0xffffffffull) out.mem_rva = static_cast<uint32_t>(va - image_base_);
  }
  return true;
}

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

Decoder::Decoder(bool x64, uint64_t image_base, uint64_t address_span)
    : x64_(x64), image_base_(image_base), address_span_(std::min<uint64_t>(address_span, uint64_t{1} << 32)) {
  ZydisDecoderInit(&decoder_, x64 ? ZYDIS_MACHINE_MODE_LONG_64 : ZYDIS_MACHINE_MODE_LEGACY_32,
                   x64 ? ZYDIS_STACK_WIDTH_64 : ZYDIS_STACK_WIDTH_32);
}

bool Decoder::decode(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const {
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
