// fork + pipe isolation for parsers we did not write (libregf). See isolated.hpp.
#include "core/isolated.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#define TAGWHO_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAGWHO_UNDER_ASAN 1
#endif
#endif

namespace tagwho {
namespace {

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// In the child: nothing it does may reach the user's terminal or the parent's handlers (a fuzzer's or a
// sanitizer's crash handler would otherwise report the child's death as the parent's).
[[noreturn]] void run_child(int output_fd, const std::function<std::string()>& work, const IsolationLimits& limits) {
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd >= 0) ::dup2(null_fd, STDERR_FILENO);
  for (int signal_number : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM, SIGXCPU, SIGPIPE, SIGTERM, SIGINT})
    ::signal(signal_number, SIG_DFL);
  rlimit cpu{limits.cpu_seconds, limits.cpu_seconds};
  ::setrlimit(RLIMIT_CPU, &cpu);
#ifndef TAGWHO_UNDER_ASAN
  rlimit memory{limits.memory_bytes, limits.memory_bytes};
  ::setrlimit(RLIMIT_AS, &memory);
#endif
  std::string output;
  try {
    output = work();
  } catch (...) {
    ::_exit(3);
  }
  ::_exit(write_all(output_fd, output.data(), output.size()) ? 0 : 4);
}

double seconds_since(const timespec& start) {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec - start.tv_sec) + static_cast<double>(now.tv_nsec - start.tv_nsec) / 1e9;
}

std::string describe_death(int status) {
  if (WIFSIGNALED(status)) {
    int signal_number = WTERMSIG(status);
    if (signal_number == SIGXCPU || signal_number == SIGKILL) return "ran out of time or memory";
    return std::string("crashed (") + ::strsignal(signal_number) + ")";
  }
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 3) return "failed with an exception";
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  return "stopped unexpectedly";
}

}  // namespace

Result<std::string> run_isolated(const std::string& what, const std::function<std::string()>& work,
                                 const IsolationLimits& limits) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Error{what + ": cannot create a pipe: " + std::strerror(errno)};
  pid_t child = ::fork();
  if (child < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return Error{what + ": cannot start a child process: " + std::strerror(errno)};
  }
  if (child == 0) {
    ::close(pipe_fds[0]);
    run_child(pipe_fds[1], work, limits);
  }
  ::close(pipe_fds[1]);
  timespec start{};
  ::clock_gettime(CLOCK_MONOTONIC, &start);
  std::string output;
  bool killed = false, too_much = false;
  char buffer[65536];
  for (;;) {
    double left = limits.wall_seconds - seconds_since(start);
    if (left <= 0) {
      ::kill(child, SIGKILL);
      killed = true;
      break;
    }
    pollfd poll_fd{pipe_fds[0], POLLIN, 0};
    int ready = ::poll(&poll_fd, 1, static_cast<int>(left * 1000) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // timeout: the loop re-checks the wall clock
    ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child closed its end (exited)
    if (output.size() + static_cast<size_t>(n) > limits.max_output_bytes) {
      ::kill(child, SIGKILL);
      too_much = true;
      break;
    }
    output.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (killed) return Error{what + " took longer than " + std::to_string(limits.wall_seconds) + " s and was stopped"};
  if (too_much) return Error{what + " produced more than " + std::to_string(limits.max_output_bytes) + " bytes"};
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Error{what + " " + describe_death(status)};
  return output;
}

}  // namespace tagwho
