// Services from an offline SYSTEM hive (libregf), and where their ImagePath points.
//
// libregf is run in a child process (core/isolated.hpp): fuzzing found hives that make it dereference
// wild pointers (a SEGV in libregf_key_item_read_values_list, tests/fuzz-regressions/hive/), and a disk
// image from a compromised machine must cost one error line, not the scan.
#include <libregf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>

#include "core/isolated.hpp"
#include "tagwho/service.hpp"

namespace tagwho {
namespace {

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The message of a libregf error, first line only; frees the error.
std::string take_error(libregf_error_t*& error, const std::string& fallback) {
  std::string message = fallback;
  if (error) {
    char buffer[512] = {};
    if (libregf_error_sprint(error, buffer, sizeof buffer) > 0) {
      std::string text = buffer;
      text = text.substr(0, text.find('\n'));
      if (!text.empty()) message = fallback + ": " + text;
    }
    libregf_error_free(&error);
  }
  return message;
}

struct KeyCloser {
  void operator()(libregf_key_t* key) const { libregf_key_free(&key, nullptr); }
};
using Key = std::unique_ptr<libregf_key_t, KeyCloser>;
struct ValueCloser {
  void operator()(libregf_value_t* value) const { libregf_value_free(&value, nullptr); }
};
using Value = std::unique_ptr<libregf_value_t, ValueCloser>;
struct FileCloser {
  void operator()(libregf_file_t* file) const {
    libregf_file_close(file, nullptr);
    libregf_file_free(&file, nullptr);
  }
};

Value get_value(libregf_key_t* key, const std::string& name) {
  libregf_value_t* value = nullptr;
  if (libregf_key_get_value_by_utf8_name(key, reinterpret_cast<const uint8_t*>(name.data()), name.size(), &value,
                                         nullptr) != 1)
    return nullptr;
  return Value(value);
}

std::optional<uint32_t> dword_value(libregf_key_t* key, const std::string& name) {
  Value value = get_value(key, name);
  uint32_t type = 0, data = 0;
  if (!value || libregf_value_get_value_type(value.get(), &type, nullptr) != 1) return std::nullopt;
  if (type != LIBREGF_VALUE_TYPE_INTEGER_32BIT_LITTLE_ENDIAN) return std::nullopt;
  if (libregf_value_get_value_32bit(value.get(), &data, nullptr) != 1) return std::nullopt;
  return data;
}

std::string string_value(libregf_key_t* key, const std::string& name) {
  Value value = get_value(key, name);
  uint32_t type = 0;
  if (!value || libregf_value_get_value_type(value.get(), &type, nullptr) != 1) return "";
  if (type != LIBREGF_VALUE_TYPE_STRING && type != LIBREGF_VALUE_TYPE_EXPANDABLE_STRING) return "";
  size_t size = 0;
  if (libregf_value_get_value_utf8_string_size(value.get(), &size, nullptr) != 1 || size == 0) return "";
  std::string text(size, '\0');
  if (libregf_value_get_value_utf8_string(value.get(), reinterpret_cast<uint8_t*>(text.data()), size, nullptr) != 1)
    return "";
  text.resize(text.find('\0') == std::string::npos ? text.size() : text.find('\0'));
  return text;
}

std::string key_name(libregf_key_t* key) {
  size_t size = 0;
  if (libregf_key_get_utf8_name_size(key, &size, nullptr) != 1 || size == 0) return "";
  std::string name(size, '\0');
  if (libregf_key_get_utf8_name(key, reinterpret_cast<uint8_t*>(name.data()), size, nullptr) != 1) return "";
  name.resize(name.find('\0') == std::string::npos ? name.size() : name.find('\0'));
  return name;
}

Key key_at(libregf_file_t* file, const std::string& path) {
  libregf_key_t* key = nullptr;
  if (libregf_file_get_key_by_utf8_path(file, reinterpret_cast<const uint8_t*>(path.data()), path.size(), &key,
                                        nullptr) != 1)
    return nullptr;
  return Key(key);
}

// Reads the hive in this process. Only ever called in the isolated child.
Result<HiveServices> read_hive_in_process(const std::string& path);

// The child's answer, sent through a pipe: 'E' + message, or 'O' + control set + services, every string
// as a 4-byte little-endian length and its bytes, every optional number as a presence byte and 4 bytes.
void put_u32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}
void put_string(std::string& out, const std::string& text) {
  put_u32(out, static_cast<uint32_t>(text.size()));
  out += text;
}
void put_optional(std::string& out, const std::optional<uint32_t>& value) {
  out.push_back(value ? 1 : 0);
  put_u32(out, value.value_or(0));
}

std::string encode(const Result<HiveServices>& result) {
  std::string out;
  if (!result) {
    out.push_back('E');
    put_string(out, result.error());
    return out;
  }
  out.push_back('O');
  put_string(out, result->control_set);
  put_u32(out, static_cast<uint32_t>(result->services.size()));
  for (const ServiceInfo& service : result->services) {
    for (const std::string* text :
         {&service.name, &service.display_name, &service.image_path, &service.group, &service.control_set})
      put_string(out, *text);
    put_optional(out, service.start);
    put_optional(out, service.type);
  }
  return out;
}

// Reads what encode() wrote; every read is checked against the end, a short message is an error.
class Decoder {
 public:
  explicit Decoder(const std::string& bytes) : bytes_(bytes) {}
  bool ok() const { return ok_; }
  bool at_end() const { return at_ == bytes_.size(); }
  uint8_t byte() {
    if (at_ >= bytes_.size()) return fail();
    return static_cast<uint8_t>(bytes_[at_++]);
  }
  uint32_t u32() {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(byte()) << (8 * i);
    return value;
  }
  std::string string() {
    uint32_t size = u32();
    if (!ok_ || size > bytes_.size() - at_) {
      fail();
      return {};
    }
    std::string text = bytes_.substr(at_, size);
    at_ += size;
    return text;
  }
  std::optional<uint32_t> optional() {
    bool present = byte() != 0;
    uint32_t value = u32();
    if (!present) return std::nullopt;
    return value;
  }

