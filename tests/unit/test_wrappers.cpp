// Wrappers across functions: the fixpoint on hand-assembled x64 code, memory constants (read-only data,
// globals never written), and the generated corpus on x86, x64 and ARM64 (tests/corpus/src/wrappers.c: every
// wrapper row reported as wrapper or call with the right API, every call row as call, no decoy as either).
// The hand-encoded ARM64 wrapper test is in test_arm64_analysis.cpp.
#include <doctest/doctest.h>

#include "corpus_truth.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/wrappers.hpp"
#include "analysis/x86_model.hpp"
#include "tagwho/byte_view.hpp"
#include "tagwho/code_analysis.hpp"
#include "tagwho/pe_image.hpp"
#include "tagwho/tag_api.hpp"

using namespace tagwho;
namespace fs = std::filesystem;

namespace {

// --- Hand-assembled x64 code ------------------------------------------------------------------------------------
// .text at RVA 0x1000 (image base 0x140000000), .rdata at 0x2000 (read-only), .data at 0x4000 (writable),
// IAT slots at RVA 0x3000 + 8*i: 0 ExAllocatePoolWithTag, 1 ExFreePoolWithTag, 2 ExInitializeNPagedLookasideList,
// 3 ExAllocatePool2, 4 DbgPrint. Assembled with llvm-mc -x86-asm-syntax=intel -filetype=obj, then ld.lld
// -Ttext=0x140001000 --oformat binary --defsym slot_alloc=0x140003000 ... ro_tag=0x140002000 gl_tag=0x140004100
// gw_tag=0x140004200 gt_tag=0x140004300 (the source is in the comment).
//   w1:                                   ; 0x1000 w1(size, tag): a leaf tail jump (no .pdata)
//     mov r8d, edx
//     mov rdx, rcx
//     mov ecx, 0x200
//     jmp qword ptr [rip + slot_alloc]
//   .p2align 4, 0xcc
//   w2:                                   ; 0x1020 w2(tag, size) -> w1(size, tag)
//     sub rsp, 0x28
//     mov eax, ecx
//     mov rcx, rdx
//     mov edx, eax
//     call w1
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   w3:                                   ; 0x1040 -O0 style: spills to the home area, then w2(tag, size)
//     mov dword ptr [rsp + 0x10], edx
//     mov qword ptr [rsp + 8], rcx
//     sub rsp, 0x28
//     mov rdx, qword ptr [rsp + 0x30]
//     mov ecx, dword ptr [rsp + 0x38]
//     call w2
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   w5:                                   ; 0x1060 w5(list, a, b, c, tag): the 5th parameter, on the stack
//     sub rsp, 0x48
//     mov eax, dword ptr [rsp + 0x70]
//     mov dword ptr [rsp + 0x28], eax
//     mov dword ptr [rsp + 0x30], 0
//     mov qword ptr [rsp + 0x20], 0x40
//     xor r9d, r9d
//     xor r8d, r8d
//     xor edx, edx
//     call qword ptr [rip + slot_lookaside]
//     add rsp, 0x48
//     ret
//   .p2align 4, 0xcc
//   rec:                                  ; 0x1090 rec(n, tag): recursion, then a tail jump to w1
//     test rcx, rcx
//     je .Lrec
//     dec rcx
//     jmp rec
//   .Lrec:
//     jmp w1
//   .p2align 4, 0xcc
//   decoy:                                ; 0x10a0 decoy(n): n is the size, the tag is a constant
//     mov edx, ecx
//     mov ecx, 0x10
//     mov r8d, 0x5B000001
//     jmp qword ptr [rip + slot_alloc]
//   .p2align 4, 0xcc
//   caller:                               ; 0x10c0
//     sub rsp, 0x38
//     mov ecx, 0x40
//     mov edx, 0x5A000001
//     call w1
//     mov ecx, 0x5A000002
//     mov edx, 0x10
//     call w2
//     mov ecx, 0x20
//     mov edx, 0x5A000003
//     call w3
//     mov dword ptr [rsp + 0x20], 0x5A000004
//     xor ecx, ecx
//     call w5
//     mov ecx, 5
//     mov edx, 0x5A000005
//     call rec
//     mov ecx, 0x5D000001
//     call decoy
//     add rsp, 0x38
//     ret
//   .p2align 4, 0xcc
//   loads:                                ; 0x1120 tags loaded from memory
//     sub rsp, 0x28
//     mov r8d, dword ptr [rip + ro_tag]
//     mov edx, 0x10
//     xor ecx, ecx
//     call qword ptr [rip + slot_alloc]
//     mov r8d, dword ptr [rip + gl_tag]
//     mov edx, 0x10
//     xor ecx, ecx
//     call qword ptr [rip + slot_alloc]
//     mov r8d, dword ptr [rip + gw_tag]
//     mov edx, 0x10
//     xor ecx, ecx
//     call qword ptr [rip + slot_alloc]
//     mov r8d, dword ptr [rip + gt_tag]
//     mov edx, 0x10
//     xor ecx, ecx
//     call qword ptr [rip + slot_alloc]
//     add rsp, 0x28
//     ret
//   .p2align 4, 0xcc
//   writer:                               ; 0x1180 writes gw_tag, takes the address of gt_tag
//     mov dword ptr [rip + gw_tag], ecx
//     lea rax, [rip + gt_tag]
//     ret
const std::vector<uint8_t> kWrappersX64Text = {
  0x41, 0x89, 0xd0, 0x48, 0x89, 0xca, 0xb9, 0x00, 0x02, 0x00, 0x00, 0xff,
  0x25, 0xef, 0x1f, 0x00, 0x00, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0x48, 0x83, 0xec, 0x28,
  0x89, 0xc8, 0x48, 0x89, 0xd1, 0x89, 0xc2, 0xe8, 0xd0, 0xff, 0xff, 0xff,
  0x48, 0x83, 0xc4, 0x28, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0x89, 0x54, 0x24, 0x10, 0x48, 0x89, 0x4c, 0x24,
  0x08, 0x48, 0x83, 0xec, 0x28, 0x48, 0x8b, 0x54, 0x24, 0x30, 0x8b, 0x4c,
  0x24, 0x38, 0xe8, 0xc5, 0xff, 0xff, 0xff, 0x48, 0x83, 0xc4, 0x28, 0xc3,
  0x48, 0x83, 0xec, 0x48, 0x8b, 0x44, 0x24, 0x70, 0x89, 0x44, 0x24, 0x28,
  0xc7, 0x44, 0x24, 0x30, 0x00, 0x00, 0x00, 0x00, 0x48, 0xc7, 0x44, 0x24,
  0x20, 0x40, 0x00, 0x00, 0x00, 0x45, 0x31, 0xc9, 0x45, 0x31, 0xc0, 0x31,
  0xd2, 0xff, 0x15, 0x85, 0x1f, 0x00, 0x00, 0x48, 0x83, 0xc4, 0x48, 0xc3,
  0x48, 0x85, 0xc9, 0x74, 0x05, 0x48, 0xff, 0xc9, 0xeb, 0xf6, 0xe9, 0x61,
  0xff, 0xff, 0xff, 0xcc, 0x89, 0xca, 0xb9, 0x10, 0x00, 0x00, 0x00, 0x41,
  0xb8, 0x01, 0x00, 0x00, 0x5b, 0xff, 0x25, 0x4d, 0x1f, 0x00, 0x00, 0xcc,
  0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x48, 0x83, 0xec, 0x38, 0xb9, 0x40, 0x00, 0x00, 0x00, 0xba, 0x01, 0x00,
  0x00, 0x5a, 0xe8, 0x2d, 0xff, 0xff, 0xff, 0xb9, 0x02, 0x00, 0x00, 0x5a,
  0xba, 0x10, 0x00, 0x00, 0x00, 0xe8, 0x3e, 0xff, 0xff, 0xff, 0xb9, 0x20,
  0x00, 0x00, 0x00, 0xba, 0x03, 0x00, 0x00, 0x5a, 0xe8, 0x4f, 0xff, 0xff,
  0xff, 0xc7, 0x44, 0x24, 0x20, 0x04, 0x00, 0x00, 0x5a, 0x31, 0xc9, 0xe8,
  0x60, 0xff, 0xff, 0xff, 0xb9, 0x05, 0x00, 0x00, 0x00, 0xba, 0x05, 0x00,
  0x00, 0x5a, 0xe8, 0x81, 0xff, 0xff, 0xff, 0xb9, 0x01, 0x00, 0x00, 0x5d,
  0xe8, 0x87, 0xff, 0xff, 0xff, 0x48, 0x83, 0xc4, 0x38, 0xc3, 0xcc, 0xcc,
  0x48, 0x83, 0xec, 0x28, 0x44, 0x8b, 0x05, 0xd5, 0x0e, 0x00, 0x00, 0xba,
  0x10, 0x00, 0x00, 0x00, 0x31, 0xc9, 0xff, 0x15, 0xc8, 0x1e, 0x00, 0x00,
  0x44, 0x8b, 0x05, 0xc1, 0x2f, 0x00, 0x00, 0xba, 0x10, 0x00, 0x00, 0x00,
  0x31, 0xc9, 0xff, 0x15, 0xb4, 0x1e, 0x00, 0x00, 0x44, 0x8b, 0x05, 0xad,
  0x30, 0x00, 0x00, 0xba, 0x10, 0x00, 0x00, 0x00, 0x31, 0xc9, 0xff, 0x15,
  0xa0, 0x1e, 0x00, 0x00, 0x44, 0x8b, 0x05, 0x99, 0x31, 0x00, 0x00, 0xba,
  0x10, 0x00, 0x00, 0x00, 0x31, 0xc9, 0xff, 0x15, 0x8c, 0x1e, 0x00, 0x00,
  0x48, 0x83, 0xc4, 0x28, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
  0x89, 0x0d, 0x7a, 0x30, 0x00, 0x00, 0x48, 0x8d, 0x05, 0x73, 0x31, 0x00,
  0x00, 0xc3};

constexpr uint32_t kTextRva = 0x1000;

struct Image {
  std::vector<uint8_t> rdata = std::vector<uint8_t>(0x100, 0);
  std::vector<uint8_t> data = std::vector<uint8_t>(0x400, 0);
  x86::CodeModel model;
};

void put32(std::vector<uint8_t>& v, size_t at, uint32_t value) {
  for (int i = 0; i < 4; ++i) v[at + static_cast<size_t>(i)] = static_cast<uint8_t>(value >> (8 * i));
}

// The x64 model of the code above; functions as .pdata sees them (w1, rec and decoy are leaves without).
void make_image(Image& img, const std::vector<uint8_t>& text) {
  put32(img.rdata, 0, 0x52000001);        // ro_tag
  put32(img.data, 0x100, 0x47000001);     // gl_tag: never written
  put32(img.data, 0x200, 0x47000002);     // gw_tag: written by `writer`
  put32(img.data, 0x300, 0x47000003);     // gt_tag: address taken by `writer`
  x86::CodeModel& m = img.model;
  m.x64 = true;
  m.image_base = 0x140000000ull;
  m.entry_rva = 0x10c0;
  m.sections.push_back({".text", kTextRva, static_cast<uint32_t>(text.size()), ByteView(text.data(), text.size()), true});
  m.sections.push_back({".rdata", 0x2000, 0x100, ByteView(img.rdata.data(), img.rdata.size()), false});
  m.sections.push_back({".idata", 0x3000, 0x100, ByteView(), false});
  x86::CodeSection data{".data", 0x4000, 0x400, ByteView(img.data.data(), img.data.size()), false};
  data.writable = true;
  m.sections.push_back(data);
  const char* names[] = {"ExAllocatePoolWithTag", "ExFreePoolWithTag", "ExInitializeNPagedLookasideList",
                         "ExAllocatePool2", "DbgPrint"};
  for (uint32_t i = 0; i < 5; ++i) m.imports.push_back({0x3000 + i * 8, names[i], find_tag_api(names[i])});
  m.functions = {{0x1020, 0x1035}, {0x1040, 0x1060}, {0x1060, 0x1090}, {0x10c0, 0x111e}, {0x1120, 0x1179}};
}

std::vector<Evidence> with_tag(const CallSiteAnalysis& a, uint32_t tag) {
  std::vector<Evidence> out;
  for (const Evidence& e : a.calls)
    if (e.tag.value == tag) out.push_back(e);
  return out;
}

Evidence one(const CallSiteAnalysis& a, uint32_t tag) {
  std::vector<Evidence> found = with_tag(a, tag);
  INFO("tag 0x" << std::hex << tag);
  REQUIRE(found.size() == 1);
  return found[0];
}

}  // namespace

