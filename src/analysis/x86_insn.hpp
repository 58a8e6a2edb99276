// A compact decoded x86/x64 instruction (Zydis underneath) holding just what the tag analysis needs.
#pragma once
#include <Zydis/Zydis.h>

#include <cstdint>
#include <optional>

namespace tagwho::x86 {

// General-purpose registers by Zydis id (0 = rax/eax ... 15 = r15), or these markers.
constexpr uint8_t kNoReg = 0xff;
constexpr uint8_t kRip = 0xfe;
constexpr uint8_t kRsp = 4;
constexpr uint8_t kRbp = 5;
constexpr uint8_t kRax = 0;
constexpr uint8_t kRcx = 1;
constexpr uint8_t kRdx = 2;
constexpr uint8_t kRbx = 3;
constexpr uint8_t kRsi = 6;
constexpr uint8_t kRdi = 7;
constexpr uint8_t kR8 = 8;
constexpr uint8_t kR9 = 9;

enum class Flow : uint8_t {
  normal,
  call,           // call rel
  call_indirect,  // call reg / call [mem]
  jmp,            // jmp rel
  jmp_indirect,   // jmp reg / jmp [mem]
  jcc,            // conditional branch rel (including loop/jcxz)
  ret,
  stop,           // int3, ud2, hlt, int 0x29...: no fall-through
};

enum class OpKind : uint8_t { none, reg, mem, imm, other };

struct Operand {
  OpKind kind = OpKind::none;
  uint8_t size = 0;        // bytes
  bool read = false;
  bool write = false;
  uint8_t reg = kNoReg;    // reg: GPR id (kNoReg for non-GPR registers)
  uint8_t base = kNoReg;   // mem: GPR id, kRip, or kNoReg
  uint8_t index = kNoReg;  // mem
  uint8_t scale = 0;       // mem: index scale (0 without index)
  bool segment_override = false;  // mem: fs/gs (never an image address)
  int64_t disp = 0;        // mem
  uint64_t imm = 0;        // imm (sign-extended to 64 bits when signed)
};

// Whether execution can go on after an instruction of this flow to the next one.
inline bool falls_through(Flow flow) {
  return flow != Flow::jmp && flow != Flow::jmp_indirect && flow != Flow::ret && flow != Flow::stop;
}

// The target of a direct branch at rva, `length` bytes long, with this displacement, as
// ZydisCalcAbsoluteAddress gives it: 64-bit arithmetic on x64 (none past 4 GB: no target), 32-bit on x86.
inline void branch_target(bool x64, uint32_t rva, uint32_t length, int64_t displacement, uint32_t& target,
                          bool& has_target) {
  const uint64_t sum = static_cast<uint64_t>(rva) + length + static_cast<uint64_t>(displacement);
  target = static_cast<uint32_t>(sum);
  has_target = x64 ? sum <= 0xffffffffull : true;
}

struct Insn {
  uint32_t rva = 0;
  uint8_t length = 0;
  Flow flow = Flow::normal;
  ZydisMnemonic mnemonic = ZYDIS_MNEMONIC_INVALID;
  uint8_t operand_count = 0;  // visible operands kept in op (at most 2)
  Operand op[2];
  uint32_t target = 0;        // direct branch target RVA
  bool has_target = false;
  uint16_t gpr_writes = 0;    // GPRs written (explicitly or implicitly), by id
  uint16_t gpr_partial = 0;   // of those, written with fewer than 32 bits (merging writes)
  std::optional<uint32_t> mem_rva;  // RVA of an absolute/RIP-relative memory operand (or lea) inside the image
  bool negative_disp = false;       // that memory operand used a negative RIP displacement
  uint8_t imm_offset[2] = {0, 0};   // raw immediates: byte offset inside the instruction
  uint8_t imm_size[2] = {0, 0};     // ... and size in bits (0: none)
  uint8_t disp_bits = 0;            // size of the memory operand's displacement in bits (0: none)

