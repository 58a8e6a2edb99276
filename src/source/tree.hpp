// Internal: a read-only directory tree the Windows-root logic walks, whether it is a folder on the local
// file system or an NTFS volume inside a disk image.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tagwho/result.hpp"
#include "tagwho/service.hpp"
#include "tagwho/source.hpp"

namespace tagwho {

// How SourceFile::read gets bytes for the files of one source.
class SourceReader {
 public:
  virtual ~SourceReader() = default;
  virtual Result<FileBytes> read(const SourceFile& file) const = 0;
};

namespace source {

struct Node {
  enum class Kind { file, directory, other };
  std::string name;
  Kind kind = Kind::other;
  uint64_t size = 0;
  int64_t mtime = 0;
  uint64_t address = 0;   // image: metadata address
  std::string host_path;  // folder: the path on the local file system
};

class Tree {
 public:
  virtual ~Tree() = default;
  virtual Node root() const = 0;
  // Entries of a directory sorted by name (bytes), without "." and "..". Symlinked directories are "other"
  // (never entered); symlinks to regular files are files.
  virtual Result<std::vector<Node>> list(const Node& directory) const = 0;
  // The first `length` bytes of a file (fewer when the file is shorter).
  virtual Result<std::vector<uint8_t>> read_prefix(const Node& file, uint64_t length) const = 0;
  // Display path of a path relative to the tree's root ("Windows/System32/drivers/x.sys").
  virtual std::string display(const std::string& relative) const = 0;
  // The input file for a node.
  virtual SourceFile make_file(const Node& node, const std::string& relative) const = 0;
  virtual Result<HiveServices> read_hive(const Node& file) const = 0;
};

// ASCII case folding, as Windows compares names (enough for the folders and files drivers live in).
std::string fold_case(std::string text);

// The child named `name` (exact match first, else the first case-insensitive match in name order).
const Node* find_child(const std::vector<Node>& entries, const std::string& name);

// True when the tree's root holds Windows/System32 (any letter case).
bool is_windows_root(const Tree& tree);

// Adds the files of the Windows installation at the tree's root (drivers, driver store, kernel modules,
// registry-named ImagePaths) to `out`, with their services; missing driver files go to out.missing.
void collect_windows_root(const Tree& tree, SourceList& out);

// Kernel module test on a file's first bytes: a PE with the native subsystem that is a DLL, a .sys, or
// the kernel itself (ntoskrnl*.exe, ntkrnl*.exe, ntkrla57.exe). Native user-mode programs (smss.exe,
// autochk.exe) are not DLLs and so are left out.
bool is_kernel_module(const std::vector<uint8_t>& header, const std::string& name);

}  // namespace source
}  // namespace tagwho
