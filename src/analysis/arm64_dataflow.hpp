// One run of the ARM64 call-site analysis over one image: a linear sweep of the code words (pass 1, raw
// encodings: branches, import thunks, indirect branches), regions decoded with Capstone around call sites
// (the .pdata function, else a bounded window), and a bounded backward data-flow walk over each region's
// control-flow graph that recovers constant arguments. All state lives in the Analysis object.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "analysis/arm64_insn.hpp"
#include "analysis/arm64_model.hpp"
#include "analysis/insn_runs.hpp"
#include "analysis/region_cache.hpp"
#include "analysis/visited_set.hpp"
#include "analysis/wrappers.hpp"

namespace tagwho::arm64 {

std::string hex(uint64_t value);  // "0x1a2b"

// Limits: hostile or huge code never makes the analysis loop or blow up.
struct Limits {
  uint32_t window_before = 4096;          // bytes analysed before a site when no .pdata function covers it
  uint32_t window_after = 1024;           // ... and after it (loops whose back edge follows the call)
  uint32_t max_function_bytes = 0x10000;  // a larger .pdata function is clipped around the site
  uint32_t max_steps = 20000;             // backward steps per resolved value
  uint32_t max_total_steps = 100000;      // ... nested walks (load bases, register operands) included
  size_t max_defs = 64;                   // reaching definitions kept per resolved value
  size_t max_regions_cached = 64;
  size_t max_cached_insns = 150'000;    // decoded instructions kept in cached regions (memory: ~110 bytes each)
  size_t max_problems = 20;
  int max_nested = 2;                     // nested resolves (load base registers)
  uint64_t decode_budget = 20'000'000;    // instructions decoded for regions over the whole image
  size_t max_indirect_branches = 200000;  // blr/br resolved per image
  // Targeted decoding: a blr/br is decoded and resolved only when an instruction that can form the address
  // of a tag-taking API's IAT slot (adrp/adr near it, or a literal-pool load) precedes it closely enough to
  // lie in its region. False: every blr/br (the full sweep).
  bool targeted = true;
  // Arguments and branch registers set in straight-line code just before the branch are settled from those
  // words (straight_line_walk: the same answer) without decoding a region. False: always the full walk.
  bool straight_line = true;
};

// Arithmetic applied to a value after it was defined (movk, orr/and/eor/add with an immediate, shifts).
struct ValueOp {
  enum Kind : uint8_t { add, and_, or_, xor_, shl, shr } kind = add;
  uint8_t size = 4;  // operand bytes: the result is truncated to them
  uint64_t imm = 0;
  bool operator==(const ValueOp&) const = default;
};
constexpr size_t kMaxValueOps = 6;

// A location holding a value at one program point, and the arithmetic still to apply to it.
struct Loc {
  enum Kind : uint8_t { in_reg, at_sp, at_fp } kind = in_reg;
  uint8_t reg = kNoReg;  // in_reg: the register (0-30)
  int32_t off = 0;       // at_sp: offset from sp; at_fp: offset from x29
  uint8_t nops = 0;      // ops[0..nops) in execution order
  std::array<ValueOp, kMaxValueOps> ops{};
  bool operator==(const Loc&) const = default;
};
uint64_t apply_ops(uint64_t value, const Loc& loc);

// A reaching definition found by the backward walk.
//   param:    the value is what the function starting at `rva` received in `loc` (x0-x7, or [sp+off] at its
//             entry: ARM64 has no return address on the stack, the first stack argument is at [sp]); only at
//             function entries (.pdata starts, bl targets, the entry point), without pending arithmetic
//             other than truncations to 32 bits (mov w2, w1).
//   mem_load: a load (ldr/ldur of 4 or 8 bytes) from the image at RVA `value` through a base register
//             holding an image address (adrp [+ add]), not an IAT slot, with `loc.ops` still to apply;
//             Analysis::memory_constant() decides whether that memory holds a constant.
struct Def {
  enum Kind : uint8_t { constant, address, slot_load, unknown, param, mem_load } kind = unknown;
  uint64_t value = 0;  // constant; the VA for address (adrp/adr [+ add]); the slot RVA for slot_load; the RVA
                       // loaded for mem_load
  uint32_t rva = 0;    // the instruction that started the value (movz, mov, adrp...); param: the entry
  uint8_t size = 0;    // mem_load: bytes loaded
  Loc loc{};           // param: where the function received the value; mem_load: arithmetic still to apply
};

// A constant found in memory: read-only data, or a global variable that no code writes.
struct MemoryConstant {
  uint64_t value = 0;
  std::string detail;  // "tag loaded from .rdata at 0x2010", "tag loaded from global at 0x3008 (never written)"
};

// Regions decode in runs of the 64 words of a 256-byte block, shared between the regions that cover them
// (insn_runs.hpp).
using InsnRun = analysis::InsnRun<Insn>;

// Instructions decoded over [start, end) with their intra-region branch edges.
struct Region {
  uint32_t start = 0;
  uint32_t end = 0;
  analysis::InsnList<Insn> insns;
  std::vector<std::pair<uint32_t, uint32_t>> branch_in;  // (target RVA, source index), sorted
  int index_of(uint32_t rva) const;  // -1 outside the region
  uint64_t memory_bytes() const {
    return insns.memory_bytes() + branch_in.capacity() * sizeof(branch_in[0]) + sizeof(Region);
  }
};

// A found call site of a tag-taking API.
struct Site {
  uint32_t rva = 0;
  const ImportRef* import = nullptr;
  CallForm form = CallForm::reg;
  bool tail = false;
};

class Analysis {
 public:
  explicit Analysis(const CodeModel& model, Limits limits = {});