 private:
  uint8_t fail() {
    ok_ = false;
    return 0;
  }
  const std::string& bytes_;
  size_t at_ = 0;
  bool ok_ = true;
};

Result<HiveServices> decode(const std::string& bytes) {
  Decoder in(bytes);
  uint8_t kind = in.byte();
  if (kind == 'E') {
    std::string message = in.string();
    if (in.ok()) return Error{message};
  } else if (kind == 'O') {
    HiveServices result;
    result.control_set = in.string();
    uint32_t count = in.u32();
    for (uint32_t i = 0; in.ok() && i < count; ++i) {
      ServiceInfo service;
      for (std::string* text :
           {&service.name, &service.display_name, &service.image_path, &service.group, &service.control_set})
        *text = in.string();
      service.start = in.optional();
      service.type = in.optional();
      result.services.push_back(std::move(service));
    }
    if (in.ok() && in.at_end()) return result;
  }
  return Error{"the registry reader's answer is malformed"};
}

}  // namespace

std::string service_start_name(const std::optional<uint32_t>& start) {
  if (!start) return "";
  static const char* const kNames[] = {"boot", "system", "auto", "demand", "disabled"};
  return *start < 5 ? kNames[*start] : std::to_string(*start);
}

std::string service_type_name(const std::optional<uint32_t>& type) {
  if (!type) return "";
  switch (*type) {
    case 0x1: return "kernel";
    case 0x2: return "file_system";
    case 0x4: return "adapter";
    case 0x8: return "recognizer";
    case 0x10: return "own_process";
    case 0x20: return "share_process";
    default: break;
  }
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "0x%x", *type);
  return buffer;
}

bool is_driver_service(const ServiceInfo& service) {
  return service.type && (*service.type & 0x0f) != 0 && (*service.type & 0x30) == 0;
}

// A real SYSTEM hive's services are read in well under a second; damaged ones have kept libregf busy for
// seconds (2 s of CPU for an 8 KiB fuzzed hive), so the reader gets less than the isolation's defaults.
constexpr IsolationLimits kHiveLimits{10, 20, 2ull << 30, 64ull << 20};

Result<HiveServices> read_system_hive(const std::string& path) {
  Result<std::string> answer = run_isolated(
      "the registry reader (libregf)", [&path] { return encode(read_hive_in_process(path)); }, kHiveLimits);
  if (!answer) return Error{"SYSTEM hive is damaged: " + answer.error()};
  return decode(*answer);
}

