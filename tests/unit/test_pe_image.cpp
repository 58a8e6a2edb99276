// PeImage: loading small PE images assembled here, the sample drivers under samples/bin when they exist,
// and malformed inputs (each must give an Error or a valid image: never a crash, a hang or unbounded memory).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include "tagwho/byte_view.hpp"
#include "tagwho/pe_image.hpp"

using namespace tagwho;

namespace {

using Bytes = std::vector<uint8_t>;

// --- Little-endian writing and reading ------------------------------------------------------------------

void put16(Bytes& b, size_t at, uint16_t v) {
  if (b.size() < at + 2) b.resize(at + 2);
  b[at] = v & 0xff;
  b[at + 1] = v >> 8;
}
void put32(Bytes& b, size_t at, uint32_t v) {
  put16(b, at, v & 0xffff);
  put16(b, at + 2, v >> 16);
}
void put64(Bytes& b, size_t at, uint64_t v) {
  put32(b, at, static_cast<uint32_t>(v));
  put32(b, at + 4, static_cast<uint32_t>(v >> 32));
}
void put_string(Bytes& b, size_t at, std::string_view s) {  // with its NUL
  if (b.size() < at + s.size() + 1) b.resize(at + s.size() + 1);
  std::copy(s.begin(), s.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
  b[at + s.size()] = 0;
}
uint16_t get16(const Bytes& b, size_t at) { return static_cast<uint16_t>(b.at(at) | b.at(at + 1) << 8); }
uint32_t get32(const Bytes& b, size_t at) { return get16(b, at) | uint32_t{get16(b, at + 2)} << 16; }

ByteView view(const Bytes& b) { return ByteView(b.data(), b.size()); }

// Offsets of header fields, read from the file itself so they hold for the samples too.
size_t pe_offset(const Bytes& b) { return get32(b, 0x3c); }
size_t file_header(const Bytes& b) { return pe_offset(b) + 4; }
size_t optional_header(const Bytes& b) { return file_header(b) + 20; }
bool is_pe32_plus(const Bytes& b) { return get16(b, optional_header(b)) == 0x20b; }
size_t data_directory(const Bytes& b, int index) {
  return optional_header(b) + (is_pe32_plus(b) ? 112 : 96) + 8 * static_cast<size_t>(index);
}
size_t section_header(const Bytes& b, int index) {
  return optional_header(b) + get16(b, file_header(b) + 16) + 40 * static_cast<size_t>(index);
}

// --- VS_VERSIONINFO blocks --------------------------------------------------------------------------------

void pad4(Bytes& b) {
  while (b.size() % 4 != 0) b.push_back(0);
}
void append_utf16(Bytes& b, std::u16string_view s) {  // with its NUL
  for (char16_t c : s) {
    b.push_back(static_cast<uint8_t>(c & 0xff));
    b.push_back(static_cast<uint8_t>(c >> 8));
  }
  b.push_back(0);
  b.push_back(0);
}
Bytes vs_block(std::u16string_view key, const Bytes& value, uint16_t value_length, uint16_t type,
               const std::vector<Bytes>& children = {}) {
  Bytes b(6, 0);
  put16(b, 2, value_length);
  put16(b, 4, type);
  append_utf16(b, key);
  pad4(b);
  b.insert(b.end(), value.begin(), value.end());
  pad4(b);
  for (const Bytes& child : children) {
    b.insert(b.end(), child.begin(), child.end());
    pad4(b);
  }
  put16(b, 0, static_cast<uint16_t>(b.size()));
  return b;
}
Bytes vs_string(std::u16string_view key, std::u16string_view text) {
  Bytes value;
  append_utf16(value, text);
  return vs_block(key, value, static_cast<uint16_t>(text.size() + 1), 1);
}
Bytes version_resource() {
  Bytes fixed(52, 0);
  put32(fixed, 0, 0xfeef04bd);
  put32(fixed, 4, 0x10000);
  put32(fixed, 8, 10u << 16 | 0);      // FileVersionMS: 10.0
  put32(fixed, 12, 19041u << 16 | 1);  // FileVersionLS: 19041.1
  const Bytes table = vs_block(u"040904b0", {}, 0, 1,
                               {vs_string(u"CompanyName", u"Contoso \u00c9lectronique"),
                                vs_string(u"FileDescription", u"Pool user driver"),
                                vs_string(u"FileVersion", u"10.0.19041.1 (WinBuild.160101.0800)"),
                                vs_string(u"ProductName", u"Contoso Tools"),
                                vs_string(u"OriginalFilename", u"pooluser.sys")});
  Bytes translation(4, 0);
  put32(translation, 0, 0x04b00409);
  return vs_block(u"VS_VERSION_INFO", fixed, 52, 0,
                  {vs_block(u"StringFileInfo", {}, 0, 1, {table}),
                   vs_block(u"VarFileInfo", {}, 0, 1, {vs_block(u"Translation", translation, 4, 0)})});
}

// --- A minimal driver image -------------------------------------------------------------------------------
//
// Headers (0x400 bytes, e_lfanew 0x80), then four sections of 0x200 raw bytes each (0x400 for .rsrc):
//   .text  RVA 0x1000  code
//   .rdata RVA 0x2000  IAT at 0x2000 (ntoskrnl.exe: ExAllocatePoolWithTag, ExFreePoolWithTag; HAL.dll:
//                      ordinal 42), ILT at 0x2040, descriptors at 0x2080, names from 0x20c0
//   .pdata RVA 0x3000  function table (x64: 12-byte entries, given out of order; ARM64: 8-byte entries,
//                      one packed, one with .xdata at 0x3100)
//   .rsrc  RVA 0x4000  RT_VERSION / 1 / 0x409 -> VS_VERSIONINFO at 0x4060
// and optionally a fifth section ".big" at RVA 0x5000, file offset 0xe00, of the given raw size, for the
// import-limit tests.

constexpr uint32_t kIatRva = 0x2000;
constexpr uint32_t kIltRva = 0x2040;
constexpr uint32_t kDescriptorsRva = 0x2080;
constexpr uint32_t kNtoskrnlNameRva = 0x20c0;
constexpr uint32_t kHalNameRva = 0x20d0;
constexpr uint32_t kAllocateHintNameRva = 0x20e0;
constexpr uint32_t kFreeHintNameRva = 0x2100;
constexpr uint32_t kBigRva = 0x5000;
constexpr size_t kBigOffset = 0xe00;

struct DriverSpec {
  uint16_t machine = 0x8664;
  uint32_t big_section_size = 0;
};

struct SectionSpec {
  const char* name;
  uint32_t rva, virtual_size, raw_offset, raw_size, characteristics;
};

void write_section_header(Bytes& b, size_t at, const SectionSpec& s) {
  put_string(b, at, s.name);
  put32(b, at + 8, s.virtual_size);
  put32(b, at + 12, s.rva);
  put32(b, at + 16, s.raw_size);
  put32(b, at + 20, s.raw_offset);
  put32(b, at + 36, s.characteristics);
}

// RVA -> file offset for the first four sections: section n (RVA 0x1000 * n) starts at 0x200 + 0x200 * n.
size_t at_rva(uint32_t rva) { return rva - (rva & ~0xfffu) + 0x200 + 0x200 * (rva >> 12); }

void write_imports(Bytes& b, bool pe32_plus) {
  const uint32_t width = pe32_plus ? 8 : 4;
  const uint64_t ordinal_flag = pe32_plus ? 1ull << 63 : 0x80000000u;
  const auto put_thunk = [&](uint32_t rva, uint64_t value) {
    if (pe32_plus) put64(b, at_rva(rva), value);
    else put32(b, at_rva(rva), static_cast<uint32_t>(value));
  };
  const uint64_t thunks[] = {kAllocateHintNameRva, kFreeHintNameRva, 0, ordinal_flag | 42, 0};
  for (uint32_t i = 0; i < 5; ++i) {
    put_thunk(kIatRva + width * i, thunks[i]);  // on disk the IAT holds the same values as the ILT
    put_thunk(kIltRva + width * i, thunks[i]);
  }
  const auto put_descriptor = [&](int index, uint32_t ilt, uint32_t name, uint32_t iat) {
    const size_t at = at_rva(kDescriptorsRva) + 20 * static_cast<size_t>(index);
    put32(b, at, ilt);
    put32(b, at + 12, name);
    put32(b, at + 16, iat);
  };
  put_descriptor(0, kIltRva, kNtoskrnlNameRva, kIatRva);
  put_descriptor(1, kIltRva + 3 * width, kHalNameRva, kIatRva + 3 * width);
  put_string(b, at_rva(kNtoskrnlNameRva), "ntoskrnl.exe");
  put_string(b, at_rva(kHalNameRva), "HAL.dll");
  put_string(b, at_rva(kAllocateHintNameRva) + 2, "ExAllocatePoolWithTag");
  put_string(b, at_rva(kFreeHintNameRva) + 2, "ExFreePoolWithTag");
}

// Returns the size of the function table written.
uint32_t write_function_table(Bytes& b, uint16_t machine) {
  const size_t at = at_rva(0x3000);
  if (machine == 0xaa64) {
    put32(b, at, 0x1000);
    put32(b, at + 4, (0x40 / 4) << 2 | 1);  // packed: FunctionLength 0x40
    put32(b, at + 8, 0x1040);
    put32(b, at + 12, 0x3100);              // .xdata
    put32(b, at_rva(0x3100), 0x30 / 4);     // FunctionLength 0x30 in bits 0-17
    return 16;
  }
  const uint32_t entries[][3] = {{0x1040, 0x1060, 0x3100}, {0x1000, 0x1020, 0x3100}, {0x1020, 0x1040, 0x3100}};
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = 0; j < 3; ++j) put32(b, at + 12 * i + 4 * j, entries[i][j]);
  }
  return 36;
}

