// ARM64 call-site analysis (Capstone) and the ARM64 literal search: hand-encoded instruction words for each
// call form and data-flow shape, wrappers across functions and memory constants on hand-encoded words,
// MOVZ/MOVK literal matching on hand-written words, the ARM64 sample drivers (the leak sample is found by
// "tagwho Leak" although its bytes never contain "Leak"), and the ARM64 builds of the generated corpus
// (recall per optimisation level; wrapper rows are checked with x86/x64 in test_wrappers.cpp).
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
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/arm64_dataflow.hpp"
#include "analysis/arm64_model.hpp"
#include "analysis/call_sites.hpp"
#include "scan/classify.hpp"
#include "tagwho/byte_view.hpp"
#include "tagwho/code_analysis.hpp"
#include "tagwho/literal_matcher.hpp"
#include "tagwho/pe_image.hpp"
#include "tagwho/report.hpp"
#include "tagwho/scan.hpp"
#include "tagwho/tag_api.hpp"

using namespace tagwho;
namespace fs = std::filesystem;

namespace {

// --- A tiny ARM64 encoder for the instructions the tests need --------------------------------------------
namespace a64 {
uint32_t movz_w(unsigned rd, uint16_t imm, unsigned hw = 0) { return 0x52800000u | hw << 21 | uint32_t{imm} << 5 | rd; }
uint32_t movk_w(unsigned rd, uint16_t imm, unsigned hw = 1) { return 0x72800000u | hw << 21 | uint32_t{imm} << 5 | rd; }
uint32_t movz_x(unsigned rd, uint16_t imm, unsigned hw = 0) { return 0xd2800000u | hw << 21 | uint32_t{imm} << 5 | rd; }
uint32_t movk_x(unsigned rd, uint16_t imm, unsigned hw = 1) { return 0xf2800000u | hw << 21 | uint32_t{imm} << 5 | rd; }
uint32_t adrp(unsigned rd, uint32_t from, uint32_t to) {
  const int32_t pages = static_cast<int32_t>(to >> 12) - static_cast<int32_t>(from >> 12);
  const uint32_t imm = static_cast<uint32_t>(pages) & 0x1fffff;
  return 0x90000000u | (imm & 3) << 29 | (imm >> 2) << 5 | rd;
}
uint32_t ldr_x(unsigned rt, unsigned rn, uint32_t off) { return 0xf9400000u | (off / 8) << 10 | rn << 5 | rt; }
uint32_t ldr_w(unsigned rt, unsigned rn, uint32_t off) { return 0xb9400000u | (off / 4) << 10 | rn << 5 | rt; }
uint32_t str_x(unsigned rt, unsigned rn, uint32_t off) { return 0xf9000000u | (off / 8) << 10 | rn << 5 | rt; }
uint32_t str_w(unsigned rt, unsigned rn, uint32_t off) { return 0xb9000000u | (off / 4) << 10 | rn << 5 | rt; }
uint32_t mov_w(unsigned rd, unsigned rm) { return 0x2a0003e0u | rm << 16 | rd; }  // orr wd, wzr, wm
uint32_t mov_x(unsigned rd, unsigned rm) { return 0xaa0003e0u | rm << 16 | rd; }  // orr xd, xzr, xm
uint32_t orr_w(unsigned rd, unsigned rn, unsigned rm) { return 0x2a000000u | rm << 16 | rn << 5 | rd; }
uint32_t add_x(unsigned rd, unsigned rn, uint32_t imm) { return 0x91000000u | imm << 10 | rn << 5 | rd; }
uint32_t blr(unsigned rn) { return 0xd63f0000u | rn << 5; }
uint32_t br(unsigned rn) { return 0xd61f0000u | rn << 5; }
uint32_t bl(uint32_t from, uint32_t to) { return 0x94000000u | ((to - from) / 4 & 0x3ffffff); }
uint32_t b(uint32_t from, uint32_t to) { return 0x14000000u | ((to - from) / 4 & 0x3ffffff); }
uint32_t b_ne(uint32_t from, uint32_t to) { return 0x54000001u | ((to - from) / 4 & 0x7ffff) << 5; }
uint32_t cmp_w_imm(unsigned rn, uint32_t imm) { return 0x7100001fu | imm << 10 | rn << 5; }
uint32_t cmp_w(unsigned rn, unsigned rm) { return 0x6b00001fu | rm << 16 | rn << 5; }
uint32_t csel_w(unsigned rd, unsigned rn, unsigned rm, unsigned cond) { return 0x1a800000u | rm << 16 | cond << 12 | rn << 5 | rd; }
uint32_t sub_sp(uint32_t imm) { return 0xd10003ffu | imm << 10; }
uint32_t add_sp(uint32_t imm) { return 0x910003ffu | imm << 10; }
constexpr uint32_t kRet = 0xd65f03c0u;
constexpr uint32_t kStpFpLr = 0xa9bf7bfdu;   // stp x29, x30, [sp, #-16]!
constexpr uint32_t kLdpFpLr = 0xa8c17bfdu;   // ldp x29, x30, [sp], #16
constexpr uint32_t kMovFpSp = 0x910003fdu;   // mov x29, sp
constexpr uint32_t kNop = 0xd503201fu;
constexpr uint32_t kOrrW2Pattern = 0x3200d7e2u;  // mov w2, #0x3f3f3f3f (orr w2, wzr, #0x3f3f3f3f)
constexpr unsigned kEq = 0;
}  // namespace a64

constexpr uint64_t kBase = 0x140000000ull;
constexpr uint32_t kText = 0x1000;
constexpr uint32_t kIat = 0x3000;  // slots: 0 ExAllocatePoolWithTag, 1 ExFreePoolWithTag,
                                   // 2 ExInitializeNPagedLookasideList, 3 DbgPrint

// Code assembled function by function at fixed RVAs, with a .pdata entry per function.
struct Program {
  std::vector<uint32_t> words;  // from kText
  std::vector<RuntimeFunction> functions;
  uint32_t at(uint32_t rva) {
    if (words.size() < (rva - kText) / 4) words.resize((rva - kText) / 4, a64::kNop);
    return rva;
  }
  void put(uint32_t rva, std::initializer_list<uint32_t> code, bool function = true) {
    at(rva);
    const size_t i = (rva - kText) / 4;
    if (words.size() < i + code.size()) words.resize(i + code.size(), a64::kNop);
    std::copy(code.begin(), code.end(), words.begin() + static_cast<long>(i));
    if (function) functions.push_back(RuntimeFunction{rva, rva + static_cast<uint32_t>(code.size() * 4)});
  }
  void put(uint32_t rva, const std::vector<uint32_t>& code) {
    at(rva);
    const size_t i = (rva - kText) / 4;
    if (words.size() < i + code.size()) words.resize(i + code.size(), a64::kNop);
    std::copy(code.begin(), code.end(), words.begin() + static_cast<long>(i));
    functions.push_back(RuntimeFunction{rva, rva + static_cast<uint32_t>(code.size() * 4)});
  }
};

struct Built {
  std::vector<uint8_t> text;
  std::vector<uint8_t> iat = std::vector<uint8_t>(0x100, 0);
  arm64::CodeModel model;
};

void build(const Program& p, Built& out) {
  out.text.clear();
  for (uint32_t w : p.words)
    for (int i = 0; i < 4; ++i) out.text.push_back(static_cast<uint8_t>(w >> (8 * i)));
  arm64::CodeModel& m = out.model;
  m = {};
  m.image_base = kBase;
  m.sections.push_back(arm64::CodeSection{".text", kText, static_cast<uint32_t>(out.text.size()),
                                          ByteView(out.text.data(), out.text.size()), true});
  m.sections.push_back(arm64::CodeSection{".rdata", kIat, 0x100, ByteView(out.iat.data(), out.iat.size()), false});
  const char* names[] = {"ExAllocatePoolWithTag", "ExFreePoolWithTag", "ExInitializeNPagedLookasideList", "DbgPrint"};
  for (uint32_t i = 0; i < 4; ++i) m.imports.push_back(arm64::ImportRef{kIat + 8 * i, names[i], find_tag_api(names[i])});
  m.functions = p.functions;
  std::sort(m.functions.begin(), m.functions.end(),
            [](const RuntimeFunction& a, const RuntimeFunction& b) { return a.begin_rva < b.begin_rva; });
}

std::vector<const Evidence*> with_tag(const CallSiteAnalysis& a, uint32_t tag) {
  std::vector<const Evidence*> out;
  for (const Evidence& e : a.calls)
    if (e.tag.value == tag) out.push_back(&e);
  return out;
}

}  // namespace

