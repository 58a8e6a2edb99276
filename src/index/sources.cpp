// The index's side of sources (mounted Windows roots and disk images): the service stored with each file,
// the missing driver services of each host, and reading indexed files again, inside images too.
#include <algorithm>

#include "index/store.hpp"

namespace tagwho {
namespace index_detail {

void bind_service(sql::Statement& s, int first, const std::optional<ServiceInfo>& service) {
  if (!service) {
    for (int i = 0; i < 7; ++i) s.bind_null(first + i);
    return;
  }
  s.bind(first, service->name).bind(first + 1, service->display_name).bind(first + 2, service->image_path)
      .bind(first + 3, service->start).bind(first + 4, service->type).bind(first + 5, service->group)
      .bind(first + 6, service->control_set);
}

std::optional<ServiceInfo> column_service(const sql::Statement& s, int first) {
  if (s.is_null(first)) return std::nullopt;
  ServiceInfo service;
  service.name = s.text(first);
  service.display_name = s.text(first + 1);
  service.image_path = s.text(first + 2);
  if (auto start = s.opt_i64(first + 3)) service.start = static_cast<uint32_t>(*start);
  if (auto type = s.opt_i64(first + 4)) service.type = static_cast<uint32_t>(*type);
  service.group = s.text(first + 5);
  service.control_set = s.text(first + 6);
  return service;
}

void store_missing_services(sqlite3* db, int64_t host, const std::vector<MissingService>& missing) {
  sql::Statement drop(db, "DELETE FROM missing_services WHERE host = ?");
  drop.bind(1, host).run();
  sql::Statement add(db, std::string("INSERT INTO missing_services(host, root, expected_path, ") + kServiceColumns +
                             ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const MissingService& entry : missing) {
    add.bind(1, host).bind(2, entry.root).bind(3, entry.expected_path);
    bind_service(add, 4, entry.service);
    add.run();
  }
}

std::vector<MissingService> read_missing_services(sqlite3* db, bool multi_host) {
  struct Row {
    std::string host;
    MissingService entry;
  };
  std::vector<Row> rows;
  sql::Statement s(db, std::string("SELECT h.name, m.root, m.expected_path, ") + kServiceColumns +
                           " FROM missing_services m JOIN hosts h ON h.id = m.host");
  while (s.step()) {
    Row row;
    row.host = s.text(0);
    row.entry.root = s.text(1);
    row.entry.expected_path = s.text(2);
    if (auto service = column_service(s, 3)) row.entry.service = std::move(*service);
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.host != b.host) return a.host < b.host;
    if (a.entry.root != b.entry.root) return path_less(a.entry.root, b.entry.root);
    return a.entry.service.name < b.entry.service.name;
  });
  std::vector<MissingService> missing;
  for (Row& row : rows) {
    if (multi_host) {
      row.entry.root = row.host + ":" + row.entry.root;
      if (!row.entry.expected_path.empty()) row.entry.expected_path = row.host + ":" + row.entry.expected_path;
    }
    missing.push_back(std::move(row.entry));
  }
  return missing;
}

void FileReopener::know(const SourceFile& file) {
  std::lock_guard<std::mutex> guard(lock_);
  known_[file.path] = file;
}

Result<FileBytes> FileReopener::read(const std::string& path) {
  SourceFile file;
  {
    std::lock_guard<std::mutex> guard(lock_);
    auto known = known_.find(path);
    if (known == known_.end()) {
      // Inside an image root ("ROOT:/..." or "ROOT:pN:/..."): open the image once, keep all its files.
      for (const std::string& root : roots_) {
        if (!inside_image(path, root)) continue;
        if (opened_images_.insert(root).second)
          for (SourceFile& found : open_sources({root}).files) known_[found.path] = std::move(found);
        known = known_.find(path);
        if (known == known_.end()) return Error{"no longer in its disk image"};
        break;
      }
    }
    if (known != known_.end()) file = known->second;
  }
  if (file.reader) return file.read();
  auto mapped = MappedFile::open(path);
  if (!mapped) return Error{mapped.error()};
  return FileBytes(std::move(*mapped));
}

}  // namespace index_detail
}  // namespace tagwho
