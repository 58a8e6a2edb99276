// Test helper: writes a minimal Windows registry hive (regf) from a text description, so the tests can
// build an offline SYSTEM hive without Windows or a template hive.
// Usage: make_hive OUT < SPEC. SPEC lines (tab-separated): "KEY\PATH" creates a key;
// "KEY\PATH<TAB>NAME<TAB>sz|expand|dword<TAB>VALUE" sets a value (creating the key).
// Only what libregf and Windows need to read a hive: a base block, one hive bin, nk/lh/vk cells.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Value {
  std::string name;
  uint32_t type = 0;
  std::vector<uint8_t> data;
};

struct Key {
  std::string name;
  std::map<std::string, std::unique_ptr<Key>> children;  // by upper-case name (the order Windows keeps)
  std::vector<Value> values;
};

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

Key* find_or_add(Key& root, const std::string& path) {
  Key* key = &root;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('\\', start);
    if (end == std::string::npos) end = path.size();
    std::string name = path.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    auto& slot = key->children[upper(name)];
    if (!slot) {
      slot = std::make_unique<Key>();
      slot->name = name;
    }
    key = slot.get();
  }
  return key;
}

class Writer {
 public:
  std::vector<uint8_t> bins = std::vector<uint8_t>(32, 0);  // hive bin data; the bin header comes first

  uint32_t allocate(size_t payload) {
    size_t size = (4 + payload + 7) & ~size_t{7};
    uint32_t offset = static_cast<uint32_t>(bins.size());
    bins.resize(bins.size() + size, 0);
    put32(offset, static_cast<uint32_t>(-static_cast<int32_t>(size)));
    return offset;  // the cell's offset; its payload starts 4 bytes later
  }
  void put16(uint32_t at, uint16_t v) { std::memcpy(&bins[at], &v, 2); }
  void put32(uint32_t at, uint32_t v) { std::memcpy(&bins[at], &v, 4); }

  uint32_t write_key(const Key& key, uint32_t parent, bool root) {
    uint32_t nk = allocate(76 + key.name.size());
    uint32_t p = nk + 4;
    bins[p] = 'n';
    bins[p + 1] = 'k';
    put16(p + 2, root ? 0x2c : 0x20);  // KEY_COMP_NAME (+ HIVE_ENTRY | NO_DELETE for the root)
    put32(p + 16, parent);
    put32(p + 28, 0xffffffff);
    put32(p + 32, 0xffffffff);
    put32(p + 40, 0xffffffff);
    put32(p + 44, 0xffffffff);
    put32(p + 48, 0xffffffff);
    put16(p + 72, static_cast<uint16_t>(key.name.size()));
    std::memcpy(&bins[p + 76], key.name.data(), key.name.size());

    std::vector<std::pair<uint32_t, uint32_t>> subkeys;  // offset, hash
    uint32_t longest_name = 0;
    for (const auto& [folded, child] : key.children) {
      uint32_t offset = write_key(*child, nk, false);
      uint32_t hash = 0;
      for (char c : folded) hash = hash * 37 + static_cast<uint8_t>(c);
      subkeys.push_back({offset, hash});
      longest_name = std::max<uint32_t>(longest_name, static_cast<uint32_t>(child->name.size() * 2));
    }
    if (!subkeys.empty()) {
      uint32_t lh = allocate(4 + 8 * subkeys.size());
      bins[lh + 4] = 'l';
      bins[lh + 5] = 'h';
      put16(lh + 6, static_cast<uint16_t>(subkeys.size()));
      for (size_t i = 0; i < subkeys.size(); ++i) {
        put32(lh + 8 + 8 * static_cast<uint32_t>(i), subkeys[i].first);
        put32(lh + 12 + 8 * static_cast<uint32_t>(i), subkeys[i].second);
      }
      put32(p + 20, static_cast<uint32_t>(subkeys.size()));
      put32(p + 28, lh);
      put32(p + 52, longest_name);
    }
    if (!key.values.empty()) {
      std::vector<uint32_t> offsets;
      uint32_t longest_value = 0, largest_data = 0;
      for (const Value& value : key.values) {
        uint32_t vk = allocate(20 + value.name.size());
        uint32_t v = vk + 4;
        bins[v] = 'v';
        bins[v + 1] = 'k';
        put16(v + 2, static_cast<uint16_t>(value.name.size()));
        if (value.data.size() <= 4) {
          put32(v + 4, 0x80000000u | static_cast<uint32_t>(value.data.size()));
          std::memcpy(&bins[v + 8], value.data.data(), value.data.size());
        } else {
          uint32_t data = allocate(value.data.size());
          std::memcpy(&bins[data + 4], value.data.data(), value.data.size());
          put32(v + 4, static_cast<uint32_t>(value.data.size()));
          put32(v + 8, data);
        }
        put32(v + 12, value.type);
        put16(v + 16, 0x0001);  // VALUE_COMP_NAME
        std::memcpy(&bins[v + 20], value.name.data(), value.name.size());
        offsets.push_back(vk);
        longest_value = std::max<uint32_t>(longest_value, static_cast<uint32_t>(value.name.size() * 2));
        largest_data = std::max<uint32_t>(largest_data, static_cast<uint32_t>(value.data.size()));
      }
      uint32_t list = allocate(4 * offsets.size());
      for (size_t i = 0; i < offsets.size(); ++i) put32(list + 4 + 4 * static_cast<uint32_t>(i), offsets[i]);
      put32(p + 36, static_cast<uint32_t>(offsets.size()));
      put32(p + 40, list);
      put32(p + 60, longest_value);
      put32(p + 64, largest_data);
    }
    return nk;
  }
};