  uint32_t end() const { return rva + length; }
  bool falls_through() const { return x86::falls_through(flow); }
};

// Copied over an instruction to clear it: a temporary Insn{} is built on the stack with narrow stores and
// copied with wide loads, which stalls on store forwarding (a third of the table decoder's time).
inline const Insn kEmptyInsn{};

// What the whole-image sweep (Analysis::sweep()) notes about an instruction it does not just step over: a
// branch and its target, padding, an absolute or RIP-relative address and the access there (an import slot
// called, jumped through or loaded; a global written; an address taken by lea), an indirect call through an
// operand (KMDF's function table), and the image addresses it takes as immediates or as the base of
// [reg + disp]. The table gives these for the common encodings without building an Insn.
struct SweepFacts {
  uint8_t length = 0;
  Flow flow = Flow::normal;
  bool has_target = false;
  uint32_t target = 0;
  bool padding = false;             // keeps the flow state of the instruction before
  std::optional<uint32_t> mem_rva;  // as Insn::mem_rva; the next five fields only with it
  bool negative_disp = false;
  bool mov = false, lea = false;    // the mnemonic: a slot load, an address taken
  bool write = false;               // not lea: the access there writes, `size` bytes
  uint8_t size = 0;
  bool through_operand = false;     // an indirect call or jump through a register or memory operand
  uint8_t taken_count = 0;
  uint32_t taken[2] = {0, 0};       // image RVAs taken: immediates, displacements of [reg + disp]
  bool code_pointer[2] = {false, false};  // taken by an immediate of an x86 mov or push: maybe a code pointer

