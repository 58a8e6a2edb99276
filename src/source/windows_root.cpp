// The places drivers live in a Windows installation, resolved case-insensitively as Windows would.
#include <algorithm>
#include <cctype>
#include <map>

#include "source/tree.hpp"

namespace tagwho::source {
namespace {

// Path order: component by component, bytes within a component (as the folder walk sorts).
bool path_less(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    if (a[i] == '/') return true;
    if (b[i] == '/') return false;
    return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
  }
  return a.size() < b.size();
}

struct Collector {
  const Tree& tree;
  SourceList& out;
  std::map<std::string, SourceFile> files;  // folded relative path -> file

  void add(const Node& node, const std::string& relative) {
    std::string key = fold_case(relative);
    if (!files.count(key)) files.emplace(key, tree.make_file(node, relative));
  }

  std::optional<std::vector<Node>> list(const Node& directory, const std::string& relative) {
    auto entries = tree.list(directory);
    if (!entries) {
      out.problems.push_back({tree.display(relative), entries.error()});
      return std::nullopt;
    }
    return std::move(*entries);
  }

  void walk(const Node& directory, const std::string& relative, int depth = 0) {
    if (depth > 64) return;  // a corrupt volume could loop
    auto entries = list(directory, relative);
    if (!entries) return;
    for (const Node& entry : *entries) {
      std::string path = relative + "/" + entry.name;
      if (entry.kind == Node::Kind::directory)
        walk(entry, path, depth + 1);
      else if (entry.kind == Node::Kind::file)
        add(entry, path);
    }
  }

  // Follows components from the root case-insensitively; the relative path with the names as found.
  std::optional<std::pair<Node, std::string>> resolve(const std::vector<std::string>& components) {
    Node node = tree.root();
    std::string relative;
    for (const std::string& component : components) {
      if (node.kind != Node::Kind::directory) return std::nullopt;
      auto entries = tree.list(node);
      if (!entries) return std::nullopt;
      const Node* child = find_child(*entries, component);
      if (!child) return std::nullopt;
      node = *child;
      relative += (relative.empty() ? "" : "/") + node.name;
    }
    return std::make_pair(node, relative);
  }

  // The path with its leading components as found on the volume (letter case), the rest as written.
  std::string resolve_prefix(const std::vector<std::string>& components) {
    Node node = tree.root();
    std::string relative;
    bool found = true;
    for (const std::string& component : components) {
      std::string name = component;
      if (found && node.kind == Node::Kind::directory) {
        auto entries = tree.list(node);
        const Node* child = entries ? find_child(*entries, component) : nullptr;
        if (child) {
          node = *child;
          name = child->name;
        } else {
          found = false;
        }
      } else {
        found = false;
      }
      relative += (relative.empty() ? "" : "/") + name;
    }
    return relative;
  }
};

std::string extension(const std::string& name) {
  size_t dot = name.rfind('.');
  return dot == std::string::npos ? "" : fold_case(name.substr(dot));
}

}  // namespace

