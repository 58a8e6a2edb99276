// Pass 1 (the linear sweep of executable code) and the regions analysed around call sites: the .pdata
// function on x64, otherwise a bounded window starting at the nearest known function start (entry point,
// direct call targets, code addresses used as immediates, import thunks).
#include <algorithm>

#include "core/budget.hpp"
#include "analysis/radix_sort.hpp"
#include "analysis/x86_dataflow.hpp"

namespace tagwho::x86 {
namespace {

using analysis::radix_sort;
using analysis::sort_unique;

// The addresses the sweep's findings are looked up at: code pointers lie in executable sections, and address-
// taking is asked about for globals in sections (address_taken_near(), which looks kTakenWindow below and 8
// bytes above). Immediates and displacements beyond all sections never matter, so the sweep's table decoding
// can take the instructions that hold them (x86_insn.cpp).
uint64_t looked_up_span(const CodeModel& model) {
  uint64_t end = 0;
  for (const CodeSection& s : model.sections) end = std::max<uint64_t>(end, uint64_t{s.rva} + s.size);
  return end + 64;
}

bool contains_sorted(const std::vector<uint32_t>& v, uint32_t x) { return std::binary_search(v.begin(), v.end(), x); }

}  // namespace

const CodeSection* CodeModel::section_at(uint32_t rva) const {
  for (const CodeSection& s : sections)
    if (rva >= s.rva && rva - s.rva < s.size) return &s;
  return nullptr;
}

const RuntimeFunction* CodeModel::function_at(uint32_t rva) const {
  auto it = std::upper_bound(functions.begin(), functions.end(), rva,
                             [](uint32_t x, const RuntimeFunction& f) { return x < f.begin_rva; });
  if (it == functions.begin()) return nullptr;
  --it;
  return rva >= it->begin_rva && rva < it->end_rva ? &*it : nullptr;
}

uint64_t Region::memory_bytes() const {
  return insns.memory_bytes() + branch_in.capacity() * sizeof(branch_in[0]) + sizeof(Region);
}

Analysis::Analysis(const CodeModel& model, Limits limits)
    : model_(model), limits_(limits), decoder_(model.x64, model.image_base, looked_up_span(model)) {
  for (const ImportRef& import : model_.imports) {
    slots_.emplace(import.slot_rva, &import);
    slots_lo_ = std::min(slots_lo_, import.slot_rva);
    slots_hi_ = std::max(slots_hi_, import.slot_rva);
    kmdf_ = kmdf_ || import.name == kWdfBindImport;
  }
}

std::string hex(uint32_t value) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[value & 0xf]);
    value >>= 4;
  } while (value);
  return "0x" + out;
}

void Analysis::problem(std::string text) {
  if (problems_.size() < limits_.max_problems) problems_.push_back(std::move(text));
}

const ImportRef* Analysis::slot(uint32_t rva) const {
  // (The sweep asks about every absolute or RIP-relative address in the code: most are outside the IAT.)
  if (rva < slots_lo_ || rva > slots_hi_) return nullptr;
  auto it = slots_.find(rva);
  return it == slots_.end() ? nullptr : it->second;
}

bool Analysis::is_known_start(uint32_t rva) const { return contains_sorted(known_starts_, rva); }
bool Analysis::is_entry_like(uint32_t rva) const { return contains_sorted(entry_like_, rva); }

void Analysis::add_edge(uint32_t source, uint32_t target, Flow flow, bool source_has_fallthrough_pred) {
  Edge e;
  e.source = source;
  e.target = target;
  e.kind = flow == Flow::call ? Edge::call : flow == Flow::jmp ? Edge::jmp : Edge::jcc;
  e.source_has_fallthrough_pred = source_has_fallthrough_pred;
  edges_.push_back(e);
  if (flow == Flow::call) call_targets_.push_back(target);
}

bool Analysis::in_code(uint64_t rva) const {
  if (rva > 0xffffffffull) return false;
  const CodeSection* s = model_.section_at(static_cast<uint32_t>(rva));
  return s && s->executable;
}

