// The generated compiler corpus (tests/corpus/generate.sh) and its ground truth (truth.tsv), for the unit
// tests that check the analyses against it.
#pragma once
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace tagwho::test {

// One line of truth.tsv: a TAG4 use in a corpus driver's source and what the analysis must report for it.
struct TruthRow {
  std::string file, tag, expect, api, pattern;
};

// TAGWHO_CORPUS_DIR when it holds truth.tsv (CTest sets it after its corpus.generate fixture, which may have
// been skipped: toolchains missing); without it, <build>/corpus, generated on demand and again when the
// generator or its sources are newer than truth.tsv. Empty, with the reason in skip_reason, when absent.
inline std::filesystem::path corpus_dir(std::string& skip_reason) {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("TAGWHO_CORPUS_DIR"); env && *env) {
    if (fs::exists(fs::path(env) / "truth.tsv")) return fs::path(env);
    skip_reason = std::string("no truth.tsv in ") + env;
    return {};
  }
  const fs::path dir = fs::path(TAGWHO_BINARY_DIR) / "corpus";
  const fs::path truth = dir / "truth.tsv";
  const fs::path root = fs::path(TAGWHO_SOURCE_DIR);
  bool stale = !fs::exists(truth);
  if (!stale) {
    const auto built = fs::last_write_time(truth);
    std::vector<fs::path> inputs = {root / "tests/corpus/generate.sh", root / "samples/include/tagwho_kernel.h",
                                    root / "samples/lib/ntoskrnl.def", root / "samples/lib/ntoskrnl_x86.def"};
    for (const char* sub : {"tests/corpus/src", "tests/corpus/include", "tests/corpus/lib"})
      if (fs::is_directory(root / sub))
        for (const auto& entry : fs::directory_iterator(root / sub)) inputs.push_back(entry.path());
    for (const fs::path& p : inputs)
      if (fs::exists(p) && fs::last_write_time(p) > built) stale = true;
  }
  if (stale) {
    const std::string cmd = "bash '" + (root / "tests/corpus/generate.sh").string() + "' '" + dir.string() + "'";
    const int status = std::system(cmd.c_str());
    const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (rc != 0) {
      skip_reason = rc == 77 ? "corpus toolchains missing" : "generate.sh failed with status " + std::to_string(rc);
      return {};
    }
  }
  return dir;
}

// corpus_dir() for a test case: a failed generation fails the test; a missing corpus is a message (the
// test then returns on the empty path).
inline std::filesystem::path corpus_dir_for_test() {
  std::string skip;
  std::filesystem::path dir = corpus_dir(skip);
  if (dir.empty()) {
    if (skip.rfind("generate.sh failed", 0) == 0) FAIL(skip);
    MESSAGE("corpus skipped: " << skip);
  }
  return dir;
}

// truth.tsv's rows, by file.
inline std::map<std::string, std::vector<TruthRow>> read_truth(const std::filesystem::path& dir) {
  std::ifstream in(dir / "truth.tsv");
  REQUIRE(in);
  std::map<std::string, std::vector<TruthRow>> by_file;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    TruthRow row;
    std::stringstream fields(line);
    std::getline(fields, row.file, '\t');
    std::getline(fields, row.tag, '\t');
    std::getline(fields, row.expect, '\t');
    std::getline(fields, row.api, '\t');
    std::getline(fields, row.pattern, '\t');
    by_file[row.file].push_back(row);
  }
  REQUIRE_FALSE(by_file.empty());
  return by_file;
}

inline std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A tag's 32-bit value from its four characters (as the corpus writes them: "Leak").
inline uint32_t tag_value(const std::string& four) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(four[static_cast<size_t>(i)]);
  return v;
}

// The sample drivers and, when generated, the corpus drivers whose names hold `name_part` (all of them for
// ""), in name order.
inline std::vector<std::filesystem::path> sample_and_corpus_drivers(const std::string& name_part = "") {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const fs::path& dir : {fs::path(TAGWHO_SOURCE_DIR) / "samples" / "bin", corpus_dir_for_test()})
    if (!dir.empty() && fs::is_directory(dir))
      for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().extension() == ".sys" && entry.path().filename().string().find(name_part) != std::string::npos)
          files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// A straight-line proof's definition against the full data flow's answer (either architecture's Def):
// exactly that one definition.
template <typename Def>
void check_one_definition(const std::vector<Def>& full, const Def& proof) {
  REQUIRE(full.size() == 1);
  CHECK(static_cast<int>(full[0].kind) == static_cast<int>(proof.kind));
  CHECK(full[0].value == proof.value);
  CHECK(full[0].rva == proof.rva);
  CHECK(full[0].size == proof.size);
  CHECK(full[0].loc == proof.loc);
}

}  // namespace tagwho::test
