// index_downgrade INDEX: rewrites a schema-5 tagwho index in the layout of schema 2 (see index_downgrade.hpp),
// for the CLI test of the in-place upgrade. Not part of tagwho.
#include <cstdio>
#include <exception>

#include "index_downgrade.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: index_downgrade INDEX\n");
    return 2;
  }
  try {
    tagwho::test::downgrade_index_to_schema2(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "index_downgrade: %s\n", e.what());
    return 1;
  }
  return 0;
}
