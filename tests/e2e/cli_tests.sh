#!/bin/bash
# End-to-end tests of the tagwho CLI on the shipped sample drivers. Usage: cli_tests.sh TAGWHO CASE
# Each case prints what it checked and exits non-zero on the first failure.
set -u
tagwho=$1
case_name=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
samples=$root/samples
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL [$case_name]: $*" >&2; exit 1; }
# run EXPECTED_EXIT ARGS...: runs tagwho, keeps stdout/stderr in $work/out and $work/err
run() {
  local expected=$1; shift
  "$tagwho" "$@" >"$work/out" 2>"$work/err"
  local status=$?
  [ "$status" -eq "$expected" ] || { cat "$work/err" >&2; fail "tagwho $* exited $status, expected $expected"; }
}
# The tags a sample's source really uses: every TAG4('a','b','c','d') in it (decoys are written otherwise).
source_tags() {
  grep -o "TAG4('.','.','.','.')" "$1" | sed "s/TAG4('\(.\)','\(.\)','\(.\)','\(.\)')/\1\2\3\4/" | sort -u
}

case $case_name in
leak_sample_first)
  run 0 Leak "$samples/"
  first=$(head -n 1 "$work/out")
  [[ $first == "Leak  call  "*"/leak-"*".sys"* ]] || fail "first result is not a leak sample with call evidence: $first"
  grep -q "call  ExAllocatePoolWithTag at 0x" <(sed -n 2p "$work/out") || fail "no call-site line under the first result"
  # every leak build is found with call evidence, and the string/compare decoys rank below them
  for build in "$samples"/bin/leak-*.sys; do
    grep -q "^Leak  call  .*$(basename "$build")" "$work/out" || fail "$(basename "$build") not reported as call"
  done
  last_call=$(grep -n '^Leak  call' "$work/out" | tail -n 1 | cut -d: -f1)
  first_other=$(grep -n '^Leak  \(code\|data\|raw\)' "$work/out" | head -n 1 | cut -d: -f1)
  [ -z "$first_other" ] || [ "$first_other" -gt "$last_call" ] || fail "weaker evidence ranked above call evidence"
  grep -q '^Leak  call  .*pooluser' "$work/out" && fail "pooluser's string decoy reported as call"
  grep -q '^Leak  call  .*quiet' "$work/out" && fail "quiet's compared constant reported as call"
  echo "ok: $(grep -c '^Leak ' "$work/out") results, leak builds first with call evidence"
  ;;
decoys_are_weaker)
  run 0 Leak "$samples/bin"
  grep -q "^Leak  data  .*pooluser" "$work/out" || fail "pooluser's string \"Leak\" should be data evidence"
  grep -q "^Leak  code  .*quiet" "$work/out" || fail "quiet's compared 'Leak' should be code evidence"
  echo "ok: decoys reported as data and code"
  ;;
