// Windows services read from an offline SYSTEM hive: which service loads a driver file, and when.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/result.hpp"

namespace tagwho {

// One key under HKLM\SYSTEM\<current control set>\Services.
struct ServiceInfo {
  std::string name;          // the key's name ("LeakSvc")
  std::string display_name;  // DisplayName as stored (may be an indirect "@file,-id" string)
  std::string image_path;    // ImagePath as stored ("" when absent: Windows then loads System32\drivers\NAME.sys)
  std::string group;         // Group ("" when absent)
  std::optional<uint32_t> start;  // Start: 0 boot, 1 system, 2 auto, 3 demand, 4 disabled
  std::optional<uint32_t> type;   // Type: 1 kernel driver, 2 file system driver, 8 recognizer, 0x10/0x20 Win32
  std::string control_set;        // "ControlSet001"
};

// "boot", "system", "auto", "demand", "disabled", the number for other values, "" when absent.
std::string service_start_name(const std::optional<uint32_t>& start);
// "kernel", "file_system", "adapter", "recognizer", "own_process", "share_process", else 0xN; "" when absent.
std::string service_type_name(const std::optional<uint32_t>& type);
// A driver service: loaded by the kernel (kernel, file system, adapter or recognizer driver), not a Win32
// service process.
bool is_driver_service(const ServiceInfo& service);

// The services of a hive's current control set (Select\Current), sorted by name.
struct HiveServices {
  std::string control_set;
  std::vector<ServiceInfo> services;
};
// Reads a SYSTEM hive file (opened read-only). Errors: not a hive, no Select\Current, no Services key.
Result<HiveServices> read_system_hive(const std::string& path);
// The same from bytes in memory (a hive read out of a disk image).
Result<HiveServices> read_system_hive_bytes(const std::vector<uint8_t>& bytes);

// Where an ImagePath points, as path components relative to the volume's root ("Windows", "System32",
// "drivers", "x.sys"), letter case as written. Understands \SystemRoot\..., %SystemRoot%\..., %windir%\...,
// System32\... (relative to the Windows folder), \??\C:\... and C:\... (the system drive is taken to be C:),
// \Windows\...; quotes and arguments after ".sys"/".exe"/".dll" are dropped. An empty ImagePath gives the
// default System32\drivers\NAME.sys. nullopt when the path lies elsewhere (another drive, a device path).
// `windows_dir` is the name of the Windows folder as found on the volume ("Windows").
std::optional<std::vector<std::string>> image_path_components(const ServiceInfo& service,
                                                              const std::string& windows_dir = "Windows");

// A driver service whose file is not where its ImagePath points.
struct MissingService {
  std::string root;           // display path of the Windows root ("disk.vhdx:", "/mnt/win")
  std::string expected_path;  // display path where the file should be ("" when the ImagePath is not on the volume)
  ServiceInfo service;
};

}  // namespace tagwho
