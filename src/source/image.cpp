// Disk images through The Sleuth Kit: image formats (raw, E01 via libewf, VHD/VHDX via libvhdi, VMDK via
// libvmdk), partition tables (MBR, GPT) or a bare volume, NTFS. Everything is opened read-only.
#include "source/image.hpp"

#include <tsk/libtsk.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <mutex>

namespace tagwho::source {
namespace {

std::string tsk_message(const std::string& context) {
  const char* text = tsk_error_get();
  std::string message = text ? text : "";
  tsk_error_reset();
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  while (!message.empty() && message.back() == ' ') message.pop_back();
  return message.empty() ? context : context + ": " + message;
}

// The image and everything opened on it; TSK calls on it are serialised by `mutex`.
struct TskImage {
  TSK_IMG_INFO* image = nullptr;
  TSK_VS_INFO* volumes = nullptr;
  std::vector<TSK_FS_INFO*> file_systems;
  std::mutex mutex;
  ~TskImage() {
    for (TSK_FS_INFO* fs : file_systems) tsk_fs_close(fs);
    if (volumes) tsk_vs_close(volumes);
    if (image) tsk_img_close(image);
  }
};

struct FileCloser {
  void operator()(TSK_FS_FILE* file) const { tsk_fs_file_close(file); }
};
using TskFile = std::unique_ptr<TSK_FS_FILE, FileCloser>;

class TskVolume final : public Tree, public SourceReader, public std::enable_shared_from_this<TskVolume> {
 public:
  TskVolume(std::shared_ptr<TskImage> image, TSK_FS_INFO* fs, std::string prefix)
      : image_(std::move(image)), fs_(fs), prefix_(std::move(prefix)) {}

  Node root() const override {
    Node node;
    node.kind = Node::Kind::directory;
    node.address = fs_->root_inum;
    return node;
  }

  Result<std::vector<Node>> list(const Node& directory) const override {
    std::lock_guard<std::mutex> lock(image_->mutex);
    TSK_FS_DIR* dir = tsk_fs_dir_open_meta(fs_, directory.address);
    if (!dir) return Error{tsk_message("cannot read directory")};
    std::vector<Node> nodes;
    size_t count = tsk_fs_dir_getsize(dir);
    for (size_t i = 0; i < count; ++i) {
      TskFile file(tsk_fs_dir_get(dir, i));
      if (!file || !file->name || !file->name->name) continue;
      const TSK_FS_NAME* name = file->name;
      if (name->flags & TSK_FS_NAME_FLAG_UNALLOC) continue;  // deleted entries
      if (!std::strcmp(name->name, ".") || !std::strcmp(name->name, "..")) continue;
      Node node;
      node.name = name->name;
      node.address = name->meta_addr;
      const TSK_FS_META* meta = file->meta;
      if (meta && (meta->flags & TSK_FS_META_FLAG_UNALLOC)) continue;
      TSK_FS_META_TYPE_ENUM type = meta ? meta->type : TSK_FS_META_TYPE_UNDEF;
      if (type == TSK_FS_META_TYPE_DIR || (!meta && name->type == TSK_FS_NAME_TYPE_DIR))
        node.kind = Node::Kind::directory;
      else if (type == TSK_FS_META_TYPE_REG)
        node.kind = Node::Kind::file;
      if (meta) {
        node.size = meta->size > 0 ? static_cast<uint64_t>(meta->size) : 0;
        node.mtime = static_cast<int64_t>(meta->mtime);
      }
      nodes.push_back(std::move(node));
    }
    tsk_fs_dir_close(dir);
    std::sort(nodes.begin(), nodes.end(), [](const Node& a, const Node& b) {
      return a.name != b.name ? a.name < b.name : a.address < b.address;
    });
    // One name per file: NTFS may index a file under its long and its DOS 8.3 name; keep the long one.
    std::vector<Node> unique;
    for (Node& node : nodes) {
      auto same = std::find_if(unique.begin(), unique.end(), [&](const Node& u) {
        return u.address == node.address && u.kind == node.kind;
      });
      if (same == unique.end())
        unique.push_back(std::move(node));
      else if (node.name.size() > same->name.size())
        *same = std::move(node);
    }
    return unique;
  }

  Result<std::vector<uint8_t>> read_prefix(const Node& file, uint64_t length) const override {
    std::lock_guard<std::mutex> lock(image_->mutex);
    return read_locked(file.address, length, false);
  }

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
    Result<std::vector<uint8_t>> bytes = Error{""};
    {
      std::lock_guard<std::mutex> lock(image_->mutex);
      bytes = read_locked(file.address, kMaxImageFileSize, true);
    }
    if (!bytes) return Error{bytes.error()};
    return read_system_hive_bytes(*bytes);
  }

  Result<FileBytes> read(const SourceFile& file) const override {
    std::lock_guard<std::mutex> lock(image_->mutex);
    auto head = read_locked(file.address, 2, false);
    if (!head) return Error{head.error()};
    if (head->size() < 2 || (*head)[0] != 'M' || (*head)[1] != 'Z') return FileBytes(std::move(*head));
    auto bytes = read_locked(file.address, kMaxImageFileSize, true);
    if (!bytes) return Error{bytes.error()};
    return FileBytes(std::move(*bytes));
  }