driver_lists_source_tags)
  for build in "$samples"/bin/*.sys; do
    name=$(basename "$build"); name=${name%%-*}
    expected=$(source_tags "$samples/src/$name.c")
    run 0 driver --json "$build"
    actual=$(grep -o '"tag":"[^"]*","value":"[^"]*","confidence":"call"' "$work/out" | cut -d'"' -f4 | sort -u)
    [ "$expected" = "$actual" ] || fail "$(basename "$build"): source uses [$(echo $expected)], tagwho driver lists [$(echo $actual)]"
    grep -q '"confidence":"\(code\|data\|raw\)"' "$work/out" && fail "$(basename "$build"): driver listing has non-call tags"
  done
  echo "ok: every sample lists exactly its source's tags"
  ;;
json_shape)
  run 0 --json Leak "$samples/bin/leak-clang-x64.sys"
  line=$(head -n 1 "$work/out")
  [[ $line =~ ^\{\"tag\":\"Leak\",\"value\":\"0x6b61654c\",\"path\":\"[^\"]+\",\"machine\":\"x64\",\"confidence\":\"call\",\"evidence\":\[\{\"kind\":\"call\",\"api\":\"ExAllocatePoolWithTag\",\"rva\":\"0x[0-9a-f]+\",\"section\":\"[^\"]+\" ]] \
    || fail "search JSON shape: $line"
  run 0 driver --json "$samples/bin/leak-mingw-x86.sys"
  line=$(head -n 1 "$work/out")
  [[ $line =~ ^\{\"path\":\"[^\"]+\",\"machine\":\"x86\",.*\"tags\":\[\{\"tag\":\"Leak\",\"value\":\"0x6b61654c\",\"confidence\":\"call\",\"evidence\":\[.*\"errors\":\[\]\}$ ]] \
    || fail "driver JSON shape: $line"
  echo "ok: JSON Lines shapes"
  ;;
exit_codes)
  run 1 Zzzz "$samples/bin"
  [ -s "$work/out" ] && fail "output for a tag that is nowhere"
  run 2 Leaky "$samples/bin"; grep -q "longer than 4" "$work/err" || fail "no message for a 5-character tag"
  run 2 $'L\x01' "$samples/bin"; grep -q "non-printable" "$work/err" || fail "no message for a control character"
  run 2 'L\x4' "$samples/bin"; grep -q "two hex digits" "$work/err" || fail "no message for a short escape"
  run 0 'L\x65ak' "$samples/bin/leak-clang-x64.sys"
  run 0 0x6b61654c "$samples/bin/leak-clang-x64.sys"
  run 0 -e Zzzz -e Leak "$samples/bin/leak-clang-x64.sys"
  run 2 Leak "$samples/bin/leak-clang-x64.sys" "$work/missing"
  grep -q "^Leak  call" "$work/out" || fail "results not printed when another path failed"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "expected exactly one stderr line for one missing path"
  run 2 Leak "$samples/src/leak.c"; grep -q "not a PE file" "$work/err" || fail "explicit non-PE file not reported"
  run 1 Leak "$samples/src"   # C sources inside a folder are not drivers: skipped, not errors
  run 0 --help
  echo "ok: exit codes 0/1/2 and tag syntax"
  ;;
short_tags_padded)
  # 'Leak' padded forms: "Le" means "Le  ", which is not in any sample
  run 1 Le "$samples/bin"
  run 0 --json Leak "$samples/bin/leak-clang-x64.sys"
  echo "ok"
  ;;
damaged_copies)
  # Truncated and bit-flipped copies of every sample beside intact ones: errors on stderr, no crash,
  # intact files still reported.
  mkdir -p "$work/tree"
  for build in "$samples"/bin/*.sys; do
    name=$(basename "$build" .sys)
    cp "$build" "$work/tree/$name.sys"
    size=$(stat -c %s "$build")
    for cut in 2 64 200 300 400 $((size / 2)) $((size - 1)); do
      head -c "$cut" "$build" >"$work/tree/$name.cut$cut.sys"
    done
    for offset in 0x3c 0x80 0x86 0x94 0xd8 0x180 0x1a0 0x200; do
      cp "$build" "$work/tree/$name.flip$offset.sys"
      printf '\xff' | dd of="$work/tree/$name.flip$offset.sys" bs=1 seek=$((offset)) conv=notrunc status=none
    done
  done
  "$tagwho" Leak "$work/tree" >"$work/out" 2>"$work/err"
  status=$?
  [ "$status" -eq 2 ] || fail "exit status $status, expected 2 (errors reported)"
  for build in "$samples"/bin/leak-*.sys; do
    grep -q "^Leak  call  x[0-9]*  $work/tree/$(basename "$build")" "$work/out" || fail "intact $(basename "$build") missing"
  done
  while IFS= read -r line; do
    [[ $line == "tagwho: $work/tree/"*": "* ]] || fail "stderr line not of the form 'tagwho: PATH: message': $line"
  done <"$work/err"
  dupes=$(cut -d: -f2 "$work/err" | sort | uniq -d | head -n 1)
  [ -z "$dupes" ] || fail "more than one error line for $dupes"
  echo "ok: $(wc -l <"$work/err") damaged files reported, one line each; intact files found"
  ;;
*)
  fail "unknown case"
  ;;
esac