// Returns the size of the resource directory written.
uint32_t write_resources(Bytes& b) {
  const size_t root = at_rva(0x4000);
  const auto table = [&](size_t at, uint32_t id, uint32_t target) {
    put16(b, at + 14, 1);  // one ID entry
    put32(b, at + 16, id);
    put32(b, at + 20, target);
  };
  table(root, 16, 0x80000018);          // RT_VERSION -> directory at 0x18
  table(root + 0x18, 1, 0x80000030);    // name 1 -> directory at 0x30
  table(root + 0x30, 0x409, 0x48);      // language 0x409 -> data entry at 0x48
  const Bytes data = version_resource();
  REQUIRE(0x60 + data.size() <= 0x400);
  put32(b, root + 0x48, 0x4060);
  put32(b, root + 0x4c, static_cast<uint32_t>(data.size()));
  std::copy(data.begin(), data.end(), b.begin() + static_cast<std::ptrdiff_t>(root + 0x60));
  return 0x60 + static_cast<uint32_t>(data.size());
}

Bytes build_driver(const DriverSpec& spec = {}) {
  const bool pe32_plus = spec.machine != 0x14c;
  const uint16_t optional_size = pe32_plus ? 240 : 224;
  const uint32_t file_size = kBigOffset + spec.big_section_size;
  Bytes b(file_size, 0);
  b[0] = 'M';
  b[1] = 'Z';
  put32(b, 0x3c, 0x80);
  put32(b, 0x80, 0x00004550);
  const size_t fh = 0x84, oh = 0x98;
  const uint16_t sections = spec.big_section_size ? 5 : 4;
  put16(b, fh, spec.machine);
  put16(b, fh + 2, sections);
  put16(b, fh + 16, optional_size);
  put16(b, fh + 18, pe32_plus ? 0x22 : 0x102);
  put16(b, oh, pe32_plus ? 0x20b : 0x10b);
  put32(b, oh + 16, 0x1000);  // AddressOfEntryPoint
  if (pe32_plus) put64(b, oh + 24, 0x140000000ull);
  else put32(b, oh + 28, 0x10000);
  put32(b, oh + 32, 0x1000);  // SectionAlignment
  put32(b, oh + 36, 0x200);   // FileAlignment
  const uint32_t size_of_image = spec.big_section_size ? kBigRva + ((spec.big_section_size + 0xfff) & ~0xfffu) : 0x5000;
  put32(b, oh + 56, size_of_image);
  put32(b, oh + 60, 0x400);   // SizeOfHeaders
  put16(b, oh + 68, 1);       // Subsystem: native
  const size_t directories = oh + (pe32_plus ? 112 : 96);
  put32(b, directories - 4, 16);

  write_section_header(b, oh + optional_size, {".text", 0x1000, 0x100, 0x400, 0x200, 0x60000020});
  write_section_header(b, oh + optional_size + 40, {".rdata", 0x2000, 0x200, 0x600, 0x200, 0x40000040});
  write_section_header(b, oh + optional_size + 80, {".pdata", 0x3000, 0x200, 0x800, 0x200, 0x40000040});
  write_section_header(b, oh + optional_size + 120, {".rsrc", 0x4000, 0x400, 0xa00, 0x400, 0x40000040});
  if (spec.big_section_size) {
    write_section_header(b, oh + optional_size + 160,
                         {".big", kBigRva, spec.big_section_size, kBigOffset, spec.big_section_size, 0x40000040});
  }
  for (size_t i = 0; i < 0x100; ++i) b[0x400 + i] = 0xc3;  // ret

  write_imports(b, pe32_plus);
  put32(b, directories + 8, kDescriptorsRva);
  put32(b, directories + 12, 3 * 20);
  put32(b, directories + 12 * 8, kIatRva);
  put32(b, directories + 12 * 8 + 4, 0x40);
  if (pe32_plus) {
    put32(b, directories + 3 * 8, 0x3000);
    put32(b, directories + 3 * 8 + 4, write_function_table(b, spec.machine));
  }
  put32(b, directories + 2 * 8, 0x4000);
  put32(b, directories + 2 * 8 + 4, write_resources(b));
  return b;
}