TEST_CASE("arm64 call forms and data flow on hand-encoded code") {
  using namespace a64;
  Program p;
  const uint32_t thunk = 0x1400;
  // F1: adrp/ldr and movz/movk interleaved with other argument set-up, then blr.
  p.put(0x1000, {adrp(8, 0x1000, kIat), movz_w(2, 0x0001), movz_w(0, 0x200), movz_w(1, 0x40), movk_w(2, 0x7a00),
                 ldr_x(8, 8, 0), blr(8), kRet});
  // F2: tag and import kept in callee-saved registers across a call, in a loop.
  p.put(0x1040, {kStpFpLr, kMovFpSp, movz_w(19, 0x0002), movk_w(19, 0x7a00), adrp(20, 0x1050, kIat), ldr_x(20, 20, 0),
                 /*0x1058*/ bl(0x1058, 0x1000), mov_w(2, 19), movz_w(0, 1), movz_w(1, 0x80), blr(20),
                 cmp_w_imm(0, 0), b_ne(0x1070, 0x1058), kLdpFpLr, kRet});
  // F3: bl to an import thunk (ExFreePoolWithTag: tag in w1).
  p.put(0x1100, {kStpFpLr, movz_w(1, 0x0003), movk_w(1, 0x7a00), bl(0x110c, thunk), kLdpFpLr, kRet});
  // F4: tail branch to the thunk.
  p.put(0x1140, {movz_w(1, 0x0004), movk_w(1, 0x7a00), b(0x1148, thunk)});
  // F5: -O0 style: tag chosen by csel, spilled to the stack with the import, reloaded before blr.
  p.put(0x1180, {sub_sp(32), movz_w(8, 0x0005), movk_w(8, 0x7a00), movz_w(9, 0x0006), movk_w(9, 0x7a00),
                 cmp_w_imm(0, 0), csel_w(8, 8, 9, kEq), str_w(8, 31, 4), adrp(8, 0x11a0, kIat), ldr_x(8, 8, 0),
                 str_x(8, 31, 8), ldr_w(2, 31, 4), ldr_x(8, 31, 8), movz_w(0, 0), movz_w(1, 0x10), blr(8),
                 add_sp(32), kRet});
  // F6: lookaside list (tag = 6th argument, w5) with a value also stored as stack argument 9; tail br.
  p.put(0x1200, {movz_w(9, 0x0007), movk_w(9, 0x7a00), str_w(9, 31, 0), adrp(7, 0x120c, kIat), ldr_x(7, 7, 16),
                 movz_w(5, 0x0008), movk_w(5, 0x7a00), movz_x(4, 0x98), br(7)});
  // F7: a tag that is an ORR bitmask immediate ("????").
  p.put(0x1240, {adrp(8, 0x1240, kIat), kOrrW2Pattern, ldr_x(8, 8, 0), movz_w(0, 0), movz_w(1, 0x20), blr(8), kRet});
  // Decoy: the same kind of constant, only compared.
  p.put(0x1280, {movz_w(9, 0x0009), movk_w(9, 0x7a00), cmp_w(0, 9), kRet});
  // DbgPrint through the IAT: not a tag API.
  p.put(0x12c0, {movz_w(1, 0x000a), movk_w(1, 0x7a00), adrp(8, 0x12c8, kIat), ldr_x(8, 8, 24), blr(8), kRet});
  // The import thunk (no .pdata entry, after a ret).
  p.put(thunk, {adrp(16, thunk, kIat), ldr_x(16, 16, 8), br(16)}, false);
  Built built;
  build(p, built);
  CallSiteAnalysis a = arm64::analyse_call_sites(built.model);
  INFO("problems: " << a.problems.size());

  auto e1 = with_tag(a, 0x7a000001);
  REQUIRE(e1.size() == 1);
  CHECK(e1[0]->api == "ExAllocatePoolWithTag");
  CHECK(e1[0]->rva == 0x1018);
  CHECK(e1[0]->form == CallForm::reg);
  CHECK(e1[0]->tag_rva == 0x1004);
  CHECK(e1[0]->pool_type == 0x200u);
  CHECK(e1[0]->size == 0x40u);
  CHECK(e1[0]->section == ".text");

  auto e2 = with_tag(a, 0x7a000002);
  REQUIRE(e2.size() == 1);
  CHECK(e2[0]->rva == 0x1068);
  CHECK(e2[0]->pool_type == 1u);

  auto e3 = with_tag(a, 0x7a000003);
  REQUIRE(e3.size() == 1);
  CHECK(e3[0]->api == "ExFreePoolWithTag");
  CHECK(e3[0]->form == CallForm::thunk);
  CHECK(e3[0]->rva == 0x110c);

  auto e4 = with_tag(a, 0x7a000004);
  REQUIRE(e4.size() == 1);
  CHECK(e4[0]->form == CallForm::tail);
  CHECK(e4[0]->rva == 0x1148);

  CHECK(with_tag(a, 0x7a000005).size() == 1);
  CHECK(with_tag(a, 0x7a000006).size() == 1);
  for (const Evidence* e : with_tag(a, 0x7a000005)) CHECK(e->detail == "one of 2 tags");

  auto e8 = with_tag(a, 0x7a000008);
  REQUIRE(e8.size() == 1);
  CHECK(e8[0]->api == "ExInitializeNPagedLookasideList");
  CHECK(e8[0]->form == CallForm::tail);
  CHECK(e8[0]->size == 0x98u);
  CHECK(with_tag(a, 0x7a000007).empty());  // a stack argument, not the tag

  CHECK(with_tag(a, 0x3f3f3f3f).size() == 1);
  CHECK(with_tag(a, 0x7a000009).empty());  // compared only
  CHECK(with_tag(a, 0x7a00000a).empty());  // DbgPrint
  CHECK(a.calls.size() == 8);

  // Stack arguments beyond the eighth: [sp + 8 * (n - 9)] at the branch.
  arm64::Analysis analysis(built.model);
  analysis.sweep();
  bool checked = false;
  for (const arm64::Site& site : analysis.find_sites()) {
    if (site.rva != 0x1220) continue;
    ArgPosition ninth;
    ninth.index = 9;
    auto defs = analysis.resolve_argument(site, ninth);
    REQUIRE(defs.size() == 1);
    CHECK(defs[0].kind == arm64::Def::constant);
    CHECK((defs[0].value & 0xffffffffu) == 0x7a000007u);
    checked = true;
  }
  CHECK(checked);
}

