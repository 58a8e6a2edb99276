#include "core/schedule.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/budget.hpp"

namespace tagwho {

void run_workers(size_t items, unsigned threads, const std::function<void()>& worker) {
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(std::max<size_t>(items, 1))));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();
}

void parallel_for(size_t count, unsigned threads, const std::function<void(size_t)>& work) {
  std::atomic<size_t> next{0};
  std::mutex lock;
  std::exception_ptr failure;  // the first exception a worker threw: no more items start, and it is rethrown
  run_workers(count, threads, [&] {
    for (size_t i = next++; i < count; i = next++) {
      try {
        work(i);
      } catch (...) {
        std::lock_guard<std::mutex> guard(lock);
        if (!failure) failure = std::current_exception();
        next = count;
      }
    }
  });
  if (failure) std::rethrow_exception(failure);
}

void run_largest_first(size_t count, unsigned threads, const std::function<uint64_t(size_t)>& size_of,
                       const std::function<void(size_t)>& work) {
  std::vector<size_t> order(count);
  std::vector<uint64_t> sizes(count);
  for (size_t i = 0; i < count; ++i) {
    order[i] = i;
    sizes[i] = size_of(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sizes[a] > sizes[b]; });
  auto is_large = [&](size_t index) { return sizes[index] >= budget::kLargeFile; };
  std::mutex lock;
  std::condition_variable large_done;
  size_t front = 0, back = count;  // items still to take: order[front, back)
  bool large_running = false;
  std::exception_ptr failure;
  // The next item (largest first, but never a second large one at once), or none.
  auto take = [&]() -> std::optional<size_t> {
    std::unique_lock<std::mutex> guard(lock);
    for (;;) {
      if (failure || front >= back) return std::nullopt;
      if (!is_large(order[front]) || !large_running) {
        large_running = large_running || is_large(order[front]);
        return order[front++];
      }
      if (!is_large(order[back - 1])) return order[--back];
      large_done.wait(guard);  // only large items are left, and one is running
    }
  };
  auto worker = [&] {
    while (std::optional<size_t> index = take()) {
      try {
        work(*index);
      } catch (...) {
        std::lock_guard<std::mutex> guard(lock);
        if (!failure) failure = std::current_exception();
      }
      if (is_large(*index)) {
        budget::return_free_memory();
        std::lock_guard<std::mutex> guard(lock);
        large_running = false;
      }
      large_done.notify_all();
    }
  };
  run_workers(count, threads, worker);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace tagwho