void Analysis::note(uint32_t rva, const SweepFacts& facts, bool prev_falls, std::vector<uint32_t>& code_pointers) {
  if (facts.has_target && (facts.flow == Flow::call || facts.flow == Flow::jmp || facts.flow == Flow::jcc) &&
      in_code(facts.target))
    add_edge(rva, facts.target, facts.flow, prev_falls);
  const bool indirect = facts.flow == Flow::call_indirect || facts.flow == Flow::jmp_indirect;
  if (facts.mem_rva && facts.lea) {
    taken_.push_back(*facts.mem_rva);
  } else if (facts.mem_rva) {
    if (const ImportRef* import = slot(*facts.mem_rva);
        import && import->api && (indirect || (facts.flow == Flow::normal && facts.mov))) {
      SlotRef ref;
      ref.rva = rva;
      ref.import = import;
      ref.flow = facts.flow;
      ref.negative = facts.negative_disp;
      ref.has_fallthrough_pred = prev_falls;
      slot_refs_.push_back(ref);
    }
    if (facts.write) stores_.emplace_back(*facts.mem_rva, std::clamp<uint32_t>(facts.size, 1, 64));
  }
  for (uint8_t i = 0; i < facts.taken_count; ++i) {
    taken_.push_back(facts.taken[i]);
    if (facts.code_pointer[i] && in_code(facts.taken[i])) code_pointers.push_back(facts.taken[i]);
  }
  if (kmdf_ && indirect && facts.through_operand && !facts.mem_rva) table_calls_.push_back(rva);
}

void Analysis::sweep() {
  std::vector<uint32_t> code_pointers;
  for (const CodeSection& sec : model_.sections) {
    if (!sec.executable) continue;
    SweepSection ss;
    ss.section = &sec;
    const size_t n = sec.file_size();
    code_bytes_ += n;
    ss.boundaries.assign(n / 64 + 1, 0);
    const uint8_t* data = sec.bytes.data();
    auto fit = std::lower_bound(model_.functions.begin(), model_.functions.end(), sec.rva,
                                [](const RuntimeFunction& f, uint32_t x) { return f.begin_rva < x; });
    size_t off = 0;
    bool prev_falls = false;
    SweepFacts facts;  // (outside the loop: each step that fills it overwrites it whole)
    // An instruction [rva, end) that runs over the next .pdata function start: the sweep resynchronises there.
    const auto runs_over_function_start = [&](uint32_t rva, uint32_t end) {
      return fit != model_.functions.end() && fit->begin_rva > rva && fit->begin_rva < end;
    };
    while (off < n) {
      budget::tick();
      const uint32_t rva = static_cast<uint32_t>(sec.rva + off);
      while (fit != model_.functions.end() && fit->begin_rva < rva) ++fit;
      set_bit(ss.boundaries, off);
      // One-byte nops (90; in 64-bit mode too, without REX) pad between functions: the sweep notes nothing
      // and keeps the state of the instruction before, as for any padding (below).
      if (data[off] == 0x90) {
        ++off;
        continue;
      }
      // Direct branches: an edge, without building an Insn (as for any instruction below).
      if (Decoder::DirectBranch branch; const int length = decoder_.direct_branch(data + off, n - off, rva, branch)) {
        if (runs_over_function_start(rva, rva + static_cast<uint32_t>(length))) {
          off = fit->begin_rva - sec.rva;  // resynchronise on the function start
          prev_falls = false;
          continue;
        }
        if (branch.has_target && in_code(branch.target)) add_edge(rva, branch.target, branch.flow, prev_falls);
        prev_falls = falls_through(branch.flow);
        off += static_cast<size_t>(length);
        continue;
      }
      // Most instructions only need stepping over (quiet): their length, without looking further.
      const int quiet = decoder_.sweep_step(data + off, n - off, rva, facts);
      if (quiet < 0) {
        ++undecodable_;
        ++off;
        prev_falls = false;
        continue;
      }
      const uint32_t end = rva + static_cast<uint32_t>(quiet > 0 ? quiet : facts.length);
      if (runs_over_function_start(rva, end)) {
        off = fit->begin_rva - sec.rva;  // resynchronise on the function start
        prev_falls = false;
        continue;
      }
      if (quiet > 0) {
        prev_falls = true;
        off += static_cast<size_t>(quiet);
        continue;
      }
      note(rva, facts, prev_falls, code_pointers);
      // Alignment padding between functions keeps the state of the instruction before it.
      if (!facts.padding) prev_falls = facts.falls_through();
      off += facts.length;
    }
    sweep_sections_.push_back(std::move(ss));
  }
  // A few undecodable bytes are normal (data between functions); many mean data or packed code.
  if (undecodable_ > 256 && undecodable_ * 100 > code_bytes_)
    problem(std::to_string(undecodable_) + " of " + std::to_string(code_bytes_) +
            " bytes of executable sections do not decode");

  // (by address, then size: sizes are 1 to 64, 7 bits)
  radix_sort(stores_, [](const std::pair<uint32_t, uint32_t>& s) { return uint64_t{s.first} << 7 | s.second; }, 39);
  sort_unique(taken_);

  analysis::sort_by_target(edges_, [](const Edge& e) { return e.target; }, [](const Edge& e) { return e.source; });
  sort_unique(call_targets_);
  entry_like_ = call_targets_;
  entry_like_.insert(entry_like_.end(), code_pointers.begin(), code_pointers.end());
  if (model_.entry_rva) entry_like_.push_back(model_.entry_rva);
  sort_unique(entry_like_);
  known_starts_ = entry_like_;
  for (const RuntimeFunction& f : model_.functions) known_starts_.push_back(f.begin_rva);
  for (const CodeSection& sec : model_.sections)
    if (sec.executable) known_starts_.push_back(sec.rva);
  sort_unique(known_starts_);
}