  // Pass 1: sweep all executable sections (raw encodings).
  void sweep();
  // Thunk calls and jumps (bl/b to "adrp xN; ldr xN, [xN, #slot]; br xN"), and blr/br through a register
  // that holds an IAT slot's value.
  std::vector<Site> find_sites();
  // A search whose tags can be formed only at `words` (the RVAs of the MOVZ/MOVK words holding a half of
  // one, when the file holds no other encoding of them): find_sites() then resolves only the blr/br that
  // can yield one. A site's tag comes from its region (region_bounds) or, through wrappers, from the region
  // of a caller up the chain, where the walk ends at a function entry inside the callee's region. So a
  // blr/br counts when its region holds a word, or an entry that a branch reaches from a region holding a
  // word, or from a region holding such an entry, and so on (focus_points_). Thunk calls are found as
  // before (they cost nothing to find). Call before sweep(), which notes the points at its end.
  void focus_on(std::vector<uint32_t> words);
  // Values reaching the argument at the site (x0-x7 for arguments 1-8, then [sp + 8*(n-9)]).
  std::vector<Def> resolve_argument(const Site& site, const ArgPosition& arg);
  // The one definition resolve_argument() would find, when the words just before the site prove it
  // cheaply (see arm64.cpp); nullopt when that proof does not hold.
  std::optional<Def> straight_line_def(const Site& site, const ArgPosition& arg);
  std::optional<Def> straight_line_walk(uint32_t rva, Loc loc, uint32_t region_start);

  const std::vector<std::string>& problems() const { return problems_; }
  void problem(std::string text);
  void trim_cache();

  // [start, end) of the region around rva: its .pdata function (clipped) or a window.
  std::optional<std::pair<uint32_t, uint32_t>> region_bounds(uint32_t rva) const;
  const Region* region_for(uint32_t rva);
  std::vector<Def> resolve(const Region* region, int index, Loc loc);
  const ImportRef* slot(uint32_t rva) const;
  bool is_known_start(uint32_t rva) const;
  // Whether a known start or a direct branch's target lies at rva: a path other than falling through may
  // reach it. joins_at() asks the lists only where may_join() (the map of join_bits_) says one may lie.
  bool joins_at(uint32_t rva) const { return may_join(rva) && joins_at_exactly(rva); }
  bool joins_at_exactly(uint32_t rva) const;
  bool may_join(uint32_t rva) const;

  // --- wrappers across functions (wrappers.hpp; arm64_wrappers.cpp)
  // A function start whose x0-x7 and stack slots at entry are its parameters: a .pdata start, a bl target,
  // the entry point.
  bool is_function_entry(uint32_t rva) const;
  // bl (direct) and b / b.cond / cbz / cbnz / tbz / tbnz from other functions (direct_tail) to the entry.
  std::vector<wrappers::CallerSite> callers_of(uint32_t entry, size_t limit);
  // The values reaching, at a caller site, the argument the callee receives at `arg`.
  std::vector<wrappers::Value> values_at(const wrappers::CallerSite& site, const wrappers::EntryArg& arg);
  // Defs as wrapper values: constants (including memory constants), parameters, the rest unknown.
  std::vector<wrappers::Value> values_of(const std::vector<Def>& defs);
  // The value at [rva, rva+size) when it is a constant: in a section that is not writable, or in initialised
  // writable data that no code writes and whose address no code or data takes (see arm64_wrappers.cpp).
  std::optional<MemoryConstant> memory_constant(uint32_t rva, uint8_t size);

