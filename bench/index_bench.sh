#!/bin/bash
# Index benchmark, one run: build throughput (MB/s) and query latency of `tagwho index`, beside a plain
# scan (tagwho --no-index) and `rg -a -l -F TAG` over the same files.
#   bench/index_bench.sh [TAGWHO] [CORPUS_DIR]
# TAGWHO defaults to build-index/tagwho (else build/tagwho); CORPUS_DIR (the generated compiler corpus,
# default build-index/corpus) adds real drivers with tags of their own. Not run by CTest.
# Trees: A = DISTINCT copies of every sample (each made unique by a few overlay bytes) + the corpus;
#        B = A plus hard links to A's files up to FILES (default 100000) paths: a real 100,000-file index.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tagwho=${1:-$root/build-index/tagwho}
[ -x "$tagwho" ] || tagwho=$root/build/tagwho
corpus=${2:-$root/build-index/corpus}
copies=${DISTINCT:-200}
files=${FILES:-100000}
runs=${RUNS:-21}
command -v rg >/dev/null || { echo "ripgrep (rg) is needed: apt-get install ripgrep" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "sqlite3 is needed: apt-get install sqlite3" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME=$work/cache

now() { date +%s.%N; }
seconds() { local t0; t0=$(now); "$@" >/dev/null 2>&1 || true; echo "$(now) - $t0" | bc -l; }
# median wall time in ms of RUNS runs
median_ms() {
  local i t times=()
  for i in $(seq 1 "$runs"); do t=$(seconds "$@"); times+=("$t"); done
  printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] * 1000 }'
}
mb() { du -sb --apparent-size "$1" | awk '{ printf "%.1f", $1 / 1048576 }'; }

mkdir -p "$work/A" "$work/B"
for i in $(seq 1 "$copies"); do
  for f in "$root"/samples/bin/*.sys; do { cat "$f"; printf 'bench copy %d' "$i"; } >"$work/A/$i-$(basename "$f")"; done
done
rare=Zzzz
if [ -f "$corpus/truth.tsv" ]; then
  mkdir -p "$work/A/corpus" && cp "$corpus"/*.sys "$work/A/corpus/"
  rare=$(awk -F'\t' 'NR > 1 && $3 == "call" { print $2; exit }' "$corpus/truth.tsv")
fi
cp -al "$work/A/." "$work/B/"
have=$(find "$work/B" -type f | wc -l)
mkdir -p "$work/B/links"
set -- "$work"/A/*.sys
n=0
while [ $((have + n)) -lt "$files" ]; do
  for f in "$@"; do
    [ $((have + n)) -lt "$files" ] || break
    [ $((n % 5000)) -eq 0 ] && mkdir -p "$work/B/links/$((n / 5000))"
    ln "$f" "$work/B/links/$((n / 5000))/$n.sys"; n=$((n + 1))
  done
done
a_files=$(find "$work/A" -type f | wc -l); b_files=$(find "$work/B" -type f | wc -l)
a_mb=$(mb "$work/A"); b_mb=$(find "$work/B" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f", s / 1048576 }')
cat "$work/A"/*.sys "$work/A"/corpus/*.sys >/dev/null 2>&1 || true   # warm the page cache for every tool alike

echo "tagwho index benchmark  $(date -u +%F)  $(nproc) cores  rare tag: '$rare'  runs per median: $runs"
echo
echo "A: $a_files distinct files, $a_mb MB"
t_build=$(seconds "$tagwho" index build --index "$work/a.db" "$work/A")
t_scan=$(seconds "$tagwho" --no-index Leak "$work/A")
t_rg=$(seconds rg -a -l -F Leak "$work/A")
printf '  index build        %8.2f s   %6.1f MB/s\n' "$t_build" "$(echo "$a_mb / $t_build" | bc -l)"
printf '  plain scan (Leak)  %8.2f s   %6.1f MB/s\n' "$t_scan" "$(echo "$a_mb / $t_scan" | bc -l)"
printf '  rg -a -l -F Leak   %8.2f s   %6.1f MB/s\n' "$t_rg" "$(echo "$a_mb / $t_rg" | bc -l)"
q_rare=$(median_ms "$tagwho" --index "$work/a.db" "$rare")
q_leak=$(median_ms "$tagwho" --index "$work/a.db" Leak)
echo "  index query median: '$rare' $q_rare ms ($(("$tagwho" --index "$work/a.db" "$rare" 2>/dev/null || true) | grep -c "^$rare ") rows), Leak $q_leak ms ($(("$tagwho" --index "$work/a.db" Leak 2>/dev/null || true) | grep -c '^Leak ') rows)"
echo
echo "B: $b_files files ($a_files distinct contents, the rest hard links), $b_mb MB"
t_build_b=$(seconds "$tagwho" index build --index "$work/b.db" "$work/B")
rows=$(sqlite3 "$work/b.db" 'SELECT count(*) FROM files')
printf '  index build        %8.2f s   %6.1f MB/s  (%s files indexed, each distinct content analysed once)\n' \
  "$t_build_b" "$(echo "$b_mb / $t_build_b" | bc -l)" "$rows"
t_update_b=$(seconds "$tagwho" index update --index "$work/b.db")
printf '  index update       %8.2f s   (nothing changed: stat only)\n' "$t_update_b"
q_rare_b=$(median_ms "$tagwho" --index "$work/b.db" "$rare")
q_start=$(median_ms "$tagwho" --version)
q_none_b=$(median_ms "$tagwho" --index "$work/b.db" PuCx --max-evidence 1)
t_scan_b=$(seconds "$tagwho" --no-index "$rare" "$work/B")
t_rg_b=$(seconds rg -a -l -F "$rare" "$work/B")
rare_rows=$( ("$tagwho" --index "$work/b.db" "$rare" 2>/dev/null || true) | grep -c "^$rare " || true)
pucx_rows=$( ("$tagwho" --index "$work/b.db" PuCx 2>/dev/null || true) | grep -c '^PuCx ' || true)
printf '  index query median %8.1f ms  (%s rows for %s)\n' "$q_rare_b" "$rare_rows" "$rare"
printf '  process start      %8.1f ms  (tagwho --version: the dynamic loader and libraries; the query itself ~%.1f ms)\n' \
  "$q_start" "$(echo "$q_rare_b - $q_start" | bc -l)"
printf '  index query median %8.1f ms  (%s rows for PuCx: output-bound)\n' "$q_none_b" "$pucx_rows"
printf '  plain scan         %8.1f ms  (x%.0f the index query)\n' "$(echo "$t_scan_b * 1000" | bc -l)" "$(echo "$t_scan_b * 1000 / $q_rare_b" | bc -l)"
printf '  rg -a -l -F        %8.1f ms  (x%.1f the index query; bytes only, no evidence)\n' "$(echo "$t_rg_b * 1000" | bc -l)" "$(echo "$t_rg_b * 1000 / $q_rare_b" | bc -l)"
printf '  index size         %8.1f MB\n' "$(echo "$(stat -c %s "$work/b.db") / 1048576" | bc -l)"
