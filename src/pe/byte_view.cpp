// ByteView::c_string and MappedFile: the two pieces of byte access that are not header-only.
#include "tagwho/byte_view.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
  auto* buffer = new (std::nothrow) uint8_t[static_cast<size_t>(size)];
  if (buffer == nullptr) return Error{"out of memory reading file"};
  mapped.address_ = buffer;
  mapped.size_ = static_cast<size_t>(size);
  size_t done = 0;
  while (done < mapped.size_) {
    ssize_t n = ::pread(guard.fd, buffer + done, mapped.size_ - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("cannot read file");
    if (n == 0)
      return Error{"file shrank while being read (" + std::to_string(done) + " of " + std::to_string(mapped.size_) +
                   " bytes)"};
    done += static_cast<size_t>(n);
  }
  return mapped;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : address_(std::exchange(other.address_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    delete[] address_;
    address_ = std::exchange(other.address_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { delete[] address_; }

}  // namespace tagwho
