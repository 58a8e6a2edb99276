// Every tag-taking API of the table, the untagged allocators ('None'), PROTECTED_POOL tags, object-reference
// tags (objref, never pool tags) and KMDF calls through the WdfFunctions table: the API table itself, and the
// generated corpus (tests/corpus/src/apis.c) on x86, x64 and ARM64 at every optimisation level, with a
// per-API x arch x opt table printed.
#include <doctest/doctest.h>

#include "corpus_truth.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/x86_model.hpp"
#include "tagwho/byte_view.hpp"
#include "tagwho/code_analysis.hpp"
#include "tagwho/pe_image.hpp"
#include "tagwho/scan.hpp"
#include "tagwho/tag_api.hpp"

namespace fs = std::filesystem;
using namespace tagwho;

TEST_CASE("tag api table: positions and x86 slots as in api_tag_positions.tsv") {
  struct Expect {
    const char* name;
    int index, slot, reg;
    TagKind kind;
  };
  const Expect expected[] = {
      {"ExAllocatePoolWithTag", 3, 2, -1, TagKind::pool},
      {"ExAllocatePool2", 3, 3, -1, TagKind::pool},  // 64-bit POOL_FLAGS: two slots
      {"ExAllocatePool3", 3, 3, -1, TagKind::pool},
      {"ExInitializeNPagedLookasideList", 6, 5, -1, TagKind::pool},
      {"ExInitializePagedLookasideList", 6, 5, -1, TagKind::pool},
      {"ExInitializeLookasideListEx", 7, 6, -1, TagKind::pool},
      {"IoInitializeRemoveLockEx", 2, 1, -1, TagKind::pool},
      {"FltAllocatePoolAlignedWithTag", 4, 3, -1, TagKind::pool},
      {"FltFreePoolAlignedWithTag", 3, 2, -1, TagKind::pool},
      {"NdisAllocateMemoryWithTag", 3, 2, -1, TagKind::pool},
      {"NdisAllocateMemoryWithTagPriority", 3, 2, -1, TagKind::pool},
      {"NdisFreeMemoryWithTag", 2, 1, -1, TagKind::pool},
      {"NdisFreeMemoryWithTagPriority", 3, 2, -1, TagKind::pool},
      {"VideoPortAllocatePool", 4, 3, -1, TagKind::pool},
      {"ObReferenceObjectByHandleWithTag", 5, 4, -1, TagKind::objref},
      {"ObReferenceObjectByPointerWithTag", 5, 4, -1, TagKind::objref},
      {"ObfReferenceObjectWithTag", 2, -1, 1, TagKind::objref},  // __fastcall: edx
      {"ObfDereferenceObjectWithTag", 2, -1, 1, TagKind::objref},
      {"ObDereferenceObjectDeferDeleteWithTag", 2, 1, -1, TagKind::objref},
      {"WdfMemoryCreate", 4, 3, -1, TagKind::pool},         // DriverGlobals prepended
      {"WdfLookasideListCreate", 6, 5, -1, TagKind::pool},
  };
  for (const Expect& e : expected) {
    INFO(e.name);
    const TagApi* api = find_tag_api(e.name);
    REQUIRE(api);
    CHECK(api->tag.index == e.index);
    CHECK(api->tag.x86_slot == e.slot);
    CHECK(api->tag.x86_reg == e.reg);
    CHECK(api->tag_kind == e.kind);
  }
  for (const char* name : {"ExAllocatePool", "ExAllocatePoolWithQuota"}) {
    const TagApi* api = find_tag_api(name);
    REQUIRE(api);
    CHECK_FALSE(api->tag.present());
    CHECK(Tag{api->implicit_tag}.display() == "None");
  }
  CHECK(starts_tag_analysis("WdfVersionBind"));
  CHECK_FALSE(starts_tag_analysis("KeSetEvent"));
  REQUIRE(kmdf_table_apis().size() == 2);
  CHECK(kmdf_table_apis()[0].index == 192);
  CHECK(kmdf_table_apis()[0].api->name == "WdfMemoryCreate");
  CHECK(kmdf_table_apis()[1].index == 198);
  CHECK(kmdf_table_apis()[1].api->name == "WdfLookasideListCreate");
}