// --- Samples ------------------------------------------------------------------------------------------------

Bytes read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::filesystem::path> sample_drivers() {
  std::vector<std::filesystem::path> paths;
  const std::filesystem::path dir = std::filesystem::path(TAGWHO_SOURCE_DIR) / "samples" / "bin";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".sys") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

// The load must end in a valid image or a one-line error.
void check_outcome(const Result<PeImage>& result) {
  if (!result) {
    CHECK_FALSE(result.error().empty());
    CHECK(result.error().find('\n') == std::string::npos);
    return;
  }
  for (const RuntimeFunction& f : result->functions()) CHECK(f.begin_rva < f.end_rva);
  CHECK(std::is_sorted(result->functions().begin(), result->functions().end(),
                       [](const RuntimeFunction& a, const RuntimeFunction& b) { return a.begin_rva < b.begin_rva; }));
  for (const Section& s : result->sections()) CHECK(result->section_bytes(s).size() == s.raw_size);
}

// The error, for messages (doctest may format a message even when the check passes).
std::string error_text(const Result<PeImage>& result) { return result ? std::string() : result.error(); }

std::string error_of(const Bytes& b) {
  auto result = PeImage::load(view(b));
  return result ? std::string("(loaded)") : result.error();
}

bool has_warning(const PeImage& image, std::string_view text) {
  return std::any_of(image.warnings().begin(), image.warnings().end(),
                     [&](const std::string& w) { return w.find(text) != std::string::npos; });
}

}  // namespace

// --- ByteView and MappedFile ------------------------------------------------------------------------------

TEST_CASE("ByteView::c_string needs a terminator within bounds") {
  const Bytes b = {'a', 'b', 0, 'c', 'd'};
  CHECK(view(b).c_string(0, 16) == std::string_view("ab"));
  CHECK(view(b).c_string(0, 2) == std::string_view("ab"));
  CHECK_FALSE(view(b).c_string(0, 1).has_value());  // "ab" is longer than 1
  CHECK(view(b).c_string(2, 16) == std::string_view(""));
  CHECK_FALSE(view(b).c_string(3, 16).has_value());  // runs off the end
  CHECK_FALSE(view(b).c_string(5, 16).has_value());
  CHECK_FALSE(view(b).c_string(UINT64_MAX, 16).has_value());
  CHECK_FALSE(ByteView().c_string(0, 16).has_value());
}

