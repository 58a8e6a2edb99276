// ByteView::c_string and MappedFile: the two pieces of byte access that are not header-only.
#include "tagwho/byte_view.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <new>
#include <string>
#include <utility>

namespace tagwho {

std::optional<std::string_view> ByteView::c_string(uint64_t offset, size_t max_length) const {
  if (offset >= size_) return std::nullopt;
  const size_t available = size_ - static_cast<size_t>(offset);
  // The string may hold up to max_length bytes; its terminator must lie within max_length + 1 bytes.
  const size_t window = max_length < available ? max_length + 1 : available;
  const auto* start = data_ + offset;
  const void* nul = std::memchr(start, 0, window);
  if (nul == nullptr) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(start),
                          static_cast<size_t>(static_cast<const uint8_t*>(nul) - start));
}

namespace {

Error errno_error(const char* what) {
  return Error{std::string(what) + ": " + std::strerror(errno)};
}

// Closes a file descriptor on scope exit.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

// The SIGBUS guard of the mappings. Reading a mapped page past the end of a file that shrank after it was
// mapped raises SIGBUS, and so does a page the disk fails to read. The handler looks the address up in a
// table of the live mappings (one slot each, claimed when a file is mapped, cleared before it is
// unmapped), maps zero pages over the rest of that mapping, notes it, and returns: the read is retried and
// sees zeros. A SIGBUS elsewhere goes to the handler that was installed before (a sanitizer's or a
// fuzzer's), else kills the process as it would have. The handler touches only lock-free atomics, plain
// globals set before it was installed, and system calls.
struct GuardSlot {
  std::atomic<bool> taken{false};
  std::atomic<uintptr_t> begin{0};  // 0 while the slot is being filled or emptied
  std::atomic<uintptr_t> end{0};    // page-rounded
  std::atomic<bool> caught{false};  // the handler mapped zeros over part of it
};
// More mappings than this at once (threads that each hold a file, plus the index's readers) get copies.
constexpr int kGuardSlots = 1024;
GuardSlot guard_slots[kGuardSlots];
struct sigaction previous_sigbus;
uintptr_t page_mask = ~uintptr_t{4095};  // set from the system's page size before the handler is installed

void on_sigbus(int signal, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
  for (GuardSlot& slot : guard_slots) {
    const uintptr_t begin = slot.begin.load(std::memory_order_acquire);
    const uintptr_t end = slot.end.load(std::memory_order_acquire);
    if (begin == 0 || address < begin || address >= end) continue;
    const uintptr_t page = address & page_mask;
    void* zeros = ::mmap(reinterpret_cast<void*>(page), end - page, PROT_READ,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (zeros != MAP_FAILED) {
      slot.caught.store(true, std::memory_order_release);
      errno = saved_errno;
      return;
    }
    break;
  }
  // Not a guarded mapping (or no memory for the zeros): what would have happened without this handler.
  if ((previous_sigbus.sa_flags & SA_SIGINFO) && previous_sigbus.sa_sigaction) {
    previous_sigbus.sa_sigaction(signal, info, context);
  } else if (previous_sigbus.sa_handler != SIG_DFL && previous_sigbus.sa_handler != SIG_IGN) {
    previous_sigbus.sa_handler(signal);
  } else {
    // Back to the default action; returning retries the read, which faults again and ends the process.
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(SIGBUS, &fallback, nullptr);
  }
  errno = saved_errno;
}

bool install_sigbus_guard() {
  static const bool installed = [] {
    page_mask = ~(static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE)) - 1);
    struct sigaction action {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    return ::sigaction(SIGBUS, &action, &previous_sigbus) == 0;
  }();
  return installed;
}

// A free slot for the mapping [begin, begin + size), or -1 when all are in use.
int claim_guard_slot(const uint8_t* begin, size_t size) {
  if (!install_sigbus_guard()) return -1;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(begin) + size + ~page_mask) & page_mask;
  for (int i = 0; i < kGuardSlots; ++i) {
    GuardSlot& slot = guard_slots[i];
    bool expected = false;
    if (slot.taken.load(std::memory_order_relaxed) ||
        !slot.taken.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
      continue;
    slot.caught.store(false, std::memory_order_relaxed);
    slot.end.store(end, std::memory_order_release);
    slot.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
    return i;
  }
  return -1;
}

void free_guard_slot(int index) {
  GuardSlot& slot = guard_slots[index];
  slot.begin.store(0, std::memory_order_release);
  slot.end.store(0, std::memory_order_release);
  slot.taken.store(false, std::memory_order_release);
}

}  // namespace

