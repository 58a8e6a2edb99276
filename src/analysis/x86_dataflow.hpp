// One run of the x86/x64 call-site analysis over one image: a linear sweep of the code (pass 1), local
// control-flow regions around call sites, and a bounded backward data-flow walk that recovers the constant
// arguments of a call. All state lives in the Analysis object: analysers stay stateless and thread-safe.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "analysis/insn_runs.hpp"
#include "analysis/region_cache.hpp"
#include "analysis/visited_set.hpp"
#include "analysis/wrappers.hpp"
#include "analysis/x86_insn.hpp"
#include "analysis/x86_model.hpp"

namespace tagwho::x86 {

std::string hex(uint32_t value);  // "0x1a2b"

// Limits: hostile or huge code never makes the analysis loop or blow up.
struct Limits {
  uint32_t window_before = 4096;       // bytes analysed before a call site when its function is unknown
  uint32_t window_after = 4096;        // ... and after it (loops whose back edge follows the call)
  uint32_t max_function_bytes = 0x10000;  // a .pdata function larger than this is clipped around the site
  uint32_t max_region_insns = 20000;
  uint32_t max_steps = 20000;          // backward steps per resolved value
  uint32_t max_hops = 3;               // region changes (jumps from other functions) per resolved value
  size_t max_defs = 64;                // reaching definitions kept per resolved value
  size_t max_regions_cached = 64;
  size_t max_cached_insns = 150'000;    // decoded instructions kept in cached regions (memory: ~110 bytes each)
  size_t max_problems = 20;
  uint32_t max_foreign_regions = 16;    // regions of other functions opened per resolved value
  uint64_t decode_budget = 40'000'000;  // instructions decoded for regions over the whole image
};

// Arithmetic applied to a value after it was defined (x = c; x <<= 24; x += 'Ta\0\0'): the walk collects it
// backwards so that computed constants (ternaries compiled to sbb/setcc arithmetic) resolve too.
struct ValueOp {
  enum Kind : uint8_t { add, and_, or_, xor_, shl, shr, sar, neg, not_ } kind = add;
  uint8_t size = 4;  // operand bytes: the result is truncated to them
  uint64_t imm = 0;
  bool operator==(const ValueOp&) const = default;
};
constexpr size_t kMaxValueOps = 4;

// A location holding a value at one program point, and the arithmetic still to apply to it.
struct Loc {
  enum Kind : uint8_t { in_reg, at_sp, at_fp } kind = in_reg;
  uint8_t reg = kNoReg;  // in_reg: the register; at_fp: the frame base register
  int32_t off = 0;       // stack offset from rsp (at_sp) or from the frame register (at_fp)
  uint8_t nops = 0;      // ops[0..nops) in execution order
  std::array<ValueOp, kMaxValueOps> ops{};
  bool operator==(const Loc&) const = default;
};
uint64_t apply_ops(uint64_t value, const Loc& loc);

// A reaching definition found by the backward walk.
//   param:    the value is what the function starting at `rva` received in `loc` (a register, or [rsp+off] at
//             its entry, return address at [rsp]); only at known function starts, without pending arithmetic.
//   mem_load: a load from the image at RVA `value` (`size` bytes, not an IAT slot), with `loc.ops` still to
//             apply; Analysis::memory_constant() decides whether that memory holds a constant.
struct Def {
  enum Kind : uint8_t { constant, slot_load, address, unknown, param, mem_load } kind = unknown;
  uint64_t value = 0;  // constant value, the slot RVA for slot_load, the VA for address (lea [rip+d])
  uint32_t rva = 0;    // the defining instruction; param: the function entry
  uint8_t size = 0;    // mem_load: bytes loaded
  Loc loc{};           // param: where the function received the value; mem_load: arithmetic still to apply
};

// A constant found in memory: read-only data, or a global variable that no code writes.
struct MemoryConstant {
  uint64_t value = 0;
  std::string detail;  // "tag loaded from .rdata at 0x2010", "tag loaded from global at 0x3008 (never written)"
};

// Regions decode in runs that end at the first instruction starting at or past the next 256-byte boundary:
// decoding streams that start apart (a function start, a window on a grid) meet within a few instructions,
// and from there on share the same runs (insn_runs.hpp).
using InsnRun = analysis::InsnRun<Insn>;
using InsnList = analysis::InsnList<Insn>;

// Instructions decoded linearly over [start, end) with their intra-region branch edges.
struct Region {
  uint32_t start = 0;
  uint32_t end = 0;
  InsnList insns;
  std::vector<std::pair<uint32_t, uint32_t>> branch_in;  // (target RVA, source index), sorted
  int index_of(uint32_t rva) const { return insns.index_of(rva); }
  uint64_t memory_bytes() const;
};

struct Edge {
  uint32_t source = 0;
  uint32_t target = 0;
  enum Kind : uint8_t { call, jmp, jcc } kind = call;
  bool source_has_fallthrough_pred = false;  // the instruction before the source falls into it
};

// A found call site of a tag-taking API.
struct Site {
  uint32_t rva = 0;
  const ImportRef* import = nullptr;
  CallForm form = CallForm::iat;
  bool negative_displacement = false;
  bool tail = false;  // reached by a jump: the return address is already on the stack
};

// The call sites found so far, one per address (the first found there). Most are found before any is looked
// up, from the sweep: they go in a vector, sorted once by settle() (a large driver has hundreds of thousands,
// a node each in a map); the few found after that go to a map.
class SiteSet {
 public:
  void add(const Site& site);
  void settle();
  bool has(uint32_t rva) const;
  std::vector<Site> take();  // every site, by address

