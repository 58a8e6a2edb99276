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
unset TAGWHO_TAGDB  # the database is chosen by each case, never by the caller's environment

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
    grep -q "^Leak  call  [a-z0-9]*  $work/tree/$(basename "$build")" "$work/out" || fail "intact $(basename "$build") missing"
  done
  while IFS= read -r line; do
    [[ $line == "tagwho: $work/tree/"*": "* ]] || fail "stderr line not of the form 'tagwho: PATH: message': $line"
  done <"$work/err"
  dupes=$(cut -d: -f2 "$work/err" | sort | uniq -d | head -n 1)
  [ -z "$dupes" ] || fail "more than one error line for $dupes"
  echo "ok: $(wc -l <"$work/err") damaged files reported, one line each; intact files found"
  ;;
tagdb_side_by_side)
  # A database written here (invented entries): Leak named for one build only, PuCx for a driver that has none.
  printf '%s\n' 'rem test database' \
    'Leak - leak-clang-x64.sys - test entry for Leak' \
    'PuCx - leak-clang-x64.sys - claims the leak driver uses PuCx' >"$work/db.txt"
  run 0 Leak "$samples/bin" --tagdb "$work/db.txt"
  # evidence then the entry under the same row; agreement: no disagreement under leak-clang-x64
  block=$(sed -n "/^Leak  call  x64  .*leak-clang-x64.sys/,/^Leak /p" "$work/out")
  grep -q "^    call  ExAllocatePoolWithTag at 0x" <<<"$block" || fail "no evidence line: $block"
  grep -q "^    tagdb  Leak - leak-clang-x64.sys - test entry for Leak  \[db.txt:2\]" <<<"$block" || fail "no tagdb line: $block"
  grep -q "disagrees" <<<"$(sed '$d' <<<"$block")" && fail "disagreement where the database agrees: $block"
  # the database does not name leak-mingw-x64.sys, where the scan proves Leak
  sed -n "/^Leak  call  x64  .*leak-mingw-x64.sys/,/^Leak /p" "$work/out" \
    | grep -q "^    disagrees: call evidence here, but the tag database does not name this file" \
    || fail "proven tag in an unnamed driver not shown"
  # the database names leak-clang-x64.sys for PuCx, but the scan finds no PuCx there
  run 0 PuCx "$samples/bin" --tagdb "$work/db.txt"
  grep -q "^PuCx  none  x64  .*leak-clang-x64.sys$" "$work/out" || fail "named file without evidence not shown"
  grep -q "^    disagrees: the tag database names this file, but the scan found no evidence here" "$work/out" \
    || fail "no disagreement line for the file without evidence"
  [ "$(grep -c '^PuCx  none' "$work/out")" -eq 1 ] || fail "expected one file without evidence"
  # driver listing: the unproven entry is listed under the file
  run 0 driver "$samples/bin/leak-clang-x64.sys" --tagdb "$work/db.txt"
  grep -A1 "names this file for tags the scan did not find" "$work/out" | grep -q "PuCx - leak-clang-x64.sys" \
    || fail "driver listing does not show the unproven entry"
  echo "ok: evidence and database side by side; both disagreements shown"
  ;;
tagdb_json)
  printf '%s\n' 'Lea? - leak-clang-x64.sys - Le family' 'PuCx - leak-clang-x64.sys - claimed' >"$work/db.txt"
  run 0 --json Leak "$samples/bin/leak-clang-x64.sys" --tagdb "$work/db.txt"
  line=$(head -n 1 "$work/out")
  [[ $line == *'"tagdb":[{"pattern":"Lea?","binary":"leak-clang-x64.sys","description":"Le family","source":"'*'db.txt","line":1}],"tagdb_names_file":true}' ]] \
    || fail "search JSON tagdb field: $line"
  run 0 --json PuCx "$samples/bin/leak-clang-x64.sys" "$samples/bin/pooluser-clang-x64.sys" --tagdb "$work/db.txt"
  grep -q '"path":"[^"]*pooluser-clang-x64.sys",.*"confidence":"call",.*"tagdb_names_file":false,"disagreement":"not_named"}$' "$work/out" \
    || fail "not_named disagreement missing: $(cat "$work/out")"
  grep -q '"path":"[^"]*leak-clang-x64.sys",.*"confidence":"none","evidence":\[\],"tagdb":\[{"pattern":"PuCx".*"disagreement":"no_evidence"}$' "$work/out" \
    || fail "no_evidence row missing: $(cat "$work/out")"
  run 0 driver --json "$samples/bin/leak-clang-x64.sys" --tagdb "$work/db.txt"
  grep -q '"tagdb_unproven":\[{"pattern":"PuCx",' "$work/out" || fail "driver JSON tagdb_unproven: $(cat "$work/out")"
  echo "ok: tagdb fields in JSON Lines"
  ;;