TEST_CASE("wrappers: the fixpoint on hand-assembled x64 code") {
  Image img;
  make_image(img, kWrappersX64Text);
  const CallSiteAnalysis a = x86::analyse_call_sites(img.model);
  using Chain = std::vector<std::string>;

  SUBCASE("one level: a leaf that tail-jumps to the import with the tag in r8") {
    Evidence e = one(a, 0x5A000001);
    CHECK(e.kind == Confidence::wrapper);
    CHECK(e.api == "ExAllocatePoolWithTag");
    CHECK(e.form == CallForm::direct);
    CHECK(e.rva == 0x10ce);
    CHECK(e.tag_rva == 0x10c9);
    CHECK(e.chain == Chain{"sub@0x1000", "ExAllocatePoolWithTag"});
    CHECK(e.pool_type == std::optional<uint64_t>(0x200));
  }
  SUBCASE("two levels, arguments swapped on the way") {
    CHECK(one(a, 0x5A000002).chain == Chain{"sub@0x1020", "sub@0x1000", "ExAllocatePoolWithTag"});
  }
  SUBCASE("three levels through -O0 home-area spills") {
    CHECK(one(a, 0x5A000003).chain ==
          Chain{"sub@0x1040", "sub@0x1020", "sub@0x1000", "ExAllocatePoolWithTag"});
  }
  SUBCASE("a stack parameter reaching the lookaside initialiser's 6th argument") {
    Evidence e = one(a, 0x5A000004);
    CHECK(e.api == "ExInitializeNPagedLookasideList");
    CHECK(e.chain == Chain{"sub@0x1060", "ExInitializeNPagedLookasideList"});
    CHECK(e.size == std::optional<uint64_t>(0x40));
  }
  SUBCASE("recursion and a tail jump to a wrapper") {
    CHECK(one(a, 0x5A000005).chain == Chain{"sub@0x1090", "sub@0x1000", "ExAllocatePoolWithTag"});
  }
  SUBCASE("a parameter that is the size is not a tag; a function's own parameter is never a tag") {
    CHECK(with_tag(a, 0x5D000001).empty());
    CHECK(one(a, 0x5B000001).kind == Confidence::call);
    for (const Evidence& e : a.calls) {
      INFO("rva 0x" << std::hex << e.rva << " tag 0x" << e.tag.value);
      CHECK(e.tag.value != 0);
      CHECK(e.chain.size() <= 4);
    }
  }
  SUBCASE("tags loaded from memory") {
    Evidence ro = one(a, 0x52000001);
    CHECK(ro.kind == Confidence::call);
    CHECK(ro.detail == "tag loaded from .rdata at 0x2000");
    CHECK(ro.tag_rva == 0x1124);
    Evidence gl = one(a, 0x47000001);
    CHECK(gl.kind == Confidence::call);
    CHECK(gl.detail == "tag loaded from global at 0x4100 (never written)");
    CHECK(with_tag(a, 0x47000002).empty());  // written by `writer`
    CHECK(with_tag(a, 0x47000003).empty());  // its address is taken
  }
  SUBCASE("nothing else") {
    const std::set<uint32_t> expected = {0x5A000001, 0x5A000002, 0x5A000003, 0x5A000004, 0x5A000005,
                                         0x5B000001, 0x52000001, 0x47000001};
    std::set<uint32_t> got;
    for (const Evidence& e : a.calls) got.insert(e.tag.value);
    CHECK(got == expected);
  }
}