  bool falls_through() const { return x86::falls_through(flow); }
};
inline const SweepFacts kNoFacts{};  // (copied over facts to clear them, as kEmptyInsn)

// An opcode's entry for the lengths read from a table (Decoder::table_length()), built from the sweep's table
// (x86_table.cpp): by opcode, one-byte and 0F xx.
struct LengthOp {
  enum Kind : uint8_t { none, fixed, modrm, moffs };
  enum Check : uint8_t { no_check, lea, mov_rr, mov_rr8, imm64 };  // as the sweep's table checks them
  Kind kind = none;     // how its length is read (none: not in the sweep's table)
  bool quiet = false;   // the sweep can step over it (for the ModRM.reg values in quiet_regs)
  bool branch = false;  // a direct branch, ret or int3: no prefix, REX included
  bool rel32 = false;   // its 32-bit immediate is a displacement, never an address
  bool nop = false;     // 0F 1F: no absolute or RIP-relative operand
  bool nop_1 = false;   // 90: no REX (41 90 is xchg)
  uint8_t imm = 0;      // immediate bytes (with ModRM: for the ModRM.reg values in imm_regs)
  uint8_t regs = 0;     // ModRM.reg values the opcode takes
  uint8_t quiet_regs = 0;
  uint8_t imm_regs = 0;
  Check check = no_check;
};
struct LengthTable {
  LengthOp one[256];
  LengthOp two[256];
};
extern const LengthTable kLengthTables[2];  // x86, x64

class Decoder {
 public:
  // address_span: the addresses above image_base that the analysis can ask about (see may_be_image_address).
  Decoder(bool x64, uint64_t image_base, uint64_t address_span = uint64_t{1} << 32);
  bool x64() const { return x64_; }
  // Decodes one instruction at rva from bytes [data, data+available). False when undecodable. The common
  // encodings are decoded from a table (x86_table.cpp), the others by Zydis.
  bool decode(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const;
  // The same for the whole-image sweep, which looks only at branches, memory operands at an address it can
  // look up, immediates that can be one, and padding (reg-to-reg moves, lea). Zydis decodes other
  // instructions without their operands (their length, mnemonic and flow only), which halves its cost; the
  // table (x86_table.cpp) decodes the common encodings into just what the sweep reads: length, flow, direct
  // target, the memory operand and its address, raw immediate and displacement sizes, and no mnemonic but
  // mov, lea and nop.
  bool decode_for_sweep(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const;
  // The halves of decode() and decode_for_sweep(), for the tests that hold them to each other: the table
  // (false for an instruction it does not take), and Zydis.
  bool decode_table(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const;
  bool decode_with_zydis(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const;
  bool decode_plain(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const;
  // The sweep's decoding, in one step: the length of an instruction the sweep only steps over (> 0), without
  // looking further; else 0 with `out` holding what the sweep notes about it (the table's, or facts_of()
  // Zydis's decode_for_sweep()); -1 when undecodable. Stepped over (quiet): one the table takes
  // (decode_plain()) that falls through, is no padding, and has no memory operand with an absolute or RIP-
  // relative address or a displacement of 16 bits or more (the quick step below also steps over a
  // displacement that cannot be an address the sweep looks up). Most are.
  // Inline: the sweeps call it for every instruction of the code, and most take the quick step.
  [[gnu::always_inline]] int sweep_step(const uint8_t* data, size_t available, uint32_t rva, SweepFacts& out) const {
    if (const int length = table_length<true>(data, available)) return length;
    return sweep_step_whole(data, available, rva, out);
  }
  // sweep_step() without its quick step: for a caller whose own table step already declined (the quick
  // step takes a subset of what plain_length() takes).
  int sweep_step_whole(const uint8_t* data, size_t available, uint32_t rva, SweepFacts& out) const;
  // What the sweep notes about a decoded instruction.
  SweepFacts facts_of(const Insn& insn) const;
  bool decode_for_sweep_with_zydis(const uint8_t* data, size_t available, uint32_t rva, Insn& out) const;
  // A direct branch without prefixes (jcc rel8/rel32, jmp rel8/rel32, call rel32), the most common of what
  // the sweep does not step over: its length, with its flow and target as decode_plain() gives them, without
  // building an Insn; 0 for anything else.
  struct DirectBranch {
    Flow flow = Flow::normal;
    uint32_t target = 0;
    bool has_target = false;
  };
  int direct_branch(const uint8_t* data, size_t available, uint32_t rva, DirectBranch& out) const;
  // The length of an instruction the sweep's table takes (decode_plain()) with at most a REX prefix, from
  // a table, without taking its operands apart: what the literal classification's walk needs (x86_64.cpp).
  // 0 for anything else (then sweep_step_whole() gives the length).
  int plain_length(const uint8_t* data, size_t available) const { return table_length<false>(data, available); }
  // The RVA of an image address the code takes (an immediate, or the displacement of [reg + disp]), read as
  // the sweep reads them: 32 bits on x86, 64 on x64.
  std::optional<uint32_t> taken_rva(uint64_t va) const {
    if (!x64_) va &= 0xffffffffull;
    if (va < image_base_ || va - image_base_ > 0xffffffffull) return std::nullopt;
    return static_cast<uint32_t>(va - image_base_);
  }
  // Whether an immediate or displacement, as the sweep reads them (32 bits on x86, sign-extended to 64 on
  // x64), can be an address the analysis asks about: in [image_base, image_base + address_span).
  bool may_be_image_address(int64_t value) const {
    const uint64_t va = x64_ ? static_cast<uint64_t>(value) : static_cast<uint64_t>(value) & 0xffffffffull;
    return va >= image_base_ && va - image_base_ < address_span_;
  }

 private:
  // Lengths from a table built from the sweep's: an instruction with at most a REX prefix, of a one-byte
  // or 0F opcode the sweep's table takes, with fewer and more predictable branches than the whole step's
  // parse (which also takes the operands apart). 0 for anything else, and anything it is not sure of.
  //   quiet (sweep_step()'s quick step): only what the sweep steps over, with no absolute or RIP-relative
  //     address and no immediate or displacement that can be an address it looks up. Most instructions
  //     are; the decoding of their lengths is most of the sweep's time.
  //   else (plain_length()): anything decode_plain() takes.
  // The unit tests hold both to decode_plain() and Zydis exhaustively.
  template <bool quiet>
  int table_length(const uint8_t* p, size_t available) const;
  bool decode(const uint8_t* data, size_t available, uint32_t rva, Insn& out, bool sweep_only) const;
  ZydisDecoder decoder_;
  bool x64_;
  uint64_t image_base_;
  uint64_t address_span_;
};

// The little-endian 32-bit value at p: the table decodings' displacements and immediates.
inline uint32_t read_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

template <bool quiet>
[[gnu::always_inline]] inline int Decoder::table_length(const uint8_t* p, size_t available) const {
  if (available < 16) return 0;  // (the longest form taken here has 13 bytes)
  size_t i = 0;
  uint8_t rex = 0;
  if (x64_ && (p[0] & 0xf0) == 0x40) rex = p[i++];  // REX, right before the opcode
  const LengthTable& table = kLengthTables[x64_];
  const uint8_t opcode = p[i++];
  const LengthOp& op = opcode == 0x0f ? table.two[p[i++]] : table.one[opcode];
  if (quiet ? !op.quiet : op.kind == LengthOp::none || (rex && (op.branch || op.nop_1))) return 0;
  if (op.check == LengthOp::imm64 && (rex & 0x08)) return 0;  // movabs
  uint8_t imm = op.imm;
  if (op.kind == LengthOp::moffs) {
    i += 4;  // (an absolute address: never quiet)
  } else if (op.kind == LengthOp::modrm) {
    const uint8_t modrm = p[i++];
    const uint8_t mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
    if (!(((quiet ? op.quiet_regs : op.regs) >> reg) & 1)) return 0;
    if (!((op.imm_regs >> reg) & 1)) imm = 0;
    const auto reg_id = static_cast<uint8_t>(reg | ((rex & 0x04) << 1));
    if (mod == 3) {
      const auto rm_id = static_cast<uint8_t>(rm | ((rex & 0x01) << 3));
      const auto byte_id = [rex](uint8_t id) { return !rex && id >= 4 && id < 8 ? id - 4 : id; };
      if (op.check == LengthOp::lea || (op.check == LengthOp::mov_rr && rm_id == reg_id) ||
          (op.check == LengthOp::mov_rr8 && byte_id(rm_id) == byte_id(reg_id)))
        return 0;  // (undefined; padding)
    } else {
      uint8_t base = rm;
      bool has_base = true, indexed = false, address = false;
      if (rm == 4) {
        const uint8_t sib = p[i++];
        base = sib & 7;
        indexed = (((sib >> 3) & 7) | ((rex & 0x02) << 2)) != 4;
        if (mod == 0 && base == 5) {  // [index*scale + disp32], or an absolute address without an index
          has_base = false;
          address = !indexed;
        }
      } else if (mod == 0 && rm == 5) {
        has_base = false;
        address = true;  // absolute (x86) or RIP-relative (x64)
      }
      if (address && (quiet || op.nop)) return 0;
      int32_t disp = 0;
      if (mod == 2 || !has_base) {
        disp = static_cast<int32_t>(read_le32(p + i));
        i += 4;
        // A displacement the sweep looks up when it can be an address (the base of an array or struct).
        if (quiet && may_be_image_address(disp)) return 0;
      } else if (mod == 1) {
        disp = static_cast<int8_t>(p[i++]);
      }
      if (op.check == LengthOp::lea && has_base && !indexed && disp == 0 &&
          static_cast<uint8_t>(base | ((rex & 0x01) << 3)) == reg_id)
        return 0;  // lea reg, [reg+0]: padding
    }
  }
  if (imm == 4 && !op.rel32) {  // an immediate the sweep looks up when it can be an address
    const auto value = static_cast<int64_t>(static_cast<int32_t>(read_le32(p + i)));
    if (may_be_image_address(value) || may_be_image_address(value & 0xffffffffll)) return 0;
  }
  return static_cast<int>(i + imm);
}

inline int Decoder::direct_branch(const uint8_t* p, size_t available, uint32_t rva, DirectBranch& out) const {
  if (available < 6) return 0;
  int length = 0;
  int64_t offset = 0;
  const uint8_t opcode = p[0];
  if ((opcode & 0xf0) == 0x70 || opcode == 0xeb) {
    length = 2;
    offset = static_cast<int8_t>(p[1]);
    out.flow = opcode == 0xeb ? Flow::jmp : Flow::jcc;
  } else if (opcode == 0xe8 || opcode == 0xe9) {
    length = 5;
    offset = static_cast<int32_t>(read_le32(p + 1));
    out.flow = opcode == 0xe8 ? Flow::call : Flow::jmp;
  } else if (opcode == 0x0f && (p[1] & 0xf0) == 0x80) {
    length = 6;
    offset = static_cast<int32_t>(read_le32(p + 2));
    out.flow = Flow::jcc;
  } else {
    return 0;
  }
  branch_target(x64_, rva, static_cast<uint32_t>(length), offset, out.target, out.has_target);
  return length;
}

// Alignment padding (nop, mov edi, edi, lea esi, [esi+0]): it keeps the flow state of the instruction before.
bool is_padding(const Insn& insn);

inline bool is_volatile(bool x64, uint8_t reg) {
  if (x64) return reg == kRax || reg == kRcx || reg == kRdx || (reg >= 8 && reg <= 11);
  return reg == kRax || reg == kRcx || reg == kRdx;
}

}  // namespace tagwho::x86
