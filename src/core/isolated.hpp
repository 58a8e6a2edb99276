// Runs a third-party parser on hostile input in a child process, so that its crash, hang or runaway
// allocation costs one clear error instead of the whole scan.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "tagwho/result.hpp"

namespace tagwho {

struct IsolationLimits {
  unsigned cpu_seconds = 20;        // RLIMIT_CPU in the child
  unsigned wall_seconds = 60;       // the child is killed after this long
  uint64_t memory_bytes = 2ull << 30;  // RLIMIT_AS in the child (not applied under AddressSanitizer)
  uint64_t max_output_bytes = 64ull << 20;
};

// Calls `work` in a forked child and returns the bytes it produced. `work` runs with its stderr sent to
// /dev/null and default signal handlers; an exception in it, a signal, a limit reached or too much output
// all come back as an Error naming `what` ("the registry reader") and the cause. Only the parent's copy
// of memory is ever used afterwards: nothing the child does can change the caller's state.
Result<std::string> run_isolated(const std::string& what, const std::function<std::string()>& work,
                                 const IsolationLimits& limits = {});

}  // namespace tagwho
