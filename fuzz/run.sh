#!/bin/bash
# Runs every libFuzzer target for SECONDS each (default 60) on its seeds, in BUILD_DIR (default build-fuzz,
# built by fuzz/build.sh). Exit status 1 when a target found a crash, a leak or a sanitizer report; the
# input that did it is left in BUILD_DIR/fuzz-out/TARGET/ (copy it to tests/fuzz-regressions/TARGET/ once
# fixed, where the fuzz.regressions test replays it).
#
# Usage: fuzz/run.sh [SECONDS] [BUILD_DIR] [TARGET...]
# FUZZ_SEED: libFuzzer's random seed (default 0 = a new one each run, for exploring). CI (scripts/test.sh)
# passes a fixed seed so that its run is reproducible: a failure there replays exactly with the same seed,
# and new inputs are found by long exploring runs whose finds go to tests/fuzz-regressions.
# Seeds: samples/bin and the generated compiler corpus ($TAGWHO_CORPUS_DIR or build/corpus) for pe;
# tests/fixtures and tagdb/ for tagdb and poolmon; the generated images ($TAGWHO_IMAGES_DIR or build/images:
# the SYSTEM hive, the smallest image) for hive and image; tests/fuzz-regressions for all.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
build=$(cd "${2:-$root/build-fuzz}" && pwd) || exit 2
shift $(( $# < 2 ? $# : 2 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pe tagdb poolmon hive image)
corpus_dir=${TAGWHO_CORPUS_DIR:-$root/build/corpus}
images_dir=${TAGWHO_IMAGES_DIR:-$root/build/images}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

seed() {  # seed TARGET FILE...: copies readable files into the target's seed folder
  local target=$1; shift
  for file in "$@"; do [ -f "$file" ] && cp "$file" "$build/fuzz-seeds/$target/" 2>/dev/null; done
  return 0
}

status=0
for target in "${targets[@]}"; do
  binary=$build/fuzz/fuzz_$target
  [ -x "$binary" ] || { echo "fuzz/run.sh: $binary missing (run fuzz/build.sh)" >&2; exit 2; }
  rm -rf "$build/fuzz-seeds/$target"
  mkdir -p "$build/fuzz-seeds/$target" "$build/fuzz-corpus/$target" "$build/fuzz-out/$target"
  extra=()
  case $target in
  pe)
    seed pe "$root"/samples/bin/*.sys
    [ -d "$corpus_dir" ] && seed pe $(find "$corpus_dir" -type f -size -64k \( -name '*.sys' -o -name '*.exe' -o -name '*.dll' \) | head -n 200)
    extra=(-max_len=65536) ;;
  tagdb) seed tagdb "$root"/tests/fixtures/tagdb/* "$root"/tagdb/*.txt; extra=(-max_len=16384) ;;
  poolmon) seed poolmon "$root"/tests/fixtures/poolmon/*; extra=(-max_len=16384) ;;
  hive)
    seed hive "$root"/fuzz/seeds/hive/* $(find "$images_dir" -ipath '*config/SYSTEM' 2>/dev/null)
    extra=(-max_len=262144) ;;
  image)
    # The smallest generated images that hold Windows (E01, compressed; a bare NTFS volume), damaged ones.
    seed image "$images_dir"/disk.E01 "$images_dir"/bare.img "$images_dir"/truncated.vhdx "$images_dir"/truncated.img
    extra=(-max_len=$((8 << 20)) -rss_limit_mb=4096) ;;
  esac
  seed "$target" "$root"/tests/fuzz-regressions/"$target"/*
  echo "== fuzz_$target: ${seconds}s, $(ls "$build/fuzz-seeds/$target" | wc -l) seeds"
  (cd "$build/fuzz-out/$target" &&
    "$binary" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 -seed="${FUZZ_SEED:-0}" -artifact_prefix="$build/fuzz-out/$target/" \
      "${extra[@]}" "$build/fuzz-corpus/$target" "$build/fuzz-seeds/$target" >"$build/fuzz-out/$target.log" 2>&1)
  result=$?
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$build/fuzz-out/$target.log" | tr '\n' ' '; echo
  if [ $result -ne 0 ]; then
    echo "fuzz_$target FAILED (exit $result): see $build/fuzz-out/$target.log" >&2
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$build/fuzz-out/$target.log" | head -n 8 >&2
    status=1
  fi
done
exit $status