// x64 .text at RVA 0x1000 (image base 0x140000000), IAT slot 0x3000 ExAllocatePoolWithTag, 0x3008
// WdfVersionBind, .data at 0x4000 (g_wdf = WdfFunctions_01015 at 0x4000, g_globals at 0x4008):
//     sub rsp, 0x38
//     mov rax, qword ptr [rip + g_wdf]
//     mov rcx, qword ptr [rip + g_globals]
//     xor edx, edx
//     mov r8d, 0x200
//     mov r9d, 0x7C000001
//     call qword ptr [rax + 0x600]        ; WdfFunctions[192] = WdfMemoryCreate: tag is the 4th argument
//     mov rax, qword ptr [rip + g_wdf]
//     mov rcx, qword ptr [rip + g_globals]
//     mov r9d, 0x7C000002
//     call qword ptr [rax + 0x608]        ; WdfFunctions[193]: no tag there
//     mov ecx, 0x200
//     mov edx, 0x40
//     mov r8d, 0xFC000003                 ; PROTECTED_POOL | 0x7C000003
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x38
//     ret
const uint8_t kKmdfX64[] = {
    0x48, 0x83, 0xec, 0x38, 0x48, 0x8b, 0x05, 0xf5, 0x2f, 0x00, 0x00, 0x48, 0x8b, 0x0d, 0xf6, 0x2f, 0x00, 0x00, 0x31,
    0xd2, 0x41, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x41, 0xb9, 0x01, 0x00, 0x00, 0x7c, 0xff, 0x90, 0x00, 0x06, 0x00, 0x00,
    0x48, 0x8b, 0x05, 0xd3, 0x2f, 0x00, 0x00, 0x48, 0x8b, 0x0d, 0xd4, 0x2f, 0x00, 0x00, 0x41, 0xb9, 0x02, 0x00, 0x00,
    0x7c, 0xff, 0x90, 0x08, 0x06, 0x00, 0x00, 0xb9, 0x00, 0x02, 0x00, 0x00, 0xba, 0x40, 0x00, 0x00, 0x00, 0x41, 0xb8,
    0x03, 0x00, 0x00, 0xfc, 0xff, 0x15, 0xaa, 0x1f, 0x00, 0x00, 0x48, 0x83, 0xc4, 0x38, 0xc3};

TEST_CASE("x64 KMDF table call and PROTECTED_POOL on hand-assembled code") {
  static const uint8_t data[16] = {};
  const auto model = [](bool kmdf) {
    x86::CodeModel m;
    m.x64 = true;
    m.image_base = 0x140000000ull;
    m.entry_rva = 0x1000;
    m.sections.push_back({".text", 0x1000, sizeof kKmdfX64, ByteView(kKmdfX64, sizeof kKmdfX64), true});
    m.sections.push_back({".idata", 0x3000, 0x100, ByteView(), false});
    x86::CodeSection d{".data", 0x4000, 0x100, ByteView(data, sizeof data), false};
    d.writable = true;
    m.sections.push_back(d);
    m.imports.push_back({0x3000, "ExAllocatePoolWithTag", find_tag_api("ExAllocatePoolWithTag")});
    m.imports.push_back({0x3008, kmdf ? "WdfVersionBind" : "KeSetEvent", nullptr});
    return m;
  };
  const x86::CodeModel kmdf = model(true);
  const CallSiteAnalysis a = x86::analyse_call_sites(kmdf);
  std::map<uint32_t, Evidence> by_tag;
  for (const Evidence& e : a.calls) by_tag[e.tag.value] = e;
  REQUIRE(by_tag.size() == 2);
  REQUIRE(by_tag.count(0x7C000001));
  CHECK(by_tag[0x7C000001].api == "WdfMemoryCreate");
  CHECK(by_tag[0x7C000001].rva == 0x1020);
  CHECK(by_tag[0x7C000001].pool_type == uint64_t{0x200});  // r8: PoolType (DriverGlobals is rcx)
  CHECK_FALSE(by_tag[0x7C000001].size);                     // BufferSize, [rsp+0x20]: never set here
  REQUIRE(by_tag.count(0x7C000003));  // the high bit stripped, noted
  CHECK(by_tag[0x7C000003].protected_pool);
  CHECK(by_tag[0x7C000003].api == "ExAllocatePoolWithTag");
  // Without WdfVersionBind the same code is no KMDF driver: no table call is reported.
  const x86::CodeModel plain = model(false);
  for (const Evidence& e : x86::analyse_call_sites(plain).calls) CHECK(e.api != "WdfMemoryCreate");
}

namespace {

}  // namespace