TEST_CASE("wrappers: bounded on hostile call graphs") {
  // A chain of 40 functions each passing its rcx on to the next (f_i: jmp f_{i+1}; the last: mov r8d, ecx;
  // jmp [slot]), each called with a constant from a function at the end: the depth limit stops the chain.
  std::vector<uint8_t> text;
  const uint32_t n = 40;
  // f_i at 0x1000 + 16*i: mov eax, ecx (2 bytes: 89 c8); mov ecx, eax (89 c1); call/jmp rel32 next.
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t at = kTextRva + static_cast<uint32_t>(text.size());
    if (i + 1 < n) {
      // sub rsp,0x28; call f_{i+1}; add rsp,0x28; ret  (not a tail call: each level is a real frame)
      for (uint8_t b : {0x48, 0x83, 0xec, 0x28}) text.push_back(b);
      const uint32_t target = kTextRva + 16 * (i + 1);
      const uint32_t rel = target - (at + 9);
      text.push_back(0xe8);
      for (int k = 0; k < 4; ++k) text.push_back(static_cast<uint8_t>(rel >> (8 * k)));
      for (uint8_t b : {0x48, 0x83, 0xc4, 0x28, 0xc3}) text.push_back(b);
      while (text.size() % 16) text.push_back(0xcc);
    } else {
      // mov r8d, ecx; xor ecx, ecx; mov edx, 0x10; jmp [rip+slot]
      for (uint8_t b : {0x41, 0x89, 0xc8, 0x31, 0xc9, 0xba, 0x10, 0x00, 0x00, 0x00}) text.push_back(b);
      const uint32_t rel = 0x3000 - (at + 16);
      text.push_back(0xff);
      text.push_back(0x25);
      for (int k = 0; k < 4; ++k) text.push_back(static_cast<uint8_t>(rel >> (8 * k)));
      while (text.size() % 16) text.push_back(0xcc);
    }
  }
  // callers: for each f_i: mov ecx, 0x60000000+i; call f_i ... ret
  const uint32_t callers = kTextRva + static_cast<uint32_t>(text.size());
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t at = kTextRva + static_cast<uint32_t>(text.size());
    text.push_back(0xb9);
    for (int k = 0; k < 4; ++k) text.push_back(static_cast<uint8_t>((0x60000000u + i) >> (8 * k)));
    const uint32_t rel = kTextRva + 16 * i - (at + 10);
    text.push_back(0xe8);
    for (int k = 0; k < 4; ++k) text.push_back(static_cast<uint8_t>(rel >> (8 * k)));
  }
  text.push_back(0xc3);
  x86::CodeModel m;
  m.x64 = true;
  m.image_base = 0x140000000ull;
  m.entry_rva = callers;
  m.sections.push_back({".text", kTextRva, static_cast<uint32_t>(text.size()), ByteView(text.data(), text.size()), true});
  m.sections.push_back({".idata", 0x3000, 0x100, ByteView(), false});
  m.imports.push_back({0x3000, "ExAllocatePoolWithTag", find_tag_api("ExAllocatePoolWithTag")});
  const auto t0 = std::chrono::steady_clock::now();
  const CallSiteAnalysis a = x86::analyse_call_sites(m);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  CHECK(ms < 5000);
  const wrappers::Limits limits;
  size_t found = 0;
  for (const Evidence& e : a.calls) {
    CHECK(e.kind == Confidence::wrapper);
    CHECK(e.chain.size() <= limits.max_depth + 1);
    ++found;
  }
  // The innermost max_depth functions are found (chains of 1..max_depth wrappers before the API), the rest not.
  CHECK(found == limits.max_depth);
  CHECK(std::any_of(a.problems.begin(), a.problems.end(),
                    [](const std::string& p) { return p.find("wrapper analysis limited") != std::string::npos; }));
}