 private:
  // Reads up to `limit` bytes from the start of a file; with `whole`, a larger file is an error.
  Result<std::vector<uint8_t>> read_locked(uint64_t address, uint64_t limit, bool whole) const {
    TskFile file(tsk_fs_file_open_meta(fs_, nullptr, address));
    if (!file || !file->meta) return Error{tsk_message("cannot open file in image")};
    uint64_t size = file->meta->size > 0 ? static_cast<uint64_t>(file->meta->size) : 0;
    if (whole && size > limit)
      return Error{"file too large to read from a disk image (" + std::to_string(size >> 20) + " MB, limit " +
                   std::to_string(limit >> 20) + " MB)"};
    std::vector<uint8_t> bytes(static_cast<size_t>(std::min(size, limit)));
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = tsk_fs_file_read(file.get(), static_cast<TSK_OFF_T>(done), reinterpret_cast<char*>(bytes.data() + done),
                                   bytes.size() - done, TSK_FS_FILE_READ_FLAG_NONE);
      if (n <= 0) return Error{tsk_message("read error at offset " + std::to_string(done))};
      done += static_cast<size_t>(n);
    }
    return bytes;
  }

  std::shared_ptr<TskImage> image_;
  TSK_FS_INFO* fs_;
  std::string prefix_;
};

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

// A container by its signature that The Sleuth Kit could open only as raw bytes.
bool container_damaged(const std::string& path, TSK_IMG_TYPE_ENUM type) {
  return !container_name(path).empty() && (type & TSK_IMG_TYPE_RAW) != 0;
}

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
  TSK_IMG_TYPE_ENUM supported = tsk_img_type_supported();
  if (supported & TSK_IMG_TYPE_RAW) names.push_back("raw");
  if (supported & TSK_IMG_TYPE_EWF_EWF) names.push_back("ewf");
  if (supported & TSK_IMG_TYPE_VHD_VHD) names.push_back("vhd");
  if (supported & TSK_IMG_TYPE_VMDK_VMDK) names.push_back("vmdk");
  if (supported & TSK_IMG_TYPE_AFF_ANY) names.push_back("aff");
  return names;
}

Result<std::vector<std::shared_ptr<Tree>>> open_image(const std::string& path) {
  auto image = std::make_shared<TskImage>();
  image->image = tsk_img_open_sing(path.c_str(), TSK_IMG_TYPE_DETECT, 0);
  if (!image->image) return Error{tsk_message("cannot open disk image")};

  struct Candidate {
    TSK_FS_INFO* fs;
    int ordinal;  // 1-based among allocated partitions; 0 for a bare volume
  };
  std::vector<Candidate> candidates;
  std::vector<int> bitlocker;
  int partitions = 0;
  image->volumes = tsk_vs_open(image->image, 0, TSK_VS_TYPE_DETECT);
  tsk_error_reset();
  auto is_bitlocker = [&](TSK_OFF_T offset) {
    char boot[16] = {};
    return tsk_img_read(image->image, offset, boot, sizeof boot) == sizeof boot && !std::memcmp(boot + 3, "-FVE-FS-", 8);
  };
  if (image->volumes) {
    for (TSK_PNUM_T i = 0; i < image->volumes->part_count; ++i) {
      const TSK_VS_PART_INFO* part = tsk_vs_part_get(image->volumes, i);
      if (!part || !(part->flags & TSK_VS_PART_FLAG_ALLOC)) continue;
      ++partitions;
      if (TSK_FS_INFO* fs = tsk_fs_open_vol(part, TSK_FS_TYPE_NTFS_DETECT))
        candidates.push_back({fs, partitions});
      else if (is_bitlocker(static_cast<TSK_OFF_T>(part->start) * image->volumes->block_size))
        bitlocker.push_back(partitions);
      tsk_error_reset();
    }
  } else if (TSK_FS_INFO* fs = tsk_fs_open_img(image->image, 0, TSK_FS_TYPE_NTFS_DETECT)) {
    candidates.push_back({fs, 0});
  } else if (is_bitlocker(0)) {
    bitlocker.push_back(0);
  }
  tsk_error_reset();
  for (const Candidate& candidate : candidates) image->file_systems.push_back(candidate.fs);  // closed with the image

  std::vector<std::pair<TSK_FS_INFO*, int>> windows;
  for (const Candidate& candidate : candidates) {
    TskVolume probe(image, candidate.fs, "");
    if (is_windows_root(probe)) windows.push_back({candidate.fs, candidate.ordinal});
  }
  if (windows.empty()) {
    std::string where = image->volumes ? std::to_string(partitions) + " partition(s)" : "no partition table";
    if (!bitlocker.empty())
      return Error{"BitLocker-encrypted volume (" + (bitlocker.front() ? "p" + std::to_string(bitlocker.front()) : "the image") +
                   "): not supported, decrypt it first (e.g. dislocker) and pass the decrypted volume"};
    if (candidates.empty() && container_damaged(path, image->image->itype))
      return Error{"damaged or unsupported " + container_name(path) + " image: only its raw bytes could be read"};
    if (candidates.empty())
      return Error{"no readable NTFS file system (" + where + "): damaged, encrypted or unsupported disk image"};
    return Error{"no NTFS volume holding Windows/System32 (" + where + ", " + std::to_string(candidates.size()) +
                 " NTFS)"};
  }
  std::vector<std::shared_ptr<Tree>> trees;
  for (auto [fs, ordinal] : windows) {
    std::string prefix = path + ":";
    if (windows.size() > 1) prefix += "p" + std::to_string(ordinal) + ":";
    trees.push_back(std::make_shared<TskVolume>(image, fs, prefix));
  }
  return trees;
}

}  // namespace tagwho::source
