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
export XDG_CACHE_HOME=$work/no-cache  # never the user's index: cases that want one say so

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

# Offline-image cases: the images built by tests/images/make_images.sh (skipped, 77, when there are none).
images=${TAGWHO_IMAGES_DIR:-}
need_images() {
  [ -n "$images" ] && [ -f "$images/SHA256SUMS" ] || { echo "skipped: no images in TAGWHO_IMAGES_DIR"; exit 77; }
}
check_images() {  # nothing tagwho reads is ever written
  (cd "$images" && sha256sum --quiet -c SHA256SUMS) >&2 || fail "an image changed"
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
image_formats)
  # tagwho Leak IMAGE finds the Leak sample inside every format, with its call site and its service's start.
  need_images
  for image in disk.vhdx disk.E01 disk.vmdk disk.vhd disk-fixed.vhd mbr.img gpt.img bare.img; do
    run 0 Leak "$images/$image" --no-tagdb
    [ -s "$work/err" ] && fail "$image: stderr: $(cat "$work/err")"
    case $image in disk.vhdx|gpt.img) parts="p2: p3:" ;; *) parts="" ;; esac   # two Windows volumes: named
    for part in ${parts:-none}; do
      [ "$part" = none ] && part=""
      prefix="$images/$image:$part"
      block=$(sed -n "\#^Leak  call  x64  $prefix/Windows/system32/DRIVERS/Leak.sys\$#,/^Leak /p" "$work/out")
      [ -n "$block" ] || fail "$image: Leak.sys not found with call evidence at $prefix/...: $(cat "$work/out")"
      grep -q '^    service  LeakSvc "Leak sample driver", start demand, kernel, group Extended Base, ControlSet002$' <<<"$block" \
        || fail "$image: no service line (current control set) under Leak.sys: $block"
      grep -q "^    call  ExAllocatePoolWithTag at 0x" <<<"$block" || fail "$image: no call site under Leak.sys: $block"
      for found in "Windows/system32/ntoskrnl.exe" "Windows/system32/DriverStore/FileRepository/leak.inf_arm64_5f3c1a/leak-arm64.sys" \
                   "Program Files/Vendor/VENDOR.SYS"; do
        grep -q "^Leak  call  [a-z0-9]*  $prefix/$found\$" "$work/out" || fail "$image: $found not found as call"
      done
      sed -n "\#  $prefix/Program Files/Vendor/VENDOR.SYS\$#{n;p}" "$work/out" | grep -q "service  Vendor, start auto" \
        || fail "$image: the registry-named driver has no service"
      grep -q "^missing  $prefix  service Ghost (start boot): driver file not found at $prefix/Windows/system32/DRIVERS/ghost.sys" "$work/out" \
        || fail "$image: missing driver of service Ghost not reported"
    done
    grep -q "userland.dll\|Users/Public\|Drivers/leak.sys\|notes.txt" "$work/out" && fail "$image: a file outside the driver places was searched"
    run 0 --json Leak "$images/$image" --no-tagdb
    grep -q '"path":"[^"]*/DRIVERS/Leak.sys","machine":"x64","confidence":"call".*"service":{"name":"LeakSvc","display_name":"Leak sample driver","image_path":"\\\\SystemRoot\\\\System32\\\\drivers\\\\leak.sys","start":"demand","start_value":3,"type":"kernel","type_value":1,"group":"Extended Base","control_set":"ControlSet002"}' "$work/out" \
      || fail "$image: JSON service field: $(grep Leak.sys "$work/out")"
    grep -q '^{"missing_driver":"[^"]*ghost.sys","root":"[^"]*","service":{"name":"Ghost",.*"start":"boot"' "$work/out" \
      || fail "$image: JSON missing driver"
  done
  check_images
  echo "ok: Leak found with call site and service in VHDX, E01, VMDK, VHD (dynamic, fixed), raw MBR, GPT, bare NTFS"
  ;;
image_folder_copy)
  # A read-only copy of the volume as a folder (a mounted volume's stand-in) answers exactly as the image.
  need_images
  cp -r "$images/tree" "$work/mnt"
  chmod -R a-w "$work/mnt"
  run 0 Leak "$work/mnt" --no-tagdb
  sed "s#$work/mnt#ROOT#g" "$work/out" >"$work/folder.txt"
  grep -q "^Leak  call  x64  ROOT/Windows/system32/DRIVERS/Leak.sys$" "$work/folder.txt" || fail "Leak.sys not found in the folder"
  run 0 Leak "$images/bare.img" --no-tagdb
  sed "s#$images/bare.img:#ROOT#g" "$work/out" >"$work/image.txt"
  diff "$work/folder.txt" "$work/image.txt" >&2 || fail "folder and image answers differ"
  # a folder inside the root is a plain folder: every file, no services
  run 0 Leak "$work/mnt/Windows/system32" --no-tagdb
  grep -q "userland.dll" "$work/out" || fail "a plain folder should be searched whole"
  grep -q "service" "$work/out" && fail "services shown for a plain folder"
  chmod -R u+w "$work/mnt"
  check_images
  echo "ok: the folder copy gives the image's answer, line for line"
  ;;
image_driver_json)
  need_images
  run 0 driver --json "$images/disk.E01" --no-tagdb
  grep -q '^{"path":"[^"]*disk.E01:/Windows/system32/DRIVERS/Leak.sys","machine":"x64","version":{[^}]*},"service":{"name":"LeakSvc",[^}]*"start":"demand"' "$work/out" \
    || fail "driver JSON service: $(grep Leak.sys "$work/out")"
  grep -q '"path":"[^"]*quiet.sys",.*"service":{"name":"Quiet","display_name":"","image_path":"","start":"disabled"' "$work/out" \
    || fail "service without ImagePath not mapped to System32/drivers/NAME.sys"
  grep -q '"path":"[^"]*PoolUser.SYS",.*"service":{"name":"PoolUser",[^}]*"start":"system"' "$work/out" \
    || fail "relative ImagePath not mapped case-insensitively"
  grep -q '"name":"Spooler"' "$work/out" && fail "a Win32 service process reported"
  grep -q '^{"missing_driver":"","root":"[^"]*","service":{"name":"OtherDrive"' "$work/out" || fail "ImagePath on another drive not reported"
  run 0 driver "$images/disk.E01" --no-tagdb
  grep -q "^missing  $images/disk.E01:  service OtherDrive (start demand): driver file not found at a path outside this volume  \[ImagePath D:\\\\Drivers\\\\other.sys\]$" "$work/out" \
    || fail "driver table missing line: $(grep missing "$work/out")"
  check_images
  echo "ok: driver listings carry services; missing drivers listed"
  ;;
