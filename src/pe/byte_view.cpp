// ByteView::c_string and MappedFile: the two pieces of byte access that are not header-only.
#include "tagwho/byte_view.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

Result<MappedFile> MappedFile::open(const std::string& path) {
  FdGuard guard{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (guard.fd < 0) return errno_error("cannot open file");
  struct stat info {};
  if (::fstat(guard.fd, &info) != 0) return errno_error("cannot stat file");
  if (!S_ISREG(info.st_mode)) return Error{"not a regular file"};

  MappedFile mapped;
  if (info.st_size == 0) return mapped;  // an empty view; mmap of length 0 would fail with EINVAL
  const auto size = static_cast<size_t>(info.st_size);
  void* address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, guard.fd, 0);
  if (address == MAP_FAILED) return errno_error("cannot map file");
  mapped.address_ = address;
  mapped.size_ = size;
  return mapped;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : address_(std::exchange(other.address_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (address_ != nullptr) ::munmap(address_, size_);
    address_ = std::exchange(other.address_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (address_ != nullptr) ::munmap(address_, size_);
}

}  // namespace tagwho
