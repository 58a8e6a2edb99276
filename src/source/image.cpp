// Disk images: recognised here, read through The Sleuth Kit module (libtagwho_tsk.so, src/tsk/), which is
// loaded on the first image opened (see source/tsk_module.hpp for why). Volumes become Trees here: which
// hold Windows, display paths, services. Everything is opened read-only.
#include "source/image.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "source/tsk_module.hpp"

namespace tagwho::source {
namespace {

bool has_at(const std::vector<uint8_t>& bytes, size_t offset, const char* text, size_t length) {
  return bytes.size() >= offset + length && std::memcmp(bytes.data() + offset, text, length) == 0;
}

std::string lower_extension(const std::string& path) {
  size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// The container format a file's signature claims (E01, VHD, VHDX, VMDK), "" for raw.
std::string container_name(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> head(32);
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
  if (has_at(head, 0, "EVF", 3)) return "E01";
  if (has_at(head, 0, "vhdxfile", 8)) return "VHDX";
  if (has_at(head, 0, "conectix", 8)) return "VHD";
  if (has_at(head, 0, "KDMV", 4) || has_at(head, 0, "COWD", 4) || has_at(head, 0, "# Disk DescriptorFile", 21))
    return "VMDK";
  return "";
}

// The loaded module's entry points (or why it could not be loaded), found once per process: next to the
// executable (build tree, and test or fuzz executables one level below it), in the installed
// ../lib/tagwho, then in the build tree this library was compiled for.
struct TskModule {
  TskOpenFunction open = nullptr;
  TskFormatsFunction formats = nullptr;
  std::string error;
};

const TskModule& tsk_module() {
  static const TskModule module = [] {
    namespace fs = std::filesystem;
    TskModule loaded;
    std::error_code error;
    fs::path exe_dir = fs::read_symlink("/proc/self/exe", error).parent_path();
    std::vector<fs::path> candidates;
    if (!error) {
      candidates.push_back(exe_dir / "libtagwho_tsk.so");
      candidates.push_back(exe_dir.parent_path() / "libtagwho_tsk.so");
      candidates.push_back(exe_dir.parent_path() / "lib" / "tagwho" / "libtagwho_tsk.so");
    }
    candidates.push_back(fs::path(TAGWHO_MODULE_DIR) / "libtagwho_tsk.so");
    std::string why = "libtagwho_tsk.so not found next to the tagwho executable or in " TAGWHO_MODULE_DIR;
    for (const fs::path& candidate : candidates) {
      if (!fs::exists(candidate, error)) continue;
      // RTLD_LOCAL: the libraries TSK brings (libewf, libvmdk, libbfio...) bind among themselves, as in
      // the Sleuth Kit's own tools, never to anything else in this process.
      void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        const char* text = dlerror();
        why = "cannot load " + candidate.string() + ": " + (text ? text : "unknown error");
        continue;
      }
      loaded.open = reinterpret_cast<TskOpenFunction>(dlsym(handle, kTskOpenSymbol));
      loaded.formats = reinterpret_cast<TskFormatsFunction>(dlsym(handle, kTskFormatsSymbol));
      if (loaded.open && loaded.formats) return loaded;
      why = candidate.string() + ": not a tagwho Sleuth Kit module";
      loaded = TskModule{};
    }
    loaded.error = "disk images cannot be read: " + why;
    return loaded;
  }();
  return module;
}

// An NTFS volume of an image as a Tree (and the reader of its files).
class ImageVolume final : public Tree, public SourceReader, public std::enable_shared_from_this<ImageVolume> {
 public:
  ImageVolume(std::shared_ptr<TskVolumeApi> api, std::string prefix) : api_(std::move(api)), prefix_(std::move(prefix)) {}

  Node root() const override {
    Node node;
    node.kind = Node::Kind::directory;
    node.address = api_->root_address();
    return node;
  }

  Result<std::vector<Node>> list(const Node& directory) const override { return api_->list(directory.address); }

  Result<std::vector<uint8_t>> read_prefix(const Node& file, uint64_t length) const override {
    return api_->read(file.address, length, false);
  }

  const std::shared_ptr<TskVolumeApi>& api() const { return api_; }

  std::string display(const std::string& relative) const override {
    return relative.empty() ? prefix_ : prefix_ + "/" + relative;
  }

