// Per-file work limits. One file's analysis may take at most so much time and so much memory in its large
// structures; past either it is stopped with a one-line error, and the scan goes on with the next file.
// The analysis loops call budget::tick() (time) and charge()/release() (decoded regions, literal hits,
// evidence). Outside a budget::Scope both do nothing, so analysers also run unbounded in unit tests.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "tagwho/scan.hpp"

namespace tagwho::budget {

// Thrown by tick() and charge() when the current file is over its limit; caught where the file's analysis
// started (analyse_file_bytes), which turns it into the file's error.
struct Exceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
struct State {
  bool active = false;
  uint32_t countdown = 0;          // ticks until the clock is read again
  int64_t deadline_ns = 0;         // steady clock; 0 = no time limit
  uint64_t limit_bytes = 0;        // 0 = no memory limit
  uint64_t charged_bytes = 0;
  double seconds = 0;              // for the message
};
extern thread_local State state;
void check_clock();
bool clock_ok();  // check_clock without the throw
[[noreturn]] void over_memory(uint64_t bytes);
}  // namespace detail

// Starts the budget of one file on this thread; the previous one (if any) is restored when it ends.
class Scope {
 public:
  explicit Scope(const FileLimits& limits);
  ~Scope() { detail::state = saved_; }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  detail::State saved_;
};

// Called once per unit of work (an instruction decoded, a data-flow step, a literal hit): reads the clock
// every few thousand calls.
inline void tick() {
  detail::State& s = detail::state;
  if (s.active && --s.countdown == 0) detail::check_clock();
}

// tick() for callbacks of C libraries, which must not throw: false when over the time limit; the caller
// then stops its library call and calls tick_now().
inline bool try_tick() {
  detail::State& s = detail::state;
  if (!s.active || --s.countdown != 0) return true;
  return detail::clock_ok();
}
// Reads the clock now (throws Exceeded when over the time limit).
inline void tick_now() {
  if (detail::state.active) detail::check_clock();
}

// Memory the current file's analysis holds from now on (bytes), and gives back.
inline void charge(uint64_t bytes) {
  detail::State& s = detail::state;
  if (!s.active) return;
  s.charged_bytes += bytes;
  if (s.limit_bytes && s.charged_bytes > s.limit_bytes) detail::over_memory(bytes);
}
// charge() for callbacks of C libraries, which must not throw: false (nothing charged) when over the
// limit; the caller then stops its library call and calls stop_for_memory().
inline bool try_charge(uint64_t bytes) {
  detail::State& s = detail::state;
  if (!s.active) return true;
  if (s.limit_bytes && s.charged_bytes + bytes > s.limit_bytes) return false;
  s.charged_bytes += bytes;
  return true;
}
[[noreturn]] inline void stop_for_memory() { detail::over_memory(0); }

inline void release(uint64_t bytes) {
  detail::State& s = detail::state;
  if (s.active) s.charged_bytes -= std::min(bytes, s.charged_bytes);
}

// Files at least this large are analysed one at a time (scans and index builds): their analysis needs
// several times their size (a 34 MB x86 driver listed with every tag: about 180 MB).
constexpr uint64_t kLargeFile = 16ull << 20;

// Hands the memory a large file's analysis left free back to the system. glibc keeps freed memory in the
// arena of the thread that used it, so without this each thread would keep the peak of its largest file.
void return_free_memory();

// Hands back to the system the pages wholly inside [begin, end): memory the caller owns and will not read
// again (a vector's emptied tail), which stays resident otherwise until the whole block is freed. They read
// as zeros if touched again.
void discard_pages(const void* begin, const void* end);

}  // namespace tagwho::budget
