// Why we believe a tag belongs to a file, and the per-file / per-tag results built from it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/pe_image.hpp"
#include "tagwho/service.hpp"
#include "tagwho/tag.hpp"
#include "tagwho/tag_api.hpp"

namespace tagwho {

// The evidence ladder, weakest first, so that a larger value is stronger evidence.
enum class Confidence : uint8_t { raw = 0, data = 1, code = 2, wrapper = 3, call = 4 };
const char* confidence_name(Confidence confidence);  // "raw", "data", "code", "wrapper", "call"

// How a call site reaches the import.
// direct / direct_tail: a call or tail jump to a wrapper function (wrapper evidence).
enum class CallForm : uint8_t { none, iat, reg, thunk, tail, direct, direct_tail };
const char* call_form_name(CallForm form);  // "", "call [iat]", "call reg", "thunk", "tail jmp [iat]", "call", "tail jmp"

// The fields are ordered by size, the small ones together (192 bytes, not 216): a large driver's analysis
// holds hundreds of thousands of these.
struct Evidence {
  Confidence kind = Confidence::raw;
  CallForm form = CallForm::none;    // call evidence: how the import was reached
  TagKind tag_kind = TagKind::pool;  // call/wrapper evidence of an Ob*WithTag API: objref (never a pool tag)
  bool negative_displacement = false;  // call evidence (x64): IAT reached with a negative RIP displacement
  bool pool_flags = false;           // pool_type holds POOL_FLAGS
  bool protected_pool = false;       // literal matched with, or call/wrapper tag passed with, the PROTECTED_POOL
                                     // bit set (tag holds the value without it)
  Tag tag;
  uint32_t rva = 0;                  // call/wrapper: the call instruction; literal: the tag bytes
  uint32_t tag_rva = 0;              // call evidence: instruction that supplied the tag value
  std::optional<uint64_t> file_offset;  // literal hits: where the 4 bytes are
  std::optional<uint64_t> pool_type; // POOL_TYPE, or POOL_FLAGS when pool_flags
  std::optional<uint64_t> size;
  std::string api;                   // tag-taking API for call/wrapper evidence
  std::string section;               // section holding rva ("" when outside every section)
  std::string detail;                // free text: "immediate of cmp", "in headers"...
  std::vector<std::string> chain;    // wrapper evidence: the wrappers outermost first, then the API
                                     // ("sub@0x1200", "ExAllocatePoolWithTag")
};

// One tag in one file with everything that supports it, strongest evidence first.
struct Finding {
  Tag tag;
  Confidence best = Confidence::raw;
  std::vector<Evidence> evidence;
};

// One file: what it is and every finding in it. errors are one-line messages.
struct DriverReport {
  std::string path;
  Machine machine = Machine::other;
  bool parsed = false;  // false when the PE could not be loaded (only raw evidence then)
  uint64_t size = 0;
  VersionInfo version;
  std::vector<Finding> findings;  // ordered by the tag's characters
  // Object-reference tags (Ob*WithTag call sites, TagKind::objref): kept apart from the pool-tag findings,
  // filled in driver mode only (a search is for pool tags).
  std::vector<Finding> objref_findings;
  std::vector<std::string> errors;
  std::optional<ServiceInfo> service;  // the service that loads this file (offline SYSTEM hive), when known
};

}  // namespace tagwho
