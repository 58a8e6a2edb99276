#!/bin/sh
# The whole test suite, as CI runs it (README's test command): builds and tests the normal build (build/),
# then the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/,
# -DTAGWHO_SANITIZE=ON), then builds the libFuzzer targets with clang (build-fuzz/) and runs each for
# FUZZ_SECONDS (default 30) from its seeds, with a fixed FUZZ_SEED so the run is reproducible. Stops at the first failure.
#   TAGWHO_TEST_SKIP_ASAN=1 / TAGWHO_TEST_SKIP_FUZZ=1 leave those stages out (local use).
set -eu
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}

echo "== normal build"
cmake -S . -B build
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure

if [ -z "${TAGWHO_TEST_SKIP_ASAN:-}" ]; then
  echo "== ASan + UBSan build"
  cmake -S . -B build-asan -DTAGWHO_SANITIZE=ON
  cmake --build build-asan -j"$jobs"
  # Any sanitizer report fails the test that caused it. Leaks of uninstrumented third-party libraries are
  # suppressed in tests/lsan.supp (never tagwho's own).
  ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
  LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs"
fi

if [ -z "${TAGWHO_TEST_SKIP_FUZZ:-}" ]; then
  echo "== fuzz targets, ${FUZZ_SECONDS:-30} s each"
  ./fuzz/build.sh build-fuzz
  FUZZ_SEED=${FUZZ_SEED:-20261125} TAGWHO_CORPUS_DIR=$(pwd)/build/corpus TAGWHO_IMAGES_DIR=$(pwd)/build/images ./fuzz/run.sh "${FUZZ_SECONDS:-30}" build-fuzz
fi
echo "== all tests passed"
