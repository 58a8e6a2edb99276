// The scan pipeline: the answer never depends on the number of threads or the order files are taken in.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

#include "tagwho/code_analysis.hpp"
#include "tagwho/literal_matcher.hpp"
#include "tagwho/report.hpp"
#include "tagwho/scan.hpp"
#include "tagwho/source.hpp"

using namespace tagwho;
namespace fs = std::filesystem;

namespace {

std::string describe(const std::vector<FileResult>& results) {
  std::ostringstream out;
  for (const FileResult& result : results) {
    const DriverReport& report = result.report;
    out << report.path << ' ' << report.size << ' ' << result.not_pe << ' ' << report.parsed << '\n';
    for (const std::string& error : report.errors) out << "  error " << error << '\n';
    for (const auto* findings : {&report.findings, &report.objref_findings})
      for (const Finding& finding : *findings) {
        out << "  " << finding.tag.display() << ' ' << static_cast<int>(finding.best) << '\n';
        for (const Evidence& evidence : finding.evidence)
          out << "    " << static_cast<int>(evidence.kind) << ' ' << describe_evidence(evidence) << '\n';
      }
  }
  return out.str();
}

std::vector<std::string> inputs() {
  std::vector<std::string> paths{std::string(TAGWHO_SOURCE_DIR) + "/samples/bin"};
  if (const char* corpus = std::getenv("TAGWHO_CORPUS_DIR"); corpus && fs::is_directory(corpus)) paths.push_back(corpus);
  return paths;
}

}  // namespace

TEST_CASE("scan output is identical for 1, 2 and 4 threads (search and driver mode)") {
  SourceList sources = open_sources(inputs());
  REQUIRE(sources.files.size() >= 15);
  std::vector<ScanRequest> requests;
  requests.push_back(ScanRequest{{*Tag::parse("Leak"), *Tag::parse("Cnst"), *Tag::parse("WrA2"), *Tag::parse("None")}, false});
  requests.push_back(ScanRequest{{}, true});
  for (const ScanRequest& request : requests) {
    auto scanner = Scanner::create(request);
    REQUIRE(scanner);
    const std::string one = describe(scan_sources(*scanner, sources.files, 1));
    CHECK(one.find("Leak") != std::string::npos);
    CHECK(describe(scan_sources(*scanner, sources.files, 2)) == one);
    CHECK(describe(scan_sources(*scanner, sources.files, 4)) == one);
    // The same as analysing each file alone, in input order.
    std::vector<FileResult> alone;
    for (const SourceFile& file : sources.files) alone.push_back(analyse_source(*scanner, file));
    CHECK(describe(alone) == one);
    // Delivered file by file in input order, whatever the thread count.
    for (unsigned threads : {1u, 2u, 4u}) {
      std::vector<FileResult> streamed;
      std::vector<size_t> order;
      scan_sources_in_order(*scanner, sources.files, threads, [&](size_t index, FileResult& result) {
        order.push_back(index);
        streamed.push_back(std::move(result));
      });
      REQUIRE(order.size() == sources.files.size());
      for (size_t i = 0; i < order.size(); ++i) CHECK(order[i] == i);
      CHECK(describe(streamed) == one);
    }
  }
}

TEST_CASE("a delivery that throws stops the scan in order, and the exception reaches the caller") {
  SourceList sources = open_sources(inputs());
  auto scanner = Scanner::create(ScanRequest{{*Tag::parse("Leak")}, false});
  REQUIRE(scanner);
  size_t delivered = 0;
  CHECK_THROWS_AS(scan_sources_in_order(*scanner, sources.files, 2,
                                        [&](size_t index, FileResult&) {
                                          ++delivered;
                                          if (index == 3) throw std::runtime_error("stop");
                                        }),
                  std::runtime_error);
  CHECK(delivered == 4);
}

namespace {

// The lines describe() prints for one tag's findings, file by file.
std::string describe_tag(const std::vector<FileResult>& results, Tag tag) {
  std::ostringstream out;
  for (const FileResult& result : results)
    for (const Finding& finding : result.report.findings)
      if (finding.tag == tag) {
        out << result.report.path << ' ' << finding.tag.display() << ' ' << static_cast<int>(finding.best) << '\n';
        for (const Evidence& evidence : finding.evidence)
          out << "    " << static_cast<int>(evidence.kind) << ' ' << describe_evidence(evidence) << '\n';
      }
  return out.str();
}

}  // namespace

