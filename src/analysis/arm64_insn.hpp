// One decoded ARM64 instruction (Capstone, CS_ARCH_ARM64 with CS_OPT_DETAIL) reduced to what the data-flow
// walk needs: operands with registers numbered 0-30 (w and x registers share a number), branch targets as
// RVAs, the general-purpose registers the instruction writes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tagwho::arm64 {

constexpr uint8_t kFp = 29;
constexpr uint8_t kLr = 30;
constexpr uint8_t kSp = 31;        // sp / wsp
constexpr uint8_t kZr = 32;        // xzr / wzr
constexpr uint8_t kOtherReg = 0xfe;  // FP/SIMD, system and other registers
constexpr uint8_t kNoReg = 0xff;

enum class Flow : uint8_t {
  normal,     // falls through
  call,       // bl target
  call_reg,   // blr xN
  jmp,        // b target
  jmp_reg,    // br xN
  jcc,        // b.cond / cbz / cbnz / tbz / tbnz target (falls through too)
  ret,
  stop,       // undecodable word, brk, udf...: no fall-through
};

struct Operand {
  enum Kind : uint8_t { k_none, k_reg, k_imm, k_mem } kind = k_none;
  uint8_t reg = kNoReg;   // reg: 0-30, kSp, kZr, kOtherReg
  uint8_t size = 0;       // reg: 4 (w) or 8 (x); 0 for other registers
  uint8_t shift = 0;      // LSL amount
  bool other_shift = false;  // a shift other than LSL, or an extend: not modelled
  int64_t imm = 0;
  uint8_t base = kNoReg;  // mem
  uint8_t index = kNoReg; // mem
  int32_t disp = 0;       // mem
};

struct Insn {
  uint32_t rva = 0;
  uint32_t word = 0;
  unsigned id = 0;           // ARM64_INS_*; 0 when the word does not decode
  Flow flow = Flow::stop;
  bool has_target = false;
  uint32_t target = 0;       // RVA
  bool writeback = false;
  uint8_t cc = 0;            // ARM64_CC_*
  uint8_t nops = 0;
  Operand op[5];
  uint64_t writes = 0;       // bit r (0-30): register r written; bit kSp: sp written

  uint32_t end() const { return rva + 4; }
  bool falls_through() const {
    return flow == Flow::normal || flow == Flow::call || flow == Flow::call_reg || flow == Flow::jcc;
  }
  bool writes_reg(uint8_t r) const { return r <= kSp && (writes >> r & 1); }
};

// A memory access of a load/store with an immediate offset, relative to the base register's value before
// the instruction: the address it accesses and how much a writeback adds to the base.
struct MemAccess {
  uint8_t base = kNoReg;
  int64_t offset = 0;   // address = base + offset
  int64_t delta = 0;    // base after = base before + delta (writeback)
  uint8_t size = 0;     // bytes per register transferred
};

class Decoder {
 public:
  explicit Decoder(uint64_t image_base);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  bool ok() const { return insn_ != nullptr; }
  // Decodes the word at rva. Returns false (and a Flow::stop insn) when it is not a valid instruction.
  // Every decoding is kept, direct-mapped by word in tables of the thread's that every file it analyses
  // shares: the walks decode the same few words again and again, compilers emit the same words in every
  // driver, and Capstone is most of the decoding's cost. A word's decoding depends on the word alone, but
  // for the PC-relative ones (branches with an immediate, ADR/ADRP, literal loads): those are kept as
  // decoded at address 0, and their address operand is moved to the word's address.
  bool decode(uint32_t word, uint32_t rva, Insn& out);
  // The same, appended to `out`: built in place (a region's blocks decode thousands of words).
  bool decode_append(uint32_t word, uint32_t rva, std::vector<Insn>& out);
  // decode() without the kept decodings, for the tests that hold the two to each other.
  bool decode_with_capstone(uint32_t word, uint32_t rva, Insn& out);
  // Whether a word is in a group that holds the PC-relative words, whose decoding depends on their address
  // (decode() moves it): the branch, exception and system group, adr/adrp and literal loads. A superset:
  // branches to a register, system instructions and exceptions decode the same anywhere.
  // The groups as (mask, value): a word is in one when word & mask == value (the sweep tests four words at
  // a time against them).
  struct Group {
    uint32_t mask, value;
  };
  static constexpr Group kAddressDependent[] = {
      {0x1c000000u, 0x14000000u},  // branches, exceptions, system
      {0x1f000000u, 0x10000000u},  // adr, adrp
      {0x3b000000u, 0x18000000u},  // literal loads
  };
  static bool address_dependent(uint32_t word) {
    const auto in = [word](const Group& group) { return (word & group.mask) == group.value; };
    return in(kAddressDependent[0]) || in(kAddressDependent[1]) || in(kAddressDependent[2]);
  }
  // Lower-case mnemonic of the word ("movz"...); empty when it does not decode.
  std::string_view mnemonic(uint32_t word, uint32_t rva);

