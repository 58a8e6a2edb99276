// The order files are analysed in when every result is kept or stored on its own (a search, an index
// build): largest first, so that one huge driver started last never leaves the other threads idle, and
// never two large files at once, so that peak memory follows the largest file and not how many large files
// a corpus has.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace tagwho {

// Runs worker() on min(threads, items) threads (at least one), the calling thread being one of them, and
// returns when every one has returned.
void run_workers(size_t items, unsigned threads, const std::function<void()>& worker);

// work(0..count-1) on up to `threads` threads, in order of index. An exception thrown by work stops the items
// not yet started and is rethrown here once every thread has finished.
void parallel_for(size_t count, unsigned threads, const std::function<void(size_t)>& work);

// Runs work(i) for every i in [0, count) on up to `threads` threads: largest first (size_of(i)), at most one
// item of budget::kLargeFile bytes or more at a time (meanwhile the other threads take the smallest items
// left), with the memory a large item left free returned to the system after it. An exception thrown by work
// stops the items not yet started and is rethrown once every thread has finished.
void run_largest_first(size_t count, unsigned threads, const std::function<uint64_t(size_t)>& size_of,
                       const std::function<void(size_t)>& work);

}  // namespace tagwho