namespace {

Result<HiveServices> read_hive_in_process(const std::string& path) {
  libregf_error_t* error = nullptr;
  libregf_file_t* raw = nullptr;
  if (libregf_file_initialize(&raw, &error) != 1) return Error{take_error(error, "cannot read registry hive")};
  std::unique_ptr<libregf_file_t, FileCloser> file(raw);
  if (libregf_file_open(raw, path.c_str(), LIBREGF_OPEN_READ, &error) != 1) {
    libregf_file_free(&raw, nullptr);
    file.release();
    return Error{take_error(error, "not a readable registry hive")};
  }
  Key select = key_at(raw, "\\Select");
  if (!select) return Error{"registry hive has no Select key (not a SYSTEM hive?)"};
  std::optional<uint32_t> current = dword_value(select.get(), "Current");
  if (!current) return Error{"SYSTEM hive: Select\\Current is missing"};
  char control_set[32];
  std::snprintf(control_set, sizeof control_set, "ControlSet%03u", *current);
  Key services = key_at(raw, std::string("\\") + control_set + "\\Services");
  if (!services) return Error{std::string("SYSTEM hive: ") + control_set + "\\Services is missing"};
  HiveServices result;
  result.control_set = control_set;
  int count = 0;
  if (libregf_key_get_number_of_sub_keys(services.get(), &count, &error) != 1)
    return Error{take_error(error, "SYSTEM hive: cannot list services")};
  for (int i = 0; i < count; ++i) {
    libregf_key_t* sub = nullptr;
    if (libregf_key_get_sub_key(services.get(), i, &sub, nullptr) != 1) continue;  // a damaged key: skip it
    Key key(sub);
    ServiceInfo service;
    service.name = key_name(sub);
    if (service.name.empty()) continue;
    service.display_name = string_value(sub, "DisplayName");
    service.image_path = string_value(sub, "ImagePath");
    service.group = string_value(sub, "Group");
    service.start = dword_value(sub, "Start");
    service.type = dword_value(sub, "Type");
    service.control_set = control_set;
    result.services.push_back(std::move(service));
  }
  std::sort(result.services.begin(), result.services.end(),
            [](const ServiceInfo& a, const ServiceInfo& b) { return lower(a.name) < lower(b.name); });
  return result;
}

}  // namespace

Result<HiveServices> read_system_hive_bytes(const std::vector<uint8_t>& bytes) {
  // libregf reads files by name: give it an anonymous in-memory file (nothing is written to any disk).
  int fd = memfd_create("tagwho-hive", MFD_CLOEXEC);
  if (fd < 0) return Error{"cannot create an in-memory file for the hive"};
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      return Error{"cannot copy the hive to memory"};
    }
    done += static_cast<size_t>(n);
  }
  auto result = read_system_hive("/proc/self/fd/" + std::to_string(fd));
  ::close(fd);
  return result;
}

std::optional<std::vector<std::string>> image_path_components(const ServiceInfo& service,
                                                              const std::string& windows_dir) {
  std::string path = service.image_path;
  // trim spaces and quotes
  size_t begin = path.find_first_not_of(" \t");
  path = begin == std::string::npos ? "" : path.substr(begin);
  if (!path.empty() && path.front() == '"') {
    size_t close = path.find('"', 1);
    path = path.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  if (path.empty()) return std::vector<std::string>{windows_dir, "System32", "drivers", service.name + ".sys"};
  std::replace(path.begin(), path.end(), '/', '\\');
  // Arguments after the file name: cut after the first .sys/.exe/.dll followed by a space.
  std::string folded = lower(path);
  for (const char* ext : {".sys ", ".exe ", ".dll "}) {
    size_t at = folded.find(ext);
    if (at != std::string::npos) {
      path.resize(at + 4);
      folded.resize(at + 4);
    }
  }
  std::vector<std::string> base;  // components the rest is relative to
  std::string rest;
  auto starts = [&](const std::string& prefix) { return folded.rfind(prefix, 0) == 0; };
  if (starts("\\??\\") || starts("\\\\?\\")) {
    path = path.substr(4);
    folded = folded.substr(4);
  }
  if (starts("\\systemroot\\")) {
    base = {windows_dir};
    rest = path.substr(12);
  } else if (starts("%systemroot%\\")) {
    base = {windows_dir};
    rest = path.substr(13);
  } else if (starts("%windir%\\")) {
    base = {windows_dir};
    rest = path.substr(9);
  } else if (folded.size() >= 3 && std::isalpha(static_cast<unsigned char>(folded[0])) && folded[1] == ':' &&
             folded[2] == '\\') {
    if (folded[0] != 'c') return std::nullopt;  // another drive: not on this volume (C: taken as the system drive)
    rest = path.substr(3);
  } else if (starts("\\")) {
    if (starts("\\device\\") || starts("\\globalroot\\") || starts("\\\\")) return std::nullopt;
    rest = path.substr(1);
  } else {
    base = {windows_dir};  // relative ImagePaths ("System32\drivers\x.sys") start at %SystemRoot%
    rest = path;
  }
  std::vector<std::string> components = base;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t end = rest.find('\\', start);
    if (end == std::string::npos) end = rest.size();
    std::string part = rest.substr(start, end - start);
    if (part == "..") {
      if (!components.empty()) components.pop_back();
    } else if (!part.empty() && part != ".") {
      components.push_back(part);
    }
    start = end + 1;
  }
  if (components.empty()) return std::nullopt;
  return components;
}

}  // namespace tagwho
