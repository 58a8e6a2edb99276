// Bounds-checked read-only access to a file's bytes. Every read of untrusted input goes through ByteView:
// reads past the end return std::nullopt instead of touching memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tagwho/result.hpp"

namespace tagwho {

class ByteView {
 public:
  ByteView() = default;
  ByteView(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // True when [offset, offset+length) lies inside the view (overflow-safe).
  bool contains(uint64_t offset, uint64_t length) const {
    return offset <= size_ && length <= size_ - offset;
  }

  // The sub-view [offset, offset+length), or nullopt when it does not fit.
  std::optional<ByteView> sub(uint64_t offset, uint64_t length) const {
    if (!contains(offset, length)) return std::nullopt;
    return ByteView(data_ + offset, static_cast<size_t>(length));
  }
  // The sub-view [offset, offset+length) clipped to the view (possibly empty).
  ByteView clipped(uint64_t offset, uint64_t length) const {
    if (offset >= size_) return ByteView(data_ + size_, 0);
    uint64_t available = size_ - offset;
    return ByteView(data_ + offset, static_cast<size_t>(length < available ? length : available));
  }

  template <typename T>
  std::optional<T> read(uint64_t offset) const {  // little-endian host assumed (x86-64, arm64)
    if (!contains(offset, sizeof(T))) return std::nullopt;
    T value;
    std::memcpy(&value, data_ + offset, sizeof(T));
    return value;
  }
  std::optional<uint8_t> u8(uint64_t offset) const { return read<uint8_t>(offset); }
  std::optional<uint16_t> u16(uint64_t offset) const { return read<uint16_t>(offset); }
  std::optional<uint32_t> u32(uint64_t offset) const { return read<uint32_t>(offset); }
  std::optional<uint64_t> u64(uint64_t offset) const { return read<uint64_t>(offset); }

  // A NUL-terminated string starting at offset, at most max_length bytes; nullopt when unterminated.
  std::optional<std::string_view> c_string(uint64_t offset, size_t max_length) const;

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// One pass over a whole file's bytes, a window at a time, for a reader of every byte (the literal scan),
// most of which the analysis never looks at again. Over a mapped file it reads with pread into a buffer
// small enough to stay in the cache: two threads read the bench corpus's 431.6 MB so in 28-32 ms, where
// faulting the pages of their mappings in took 46-55 ms, and 75-90 ms with MAP_POPULATE (a process's page
// tables are shared: its threads' faults and unmaps wait for each other). Over bytes in memory (a copy, a
// file read out of a disk image), a window is a view of them.
class WindowReader {
 public:
  static constexpr uint64_t kFileStep = uint64_t{256} << 10;  // (128 KB to 1 MB read as fast)
  static constexpr uint64_t kMemoryStep = uint64_t{1} << 30;  // (hs_scan takes a 32-bit length)
  explicit WindowReader(ByteView bytes, uint64_t step = kMemoryStep)
      : bytes_(bytes), size_(bytes.size()), step_(aligned(step)) {}
  // Reads the first `size` bytes of the open file fd (not owned; it must stay open while this is used).
  WindowReader(int fd, uint64_t size, uint64_t step = kFileStep) : fd_(fd), size_(size), step_(aligned(step)) {}
  uint64_t size() const { return size_; }
  // How many bytes to ask for at a time: a multiple of 4 (ARM64 words stay aligned from one to the next).
  uint64_t step() const { return step_; }
  // The bytes [offset, offset + length) clipped to size(), valid until the next call. Empty when they could
  // not be read: then failure() says why (the file shrank, or an I/O error).
  ByteView window(uint64_t offset, uint64_t length);
  const std::optional<std::string>& failure() const { return failure_; }

 private:
  static uint64_t aligned(uint64_t step) { return step < 4 ? 4 : step & ~uint64_t{3}; }
  ByteView bytes_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t step_;
  std::unique_ptr<uint8_t[]> buffer_;  // (not zeroed: every byte handed out was read first)
  uint64_t buffer_size_ = 0;
  std::optional<std::string> failure_;
};

// Files larger than this are not analysed: a one-line error for a PE ("MZ"), the first bytes only for
// anything else (enough to see it is not a PE). The largest Windows drivers are about 100 MB.
constexpr uint64_t kMaxFileSize = 256ull << 20;

// A whole file's bytes, opened O_RDONLY and never written: a private read-only mapping of the file (no copy
// of it), or, where the file system cannot map it, a copy read into memory. A mapped file that shrinks
// reads as zeros past its new end: within the last page the kernel gives zeros, and a read of a page wholly
// past the end, which would kill the process with SIGBUS, gets zero pages from MappedFile's SIGBUS handler.
// A page that cannot be read (an I/O error of a failing disk) is caught the same way. read_failure() says
// whether either happened; callers check it after they are done with the bytes and turn the file into an
// error (anything learnt from zeros is not evidence). A file that grows is read up to the size
// it had when opened. Above max_size, see kMaxFileSize.
class MappedFile {
 public:
  static Result<MappedFile> open(const std::string& path, uint64_t max_size = kMaxFileSize);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  ByteView view() const { return ByteView(address_, size_); }
  // A pass over every byte: through pread on the file when it is mapped (see WindowReader), else the copy.
  WindowReader windows() const { return guard_ >= 0 ? WindowReader(fd_, size_) : WindowReader(view()); }
  // The one-line error when reads of the mapping returned zeros: the file is now shorter than it was
  // mapped, or the SIGBUS handler caught a read (I/O error, or a file that shrank and grew again);
  // nullopt when every read was the file's.
  std::optional<std::string> read_failure() const;
  // Whether the bytes are a mapping of the file (else a copy).
  bool mapped() const { return guard_ >= 0; }

 private:
  MappedFile() = default;
  void release();
  uint8_t* address_ = nullptr;
  size_t size_ = 0;
  int guard_ = -1;  // the mapping's slot in the SIGBUS handler's table; -1 for a copy
  int fd_ = -1;     // the file, kept open while mapped: its size now (read_failure())
};

// read_failure()'s errors.
constexpr const char* kShrankWhileRead = "file shrank while being read";
constexpr const char* kUnreadableWhileRead = "file could not be read while being analysed (I/O error, or it shrank and grew again)";

}  // namespace tagwho