TEST_CASE("arm64 sweep: a 'b' stub after zero padding is a thunk stub, wherever the padding falls") {
  using namespace a64;
  const uint32_t thunk = 0x1400;
  // The sweep looks at four words at a time: the padding word in each of the four places of a block.
  for (uint32_t shift = 0; shift < 16; shift += 4) {
    CAPTURE(shift);
    const uint32_t stub = 0x1380 + shift;
    Program p;
    p.put(0x1000, {kStpFpLr, movz_w(1, 0x0011), movk_w(1, 0x7a00), bl(0x100c, stub), kLdpFpLr, kRet});
    // Neither a function (no .pdata) nor branched to by anything but calls: only the zero word before it
    // (udf, padding: execution does not fall through it) makes the stub a place code can start.
    p.put(stub - 8, {kNop, 0, b(stub, thunk)}, false);
    p.put(thunk, {adrp(16, thunk, kIat), ldr_x(16, 16, 8), br(16)}, false);
    Built built;
    build(p, built);
    const CallSiteAnalysis a = arm64::analyse_call_sites(built.model);
    const auto found = with_tag(a, 0x7a000011);
    REQUIRE(found.size() == 1);
    CHECK(found[0]->api == "ExFreePoolWithTag");
    CHECK(found[0]->form == CallForm::thunk);
    CHECK(found[0]->rva == 0x100c);
  }
}

TEST_CASE("arm64 wrappers: the fixpoint and memory constants on hand-encoded code") {
  using namespace a64;
  using Chain = std::vector<std::string>;
  constexpr uint32_t kW1 = 0x1000, kW2 = 0x1040, kW3 = 0x1080, kTail = 0x10c0, kStk = 0x1100, kCond = 0x1140,
                     kDecoy = 0x1180, kWriter = 0x11c0, kCaller = 0x1200;
  constexpr uint32_t kRo = 0x2000, kData = 0x4000;  // .rdata (read-only), .data (writable)
  Program p;
  // W1(size, tag): the tag goes to ExAllocatePoolWithTag in w2, by a tail branch through the IAT.
  p.put(kW1, {mov_w(2, 1), mov_x(1, 0), movz_w(0, 0x200), adrp(3, kW1 + 12, kIat), ldr_x(3, 3, 0), br(3)});
  // W2(tag, size) -> W1(size, tag).
  p.put(kW2, {kStpFpLr, mov_w(8, 0), mov_x(0, 1), mov_w(1, 8), bl(kW2 + 16, kW1), kLdpFpLr, kRet});
  // W3(size, tag): -O0 style spills to the frame, then W2(tag, size).
  p.put(kW3, {sub_sp(32), str_x(30, 31, 16), str_w(1, 31, 12), str_x(0, 31, 0), ldr_w(0, 31, 12), ldr_x(1, 31, 0),
              bl(kW3 + 24, kW2), ldr_x(30, 31, 16), add_sp(32), kRet});
  // TAIL(size, tag): b W1.
  p.put(kTail, {b(kTail, kW1)});
  // STK(a, ..., h, tag): the 9th parameter ([sp] at entry) is the lookaside initialiser's 6th argument.
  p.put(kStk, {kStpFpLr, ldr_w(5, 31, 16), movz_x(4, 0x98), adrp(7, kStk + 12, kIat), ldr_x(7, 7, 16), blr(7),
               kLdpFpLr, kRet});
  // COND: a conditional tail branch to W1 with its own constant tag.
  p.put(kCond, {movz_w(1, 6), movk_w(1, 0x7a00), movz_x(0, 0x10), cmp_w_imm(2, 0), b_ne(kCond + 16, kW1), kRet});
  // DECOY(n): n is the size; the tag is a constant.
  p.put(kDecoy, {mov_x(1, 0), movz_w(2, 1), movk_w(2, 0x7b00), movz_w(0, 0), adrp(3, kDecoy + 16, kIat),
                 ldr_x(3, 3, 0), br(3)});
  // WRITER: writes gw (.data+0x200); writes gs (.data+0x380) through a page address spilled and reloaded;
  // adds to ga (.data+0x3c0) with an ARMv8.1 atomic that Capstone 4 does not decode (stadd w1, [x11]);
  // returns the address of gt (.data+0x300).
  p.put(kWriter, {adrp(8, kWriter, kData), str_w(0, 8, 0x200), sub_sp(16), adrp(9, kWriter + 12, kData),
                  str_x(9, 31, 8), movz_w(9, 0), ldr_x(10, 31, 8), str_w(1, 10, 0x380), add_x(11, 10, 0x3c0),
                  0xb821017fu, add_sp(16), add_x(0, 8, 0x300), kRet});
  std::vector<uint32_t> c;
  const auto here = [&] { return kCaller + static_cast<uint32_t>(c.size() * 4); };
  const auto call = [&](uint32_t target) { c.push_back(bl(here(), target)); };
  const auto call_alloc = [&] {  // adrp x8, iat; ldr x8, [x8]; blr x8
    c.push_back(adrp(8, here(), kIat));
    c.push_back(ldr_x(8, 8, 0));
    c.push_back(blr(8));
  };
  c.push_back(kStpFpLr);
  c.insert(c.end(), {movz_w(0, 0x40), movz_w(1, 1), movk_w(1, 0x7a00)});
  const uint32_t site1 = here();
  call(kW1);
  c.insert(c.end(), {movz_w(0, 2), movk_w(0, 0x7a00), movz_x(1, 0x10)});
  call(kW2);
  c.insert(c.end(), {movz_x(0, 0x20), movz_w(1, 3), movk_w(1, 0x7a00)});
  call(kW3);
  c.insert(c.end(), {movz_w(1, 4), movk_w(1, 0x7a00)});
  call(kTail);
  c.insert(c.end(), {sub_sp(16), movz_w(9, 5), movk_w(9, 0x7a00), str_w(9, 31, 0)});
  call(kStk);
  c.push_back(add_sp(16));
  // orr w1, w20, w8 with w8 a constant: 0x7a000007 | 0x00100000.
  c.insert(c.end(), {movz_w(20, 7), movk_w(20, 0x7a00), movz_w(8, 0x10, 1), orr_w(1, 20, 8)});
  call(kW1);
  c.insert(c.end(), {movz_w(0, 1), movk_w(0, 0x7d00)});
  call(kDecoy);
  c.push_back(adrp(8, here(), kRo));
  c.push_back(ldr_w(1, 8, 0));  // the .rdata tag, passed to W1
  call(kW1);
  c.push_back(adrp(19, here(), kData));
  for (uint32_t off : {0x100u, 0x200u, 0x300u, 0x380u, 0x3c0u}) {  // gl (never written), gw, gt, gs, ga
    c.push_back(ldr_w(2, 19, off));
    call_alloc();
  }
  call(kCond);
  c.insert(c.end(), {kLdpFpLr, kRet});
  p.put(kCaller, c);

  Built built;
  build(p, built);
  std::vector<uint8_t> rdata(0x100, 0), data(0x400, 0);
  const auto put32 = [](std::vector<uint8_t>& v, size_t at, uint32_t value) {
    for (int i = 0; i < 4; ++i) v[at + static_cast<size_t>(i)] = static_cast<uint8_t>(value >> (8 * i));
  };
  put32(rdata, 0, 0x52000001);
  put32(data, 0x100, 0x47000001);
  put32(data, 0x200, 0x47000002);
  put32(data, 0x300, 0x47000003);
  put32(data, 0x380, 0x47000004);
  put32(data, 0x3c0, 0x47000005);
  arm64::CodeModel& m = built.model;
  m.entry_rva = kCaller;
  m.sections.push_back(arm64::CodeSection{".rdata", kRo, 0x100, ByteView(rdata.data(), rdata.size()), false});
  arm64::CodeSection data_section{".data", kData, 0x400, ByteView(data.data(), data.size()), false};
  data_section.writable = true;
  m.sections.push_back(data_section);
  const CallSiteAnalysis a = arm64::analyse_call_sites(m);
  const auto one = [&](uint32_t tag) {
    auto found = with_tag(a, tag);
    INFO("tag 0x" << std::hex << tag);
    REQUIRE(found.size() == 1);
    return *found[0];
  };

  SUBCASE("one level: a leaf that tail-branches to the import") {
    const Evidence e = one(0x7a000001);
    CHECK(e.kind == Confidence::wrapper);
    CHECK(e.api == "ExAllocatePoolWithTag");
    CHECK(e.form == CallForm::direct);
    CHECK(e.rva == site1);
    CHECK(e.tag_rva == site1 - 8);
    CHECK(e.chain == Chain{"sub@0x1000", "ExAllocatePoolWithTag"});
    CHECK(e.pool_type == std::optional<uint64_t>(0x200));
  }
  SUBCASE("two and three levels, through register moves and -O0 spills") {
    CHECK(one(0x7a000002).chain == Chain{"sub@0x1040", "sub@0x1000", "ExAllocatePoolWithTag"});
    CHECK(one(0x7a000003).chain == Chain{"sub@0x1080", "sub@0x1040", "sub@0x1000", "ExAllocatePoolWithTag"});
  }
  SUBCASE("tail branches: b and b.ne from other functions") {
    CHECK(one(0x7a000004).chain == Chain{"sub@0x10c0", "sub@0x1000", "ExAllocatePoolWithTag"});
    const Evidence e = one(0x7a000006);
    CHECK(e.kind == Confidence::wrapper);
    CHECK(e.form == CallForm::direct_tail);
    CHECK(e.rva == kCond + 16);
    CHECK(e.chain == Chain{"sub@0x1000", "ExAllocatePoolWithTag"});
  }
  SUBCASE("a stack parameter reaching the lookaside initialiser's 6th argument") {
    const Evidence e = one(0x7a000005);
    CHECK(e.api == "ExInitializeNPagedLookasideList");
    CHECK(e.chain == Chain{"sub@0x1100", "ExInitializeNPagedLookasideList"});
    CHECK(e.size == std::optional<uint64_t>(0x98));
  }
  SUBCASE("a tag combined from two registers") {
    CHECK(one(0x7a100007).chain == Chain{"sub@0x1000", "ExAllocatePoolWithTag"});
  }
  SUBCASE("a parameter that is the size is not a tag") {
    CHECK(with_tag(a, 0x7d000001).empty());
    CHECK(one(0x7b000001).kind == Confidence::call);
  }
  SUBCASE("tags loaded from memory") {
    const Evidence ro = one(0x52000001);
    CHECK(ro.kind == Confidence::wrapper);
    CHECK(ro.detail == "tag loaded from .rdata at 0x2000");
    CHECK(ro.chain == Chain{"sub@0x1000", "ExAllocatePoolWithTag"});
    const Evidence gl = one(0x47000001);
    CHECK(gl.kind == Confidence::call);
    CHECK(gl.detail == "tag loaded from global at 0x4100 (never written)");
    CHECK(with_tag(a, 0x47000002).empty());  // stored to by WRITER
    CHECK(with_tag(a, 0x47000003).empty());  // its address is returned by WRITER
    CHECK(with_tag(a, 0x47000004).empty());  // stored to through a spilled and reloaded page address
    CHECK(with_tag(a, 0x47000005).empty());  // an atomic add the disassembler does not know
  }
  SUBCASE("nothing else: a function's own parameter is never a tag") {
    const std::set<uint32_t> expected = {0x7a000001, 0x7a000002, 0x7a000003, 0x7a000004, 0x7a000005, 0x7a000006,
                                         0x7a100007, 0x7b000001, 0x52000001, 0x47000001};
    std::set<uint32_t> got;
    for (const Evidence& e : a.calls) got.insert(e.tag.value);
    CHECK(got == expected);
  }
}

