// libFuzzer target: pooltag.txt text through the parser, then lookups and the modules of every entry.
#include <cstdint>
#include <string_view>

#include "tagwho/tagdb.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  tagwho::TagdbFile file = tagwho::parse_tagdb(text, "pooltag.txt");
  for (const tagwho::TagdbEntry& entry : file.entries) {
    entry.modules();
    entry.names_file("/x/leak.sys");
    entry.specificity();
  }
  tagwho::Tagdb db;
  db.add(std::move(file));
  for (const char* tag : {"Leak", "Cc", "\\x84\\x31", "0x6b61654c"}) {
    auto parsed = tagwho::Tag::parse(tag);
    if (parsed) db.lookup(*parsed), db.all_matches(*parsed);
  }
  return 0;
}
