// Internal: folders on the local file system.
#pragma once
#include <memory>
#include <string>

#include "source/tree.hpp"

namespace tagwho::source {

std::shared_ptr<const SourceReader> folder_reader();  // memory-maps SourceFile::host_path

class FolderTree final : public Tree {
 public:
  explicit FolderTree(std::string root);
  Node root() const override;
  Result<std::vector<Node>> list(const Node& directory) const override;
  Result<std::vector<uint8_t>> read_prefix(const Node& file, uint64_t length) const override;
  std::string display(const std::string& relative) const override;
  SourceFile make_file(const Node& node, const std::string& relative) const override;
  Result<HiveServices> read_hive(const Node& file) const override;

 private:
  std::string root_;
};

}  // namespace tagwho::source