TEST_CASE("MappedFile maps regular files and refuses the rest") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto path = dir / ("tagwho_pe_test_" + std::to_string(::getpid()) + ".bin");
  {
    std::ofstream(path, std::ios::binary) << "MZ-data";
  }
  auto mapped = MappedFile::open(path.string());
  REQUIRE(mapped.ok());
  CHECK(std::string_view(reinterpret_cast<const char*>(mapped->view().data()), mapped->view().size()) == "MZ-data");
  MappedFile moved = std::move(*mapped);
  CHECK(moved.view().size() == 7);

  { std::ofstream(path, std::ios::binary | std::ios::trunc); }
  auto empty = MappedFile::open(path.string());
  REQUIRE(empty.ok());
  CHECK(empty->view().empty());
  std::filesystem::remove(path);

  auto directory = MappedFile::open(dir.string());
  REQUIRE_FALSE(directory.ok());
  CHECK(directory.error() == "not a regular file");
  auto missing = MappedFile::open((dir / "tagwho-no-such-file").string());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().find("No such file or directory") != std::string::npos);
}

TEST_CASE("MappedFile: a file that shrinks while mapped reads as zeros past its new end, and says it shrank") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto path = dir / ("tagwho_shrink_test_" + std::to_string(::getpid()) + ".bin");
  const auto other_path = dir / ("tagwho_shrink_other_" + std::to_string(::getpid()) + ".bin");
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::string bytes(3 * page + 100, 'x');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>('a' + i % 26);
  { std::ofstream(path, std::ios::binary) << bytes; }
  { std::ofstream(other_path, std::ios::binary) << bytes; }
  auto mapped = MappedFile::open(path.string());
  auto other = MappedFile::open(other_path.string());
  REQUIRE(mapped.ok());
  REQUIRE(other.ok());
  REQUIRE(mapped->mapped());  // (a copy could not shrink: the test would prove nothing)
  CHECK_FALSE(mapped->read_failure());
  std::filesystem::resize_file(path, page + 10);
  // Within the new size, the file's bytes; past it, zeros instead of SIGBUS (reads through volatile, so
  // that each one touches the mapping).
  const volatile uint8_t* data = mapped->view().data();
  CHECK(data[5] == static_cast<uint8_t>(bytes[5]));
  CHECK(data[page + 5] == static_cast<uint8_t>(bytes[page + 5]));
  CHECK(data[2 * page + 1] == 0);
  CHECK(data[3 * page + 99] == 0);
  CHECK(mapped->read_failure() == std::string(kShrankWhileRead));
  // Another mapping is not touched.
  CHECK_FALSE(other->read_failure());
  CHECK(other->view().data()[2 * page + 1] == static_cast<uint8_t>(bytes[2 * page + 1]));
  // The flag belongs to the mapping: a move keeps it, a fresh mapping of the shrunk file starts clean.
  MappedFile moved = std::move(*mapped);
  CHECK(moved.read_failure() == std::string(kShrankWhileRead));
  auto again = MappedFile::open(path.string());
  REQUIRE(again.ok());
  CHECK(again->view().size() == page + 10);
  CHECK_FALSE(again->read_failure());
  // Grown back to its size: the size no longer tells, the handler's note still does.
  std::filesystem::resize_file(path, bytes.size());
  CHECK(moved.read_failure() == std::string(kUnreadableWhileRead));
  std::filesystem::remove(path);
  std::filesystem::remove(other_path);
}

// --- Machine names and the cheap content check -------------------------------------------------------------

TEST_CASE("machine_name") {
  CHECK(std::string_view(machine_name(Machine::x86)) == "x86");
  CHECK(std::string_view(machine_name(Machine::x64)) == "x64");
  CHECK(std::string_view(machine_name(Machine::arm64)) == "arm64");
  CHECK(std::string_view(machine_name(Machine::ia64)) == "ia64");
  CHECK(std::string_view(machine_name(Machine::other)) == "other");
}

TEST_CASE("looks_like_pe") {
  const Bytes driver = build_driver();
  CHECK(PeImage::looks_like_pe(view(driver)));
  CHECK_FALSE(PeImage::looks_like_pe(ByteView()));
  CHECK_FALSE(PeImage::looks_like_pe(view(Bytes{'M', 'Z'})));
  Bytes no_signature = driver;
  no_signature[0x80] = 'X';
  CHECK_FALSE(PeImage::looks_like_pe(view(no_signature)));
  Bytes far = driver;
  put32(far, 0x3c, static_cast<uint32_t>(far.size() - 2));
  CHECK_FALSE(PeImage::looks_like_pe(view(far)));
}

// --- Built images -------------------------------------------------------------------------------------------

