// The source layer's pure parts: where a service's ImagePath points, the kernel-module test, names.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include "source/tree.hpp"
#include "tagwho/service.hpp"
#include "tagwho/source.hpp"

using namespace tagwho;

namespace {

std::string joined(const std::optional<std::vector<std::string>>& components) {
  if (!components) return "(none)";
  std::string text;
  for (const std::string& part : *components) text += (text.empty() ? "" : "/") + part;
  return text;
}

std::string where(const std::string& image_path, const std::string& name = "svc") {
  ServiceInfo service;
  service.name = name;
  service.image_path = image_path;
  return joined(image_path_components(service, "WINDOWS"));
}

std::vector<uint8_t> sample(const std::string& name) {
  std::ifstream in(std::string(TAGWHO_SOURCE_DIR) + "/samples/bin/" + name, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("ImagePath forms resolve to paths on the volume") {
  CHECK(where("\\SystemRoot\\System32\\drivers\\x.sys") == "WINDOWS/System32/drivers/x.sys");
  CHECK(where("\\systemroot\\system32\\DRIVERS\\x.sys") == "WINDOWS/system32/DRIVERS/x.sys");
  CHECK(where("System32\\drivers\\x.sys") == "WINDOWS/System32/drivers/x.sys");
  CHECK(where("system32\\DriverStore\\FileRepository\\a.inf_amd64_1\\a.sys") ==
        "WINDOWS/system32/DriverStore/FileRepository/a.inf_amd64_1/a.sys");
  CHECK(where("\\??\\C:\\Program Files\\V\\v.sys") == "Program Files/V/v.sys");
  CHECK(where("c:\\drivers\\v.sys") == "drivers/v.sys");
  CHECK(where("%SystemRoot%\\System32\\drivers\\x.sys") == "WINDOWS/System32/drivers/x.sys");
  CHECK(where("%windir%\\system32\\x.sys") == "WINDOWS/system32/x.sys");
  CHECK(where("\\Windows\\System32\\x.sys") == "Windows/System32/x.sys");
  CHECK(where("\"\\SystemRoot\\System32\\drivers\\x.sys\"") == "WINDOWS/System32/drivers/x.sys");
  CHECK(where("System32\\drivers\\x.sys -arg") == "WINDOWS/System32/drivers/x.sys");
  CHECK(where("System32\\..\\System32\\.\\drivers\\x.sys") == "WINDOWS/System32/drivers/x.sys");
  CHECK(where("", "Beep") == "WINDOWS/System32/drivers/Beep.sys");
  CHECK(where("D:\\drivers\\v.sys") == "(none)");
  CHECK(where("\\Device\\HarddiskVolume2\\x.sys") == "(none)");
}

TEST_CASE("service names and driver services") {
  CHECK(service_start_name(0u) == "boot");
  CHECK(service_start_name(3u) == "demand");
  CHECK(service_start_name(4u) == "disabled");
  CHECK(service_start_name(9u) == "9");
  CHECK(service_start_name(std::nullopt).empty());
  CHECK(service_type_name(1u) == "kernel");
  CHECK(service_type_name(2u) == "file_system");
  CHECK(service_type_name(0x110u) == "0x110");
  ServiceInfo service;
  service.type = 1;
  CHECK(is_driver_service(service));
  service.type = 0x10;
  CHECK_FALSE(is_driver_service(service));
  service.type = std::nullopt;
  CHECK_FALSE(is_driver_service(service));
}

TEST_CASE("kernel modules: native subsystem, and a DLL, a .sys or the kernel") {
  std::vector<uint8_t> driver = sample("leak-clang-x64.sys");
  REQUIRE(driver.size() > 1024);
  driver.resize(1024);  // the first bytes are all the test reads
  CHECK(source::is_kernel_module(driver, "x.sys"));
  CHECK(source::is_kernel_module(driver, "NTOSKRNL.EXE"));
  CHECK_FALSE(source::is_kernel_module(driver, "smss.exe"));  // native, but neither a DLL nor the kernel
  std::vector<uint8_t> dll = driver;
  uint32_t pe = dll[0x3c] | dll[0x3d] << 8;
  dll[pe + 4 + 18 + 1] |= 0x20;  // IMAGE_FILE_DLL
  CHECK(source::is_kernel_module(dll, "hal.dll"));
  dll[pe + 24 + 68] = 3;  // console subsystem: user mode
  CHECK_FALSE(source::is_kernel_module(dll, "hal.dll"));
  CHECK_FALSE(source::is_kernel_module(std::vector<uint8_t>(64, 0), "x.sys"));
  CHECK_FALSE(source::is_kernel_module(std::vector<uint8_t>{'M', 'Z'}, "x.sys"));
}

TEST_CASE("open_sources: plain folders and files keep the folder walk; missing paths are problems") {
  std::string bin = std::string(TAGWHO_SOURCE_DIR) + "/samples/bin";
  SourceList list = open_sources({bin, bin + "/leak-clang-x64.sys", bin + "/no-such-file"});
  REQUIRE(list.problems.size() == 1);
  CHECK(list.problems[0].path == bin + "/no-such-file");
  REQUIRE(list.files.size() >= 2);
  CHECK_FALSE(list.files.front().explicit_path);
  CHECK(list.files.back().explicit_path);
  CHECK(list.files.back().size > 0);
  CHECK(list.files.back().mtime > 0);
  for (size_t i = 1; i + 1 < list.files.size(); ++i) CHECK(list.files[i - 1].path < list.files[i].path);
  auto bytes = list.files.back().read();
  REQUIRE(bytes);
  CHECK(bytes->view().u16(0) == uint16_t{0x5a4d});
  CHECK_FALSE(supported_image_formats().empty());
}