TEST_CASE("corpus: every API, 'None', PROTECTED_POOL, objref and KMDF rows on x86, x64 and ARM64") {
  const fs::path dir = test::corpus_dir_for_test();
  if (dir.empty()) return;
  const auto by_file = test::read_truth(dir);
  // expect/api/pattern -> "tc-arch" -> opt -> ok
  std::map<std::string, std::map<std::string, std::map<std::string, bool>>> table;
  for (const auto& [file, rows] : by_file) {
    INFO(file);
    const std::string bytes = test::read_all(dir / file);
    const ByteView view(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    auto image = PeImage::load(view);
    REQUIRE_MESSAGE(image, file);
    const CallSiteAnalysis a = analyser_for(image->machine())->find_call_site_tags(*image);
    const std::string stem = file.substr(0, file.rfind('.'));
    const std::string config = stem.substr(0, stem.rfind('-'));
    const std::string opt = stem.substr(stem.rfind('-') + 1);
    for (const test::TruthRow& row : rows) {
      if (row.expect == "wrapper") continue;  // test_wrappers.cpp
      INFO(row.tag << " " << row.expect << " " << row.api << " " << row.pattern);
      const uint32_t value = test::tag_value(row.tag);
      bool pool_any = false, pool_call_api = false, objref_api = false, protected_ok = false;
      for (const Evidence& e : a.calls) {
        if (e.tag.value != value) continue;
        if (e.tag_kind == TagKind::pool) {
          pool_any = true;
          if (e.kind == Confidence::call && e.api == row.api) {
            pool_call_api = true;
            protected_ok |= e.protected_pool;
          }
        } else if (e.kind == Confidence::call && e.api == row.api) {
          objref_api = true;
        }
      }
      bool ok = false;
      if (row.expect == "call") {
        ok = pool_call_api && (row.pattern.rfind("protected", 0) != 0 || protected_ok);
      } else if (row.expect == "objref") {
        ok = objref_api && !pool_any;  // recovered, and never as a pool tag
      } else {
        ok = !pool_any && !objref_api;
      }
      CHECK(ok);
      table[row.expect + " " + row.api + " (" + row.pattern + ")"][config][opt] = ok;
    }
  }
  // Rows of the other patterns are covered by the older corpus tests: print the apis.c ones.
  std::ostringstream out;
  for (const auto& [key, configs] : table) {
    if (key.find("ExAllocatePoolWithTag (") != std::string::npos && key.find("protected") == std::string::npos) continue;
    if (key.rfind("decoy - (", 0) == 0 && key.find("non-tag-api") == std::string::npos &&
        key.find("untagged") == std::string::npos && key.find("kmdf") == std::string::npos)
      continue;
    out << "\n  " << key << ":";
    for (const auto& [config, opts] : configs) {
      out << "  " << config << " ";
      for (const auto& [opt, ok] : opts) out << (ok ? '+' : '-');
    }
  }
  MESSAGE("per API x arch x opt (+ as expected, - not; opts O0 O1 O2 Os):" << out.str());
}

TEST_CASE("driver mode keeps objref tags apart, a search for them finds no call evidence") {
  const fs::path dir = test::corpus_dir_for_test();
  if (dir.empty()) return;
  REQUIRE(fs::exists(dir / "clang-x64-O2.sys"));
  for (const char* name : {"clang-x64-O2.sys", "mingw-x86-O1.sys", "clang-arm64-O1.sys"}) {
    INFO(name);
    ScanRequest driver;
    driver.all_tags = true;
    auto scanner = Scanner::create(driver);
    REQUIRE(scanner);
    const FileResult r = scanner->analyse((dir / name).string());
    std::set<std::string> pool, objref;
    for (const Finding& f : r.report.findings) pool.insert(f.tag.display());
    for (const Finding& f : r.report.objref_findings) {
      objref.insert(f.tag.display());
      for (const Evidence& e : f.evidence) CHECK(e.tag_kind == TagKind::objref);
    }
    for (const char* t : {"ObHd", "ObPt", "ObRf", "ObDf", "ObDd"}) {
      CHECK(objref.count(t) == 1);
      CHECK(pool.count(t) == 0);
    }
    CHECK(pool.count("None") == 1);
    CHECK(pool.count("Prot") == 1);
    // A search for an objref tag: no call evidence (the tag is no pool tag of this driver).
    ScanRequest search;
    search.tags = {*Tag::parse("ObRf")};
    auto searcher = Scanner::create(search);
    REQUIRE(searcher);
    const FileResult s = searcher->analyse((dir / name).string());
    for (const Finding& f : s.report.findings) CHECK(f.best < Confidence::wrapper);
    CHECK(s.report.objref_findings.empty());
  }
}