 private:
  std::vector<Site> sorted_;  // sorted by rva once settled_
  bool settled_ = false;
  std::map<uint32_t, Site> later_;
};

class Analysis {
 public:
  explicit Analysis(const CodeModel& model, Limits limits = {});
  Analysis(const Analysis&) = delete;
  Analysis& operator=(const Analysis&) = delete;

  // Pass 1: sweep all executable sections.
  void sweep();
  // Sites from pass 1 (iat, thunk, tail forms) plus the register form, and KMDF table calls.
  std::vector<Site> find_sites();
  // KMDF (the image imports WdfVersionBind): calls through the WdfFunctions table at a constant index of a
  // tag-taking Wdf function (kmdf_table_apis()). The table pointer is a global in writable data, loaded
  // then indexed: call [reg+index*ptr], or mov reg2, [reg+index*ptr] ... call reg2 (index may also be added
  // to reg first). The site's import is a synthetic ImportRef naming the Wdf function.
  void add_kmdf_sites(SiteSet& sites);
  // Constant values reaching argument position `arg` at the site.
  std::vector<Def> resolve_argument(const Site& site, const ArgPosition& arg);
  // The one definition resolve_argument() would find, when the code just before the site proves it cheaply:
  // straight-line code (no jump, call or function start in between) that sets the argument, decoded from a
  // boundary of the sweep without building the site's region. nullopt when that proof does not hold; the
  // caller then resolves the argument in full. See x86_straight_line.cpp.
  std::optional<Def> straight_line_def(const Site& site, const ArgPosition& arg);
  // For a search: every constant that may reach the argument, over all paths resolve() could take through
  // the code just before the site (a superset of its constants), or nullopt when something else may reach
  // it (a parameter, a load from memory) or the paths leave what can be proved without the region.
  std::optional<std::vector<uint64_t>> possible_constants(const Site& site, const ArgPosition& arg);

  // --- wrappers across functions (see wrappers.hpp)
  // A function start whose registers and stack slots at entry are its parameters: a call target, the entry
  // point or a code address taken (x86 and x64), or the start of a .pdata function (x64).
  bool is_function_entry(uint32_t rva) const;
  // Direct calls and tail jumps (jmp/jcc from outside the function) to a function entry.
  std::vector<wrappers::CallerSite> callers_of(uint32_t entry, size_t limit);
  // The values reaching, at a caller site, the argument the callee receives at `arg`.
  std::vector<wrappers::Value> values_at(const wrappers::CallerSite& site, const wrappers::EntryArg& arg);
  // Defs as wrapper values: constants (including memory constants), parameters, the rest unknown.
  std::vector<wrappers::Value> values_of(const std::vector<Def>& defs);
  // The value at [rva, rva+size) when it is a constant: in a section that is not writable, or in initialised
  // writable data that no code writes and whose address no code or data takes (see memory_constant()).
  std::optional<MemoryConstant> memory_constant(uint32_t rva, uint8_t size);

  const std::vector<std::string>& problems() const { return problems_; }
  std::vector<std::string>& mutable_problems() { return problems_; }
  void problem(std::string text);
  // Drops cached regions (call between sites only: resolve() holds region pointers).
  void trim_cache();

