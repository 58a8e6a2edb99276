// The x86/x64 side of wrappers across functions (wrappers.hpp): function entries and their parameters,
// callers of a function, and constants loaded from memory.
//
// Parameters. The backward walk stops at a function entry (a call target, the entry point, a code address
// taken, or an x64 .pdata start); the value is then a parameter when it sits, without pending arithmetic, in
//   x64: rcx, rdx, r8, r9, or a stack argument [rsp+0x28+8k] (the home area [rsp+8..0x20] is the callee's
//        and is only a parameter through a spill of the register, which the walk follows back to the
//        register; frames set up with mov rbp,rsp / lea rbp,[rsp+k] are followed back to rsp);
//   x86: a stack argument [esp+4+4k] ([ebp+8+4k] after push ebp; mov ebp,esp), or eax/ecx/edx (fastcall,
//        GCC regparm and clang's fastcc for local functions: compiled code never reads one of them at entry
//        unless it is an argument).
//
// Memory constants. A load from the image (absolute or RIP-relative, not an IAT slot) gives a constant when
//   - the section is not writable (.rdata, constants in .text): "tag loaded from .rdata at 0x...", or
//   - the 4 or 8 bytes are initialised writable data that no code writes and whose address is never taken:
//     no instruction in the linear sweep of the executable sections stores to an absolute or RIP-relative
//     address overlapping them (an instruction whose memory operand the analysis could not inspect counts as
//     a 16-byte store); and no lea, immediate, indexed/based displacement, or pointer-sized value in a
//     non-executable section points into them or up to 64 bytes below them (a small struct or array that
//     contains them). Stores through pointers can then only reach them through an address derived from a
//     larger enclosing object: that case (memset of a big struct holding the tag) is out of reach.
//     "tag loaded from global at 0x... (never written)".
#include <algorithm>
#include <cstdio>

#include "analysis/call_sites.hpp"
#include "analysis/x86_dataflow.hpp"
#include "core/format.hpp"

