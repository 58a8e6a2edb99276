// libFuzzer target: a SYSTEM hive's bytes through libregf and tagwho's service reader (the code path of a
// hive read out of a disk image), then every service's ImagePath resolved.
#include <cstdint>
#include <vector>

#include "tagwho/service.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  auto services = tagwho::read_system_hive_bytes(bytes);
  if (services)
    for (const tagwho::ServiceInfo& service : services->services) {
      tagwho::image_path_components(service);
      tagwho::is_driver_service(service);
      tagwho::service_start_name(service.start);
      tagwho::service_type_name(service.type);
    }
  return 0;
}