tagdb_lookup)
  printf '%s\n' 'rem first' 'Qz?? - qz.sys - Qz family' 'Qzab - qzab.sys - exact' 'qzab - lower.sys - lower case' \
    'Dh 0 - dh.sys - space inside' 'Qx   - qx.sys - padded' 'Dup1 - one.sys - first' $'Dup1 - two.sys - second\r' >"$work/a.txt"
  printf '%s\n' 'Dup1 - later.sys - later file' >"$work/b.txt"
  run 0 tagdb lookup Qzab Qz12 qzab 'Dh 0' Qx Zzzz --tagdb "$work/a.txt"
  expected="Qzab  Qzab - qzab.sys - exact  [a.txt:3]
Qz12  Qz?? - qz.sys - Qz family  [a.txt:2]
qzab  qzab - lower.sys - lower case  [a.txt:4]
Dh 0  Dh 0 - dh.sys - space inside  [a.txt:5]
Qx    Qx   - qx.sys - padded  [a.txt:6]
Zzzz  (not in the tag database)"
  [ "$(cat "$work/out")" = "$expected" ] || fail "lookup table: $(cat "$work/out")"
  run 0 tagdb lookup Dup1 --tagdb "$work/a.txt"
  [ "$(grep -c '^Dup1  Dup1' "$work/out")" -eq 2 ] || fail "duplicates not both listed"
  run 0 tagdb lookup --json Dup1 --tagdb "$work/a.txt" --tagdb "$work/b.txt"
  [[ $(cat "$work/out") == '{"tag":"Dup1","matches":[{"pattern":"Dup1","binary":"later.sys","description":"later file","source":"'*'b.txt","line":1}]}' ]] \
    || fail "later --tagdb does not win the tie: $(cat "$work/out")"
  run 1 tagdb lookup Zzzz --tagdb "$work/a.txt"
  run 2 tagdb lookup Zzzzz --tagdb "$work/a.txt"
  run 2 tagdb lookup Qz12 --tagdb "$work/missing.txt"
  grep -q "missing.txt: no such file" "$work/err" || fail "missing --tagdb file not reported"
  run 0 tagdb check --tagdb "$work/a.txt"
  grep -q "a.txt: 7 entries (0 with two fields, 1 wildcards, 1 duplicates), 1 comments, 0 blank, 0 free text, CRLF" "$work/out" \
    || fail "check summary: $(cat "$work/out")"
  echo "ok: lookup, most specific wins, duplicates, later files win, check"
  ;;
tagdb_unknown)
  printf '%s\n' 'PuCx - pooluser-clang-x64.sys - known' 'Pu?? - <unknown> - family known' >"$work/family.txt"
  printf '%s\n' 'PuCx - pooluser-clang-x64.sys - known' >"$work/one.txt"
  run 1 tagdb unknown "$samples/bin/pooluser-clang-x64.sys" --tagdb "$work/family.txt"
  [ -s "$work/out" ] && fail "tags known through a wildcard reported as unknown"
  run 0 tagdb unknown "$samples/bin/pooluser-clang-x64.sys" --tagdb "$work/one.txt"
  expected=$(source_tags "$samples/src/pooluser.c" | grep -v PuCx)
  actual=$(grep -v '^rem' "$work/out" | cut -c1-4 | sort)
  [ "$expected" = "$actual" ] || fail "unknown tags [$(echo $actual)], expected [$(echo $expected)]"
  grep -q '^PuTm - pooluser-clang-x64.sys - ExAllocatePoolWithTag at +0x[0-9a-f]* (tagwho)$' "$work/out" \
    || fail "unknown tags not written as pooltag lines: $(cat "$work/out")"
  run 0 tagdb unknown --json "$samples/bin/pooluser-clang-x64.sys" --tagdb "$work/one.txt"
  grep -q '^{"tag":"PuLn","value":"0x6e4c7550","path":"[^"]*","machine":"x64","confidence":"call","evidence":\[' "$work/out" \
    || fail "unknown JSON: $(cat "$work/out")"
  # the project's own tagdb/ knows every sample tag
  run 1 tagdb unknown "$samples/bin"
  echo "ok: unknown lists proven tags the database lacks"
  ;;