TEST_CASE("a minimal x64 driver loads completely") {
  const Bytes b = build_driver();
  auto image = PeImage::load(view(b));
  REQUIRE_MESSAGE(image.ok(), error_text(image));
  CHECK(image->warnings().empty());
  CHECK(image->machine() == Machine::x64);
  CHECK(image->machine_code() == 0x8664);
  CHECK(image->is_64bit());
  CHECK(image->image_base() == 0x140000000ull);
  CHECK(image->size_of_image() == 0x5000);
  CHECK(image->entry_rva() == 0x1000);

  REQUIRE(image->sections().size() == 4);
  const Section& text = image->sections()[0];
  CHECK(text.name == ".text");
  CHECK(text.rva == 0x1000);
  CHECK(text.virtual_size == 0x100);
  CHECK(text.raw_offset == 0x400);
  CHECK(text.raw_size == 0x200);
  CHECK(text.is_code());
  CHECK_FALSE(image->sections()[1].is_code());
  CHECK(image->sections()[3].name == ".rsrc");

  SUBCASE("imports: one slot per function, 8 bytes apart, ordinals kept") {
    REQUIRE(image->imports().size() == 3);
    const ImportSlot& allocate = image->imports()[0];
    CHECK(allocate.module == "ntoskrnl.exe");
    CHECK(allocate.name == "ExAllocatePoolWithTag");
    CHECK_FALSE(allocate.ordinal.has_value());
    CHECK(allocate.iat_rva == kIatRva);
    CHECK(image->imports()[1].name == "ExFreePoolWithTag");
    CHECK(image->imports()[1].iat_rva == kIatRva + 8);
    const ImportSlot& hal = image->imports()[2];
    CHECK(hal.module == "HAL.dll");
    CHECK(hal.name.empty());
    REQUIRE(hal.ordinal.has_value());
    CHECK(*hal.ordinal == 42);
    CHECK(hal.iat_rva == kIatRva + 3 * 8);  // after ntoskrnl's two slots and its terminator
  }

  SUBCASE("function table: sorted, looked up by address") {
    REQUIRE(image->functions().size() == 3);
    CHECK(image->functions()[0].begin_rva == 0x1000);
    CHECK(image->functions()[0].end_rva == 0x1020);
    CHECK(image->functions()[2].begin_rva == 0x1040);
    REQUIRE(image->function_at(0x1025) != nullptr);
    CHECK(image->function_at(0x1025)->begin_rva == 0x1020);
    CHECK(image->function_at(0x1060) == nullptr);  // end is exclusive
    CHECK(image->function_at(0xfff) == nullptr);
  }

  SUBCASE("version info from VS_VERSIONINFO") {
    const VersionInfo& v = image->version();
    CHECK(v.company == "Contoso \xc3\x89lectronique");
    CHECK(v.description == "Pool user driver");
    CHECK(v.file_version == "10.0.19041.1");  // from VS_FIXEDFILEINFO, not the string table
    CHECK(v.product_name == "Contoso Tools");
    CHECK(v.original_filename == "pooluser.sys");
  }

  SUBCASE("address translation") {
    CHECK(image->rva_to_offset(0x1010) == 0x410u);
    CHECK(image->rva_to_offset(0x20c0) == 0x6c0u);
    CHECK_FALSE(image->rva_to_offset(0x1100).has_value());  // past VirtualSize
    CHECK_FALSE(image->rva_to_offset(0x10).has_value());    // headers are not a section
    CHECK(image->offset_to_rva(0x410) == 0x1010u);
    CHECK_FALSE(image->offset_to_rva(0x510).has_value());   // raw padding past VirtualSize is not mapped
    CHECK_FALSE(image->offset_to_rva(0x100).has_value());
    REQUIRE(image->section_at_rva(0x2145) != nullptr);
    CHECK(image->section_at_rva(0x2145)->name == ".rdata");
    CHECK(image->section_at_rva(0x5000) == nullptr);
    REQUIRE(image->section_at_offset(0x9ff) != nullptr);
    CHECK(image->section_at_offset(0x9ff)->name == ".pdata");
    const ByteView code = image->section_bytes(text);
    CHECK(code.size() == 0x200);
    CHECK(code.data() == b.data() + 0x400);
    CHECK(image->file().data() == b.data());
  }
}

TEST_CASE("8-character section names have no terminator") {
  Bytes b = build_driver();
  std::copy_n("PAGEDATA", 8, b.begin() + static_cast<std::ptrdiff_t>(section_header(b, 1)));
  auto image = PeImage::load(view(b));
  REQUIRE_MESSAGE(image.ok(), error_text(image));
  CHECK(image->sections()[1].name == "PAGEDATA");
  CHECK(image->warnings().empty());  // LIEF read the same table
}

TEST_CASE("a minimal x86 driver: 4-byte slots, no function table") {
  const Bytes b = build_driver({.machine = 0x14c});
  auto image = PeImage::load(view(b));
  REQUIRE_MESSAGE(image.ok(), error_text(image));
  CHECK(image->machine() == Machine::x86);
  CHECK_FALSE(image->is_64bit());
  CHECK(image->image_base() == 0x10000);
  REQUIRE(image->imports().size() == 3);
  CHECK(image->imports()[1].iat_rva == kIatRva + 4);
  CHECK(image->imports()[2].iat_rva == kIatRva + 3 * 4);
  CHECK(*image->imports()[2].ordinal == 42);
  CHECK(image->functions().empty());
  CHECK(image->version().product_name == "Contoso Tools");
}

TEST_CASE("ARM64 function lengths: packed entries and .xdata") {
  const Bytes b = build_driver({.machine = 0xaa64});
  auto image = PeImage::load(view(b));
  REQUIRE_MESSAGE(image.ok(), error_text(image));
  CHECK(image->machine() == Machine::arm64);
  REQUIRE(image->functions().size() == 2);
  CHECK(image->functions()[0].begin_rva == 0x1000);
  CHECK(image->functions()[0].end_rva == 0x1040);  // packed: ((UnwindData >> 2) & 0x7ff) * 4
  CHECK(image->functions()[1].begin_rva == 0x1040);
  CHECK(image->functions()[1].end_rva == 0x1070);  // .xdata word bits 0-17, times 4
}

TEST_CASE("other machines") {
  Bytes b = build_driver();
  put16(b, 0x84, 0x200);
  CHECK(PeImage::load(view(b))->machine() == Machine::ia64);
  put16(b, 0x84, 0x1c4);  // ARM Thumb-2: no function table reader, so the directory is ignored
  auto arm = PeImage::load(view(b));
  REQUIRE(arm.ok());
  CHECK(arm->machine() == Machine::other);
  CHECK(arm->machine_code() == 0x1c4);
  CHECK(arm->functions().empty());
  CHECK(has_warning(*arm, "exception directory ignored"));
}