TEST_CASE("arm64 wrappers: bounded on a deep chain of wrappers") {
  using namespace a64;
  // f_i(tag) calls f_{i+1}(tag) (40 levels; the last passes w0 to ExAllocatePoolWithTag), each called with a
  // constant from a caller at the end: the depth limit stops the chain.
  Program p;
  constexpr uint32_t n = 40;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t at = kText + 32 * i;
    if (i + 1 < n) {
      p.put(at, {kStpFpLr, bl(at + 4, at + 32), kLdpFpLr, kRet});
    } else {
      p.put(at, {mov_w(2, 0), movz_w(0, 0), movz_w(1, 0x10), adrp(8, at + 12, kIat), ldr_x(8, 8, 0), br(8)});
    }
  }
  std::vector<uint32_t> c{kStpFpLr};
  const uint32_t callers = kText + 32 * n;
  for (uint32_t i = 0; i < n; ++i) {
    c.push_back(movz_w(0, static_cast<uint16_t>(i)));
    c.push_back(movk_w(0, 0x6000));
    c.push_back(bl(callers + static_cast<uint32_t>(c.size() * 4), kText + 32 * i));
  }
  c.insert(c.end(), {kLdpFpLr, kRet});
  p.put(callers, c);
  Built built;
  build(p, built);
  const auto t0 = std::chrono::steady_clock::now();
  const CallSiteAnalysis a = arm64::analyse_call_sites(built.model);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  const wrappers::Limits limits;
  for (const Evidence& e : a.calls) {
    CHECK(e.kind == Confidence::wrapper);
    CHECK(e.chain.size() <= limits.max_depth + 1);
  }
  CHECK(a.calls.size() == limits.max_depth);
  CHECK(std::any_of(a.problems.begin(), a.problems.end(),
                    [](const std::string& s) { return s.find("wrapper analysis limited") != std::string::npos; }));
}