Result<MappedFile> MappedFile::open(const std::string& path, uint64_t max_size) {
  // O_NONBLOCK: a FIFO or device that slipped past the caller's checks can never block the open.
  FdGuard guard{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)};
  if (guard.fd < 0) return errno_error("cannot open file");
  struct stat info {};
  if (::fstat(guard.fd, &info) != 0) return errno_error("cannot stat file");
  if (!S_ISREG(info.st_mode)) return Error{"not a regular file"};

  MappedFile mapped;
  uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size > max_size) {
    // Too large to be analysed: only a PE is worth an error; the head says whether it is one.
    uint8_t head[2] = {};
    if (::pread(guard.fd, head, 2, 0) == 2 && head[0] == 'M' && head[1] == 'Z')
      return Error{"file too large to analyse (" + std::to_string(size >> 20) + " MB; the limit is " +
                   std::to_string(max_size >> 20) + " MB)"};
    size = std::min<uint64_t>(size, 4096);
  }
  if (size == 0) return mapped;
  // Mapped, each page faulted in when it is first read (a search reads every byte through WindowReader, and
  // the analysis reads the headers and, of few files, the code); a copy where the file system cannot map
  // files or the guard table is full.
  void* address = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, guard.fd, 0);
  if (address != MAP_FAILED) {
    mapped.guard_ = claim_guard_slot(static_cast<const uint8_t*>(address), static_cast<size_t>(size));
    if (mapped.guard_ >= 0) {
      mapped.address_ = static_cast<uint8_t*>(address);
      mapped.size_ = static_cast<size_t>(size);
      mapped.fd_ = std::exchange(guard.fd, -1);
      return mapped;
    }
    ::munmap(address, static_cast<size_t>(size));
  }
  auto* buffer = new (std::nothrow) uint8_t[static_cast<size_t>(size)];
  if (buffer == nullptr) return Error{"out of memory reading file"};
  mapped.address_ = buffer;
  mapped.size_ = static_cast<size_t>(size);
  size_t done = 0;
  while (done < mapped.size_) {
    ssize_t n = ::pread(guard.fd, buffer + done, mapped.size_ - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("cannot read file");
    if (n == 0) return Error{kShrankWhileRead};
    done += static_cast<size_t>(n);
  }
  return mapped;
}

ByteView WindowReader::window(uint64_t offset, uint64_t length) {
  if (failure_ || offset >= size_) return ByteView();
  length = std::min(length, size_ - offset);
  if (fd_ < 0) return bytes_.clipped(offset, length);
  if (buffer_size_ < length) {
    buffer_ = std::make_unique_for_overwrite<uint8_t[]>(static_cast<size_t>(length));
    buffer_size_ = length;
  }
  size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd_, buffer_.get() + done, static_cast<size_t>(length) - done,
                              static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failure_ = n == 0 ? std::string(kShrankWhileRead) : "cannot read file: " + std::string(std::strerror(errno));
      return ByteView();
    }
    done += static_cast<size_t>(n);
  }
  return ByteView(buffer_.get(), static_cast<size_t>(length));
}

std::optional<std::string> MappedFile::read_failure() const {
  if (guard_ < 0) return std::nullopt;
  struct stat info {};
  if (::fstat(fd_, &info) != 0 || static_cast<uint64_t>(info.st_size) < size_) return kShrankWhileRead;
  if (guard_slots[guard_].caught.load(std::memory_order_acquire)) return kUnreadableWhileRead;
  return std::nullopt;
}

void MappedFile::release() {
  if (!address_) return;
  if (guard_ >= 0) {
    free_guard_slot(guard_);  // (before the unmap: the address range may be mapped again at once)
    ::munmap(address_, size_);
    ::close(fd_);
  } else {
    delete[] address_;
  }
  address_ = nullptr;
  size_ = 0;
  guard_ = -1;
  fd_ = -1;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : address_(std::exchange(other.address_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      guard_(std::exchange(other.guard_, -1)),
      fd_(std::exchange(other.fd_, -1)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    address_ = std::exchange(other.address_, nullptr);
    size_ = std::exchange(other.size_, 0);
    guard_ = std::exchange(other.guard_, -1);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

MappedFile::~MappedFile() { release(); }

}  // namespace tagwho
