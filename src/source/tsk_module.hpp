// Internal: the interface between libtagwho and its Sleuth Kit module (libtagwho_tsk.so), which alone links
// The Sleuth Kit. TSK pulls in some 30 shared libraries (libewf, libvhdi, libvmdk, afflib and through it
// curl, GnuTLS, Kerberos...): loading them only when a disk image is opened keeps every other command's
// start-up at a third of the time (6 ms instead of 15 ms for `tagwho --version`). Both sides are built
// from this tree by one compiler, so C++ types may cross; the entry points have C linkage for dlsym.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "source/tree.hpp"

namespace tagwho::source {

// One NTFS volume of an opened image. Thread-safe (calls on one image are serialised inside).
class TskVolumeApi {
 public:
  virtual ~TskVolumeApi() = default;
  virtual uint64_t root_address() const = 0;
  // A directory's entries (allocated, without "." and ".."), one per file (long names over 8.3 ones).
  virtual Result<std::vector<Node>> list(uint64_t directory) const = 0;
  // Up to `limit` bytes from the start of a file; with `whole`, a larger file is an error.
  virtual Result<std::vector<uint8_t>> read(uint64_t file, uint64_t limit, bool whole) const = 0;
};

// What opening an image found: its NTFS volumes (ordinal: 1-based among allocated partitions, 0 for a
// bare volume) and what the caller needs to explain an image without Windows.
struct TskOpened {
  struct Volume {
    std::shared_ptr<TskVolumeApi> api;
    int ordinal = 0;
  };
  std::vector<Volume> volumes;
  bool has_partition_table = false;
  int partitions = 0;              // allocated partitions
  std::vector<int> bitlocker;      // ordinals of BitLocker-encrypted volumes
  bool opened_as_raw = false;      // The Sleuth Kit read the file as raw bytes (no container format)
};

// dlsym names and types of the module's entry points (results through pointers: C linkage).
constexpr const char* kTskOpenSymbol = "tagwho_tsk_open";
constexpr const char* kTskFormatsSymbol = "tagwho_tsk_formats";
using TskOpenFunction = void (*)(const std::string* path, Result<TskOpened>* out);
using TskFormatsFunction = void (*)(std::vector<std::string>* out);

}  // namespace tagwho::source