tagdb_location)
  printf '%s\n' 'Leak - envleak.sys - from the environment' >"$work/env.txt"
  printf '%s\n' 'Leak - optleak.sys - from --tagdb' >"$work/opt.txt"
  TAGWHO_TAGDB="$work/env.txt" run 0 Leak "$samples/bin/leak-clang-x64.sys"
  grep -q "tagdb  Leak - envleak.sys" "$work/out" || fail "\$TAGWHO_TAGDB not used"
  TAGWHO_TAGDB="$work/env.txt" run 0 Leak "$samples/bin/leak-clang-x64.sys" --tagdb "$work/opt.txt"
  grep -q "tagdb  Leak - optleak.sys" "$work/out" || fail "--tagdb does not override \$TAGWHO_TAGDB"
  grep -q "envleak" "$work/out" && fail "\$TAGWHO_TAGDB used beside --tagdb"
  TAGWHO_TAGDB="$work/none.txt" run 2 Leak "$samples/bin/leak-clang-x64.sys"
  # default from the build tree: the repository's tagdb/
  run 0 tagdb check
  grep -q "^$root/tagdb/tagwho.txt: " "$work/out" || fail "build tree does not use the repository's tagdb/: $(cat "$work/out")"
  # an install without a tagdb folder: works as before, says so once
  mkdir -p "$work/inst/bin" "$work/win/Windows/System32/drivers"
  cp "$tagwho" "$work/inst/bin/tagwho"
  cp "$samples/bin/leak-clang-x64.sys" "$work/win/Windows/System32/drivers/"
  tagwho=$work/inst/bin/tagwho
  run 0 -e Leak -e PuCx "$work/win/Windows/System32/drivers"
  [ "$(grep -c 'no pool tag database found' "$work/err")" -eq 1 ] || fail "none-found note not printed exactly once"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "unexpected stderr: $(cat "$work/err")"
  grep -q "^Leak  call  x64" "$work/out" || fail "results missing without a database"
  grep -q "tagdb" "$work/out" && fail "tagdb lines without a database"
  run 0 Leak "$work/win/Windows/System32/drivers" --no-tagdb
  [ -s "$work/err" ] && fail "--no-tagdb still printed a note"
  # a Windows root with the Debugging Tools installed, found from the scanned path
  kit="$work/win/Program Files (x86)/Windows Kits/10/Debuggers/x64/triage"
  mkdir -p "$kit"
  printf '%s\n' 'Leak - leak-clang-x64.sys - from the kit' >"$kit/pooltag.txt"
  run 0 Leak "$work/win/Windows/System32/drivers"
  grep -q "tagdb  Leak - leak-clang-x64.sys - from the kit  \[pooltag.txt:1\]" "$work/out" || fail "kit pooltag.txt not used"
  [ -s "$work/err" ] && fail "note printed although the kit database was found"
  # the installed folder beside the executable comes before the kit
  mkdir -p "$work/inst/share/tagwho"
  printf '%s\n' 'Leak - leak-clang-x64.sys - installed' >"$work/inst/share/tagwho/mine.txt"
  run 0 Leak "$work/win/Windows/System32/drivers"
  grep -q "tagdb  Leak - leak-clang-x64.sys - installed" "$work/out" || fail "installed folder not used"
  echo "ok: --tagdb, \$TAGWHO_TAGDB, installed folder, Windows kit, none"
  ;;
pooltag_round_trip)
  # Written by --format pooltag and read back by tagwho's own parser, the file names each driver for
  # exactly the tags the scan proved there.
  round_trip() {
    local dir=$1
    run 0 driver --format pooltag "$dir"
    cp "$work/out" "$work/written.txt"
    [ -s "$work/err" ] && fail "skipped tags: $(cat "$work/err")"
    run 0 driver --json "$dir" --no-tagdb
    pairs=$(grep -o '"path":"[^"]*"\|"tag":"[^"]*","value":"[^"]*","confidence":"\(call\|wrapper\)"' "$work/out" \
      | awk -F'"' '/^"path"/ { n = split($4, p, "/"); file = p[n]; next } { print $4 " - " file }' | sort)
    written=$(grep -v '^rem' "$work/written.txt" | sed 's/^\(.\{4\}\) - \([^ ]*\) - .*/\1 - \2/' | sort)
    [ -n "$pairs" ] || fail "no proven tags in $dir"
    [ "$pairs" = "$written" ] || fail "written pairs differ from the scan in $dir: $(diff <(echo "$pairs") <(echo "$written") | head)"
    run 0 driver --json "$dir" --tagdb "$work/written.txt"
    grep -q '"tagdb_names_file":false' "$work/out" && fail "read back, an entry does not name its driver"
    [ "$(grep -c '"tagdb_unproven":\[\]' "$work/out")" -eq "$(wc -l <"$work/out")" ] || fail "read back, an entry names a tag not found"
    run 0 tagdb check --tagdb "$work/written.txt"
    grep -q ": $(wc -l <<<"$pairs") entries (0 with two fields, 0 wildcards, [0-9]* duplicates), .*, 0 free text$" "$work/out" \
      || fail "written file does not parse cleanly: $(cat "$work/out")"
    echo "ok: $(wc -l <<<"$pairs") (tag, driver) pairs round-trip in $dir"
  }
  round_trip "$samples/bin"
  if [ -n "${TAGWHO_CORPUS_DIR:-}" ] && [ -f "$TAGWHO_CORPUS_DIR/truth.tsv" ]; then
    round_trip "$TAGWHO_CORPUS_DIR"
  else
    echo "corpus skipped: no generated corpus in TAGWHO_CORPUS_DIR"
  fi
  ;;
*)
  fail "unknown case"
  ;;
esac
