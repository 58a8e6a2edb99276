#!/bin/sh
# Builds the libFuzzer targets (fuzz/fuzz_*) with clang++ into BUILD_DIR (default build-fuzz).
# Needs clang and libclang-rt-14-dev (scripts/setup.sh installs them).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-fuzz}
cmake -S "$root" -B "$build" -DTAGWHO_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target fuzz_pe fuzz_tagdb fuzz_poolmon fuzz_hive fuzz_image