image_damaged)
  # Damaged images: one line each on stderr, the rest of the scan goes on.
  need_images
  "$tagwho" Leak "$images/garbage.img" "$images/truncated.vhdx" "$images/truncated.img" \
    "$samples/bin/leak-clang-x64.sys" "$images/disk.vmdk" --no-tagdb >"$work/out" 2>"$work/err"
  status=$?
  [ "$status" -eq 2 ] || fail "exit status $status, expected 2"
  [ "$(wc -l <"$work/err")" -eq 3 ] || fail "expected 3 stderr lines: $(cat "$work/err")"
  grep -q "^tagwho: $images/garbage.img: no readable NTFS file system" "$work/err" || fail "garbage: $(cat "$work/err")"
  grep -q "^tagwho: $images/truncated.vhdx: damaged or unsupported VHDX image" "$work/err" || fail "truncated vhdx: $(cat "$work/err")"
  grep -q "^tagwho: $images/truncated.img: " "$work/err" || fail "truncated raw: $(cat "$work/err")"
  grep -q "^Leak  call  x64  $samples/bin/leak-clang-x64.sys" "$work/out" || fail "sample after damaged images not scanned"
  grep -q "^Leak  call  x64  $images/disk.vmdk:/Windows/system32/DRIVERS/Leak.sys" "$work/out" || fail "image after damaged ones not scanned"
  check_images
  echo "ok: damaged images reported in one line each; the scan went on"
  ;;
index_build_update)
  # Counts after building, touching, changing, adding, copying and deleting files.
  mkdir -p "$work/tree/sub"
  cp "$samples"/bin/leak-*.sys "$work/tree/"
  cp "$samples"/bin/quiet-*.sys "$work/tree/sub/"
  echo "not a driver" >"$work/tree/readme.txt"
  idx=$work/i.db
  field() { grep -o "\"$1\":[0-9]*" "$work/out" | cut -d: -f2; }
  expect() { for kv in "$@"; do [ "$(field "${kv%=*}")" = "${kv#*=}" ] || fail "${kv%=*} is $(field "${kv%=*}"), expected ${kv#*=}: $(cat "$work/out")"; done; }
  run 0 index build --index "$idx" --json "$work/tree"
  expect files=11 pe_files=10 analysed=10 reused=0 added=11 removed=0
  run 0 index update --index "$idx" --json
  expect analysed=0 reused=10 added=0 changed=0 removed=0
  touch -d '2001-01-01' "$work/tree/leak-clang-x64.sys"                       # mtime only: hashed, reused
  printf 'X' >>"$work/tree/sub/quiet-clang-x86.sys"                           # new content
  cp "$samples/bin/pooluser-clang-x64.sys" "$work/tree/sub/new.sys"          # new file, new content
  cp "$samples/bin/leak-mingw-x86.sys" "$work/tree/sub/copy.sys"             # new file, known content
  rm "$work/tree/leak-clang-arm64.sys" "$work/tree/readme.txt"
  run 0 index update --index "$idx" --json
  expect files=11 pe_files=11 analysed=2 reused=9 added=2 changed=2 removed=2 duplicates=1
  run 0 index stats --index "$idx" --json
  grep -q '"files":11,"pe_files":11,"not_pe":0,"error_files":0,"contents":10,' "$work/out" || fail "stats: $(cat "$work/out")"
  # what the index answers follows the disk
  run 0 --index "$idx" --json PuCx
  grep -q '"path":"[^"]*/sub/new.sys"' "$work/out" || fail "added file not answered"
  run 0 --index "$idx" Leak
  grep -q "^Leak .*leak-clang-arm64" "$work/out" && fail "deleted file still answered"
  grep -q "^Leak  call  x86  .*/sub/copy.sys" "$work/out" || fail "copied file not answered"
  echo "ok: build/update counts after touch, change, add, copy, delete"
  ;;
index_dedup)
  mkdir -p "$work/tree/a" "$work/tree/b"
  for d in a b; do cp "$samples"/bin/leak-clang-x64.sys "$work/tree/$d/"; done
  cp "$samples"/bin/leak-clang-x64.sys "$work/tree/third.sys"
  cp "$samples"/bin/pooluser-clang-x64.sys "$work/tree/"
  run 0 index build --index "$work/i.db" --json "$work/tree"
  grep -q '"pe_files":4,"analysed":2,"reused":2,' "$work/out" || fail "identical files analysed more than once: $(cat "$work/out")"
  grep -q '"duplicates":2,' "$work/out" || fail "duplicates: $(cat "$work/out")"
  [ "$(sqlite3 "$work/i.db" 'SELECT count(*) FROM contents')" = 2 ] || fail "identical files stored more than once"
  run 0 --index "$work/i.db" Leak
  [ "$(grep -c '^Leak  call  x64' "$work/out")" -eq 3 ] || fail "every path of the shared content not listed: $(cat "$work/out")"
  echo "ok: 4 files, 2 contents analysed and stored once, every path listed"
  ;;
index_equals_scan)
  # Every answer read from the index equals a fresh scan: table and JSON, with and without PATH, one tag or
  # several, tags proven somewhere (served from the index) and tags proven nowhere (searched afresh).
  compare_dir() {
    local dir=$1 idx=$work/$2.db
    run 0 index build --index "$idx" "$dir"
    local tags
    tags=$( { sqlite3 "$idx" "SELECT DISTINCT tag_text FROM findings"; echo Zzzz; echo Leak; echo 'Dh 0'; } | sort -u)
    local n=0
    while IFS= read -r tag; do
      for format in "" --json; do
        "$tagwho" $format --no-index "$tag" "$dir" >"$work/scan" 2>"$work/scan.err"; s1=$?
        "$tagwho" $format --index "$idx" "$tag" >"$work/idx" 2>"$work/idx.err"; s2=$?
        [ "$s1" = "$s2" ] || fail "[$tag] exit $s2 from the index, $s1 from a scan"
        cmp -s "$work/scan" "$work/idx" || fail "[$tag $format] index answer differs: $(diff "$work/scan" "$work/idx" | head -5)"
        cmp -s <(sort "$work/scan.err") <(sort "$work/idx.err") || fail "[$tag] stderr differs: $(diff "$work/scan.err" "$work/idx.err" | head -5)"
        "$tagwho" $format --index "$idx" "$tag" "$dir" >"$work/idxp" 2>/dev/null
        cmp -s "$work/scan" "$work/idxp" || fail "[$tag $format] index answer with PATH differs"
        n=$((n + 1))
      done
    done <<<"$tags"
    set -- $(head -n 3 <<<"$tags")
    "$tagwho" --json --no-index -e "$1" -e "$2" -e "$3" -e Zzzz "$dir" >"$work/scan" 2>/dev/null
    "$tagwho" --json --index "$idx" -e "$1" -e "$2" -e "$3" -e Zzzz >"$work/idx" 2>/dev/null
    cmp -s "$work/scan" "$work/idx" || fail "several tags: index answer differs"
    echo "ok: $n answers for $(wc -l <<<"$tags") tags identical from the index and a scan of $dir"
  }
  # absolute paths, as the index stores them
  compare_dir "$(cd "$samples/bin" && pwd)" samples
  if [ -n "${TAGWHO_CORPUS_DIR:-}" ] && [ -f "$TAGWHO_CORPUS_DIR/truth.tsv" ]; then
    compare_dir "$(cd "$TAGWHO_CORPUS_DIR" && pwd)" corpus
  else
    echo "corpus skipped: no generated corpus in TAGWHO_CORPUS_DIR"
  fi
  ;;