const Analysis::SweepSection* Analysis::sweep_section_at(uint32_t rva) const {
  for (const SweepSection& ss : sweep_sections_) {
    const CodeSection& s = *ss.section;
    const size_t n = s.file_size();
    if (rva >= s.rva && rva - s.rva < n) return &ss;
  }
  return nullptr;
}

std::optional<uint32_t> Analysis::checkpoint_at(uint32_t rva) const {
  const SweepSection* ss = sweep_section_at(rva);
  if (!ss) return std::nullopt;
  // The first boundary at or after the 64-byte mark at or below rva (the section's end when none).
  const std::vector<uint64_t>& bits = ss->boundaries;
  for (size_t word = (rva - ss->section->rva) / 64; word < bits.size(); ++word)
    if (bits[word]) return static_cast<uint32_t>(ss->section->rva + word * 64 + static_cast<size_t>(__builtin_ctzll(bits[word])));
  return static_cast<uint32_t>(ss->section->rva + ss->section->file_size());
}

// The run starting at rva (decoded now, or shared with the regions that reached rva before).
std::shared_ptr<const InsnRun> Analysis::run_at(const CodeSection& sec, uint32_t rva) {
  if (auto known = runs_.find(rva)) return known;
  const size_t n = sec.file_size();
  const uint8_t* data = sec.bytes.data();
  auto run = std::make_shared<InsnRun>();
  run->start = rva;
  const uint64_t boundary = (uint64_t{rva} & ~uint64_t{0xff}) + 0x100;
  uint32_t at = rva;
  // Decoded into a scratch array kept from run to run (room for the most a run can hold: one instruction
  // per byte), then copied at its exact size (charged by its capacity): not grown by doubling for every run.
  run_scratch_.resize(0x100);
  size_t count = 0;
  while (at < boundary && at - sec.rva < n) {
    budget::tick();
    const size_t off = at - sec.rva;
    Insn& insn = run_scratch_[count++];  // (each decoding overwrites it whole)
    if (!decoder_.decode(data + off, n - off, at, insn)) {
      insn = kEmptyInsn;
      insn.rva = at;
      insn.length = 1;
      insn.flow = Flow::stop;
    }
    at += insn.length;
  }
  run->next = at;
  run->insns.assign(run_scratch_.begin(), run_scratch_.begin() + static_cast<std::ptrdiff_t>(count));
  return runs_.add(rva, std::move(run));
}

const Region* Analysis::build_region(uint32_t start, uint32_t end) {
  auto key = std::make_pair(start, end);
  if (const Region* cached = regions_.find(key)) return cached;
  auto region = std::make_unique<Region>();
  region->start = start;
  region->end = end;
  const CodeSection* sec = model_.section_at(start);
  if (decoded_ >= limits_.decode_budget) {
    sec = nullptr;
    if (!budget_reported_) problem("analysis budget exhausted: later call sites not analysed");
    budget_reported_ = true;
  }
  if (sec) {
    // Linear decoding from start, run after run: call sites close together (windows on a grid, x86 without
    // .pdata) share the runs instead of decoding the same bytes many times.
    const size_t n = sec->file_size();
    runs_.trim(SIZE_MAX, limits_.max_cached_insns);
    uint32_t rva = start;
    while (rva < end && rva - sec->rva < n && region->insns.size() < limits_.max_region_insns) {
      const std::shared_ptr<const InsnRun> run = run_at(*sec, rva);
      size_t take = 0;
      while (take < run->insns.size() && run->insns[take].rva < end &&
             region->insns.size() + take < limits_.max_region_insns)
        ++take;
      region->insns.append(run, 0, take);
      if (take < run->insns.size()) break;
      rva = run->next;
    }
    decoded_ += region->insns.size();
    if (region->insns.size() >= limits_.max_region_insns)
      problem("code at " + hex(start) + " clipped to " +
              std::to_string(limits_.max_region_insns) + " instructions");
  }
  for (size_t i = 0; i < region->insns.size(); ++i) {
    const Insn& insn = region->insns[i];
    if (insn.has_target && (insn.flow == Flow::jmp || insn.flow == Flow::jcc) && insn.target >= start &&
        insn.target < end)
      region->branch_in.emplace_back(insn.target, static_cast<uint32_t>(i));
  }
  std::sort(region->branch_in.begin(), region->branch_in.end());
  return regions_.add(key, std::move(region));
}