std::vector<uint8_t> utf16(const std::string& text) {
  std::vector<uint8_t> out;
  for (char c : text) {
    out.push_back(static_cast<uint8_t>(c));
    out.push_back(0);
  }
  out.push_back(0);
  out.push_back(0);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_hive OUT < SPEC\n";
    return 1;
  }
  Key root;
  root.name = "ROOT";
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    size_t start = 0;
    for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
      fields.push_back(line.substr(start, tab - start));
    fields.push_back(line.substr(start));
    Key* key = find_or_add(root, fields[0]);
    if (fields.size() < 4) continue;
    Value value;
    value.name = fields[1];
    if (fields[2] == "dword") {
      value.type = 4;
      uint32_t number = static_cast<uint32_t>(std::stoul(fields[3], nullptr, 0));
      value.data.resize(4);
      std::memcpy(value.data.data(), &number, 4);
    } else {
      value.type = fields[2] == "expand" ? 2 : 1;
      value.data = utf16(fields[3]);
    }
    key->values.push_back(std::move(value));
  }

  Writer writer;
  uint32_t root_offset = writer.write_key(root, 0xffffffff, true);
  std::vector<uint8_t>& bins = writer.bins;
  size_t total = (bins.size() + 8 + 4095) & ~size_t{4095};  // room for a final free cell
  uint32_t free_offset = static_cast<uint32_t>(bins.size());
  bins.resize(total, 0);
  writer.put32(free_offset, static_cast<uint32_t>(total - free_offset));  // free cell: positive size
  std::memcpy(&bins[0], "hbin", 4);
  writer.put32(4, 0);
  writer.put32(8, static_cast<uint32_t>(total));

  std::vector<uint8_t> base(4096, 0);
  auto put = [&](size_t at, uint32_t v) { std::memcpy(&base[at], &v, 4); };
  std::memcpy(&base[0], "regf", 4);
  put(4, 1);                 // primary sequence number
  put(8, 1);                 // secondary sequence number (equal: the hive is clean)
  put(20, 1);                // major version
  put(24, 5);                // minor version
  put(28, 0);                // primary file
  put(32, 1);                // direct memory load
  put(36, root_offset);      // root cell
  put(40, static_cast<uint32_t>(total));  // hive bins data size
  put(44, 1);                // clustering factor
  uint32_t checksum = 0;
  for (size_t i = 0; i < 508; i += 4) {
    uint32_t word;
    std::memcpy(&word, &base[i], 4);
    checksum ^= word;
  }
  if (checksum == 0xffffffff) checksum = 0xfffffffe;
  if (checksum == 0) checksum = 1;
  put(508, checksum);

  std::ofstream out(argv[1], std::ios::binary);
  out.write(reinterpret_cast<const char*>(base.data()), static_cast<std::streamsize>(base.size()));
  out.write(reinterpret_cast<const char*>(bins.data()), static_cast<std::streamsize>(bins.size()));
  return out ? 0 : 1;
}