std::string fold_case(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

const Node* find_child(const std::vector<Node>& entries, const std::string& name) {
  for (const Node& entry : entries)
    if (entry.name == name) return &entry;
  std::string folded = fold_case(name);
  for (const Node& entry : entries)
    if (fold_case(entry.name) == folded) return &entry;
  return nullptr;
}

bool is_windows_root(const Tree& tree) {
  auto top = tree.list(tree.root());
  if (!top) return false;
  const Node* windows = find_child(*top, "Windows");
  if (!windows || windows->kind != Node::Kind::directory) return false;
  auto inside = tree.list(*windows);
  if (!inside) return false;
  const Node* system32 = find_child(*inside, "System32");
  return system32 && system32->kind == Node::Kind::directory;
}

bool is_kernel_module(const std::vector<uint8_t>& header, const std::string& name) {
  auto u16 = [&](size_t at) -> std::optional<uint16_t> {
    if (at + 2 > header.size()) return std::nullopt;
    return static_cast<uint16_t>(header[at] | header[at + 1] << 8);
  };
  auto u32 = [&](size_t at) -> std::optional<uint32_t> {
    if (at + 4 > header.size()) return std::nullopt;
    return static_cast<uint32_t>(header[at] | header[at + 1] << 8 | header[at + 2] << 16 |
                                 static_cast<uint32_t>(header[at + 3]) << 24);
  };
  if (u16(0) != uint16_t{0x5a4d}) return false;
  auto pe = u32(0x3c);
  if (!pe || *pe > header.size() || u32(*pe) != uint32_t{0x4550}) return false;
  auto characteristics = u16(*pe + 4 + 18);
  auto subsystem = u16(*pe + 24 + 68);  // same offset in PE32 and PE32+ optional headers
  if (!characteristics || subsystem != uint16_t{1}) return false;  // IMAGE_SUBSYSTEM_NATIVE
  std::string folded = fold_case(name);
  bool kernel = folded.rfind("ntoskrnl", 0) == 0 || folded.rfind("ntkrnl", 0) == 0 || folded == "ntkrla57.exe";
  return (*characteristics & 0x2000) != 0 || extension(folded) == ".sys" || kernel;  // IMAGE_FILE_DLL
}

void collect_windows_root(const Tree& tree, SourceList& out) {
  Collector collector{tree, out, {}};
  auto windows = collector.resolve({"Windows"});
  auto system32 = collector.resolve({"Windows", "System32"});
  if (!windows || !system32) return;
  const std::string& windows_name = windows->second;

  // 1. System32/drivers and the driver store, every file (PE by content).
  if (auto drivers = collector.resolve({"Windows", "System32", "drivers"}))
    if (drivers->first.kind == Node::Kind::directory) collector.walk(drivers->first, drivers->second);
  if (auto store = collector.resolve({"Windows", "System32", "DriverStore", "FileRepository"}))
    if (store->first.kind == Node::Kind::directory) collector.walk(store->first, store->second);

  // 2. Kernel modules directly in System32 (ntoskrnl.exe, hal.dll, kernel-mode DLLs): judged by header.
  if (auto entries = collector.list(system32->first, system32->second)) {
    for (const Node& entry : *entries) {
      if (entry.kind != Node::Kind::file) continue;
      std::string ext = extension(entry.name);
      if (ext != ".exe" && ext != ".dll" && ext != ".sys") continue;
      auto header = tree.read_prefix(entry, 4096);
      if (header && is_kernel_module(*header, entry.name)) collector.add(entry, system32->second + "/" + entry.name);
    }
  }

  // 3. The services of the SYSTEM hive: attach them to their files, add files found only through them.
  auto hive = collector.resolve({"Windows", "System32", "config", "SYSTEM"});
  if (hive && hive->first.kind == Node::Kind::file) {
    auto services = tree.read_hive(hive->first);
    if (!services) {
      out.problems.push_back({tree.display(hive->second), services.error()});
    } else {
      for (const ServiceInfo& service : services->services) {
        if (!is_driver_service(service)) continue;
        auto components = image_path_components(service, windows_name);
        auto found = components ? collector.resolve(*components) : std::nullopt;
        if (!found || found->first.kind != Node::Kind::file) {
          std::string expected;
          if (components) expected = tree.display(collector.resolve_prefix(*components));
          out.missing.push_back({tree.display(""), expected, service});
          continue;
        }
        collector.add(found->first, found->second);
        SourceFile& file = collector.files.at(fold_case(found->second));
        if (!file.service) file.service = service;  // services are sorted by name: the first one wins
      }
    }
  }

  std::vector<SourceFile> files;
  for (auto& [key, file] : collector.files) files.push_back(std::move(file));
  std::sort(files.begin(), files.end(),
            [](const SourceFile& a, const SourceFile& b) { return path_less(a.path, b.path); });
  for (SourceFile& file : files) {
    file.root = tree.display("");
    out.files.push_back(std::move(file));
  }
}

}  // namespace tagwho::source
