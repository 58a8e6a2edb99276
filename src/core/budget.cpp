#include "core/budget.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace tagwho::budget {
namespace detail {

thread_local State state;

namespace {
// Clock reads: one per this many ticks (a tick is a decoded instruction or a data-flow step, well under a
// microsecond each), so a file stops within a few milliseconds of its deadline.
constexpr uint32_t kTicksPerClockRead = 4096;

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

bool clock_ok() {
  state.countdown = kTicksPerClockRead;
  return !state.deadline_ns || now_ns() < state.deadline_ns;
}

void check_clock() {
  if (!clock_ok())
    throw Exceeded("analysis stopped: over the per-file time limit of " + format_seconds(state.seconds) +
                   " s (--file-timeout)");
}

void over_memory(uint64_t bytes) {
  state.charged_bytes -= std::min(bytes, state.charged_bytes);  // what was not allocated after all
  throw Exceeded("analysis stopped: over the per-file memory limit of " + std::to_string(state.limit_bytes >> 20) +
                 " MiB (--file-memory)");
}

}  // namespace detail

Scope::Scope(const FileLimits& limits) : saved_(detail::state) {
  detail::State& s = detail::state;
  s = detail::State{};
  s.active = limits.seconds > 0 || limits.memory_bytes > 0;
  // A limit too large for the clock's range is no limit.
  const bool timed = limits.seconds > 0 && limits.seconds < 1e9;
  s.countdown = 1;  // the first tick reads the clock: a limit of "already over" stops at once
  s.seconds = limits.seconds;
  s.deadline_ns = timed ? detail::now_ns() + std::max<int64_t>(1, static_cast<int64_t>(limits.seconds * 1e9)) : 0;
  s.limit_bytes = limits.memory_bytes;
}

void return_free_memory() { malloc_trim(0); }

void discard_pages(const void* begin, const void* end) {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) & ~(page - 1);
  const uintptr_t last = reinterpret_cast<uintptr_t>(end) & ~(page - 1);
  // Advice only: when it fails the pages simply stay resident.
  if (first < last) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace tagwho::budget