namespace {

// One allocation through the IAT in a long function (1,500 words: the IAT address is formed at its start,
// the call is at its end), then 170 functions without .pdata entries that only branch through a pointer
// their caller passed (blr x9 after ldr x9, [x0]): each such branch's region is a window of about 1,280
// words, so resolving them all costs far more decoding than the one real call site.
void build_many_indirect_branches(Built& built) {
  using namespace a64;
  Program p;
  std::vector<uint32_t> real = {kStpFpLr, adrp(8, 0x1004, kIat), ldr_x(8, 8, 0)};
  real.resize(1494, kNop);
  for (uint32_t w : {movz_w(0, 0), movz_w(1, 0x40), movz_w(2, 0x0021), movk_w(2, 0x7a00), blr(8), kRet})
    real.push_back(w);
  p.put(0x1000, real);
  for (uint32_t rva = 0x2800; rva + 12 <= kIat; rva += 12) p.put(rva, {ldr_x(9, 0, 0), blr(9), kRet}, false);
  build(p, built);
}

CallSiteAnalysis analyse_with(const arm64::CodeModel& model, const arm64::Limits& limits) {
  arm64::Analysis analysis(model, limits);
  analysis.sweep();
  return analysis::analyse_call_sites(analysis, model, static_cast<uint8_t>(8), nullptr);
}

bool has_problem(const CallSiteAnalysis& a, const std::string& text) {
  return std::any_of(a.problems.begin(), a.problems.end(),
                     [&](const std::string& p) { return p.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("arm64 targeted decoding: branches no IAT address can reach are not decoded; same answer") {
  Built built;
  build_many_indirect_branches(built);
  arm64::Limits full;
  full.targeted = false;
  full.decode_budget = 20'000;
  full.max_regions_cached = 4;  // the real site's region is not kept until its arguments are resolved
  full.straight_line = false;   // every branch's window decoded (the proofs would settle them without it)
  arm64::Limits targeted = full;
  targeted.targeted = true;

  const CallSiteAnalysis swept = analyse_with(built.model, full);
  const CallSiteAnalysis aimed = analyse_with(built.model, targeted);
  // The full sweep decodes every branch's window and runs out of budget; the targeted analysis does not.
  CHECK(has_problem(swept, "decode budget exhausted"));
  CHECK_FALSE(has_problem(aimed, "decode budget exhausted"));
  // Resolving the site's arguments has a budget of its own: the tag is recovered either way.
  for (const CallSiteAnalysis* a : {&swept, &aimed}) {
    auto tags = with_tag(*a, 0x7a000021);
    REQUIRE(tags.size() == 1);
    CHECK(tags[0]->api == "ExAllocatePoolWithTag");
    CHECK(tags[0]->rva == 0x1000 + 1498 * 4);
    CHECK(a->calls.size() == 1);
  }
  // With budget enough for both, the evidence is identical.
  full.decode_budget = targeted.decode_budget = 20'000'000;
  const CallSiteAnalysis swept_all = analyse_with(built.model, full);
  const CallSiteAnalysis aimed_all = analyse_with(built.model, targeted);
  REQUIRE(swept_all.calls.size() == aimed_all.calls.size());
  for (size_t i = 0; i < swept_all.calls.size(); ++i)
    CHECK(describe_evidence(swept_all.calls[i]) == describe_evidence(aimed_all.calls[i]));
  CHECK(swept_all.call_sites == aimed_all.call_sites);
}

TEST_CASE("arm64 targeted decoding and proofs find what full sweeps and walks find in every ARM64 sample and corpus driver") {
  const std::vector<fs::path> files = test::sample_and_corpus_drivers("-arm64");
  REQUIRE(files.size() >= 4);
  size_t evidence = 0;
  for (const fs::path& file : files) {
    INFO(file.filename().string());
    const std::string bytes = test::read_all(file);
    auto image = PeImage::load(ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    REQUIRE_MESSAGE(image.ok(), image.error());
    const arm64::CodeModel model = arm64::model_from_image(*image);
    const CallSiteAnalysis aimed = arm64::analyse_call_sites(model, nullptr, false);
    // Every indirect branch decoded, and every branch register and argument walked through its region.
    arm64::Limits full;
    full.targeted = false;
    full.straight_line = false;
    const CallSiteAnalysis swept = analyse_with(model, full);
    std::vector<std::string> a, b;
    for (const Evidence& e : aimed.calls) a.push_back(describe_evidence(e) + e.tag.display());
    for (const Evidence& e : swept.calls) b.push_back(describe_evidence(e) + e.tag.display());
    CHECK(a == b);
    CHECK(aimed.call_sites == swept.call_sites);
    evidence += a.size();
  }
  CHECK(evidence > 100);
}

TEST_CASE("arm64 joins: the map of join points misses none of the known starts and branch targets") {
  // At every word of every ARM64 sample and corpus driver's code, and around the code: joins_at() (the
  // map, then the lists) answers what the lists alone answer.
  const std::vector<fs::path> files = test::sample_and_corpus_drivers("-arm64");
  REQUIRE(files.size() >= 4);
  size_t joins = 0;
  for (const fs::path& file : files) {
    INFO(file.filename().string());
    const std::string bytes = test::read_all(file);
    auto image = PeImage::load(ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    REQUIRE_MESSAGE(image.ok(), image.error());
    const arm64::CodeModel model = arm64::model_from_image(*image);
    arm64::Analysis analysis(model);
    analysis.sweep();
    for (const arm64::CodeSection& sec : model.sections) {
      if (!sec.executable) continue;
      for (uint64_t rva = sec.rva >= 64 ? sec.rva - 64 : 0; rva < uint64_t{sec.rva} + sec.size + 64; rva += 4) {
        const auto at = static_cast<uint32_t>(rva);
        CAPTURE(at);
        REQUIRE(analysis.joins_at(at) == analysis.joins_at_exactly(at));
        joins += analysis.joins_at(at) ? 1 : 0;
      }
    }
  }
  CHECK(joins > 100);
}

TEST_CASE("arm64 straight-line proofs of an argument agree with the full data flow at every call site") {
  const std::vector<fs::path> files = test::sample_and_corpus_drivers("-arm64");
  REQUIRE(files.size() >= 4);
  size_t arguments = 0;
  size_t proved = 0;
  size_t declined_loads = 0;  // proofs declined because a step walked further (a load through a base register)
  for (const fs::path& file : files) {
    const std::string bytes = test::read_all(file);
    auto image = PeImage::load(ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    REQUIRE_MESSAGE(image.ok(), image.error());
    const arm64::CodeModel model = arm64::model_from_image(*image);
    arm64::Analysis analysis(model);
    analysis.sweep();
    for (const arm64::Site& site : analysis.find_sites()) {
      const TagApi& api = *site.import->api;
      for (const ArgPosition* arg : {&api.tag, &api.pool_type, &api.size}) {
        if (!arg->present()) continue;
        ++arguments;
        const std::optional<arm64::Def> proof = analysis.straight_line_def(site, *arg);
        const std::vector<arm64::Def> full = analysis.resolve_argument(site, *arg);
        if (!proof) {
          if (full.size() == 1 && full[0].kind == arm64::Def::mem_load) ++declined_loads;
          continue;
        }
        ++proved;
        INFO(file.filename().string() << ": site 0x" << std::hex << site.rva << " " << api.name);
        test::check_one_definition(full, *proof);
      }
    }
  }
  MESSAGE(files.size() << " ARM64 images: " << proved << " of " << arguments << " arguments proved straight-line, "
                       << declined_loads << " declined at a load");
  CHECK(proved * 2 > arguments);
}

TEST_CASE("arm64 immediate_use_at: aligned MOVZ/MOVK words in code") {
  using namespace a64;
  Program p;
  p.put(0x1000, {movz_w(8, 0x654c), kNop, movk_w(8, 0x6b61), movk_w(8, 0x6b61, 0), movz_x(3, 0x1), kRet});
  Built built;
  build(p, built);
  auto z = arm64::immediate_use_at(built.model, 0x1000);
  REQUIRE(z);
  CHECK(z->mnemonic == "movz");
  CHECK(z->instruction_rva == 0x1000);
  auto k = arm64::immediate_use_at(built.model, 0x1008);
  REQUIRE(k);
  CHECK(k->mnemonic == "movk");
  CHECK(arm64::immediate_use_at(built.model, 0x100c));  // movk lsl #0 still carries a half
  CHECK(arm64::immediate_use_at(built.model, 0x1010));  // x destination
  CHECK_FALSE(arm64::immediate_use_at(built.model, 0x1004));  // nop
  CHECK_FALSE(arm64::immediate_use_at(built.model, 0x1002));  // unaligned
  CHECK_FALSE(arm64::immediate_use_at(built.model, 0x1014));  // ret
  CHECK_FALSE(arm64::immediate_use_at(built.model, kIat));    // not code
}

TEST_CASE("arm64 hostile code: random words and self loops finish quickly") {
  std::mt19937 rng(7);
  Program p;
  for (int i = 0; i < 4096; ++i) p.words.push_back(rng());
  // Sprinkle import loads and indirect branches so that many sites are resolved, and branch loops.
  for (uint32_t i = 0; i < 4096; i += 16) {
    const uint32_t rva = kText + i * 4;
    p.words[i] = a64::adrp(8, rva, kIat);
    p.words[i + 1] = a64::ldr_x(8, 8, 0);
    p.words[i + 2] = a64::b_ne(rva + 8, rva + 12);
    p.words[i + 3] = a64::blr(8);
    p.words[i + 4] = a64::b(rva + 16, rva);        // back to the start
    p.words[i + 5] = a64::b(rva + 20, rva + 20);   // b .
    p.words[i + 7] = a64::b_ne(rva + 28, rva + 28);  // b.ne .
  }
  p.functions.push_back(RuntimeFunction{kText, kText + 0x2000});
  Built built;
  build(p, built);
  const auto start = std::chrono::steady_clock::now();
  CallSiteAnalysis a = arm64::analyse_call_sites(built.model);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds(10));
  CHECK(a.call_sites > 0);
}

TEST_CASE("arm64 hostile code: a code section at the top of the address space") {
  // The last 256 bytes below 4 GB, a section not on a 4-byte boundary just below them, and sections that
  // run past 4 GB (one starting in its last 3 bytes): decoding in blocks must neither wrap around nor read
  // words off the section's own grid.
  for (uint32_t rva : {0xffffff00u, 0xfffffe02u, 0xffffff40u, 0xfffffffdu}) {
    INFO(rva);
    std::vector<uint8_t> text;
    const auto put = [&](uint32_t w) {
      for (int i = 0; i < 4; ++i) text.push_back(static_cast<uint8_t>(w >> (8 * i)));
    };
    while (text.size() + 16 < 0x100) put(a64::kNop);
    put(a64::movz_w(2, 0x0031));
    put(a64::movk_w(2, 0x7a00));
    put(a64::ldr_x(9, 0, 0));
    put(a64::blr(9));
    arm64::CodeModel m;
    m.image_base = kBase;
    m.sections.push_back(arm64::CodeSection{".text", rva, static_cast<uint32_t>(text.size()),
                                            ByteView(text.data(), text.size()), true});
    for (bool full : {false, true}) {
      const CallSiteAnalysis a = arm64::analyse_call_sites(m, nullptr, full);
      CHECK(a.calls.empty());
    }
  }
}

TEST_CASE("arm64 hostile code: wrapper and never-written proofs stay bounded") {
  // Random words with many adrp into one writable page, tags loaded through them at import calls and at bl
  // between random places: every adrp is followed forward, within the per-image budget.
  std::mt19937 rng(11);
  Program p;
  constexpr uint32_t kWords = 1 << 16;
  constexpr uint32_t kData = 0x80000;
  for (uint32_t i = 0; i < kWords; ++i) p.words.push_back(rng());
  for (uint32_t i = 0; i + 8 < kWords; i += 8) {
    const uint32_t rva = kText + i * 4;
    p.words[i] = a64::adrp(9, rva, kData);
    p.words[i + 1] = a64::ldr_w(2 - (i / 8) % 2, 9, 4 * ((i / 8) % 64));
    p.words[i + 2] = a64::adrp(8, rva + 8, kIat);
    p.words[i + 3] = a64::ldr_x(8, 8, 0);
    p.words[i + 4] = (i / 8) % 3 ? a64::blr(8) : a64::bl(rva + 16, kText + 4 * (rng() % kWords & ~7u));
    p.words[i + 5] = a64::b_ne(rva + 20, kText + 4 * (rng() % kWords));
  }
  for (uint32_t i = 0; i < kWords; i += 512) p.functions.push_back(RuntimeFunction{kText + 4 * i, kText + 4 * (i + 512)});
  Built built;
  build(p, built);
  std::vector<uint8_t> data(0x1000, 0x41);
  arm64::CodeSection data_section{".data", kData, 0x1000, ByteView(data.data(), data.size()), false};
  data_section.writable = true;
  built.model.sections.push_back(data_section);
  const auto start = std::chrono::steady_clock::now();
  CallSiteAnalysis a = arm64::analyse_call_sites(built.model);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  MESSAGE("hostile ARM64 wrappers: " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                                     << " ms, " << a.call_sites << " sites, " << a.calls.size() << " evidence");
  CHECK(elapsed < std::chrono::seconds(20));
  CHECK(a.call_sites > 0);
}

TEST_CASE("analyser_for(arm64) is the Capstone analyser") {
  CHECK(analyser_for(Machine::arm64) == &arm64::arm64_analyser());
}

// --- Literal search: MOVZ/MOVK encodings -------------------------------------------------------------------

namespace {
std::string words_bytes(std::initializer_list<uint32_t> words) {
  std::string out;
  for (uint32_t w : words)
    for (int i = 0; i < 4; ++i) out += static_cast<char>(w >> (8 * i));
  return out;
}
ByteView view_of(const std::string& bytes) { return ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()); }
}  // namespace

TEST_CASE("literal matcher finds the MOVZ low half and MOVK high half of a tag in any register") {
  auto matcher = LiteralMatcher::build({*Tag::parse("Leak")});  // 0x6b61654c
  REQUIRE(matcher.ok());
  auto scratch = matcher->make_scratch();
  const std::string bytes = words_bytes({
      a64::movz_w(8, 0x654c),          // 0: low half into w8
      a64::movk_w(8, 0x6b61),          // 4: high half into w8
      a64::movz_w(31, 0x654c),         // 8: any register, even wzr
      a64::movk_w(0, 0x6b61 | 0x8000), // 12: high half with PROTECTED_POOL
      a64::movz_x(19, 0x654c),         // 16: x destination
      a64::movk_x(19, 0x6b61),         // 20
      a64::movk_w(8, 0x6b61, 0),       // 24: movk lsl #0: not the high half
      a64::movz_w(8, 0x6b61, 1),       // 28: movz lsl #16: not matched
      a64::movz_w(8, 0x654d),          // 32: another value
      a64::movk_w(8, 0x654c),          // 36: the low value as a high half: not matched
  });
  auto hits = matcher->scan(view_of(bytes), *scratch);
  REQUIRE(hits.ok());
  std::vector<std::tuple<uint64_t, LiteralEncoding, unsigned, bool, bool>> got;
  for (const LiteralHit& h : *hits) got.emplace_back(h.offset, h.encoding, h.reg, h.protected_bit, h.wide);
  using E = LiteralEncoding;
  const decltype(got) expected = {
      {0, E::arm64_movz_low, 8, false, false},   {4, E::arm64_movk_high, 8, false, false},
      {8, E::arm64_movz_low, 31, false, false},  {12, E::arm64_movk_high, 0, true, false},
      {16, E::arm64_movz_low, 19, false, true},  {20, E::arm64_movk_high, 19, false, true},
  };
  CHECK(got == expected);
  for (const LiteralHit& h : *hits) CHECK(h.tag_index == 0);
}

TEST_CASE("literal matcher: bytes and instruction hits of several tags in one pass") {
  auto matcher = LiteralMatcher::build({*Tag::parse("Leak"), *Tag::parse("PuCx")});
  REQUIRE(matcher.ok());
  auto scratch = matcher->make_scratch();
  const uint32_t pucx = 0x78437550;
  std::string bytes = "..Leak..";
  bytes += words_bytes({a64::movz_w(2, pucx & 0xffff), a64::movk_w(2, pucx >> 16)});
  auto hits = matcher->scan(view_of(bytes), *scratch);
  REQUIRE(hits.ok());
  REQUIRE(hits->size() == 3);
  CHECK((*hits)[0].encoding == LiteralEncoding::bytes);
  CHECK((*hits)[0].offset == 2);
  CHECK((*hits)[1].tag_index == 1);
  CHECK((*hits)[1].encoding == LiteralEncoding::arm64_movz_low);
  CHECK((*hits)[1].offset == 8);
  CHECK((*hits)[2].encoding == LiteralEncoding::arm64_movk_high);
  CHECK(std::string(literal_encoding_name(LiteralEncoding::arm64_movk_high)) == "movk");
}

// --- Real drivers --------------------------------------------------------------------------------------------

namespace {

std::vector<fs::path> arm64_samples() {
  std::vector<fs::path> files;
  const fs::path bin = fs::path(TAGWHO_SOURCE_DIR) / "samples" / "bin";
  if (fs::is_directory(bin))
    for (const auto& entry : fs::directory_iterator(bin))
      if (entry.path().filename().string().find("-arm64.sys") != std::string::npos) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("arm64 samples: every TAG4 of the source is a call-site tag, and nothing else") {
  const auto files = arm64_samples();
  if (files.empty()) {
    MESSAGE("no ARM64 sample drivers under samples/bin: skipped");
    return;
  }
  const std::regex tag4(R"(TAG4\('(.)',\s*'(.)',\s*'(.)',\s*'(.)'\))");
  for (const fs::path& file : files) {
    INFO(file.filename().string());
    const std::string stem = file.stem().string();
    const std::string src = test::read_all(fs::path(TAGWHO_SOURCE_DIR) / "samples" / "src" / (stem.substr(0, stem.find('-')) + ".c"));
    std::set<uint32_t> expected;
    for (std::sregex_iterator it(src.begin(), src.end(), tag4), end; it != end; ++it)
      expected.insert(test::tag_value((*it)[1].str() + (*it)[2].str() + (*it)[3].str() + (*it)[4].str()));
    const std::string bytes = test::read_all(file);
    auto image = PeImage::load(ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    REQUIRE_MESSAGE(image.ok(), image.error());
    CHECK(image->machine() == Machine::arm64);
    CHECK_FALSE(image->functions().empty());  // .pdata kept (-funwind-tables)
    const CallSiteAnalysis a = analyser_for(Machine::arm64)->find_call_site_tags(*image);
    std::set<uint32_t> got;
    for (const Evidence& e : a.calls) got.insert(e.tag.value);
    CHECK(got == expected);
  }
}

TEST_CASE("tagwho Leak finds the ARM64 leak sample although the bytes \"Leak\" never occur in it") {
  const fs::path file = fs::path(TAGWHO_SOURCE_DIR) / "samples" / "bin" / "leak-clang-arm64.sys";
  if (!fs::exists(file)) {
    MESSAGE("no leak-clang-arm64.sys: skipped");
    return;
  }
  const std::string bytes = test::read_all(file);
  REQUIRE(bytes.find("Leak") == std::string::npos);
  const ByteView view(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  const Tag leak = *Tag::parse("Leak");

  // The full search: call evidence.
  auto scanner = Scanner::create(ScanRequest{{leak}, false});
  REQUIRE(scanner.ok());
  FileResult result = scanner->analyse_bytes(file.string(), view);
  REQUIRE(result.report.findings.size() == 1);
  CHECK(result.report.findings[0].tag == leak);
  CHECK(result.report.findings[0].best == Confidence::call);
  CHECK(result.report.machine == Machine::arm64);

  // The literal search alone (no call-site evidence to merge with): the MOVZ/MOVK pair is code evidence.
  auto matcher = LiteralMatcher::build({leak});
  REQUIRE(matcher.ok());
  auto scratch = matcher->make_scratch();
  auto hits = matcher->scan(view, *scratch);
  REQUIRE(hits.ok());
  auto image = PeImage::load(view);
  REQUIRE(image.ok());
  std::vector<Evidence> literal = classify_literal_hits(*hits, matcher->tags(), &*image, {});
  REQUIRE(literal.size() == 1);
  CHECK(literal[0].kind == Confidence::code);
  CHECK(literal[0].detail.rfind("movz/movk w", 0) == 0);
  // With the call evidence, the pair is the same fact as the call's tag: not repeated.
  const CallSiteAnalysis calls = analyser_for(Machine::arm64)->find_call_site_tags(*image);
  CHECK(classify_literal_hits(*hits, matcher->tags(), &*image, calls.calls).empty());

  // Instruction hits mean nothing in an x64 file: no evidence from them there.
  const fs::path x64 = fs::path(TAGWHO_SOURCE_DIR) / "samples" / "bin" / "leak-clang-x64.sys";
  if (fs::exists(x64)) {
    const std::string x64_bytes = test::read_all(x64);
    const ByteView x64_view(reinterpret_cast<const uint8_t*>(x64_bytes.data()), x64_bytes.size());
    auto x64_image = PeImage::load(x64_view);
    REQUIRE(x64_image.ok());
    std::vector<LiteralHit> fake = {LiteralHit{0, 0x400, false, LiteralEncoding::arm64_movz_low, 8, false},
                                    LiteralHit{0, 0x404, false, LiteralEncoding::arm64_movk_high, 8, false}};
    CHECK(classify_literal_hits(fake, matcher->tags(), &*x64_image, {}).empty());
  }
}

TEST_CASE("arm64: a search focused on the tag's MOVZ/MOVK words finds what the whole analysis finds") {
  // Every ARM64 sample and corpus driver, every tag of its call and wrapper evidence whose only encodings in
  // the file are MOVZ/MOVK words (the scanner's condition for a focused search): the evidence is the whole
  // analysis's, while fewer call sites are resolved.
  std::vector<fs::path> files = arm64_samples();
  if (const fs::path dir = test::corpus_dir_for_test(); !dir.empty())
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().filename().string().find("-arm64-") != std::string::npos) files.push_back(entry.path());
  if (files.empty()) {
    MESSAGE("no ARM64 drivers: skipped");
    return;
  }
  const CodeAnalyser& analyser = *analyser_for(Machine::arm64);
  size_t compared = 0, through_wrappers = 0, fewer_sites = 0;
  for (const fs::path& file : files) {
    INFO(file.filename().string());
    const std::string bytes = test::read_all(file);
    const ByteView view(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    auto image = PeImage::load(view);
    REQUIRE(image.ok());
    const CallSiteAnalysis all = analyser.find_call_site_tags(*image);
    std::vector<Tag> tags;
    for (const Evidence& e : all.calls)
      if (std::find(tags.begin(), tags.end(), e.tag.without_protected_bit()) == tags.end())
        tags.push_back(e.tag.without_protected_bit());
    for (const Tag tag : tags) {
      INFO(tag.display());
      auto matcher = LiteralMatcher::build({tag}, true);
      REQUIRE(matcher.ok());
      auto scratch = matcher->make_scratch();
      auto hits = matcher->scan(view, *scratch, true);
      REQUIRE(hits.ok());
      std::vector<uint32_t> words;
      bool words_only = matcher->count_prefilter(view, *scratch) == 0;
      for (const LiteralHit& hit : *hits) {
        words_only = words_only && hit.encoding != LiteralEncoding::bytes;
        if (auto rva = image->offset_to_rva(hit.offset)) words.push_back(*rva);
      }
      if (!words_only || words.empty()) continue;
      const std::vector<Tag> only{tag};
      const CallSiteAnalysis focused = analyser.find_call_site_tags_near(*image, only, words);
      std::vector<std::string> expected, got;
      for (const Evidence& e : all.calls)
        if (e.tag.without_protected_bit() == tag) expected.push_back(describe_evidence(e));
      for (const Evidence& e : focused.calls) got.push_back(describe_evidence(e));
      CHECK(got == expected);
      CHECK(focused.call_sites <= all.call_sites);
      fewer_sites += focused.call_sites < all.call_sites;
      through_wrappers += std::any_of(all.calls.begin(), all.calls.end(), [&](const Evidence& e) {
        return e.tag.without_protected_bit() == tag && e.kind == Confidence::wrapper;
      });
      ++compared;
    }
  }
  CHECK(compared > 40);
  CHECK(through_wrappers > 10);  // tags formed in a caller, passed down a chain of wrappers
  CHECK(fewer_sites > compared / 2);
  MESSAGE(compared << " tags compared, " << through_wrappers << " through wrappers, " << fewer_sites
                   << " with fewer sites resolved");
}

TEST_CASE("arm64 quiet sample: the compared 'Leak' is code evidence from its MOVZ/MOVK pair, not a call") {
  const fs::path file = fs::path(TAGWHO_SOURCE_DIR) / "samples" / "bin" / "quiet-clang-arm64.sys";
  if (!fs::exists(file)) {
    MESSAGE("no quiet-clang-arm64.sys: skipped");
    return;
  }
  auto scanner = Scanner::create(ScanRequest{{*Tag::parse("Leak")}, false});
  REQUIRE(scanner.ok());
  FileResult result = scanner->analyse(file.string());
  REQUIRE(result.report.findings.size() == 1);
  CHECK(result.report.findings[0].best == Confidence::code);
}

namespace {

}  // namespace

TEST_CASE("arm64 corpus: every call row recovered as call with its API at every optimisation level") {
  const fs::path dir = test::corpus_dir_for_test();
  if (dir.empty()) return;
  std::map<std::string, std::vector<test::TruthRow>> by_file = test::read_truth(dir);
  std::erase_if(by_file, [](const auto& entry) { return entry.first.find("-arm64-") == std::string::npos; });
  REQUIRE_MESSAGE(by_file.size() == 4, "expected clang-arm64-{O0,O1,O2,Os}.sys rows in truth.tsv");
  for (const auto& [file, rows] : by_file) {
    INFO(file);
    const std::string bytes = test::read_all(dir / file);
    auto image = PeImage::load(ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    REQUIRE_MESSAGE(image.ok(), image.error());
    const CallSiteAnalysis a = analyser_for(Machine::arm64)->find_call_site_tags(*image);
    size_t total = 0, found = 0, decoys = 0;
    std::string missed;
    for (const test::TruthRow& row : rows) {
      INFO(row.tag << " " << row.expect << " " << row.pattern);
      const uint32_t value = test::tag_value(row.tag);
      bool as_call = false, with_api = false;
      for (const Evidence& e : a.calls) {
        if (e.tag.value != value || e.kind != Confidence::call || e.tag_kind != TagKind::pool) continue;
        as_call = true;
        with_api = with_api || e.api == row.api;
      }
      if (row.expect == "call") {
        ++total;
        if (with_api) ++found;
        else missed += " " + row.tag + "(" + row.pattern + ")";
        CHECK(with_api);
      } else if (row.expect == "decoy") {
        ++decoys;
        CHECK_FALSE(as_call);
      }
    }
    MESSAGE(file << ": " << found << "/" << total << " call rows recovered, " << decoys << " decoys never a call"
                  << missed);
  }
}

namespace {

bool same_arm64_insn(const arm64::Insn& a, const arm64::Insn& b) {
  if (a.rva != b.rva || a.word != b.word || a.id != b.id || a.flow != b.flow || a.has_target != b.has_target ||
      a.target != b.target || a.writeback != b.writeback || a.cc != b.cc || a.nops != b.nops || a.writes != b.writes)
    return false;
  for (int i = 0; i < 5; ++i) {
    const arm64::Operand& x = a.op[i];
    const arm64::Operand& y = b.op[i];
    if (x.kind != y.kind || x.reg != y.reg || x.size != y.size || x.shift != y.shift ||
        x.other_shift != y.other_shift || x.imm != y.imm || x.base != y.base || x.index != y.index || x.disp != y.disp)
      return false;
  }
  return true;
}

}  // namespace

TEST_CASE("arm64 decodings kept by word are Capstone's at any address") {
  // What makes keeping them exact: a word outside the address-dependent groups decodes the same at any
  // address. Checked on every code word of the ARM64 samples and corpus, and on random words.
  std::vector<uint32_t> words;
  for (const fs::path& file : test::sample_and_corpus_drivers("-arm64")) {
    const std::string bytes = test::read_all(file);
    auto image = PeImage::load(ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    REQUIRE(image.ok());
    const arm64::CodeModel model = arm64::model_from_image(*image);
    for (const arm64::CodeSection& sec : model.sections)
      if (sec.executable)
        for (uint32_t at = sec.rva; uint64_t{at} + 4 <= uint64_t{sec.rva} + sec.file_size(); at += 4)
          words.push_back(*sec.word(at));
  }
  std::mt19937 random(7);
  for (int i = 0; i < 1000000; ++i) words.push_back(static_cast<uint32_t>(random()));
  arm64::Decoder kept(0x140000000ull), fresh(0x140000000ull);
  REQUIRE(kept.ok());
  // The PC-relative words are kept at address 0 and moved: held to Capstone at the word's address, here and
  // with an image base off any page boundary near the top of the address space (targets that wrap, ADRP's
  // page taken from the whole address), at RVAs up to 4 GB. The decoders share the thread's tables, so
  // every word of the address-dependent groups kept by one is checked again at another base and address
  // (which is what would catch one of them that is not PC-relative but decodes as if it were).
  arm64::Decoder odd_kept(0xfffffffffff01234ull), odd_fresh(0xfffffffffff01234ull);
  size_t checked = 0, mismatches = 0, dependent = 0, odd_checked = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    const uint32_t word = words[i];
    const uint32_t rva = 0x1000 + static_cast<uint32_t>(i % 4096) * 4;
    arm64::Insn a, b, c;
    const bool ok_a = kept.decode(word, rva, a);
    const bool ok_b = fresh.decode_with_capstone(word, rva, b);
    if (ok_a != ok_b || !same_arm64_insn(a, b)) ++mismatches;
    if (arm64::Decoder::address_dependent(word)) {
      ++dependent;
      const uint32_t odd_rva = static_cast<uint32_t>(i * 0x9e3779b1u);
      const bool ok_d = odd_kept.decode(word, odd_rva, a);
      const bool ok_e = odd_fresh.decode_with_capstone(word, odd_rva, b);
      if (ok_d != ok_e || !same_arm64_insn(a, b)) ++mismatches;
      ++odd_checked;
      continue;
    }
    // The same word elsewhere: the same decoding but for its address.
    const bool ok_c = fresh.decode_with_capstone(word, rva + 0x123450, c);
    c.rva = rva;
    if (ok_c != ok_b || !same_arm64_insn(b, c)) ++mismatches;
    ++checked;
  }
  MESSAGE(words.size() << " words, " << checked << " address-independent, " << dependent << " not");
  CHECK(checked > 100000);
  CHECK(odd_checked == dependent);
  CHECK(mismatches == 0);
}
