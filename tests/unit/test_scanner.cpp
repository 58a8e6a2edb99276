#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

#include "tagwho/scan.hpp"

using namespace tagwho;
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> sample_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(fs::path(TAGWHO_SOURCE_DIR) / "samples" / "bin"))
    if (entry.path().extension() == ".sys") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const Finding* finding_for(const DriverReport& report, Tag tag) {
  for (const Finding& finding : report.findings)
    if (finding.tag == tag) return &finding;
  return nullptr;
}

Scanner leak_scanner() { return std::move(*Scanner::create(ScanRequest{{*Tag::parse("Leak")}, false})); }

}  // namespace

TEST_CASE("the leak samples carry call evidence for Leak; the decoy samples do not") {
  Scanner scanner = leak_scanner();
  std::vector<fs::path> files = sample_files();
  REQUIRE(files.size() >= 12);
  for (const fs::path& file : files) {
    CAPTURE(file.filename().string());
    FileResult result = scanner.analyse(file.string());
    CHECK_FALSE(result.not_pe);
    CHECK(result.report.parsed);
    CHECK(result.report.errors.empty());
    const Finding* leak = finding_for(result.report, *Tag::parse("Leak"));
    bool is_leak_sample = file.filename().string().rfind("leak-", 0) == 0;
    if (is_leak_sample) {
      REQUIRE(leak != nullptr);
      CHECK(leak->best == Confidence::call);
      CHECK(leak->evidence.front().api == "ExAllocatePoolWithTag");
      REQUIRE(leak->evidence.front().size.has_value());
      CHECK(*leak->evidence.front().size == 1024);  // LEAK_SIZE in samples/src/leak.c
    } else if (leak) {
      CHECK(leak->best < Confidence::call);
    }
  }
}

// Damaged copies of every sample: every truncation length up to the section table and beyond at a
// stride, and seeded random byte flips. Each must come back as a report (errors allowed), never a crash.
TEST_CASE("truncated and bit-flipped samples yield reports, not crashes") {
  Scanner scanner = leak_scanner();
  std::mt19937 random(20261125);
  size_t errors = 0, analysed = 0;
  for (const fs::path& file : sample_files()) {
    std::vector<uint8_t> original = read_file(file);
    for (size_t length = 0; length < original.size(); length += length < 1024 ? 1 : 61) {
      FileResult result = scanner.analyse_bytes(file.string(), ByteView(original.data(), length));
      errors += result.report.errors.size();
      ++analysed;
    }
    for (int round = 0; round < 300; ++round) {
      std::vector<uint8_t> damaged = original;
      int flips = 1 + static_cast<int>(random() % 4);
      for (int i = 0; i < flips; ++i) {
        size_t where = random() % std::min<size_t>(damaged.size(), round % 2 ? damaged.size() : 1024);
        damaged[where] ^= static_cast<uint8_t>(1u << (random() % 8));
      }
      FileResult result = scanner.analyse_bytes(file.string(), ByteView(damaged.data(), damaged.size()));
      errors += result.report.errors.size();
      ++analysed;
    }
  }
  MESSAGE(analysed << " damaged inputs analysed, " << errors << " one-line errors");
  CHECK(errors > analysed / 4);  // most truncations break the headers: they must be reported
}

TEST_CASE("walking a tree lists regular files sorted, reports missing paths, and skips FIFOs") {
  fs::path root = fs::temp_directory_path() / ("tagwho-walk-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "b" / "c");
  std::ofstream(root / "b" / "c" / "z.sys") << "x";
  std::ofstream(root / "a.sys") << "x";
  std::ofstream(root / "b" / "y.sys") << "x";
  fs::create_directory_symlink(root, root / "b" / "loop");  // a loop back to the root: never entered
  REQUIRE(::mkfifo((root / "b" / "fifo").c_str(), 0600) == 0);  // would block a reader forever
  std::vector<WalkProblem> problems;
  std::vector<InputFile> files = walk_inputs({root.string(), (root / "missing").string()}, problems);
  REQUIRE(files.size() == 3);
  CHECK(files[0].path == (root / "a.sys").string());
  CHECK(files[1].path == (root / "b" / "c" / "z.sys").string());
  CHECK(files[2].path == (root / "b" / "y.sys").string());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == (root / "missing").string());
  fs::remove_all(root);
}