TEST_CASE("function table entries outside the image are dropped with a warning") {
  Bytes b = build_driver();
  put32(b, at_rva(0x3000) + 12, 0x90000);  // second entry: begins beyond SizeOfImage
  put32(b, at_rva(0x3000) + 16, 0x90010);
  put32(b, at_rva(0x3000) + 24, 0x1030);   // third entry: ends before it begins
  put32(b, at_rva(0x3000) + 28, 0x1020);
  auto image = PeImage::load(view(b));
  REQUIRE(image.ok());
  REQUIRE(image->functions().size() == 1);
  CHECK(image->functions()[0].begin_rva == 0x1040);
  CHECK(has_warning(*image, "dropped 2 exception directory entries"));
}

// --- Sample drivers ------------------------------------------------------------------------------------------

// The IAT slot RVAs were checked by hand against `llvm-readobj --coff-imports` on the first samples: for
// pooluser-clang-x64.sys it prints ImportAddressTableRVA 0x20E8 and eight symbols, which we report at
// 0x20e8, 0x20f0, ... 0x2120 (LIEF 0.9's ImportEntry::iat_address() gives the same). The samples may be
// rebuilt, so the test asserts relationships instead of those numbers: on disk an unbound IAT slot holds
// the same hint/name RVA as the lookup table, so reading the slot must lead back to the slot's name.
TEST_CASE("sample drivers") {
  const auto samples = sample_drivers();
  if (samples.empty()) {
    MESSAGE("no samples under samples/bin: skipped");
    return;
  }
  for (const auto& path : samples) {
    CAPTURE(path.filename().string());
    const Bytes b = read_file(path);
    auto image = PeImage::load(view(b));
    REQUIRE_MESSAGE(image.ok(), error_text(image));
    const std::string name = path.filename().string();
    if (name.find("x64") != std::string::npos) CHECK(image->machine() == Machine::x64);
    if (name.find("x86") != std::string::npos) CHECK(image->machine() == Machine::x86);
    CHECK_FALSE(image->sections().empty());
    CHECK(std::any_of(image->sections().begin(), image->sections().end(),
                      [](const Section& s) { return s.name == ".text" && s.is_code(); }));

    const uint32_t width = image->is_64bit() ? 8 : 4;
    for (size_t i = 0; i < image->imports().size(); ++i) {
      const ImportSlot& slot = image->imports()[i];
      CAPTURE(slot.name);
      if (i > 0 && image->imports()[i - 1].module == slot.module) {
        CHECK(slot.iat_rva == image->imports()[i - 1].iat_rva + width);
      }
      if (slot.ordinal) continue;
      const auto offset = image->rva_to_offset(slot.iat_rva);
      REQUIRE(offset.has_value());
      const auto hint_name_rva = image->file().u32(*offset);
      REQUIRE(hint_name_rva.has_value());
      const auto hint_name = image->rva_to_offset(*hint_name_rva);
      REQUIRE(hint_name.has_value());
      CHECK(image->file().c_string(*hint_name + 2, 256) == std::string_view(slot.name));
    }

    if (name.find("arm64") != std::string::npos) CHECK(image->machine() == Machine::arm64);
    if (image->machine() == Machine::x64 || image->machine() == Machine::arm64) {
      CHECK_FALSE(image->functions().empty());
      for (const RuntimeFunction& f : image->functions()) {
        const Section* section = image->section_at_rva(f.begin_rva);
        REQUIRE(section != nullptr);
        CHECK(section->is_code());
        CHECK(f.end_rva <= section->rva + section->mapped_size());
      }
    } else {
      CHECK(image->functions().empty());
    }
  }
}

TEST_CASE("pool-using samples import ExAllocatePoolWithTag") {
  for (const auto& path : sample_drivers()) {
    const std::string name = path.filename().string();
    if (name.find("pooluser-clang") == std::string::npos) continue;
    CAPTURE(name);
    const Bytes b = read_file(path);
    auto image = PeImage::load(view(b));
    REQUIRE(image.ok());
    CHECK(std::any_of(image->imports().begin(), image->imports().end(), [](const ImportSlot& s) {
      return s.module == "ntoskrnl.exe" && s.name == "ExAllocatePoolWithTag";
    }));
  }
}

// --- Malformed inputs ---------------------------------------------------------------------------------------

