// Table decoding of the common x86/x64 instructions, beside Zydis (x86_insn.cpp).
//
// Zydis costs some 70 ns an instruction to find its length and 100 to 150 with its operands, and the analysis
// decodes every instruction of every code section (the sweep) and again every instruction of the regions and
// proofs around call sites. Most of those instructions are a few common encodings: one-byte and 0F opcodes
// with at most a 66 prefix and a REX prefix. Those are decoded here from a table, in a few ns, and anything
// else, or anything not sure to be valid, goes to Zydis:
//   decode_plain() gives what the sweep reads (length, flow, direct target, memory operand and address,
//     raw immediate and displacement sizes; no mnemonic but mov, lea and nop); sweep_step() gives only the
//     length of the instructions among those the sweep has nothing to note about, and what it notes about
//     the others (SweepFacts), without building an Insn;
//   decode_table() gives the whole Insn that Decoder::decode() builds from Zydis's decoding.
// The unit tests hold both to Zydis, exhaustively over prefixes, opcodes and ModRM bytes and at every offset
// of the sample and corpus drivers' code: decode_plain() on everything the sweep reads, decode_table() on
// every field of Insn.
#include <algorithm>
#include <initializer_list>

#include "analysis/x86_insn.hpp"

namespace tagwho::x86 {
namespace {

enum class Form : uint8_t {
  none,        // not in the table: Zydis
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

// What else the sweep's decoding must check before an instruction counts as plain.
enum class Check : uint8_t {
  none,
  nop,     // a nop: padding, which keeps the flow state before it (66 and 2E prefixes allowed, repeated)
  nop_1,   // 90: a nop without REX (41 90 is xchg r8d, eax)
  mov_rr,  // mov between registers: padding (mov edi, edi) goes to Zydis
  mov_rr8, // the same with byte registers
  lea,     // lea: padding (lea esi, [esi+0]) goes to Zydis
  imm64,   // mov reg, imm: REX.W makes the immediate 64 bits (movabs): Zydis
  group5,  // FF: /2 and /4 are indirect calls and jumps
};

// Operand widths: the operand size (16, 32 or 64 bits), a fixed size, the stack width (push, pop), the
// address width (lea's operand).
enum class Width : uint8_t { full, byte, word, dword, stack, address };

// Where the visible operands come from (decode_table()).
enum class Layout : uint8_t {
  none,       // no visible operand
  rm_reg,     // r/m, ModRM.reg
  reg_rm,     // ModRM.reg, r/m
  rm_imm,     // r/m, immediate (when the form has one for this ModRM.reg)
  rm_one,     // r/m, an implicit 1 (shifts D0/D1)
  rm_cl,      // r/m, cl (shifts D2/D3)
  acc_imm,    // al/eAX (implicit), immediate
  opreg,      // the register in the opcode's low bits
  opreg_imm,  // ... and an immediate
  imm,        // an immediate (push, ret)
  acc_moffs,  // eAX, [moffs]
  moffs_acc,  // [moffs], eAX
};

// Registers written besides the visible operands (as Zydis lists hidden operands).
enum class Hidden : uint8_t { none, stack, mul_div, cbw, cwd };

struct Op {
  // What the sweep's decoding reads.
  Form form = Form::none;
  uint8_t regs = 0xff;      // ModRM.reg values allowed (group opcodes: the others are other instructions)
  uint8_t imm_regs = 0xff;  // ModRM.reg values whose form has the immediate (test in groups F6/F7)
  Flow flow = Flow::normal;
  Check check = Check::none;
  uint8_t write_regs = 0;   // ModRM.reg values for which the r/m operand is written
  Width width = Width::full;  // the r/m operand's width
  ZydisMnemonic mnemonic = ZYDIS_MNEMONIC_INVALID;  // of the whole opcode (else by ModRM.reg or condition)
  // What decode_table() reads besides (full: it takes the opcode).
  bool full = false;
  Layout layout = Layout::none;
  uint8_t read0 = 0;   // ModRM.reg values for which the first visible operand is read
  uint8_t write0 = 0;  // ... and written
  Width reg_width = Width::full;  // the register operand's width (ModRM.reg, accumulator, opcode register)
  bool imm_unsigned = false;      // shift counts, ret imm16
  Hidden hidden = Hidden::none;
  const ZydisMnemonic* by_reg = nullptr;  // mnemonics by ModRM.reg (groups)
  const ZydisMnemonic* by_cc = nullptr;   // mnemonics by the opcode's low four bits (jcc, setcc, cmovcc)
};

struct Table {
  Op one[256];  // one-byte opcodes
  Op two[256];  // 0F xx
};

constexpr ZydisMnemonic kAlu[8] = {ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_OR,  ZYDIS_MNEMONIC_ADC, ZYDIS_MNEMONIC_SBB,
                                   ZYDIS_MNEMONIC_AND, ZYDIS_MNEMONIC_SUB, ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_CMP};
constexpr ZydisMnemonic kShift[8] = {ZYDIS_MNEMONIC_ROL, ZYDIS_MNEMONIC_ROR, ZYDIS_MNEMONIC_RCL,
                                     ZYDIS_MNEMONIC_RCR, ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SHR,
                                     ZYDIS_MNEMONIC_INVALID, ZYDIS_MNEMONIC_SAR};
constexpr ZydisMnemonic kGroup3[8] = {ZYDIS_MNEMONIC_TEST, ZYDIS_MNEMONIC_INVALID, ZYDIS_MNEMONIC_NOT,
                                      ZYDIS_MNEMONIC_NEG,  ZYDIS_MNEMONIC_MUL,     ZYDIS_MNEMONIC_IMUL,
                                      ZYDIS_MNEMONIC_DIV,  ZYDIS_MNEMONIC_IDIV};
constexpr ZydisMnemonic kGroup5[8] = {ZYDIS_MNEMONIC_INC,     ZYDIS_MNEMONIC_DEC, ZYDIS_MNEMONIC_CALL,
                                      ZYDIS_MNEMONIC_INVALID, ZYDIS_MNEMONIC_JMP, ZYDIS_MNEMONIC_INVALID,
                                      ZYDIS_MNEMONIC_PUSH,    ZYDIS_MNEMONIC_INVALID};
constexpr ZydisMnemonic kJcc[16] = {ZYDIS_MNEMONIC_JO,  ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB,  ZYDIS_MNEMONIC_JNB,
                                    ZYDIS_MNEMONIC_JZ,  ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
                                    ZYDIS_MNEMONIC_JS,  ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP,  ZYDIS_MNEMONIC_JNP,
                                    ZYDIS_MNEMONIC_JL,  ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE};
constexpr ZydisMnemonic kSetcc[16] = {
    ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB,  ZYDIS_MNEMONIC_SETNB,
    ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
    ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP,  ZYDIS_MNEMONIC_SETNP,
    ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE};
constexpr ZydisMnemonic kCmovcc[16] = {
    ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB,  ZYDIS_MNEMONIC_CMOVNB,
    ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
    ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP,  ZYDIS_MNEMONIC_CMOVNP,
    ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNLE};

Table make_table(bool x64) {
  Table t;
  constexpr uint8_t all = 0xff;
  using F = Form;
  using W = Width;
  using L = Layout;
  using H = Hidden;
  constexpr Flow N = Flow::normal;
  constexpr Check C = Check::none;
  // For the sweep: form, allowed ModRM.reg values, ModRM.reg values with an immediate, flow, check, ModRM.reg
  // values that write the r/m operand, its width, mnemonic.
  const auto sweep = [](Op* ops, std::initializer_list<int> codes, Op op) {
    for (int c : codes) ops[c] = op;
  };
  // For decode_table() too: the layout, the ModRM.reg values for which the first operand is read and
  // written, the register operand's width, unsigned immediates, hidden writes, mnemonics by ModRM.reg or
  // condition.
  const auto full = [](Op* ops, std::initializer_list<int> codes, Layout layout, uint8_t read0, uint8_t write0,
                       Width reg_width = Width::full, bool imm_unsigned = false, Hidden hidden = Hidden::none,
                       const ZydisMnemonic* by_reg = nullptr, const ZydisMnemonic* by_cc = nullptr) {
    for (int c : codes) {
      Op& op = ops[c];
      op.full = true;
      op.layout = layout;
      op.read0 = read0;
      op.write0 = write0;
      op.reg_width = reg_width;
      op.imm_unsigned = imm_unsigned;
      op.hidden = hidden;
      op.by_reg = by_reg;
      op.by_cc = by_cc;
    }
  };
  // add, or, adc, sbb, and, sub, xor, cmp: r/m8 r8, r/m r, r8 r/m8, r r/m, al imm8, eAX imm. The first operand
  // is read by all, written by all but cmp.
  for (int base = 0x00; base <= 0x38; base += 8) {
    const uint8_t written = base == 0x38 ? 0 : all;
    const ZydisMnemonic m = kAlu[base >> 3];
    sweep(t.one, {base}, {F::modrm, all, all, N, C, written, W::byte, m});
    sweep(t.one, {base + 1}, {F::modrm, all, all, N, C, written, W::full, m});
    sweep(t.one, {base + 2}, {F::modrm, all, all, N, C, 0, W::byte, m});
    sweep(t.one, {base + 3}, {F::modrm, all, all, N, C, 0, W::full, m});
    sweep(t.one, {base + 4}, {F::imm8, all, all, N, C, 0, W::byte, m});
    sweep(t.one, {base + 5}, {F::immz, all, all, N, C, 0, W::full, m});
    full(t.one, {base}, L::rm_reg, all, written, W::byte);
    full(t.one, {base + 1}, L::rm_reg, all, written);
    full(t.one, {base + 2}, L::reg_rm, all, written, W::byte);
    full(t.one, {base + 3}, L::reg_rm, all, written);
    full(t.one, {base + 4}, L::acc_imm, all, written, W::byte);
    full(t.one, {base + 5}, L::acc_imm, all, written);
  }
  if (!x64) {  // inc/dec r32 (REX prefixes in 64-bit mode)
    for (int c = 0x40; c <= 0x4f; ++c) {
      sweep(t.one, {c}, {F::bare, all, all, N, C, 0, W::full, c < 0x48 ? ZYDIS_MNEMONIC_INC : ZYDIS_MNEMONIC_DEC});
      full(t.one, {c}, L::opreg, all, all);
    }
  }
  for (int c = 0x50; c <= 0x57; ++c) {  // push/pop reg
    sweep(t.one, {c}, {F::bare, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_PUSH});
    sweep(t.one, {c + 8}, {F::bare, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_POP});
    full(t.one, {c}, L::opreg, all, 0, W::stack, false, H::stack);
    full(t.one, {c + 8}, L::opreg, 0, all, W::stack, false, H::stack);
  }
  if (x64) sweep(t.one, {0x63}, {F::modrm, all, all, N, C, 0, W::dword, ZYDIS_MNEMONIC_MOVSXD});
  sweep(t.one, {0x68}, {F::immz, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_PUSH});
  sweep(t.one, {0x6a}, {F::imm8, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_PUSH});
  full(t.one, {0x68, 0x6a}, L::imm, 0, 0, W::full, false, H::stack);
  sweep(t.one, {0x69}, {F::modrm_immz, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_IMUL});  // imul r, r/m, imm
  sweep(t.one, {0x6b}, {F::modrm_imm8, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_IMUL});
  sweep(t.one, {0xa8}, {F::imm8, all, all, N, C, 0, W::byte, ZYDIS_MNEMONIC_TEST});
  sweep(t.one, {0xa9}, {F::immz, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_TEST});
  full(t.one, {0xa8}, L::acc_imm, all, 0, W::byte);
  full(t.one, {0xa9}, L::acc_imm, all, 0);
  sweep(t.one, {0x80}, {F::modrm_imm8, all, all, N, C, 0x7f, W::byte});  // group 1 (cmp is /7)
  sweep(t.one, {0x81}, {F::modrm_immz, all, all, N, C, 0x7f});
  sweep(t.one, {0x83}, {F::modrm_imm8, all, all, N, C, 0x7f});
  full(t.one, {0x80, 0x81, 0x83}, L::rm_imm, all, 0x7f, W::full, false, H::none, kAlu);
  for (int c = 0x70; c <= 0x7f; ++c) sweep(t.one, {c}, {F::rel8, all, all, Flow::jcc});
  for (int c = 0x70; c <= 0x70 + 15; ++c) full(t.one, {c}, L::imm, 0, 0, W::full, false, H::none, nullptr, kJcc);
  sweep(t.one, {0x84}, {F::modrm, all, all, N, C, 0, W::byte, ZYDIS_MNEMONIC_TEST});  // test r/m, r
  sweep(t.one, {0x85}, {F::modrm, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_TEST});
  full(t.one, {0x84}, L::rm_reg, all, 0, W::byte);
  full(t.one, {0x85}, L::rm_reg, all, 0);
  sweep(t.one, {0x88}, {F::modrm, all, all, N, Check::mov_rr8, all, W::byte, ZYDIS_MNEMONIC_MOV});  // mov r/m, r
  sweep(t.one, {0x89}, {F::modrm, all, all, N, Check::mov_rr, all, W::full, ZYDIS_MNEMONIC_MOV});
  sweep(t.one, {0x8a}, {F::modrm, all, all, N, Check::mov_rr8, 0, W::byte, ZYDIS_MNEMONIC_MOV});  // mov r, r/m
  sweep(t.one, {0x8b}, {F::modrm, all, all, N, Check::mov_rr, 0, W::full, ZYDIS_MNEMONIC_MOV});
  full(t.one, {0x88}, L::rm_reg, 0, all, W::byte);
  full(t.one, {0x89}, L::rm_reg, 0, all);
  full(t.one, {0x8a}, L::reg_rm, 0, all, W::byte);
  full(t.one, {0x8b}, L::reg_rm, 0, all);
  sweep(t.one, {0x8d}, {F::modrm, all, all, N, Check::lea, 0, W::address, ZYDIS_MNEMONIC_LEA});
  full(t.one, {0x8d}, L::reg_rm, 0, all);
  sweep(t.one, {0x90}, {F::bare, all, all, N, Check::nop_1, 0, W::full, ZYDIS_MNEMONIC_NOP});
  full(t.one, {0x90}, L::none, 0, 0);
  sweep(t.one, {0x98}, {F::bare});  // cbw/cwde/cdqe
  sweep(t.one, {0x99}, {F::bare});  // cwd/cdq/cqo
  full(t.one, {0x98}, L::none, 0, 0, W::full, false, H::cbw);
  full(t.one, {0x99}, L::none, 0, 0, W::full, false, H::cwd);
  if (!x64) {  // mov al/eAX from and to an absolute address (x64: a 64-bit address, to Zydis)
    sweep(t.one, {0xa0}, {F::moffs, all, all, N, C, 0, W::byte, ZYDIS_MNEMONIC_MOV});
    sweep(t.one, {0xa1}, {F::moffs, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_MOV});
    sweep(t.one, {0xa2}, {F::moffs, all, all, N, C, all, W::byte, ZYDIS_MNEMONIC_MOV});
    sweep(t.one, {0xa3}, {F::moffs, all, all, N, C, all, W::full, ZYDIS_MNEMONIC_MOV});
    full(t.one, {0xa0}, L::acc_moffs, 0, all, W::byte);
    full(t.one, {0xa1}, L::acc_moffs, 0, all);
    full(t.one, {0xa2}, L::moffs_acc, 0, all, W::byte);
    full(t.one, {0xa3}, L::moffs_acc, 0, all);
  }
  sweep(t.one, {0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf}, {F::bare});  // string ops (sweep only)
  for (int c = 0xb0; c <= 0xb7; ++c) {  // mov r, imm
    sweep(t.one, {c}, {F::imm8, all, all, N, C, 0, W::byte, ZYDIS_MNEMONIC_MOV});
    sweep(t.one, {c + 8}, {F::immz, all, all, N, Check::imm64, 0, W::full, ZYDIS_MNEMONIC_MOV});
    full(t.one, {c}, L::opreg_imm, 0, all, W::byte);
    full(t.one, {c + 8}, L::opreg_imm, 0, all);
  }
  sweep(t.one, {0xc0}, {F::modrm_imm8, 0xbf, all, N, C, all, W::byte});  // shifts by imm8 (not the /6 alias)
  sweep(t.one, {0xc1}, {F::modrm_imm8, 0xbf, all, N, C, all});
  sweep(t.one, {0xd0, 0xd2}, {F::modrm, 0xbf, all, N, C, all, W::byte});  // shifts by 1 and cl
  sweep(t.one, {0xd1, 0xd3}, {F::modrm, 0xbf, all, N, C, all});
  full(t.one, {0xc0, 0xc1}, L::rm_imm, all, all, W::full, true, H::none, kShift);
  full(t.one, {0xd0, 0xd1}, L::rm_one, all, all, W::full, true, H::none, kShift);
  full(t.one, {0xd2, 0xd3}, L::rm_cl, all, all, W::full, true, H::none, kShift);
  sweep(t.one, {0xc2}, {F::imm16, all, all, Flow::ret, C, 0, W::full, ZYDIS_MNEMONIC_RET});
  sweep(t.one, {0xc3}, {F::bare, all, all, Flow::ret, C, 0, W::full, ZYDIS_MNEMONIC_RET});
  full(t.one, {0xc2}, L::imm, 0, 0, W::full, true, H::stack);
  full(t.one, {0xc3}, L::none, 0, 0, W::full, false, H::stack);
  sweep(t.one, {0xc6}, {F::modrm_imm8, 0x01, all, N, C, all, W::byte, ZYDIS_MNEMONIC_MOV});  // mov r/m, imm
  sweep(t.one, {0xc7}, {F::modrm_immz, 0x01, all, N, C, all, W::full, ZYDIS_MNEMONIC_MOV});
  full(t.one, {0xc6, 0xc7}, L::rm_imm, 0, all);
  sweep(t.one, {0xcc}, {F::bare, all, all, Flow::stop, C, 0, W::full, ZYDIS_MNEMONIC_INT3});
  full(t.one, {0xcc}, L::none, 0, 0);
  sweep(t.one, {0xe8}, {F::rel32, all, all, Flow::call, C, 0, W::full, ZYDIS_MNEMONIC_CALL});
  sweep(t.one, {0xe9}, {F::rel32, all, all, Flow::jmp, C, 0, W::full, ZYDIS_MNEMONIC_JMP});
  sweep(t.one, {0xeb}, {F::rel8, all, all, Flow::jmp, C, 0, W::full, ZYDIS_MNEMONIC_JMP});
  full(t.one, {0xe8}, L::imm, 0, 0, W::full, false, H::stack);
  full(t.one, {0xe9, 0xeb}, L::imm, 0, 0);
  // test r/m, imm; not, neg (written); mul, imul, div, idiv (rAX and rDX written).
  sweep(t.one, {0xf6}, {F::modrm_imm8, 0xfd, 0x01, N, C, 0x0c, W::byte});
  sweep(t.one, {0xf7}, {F::modrm_immz, 0xfd, 0x01, N, C, 0x0c});
  full(t.one, {0xf6, 0xf7}, L::rm_imm, all, 0x0c, W::full, false, H::mul_div, kGroup3);
  sweep(t.one, {0xfe}, {F::modrm, 0x03, all, N, C, 0x03, W::byte});  // inc/dec r/m8
  full(t.one, {0xfe}, L::rm_imm, all, 0x03, W::full, false, H::none, kGroup5);
  // inc/dec (written), call, jmp, push r/m.
  sweep(t.one, {0xff}, {F::modrm, 0x57, all, N, Check::group5, 0x03, W::full});
  full(t.one, {0xff}, L::rm_imm, all, 0x03, W::full, false, H::stack, kGroup5);
  sweep(t.two, {0x1f}, {F::modrm, 0x01, all, N, Check::nop, 0, W::full, ZYDIS_MNEMONIC_NOP});  // multi-byte nop
  full(t.two, {0x1f}, L::rm_reg, all, 0);
  for (int c = 0x40; c <= 0x4f; ++c) sweep(t.two, {c}, {F::modrm});  // cmovcc
  for (int c = 0x40; c <= 0x40 + 15; ++c) full(t.two, {c}, L::reg_rm, 0, all, W::full, false, H::none, nullptr, kCmovcc);
  for (int c = 0x80; c <= 0x8f; ++c) sweep(t.two, {c}, {F::rel32, all, all, Flow::jcc});
  for (int c = 0x80; c <= 0x80 + 15; ++c) full(t.two, {c}, L::imm, 0, 0, W::full, false, H::none, nullptr, kJcc);
  for (int c = 0x90; c <= 0x9f; ++c) sweep(t.two, {c}, {F::modrm, 0x01, all, N, C, all, W::byte});  // setcc
  for (int c = 0x90; c <= 0x90 + 15; ++c) full(t.two, {c}, L::rm_imm, 0, all, W::full, false, H::none, nullptr, kSetcc);
  sweep(t.two, {0xa3}, {F::modrm});                                         // bt (sweep only)
  sweep(t.two, {0xaf}, {F::modrm, all, all, N, C, 0, W::full, ZYDIS_MNEMONIC_IMUL});  // imul r, r/m
  full(t.two, {0xaf}, L::reg_rm, all, all);
  sweep(t.two, {0xab, 0xb3, 0xbb, 0xa5, 0xad, 0xb1, 0xc1}, {F::modrm, all, all, N, C, all});  // bts/btr/btc, shld/shrd cl,
  sweep(t.two, {0xb0, 0xc0}, {F::modrm, all, all, N, C, all, W::byte});                       // cmpxchg, xadd
  sweep(t.two, {0xb6}, {F::modrm, all, all, N, C, 0, W::byte, ZYDIS_MNEMONIC_MOVZX});  // movzx, movsx
  sweep(t.two, {0xb7}, {F::modrm, all, all, N, C, 0, W::word, ZYDIS_MNEMONIC_MOVZX});
  sweep(t.two, {0xbe}, {F::modrm, all, all, N, C, 0, W::byte, ZYDIS_MNEMONIC_MOVSX});
  sweep(t.two, {0xbf}, {F::modrm, all, all, N, C, 0, W::word, ZYDIS_MNEMONIC_MOVSX});
  full(t.two, {0xb6, 0xb7, 0xbe, 0xbf}, L::reg_rm, 0, all);
  sweep(t.two, {0xa4, 0xac}, {F::modrm_imm8, all, all, N, C, all});  // shld/shrd imm8
  sweep(t.two, {0xba}, {F::modrm_imm8, 0xf0, all, N, C, 0xe0});      // bt (read), bts/btr/btc imm8
  for (int c = 0xc8; c <= 0xcf; ++c) sweep(t.two, {c}, {F::bare});   // bswap
  return t;
}

// An instruction taken apart by the table.
struct Parsed {
  const Op* op = nullptr;
  uint8_t opcode = 0;
  // (Narrow fields: this is built for every instruction decoded, and a small one is cleared with a few
  // vector stores instead of a string store.)
  uint8_t length = 0;
  uint8_t legacy_prefixes = 0;
  uint8_t segment_prefixes = 0;
  bool operand16 = false;
  uint8_t rex = 0;
  bool has_modrm = false;
  uint8_t mod = 0, reg = 0, rm = 0;
  uint8_t reg_id = 0, rm_id = 0;  // with REX.R / REX.B
  Operand mem;                    // the memory operand (kind mem) when mod != 3 or moffs
  bool rip_relative = false, absolute = false;
  uint8_t disp_bits = 0;
  uint8_t imm_bytes = 0, imm_at = 0;
  int64_t imm = 0;  // sign-extended
};

// Built when the program starts (make_table() reads only constants of this file, defined above): a
// function-local static would cost a guard check on every instruction decoded.
const Table kTables[2] = {make_table(false), make_table(true)};

inline const Table& table_for(bool x64) { return kTables[x64]; }

[[gnu::always_inline]] inline bool parse(bool x64, const uint8_t* p, size_t available, Parsed& out) {
  // The prefixes are counted in locals and the checks below read those, not `out`: read back from the
  // struct, the compiler merged the byte fields just stored into one wide load, which stalled on store
  // forwarding (an eighth of the sweep's decoding time).
  size_t i = 0;
  bool operand16 = false;
  uint8_t segment_prefixes = 0;
  while (i < available && i < 14 && (p[i] == 0x66 || p[i] == 0x2e)) {
    operand16 = operand16 || p[i] == 0x66;
    segment_prefixes = static_cast<uint8_t>(segment_prefixes + (p[i] == 0x2e));
    ++i;
  }
  const auto legacy_prefixes = static_cast<uint8_t>(i);
  uint8_t rex = 0;
  if (x64 && i < available && (p[i] & 0xf0) == 0x40) rex = p[i++];  // REX, right before the opcode
  out.operand16 = operand16;
  out.segment_prefixes = segment_prefixes;
  out.legacy_prefixes = legacy_prefixes;
  out.rex = rex;
  if (i >= available) return false;
  const Table& table = table_for(x64);
  uint8_t opcode = p[i++];
  const Op* op = &table.one[opcode];
  if (opcode == 0x0f) {
    if (i >= available) return false;
    opcode = p[i++];
    op = &table.two[opcode];
  }
  out.opcode = opcode;
  out.op = op;
  if (op->form == Form::none) return false;
  // Prefixes: direct branches take none (66 truncates the target), a nop takes 66 and 2E repeated, others
  // at most one 66.
  const Check check = op->check;
  if (op->flow != Flow::normal && (legacy_prefixes | rex)) return false;
  if (check != Check::nop && (segment_prefixes || legacy_prefixes > 1)) return false;
  if (check == Check::nop_1 && rex) return false;
  if (check == Check::imm64 && (rex & 0x08)) return false;
  const uint8_t immz = operand16 && !(rex & 0x08) ? 2 : 4;  // (REX.W overrides 66)
  switch (op->form) {
    case Form::none:
      return false;
    case Form::bare:
      break;
    case Form::imm8:
    case Form::rel8:
      out.imm_bytes = 1;
      break;
    case Form::imm16:
      out.imm_bytes = 2;
      break;
    case Form::immz:
      out.imm_bytes = immz;
      break;
    case Form::rel32:
      out.imm_bytes = 4;
      break;
    case Form::moffs:
      if (i + 4 > available) return false;
      out.mem.kind = OpKind::mem;
      out.mem.disp = static_cast<int32_t>(read_le32(p + i));
      out.disp_bits = 32;
      out.absolute = true;
      i += 4;
      break;
    case Form::modrm:
    case Form::modrm_imm8:
    case Form::modrm_immz: {
      if (i >= available) return false;
      const uint8_t modrm = p[i++];
      out.has_modrm = true;
      out.mod = modrm >> 6;
      out.reg = (modrm >> 3) & 7;
      out.rm = modrm & 7;
      if (!((op->regs >> out.reg) & 1)) return false;
      out.reg_id = static_cast<uint8_t>(out.reg | ((rex & 0x04) << 1));
      out.rm_id = static_cast<uint8_t>(out.rm | ((rex & 0x01) << 3));
      if (out.mod != 3) {
        Operand& mem = out.mem;
        mem.kind = OpKind::mem;
        uint8_t base = out.rm;
        bool has_base = true;
        if (out.rm == 4) {
          if (i >= available) return false;
          const uint8_t sib = p[i++];
          base = sib & 7;
          const uint8_t index = static_cast<uint8_t>(((sib >> 3) & 7) | ((rex & 0x02) << 2));
          if (index != 4) {
            mem.index = index;
            mem.scale = static_cast<uint8_t>(1u << (sib >> 6));
          }
          if (out.mod == 0 && base == 5) {
            has_base = false;  // [index*scale + disp32], or an absolute address without an index
            out.absolute = mem.index == kNoReg;
          }
        } else if (out.mod == 0 && out.rm == 5) {
          has_base = false;
          out.rip_relative = x64;
          out.absolute = !x64;
        }
        if (has_base) mem.base = static_cast<uint8_t>(base | ((rex & 0x01) << 3));
        if (out.rip_relative) mem.base = kRip;
        if (out.mod == 1) {
          if (i >= available) return false;
          mem.disp = static_cast<int8_t>(p[i++]);
          out.disp_bits = 8;
        } else if (out.mod == 2 || !has_base) {
          if (i + 4 > available) return false;
          mem.disp = static_cast<int32_t>(read_le32(p + i));
          out.disp_bits = 32;
          i += 4;
        }
      }
      if (op->form != Form::modrm && ((op->imm_regs >> out.reg) & 1))
        out.imm_bytes = op->form == Form::modrm_imm8 ? 1 : immz;
      break;
    }
  }
  out.imm_at = static_cast<uint8_t>(i);
  i += out.imm_bytes;
  if (i > available || i > 15) return false;
  out.length = static_cast<uint8_t>(i);
  if (out.imm_bytes == 4) {
    out.imm = static_cast<int32_t>(read_le32(p + out.imm_at));
  } else if (out.imm_bytes == 2) {
    out.imm = static_cast<int16_t>(static_cast<uint16_t>(p[out.imm_at] | p[out.imm_at + 1] << 8));
  } else if (out.imm_bytes == 1) {
    out.imm = static_cast<int8_t>(p[out.imm_at]);
  }
  return true;
}

// An operand's width in bytes. The operand size: 32 bits, 16 with 66, 64 with REX.W (which overrides 66).
uint8_t width_of(Width width, const Parsed& in, bool x64) {
  const bool rex_w = (in.rex & 0x08) != 0;
  const bool operand16 = in.operand16 && !rex_w;
  switch (width) {
    case Width::byte: return 1;
    case Width::word: return 2;
    case Width::dword: return operand16 ? 2 : 4;
    case Width::stack: return operand16 ? 2 : x64 ? 8 : 4;
    case Width::address: return x64 ? 8 : 4;
    case Width::full: break;
  }
  return rex_w ? 8 : operand16 ? 2 : 4;
}

// The flow of a parsed instruction: the table's, or FF's indirect call (/2) and jump (/4).
Flow flow_of(const Parsed& in) {
  if (in.op->check == Check::group5 && (in.reg == 2 || in.reg == 4))
    return in.reg == 2 ? Flow::call_indirect : Flow::jmp_indirect;
  return in.op->flow;
}

// The address of an absolute or RIP-relative memory operand, as decode() computes it.
[[gnu::always_inline]] inline std::optional<uint32_t> memory_rva(const Parsed& in, bool x64, uint64_t image_base,
                                                                 uint32_t rva) {
  const int64_t disp = in.mem.disp;
  const uint64_t va = in.rip_relative ? image_base + rva + in.length + static_cast<uint64_t>(disp)
                      : x64          ? static_cast<uint64_t>(disp)
                                      : static_cast<uint64_t>(static_cast<uint32_t>(disp));
  if (va >= image_base && va - image_base <= 0xffffffffull) return static_cast<uint32_t>(va - image_base);
  return std::nullopt;
}

// The fields both table decodings share: length, flow, direct target, memory address, raw sizes.
[[gnu::always_inline]] inline void fill_common(const Parsed& in, bool x64, uint64_t image_base, uint32_t rva, Insn& out) {
  out = kEmptyInsn;
  out.rva = rva;
  out.length = static_cast<uint8_t>(in.length);
  out.flow = flow_of(in);
  out.disp_bits = in.disp_bits;
  if (in.imm_bytes) {
    out.imm_offset[0] = static_cast<uint8_t>(in.imm_at);
    out.imm_size[0] = static_cast<uint8_t>(in.imm_bytes * 8);
  }
  if (in.op->form == Form::rel8 || in.op->form == Form::rel32) branch_target(x64, rva, in.length, in.imm, out.target, out.has_target);
  if (in.rip_relative || in.absolute) {
    out.negative_disp = in.rip_relative && in.mem.disp < 0;
    out.mem_rva = memory_rva(in, x64, image_base, rva);
  }
}

}  // namespace

namespace {

// decode_plain()'s parse: false for what it leaves to Zydis. With `padding`, it also takes the padding
// that decode_plain() leaves to Zydis (mov reg, same reg; lea reg, [reg+0]), and says whether it took one:
// the sweep's facts read it as padding (fill_facts()), decode_plain()'s Insn could not say so (is_padding()
// reads the operands decode_plain() does not fill).
[[gnu::always_inline]] inline bool parse_plain(const Decoder& decoder, bool x64, const uint8_t* p, size_t available,
                                               Parsed& in, bool* padding = nullptr) {
  if (!parse(x64, p, available, in)) return false;
  const Op* op = in.op;
  const Flow flow = flow_of(in);
  if (in.has_modrm && in.mod == 3) {
    if (op->check == Check::lea) return false;  // (undefined)
    // mov reg, reg: padding when both name one register (ah..bh stand for rax..rbx without REX).
    const auto byte_id = [rex = in.rex](uint8_t id) { return !rex && id >= 4 && id < 8 ? id - 4 : id; };
    if ((op->check == Check::mov_rr && in.rm_id == in.reg_id) ||
        (op->check == Check::mov_rr8 && byte_id(in.rm_id) == byte_id(in.reg_id))) {
      if (!padding) return false;
      *padding = true;
    }
  }
  if (in.mem.kind == OpKind::mem) {
    if (op->check == Check::nop && (in.absolute || in.rip_relative)) return false;
    if (op->check == Check::lea && in.mem.index == kNoReg && in.mem.base == in.reg_id && in.mem.disp == 0) {
      if (!padding) return false;
      *padding = true;
    }
  }
  if (flow == Flow::call_indirect || flow == Flow::jmp_indirect) {
    if (in.legacy_prefixes) return false;  // (66 makes the target 16 bits)
  }
  // A 32-bit immediate is plain only where it cannot be an address the sweep looks up.
  if (in.imm_bytes == 4 && op->form != Form::rel32 &&
      (decoder.may_be_image_address(in.imm) || decoder.may_be_image_address(in.imm & 0xffffffffll)))
    return false;
  return true;
}

// Quiet: it falls through, is no padding (nop), and has no memory operand with an address or a
// displacement wide enough to be one (what Decoder::facts_of() reads).
bool quiet(const Parsed& in) {
  if (flow_of(in) != Flow::normal || in.op->mnemonic == ZYDIS_MNEMONIC_NOP) return false;
  return in.mem.kind != OpKind::mem || !(in.absolute || in.rip_relative || in.disp_bits >= 16);
}

// decode_plain()'s Insn, from its parse.
[[gnu::always_inline]] inline void fill_plain(const Parsed& in, bool x64, uint64_t image_base, uint32_t rva, Insn& out) {
  const Op* op = in.op;
  const Flow flow = flow_of(in);
  fill_common(in, x64, image_base, rva, out);
  out.mnemonic = op->mnemonic == ZYDIS_MNEMONIC_MOV || op->mnemonic == ZYDIS_MNEMONIC_LEA ||
                         op->mnemonic == ZYDIS_MNEMONIC_NOP
                     ? op->mnemonic
                     : ZYDIS_MNEMONIC_INVALID;
  if (in.mem.kind == OpKind::mem) {
    out.op[0] = in.mem;
    out.op[0].write = (op->write_regs >> in.reg) & 1;
    out.op[0].size = width_of(op->width, in, x64);  // (read only when written: Decoder::facts_of())
    out.operand_count = 1;
  } else if (flow == Flow::call_indirect || flow == Flow::jmp_indirect) {
    out.op[0].kind = OpKind::reg;
    out.op[0].reg = in.rm_id;
    out.operand_count = 1;
  }
}

// What the sweep notes about a parsed instruction (Decoder::facts_of() of its decode_plain(), or of Zydis's
// decoding for the padding only this parse takes), without building an Insn.
[[gnu::always_inline]] inline void fill_facts(const Decoder& decoder, const Parsed& in, bool padding, bool x64,
                                              uint64_t image_base, uint32_t rva, SweepFacts& out) {
  const Op* op = in.op;
  out = kNoFacts;
  out.length = in.length;
  out.flow = flow_of(in);
  if (op->form == Form::rel8 || op->form == Form::rel32) branch_target(x64, rva, in.length, in.imm, out.target, out.has_target);
  out.padding = padding || op->mnemonic == ZYDIS_MNEMONIC_NOP;
  out.through_operand = out.flow == Flow::call_indirect || out.flow == Flow::jmp_indirect;
  if (in.mem.kind != OpKind::mem) return;
  if (in.rip_relative || in.absolute) {
    out.mem_rva = memory_rva(in, x64, image_base, rva);
    if (out.mem_rva) {
      out.negative_disp = in.rip_relative && in.mem.disp < 0;
      out.mov = op->mnemonic == ZYDIS_MNEMONIC_MOV;
      out.lea = op->mnemonic == ZYDIS_MNEMONIC_LEA;
      out.write = !out.lea && ((op->write_regs >> in.reg) & 1);
      out.size = out.write ? width_of(op->width, in, x64) : 0;
    }
  } else if (in.disp_bits >= 16) {  // [reg + disp]: the base of an array or struct (Decoder::facts_of())
    if (const std::optional<uint32_t> taken = decoder.taken_rva(static_cast<uint64_t>(in.mem.disp))) {
      out.taken[0] = *taken;
      out.taken_count = 1;
    }
  }
}

}  // namespace

namespace {

// Decoder::table_length()'s entry for an opcode (x86_insn.hpp), from the sweep's table.
LengthOp length_op(const Op& op) {
  LengthOp l;
  switch (op.form) {
    case Form::none: return l;
    case Form::bare: l.kind = LengthOp::fixed; break;
    case Form::imm8: case Form::rel8: l.kind = LengthOp::fixed; l.imm = 1; break;
    case Form::imm16: l.kind = LengthOp::fixed; l.imm = 2; break;
    case Form::immz: case Form::rel32: l.kind = LengthOp::fixed; l.imm = 4; break;  // (no 66 prefix here)
    case Form::moffs: l.kind = LengthOp::moffs; break;
    case Form::modrm: l.kind = LengthOp::modrm; break;
    case Form::modrm_imm8: l.kind = LengthOp::modrm; l.imm = 1; break;
    case Form::modrm_immz: l.kind = LengthOp::modrm; l.imm = 4; break;
  }
  l.branch = op.flow != Flow::normal;
  l.rel32 = op.form == Form::rel32;
  l.nop = op.check == Check::nop;
  l.nop_1 = op.check == Check::nop_1;
  l.regs = op.regs;
  l.imm_regs = l.kind == LengthOp::modrm ? op.imm_regs : 0xff;
  switch (op.check) {
    case Check::lea: l.check = LengthOp::lea; break;
    case Check::mov_rr: l.check = LengthOp::mov_rr; break;
    case Check::mov_rr8: l.check = LengthOp::mov_rr8; break;
    case Check::imm64: l.check = LengthOp::imm64; break;
    default: break;
  }
  // Stepped over: what falls through and is no nop (padding keeps the state before it), with no address
  // (moffs); FF's indirect call and jump (/2, /4) are branches.
  l.quiet = !l.branch && op.mnemonic != ZYDIS_MNEMONIC_NOP && !l.nop && !l.nop_1 && l.kind != LengthOp::moffs;
  l.quiet_regs = op.check == Check::group5 ? static_cast<uint8_t>(op.regs & ~((1u << 2) | (1u << 4))) : op.regs;
  return l;
}

LengthTable make_length_table(const Table& table) {
  LengthTable l;
  for (int c = 0; c < 256; ++c) {
    l.one[c] = length_op(table.one[c]);
    l.two[c] = length_op(table.two[c]);
  }
  return l;
}

}  // namespace

const LengthTable kLengthTables[2] = {make_length_table(kTables[0]), make_length_table(kTables[1])};

int Decoder::sweep_step_whole(const uint8_t* p, size_t available, uint32_t rva, SweepFacts& out) const {
  Parsed in;
  bool padding = false;
  if (parse_plain(*this, x64_, p, available, in, &padding)) {
    if (!padding && quiet(in)) return in.length;
    fill_facts(*this, in, padding, x64_, image_base_, rva, out);
    return 0;
  }
  Insn insn;
  if (!decode(p, available, rva, insn, true)) return -1;
  out = facts_of(insn);
  return 0;
}

bool Decoder::decode_plain(const uint8_t* p, size_t available, uint32_t rva, Insn& out) const {
  Parsed in;
  if (!parse_plain(*this, x64_, p, available, in)) return false;
  fill_plain(in, x64_, image_base_, rva, out);
  return true;
}

bool Decoder::decode_table(const uint8_t* p, size_t available, uint32_t rva, Insn& out) const {
  Parsed in;
  if (!parse(x64_, p, available, in) || !in.op->full) return false;
  const Op* op = in.op;
  const Flow flow = flow_of(in);
  if ((flow == Flow::call_indirect || flow == Flow::jmp_indirect) && in.legacy_prefixes) return false;
  if (op->check == Check::lea && in.mem.kind != OpKind::mem) return false;  // (lea reg, reg: undefined)
  fill_common(in, x64_, image_base_, rva, out);
  const uint8_t operand = width_of(Width::full, in, x64_);
  const uint8_t stack = width_of(Width::stack, in, x64_);
  ZydisMnemonic mnemonic = op->mnemonic;
  if (op->by_reg) mnemonic = op->by_reg[in.reg];
  if (op->by_cc) mnemonic = op->by_cc[in.opcode & 15];
  // Mnemonics that depend on the operand size.
  if (op->hidden == Hidden::cbw)
    mnemonic = operand == 8 ? ZYDIS_MNEMONIC_CDQE : operand == 4 ? ZYDIS_MNEMONIC_CWDE : ZYDIS_MNEMONIC_CBW;
  if (op->hidden == Hidden::cwd)
    mnemonic = operand == 8 ? ZYDIS_MNEMONIC_CQO : operand == 4 ? ZYDIS_MNEMONIC_CDQ : ZYDIS_MNEMONIC_CWD;
  if (mnemonic == ZYDIS_MNEMONIC_INVALID) return false;
  out.mnemonic = mnemonic;
  // FF's call, jmp and push take the stack's width; its inc and dec the operand size.
  const bool stack_operand = op->by_reg == kGroup5 && in.opcode == 0xff && (in.reg == 2 || in.reg == 4 || in.reg == 6);
  const uint8_t rm_width = stack_operand ? stack : width_of(op->width, in, x64_);
  const uint8_t reg_width = width_of(op->reg_width, in, x64_);
  // The operands are written in place, into out.op (empty after fill_common()): built in a local and
  // copied, each was read back with wide loads right after its narrow stores, which stalled on store
  // forwarding (a fifth of this function's time).
  // Register ids: byte registers without REX name ah..bh for 4..7, which stand for rax..rbx.
  const auto reg_operand = [&](Operand& o, uint8_t id, uint8_t size, bool read, bool write) {
    o.kind = OpKind::reg;
    o.size = size;
    o.reg = size == 1 && !in.rex && id >= 4 && id < 8 ? static_cast<uint8_t>(id - 4) : id;
    o.read = read;
    o.write = write;
  };
  const auto rm_operand = [&](Operand& o, uint8_t size, bool read, bool write) {
    if (in.mem.kind != OpKind::mem) return reg_operand(o, in.rm_id, size, read, write);
    o = in.mem;
    o.size = size;
    o.read = read;
    o.write = write;
  };
  const auto imm_operand = [&](Operand& o) {
    o.kind = OpKind::imm;
    o.size = static_cast<uint8_t>(in.imm_bytes);
    o.read = true;
    const uint64_t mask = (uint64_t{1} << (8 * in.imm_bytes)) - 1;
    o.imm = op->imm_unsigned ? static_cast<uint64_t>(in.imm) & mask : static_cast<uint64_t>(in.imm);
  };
  const bool read0 = (op->read0 >> in.reg) & 1;
  const bool write0 = (op->write0 >> in.reg) & 1;
  const bool lea = op->check == Check::lea;
  const uint8_t opcode_reg = static_cast<uint8_t>((in.opcode & 7) | ((in.rex & 0x01) << 3));
  Operand* const ops = out.op;
  int count = 0;
  switch (op->layout) {
    case Layout::none:
      break;
    case Layout::rm_reg:
      rm_operand(ops[count++], rm_width, read0, write0);
      reg_operand(ops[count++], in.reg_id, reg_width, true, false);
      break;
    case Layout::reg_rm:  // (lea's operand is an address: neither read nor written)
      reg_operand(ops[count++], in.reg_id, reg_width, read0, write0);
      rm_operand(ops[count++], rm_width, !lea, false);
      break;
    case Layout::rm_imm:
      rm_operand(ops[count++], rm_width, read0, write0);
      if (in.imm_bytes) imm_operand(ops[count++]);
      break;
    case Layout::rm_one: {
      rm_operand(ops[count++], rm_width, read0, write0);
      Operand& one = ops[count++];
      one.kind = OpKind::imm;
      one.size = 1;
      one.read = true;
      one.imm = 1;
      break;
    }
    case Layout::rm_cl:
      rm_operand(ops[count++], rm_width, read0, write0);
      reg_operand(ops[count++], kRcx, 1, true, false);
      break;
    case Layout::acc_imm:
      reg_operand(ops[count++], kRax, reg_width, read0, write0);
      imm_operand(ops[count++]);
      break;
    case Layout::opreg:
      reg_operand(ops[count++], opcode_reg, reg_width, read0, write0);
      break;
    case Layout::opreg_imm:
      reg_operand(ops[count++], opcode_reg, reg_width, read0, write0);
      imm_operand(ops[count++]);
      break;
    case Layout::imm:
      imm_operand(ops[count++]);
      break;
    case Layout::acc_moffs:
      reg_operand(ops[count++], kRax, reg_width, false, true);
      rm_operand(ops[count++], rm_width, !lea, false);
      break;
    case Layout::moffs_acc:
      rm_operand(ops[count++], rm_width, false, true);
      reg_operand(ops[count++], kRax, reg_width, true, false);
      break;
  }
  for (int i = 0; i < count; ++i) {
    if (ops[i].kind == OpKind::reg && ops[i].write) {
      out.gpr_writes |= static_cast<uint16_t>(1u << ops[i].reg);
      if (ops[i].size < 4) out.gpr_partial |= static_cast<uint16_t>(1u << ops[i].reg);
    }
  }
  out.operand_count = static_cast<uint8_t>(count);
  const auto hidden_write = [&](uint8_t reg, uint8_t size) {
    out.gpr_writes |= static_cast<uint16_t>(1u << reg);
    if (size < 4) out.gpr_partial |= static_cast<uint16_t>(1u << reg);
  };
  switch (op->hidden) {
    case Hidden::none:
      break;
    case Hidden::stack:
      // push, pop, call, ret (and FF's call and push, not its inc, dec or jmp).
      if (op->by_reg != kGroup5 || in.reg == 2 || in.reg == 6) hidden_write(kRsp, x64_ ? 8 : 4);
      break;
    case Hidden::mul_div:
      if (in.reg >= 4) {
        hidden_write(kRax, rm_width == 1 ? 2 : rm_width);
        if (rm_width != 1) hidden_write(kRdx, rm_width);
      }
      break;
    case Hidden::cbw:
      hidden_write(kRax, operand);
      break;
    case Hidden::cwd:
      hidden_write(kRdx, operand);
      break;
  }
  return true;
}

}  // namespace tagwho::x86
