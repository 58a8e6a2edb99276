// The scan pipeline: the answer never depends on the number of threads or the order files are taken in.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>

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
  }
}