  // --- exposed for the resolver and tests
  // Where the region around rva lies: [lo, hi), decoded from `start` when that known function start's
  // decoding reaches rva, else from `sweep_start` (a boundary of the sweep near lo, or rva itself).
  struct RegionPlan {
    uint32_t lo = 0;
    uint32_t hi = 0;
    std::optional<uint32_t> start;
    uint32_t sweep_start = 0;
  };
  std::optional<RegionPlan> plan_region(uint32_t rva) const;
  const Region* region_for(uint32_t rva);
  std::vector<Def> resolve(const Region* region, int index, Loc loc);
  const ImportRef* slot(uint32_t rva) const;
  bool is_known_start(uint32_t rva) const;
  bool is_entry_like(uint32_t rva) const;

 private:
  // The sweep's bitmaps: a bit per byte of a section, by offset.
  static void set_bit(std::vector<uint64_t>& bits, size_t off) { bits[off / 64] |= uint64_t{1} << (off % 64); }
  static bool bit_at(const std::vector<uint64_t>& bits, size_t off) { return (bits[off / 64] >> (off % 64)) & 1; }
  struct SweepSection {
    const CodeSection* section = nullptr;
    std::vector<uint64_t> boundaries;  // bit per byte: the sweep decoded (or stepped over) an instruction there
    std::vector<uint64_t> joins;       // bit per byte: a branch lands there or a function starts there
  };
  struct SlotRef {
    uint32_t rva = 0;
    const ImportRef* import = nullptr;
    Flow flow = Flow::normal;
    bool negative = false;
    bool has_fallthrough_pred = false;
  };
  struct Outcome {
    enum Kind : uint8_t { pass, defined } kind = pass;
    Loc loc;
    Def def;
  };

  const Region* build_region(uint32_t start, uint32_t end);
  std::optional<Loc> argument_loc(const Site& site, const ArgPosition& arg) const;
  bool on_sweep_stream(uint32_t rva) const;  // the sweep decoded (or stepped over) an instruction at rva
  // The highest address below rva, and at or above lowest, where the sweep decoded an instruction.
  std::optional<uint32_t> sweep_boundary_before(uint32_t rva, uint32_t lowest) const;
  // The instruction at rva in sec's bytes (as the sweep decodes it when sweep_only); false outside them.
  bool decode_at(const CodeSection& sec, uint32_t rva, Insn& out, bool sweep_only = false) const;
  bool has_edge_to(uint32_t rva) const;
  // Whether other paths can join the code at rva: a branch the sweep saw lands there, or a known function
  // starts there (is_known_start(), which covers is_function_entry(), or has_edge_to()). One bit test in
  // the sweep's sections (the joins bits, built on first use and again after find_sites() adds thunks).
  bool joins_at(uint32_t rva);
  // Where a proof about a site may look: the region's decoding starts at region_start and is the sweep's
  // from `from` on; the proof looks no lower than `lowest` (and branches from at or past hi are foreign).
  struct ProofContext {
    const CodeSection* sec = nullptr;
    uint32_t region_start = 0;
    uint32_t from = 0;
    uint32_t lowest = 0;
    uint32_t hi = 0;
    const std::vector<uint32_t>* pre_join_targets = nullptr;  // branches the region decodes before `from`
    bool branched_to_before_join(uint32_t rva) const {
      return pre_join_targets && std::binary_search(pre_join_targets->begin(), pre_join_targets->end(), rva);
    }
  };
  std::optional<ProofContext> proof_context(uint32_t site);
  // Whether sp_alias() might find reg to be a copy of rsp at the instruction at rva.
  bool may_copy_sp_before(uint32_t rva, uint8_t reg, const ProofContext& ctx) const;
  // The region's instruction before `at`: it falls into `at`, or there is none that does (the code before
  // does not fall through), or it is not known (outside what the proof may look at).
  enum class Before : uint8_t { falls_in, none, unknown };
  Before instruction_before(uint32_t at, const ProofContext& ctx, Insn& prev) const;
  // step() on insn alone; false when the step would look at more of the region.
  bool proof_step(const Insn& insn, const Loc& loc, const ProofContext& ctx, std::vector<Outcome>& out);

