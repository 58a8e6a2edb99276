// A folder on the local file system as a Tree (a mounted Windows volume, or a copy of one).
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "source/folder.hpp"

namespace tagwho::source {
namespace {

namespace fs = std::filesystem;

class FolderReader final : public SourceReader {
 public:
  Result<FileBytes> read(const SourceFile& file) const override {
    auto mapped = MappedFile::open(file.host_path);
    if (!mapped) return Error{mapped.error()};
    return FileBytes(std::move(*mapped));
  }
};

}  // namespace

std::shared_ptr<const SourceReader> folder_reader() {
  static const std::shared_ptr<const SourceReader> reader = std::make_shared<FolderReader>();
  return reader;
}

FolderTree::FolderTree(std::string root) : root_(std::move(root)) {}

Node FolderTree::root() const {
  Node node;
  node.name = "";
  node.kind = Node::Kind::directory;
  node.host_path = root_;
  return node;
}

Result<std::vector<Node>> FolderTree::list(const Node& directory) const {
  std::error_code error;
  fs::directory_iterator iterator(directory.host_path, fs::directory_options::none, error);
  if (error) return Error{"cannot read directory: " + error.message()};
  std::vector<Node> nodes;
  for (; iterator != fs::directory_iterator(); iterator.increment(error)) {
    if (error) return Error{"cannot read directory: " + error.message()};
    const fs::directory_entry& entry = *iterator;
    Node node;
    node.name = entry.path().filename().string();
    node.host_path = entry.path().string();
    std::error_code status_error;
    fs::file_status link = entry.symlink_status(status_error);
    if (status_error) continue;
    if (fs::is_directory(link)) {
      node.kind = Node::Kind::directory;
    } else if (fs::is_regular_file(link) || (fs::is_symlink(link) && fs::is_regular_file(entry.status(status_error)) &&
                                             !status_error)) {
      node.kind = Node::Kind::file;
      struct stat info {};
      if (::stat(node.host_path.c_str(), &info) == 0) {
        node.size = static_cast<uint64_t>(info.st_size);
        node.mtime = static_cast<int64_t>(info.st_mtime);
      }
    }
    nodes.push_back(std::move(node));
  }
  std::sort(nodes.begin(), nodes.end(), [](const Node& a, const Node& b) { return a.name < b.name; });
  return nodes;
}

Result<std::vector<uint8_t>> FolderTree::read_prefix(const Node& file, uint64_t length) const {
  std::ifstream in(file.host_path, std::ios::binary);
  if (!in) return Error{std::strerror(errno)};
  std::vector<uint8_t> bytes(static_cast<size_t>(length));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(length));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

std::string FolderTree::display(const std::string& relative) const {
  if (relative.empty()) return root_;
  return (fs::path(root_) / relative).string();
}

SourceFile FolderTree::make_file(const Node& node, const std::string& relative) const {
  SourceFile file;
  file.path = display(relative);
  file.host_path = node.host_path;
  file.size = node.size;
  file.mtime = node.mtime;
  file.reader = folder_reader();
  return file;
}

Result<HiveServices> FolderTree::read_hive(const Node& file) const { return read_system_hive(file.host_path); }

}  // namespace tagwho::source