 private:
  bool decode_to(uint32_t word, uint32_t rva, Insn* into, std::vector<Insn>* append);
  bool capstone_decode(uint32_t word, uint64_t address, Insn& out);
  void set_target(Insn& out) const;

  uint64_t image_base_;
  size_t handle_ = 0;
  void* insn_ = nullptr;  // cs_insn*
};

// Loads and stores with a base register and an immediate offset (ldr/ldur/str/stur/ldp/stp, pre/post index).
bool is_load(unsigned id);
bool is_store(unsigned id);
// The access of a load/store whose memory operand is op[mem_index]; nullopt-like (base == kNoReg) when the
// operand is not [base, #imm] (register offsets, literals).
MemAccess mem_access(const Insn& insn);

// Raw-encoding tests used by the fast linear sweep (no Capstone needed).
namespace enc {
inline bool is_bl(uint32_t w) { return (w & 0xfc000000u) == 0x94000000u; }
inline bool is_b(uint32_t w) { return (w & 0xfc000000u) == 0x14000000u; }
inline int64_t branch26(uint32_t w) { return static_cast<int64_t>(static_cast<int32_t>(w << 6) >> 6) * 4; }
inline bool is_adrp(uint32_t w) { return (w & 0x9f000000u) == 0x90000000u; }
inline int64_t adrp_offset(uint32_t w) {  // page offset in bytes
  const uint32_t immlo = (w >> 29) & 3, immhi = (w >> 5) & 0x7ffff;
  const int32_t imm = static_cast<int32_t>((immhi << 2 | immlo) << 11) >> 11;
  return static_cast<int64_t>(imm) * 4096;
}
inline bool is_ldr_x_uimm(uint32_t w) { return (w & 0xffc00000u) == 0xf9400000u; }
inline uint32_t ldr_x_uimm_offset(uint32_t w) { return ((w >> 10) & 0xfff) * 8; }
inline bool is_br(uint32_t w) { return (w & 0xfffffc1fu) == 0xd61f0000u; }
inline bool is_blr(uint32_t w) { return (w & 0xfffffc1fu) == 0xd63f0000u; }
inline bool is_ret(uint32_t w) { return (w & 0xfffffc1fu) == 0xd65f0000u; }
inline uint8_t rd(uint32_t w) { return static_cast<uint8_t>(w & 31); }
inline uint8_t rn(uint32_t w) { return static_cast<uint8_t>((w >> 5) & 31); }
// MOVZ / MOVK, W or X destination, with hw = 0 or 1 (LSL #0 / #16).
inline bool is_movz(uint32_t w) { return (w & 0x7f800000u) == 0x52800000u; }
inline bool is_movk(uint32_t w) { return (w & 0x7f800000u) == 0x72800000u; }
inline unsigned move_hw(uint32_t w) { return (w >> 21) & 3; }
inline uint16_t move_imm(uint32_t w) { return static_cast<uint16_t>((w >> 5) & 0xffff); }
}  // namespace enc

}  // namespace tagwho::arm64