  SourceFile make_file(const Node& node, const std::string& relative) const override {
    SourceFile file;
    file.path = display(relative);
    file.address = node.address;
    file.size = node.size;
    file.mtime = node.mtime;
    file.reader = shared_from_this();
    return file;
  }

  Result<HiveServices> read_hive(const Node& file) const override {
    auto bytes = api_->read(file.address, kMaxImageFileSize, true);
    if (!bytes) return Error{bytes.error()};
    return read_system_hive_bytes(*bytes);
  }

  Result<FileBytes> read(const SourceFile& file) const override {
    auto head = api_->read(file.address, 2, false);
    if (!head) return Error{head.error()};
    if (head->size() < 2 || (*head)[0] != 'M' || (*head)[1] != 'Z') return FileBytes(std::move(*head));
    auto bytes = api_->read(file.address, kMaxImageFileSize, true);
    if (!bytes) return Error{bytes.error()};
    return FileBytes(std::move(*bytes));
  }

 private:
  std::shared_ptr<TskVolumeApi> api_;
  std::string prefix_;
};

}  // namespace

bool looks_like_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> head(4096);
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
  if (has_at(head, 0, "EVF\x09\x0d\x0a\xff\x00", 8) || has_at(head, 0, "EVF2", 4) || has_at(head, 0, "vhdxfile", 8) ||
      has_at(head, 0, "conectix", 8) || has_at(head, 0, "KDMV", 4) || has_at(head, 0, "COWD", 4) ||
      has_at(head, 0, "# Disk DescriptorFile", 21) || has_at(head, 3, "NTFS    ", 8) ||
      has_at(head, 510, "\x55\xaa", 2))
    return true;
  // A fixed VHD has its footer at the end only.
  in.clear();
  in.seekg(-512, std::ios::end);
  std::vector<uint8_t> tail(8);
  if (in && in.read(reinterpret_cast<char*>(tail.data()), 8) && has_at(tail, 0, "conectix", 8)) return true;
  static const char* const kExtensions[] = {".raw", ".dd", ".img", ".001", ".e01", ".vhd", ".vhdx", ".vmdk"};
  std::string ext = lower_extension(path);
  return std::find(std::begin(kExtensions), std::end(kExtensions), ext) != std::end(kExtensions);
}

std::vector<std::string> tsk_formats() {
  std::vector<std::string> names;
  if (tsk_module().formats) tsk_module().formats(&names);
  return names;
}

Result<std::vector<std::shared_ptr<Tree>>> open_image(const std::string& path) {
  const TskModule& module = tsk_module();
  if (!module.open) return Error{module.error};
  Result<TskOpened> opened = Error{""};
  module.open(&path, &opened);
  if (!opened) return Error{opened.error()};

  std::vector<std::pair<std::shared_ptr<ImageVolume>, int>> windows;
  for (const TskOpened::Volume& volume : opened->volumes) {
    auto tree = std::make_shared<ImageVolume>(volume.api, "");
    if (is_windows_root(*tree)) windows.push_back({tree, volume.ordinal});
  }
  if (windows.empty()) {
    std::string where = opened->has_partition_table ? std::to_string(opened->partitions) + " partition(s)" : "no partition table";
    if (!opened->bitlocker.empty())
      return Error{"BitLocker-encrypted volume (" +
                   (opened->bitlocker.front() ? "p" + std::to_string(opened->bitlocker.front()) : "the image") +
                   "): not supported, decrypt it first (e.g. dislocker) and pass the decrypted volume"};
    const std::string container = container_name(path);
    if (opened->volumes.empty() && !container.empty() && opened->opened_as_raw)
      return Error{"damaged or unsupported " + container + " image: only its raw bytes could be read"};
    if (opened->volumes.empty())
      return Error{"no readable NTFS file system (" + where + "): damaged, encrypted or unsupported disk image"};
    return Error{"no NTFS volume holding Windows/System32 (" + where + ", " + std::to_string(opened->volumes.size()) +
                 " NTFS)"};
  }
  std::vector<std::shared_ptr<Tree>> trees;
  for (const auto& [probe, ordinal] : windows) {
    std::string prefix = path + ":";
    if (windows.size() > 1) prefix += "p" + std::to_string(ordinal) + ":";
    trees.push_back(std::make_shared<ImageVolume>(probe->api(), prefix));
  }
  return trees;
}

}  // namespace tagwho::source