 private:
  struct Outcome {
    enum Kind : uint8_t { pass, defined } kind = pass;
    Loc loc;
    Def def;
  };
  const Region* build_region(uint32_t start, uint32_t end);
  void step(const Region& region, int index, const Loc& loc, std::vector<Outcome>& out);
  Outcome load_from(const Region& region, int index, const Insn& insn, const MemAccess& access, uint8_t size,
                    const Loc& loc);
  std::optional<uint32_t> thunk_slot(const CodeSection& sec, uint32_t rva) const;
  bool inside_function_body(uint32_t rva) const;
  void note_joins();
  Def entry_def(const Loc& loc, uint32_t entry) const;
  // "Never written" proof, page by page (arm64_wrappers.cpp): follows the image addresses made by each
  // adrp / adr into the page forward through the code, recording stores through them and escapes.
  void scan_page_uses(uint32_t page);
  void follow_address(uint32_t rva, uint8_t reg, uint64_t va, bool exact);
  bool address_taken_near(uint32_t rva);

  const CodeModel& model_;
  Limits limits_;
  Decoder decoder_;
  std::vector<std::string> problems_;
  std::unordered_map<uint32_t, const ImportRef*> slots_;
  struct Branch {
    uint32_t source = 0;
    uint32_t target = 0;
    bool call = false;  // bl (else b)
  };
  // Whether one of the branches (sorted by target) goes to `target`.
  static bool branched_to(const std::vector<Branch>& branches, uint32_t target);
  std::vector<Branch> branches_;         // direct bl/b between code addresses, sorted by target
  std::vector<Branch> cond_branches_;    // b.cond / cbz / cbnz / tbz / tbnz between code addresses, sorted
  std::vector<std::pair<uint32_t, uint32_t>> adrps_;  // (page RVA or adr target RVA, instruction RVA), sorted
  // Never-written proof state (built page by page on demand).
  std::vector<uint32_t> scanned_pages_;                  // sorted
  std::vector<uint32_t> unprovable_pages_;               // pages whose address escaped untracked
  std::vector<std::pair<uint32_t, uint32_t>> stores_;    // (RVA, bytes) stored through tracked addresses
  std::vector<uint32_t> taken_;                          // exact addresses that escaped
  std::optional<std::vector<uint32_t>> data_pointers_;   // 8-byte image pointers in data and code, as RVAs
  uint64_t follow_budget_ = 2'000'000;                   // instructions decoded by the proof per image
  std::vector<uint32_t> indirect_;       // blr/br sites, sorted
  std::vector<uint32_t> slot_reach_;     // sorted: adrp/adr reaching a tag-taking API's IAT slot, literal loads
  bool may_reach_slot(uint32_t branch_rva) const;
  // focus_on(): the words and the entries branched to from regions holding a point (sorted), and whether
  // a blr/br's region holds one (then it can yield a tag formed at a word).
  std::optional<std::vector<uint32_t>> focus_words_;   // focus_on()'s, until the sweep's end
  std::optional<std::vector<uint32_t>> focus_points_;
  // The points, from every direct branch as (source, target), sorted by source.
  void note_focus_points(const std::vector<std::pair<uint32_t, uint32_t>>& branch_sources);
  bool focused(uint32_t branch_rva) const;
  void note_slot_reach(const std::vector<uint32_t>& literal_loads);
  bool kmdf_ = false;                    // imports WdfVersionBind: blr through the WdfFunctions table
  std::vector<uint32_t> known_starts_;   // sorted, unique
  // The 4-byte slots from join_base_ that hold a known start or a branch target: one bit each, set by
  // note_joins(). straight_line_walk asks joins_at() about every word it steps back over; the sorted lists
  // answer only for a slot whose bit is set (three binary searches per step were 6% of a search for a tag in
  // no file). Empty when the code's span is far larger than its bytes (then the lists always answer).
  uint32_t join_base_ = 0;
  std::vector<uint64_t> join_bits_;
  std::vector<uint32_t> after_stop_;     // sorted: words that follow a non-fall-through word
  std::map<uint32_t, const ImportRef*> thunks_;  // thunk RVA -> import
  analysis::RegionCache<Region> regions_;
  analysis::RunCache<Insn> runs_;  // at most max_cached_insns instructions
  std::shared_ptr<const InsnRun> block_at(const CodeSection& sec, uint32_t block);
  int nested_ = 0;
  // resolve()'s visited states: (instruction index in the region, location).
  struct ResolveKey {
    int index;
    Loc loc;
    bool operator==(const ResolveKey&) const = default;
  };
  struct ResolveKeyHash {
    size_t operator()(const ResolveKey& k) const;
  };
  using ResolveVisits = analysis::VisitedSets<ResolveKey, ResolveKeyHash>;
  ResolveVisits resolve_visits_;
  // straight_line_walk() is stepping: resolve() walks on along the same line from the step's instruction
  // (within the region starting at proof_region_start_), or declines and sets needed_region_.
  bool proving_ = false;
  bool needed_region_ = false;
  uint32_t proof_region_start_ = 0;
  uint32_t total_steps_ = 0;  // steps of the current top-level resolve, nested walks included
  uint64_t decoded_ = 0;
  bool budget_reported_ = false;
};

}  // namespace tagwho::arm64