TEST_CASE("the search prefilter changes no answer: every tag any driver uses, searched alone") {
  SourceList sources = open_sources(inputs());
  REQUIRE(sources.files.size() >= 15);
  // Every tag the drivers use (call, wrapper, code, data evidence), plus tags no driver uses, 'None' (which
  // has no bytes) and the protected-bit spelling of a used tag.
  auto driver_scanner = Scanner::create(ScanRequest{{}, true});
  REQUIRE(driver_scanner);
  std::vector<Tag> tags{*Tag::parse("None"), *Tag::parse("Zq9x"), *Tag::parse("Leaj"), *Tag::parse("Lean")};
  for (const FileResult& result : scan_sources(*driver_scanner, sources.files, 2))
    for (const Finding& finding : result.report.findings)
      if (std::find(tags.begin(), tags.end(), finding.tag) == tags.end()) tags.push_back(finding.tag);
  REQUIRE(tags.size() >= 30);

  // The full analysis, every tag at once (each tag's findings are what a search for it alone finds).
  ScanRequest full_request{tags, false};
  full_request.full_analysis = true;
  auto full_scanner = Scanner::create(full_request);
  REQUIRE(full_scanner);
  const std::vector<FileResult> full = scan_sources(*full_scanner, sources.files, 2);

  size_t skippable = 0;  // (tag, PE file) pairs the prefilter lets go undecoded: the test is not vacuous
  for (Tag tag : tags) {
    CAPTURE(tag.display());
    auto prefiltered = Scanner::create(ScanRequest{{tag}, false});
    REQUIRE(prefiltered);
    const std::vector<FileResult> answer = scan_sources(*prefiltered, sources.files, 2);
    CHECK(describe_tag(answer, tag) == describe_tag(full, tag));
    auto matcher = LiteralMatcher::build({tag}, true);
    REQUIRE(matcher);
    auto scratch = matcher->make_scratch();
    for (const SourceFile& file : sources.files) {
      auto bytes = file.read();
      REQUIRE(bytes);
      if (bytes->view().u16(0) != 0x5a4d) continue;
      auto hits = matcher->scan(bytes->view(), *scratch);
      REQUIRE(hits);
      if (hits->empty() && matcher->count_prefilter(bytes->view(), *scratch) == 0) ++skippable;
    }
  }
  CHECK(skippable > tags.size() * sources.files.size() / 4);
}

TEST_CASE("call-site analysis for some tags keeps exactly the evidence of those tags") {
  SourceList sources = open_sources(inputs());
  size_t compared = 0;
  for (const SourceFile& file : sources.files) {
    auto bytes = file.read();
    REQUIRE(bytes.ok());
    auto image = PeImage::load(bytes->view());
    if (!image) continue;
    const CodeAnalyser* analyser = analyser_for(image->machine());
    if (!analyser) continue;
    INFO(file.path);
    const CallSiteAnalysis all = analyser->find_call_site_tags(*image);
    std::vector<Tag> tags;
    for (const Evidence& e : all.calls)
      if (std::find(tags.begin(), tags.end(), e.tag) == tags.end()) tags.push_back(e.tag);
    for (Tag tag : tags) {
      const std::vector<Tag> only{tag};
      const CallSiteAnalysis some = analyser->find_call_site_tags(*image, &only);
      std::vector<std::string> expected, got;
      for (const Evidence& e : all.calls)
        if (e.tag == tag) expected.push_back(describe_evidence(e) + e.tag.display());
      for (const Evidence& e : some.calls) got.push_back(describe_evidence(e) + e.tag.display());
      CHECK(got == expected);
      CHECK(some.call_sites == all.call_sites);
      ++compared;
    }
  }
  CHECK(compared > 40);
}

TEST_CASE("search prefilter: MOVZ/MOVK words of a tag make only an ARM64 image's code worth decoding") {
  const Tag tag = *Tag::parse("Qzxw");
  auto scanner = Scanner::create(ScanRequest{{tag}, false});
  REQUIRE(scanner);
  const auto word = [](uint32_t w) { return std::string{char(w), char(w >> 8), char(w >> 16), char(w >> 24)}; };
  const std::string movz_movk = word(0x52800000u | (tag.value & 0xffff) << 5 | 2) +   // movz w2, #low
                                word(0x72a00000u | (tag.value >> 16) << 5 | 2);      // movk w2, #high, lsl #16
  const auto analysed_with = [&](const std::string& sample, const std::string& tail) {
    std::ifstream in(std::string(TAGWHO_SOURCE_DIR) + "/samples/bin/" + sample, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(bytes.size() > 1024);
    bytes.resize((bytes.size() + 3) & ~size_t{3}, '\0');  // the words 4-byte aligned, as ARM64 code is
    bytes += tail;
    const FileResult result =
        scanner->analyse_bytes(sample, ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    REQUIRE(result.report.parsed);
    return result.code_analysed;
  };
  CHECK_FALSE(analysed_with("leak-clang-x64.sys", ""));
  CHECK_FALSE(analysed_with("leak-clang-x64.sys", movz_movk));  // bytes that look like ARM64 words
  CHECK(analysed_with("leak-clang-x64.sys", "Qzxw"));           // the tag's bytes
  CHECK_FALSE(analysed_with("leak-clang-arm64.sys", ""));
  CHECK(analysed_with("leak-clang-arm64.sys", movz_movk));
}

TEST_CASE("a file that shrinks after it was opened is one error with nothing found, and the scan goes on") {
  const fs::path dir = fs::temp_directory_path() / ("tagwho_shrink_scan_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path sample = fs::path(TAGWHO_SOURCE_DIR) / "samples/bin/leak-clang-x64.sys";
  fs::copy_file(sample, dir / "leaky.sys");
  auto scanner = Scanner::create(ScanRequest{{*Tag::parse("Leak")}, false});
  REQUIRE(scanner);
  SourceList sources = open_sources({dir.string()});
  REQUIRE(sources.files.size() == 1);
  const SourceFile& file = sources.files[0];
  // Whole, the file proves Leak.
  const FileResult whole = analyse_source(*scanner, file);
  REQUIRE(whole.report.errors.empty());
  REQUIRE_FALSE(whole.report.findings.empty());
  // Opened (mapped), then cut to its first KB before it is analysed.
  Result<FileBytes> bytes = file.read();
  REQUIRE(bytes);
  fs::resize_file(dir / "leaky.sys", 1024);
  const FileResult cut = analyse_source(*scanner, file, bytes);
  CHECK(cut.report.findings.empty());
  REQUIRE(cut.report.errors.size() == 1);
  CHECK(cut.report.errors[0] == kShrankWhileRead);
  CHECK(cut.report.path == file.path);
  fs::remove_all(dir);
}
