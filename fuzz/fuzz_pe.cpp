// libFuzzer target: one file's bytes through PE parsing and analysis (search for a few tags, then driver
// mode), exactly as a scan analyses a file (Scanner::analyse_bytes).
#include <cstdint>
#include <cstdlib>

#include "tagwho/scan.hpp"

namespace {

const tagwho::Scanner& search_scanner() {
  static const tagwho::Scanner scanner = [] {
    tagwho::ScanRequest request;
    for (const char* text : {"Leak", "Ddk ", "Pool", "Tag1"}) request.tags.push_back(*tagwho::Tag::parse(text));
    auto created = tagwho::Scanner::create(request);
    if (!created) std::abort();
    return std::move(*created);
  }();
  return scanner;
}

const tagwho::Scanner& driver_scanner() {
  static const tagwho::Scanner scanner = [] {
    tagwho::ScanRequest request;
    request.all_tags = true;
    auto created = tagwho::Scanner::create(request);
    if (!created) std::abort();
    return std::move(*created);
  }();
  return scanner;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tagwho::ByteView bytes(data, size);
  search_scanner().analyse_bytes("fuzz.sys", bytes);
  driver_scanner().analyse_bytes("fuzz.sys", bytes);
  return 0;
}
