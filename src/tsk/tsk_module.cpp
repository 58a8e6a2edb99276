// The Sleuth Kit module (libtagwho_tsk.so, loaded by source/image.cpp when a disk image is opened): image
// formats (raw, E01 via libewf, VHD/VHDX via libvhdi, VMDK via libvmdk), partition tables (MBR, GPT) or a
// bare volume, NTFS. Everything is opened read-only. Only TSK work here; what a volume means (Windows or
// not, display paths, services) is decided in libtagwho.
#include <tsk/libtsk.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "source/tsk_module.hpp"

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

class TskVolume final : public TskVolumeApi {
 public:
  TskVolume(std::shared_ptr<TskImage> image, TSK_FS_INFO* fs) : image_(std::move(image)), fs_(fs) {}

  uint64_t root_address() const override { return fs_->root_inum; }

  Result<std::vector<Node>> list(uint64_t directory) const override {
    std::lock_guard<std::mutex> lock(image_->mutex);
    TSK_FS_DIR* dir = tsk_fs_dir_open_meta(fs_, directory);
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

  Result<std::vector<uint8_t>> read(uint64_t address, uint64_t limit, bool whole) const override {
    std::lock_guard<std::mutex> lock(image_->mutex);
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

 private:
  std::shared_ptr<TskImage> image_;
  TSK_FS_INFO* fs_;
};

Result<TskOpened> open_image(const std::string& path) {
  auto image = std::make_shared<TskImage>();
  image->image = tsk_img_open_sing(path.c_str(), TSK_IMG_TYPE_DETECT, 0);
  if (!image->image) return Error{tsk_message("cannot open disk image")};
  TskOpened out;
  out.opened_as_raw = (image->image->itype & TSK_IMG_TYPE_RAW) != 0;
  image->volumes = tsk_vs_open(image->image, 0, TSK_VS_TYPE_DETECT);
  tsk_error_reset();
  out.has_partition_table = image->volumes != nullptr;
  auto is_bitlocker = [&](TSK_OFF_T offset) {
    char boot[16] = {};
    return tsk_img_read(image->image, offset, boot, sizeof boot) == sizeof boot && !std::memcmp(boot + 3, "-FVE-FS-", 8);
  };
  std::vector<std::pair<TSK_FS_INFO*, int>> found;
  if (image->volumes) {
    for (TSK_PNUM_T i = 0; i < image->volumes->part_count; ++i) {
      const TSK_VS_PART_INFO* part = tsk_vs_part_get(image->volumes, i);
      if (!part || !(part->flags & TSK_VS_PART_FLAG_ALLOC)) continue;
      ++out.partitions;
      if (TSK_FS_INFO* fs = tsk_fs_open_vol(part, TSK_FS_TYPE_NTFS_DETECT))
        found.push_back({fs, out.partitions});
      else if (is_bitlocker(static_cast<TSK_OFF_T>(part->start) * image->volumes->block_size))
        out.bitlocker.push_back(out.partitions);
      tsk_error_reset();
    }
  } else if (TSK_FS_INFO* fs = tsk_fs_open_img(image->image, 0, TSK_FS_TYPE_NTFS_DETECT)) {
    found.push_back({fs, 0});
  } else if (is_bitlocker(0)) {
    out.bitlocker.push_back(0);
  }
  tsk_error_reset();
  for (const auto& [fs, ordinal] : found) image->file_systems.push_back(fs);  // closed with the image
  for (const auto& [fs, ordinal] : found)
    out.volumes.push_back(TskOpened::Volume{std::make_shared<TskVolume>(image, fs), ordinal});
  return out;
}

}  // namespace
}  // namespace tagwho::source

extern "C" __attribute__((visibility("default"))) void tagwho_tsk_open(const std::string* path,
                                                                       tagwho::Result<tagwho::source::TskOpened>* out) {
  *out = tagwho::source::open_image(*path);
}

extern "C" __attribute__((visibility("default"))) void tagwho_tsk_formats(std::vector<std::string>* out) {
  out->clear();
  TSK_IMG_TYPE_ENUM supported = tsk_img_type_supported();
  if (supported & TSK_IMG_TYPE_RAW) out->push_back("raw");
  if (supported & TSK_IMG_TYPE_EWF_EWF) out->push_back("ewf");
  if (supported & TSK_IMG_TYPE_VHD_VHD) out->push_back("vhd");
  if (supported & TSK_IMG_TYPE_VMDK_VMDK) out->push_back("vmdk");
  if (supported & TSK_IMG_TYPE_AFF_ANY) out->push_back("aff");
}
