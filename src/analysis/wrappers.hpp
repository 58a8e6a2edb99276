// Wrappers across functions, independent of the architecture: a function whose parameter reaches the tag
// argument of a tag-taking API becomes a derived API with its own tag position; the tags passed to it at its
// callers are wrapper evidence, and callers that pass their own parameter on become derived APIs in turn,
// up to a fixpoint (bounded: hostile code never makes it loop or blow up).
//
// An architecture plugs in by implementing Host (finding the direct callers of a function entry and
// resolving the values that reach one entry argument at such a caller) and by reporting, for each call
// site of a tag-taking import, the tag argument's parameter origins as Seeds. The x86/x64 analyser does it
// in x86_64.cpp; ARM64 maps its w0-w7 / [sp+off] entry locations onto EntryArg the same way.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/evidence.hpp"
#include "tagwho/tag_api.hpp"

namespace tagwho::wrappers {

// Where a function receives one of its arguments, as seen at its entry point: a register (architecture
// numbering), or a stack slot at an offset from the stack pointer at entry (on x86/x64 the return address
// is at [sp+0], so the first stack argument is at [sp+4] / [sp+0x28]; on ARM64 it is at [sp+0]).
struct EntryArg {
  enum Kind : uint8_t { in_reg, on_stack } kind = in_reg;
  uint8_t reg = 0;
  int32_t off = 0;
  bool operator==(const EntryArg&) const = default;
};

// A value reaching an argument, as the architecture's data flow found it.
struct Value {
  enum Kind : uint8_t { constant, param, unknown } kind = unknown;
  uint64_t value = 0;     // constant
  uint32_t def_rva = 0;   // constant: the instruction that supplied it; param: the entry of the function
  EntryArg arg;           // param: where that function received the value
  std::string detail;     // constant: how it was found when it is not an immediate ("tag loaded from ...")
};

// A direct call or tail jump to a function entry.
struct CallerSite {
  uint32_t rva = 0;  // the call or jump instruction
  CallForm form = CallForm::direct;
  bool tail = false;  // a jump: arguments are in place for the callee as at its entry
};

// What the fixpoint needs from an architecture's analysis.
class Host {
 public:
  virtual ~Host() = default;
  // Direct calls and tail jumps (from other functions) to the function entry, at most `limit` of them.
  virtual std::vector<CallerSite> callers_of(uint32_t entry, size_t limit) = 0;
  // The values reaching, at the caller site, the argument the callee receives at `arg`.
  virtual std::vector<Value> values_at(const CallerSite& site, const EntryArg& arg) = 0;
  // The name of the section holding rva ("" when none).
  virtual std::string section_name(uint32_t rva) const = 0;
};

// A parameter found to reach the tag argument of a tag-taking API at one call site of the import.
struct Seed {
  uint32_t entry = 0;   // the function whose parameter it is
  EntryArg arg;
  const TagApi* api = nullptr;
  std::optional<uint64_t> pool_type;  // constant at the import's call site, carried to wrapper evidence
  std::optional<uint64_t> size;
};

struct Limits {
  size_t max_derived = 512;     // derived APIs over the whole image
  size_t max_depth = 8;         // wrapper levels (chain length - 1)
  size_t max_callers = 1024;    // call sites looked at per derived API
  size_t max_sites = 4096;      // call sites resolved over the whole fixpoint
  size_t max_evidence = 20000;  // wrapper evidence items produced
};

struct Outcome {
  size_t derived = 0;  // derived APIs found
  size_t sites = 0;    // wrapper call sites resolved
  bool limited = false;
};

// "sub@0x1200": how a function without a symbol appears in a chain.
std::string function_label(uint32_t entry);

// Iterates from the seeds to a fixpoint (breadth first: shortest chains first) and appends one wrapper
// evidence per (caller site, tag value) to `out`: kind wrapper, api = the underlying tag-taking API, rva =
// the call of the outermost wrapper, chain = the wrappers outermost first, then the API. A function's own
// parameter is never a tag value: parameters only ever extend the fixpoint.
Outcome expand(Host& host, const std::vector<Seed>& seeds, std::vector<Evidence>& out,
               std::vector<std::string>& problems, const Limits& limits = {});

// Final touches to the call and wrapper evidence of an analysis, from the API each names: tag_kind, and for
// pool tags the PROTECTED_POOL bit (0x80000000) moved from the tag value to protected_pool.
void finish_evidence(std::vector<Evidence>& evidence);

}  // namespace tagwho::wrappers