void Analysis::trim_cache() {
  regions_.trim(limits_.max_regions_cached, limits_.max_cached_insns);
}

std::optional<Analysis::RegionPlan> Analysis::plan_region(uint32_t rva) const {
  const SweepSection* ss = sweep_section_at(rva);
  if (!ss) return std::nullopt;
  const CodeSection& sec = *ss->section;
  const uint32_t sec_lo = sec.rva;
  const uint32_t sec_hi = static_cast<uint32_t>(sec.rva + sec.file_size());

  RegionPlan plan;
  const RuntimeFunction* f = model_.x64 ? model_.function_at(rva) : nullptr;
  if (f && f->begin_rva >= sec_lo && f->end_rva > rva) {
    const uint32_t half = limits_.max_function_bytes / 2;
    plan.lo = f->begin_rva;
    plan.hi = std::min(f->end_rva, sec_hi);
    if (plan.hi - plan.lo > limits_.max_function_bytes) {
      if (rva - plan.lo > half) plan.lo = rva - half;
      if (plan.hi - rva > half) plan.hi = rva + half;
    }
    if (plan.lo == f->begin_rva) plan.start = plan.lo;
  } else {
    // Windows on a 1 KiB grid, so that nearby sites share (cached) regions.
    const uint32_t grid_lo = std::max(rva & ~0x3ffu, sec_lo);
    const uint32_t grid_hi = std::min((rva & ~0x3ffu) + 0x400, sec_hi);
    plan.lo = grid_lo - sec_lo > limits_.window_before ? grid_lo - limits_.window_before : sec_lo;
    plan.hi = sec_hi - grid_hi > limits_.window_after ? grid_hi + limits_.window_after : sec_hi;
    if (model_.x64) {
      // Do not run into the neighbouring .pdata functions.
      auto it = std::upper_bound(model_.functions.begin(), model_.functions.end(), rva,
                                 [](uint32_t x, const RuntimeFunction& fn) { return x < fn.begin_rva; });
      if (it != model_.functions.end()) plan.hi = std::min(plan.hi, std::max(it->begin_rva, rva + 1));
      if (it != model_.functions.begin()) {
        --it;
        if (it->end_rva <= rva) plan.lo = std::max(plan.lo, it->end_rva);
      }
    }
    auto ks = std::upper_bound(known_starts_.begin(), known_starts_.end(), rva);
    if (ks != known_starts_.end()) plan.hi = std::min(plan.hi, std::max(*ks, rva + 1));
    if (ks != known_starts_.begin() && *(ks - 1) >= plan.lo) plan.start = *(ks - 1);
  }
  // Else a boundary of the sweep (which saw the instruction at rva), as close to lo as possible.
  std::optional<uint32_t> cp = checkpoint_at(plan.lo);
  if (!cp || *cp < plan.lo || *cp > rva) cp = checkpoint_at(plan.lo + 63);
  if (!cp || *cp < plan.lo || *cp > rva) cp = checkpoint_at(rva);
  plan.sweep_start = !cp || *cp > rva ? rva : *cp;
  return plan;
}

const Region* Analysis::region_for(uint32_t rva) {
  const std::optional<RegionPlan> plan = plan_region(rva);
  if (!plan) return nullptr;
  if (plan->start) {
    const Region* r = build_region(*plan->start, plan->hi);
    if (r->index_of(rva) >= 0) return r;
  }
  const Region* r = build_region(plan->sweep_start, plan->hi);
  if (r->index_of(rva) >= 0) return r;
  r = build_region(rva, plan->hi);
  return r->index_of(rva) >= 0 ? r : nullptr;
}

}  // namespace tagwho::x86