// --- The generated corpus ---------------------------------------------------------------------------------------

namespace {

struct Recall {
  size_t total = 0, ok = 0;
};

}  // namespace

TEST_CASE("corpus: wrapper rows as wrapper or call, call rows as call, decoys as neither (x86, x64, ARM64)") {
  const fs::path dir = test::corpus_dir_for_test();
  if (dir.empty()) return;
  const auto by_file = test::read_truth(dir);
  std::map<std::string, Recall> by_pattern;  // over all x86/x64 files
  // ARM64: per pattern and optimisation level ("O0"...), and how wrapper rows were found.
  std::map<std::string, std::map<std::string, Recall>> arm64_by_pattern;
  std::map<std::string, std::map<std::string, std::string>> arm64_how;
  size_t files = 0, arm64_files = 0;
  for (const auto& [file, rows] : by_file) {
    INFO(file);
    auto mapped = MappedFile::open((dir / file).string());
    REQUIRE_MESSAGE(mapped, file);
    auto image = PeImage::load(mapped->view());
    REQUIRE_MESSAGE(image, file);
    const bool arm64 = image->machine() == Machine::arm64;
    if (arm64) {
      ++arm64_files;
    } else {
      REQUIRE((image->machine() == Machine::x86 || image->machine() == Machine::x64));
      ++files;
    }
    const std::string opt = file.substr(file.rfind('-') + 1, file.rfind('.') - file.rfind('-') - 1);
    const CallSiteAnalysis a = analyser_for(image->machine())->find_call_site_tags(*image);
    std::string missed;
    for (const test::TruthRow& row : rows) {
      INFO(row.tag << " " << row.expect << " " << row.pattern);
      const uint32_t value = test::tag_value(row.tag);
      bool call = false, call_api = false, wrapper = false, wrapper_api = false;
      size_t longest = 0;
      for (const Evidence& e : a.calls) {
        if (e.tag.value != value || e.tag_kind != TagKind::pool) continue;  // objref: test_tag_apis.cpp
        if (e.kind == Confidence::call) {
          call = true;
          call_api |= e.api == row.api;
        } else if (e.kind == Confidence::wrapper) {
          wrapper = true;
          const bool chain_ok = e.chain.size() >= 2 && e.chain.back() == row.api && e.api == row.api;
          CHECK_MESSAGE(chain_ok, "chain of " << row.tag << " does not end in " << row.api);
          wrapper_api |= chain_ok;
          if (chain_ok) longest = std::max(longest, e.chain.size() - 1);
        }
      }
      bool ok = false;
      if (row.expect == "wrapper") {
        ok = call_api || wrapper_api;
        CHECK(ok);
      } else if (row.expect == "call") {
        ok = call_api;
        CHECK(ok);
      } else {
        ok = !call && !wrapper;
        CHECK(ok);
      }
      if (!ok) missed += " " + row.tag + "(" + row.pattern + ")";
      const std::string key = row.expect + " " + row.pattern;
      Recall& r = arm64 ? arm64_by_pattern[key][opt] : by_pattern[key];
      ++r.total;
      r.ok += ok;
      if (arm64 && row.expect == "wrapper") {
        std::string& how = arm64_how[key][opt];
        const std::string found = call_api ? "call" : wrapper_api ? "wrapper(" + std::to_string(longest) + ")" : "-";
        if (how.find(found) == std::string::npos) how += (how.empty() ? "" : "/") + found;
      }
    }
    if (!missed.empty()) MESSAGE(file << ": missed" << missed);
  }
  std::ostringstream table;
  for (const auto& [pattern, r] : by_pattern) table << "\n  " << pattern << ": " << r.ok << "/" << r.total;
  MESSAGE("corpus, " << files << " x86/x64 files, per pattern (expect pattern: as expected/rows):" << table.str());
  if (arm64_files > 0) {
    std::ostringstream t;
    for (const auto& [pattern, per_opt] : arm64_by_pattern) {
      t << "\n  " << pattern << ":";
      for (const auto& [opt, r] : per_opt) {
        t << "  " << opt << " " << r.ok << "/" << r.total;
        if (auto it = arm64_how.find(pattern); it != arm64_how.end() && it->second.count(opt))
          t << " " << it->second.at(opt);
      }
    }
    MESSAGE("corpus, " << arm64_files << " ARM64 files, per pattern and level (as expected/rows; wrapper rows: "
                       << "found as call or wrapper(levels)):" << t.str());
  }
}
