// libFuzzer target: a disk image through The Sleuth Kit and tagwho's image source: partitions, NTFS
// volumes holding Windows, the SYSTEM hive, and every driver file read out of it. The bytes are given to
// TSK as an in-memory file (memfd: nothing is written to disk).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "source/image.hpp"
#include "source/tree.hpp"
#include "tagwho/source.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto trees = tagwho::source::open_image(path);
  if (trees) {
    tagwho::SourceList out;
    for (const auto& tree : *trees) tagwho::source::collect_windows_root(*tree, out);
    for (const tagwho::SourceFile& file : out.files) {
      auto bytes = file.read();
      (void)bytes;
    }
  }
  ::close(fd);
  return 0;
}