TEST_CASE("malformed headers are one-line errors") {
  const Bytes good = build_driver();
  CHECK(error_of({}) == "empty file");
  CHECK(error_of({'M', 'Z'}) == "truncated: DOS header ends beyond the file (0x40 > 0x2)");
  CHECK(error_of({'Z', 'M', 0, 0}) == "not a PE file (no MZ signature)");

  Bytes far = good;
  put32(far, 0x3c, 0x7fff0000);
  CHECK(error_of(far) == "e_lfanew 0x7fff0000 points beyond the end of the file (size 0xe00)");
  Bytes unaligned = good;
  put32(unaligned, 0x3c, 0x81);
  CHECK(error_of(unaligned) == "e_lfanew 0x81 is not 4-byte aligned");
  Bytes no_signature = good;
  no_signature[0x81] = 'X';
  CHECK(error_of(no_signature) == "not a PE file (no PE signature at 0x80)");

  Bytes many_sections = good;
  put16(many_sections, file_header(good) + 2, 0xffff);
  CHECK(error_of(many_sections) == "too many sections (65535 > 96)");
  Bytes no_sections = good;
  put16(no_sections, file_header(good) + 2, 0);
  CHECK(error_of(no_sections) == "no sections");

  Bytes huge_optional = good;
  put16(huge_optional, file_header(good) + 16, 0xffff);
  CHECK(error_of(huge_optional) == "truncated: section table ends beyond the file (0x10137 > 0xe00)");
  Bytes tiny_optional = good;
  put16(tiny_optional, file_header(good) + 16, 0x20);
  CHECK(error_of(tiny_optional) == "SizeOfOptionalHeader 0x20 is too small (at least 0x70 needed)");
  Bytes short_for_directories = good;
  put16(short_for_directories, file_header(good) + 16, 0x78);
  CHECK(error_of(short_for_directories) ==
        "SizeOfOptionalHeader 0x78 is too small for 16 data directories (0xf0 needed)");
  Bytes magic = good;
  put16(magic, optional_header(good), 0x107);
  CHECK(error_of(magic) == "unknown optional header magic 0x107 (expected 0x10b or 0x20b)");

  Bytes image_size = good;
  put32(image_size, optional_header(good) + 56, 0xfffff000);
  CHECK(error_of(image_size) == "SizeOfImage 0xfffff000 is absurd (must be 1 byte to 1 GiB)");
  Bytes small_image = good;
  put32(small_image, optional_header(good) + 56, 0x3000);
  CHECK(error_of(small_image) == "section .pdata extends beyond SizeOfImage (0x3200 > 0x3000)");

  Bytes odd_name = good;
  put_string(odd_name, section_header(good, 0), ".t\nx\\t");
  put32(odd_name, section_header(good, 0) + 8, 0x10000);
  CHECK(error_of(odd_name) == "section .t\\x0ax\\x5ct extends beyond SizeOfImage (0x11000 > 0x5000)");

  Bytes import_outside = good;
  put32(import_outside, data_directory(good, 1), 0x4ff0);
  CHECK(error_of(import_outside) == "import directory 0x4ff0+0x3c lies outside the image (SizeOfImage 0x5000)");
}

TEST_CASE("NumberOfRvaAndSizes above 16 is honoured as 16") {
  Bytes b = build_driver();
  put32(b, data_directory(b, 0) - 4, 0x7fffffff);
  auto image = PeImage::load(view(b));
  REQUIRE(image.ok());
  CHECK(has_warning(*image, "NumberOfRvaAndSizes 0x7fffffff is above 16"));
  CHECK(image->imports().size() == 3);
}

TEST_CASE("fewer data directories move the section table; LIEF is not asked then") {
  Bytes b = build_driver();
  // Keep 4 directories (export, import, resource, exception) and move the section table up to follow them.
  const size_t old_table = section_header(b, 0);
  put32(b, data_directory(b, 0) - 4, 4);
  put16(b, file_header(b) + 16, 112 + 4 * 8);
  std::copy(b.begin() + static_cast<std::ptrdiff_t>(old_table),
            b.begin() + static_cast<std::ptrdiff_t>(old_table + 4 * 40),
            b.begin() + static_cast<std::ptrdiff_t>(section_header(b, 0)));
  auto image = PeImage::load(view(b));
  REQUIRE_MESSAGE(image.ok(), error_text(image));
  CHECK(image->sections().size() == 4);
  CHECK(image->imports().size() == 3);
  CHECK(image->functions().size() == 3);
  CHECK(image->warnings().empty());
}

TEST_CASE("section raw data past the end of the file") {
  Bytes b = build_driver();
  SUBCASE("is clipped with a warning") {
    put32(b, section_header(b, 3) + 20, 0xb00);  // .rsrc raw data now 0xb00..0xf00, the file ends at 0xe00
    auto image = PeImage::load(view(b));
    REQUIRE(image.ok());
    CHECK(image->sections()[3].raw_size == 0x300);
    CHECK(has_warning(*image, "section .rsrc raw data runs past the end of the file (0xf00 > 0xe00); clipped"));
  }
  SUBCASE("entirely beyond the end: an empty section") {
    put32(b, section_header(b, 3) + 20, 0x100000);
    auto image = PeImage::load(view(b));
    REQUIRE(image.ok());
    CHECK(image->sections()[3].raw_size == 0);
    CHECK(image->version().company.empty());
  }
  SUBCASE("absurd offsets are rejected") {
    put32(b, section_header(b, 3) + 20, 0xfffffe00);
    CHECK(error_of(b) == "section .rsrc raw data ends at 0x100000200, beyond any plausible file");
  }
  SUBCASE("absurd sizes are rejected") {
    put32(b, section_header(b, 3) + 16, 0x40000000);
    CHECK(error_of(b) == "section .rsrc SizeOfRawData 0x40000000 is absurd (SizeOfImage 0x5000)");
  }
}

