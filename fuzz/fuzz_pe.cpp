// libFuzzer target: one file's bytes through PE parsing and analysis (search for a few tags, a search the
// ARM64 analysis focuses on MOVZ/MOVK words, driver mode, then driver mode with literal evidence for many
// tags), exactly as a scan analyses a file
// (Scanner::analyse_bytes).
#include <cstdint>
#include <cstdio>
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

// A search for tags that the ARM64 seeds build with MOVZ/MOVK words only (their bytes are nowhere in those
// files, while "Pool" is in every import name of ExAllocatePool*): the analysis focused on the words
// (CodeAnalyser::find_call_site_tags_near).
const tagwho::Scanner& words_scanner() {
  static const tagwho::Scanner scanner = [] {
    tagwho::ScanRequest request;
    for (const char* text : {"Leak", "WrA1", "CdWa"}) request.tags.push_back(*tagwho::Tag::parse(text));
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

// Driver mode with literal evidence for 300 tags: more than Hyperscan is used for, so the literal matcher's
// hash table (the index build's engine) reads the bytes.
const tagwho::Scanner& many_tags_scanner() {
  static const tagwho::Scanner scanner = [] {
    tagwho::ScanRequest request;
    request.all_tags = true;
    for (int i = 0; i < 300; ++i) {  // "T000".."T299", and tags the seeds hold
      char text[8];
      std::snprintf(text, sizeof text, "T%03d", i);
      request.tags.push_back(*tagwho::Tag::parse(text));
    }
    for (const char* text : {"Leak", "Ddk ", "Pool"}) request.tags.push_back(*tagwho::Tag::parse(text));
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
  words_scanner().analyse_bytes("fuzz.sys", bytes);
  driver_scanner().analyse_bytes("fuzz.sys", bytes);
  many_tags_scanner().analyse_bytes("fuzz.sys", bytes);
  return 0;
}
