// Isolation of third-party parsers (core/isolated.hpp), and the SYSTEM hive reader that uses it.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

#include "core/isolated.hpp"
#include "tagwho/service.hpp"

using namespace tagwho;

#if defined(__SANITIZE_ADDRESS__)
#define TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_UNDER_ASAN 1
#endif
#endif

namespace {

std::vector<uint8_t> file_bytes(const std::string& relative) {
  std::ifstream in(std::string(TAGWHO_SOURCE_DIR) + "/" + relative, std::ios::binary);
  REQUIRE(in);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

const ServiceInfo* find_service(const HiveServices& hive, const std::string& name) {
  for (const ServiceInfo& service : hive.services)
    if (service.name == name) return &service;
  return nullptr;
}

}  // namespace

TEST_CASE("an isolated call returns what the child produced, binary bytes included") {
  std::string big(300000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  auto answer = run_isolated("test", [&] { return big; });
  REQUIRE(answer.ok());
  CHECK(*answer == big);
  // The child's work happens in its own memory: the parent's variables are untouched.
  int counter = 0;
  auto changed = run_isolated("test", [&] {
    counter = 42;
    return std::string("x");
  });
  REQUIRE(changed.ok());
  CHECK(counter == 0);
}

TEST_CASE("a crash, an exception, a hang or a flood in the child is one error, and the caller goes on") {
  auto crashed = run_isolated("the crasher", [] {
    ::raise(SIGSEGV);
    return std::string("unreachable");
  });
  REQUIRE_FALSE(crashed.ok());
  CHECK(crashed.error().find("the crasher crashed") == 0);

  auto threw = run_isolated("the thrower", []() -> std::string { throw std::runtime_error("no"); });
  REQUIRE_FALSE(threw.ok());
  CHECK(threw.error() == "the thrower failed with an exception");

  IsolationLimits short_wait;
  short_wait.wall_seconds = 1;
  auto hung = run_isolated(
      "the sleeper",
      [] {
        for (;;) ::pause();
        return std::string();
      },
      short_wait);
  REQUIRE_FALSE(hung.ok());
  CHECK(hung.error() == "the sleeper took longer than 1 s and was stopped");

  IsolationLimits small_output;
  small_output.max_output_bytes = 1000;
  auto flood = run_isolated("the talker", [] { return std::string(100000, 'a'); }, small_output);
  REQUIRE_FALSE(flood.ok());
  CHECK(flood.error() == "the talker produced more than 1000 bytes");
}

#ifndef TEST_UNDER_ASAN  // AddressSanitizer needs terabytes of address space: no RLIMIT_AS under it
TEST_CASE("the child's memory is capped") {
  IsolationLimits small_memory;
  small_memory.memory_bytes = 256ull << 20;
  auto greedy = run_isolated(
      "the hog",
      [] {
        std::vector<std::string> hoard;
        for (int i = 0; i < 64; ++i) hoard.emplace_back(64u << 20, 'x');  // 4 GiB if nothing stops it
        return std::to_string(hoard.size());
      },
      small_memory);
  REQUIRE_FALSE(greedy.ok());
  CHECK(greedy.error() == "the hog failed with an exception");  // std::bad_alloc
}
#endif

TEST_CASE("a SYSTEM hive reads the same from a file and from memory, through the isolated reader") {
  auto from_file = read_system_hive(std::string(TAGWHO_SOURCE_DIR) + "/fuzz/seeds/hive/SYSTEM");
  REQUIRE_MESSAGE(from_file.ok(), from_file.error());
  auto from_memory = read_system_hive_bytes(file_bytes("fuzz/seeds/hive/SYSTEM"));
  REQUIRE(from_memory.ok());
  // Select\Current names ControlSet002 in the seed: ControlSet001's LeakSvc (Start only) must not be used.
  CHECK(from_file->control_set == "ControlSet002");
  REQUIRE(from_file->services.size() == from_memory->services.size());
  const ServiceInfo* leak = find_service(*from_file, "LeakSvc");
  REQUIRE(leak != nullptr);
  CHECK(leak->control_set == "ControlSet002");
  CHECK_FALSE(leak->image_path.empty());
  CHECK(leak->start.has_value());
  CHECK(leak->type.has_value());
  for (size_t i = 0; i < from_file->services.size(); ++i) {
    CHECK(from_file->services[i].name == from_memory->services[i].name);
    CHECK(from_file->services[i].image_path == from_memory->services[i].image_path);
    CHECK(from_file->services[i].start == from_memory->services[i].start);
  }
}

TEST_CASE("hives that crash libregf are an error, not a crash of tagwho") {
  // Every hive input a fuzzer found to crash or leak in libregf: each must come back as a value.
  for (const char* name : {"tests/fuzz-regressions/hive/leak-7eb967c8906202165464392ef6742db0a7925033",
                           "tests/fuzz-regressions/hive/crash-ce17e239a290f405fc88a973a85354b481dcd8ad"}) {
    CAPTURE(name);
    auto services = read_system_hive_bytes(file_bytes(name));
    if (!services.ok()) CHECK(services.error().find('\n') == std::string::npos);
  }
  auto garbage = read_system_hive_bytes(std::vector<uint8_t>(8192, 0xff));
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.error().find("not a readable registry hive") == 0);
}