index_stale_paths)
  # With PATHs under an indexed root the index answers, says what is stale, and analyses that afresh.
  mkdir -p "$work/tree"
  cp "$samples"/bin/*.sys "$work/tree/"
  run 0 index build --index "$work/i.db" "$work/tree"
  cp "$samples/bin/leak-clang-x64.sys" "$work/tree/zz-new.sys"
  rm "$work/tree/leak-mingw-x86.sys"
  "$tagwho" --no-index Leak "$work/tree" >"$work/scan" 2>/dev/null
  run 0 --index "$work/i.db" Leak "$work/tree"
  cmp -s "$work/scan" "$work/out" || fail "stale answer differs from a scan: $(diff "$work/scan" "$work/out" | head)"
  grep -q "out of date for these paths (0 changed, 1 new, 1 gone" "$work/err" || fail "staleness not said: $(cat "$work/err")"
  run 0 --index "$work/i.db" Leak "$work/tree/leak-clang-x64.sys"
  [ -s "$work/err" ] && fail "unexpected stderr for an up-to-date file: $(cat "$work/err")"
  run 0 --index "$work/i.db" Leak "$samples/bin"     # not under an indexed root: a scan
  grep -q "does not cover these paths" "$work/err" || fail "no note when the index does not cover the paths"
  # no PATH: the default index when it exists
  XDG_CACHE_HOME=$work/cache run 2 Leak
  grep -q "no PATH given and no index" "$work/err" || fail "no message without PATH and index"
  XDG_CACHE_HOME=$work/cache run 0 index build "$work/tree"
  [ -f "$work/cache/tagwho/index.db" ] || fail "default index not at \$XDG_CACHE_HOME/tagwho/index.db"
  XDG_CACHE_HOME=$work/cache run 0 Leak
  grep -q "^Leak  call  .*zz-new.sys" "$work/out" || fail "default index not used"
  echo "ok: stale files said and analysed afresh; default index used without PATH"
  ;;
index_merge_export)
  mkdir -p "$work/a" "$work/b"
  cp "$samples"/bin/leak-*.sys "$work/a/"
  cp "$samples"/bin/leak-clang-x64.sys "$samples"/bin/pooluser-*.sys "$work/b/"
  run 0 index build --index "$work/a.db" --host alpha "$work/a"
  run 0 index build --index "$work/b.db" --host beta "$work/b"
  # export round trip: jsonl equals a driver listing, pooltag equals driver --format pooltag and reads back
  run 0 index export --index "$work/a.db" --format jsonl
  "$tagwho" driver --json --no-tagdb "$work/a" >"$work/driver.json"
  cmp -s "$work/out" "$work/driver.json" || fail "jsonl export differs from tagwho driver --json: $(diff "$work/out" "$work/driver.json" | head -4)"
  run 0 index export --index "$work/a.db" --format pooltag
  cp "$work/out" "$work/exported.txt"
  "$tagwho" driver --format pooltag "$work/a" >"$work/driver.txt"
  cmp -s "$work/exported.txt" "$work/driver.txt" || fail "pooltag export differs from driver --format pooltag"
  run 0 driver --json "$work/a" --tagdb "$work/exported.txt"
  grep -q '"tagdb_names_file":false' "$work/out" && fail "read back, an exported entry does not name its driver"
  run 0 index export --index "$work/a.db" --format csv
  [ "$(head -n 1 "$work/out")" = "host,path,machine,size,tag,value,confidence,evidence,apis,errors" ] || fail "csv header"
  pairs=$(grep -o '"tag":"[^"]*","value":"[^"]*","confidence":"call"' "$work/driver.json" | wc -l)
  [ "$(($(wc -l <"$work/out") - 1))" -eq "$pairs" ] || fail "csv rows $(($(wc -l <"$work/out") - 1)), expected $pairs"
  # merge: both hosts, each file under its host; merging again changes nothing
  run 0 index merge "$work/fleet.db" "$work/a.db" "$work/b.db"
  run 0 index stats --index "$work/fleet.db" --json
  grep -q '"files":11,' "$work/out" || fail "merged files: $(cat "$work/out")"
  grep -q '"hosts":\[{"name":"alpha","files":5,.*{"name":"beta","files":6,' "$work/out" || fail "merged hosts: $(cat "$work/out")"
  [ "$(sqlite3 "$work/fleet.db" 'SELECT count(*) FROM contents')" = 10 ] || fail "identical content of two hosts stored twice"
  run 0 index merge "$work/fleet.db" "$work/b.db" "$work/a.db"
  run 0 index stats --index "$work/fleet.db" --json
  grep -q '"files":11,' "$work/out" || fail "merging again added files: $(cat "$work/out")"
  run 0 --index "$work/fleet.db" Leak
  grep -q "^Leak  call  x64  alpha:$work/a/leak-clang-x64.sys" "$work/out" || fail "host of origin not shown: $(cat "$work/out")"
  grep -q "^Leak  call  x64  beta:$work/b/leak-clang-x64.sys" "$work/out" || fail "second host not shown"
  run 0 --index "$work/fleet.db" PuCx
  [ "$(grep -c '^PuCx  call' "$work/out")" -eq 5 ] || fail "PuCx: $(cat "$work/out")"
  run 0 index export --index "$work/fleet.db" --format jsonl
  [ "$(grep -c '^{"host":"alpha","path":' "$work/out")" -eq 5 ] || fail "jsonl export without hosts"
  echo "ok: export round trips (jsonl, pooltag, csv); merge keeps hosts, dedups, is idempotent"
  ;;
index_kill)
  # kill -9 during a build at several moments: the index still opens, passes integrity_check, and holds
  # the old state or the new one.
  mkdir -p "$work/tree"
  cp "$samples"/bin/*.sys "$work/tree/"
  idx=$work/i.db
  run 0 index build --index "$idx" "$work/tree"
  old=$(sqlite3 "$idx" 'SELECT count(*) FROM files')
  for i in $(seq 1 80); do for f in "$samples"/bin/*.sys; do
    { cat "$f"; printf 'overlay %d' "$i"; } >"$work/tree/$i-$(basename "$f")"
  done; done
  new=$(find "$work/tree" -type f | wc -l)
  outcomes=""
  for delay in 0.02 0.06 0.1 0.15 0.2 0.25 0.3 0.35 0.4 0.5 0.7 1.0; do
    "$tagwho" index build --index "$idx" -j 2 "$work/tree" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ "$(sqlite3 "$idx" 'PRAGMA integrity_check')" = ok ] || fail "integrity check failed after kill at ${delay}s"
    count=$(sqlite3 "$idx" 'SELECT count(*) FROM files')
    [ "$count" = "$old" ] || [ "$count" = "$new" ] || fail "after kill at ${delay}s the index holds $count files (old $old, new $new)"
    "$tagwho" --index "$idx" Leak >/dev/null 2>"$work/err" || fail "index unusable after kill at ${delay}s: $(cat "$work/err")"
    outcomes="$outcomes $delay:$count"
    # back to the old state for the next round
    if [ "$count" = "$new" ]; then
      mkdir -p "$work/keep" && mv "$work/tree"/[0-9]*-*.sys "$work/keep/"
      run 0 index build --index "$idx" "$work/tree"
      mv "$work/keep"/* "$work/tree/"
    fi
  done
  run 0 index build --index "$idx" "$work/tree"
  [ "$(sqlite3 "$idx" 'SELECT count(*) FROM files')" = "$new" ] || fail "build after the kills incomplete"
  echo "ok: killed at (delay:files)$outcomes; always intact, old or new"
  ;;
index_concurrent)
  mkdir -p "$work/tree"
  for i in $(seq 1 20); do for f in "$samples"/bin/*.sys; do
    { cat "$f"; printf 'copy %d' "$i"; } >"$work/tree/$i-$(basename "$f")"
  done; done
  idx=$work/i.db
  run 0 index build --index "$idx" "$work/tree"
  # two writers at once: the second waits for the first; queries meanwhile read the committed state
  "$tagwho" index build --index "$idx" "$work/tree" >"$work/w1" 2>&1 &
  p1=$!
  "$tagwho" index build --index "$idx" "$work/tree" >"$work/w2" 2>&1 &
  p2=$!
  for i in 1 2 3 4 5; do
    "$tagwho" --index "$idx" --json Leak >"$work/q" 2>"$work/qe" || fail "query during builds failed: $(cat "$work/qe")"
    [ "$(grep -c '"confidence":"call"' "$work/q")" -eq 100 ] || fail "query during builds saw a partial index: $(grep -c '"confidence":"call"' "$work/q")"
  done
  wait "$p1" || fail "first writer failed: $(cat "$work/w1")"
  wait "$p2" || fail "second writer failed: $(cat "$work/w2")"
  # a writer that cannot wait long enough says why, and changes nothing
  (echo "BEGIN IMMEDIATE; DELETE FROM meta WHERE key = 'nothing';"; sleep 3; echo "COMMIT;") | sqlite3 "$idx" &
  holder=$!
  sleep 0.5
  run 2 index update --index "$idx" --wait 0.5
  grep -q "being written by another tagwho process" "$work/err" || fail "no clear message when locked: $(cat "$work/err")"
  run 0 --index "$idx" Leak   # reading while another process writes
  wait "$holder"
  [ "$(sqlite3 "$idx" 'PRAGMA integrity_check')" = ok ] || fail "integrity check after concurrent use"
  run 0 index update --index "$idx" --json
  grep -q '"analysed":0,"reused":300,' "$work/out" || fail "state after concurrent builds: $(cat "$work/out")"
  echo "ok: concurrent writers serialised, readers unaffected, lock timeout reported"
  ;;
index_images)
  # index build takes disk images and mounted Windows roots as a scan does: the index's answers (whole, and
  # for a PATH) equal a scan's, services and missing drivers included; update re-reads images without
  # analysing again; a replaced image is seen as stale; a schema-1 index is upgraded in place.
  need_images
  cp -r "$images/tree" "$work/root"
  cp "$images/bare.img" "$work/b.img"
  mapfile -t paths < <(printf '%s\n' "$images/disk.E01" "$images/disk.vhdx" "$work/b.img" "$work/root" | LC_ALL=C sort)
  idx=$work/i.db
  run 0 index build --index "$idx" "${paths[@]}"
  grep -q "^built .*: 30 files, 30 PE (6 analysed, 24 reused, 24 duplicates of another file); 30 added, 0 changed, 0 removed" "$work/out" \
    || fail "build counts: $(cat "$work/out")"
  [ "$(sqlite3 "$idx" "SELECT count(*) FROM files WHERE service_name = 'LeakSvc'")" = 5 ] || fail "LeakSvc not stored for the 5 Leak.sys"
  [ "$(sqlite3 "$idx" "SELECT count(*) FROM missing_services WHERE service_name = 'Ghost'")" = 5 ] || fail "missing Ghost not stored per root"
  tags=$( { sqlite3 "$idx" "SELECT DISTINCT tag_text FROM findings"; echo This; echo Zzzz; } | sort -u)
  n=0
  while IFS= read -r tag; do
    for format in "" --json; do
      "$tagwho" $format --no-index --no-tagdb "$tag" "${paths[@]}" >"$work/scan" 2>"$work/scan.err"; s1=$?
      "$tagwho" $format --index "$idx" --no-tagdb "$tag" >"$work/idx" 2>"$work/idx.err"; s2=$?
      [ "$s1" = "$s2" ] || fail "[$tag] exit $s2 from the index, $s1 from a scan"
      cmp -s "$work/scan" "$work/idx" || fail "[$tag $format] index answer differs: $(diff "$work/scan" "$work/idx" | head -5)"
      cmp -s "$work/scan.err" "$work/idx.err" || fail "[$tag $format] stderr differs: $(diff "$work/scan.err" "$work/idx.err" | head -5)"
      for path in "${paths[@]}"; do
        "$tagwho" $format --no-index --no-tagdb "$tag" "$path" >"$work/scan" 2>"$work/scan.err"
        "$tagwho" $format --index "$idx" --no-tagdb "$tag" "$path" >"$work/idx" 2>"$work/idx.err"
        cmp -s "$work/scan" "$work/idx" || fail "[$tag $format $path] index answer with PATH differs: $(diff "$work/scan" "$work/idx" | head -5)"
        [ -s "$work/idx.err" ] && fail "[$tag $path] index answer with PATH: $(cat "$work/idx.err")"
        n=$((n + 1))
      done
    done
  done <<<"$tags"
  # export is the driver listing, services included (missing drivers are not files: listed by searches only)
  "$tagwho" index export --index "$idx" --format jsonl >"$work/export" || fail "export"
  "$tagwho" driver --json --no-tagdb "${paths[@]}" | grep -v '^{"missing_driver"' | cmp -s - "$work/export" \
    || fail "export differs from tagwho driver --json"
  run 0 --index "$idx" --no-tagdb Leak
  grep -q '^    service  LeakSvc "Leak sample driver", start demand' "$work/out" || fail "no service in the index's answer"
  grep -q "^missing  $images/disk.E01:  service Ghost (start boot)" "$work/out" || fail "no missing driver in the index's answer"
  run 0 index update --index "$idx"
  grep -q "(0 analysed, 30 reused, .*0 added, 0 changed, 0 removed" "$work/out" || fail "update of unchanged images: $(cat "$work/out")"
  # The image replaced by another (two Windows volumes: other paths, same drivers): stale, and still a scan's answer.
  cp "$images/gpt.img" "$work/b.img"
  run 0 --index "$idx" --no-tagdb Leak "$work/b.img"
  grep -q "out of date for these paths (0 changed, 12 new, 6 gone" "$work/err" || fail "replaced image not stale: $(cat "$work/err")"
  "$tagwho" --no-index --no-tagdb Leak "$work/b.img" | cmp -s - "$work/out" || fail "stale image answer differs from a scan"
  run 0 index update --index "$idx"
  grep -q "(0 analysed, 36 reused, .*12 added, 0 changed, 6 removed" "$work/out" || fail "update after the swap: $(cat "$work/out")"
  # Schema 1 (no services, one row per evidence item) is upgraded in place when opened for writing, and
  # answers again, as before.
  "$tagwho" --index "$idx" --no-tagdb Leak >"$work/before" || fail "answer before the downgrade"
  "${TAGWHO_INDEX_DOWNGRADE:?}" "$idx" || fail "downgrade to schema 2"
  [ "$(sqlite3 "$idx" "SELECT count(*) FROM evidence")" -gt 0 ] || fail "no evidence rows in schema 2"
  sqlite3 "$idx" "DROP TABLE missing_services; ALTER TABLE files DROP COLUMN service_name; ALTER TABLE files DROP COLUMN service_display_name;
    ALTER TABLE files DROP COLUMN service_image_path; ALTER TABLE files DROP COLUMN service_start; ALTER TABLE files DROP COLUMN service_type;
    ALTER TABLE files DROP COLUMN service_group; ALTER TABLE files DROP COLUMN service_control_set; PRAGMA user_version = 1;" || fail "downgrade"
  run 0 --index "$idx" --no-tagdb Leak
  [ "$(sqlite3 "$idx" "PRAGMA user_version")" = 5 ] || fail "schema not upgraded"
  [ "$(sqlite3 "$idx" "SELECT count(*) FROM sqlite_master WHERE name = 'evidence'")" = 0 ] || fail "evidence rows left"
  grep -q "service" "$work/out" && fail "services shown before an update stored them"
  grep -v "service\|^missing" "$work/before" | cmp -s - "$work/out" || fail "answer changed by the upgrade: $(diff "$work/before" "$work/out" | head -5)"
  run 0 index update --index "$idx"
  [ "$(sqlite3 "$idx" "SELECT count(*) FROM files WHERE service_name = 'LeakSvc'")" = 6 ] || fail "services not stored after the upgrade"
  check_images
  echo "ok: $n answers from an index of E01, VHDX, raw image and Windows root equal a scan's; update, stale image, schema upgrade"
  ;;
index_foreign)
  # Files that are not tagwho indexes are reported and never written.
  printf 'hello\n' >"$work/text.db"
  sqlite3 "$work/other.db" 'CREATE TABLE t(x); INSERT INTO t VALUES (1);'
  for f in "$work/text.db" "$work/other.db"; do
    before=$(md5sum <"$f")
    run 2 index build --index "$f" "$samples/bin"
    grep -q "not a tagwho index" "$work/err" || fail "$f: $(cat "$work/err")"
    run 2 --index "$f" Leak
    grep -q "not a tagwho index" "$work/err" || fail "$f as query index: $(cat "$work/err")"
    [ "$before" = "$(md5sum <"$f")" ] || fail "$f was modified"
  done
  run 0 index build --index "$work/i.db" "$samples/bin"
  sqlite3 "$work/i.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
  # damage the index: overwrite pages in the middle
  size=$(stat -c %s "$work/i.db")
  dd if=/dev/urandom of="$work/i.db" bs=1024 seek=$((size / 2048)) count=8 conv=notrunc status=none
  before=$(md5sum <"$work/i.db")
  "$tagwho" --index "$work/i.db" Leak >/dev/null 2>"$work/err"; status=$?
  "$tagwho" index update --index "$work/i.db" >/dev/null 2>>"$work/err"; status2=$?
  [ "$status" -ne 0 ] || [ "$status2" -ne 0 ] || echo "note: damage missed the pages read"
  [ ! -s "$work/err" ] || grep -q "tagwho: $work/i.db: " "$work/err" || fail "damage not reported clearly: $(cat "$work/err")"
  echo "ok: foreign files refused and untouched; damaged index reported"
  ;;
poolmon_leak_first)
  # A generated series (tests/poolmon/make_series.sh): Leak grows steadily, Brst bursts and falls back.
  for layout in x64 x86 poolused; do
    bash "$root/tests/poolmon/make_series.sh" "$work/$layout" 12 "$layout" || fail "generator failed ($layout)"
    run 0 poolmon "$work/$layout"/*.txt --root "$samples/" --top 5
    [[ $(sed -n 1p "$work/out") == "1. Leak  Nonp   leak   "* ]] || fail "$layout: first suspect is not Leak as a leak: $(head -n 1 "$work/out")"
    owner=$(grep -n -m 1 '^    Leak  ' "$work/out" | cut -d: -f1)  # after the log's own note, if any
    [[ $(sed -n "${owner}p" "$work/out") == "    Leak  call  "*"/leak-"*".sys"* ]] || fail "$layout: first owner is not a leak sample with call evidence: $(sed -n "${owner}p" "$work/out")"
    sed -n "$((owner + 1))p" "$work/out" | grep -q "^        call  ExAllocatePoolWithTag at 0x[0-9a-f]* " || fail "$layout: no call site under the first owner"
    grep -q "^[0-9]*\. Leak  Nonp .*  ▁.*█$" "$work/out" || fail "$layout: no rising sparkline for Leak"
    [ "$(grep -c '^[0-9]*\. .*  leak  ' "$work/out")" -eq 1 ] || fail "$layout: more than one leak: $(grep '^[0-9]' "$work/out")"
    grep -q "^    tagdb  Leak  Leak - leak-clang-x64.sys" "$work/out" || fail "$layout: no pooltag.txt entry for Leak"
    run 0 poolmon "$work/$layout"/*.txt --top 12 --no-tagdb
    grep -q '^[0-9]*\. Brst  Paged  burst  ' "$work/out" || fail "$layout: Brst is not a burst: $(grep Brst "$work/out")"
    grep -q "no --root given and no index" "$work/err" || fail "$layout: no note about the missing --root"
  done
  # --order mtime follows the times, not the names: with the names shuffled, only mtime order finds the leak.
  mkdir "$work/shuffled"
  for i in $(seq 1 12); do cp -p "$work/x64/poolmonlog$i.txt" "$work/shuffled/$(printf '%02d' $(( (i * 5) % 13 ))).txt"; done
  run 0 poolmon "$work/shuffled"/*.txt --root "$samples/bin" --order mtime --no-tagdb
  [[ $(head -n 1 "$work/out") == "1. Leak  Nonp   leak   "*"(grew in 11 of 11 intervals, +768.0 KB per interval, +768.0 KB/h)"* ]] \
    || fail "--order mtime: $(head -n 1 "$work/out")"
  run 0 poolmon "$work/shuffled"/*.txt --root "$samples/bin" --no-tagdb
  grep -q '^[0-9]*\. Leak  Nonp   leak' "$work/out" && fail "name order of shuffled logs still shows a steady leak"
  echo "ok: Leak first with its call site in all three layouts, the burst is a burst, --order mtime"
  ;;
poolmon_index)
  # Without --root, the index answers.
  bash "$root/tests/poolmon/make_series.sh" "$work/logs" 6 x64 || fail "generator failed"
  run 0 index build --index "$work/index.db" "$samples/bin"
  run 0 poolmon "$work/logs"/*.txt --index "$work/index.db" --top 3 --no-tagdb
  owner=$(grep -n -m 1 '^    Leak  ' "$work/out" | cut -d: -f1)
  [[ $(head -n 1 "$work/out") == "1. Leak  Nonp   leak   "* ]] || fail "first suspect: $(head -n 1 "$work/out")"
  [[ $(sed -n "${owner}p" "$work/out") == "    Leak  call  "*"/leak-"*".sys"* ]] || fail "index owner: $(sed -n "${owner}p" "$work/out")"
  grep -q "no --root given and no index" "$work/err" && fail "the index was not used"
  run 0 poolmon "$work/logs"/*.txt --index "$work/index.db" --no-index --top 3 --no-tagdb
  grep -q "no --root given and no index" "$work/err" || fail "--no-index still used the index"
  echo "ok: suspects attributed from the index"
  ;;
poolmon_json)
  bash "$root/tests/poolmon/make_series.sh" "$work/logs" 6 x64 || fail "generator failed"
  run 0 poolmon --json "$work/logs"/*.txt --root "$samples/bin" --top 3
  [ "$(wc -l <"$work/out")" -eq 3 ] || fail "expected 3 JSON lines, got $(wc -l <"$work/out")"
  line=$(head -n 1 "$work/out")
  [[ $line =~ ^\{\"rank\":1,\"tag\":\"Leak\",\"value\":\"0x6b61654c\",\"tag_text\":\"Leak\",\"type\":\"Nonp\",\"trend\":\"leak\",\"bytes_first\":[0-9]+,\"bytes_last\":[0-9]+,\"peak\":[0-9]+,\"growth\":[0-9]+, ]] \
    || fail "suspect JSON shape: ${line:0:300}"
  [[ $line == *'"growth_per_hour":'[0-9]* ]] || fail "no growth per hour: ${line:0:400}"
  [[ $line =~ \"owners\":\[\{\"tag\":\"Leak\",\"value\":\"0x6b61654c\",\"path\":\"[^\"]*/leak-[^\"]*\",\"machine\":\"[a-z0-9]+\",\"confidence\":\"call\",\"evidence\":\[\{\"kind\":\"call\",\"api\":\"ExAllocatePoolWithTag\" ]] \
    || fail "owners are not search lines: ${line:0:600}"
  [[ $line == *'"tagdb":[{"pattern":"Leak","binary":"leak-clang-x64.sys/'* ]] || fail "no tagdb entry"
  # every owner is exactly a line of `tagwho --json Leak`
  "$tagwho" --json Leak "$samples/bin" >"$work/search" 2>/dev/null
  first_owner=$(head -n 1 "$work/search")
  [[ $line == *"\"owners\":[$first_owner"* ]] || fail "the first owner differs from tagwho --json's first line"
  python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$work/out" 2>/dev/null \
    || { command -v python3 >/dev/null && fail "output is not JSON Lines"; }
  echo "ok: one JSON object per suspect, owners shaped as search lines"
  ;;
poolmon_plot)
  bash "$root/tests/poolmon/make_series.sh" "$work/logs" 8 x64 || fail "generator failed"
  run 0 poolmon "$work/logs"/*.txt --root "$samples/bin" --plot "$work/chart.svg" --top 4 --no-tagdb
  [ -s "$work/chart.svg" ] || fail "no chart written"
  head -n 2 "$work/chart.svg" | grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' || fail "not an SVG"
  grep -q '>bytes in use (MB)</text>' "$work/chart.svg" || fail "y axis not labelled in MB"
  grep -q '>1. Leak Nonp  leak, +' "$work/chart.svg" || fail "no legend entry for Leak"
  [ "$(grep -c '<polyline' "$work/chart.svg")" -eq 4 ] || fail "expected 4 lines"
  if command -v xmllint >/dev/null; then xmllint --noout "$work/chart.svg" || fail "SVG is not well-formed XML"; fi
  if command -v rsvg-convert >/dev/null; then
    rsvg-convert "$work/chart.svg" -o "$work/chart.png" && [ -s "$work/chart.png" ] || fail "rsvg-convert cannot render it"
  fi
  chromium=$(command -v chromium || command -v chromium-browser || true)
  if [ -n "$chromium" ]; then
    timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --screenshot="$work/shot.png" --window-size=1000,600 \
      "file://$work/chart.svg" >/dev/null 2>&1 && [ -s "$work/shot.png" ] || fail "headless Chromium cannot open it"
  fi
  run 2 poolmon "$work/logs"/*.txt --plot "$work/no/such/dir/chart.svg" --no-tagdb
  grep -q "cannot write the chart" "$work/err" || fail "no error for an unwritable chart"
  echo "ok: chart written, well-formed, rendered ($(command -v rsvg-convert >/dev/null && echo rsvg) ${chromium:+chromium})"
  ;;
poolmon_formats)
  fixtures=$root/tests/fixtures/poolmon
  for log in "$fixtures"/*.txt; do
    run 0 poolmon "$log" --no-tagdb
    [[ $(head -n 1 "$work/out") == "1. "* ]] || fail "$(basename "$log"): no suspect"
  done
  run 0 poolmon "$fixtures/x64_summary.txt" --no-tagdb
  [[ $(head -n 1 "$work/out") == "1. Fxq1  Nonp   1.95 MB  (1000 allocations in use)" ]] || fail "one log: biggest first: $(head -n 1 "$work/out")"
  grep -q '^[0-9]*\. Dh 0  Nonp ' "$work/out" || fail "tag with a space"
  run 0 poolmon "$fixtures/mixed_junk.txt" --no-tagdb
  for n in 3 6 8; do grep -q "mixed_junk.txt:$n: not a poolmon -n or !poolused line: " "$work/err" || fail "line $n not reported"; done
  printf 'nothing to see\n' >"$work/empty.txt"
  run 2 poolmon "$work/empty.txt" "$fixtures/x64_mapped.txt" --no-tagdb
  grep -q "empty.txt: no poolmon -n or !poolused rows" "$work/err" || fail "a log without rows is not an error"
  grep -q "^1. Zq1a " "$work/out" || fail "the good log is not reported when another fails"
  run 2 poolmon "$work/missing.txt" --no-tagdb
  formats=$root/../shared/formats
  if [ -f "$formats/poolmon_snapshot_x64_plain.txt" ]; then
    run 0 poolmon "$formats/poolmon_snapshot_x64_plain.txt" --root "$samples/bin" --no-tagdb
    [[ $(head -n 1 "$work/out") == "1. FMfn  Paged  1.39 GB "* ]] || fail "Sample B: $(head -n 1 "$work/out")"
    run 0 poolmon "$formats/windbg_poolused_samples.txt" --no-tagdb
    grep -v ': not a poolmon -n or !poolused line: #' "$work/err" | grep -q 'not a poolmon' && fail "sample lines not recognised: $(cat "$work/err")"
    echo "verbatim samples: parsed"
  else
    echo "verbatim samples skipped: no ../shared/formats"
  fi
  echo "ok: every fixture layout, unrecognised lines reported with line numbers"
  ;;
file_limits)
  # A file over its time or memory limit gets one line and no findings; the other files are still analysed.
  # big.sys is the leak sample with 16 MiB of "Leak" appended (4 Mi literal hits: ~1 GiB of evidence).
  mkdir -p "$work/tree"
  cp "$samples"/bin/leak-*.sys "$work/tree/"
  cp "$samples/bin/leak-clang-x64.sys" "$work/tree/big.sys"
  yes Leak | tr -d '\n' | head -c $((16 << 20)) >>"$work/tree/big.sys"
  [ "$(stat -c %s "$work/tree/big.sys")" -gt $((16 << 20)) ] && [ "$(tail -c 8 "$work/tree/big.sys")" = LeakLeak ] || fail "big.sys not built"
  leaks=$(ls "$samples"/bin/leak-*.sys | wc -l)
  run 2 Leak "$work/tree" --no-tagdb --file-memory 16
  [ "$(cat "$work/err")" = "tagwho: $work/tree/big.sys: analysis stopped: over the per-file memory limit of 16 MiB (--file-memory)" ] \
    || fail "memory limit: $(cat "$work/err")"
  [ "$(grep -c '^Leak  call  ' "$work/out")" = "$leaks" ] || fail "the other leak builds were not all found: $(cat "$work/out")"
  grep -q "big.sys" "$work/out" && fail "big.sys reported with findings after its stop"
  # A limit every file is over (one microsecond): every file stops, each with its line, none is left out.
  run 2 Leak "$work/tree" --no-tagdb --file-timeout 0.000001
  [ "$(grep -c 'analysis stopped: over the per-file time limit of 1e-06 s (--file-timeout)$' "$work/err")" = $((leaks + 1)) ] \
    || fail "time limit: $(cat "$work/err")"
  [ -s "$work/out" ] && fail "findings from stopped files: $(cat "$work/out")"
  # The index build applies them too, and keeps going.
  run 2 index build --index "$work/i.db" "$work/tree" --file-memory 16
  grep -q "^tagwho: $work/tree/big.sys: analysis stopped: over the per-file memory limit" "$work/err" || fail "index build: $(cat "$work/err")"
  [ "$(sqlite3 "$work/i.db" "SELECT count(DISTINCT f.path) FROM findings d JOIN files f ON f.content = d.content WHERE d.tag_text = 'Leak' AND d.confidence = 'call'")" = "$leaks" ] \
    || fail "index build did not analyse the other files"
  echo "ok: memory and time limits stop one file each with one line; the rest is analysed (scan and index build)"
  ;;
hostile_tree)
  # The file tree as found: symlink loops, FIFOs, sockets, devices, permission denied, names that are not
  # UTF-8, zero-length and 5 GB sparse files, damaged PEs. Each is a clean skip or exactly one line on stderr,
  # and the drivers around them are all found. Runs as nobody when root (so permission bits hold).
  d=$work/tree
  mkdir -p "$d/sub" "$d/locked"
  chmod 755 "$work"
  cp "$samples/bin/leak-clang-x64.sys" "$d/a-first.sys"
  cp "$samples/bin/leak-mingw-x86.sys" "$d/z-last.sys"
  cp "$samples/bin/leak-clang-arm64.sys" "$d/$(printf 'bad-\xff\xfe-name.sys')"   # not valid UTF-8
  cp "$samples/bin/leak-clang-x86.sys" "$d/locked/hidden.sys"
  cp "$samples/bin/leak-mingw-x64.sys" "$d/unreadable.sys"
  chmod 000 "$d/locked" "$d/unreadable.sys"
  ln -s .. "$d/sub/up"                                  # a loop through a parent
  ln -s loop2 "$d/loop1"; ln -s loop1 "$d/loop2"        # a cycle of links (ELOOP)
  ln -s missing "$d/dangling"
  mkfifo "$d/fifo"
  python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$d/socket" 2>/dev/null
  mknod "$d/device" c 1 3 2>/dev/null                   # /dev/null's numbers (root only)
  : >"$d/empty.sys"
  printf 'MZ' >"$d/mz-only.sys"                         # a PE signature and nothing else: one error line
  truncate -s 5G "$d/sparse.bin"                        # not a PE: skipped after its first bytes
  printf 'MZ' >"$d/sparse-pe.sys"; truncate -s 5G "$d/sparse-pe.sys"   # a 5 GB "PE": refused, never read
  as_user=()
  if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null || { echo "skipped: root without setpriv"; exit 77; }
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  fi
  # A FIFO opened for reading would block forever: the timeout proves it never is.
  timeout 120 "${as_user[@]}" "$tagwho" Leak "$d" --no-tagdb -j 2 >"$work/out" 2>"$work/err"
  status=$?
  [ "$status" -eq 2 ] || { cat "$work/err" >&2; fail "exit $status, expected 2 (found, with errors reported)"; }
  for name in a-first.sys z-last.sys 'bad-\xff\xfe-name.sys'; do   # invalid UTF-8 shown escaped
    grep -qF "$d/$name" "$work/out" || fail "$name not found next to the hostile entries"
  done
  # one line each: the unreadable file, the locked folder, the damaged PE, the 5 GB PE; nothing else
  for name in unreadable.sys locked mz-only.sys sparse-pe.sys; do
    [ "$(grep -cF "$d/$name" "$work/err")" -eq 1 ] || { cat "$work/err" >&2; fail "$name: expected exactly one stderr line"; }
  done
  grep -q "sparse-pe.sys: file too large" "$work/err" || fail "5 GB PE: $(grep sparse-pe "$work/err")"
  [ "$(wc -l <"$work/err")" -eq 4 ] || { cat "$work/err" >&2; fail "unexpected stderr lines"; }
  for name in fifo socket device loop1 loop2 dangling up empty.sys sparse.bin; do
    grep -qF "/$name" "$work/out" "$work/err" && fail "$name should be skipped silently"
  done
  # Named on the command line, the oddities are one line each and the sample after them is still found.
  timeout 60 "${as_user[@]}" "$tagwho" Leak "$d/fifo" "$d/loop1" "$d/empty.sys" "$d/sparse-pe.sys" "$d/a-first.sys" \
    --no-tagdb >"$work/out" 2>"$work/err"
  status=$?
  [ "$status" -eq 2 ] || { cat "$work/err" >&2; fail "explicit oddities: exit $status, expected 2"; }
  grep -qF "$d/a-first.sys" "$work/out" || fail "explicit: a-first.sys not found after the oddities"
  [ "$(wc -l <"$work/err")" -eq 4 ] || { cat "$work/err" >&2; fail "explicit: expected one line per oddity"; }
  echo "ok: hostile entries skipped or reported in one line each, the drivers around them found"
  ;;
changing_files)
  # Files that shrink or grow while tagwho reads them: never a crash (an mmap would die of SIGBUS), at
  # worst one line on stderr for the file; the sample next to them is always found.
  d=$work/tree
  mkdir -p "$d"
  cp "$samples/bin/leak-clang-x64.sys" "$d/a-steady.sys"
  big=$work/big.sys
  for i in $(seq 1 400); do cat "$samples/bin/leak-clang-x64.sys"; done >"$big"   # 1.2 MB of PE
  cp "$big" "$d/shrinks.sys"; cp "$samples/bin/leak-mingw-x64.sys" "$d/grows.sys"
  ( while :; do cp "$big" "$d/shrinks.sys.tmp"; cat "$d/shrinks.sys.tmp" >"$d/shrinks.sys"; : >"$d/shrinks.sys"; done ) 2>/dev/null &
  shrinker=$!
  ( while :; do cat "$samples/bin/leak-mingw-x64.sys" >>"$d/grows.sys"; done ) 2>/dev/null &
  grower=$!
  for i in $(seq 1 15); do
    "$tagwho" Leak "$d/a-steady.sys" "$d/shrinks.sys" "$d/grows.sys" --no-tagdb -j 3 >"$work/out" 2>"$work/err"
    status=$?
    if [ "$status" -gt 2 ]; then kill "$shrinker" "$grower"; cat "$work/err" >&2; fail "run $i: exit $status (a crash)"; fi
    grep -qF "$d/a-steady.sys" "$work/out" || { kill "$shrinker" "$grower"; fail "run $i: a-steady.sys not found"; }
    [ "$(wc -l <"$work/err")" -le 2 ] || { kill "$shrinker" "$grower"; cat "$work/err" >&2; fail "run $i: more than one line per changing file"; }
  done
  kill "$shrinker" "$grower"; wait 2>/dev/null
  echo "ok: 15 scans of shrinking and growing files, no crash, the steady file always found"
  ;;
read_only)
  # Read-only, proved: the trees and images scanned are byte-for-byte the same afterwards, and every file
  # tagwho opens below them is opened O_RDONLY (strace), with no write, truncate, rename or unlink there.
  d=$work/tree
  mkdir -p "$d"
  cp -r "$samples/bin" "$d/bin"
  sources=("$d")
  if [ -n "$images" ] && [ -f "$images/SHA256SUMS" ]; then
    cp -r "$images/tree" "$d/win"
    sources+=("$images/bare.img" "$images/disk.vhdx" "$images/disk.E01")
  fi
  sums() { find "$d" -type f -print0 | sort -z | xargs -0 sha256sum; find "$d" -printf '%p %m %s %T@\n' | sort; }
  sums >"$work/before"
  command -v strace >/dev/null || { echo "skipped: no strace"; exit 77; }
  # LeakSanitizer cannot run under ptrace: leaks are checked by every other case of the ASan build.
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o "$work/trace" -e trace=open,openat,openat2,creat,truncate,ftruncate,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,chmod,fchmodat,utimensat \
    "$tagwho" driver "${sources[@]}" --no-tagdb >"$work/out" 2>"$work/err"
  status=$?
  [ "$status" -eq 0 ] || { cat "$work/err" >&2; fail "scan exited $status"; }
  sums >"$work/after"
  diff "$work/before" "$work/after" >&2 || fail "the scanned tree changed"
  [ -z "$images" ] || check_images
  inputs_re="$d|$images"
  opened=$(grep -E "\"($inputs_re)" "$work/trace" | grep -E 'open(at2?)?\(' )
  [ -n "$opened" ] || fail "strace saw no open of the inputs"
  bad=$(echo "$opened" | grep -E 'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND')
  [ -z "$bad" ] || fail "inputs opened for writing: $bad"
  other=$(grep -E "\"($inputs_re)" "$work/trace" | grep -vE 'open(at2?)?\(' )
  [ -z "$other" ] || fail "inputs modified: $other"
  echo "ok: $(echo "$opened" | wc -l) opens of the inputs, all O_RDONLY; trees and images unchanged"
  ;;
*)
  fail "unknown case"
  ;;
esac