TEST_CASE("damaged import directories") {
  const Bytes good = build_driver();
  const size_t descriptors = at_rva(kDescriptorsRva);
  SUBCASE("a descriptor repeating an IAT is a loop") {
    Bytes b = good;
    std::copy(b.begin() + static_cast<std::ptrdiff_t>(descriptors),
              b.begin() + static_cast<std::ptrdiff_t>(descriptors + 20),
              b.begin() + static_cast<std::ptrdiff_t>(descriptors + 20));
    CHECK(error_of(b) == "import descriptor 1 repeats IAT 0x2000 (loop in the import directory)");
  }
  SUBCASE("descriptors running to the end of the section") {
    Bytes b = good;
    for (uint32_t i = 0; descriptors + 20 * (i + 1) <= 0x800; ++i) {
      put32(b, descriptors + 20 * i, kIltRva);
      put32(b, descriptors + 20 * i + 12, kNtoskrnlNameRva);
      put32(b, descriptors + 20 * i + 16, 0x1000 + 8 * i);
    }
    CHECK(error_of(b) == "import descriptor table at 0x2080 is not terminated inside its section");
  }
  SUBCASE("a lookup table without terminator") {
    Bytes b = build_driver({.big_section_size = 0x1000});
    put32(b, descriptors, kBigRva);
    for (size_t at = kBigOffset; at < b.size(); at += 8) put64(b, at, 0x8000000000000001ull);
    CHECK(error_of(b) == "imports from ntoskrnl.exe: lookup table at 0x5000 is not terminated inside its section");
  }
  SUBCASE("an unreadable module name") {
    Bytes b = good;
    put32(b, descriptors + 12, 0x4fff0);
    CHECK(error_of(b) == "import descriptor 0: module name at 0x4fff0 is unreadable");
  }
  SUBCASE("unreadable function names are skipped with a warning") {
    Bytes b = good;
    put64(b, at_rva(kIltRva), 0x7ffff000);
    auto image = PeImage::load(view(b));
    REQUIRE(image.ok());
    CHECK(image->imports().size() == 2);
    CHECK(image->imports()[0].iat_rva == kIatRva + 8);  // slot positions do not shift
    CHECK(has_warning(*image, "imports from ntoskrnl.exe: 1 entries with unreadable names skipped"));
  }
  SUBCASE("an import directory outside the file data") {
    Bytes b = good;
    put32(b, section_header(b, 2) + 8, 0x400);  // .pdata: VirtualSize 0x400 over 0x200 raw bytes
    put32(b, data_directory(b, 1), 0x3300);      // mapped, but in the zero-filled part
    CHECK(error_of(b) == "import directory 0x3300 is not backed by file data");
  }
}

TEST_CASE("import limits bound the work") {
  SUBCASE("more than 4096 descriptors") {
    Bytes b = build_driver({.big_section_size = 0x20000});
    put32(b, data_directory(b, 1), kBigRva);
    for (uint32_t i = 0; i <= 4096; ++i) {
      const size_t at = kBigOffset + 20 * static_cast<size_t>(i);
      put32(b, at, kIltRva);
      put32(b, at + 12, kNtoskrnlNameRva);
      put32(b, at + 16, kBigRva + 8 * i);
    }
    CHECK(error_of(b) == "too many import descriptors (> 4096)");
  }
  SUBCASE("more than 65536 functions") {
    Bytes b = build_driver({.big_section_size = 0x81000});
    const size_t descriptors = at_rva(kDescriptorsRva);
    put32(b, descriptors, kBigRva);
    put32(b, descriptors + 16, kBigRva);
    for (size_t i = 0; i <= 65536; ++i) put64(b, kBigOffset + 8 * i, 0x8000000000000001ull);
    CHECK(error_of(b) == "too many imported functions (> 65536)");
  }
}

TEST_CASE("damaged version resources leave the fields empty") {
  Bytes b = build_driver();
  const size_t version = at_rva(0x4060);
  SUBCASE("wrong key") {
    b[version + 6] = 'X';
    auto image = PeImage::load(view(b));
    REQUIRE(image.ok());
    CHECK(image->version().company.empty());
    CHECK(has_warning(*image, "version resource is malformed"));
  }
  SUBCASE("language entry pointing to a directory") {
    put32(b, at_rva(0x4000) + 0x30 + 20, 0x80000000);  // LIEF 0.9 dereferences a null ResourceData here
    auto image = PeImage::load(view(b));
    REQUIRE(image.ok());
    CHECK(image->version().company.empty());
    CHECK(has_warning(*image, "resource directory: type 16 entry is malformed"));
  }
  SUBCASE("blocks with zero lengths") {
    for (size_t at = version; at < version + 0x100; at += 2) put16(b, at, 0);
    auto image = PeImage::load(view(b));
    REQUIRE(image.ok());
    CHECK(image->version().file_version.empty());
  }
}

TEST_CASE("every truncation of a driver is an error or a valid image") {
  std::vector<Bytes> files = {build_driver(), build_driver({.machine = 0x14c}), build_driver({.machine = 0xaa64})};
  for (const auto& path : sample_drivers()) files.push_back(read_file(path));
  for (const Bytes& file : files) {
    for (size_t length = 0; length <= file.size(); ++length) {
      CAPTURE(length);
      const Bytes prefix(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(length));
      check_outcome(PeImage::load(view(prefix)));
    }
  }
}

TEST_CASE("2000 random single-byte flips are errors or valid images") {
  std::vector<Bytes> files = {build_driver(), build_driver({.machine = 0xaa64})};
  const auto samples = sample_drivers();
  if (!samples.empty()) files.push_back(read_file(samples.front()));
  std::mt19937 random(20240601);  // fixed seed: the same flips on every run and platform
  const auto start = std::chrono::steady_clock::now();
  for (const Bytes& original : files) {
    Bytes file = original;
    for (int i = 0; i < 2000; ++i) {
      const size_t at = random() % file.size();
      const auto flip = static_cast<uint8_t>(random() % 255 + 1);
      CAPTURE(at);
      CAPTURE(int{flip});
      file[at] ^= flip;
      check_outcome(PeImage::load(view(file)));
      file[at] ^= flip;
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds(30));
}