namespace tagwho::x86 {
namespace {

constexpr uint32_t kTakenWindow = 64;  // bytes below a global whose address-taking makes it unprovable

}  // namespace

bool Analysis::is_function_entry(uint32_t rva) const {
  if (is_entry_like(rva)) return true;
  if (!model_.x64) return false;
  const RuntimeFunction* f = model_.function_at(rva);
  return f && f->begin_rva == rva;
}

Def Analysis::entry_def(const Loc& loc, uint32_t entry) const {
  Def d{Def::unknown, 0, entry};
  if (loc.nops != 0) return d;
  bool param = false;
  if (loc.kind == Loc::in_reg) {
    param = model_.x64 ? (loc.reg == kRcx || loc.reg == kRdx || loc.reg == kR8 || loc.reg == kR9)
                       : (loc.reg == kRax || loc.reg == kRcx || loc.reg == kRdx);
  } else if (loc.kind == Loc::at_sp) {
    param = model_.x64 ? (loc.off >= 0x28 && loc.off % 8 == 0 && loc.off <= 0x28 + 8 * 64)
                       : (loc.off >= 4 && loc.off % 4 == 0 && loc.off <= 4 + 4 * 64);
  }
  if (param) {
    d.kind = Def::param;
    d.loc = loc;
  }
  return d;
}

std::vector<wrappers::CallerSite> Analysis::callers_of(uint32_t entry, size_t limit) {
  std::vector<wrappers::CallerSite> out;
  auto lo = std::lower_bound(edges_.begin(), edges_.end(), entry,
                             [](const Edge& e, uint32_t x) { return e.target < x; });
  const RuntimeFunction* fn = model_.x64 ? model_.function_at(entry) : nullptr;
  if (fn && fn->begin_rva != entry) fn = nullptr;
  for (auto it = lo; it != edges_.end() && it->target == entry && out.size() < limit; ++it) {
    if (it->kind == Edge::call) {
      out.push_back({it->source, CallForm::direct, false});
      continue;
    }
    // A jump is a tail call only from another function (not a loop back to the entry).
    if (fn && it->source >= fn->begin_rva && it->source < fn->end_rva) continue;
    if (it->source >= entry) {
      auto ks = std::upper_bound(known_starts_.begin(), known_starts_.end(), it->source);
      if (ks != known_starts_.begin() && *(ks - 1) == entry) continue;
    }
    out.push_back({it->source, CallForm::direct_tail, true});
  }
  return out;
}

std::vector<wrappers::Value> Analysis::values_at(const wrappers::CallerSite& site, const wrappers::EntryArg& arg) {
  trim_cache();
  const Region* region = region_for(site.rva);
  const int index = region ? region->index_of(site.rva) : -1;
  if (index < 0) return {wrappers::Value{}};
  Loc loc;
  if (arg.kind == wrappers::EntryArg::in_reg) {
    loc = Loc{Loc::in_reg, arg.reg, 0};
  } else {
    // At a call the return address is not pushed yet; at a tail jump the caller's is where the callee's goes.
    const int32_t off = arg.off - (site.tail ? 0 : (model_.x64 ? 8 : 4));
    if (off < 0) return {wrappers::Value{}};
    loc = Loc{Loc::at_sp, kNoReg, off};
  }
  return values_of(resolve(region, index, loc));
}

std::vector<wrappers::Value> Analysis::values_of(const std::vector<Def>& defs) {
  return analysis::values_of(defs, [this](uint32_t rva, uint8_t size) { return memory_constant(rva, size); });
}

bool Analysis::address_taken_near(uint32_t rva) {
  if (!data_pointers_) {
    std::vector<uint32_t> pointers;
    const uint32_t width = model_.x64 ? 8 : 4;
    for (const CodeSection& sec : model_.sections) {
      if (sec.executable) continue;
      const size_t n = sec.file_size();
      for (size_t at = 0; at + width <= n && pointers.size() < 1'000'000; at += width) {
        uint64_t va = width == 8 ? sec.bytes.u64(at).value_or(0) : sec.bytes.u32(at).value_or(0);
        if (va >= model_.image_base && va - model_.image_base <= 0xffffffffull)
          pointers.push_back(static_cast<uint32_t>(va - model_.image_base));
      }
    }
    std::sort(pointers.begin(), pointers.end());
    pointers.erase(std::unique(pointers.begin(), pointers.end()), pointers.end());
    data_pointers_ = std::move(pointers);
  }
  // Code taking an address up to kTakenWindow bytes below (in the same section: objects do not span
  // sections) may be taking the address of an enclosing struct or array; pointers stored in data (pointer
  // tables, mingw's .refptr stubs) must point into the 8 bytes themselves.
  const CodeSection* sec = model_.section_at(rva);
  uint32_t lo = rva > kTakenWindow ? rva - kTakenWindow : 0;
  if (sec) lo = std::max(lo, sec->rva);
  const uint32_t hi = rva + 8;  // covers 4- and 8-byte loads
  auto it = std::lower_bound(taken_.begin(), taken_.end(), lo);
  if (it != taken_.end() && *it < hi) return true;
  it = std::lower_bound(data_pointers_->begin(), data_pointers_->end(), rva);
  return it != data_pointers_->end() && *it < hi;
}

std::optional<MemoryConstant> Analysis::memory_constant(uint32_t rva, uint8_t size) {
  if (size != 4 && size != 8) return std::nullopt;
  if (slot(rva)) return std::nullopt;
  const CodeSection* sec = model_.section_at(rva);
  if (!sec) return std::nullopt;
  const size_t n = sec->file_size();
  const size_t off = rva - sec->rva;
  if (off + size > n) return std::nullopt;  // not file-backed (.bss): no initial value to read
  MemoryConstant c;
  c.value = size == 8 ? sec->bytes.u64(off).value_or(0) : sec->bytes.u32(off).value_or(0);
  if (!sec->writable) {
    c.detail = "tag loaded from " + (sec->name.empty() ? std::string("read-only data") : sec->name) + " at " +
               hex(rva);
    return c;
  }
  if (sec->executable) return std::nullopt;
  // Any store overlapping [rva, rva+size)? stores_ is sorted by start; stores are at most 64 bytes long.
  auto it = std::lower_bound(stores_.begin(), stores_.end(), std::make_pair(rva > 64 ? rva - 64 : 0u, 0u));
  for (; it != stores_.end() && it->first < rva + size; ++it)
    if (it->first + it->second > rva) return std::nullopt;
  if (address_taken_near(rva)) return std::nullopt;
  c.detail = "tag loaded from global at " + hex(rva) + " (never written)";
  return c;
}

}  // namespace tagwho::x86