  // Where linear decoding from start (as build_region() does it) first meets a boundary of the sweep, if
  // within a few instructions, and where the branches decoded before that point go.
  struct Join {
    std::optional<uint32_t> at;
    std::vector<uint32_t> branch_targets;  // sorted
  };
  const Join& joins_sweep_stream(uint32_t start);
  std::optional<uint32_t> checkpoint_at(uint32_t rva) const;  // a sweep boundary <= rva, near rva
  const SweepSection* sweep_section_at(uint32_t rva) const;
  void step(const Region& region, int index, const Loc& loc, std::vector<Outcome>& out);
  Outcome value_of_operand(const Insn& insn, const Operand& op, uint8_t dest_size);
  std::optional<std::vector<uint64_t>> table_values(const Region& region, int index, const Operand& op);
  std::optional<uint32_t> index_bound(const Region& region, int index, uint8_t reg) const;
  bool cleared_before(const Region& region, int index, uint8_t reg) const;
  std::optional<int64_t> sp_alias(const Region& region, int index, uint8_t reg) const;
  std::optional<uint32_t> call_pops(const Region& region, int index);
  std::optional<uint32_t> callee_pops(uint32_t target, int depth);
  std::optional<uint32_t> import_pops(const ImportRef* import) const;
  Def entry_def(const Loc& loc, uint32_t entry) const;
  // The sweep: what it notes about an instruction at rva (edges_, slot_refs_, stores_, taken_, table_calls_,
  // and x86 code pointers).
  void note(uint32_t rva, const SweepFacts& facts, bool prev_falls, std::vector<uint32_t>& code_pointers);
  bool in_code(uint64_t rva) const;  // rva lies in an executable section
  void add_edge(uint32_t source, uint32_t target, Flow flow, bool source_has_fallthrough_pred);  // sweep: edges_
  bool address_taken_near(uint32_t rva);

  const CodeModel& model_;
  Limits limits_;
  Decoder decoder_;
  std::vector<std::string> problems_;
  std::unordered_map<uint32_t, const ImportRef*> slots_;  // every import slot by RVA
  uint32_t slots_lo_ = UINT32_MAX, slots_hi_ = 0;          // the lowest and highest of them
  std::vector<SweepSection> sweep_sections_;
  std::vector<SlotRef> slot_refs_;
  std::vector<Edge> edges_;            // sorted by target
  std::vector<uint32_t> call_targets_; // sorted, unique
  std::vector<uint32_t> known_starts_; // sorted, unique
  std::vector<uint32_t> entry_like_;   // sorted, unique: call targets, entry, code pointers, thunks
  std::vector<uint32_t> thunks_;       // sorted
  bool kmdf_ = false;                  // imports WdfVersionBind
  std::vector<uint32_t> table_calls_;  // KMDF: indirect calls/jumps not through an absolute or RIP address
  // Memory the code writes at absolute / RIP-relative addresses: (RVA, bytes), sorted.
  std::vector<std::pair<uint32_t, uint32_t>> stores_;
  // Image addresses whose address the code takes (lea, immediates, indexed absolute bases), sorted.
  std::vector<uint32_t> taken_;
  // Pointer-sized values in non-executable sections that are image addresses (as RVAs), sorted; built on
  // first use.
  std::optional<std::vector<uint32_t>> data_pointers_;
  analysis::RegionCache<Region> regions_;
  std::unordered_map<uint32_t, std::optional<uint32_t>> pops_cache_;
  std::unordered_map<uint32_t, std::optional<uint32_t>> call_reg_pops_;  // by call RVA
  std::unordered_map<uint32_t, Join> joins_;  // by region start
  bool joins_built_ = false;                  // SweepSection::joins
  // The proofs' full decodings (decode_at()), direct-mapped by RVA: the proofs of a site's arguments step
  // back over the same few instructions, and their decoding is most of a proof's cost.
  struct DecodedInsn {
    const CodeSection* sec = nullptr;
    uint32_t rva = 0;
    bool ok = false;
    Insn insn;
  };
  static constexpr size_t kDecodeCacheSize = 256;
  mutable std::vector<DecodedInsn> decode_cache_;
  std::shared_ptr<InsnRun> proof_run_;  // straight_line_def(): the one instruction a step looks at
  Region proof_region_;                 // ... as step() takes it
  int nested_resolves_ = 0;
  // resolve()'s visited states: (region, instruction index, location).
  struct ResolveKey {
    uint32_t region_start, region_end;
    int index;
    Loc loc;
    bool operator==(const ResolveKey&) const = default;
  };
  struct ResolveKeyHash {
    size_t operator()(const ResolveKey& k) const;
  };
  using ResolveVisits = analysis::VisitedSets<ResolveKey, ResolveKeyHash>;
  ResolveVisits resolve_visits_;
  uint64_t decoded_ = 0;
  analysis::RunCache<Insn> runs_;  // at most max_cached_insns instructions
  std::vector<Insn> run_scratch_;  // run_at()'s decoding
  std::shared_ptr<const InsnRun> run_at(const CodeSection& sec, uint32_t rva);
  bool budget_reported_ = false;
  uint64_t undecodable_ = 0;
  uint64_t code_bytes_ = 0;
};

}  // namespace tagwho::x86
