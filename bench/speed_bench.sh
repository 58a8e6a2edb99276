#!/bin/bash
# Speed benchmark, one run (issue 7): `tagwho TAG DIR` against `rg -a -l -F TAG DIR` and
# `grep -r -l -a -F TAG DIR` on the same files in the same run, `tagwho index build` (MB/s), indexed
# queries, and peak RSS (also with the corpus doubled).
#   bench/speed_bench.sh [TAGWHO]          TAGWHO defaults to build/tagwho
# Environment: RUNS (timed runs per median, default 5), SCALE (corpus size factor, default 1: ~430 MB),
# KEEP=1 keeps the work directory; WORK=DIR generates the corpus into DIR once and reuses it; GENERATE_ONLY=1. Not run by CTest.
# The corpus: drivers compiled from generated C (many functions calling tag-taking APIs) with clang
# (x64, x86, ARM64) and mingw-w64 (x64, x86), as tests/corpus/generate.sh builds them, in three sizes; each
# template has a padding array in .text and one in .rdata that every copy fills differently (copies of the
# template's own machine code with mutations, random data with strings), so no two files are alike and every
# file stays a valid PE. About 300 small (~130 KB), 100 medium (~2.5 MB) and 5 large (>= 32 MB) drivers.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tagwho=$(realpath "${1:-$root/build/tagwho}")
runs=${RUNS:-5}
scale=${SCALE:-1}
tag=Bnch
rare=Zqxj   # a tag in no file (the usual case: most drivers do not hold the tag asked for)
for tool in rg clang lld-link llvm-dlltool x86_64-w64-mingw32-gcc i686-w64-mingw32-gcc x86_64-w64-mingw32-dlltool \
            i686-w64-mingw32-dlltool python3 bc; do
  command -v $tool >/dev/null || { echo "speed_bench: $tool is needed (ripgrep: apt-get install ripgrep)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "speed_bench: /usr/bin/time is needed: apt-get install time" >&2; exit 2; }
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; else
  work=$(mktemp -d "${TMPDIR:-/tmp}/tagwho-speed.XXXXXX")
  [ "${KEEP:-0}" = 1 ] && echo "work directory: $work" >&2 || trap 'rm -rf "$work"' EXIT
fi
export XDG_CACHE_HOME=$work/cache

if [ ! -f "$work/generated" ]; then
# --- templates ---------------------------------------------------------------------------------------------
lib=$root/samples/lib
mkdir -p "$work/t" "$work/tmp"
llvm-dlltool -m i386:x86-64 -d "$lib/ntoskrnl.def" -l "$work/tmp/nt_x64.lib"
llvm-dlltool -m i386 -k -d "$lib/ntoskrnl_x86.def" -l "$work/tmp/nt_x86.lib"
llvm-dlltool -m arm64 -d "$lib/ntoskrnl.def" -l "$work/tmp/nt_arm64.lib"
x86_64-w64-mingw32-dlltool -d "$lib/ntoskrnl.def" -D ntoskrnl.exe -l "$work/tmp/nt_x64.a"
i686-w64-mingw32-dlltool -k -d "$lib/ntoskrnl_x86.def" -D ntoskrnl.exe -l "$work/tmp/nt_x86.a"

# gen_c FUNCTIONS TEXT_PAD RDATA_PAD SEED: a driver whose functions allocate and free with tags of their own
# (function 0 with the benchmark tag), a pad array in .text and one in .rdata (filled per copy later).
gen_c() {
  python3 - "$@" <<'PY'
import random, sys
n, text_pad, rdata_pad, seed = map(int, sys.argv[1:5])
r = random.Random(seed)
print('#include "tagwho_kernel.h"')
print('__asm__(".section .text$zpad,\\"xr\\"\\n.ascii \\"TWPADTXT\\"\\n.zero %d\\n.text\\n");' % max(text_pad - 8, 8))
print('const unsigned char pad_rdata[%d] = {"TWPADDAT"};' % max(rdata_pad, 16))
print('volatile ULONG g_sink; PVOID volatile g_keep;')
apis = ['ExAllocatePoolWithTag', 'ExAllocatePoolWithQuotaTag']
for i in range(n):
    t = 'Bnch' if i == 0 else ''.join(r.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') for _ in range(4))
    tag = "TAG4('%s','%s','%s','%s')" % tuple(t)
    body = []
    k = r.randrange(4)
    body.append('PVOID p = %s(%s, n + %d, %s);' % (apis[i % 2], r.choice(['NonPagedPoolNx', 'PagedPool']), r.randrange(1, 4096), tag))
    for j in range(k):
        body.append('if (p && n > %d) { ((volatile UCHAR*)p)[%d] = (UCHAR)(n * %d + g_sink); g_sink += %d; }' % (j, j, r.randrange(3, 99), r.randrange(1, 1 << 20)))
    if r.random() < 0.5:
        body.append('if (p && (n & %d)) { ExFreePoolWithTag(p, %s); p = 0; }' % (r.randrange(1, 255), tag))
    body.append('return p;')
    print('__attribute__((noinline)) PVOID f%d(SIZE_T n) { %s }' % (i, ' '.join(body)))
print('PVOID (*const table[])(SIZE_T) = {%s};' % ', '.join('f%d' % i for i in range(n)))
print('NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT d, PUNICODE_STRING p) { (void)d;')
print('  for (ULONG i = 0; i < %d; i++) g_keep = table[(i + g_sink) %% %d](p->Length + i);' % (n, n))
print('  g_sink += pad_rdata[p->MaximumLength]; return STATUS_SUCCESS; }')
PY
}

build_template() { # tc arch size functions text_pad rdata_pad
  local tc=$1 arch=$2 size=$3 name="$1-$2-$3" c="$work/tmp/$1-$2-$3.c" o="$work/tmp/$1-$2-$3.o"
  gen_c "$4" "$5" "$6" "$RANDOM" >"$c"
  local flags=(-O2 -ffreestanding -fno-stack-protector -w -I "$root/samples/include")
  if [ "$tc" = clang ]; then
    local triple=x86_64-pc-windows-msvc machine=x64
    [ "$arch" = x86 ] && triple=i686-pc-windows-msvc machine=x86
    [ "$arch" = arm64 ] && triple=aarch64-pc-windows-msvc machine=arm64
    clang --target=$triple "${flags[@]}" -funwind-tables -c "$c" -o "$o"
    lld-link /nologo /driver:wdm /subsystem:native /entry:DriverEntry /nodefaultlib /machine:$machine /Brepro /opt:noref \
      /out:"$work/t/$name.sys" "$o" "$work/tmp/nt_$arch.lib"
  else
    local cc=x86_64-w64-mingw32-gcc entry=DriverEntry extra=()
    [ "$arch" = x86 ] && cc=i686-w64-mingw32-gcc entry=_DriverEntry@8 extra=(-fno-asynchronous-unwind-tables)
    $cc "${flags[@]}" -fno-ident "${extra[@]}" -c "$c" -o "$o"
    $cc -s -nostdlib -nostartfiles -Wl,--subsystem,native -Wl,--entry,$entry -Wl,--wdmdriver -Wl,--dynamicbase \
      -Wl,--no-insert-timestamp -o "$work/t/$name.sys" "$o" "$work/tmp/nt_$arch.a"
  fi
}

t0=$(date +%s)
pids=()
for ta in clang:x64 clang:x86 clang:arm64 mingw:x64 mingw:x86; do
  tc=${ta%:*}; arch=${ta#*:}
  build_template $tc $arch S 40 $((32 << 10)) $((64 << 10)) &
  pids+=($!)
  build_template $tc $arch M 1500 $((1 << 20)) $((1200 << 10)) &
  pids+=($!)
  build_template $tc $arch L 3000 $((20 << 20)) $((12 << 20)) &
  pids+=($!)
  for p in "${pids[@]}"; do wait $p; done; pids=()
done

# --- copies: every file different, every file a valid PE ---------------------------------------------------
make_copies() { # OUT SEED FACTOR
  python3 - "$work/t" "$1" "$2" "$3" "$tag" <<'PY'
import os, random, struct, sys
tdir, out, seed, factor, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5].encode()
counts = {'S': 60, 'M': 20, 'L': 1}
r = random.Random(seed)
os.makedirs(out, exist_ok=True)
words = [b'Device', b'Registry', b'\\Driver\\', b'IRP_MJ_CREATE', b'Invalid parameter', b'%s: status %08x\n']
def sections(b):
    pe = struct.unpack_from('<I', b, 0x3c)[0]
    count = struct.unpack_from('<H', b, pe + 6)[0]
    opt = struct.unpack_from('<H', b, pe + 20)[0]
    out = []
    for i in range(count):
        s = pe + 24 + opt + 40 * i
        name = b[s:s + 8].rstrip(b'\0')
        vsize, va, rsize, roff = struct.unpack_from('<IIII', b, s + 8)
        out.append((name, roff, rsize))
    return out
n = 0
for name in sorted(os.listdir(tdir)):
    base = open(os.path.join(tdir, name), 'rb').read()
    size = name.split('-')[-1][0]
    t = base.find(b'TWPADTXT'); d = base.find(b'TWPADDAT')
    code_sec = [s for s in sections(base) if s[1] <= t < s[1] + s[2]][0]
    code = base[code_sec[1]:t]
    tlen = {'S': 32 << 10, 'M': 1 << 20, 'L': 20 << 20}[size]
    dlen = {'S': 64 << 10, 'M': 1200 << 10, 'L': 12 << 20}[size]
    for c in range(max(1, int(round(counts[size] * factor)))):
        b = bytearray(base)
        fill = bytearray()
        while len(fill) < tlen:  # the template's machine code, in chunks, a few bytes mutated
            a = r.randrange(0, max(1, len(code) - 256)); chunk = bytearray(code[a:a + r.randrange(64, 4096)])
            for _ in range(len(chunk) // 512 + 1): chunk[r.randrange(len(chunk))] = r.randrange(256)
            fill += chunk
        b[t:t + tlen] = fill[:tlen]
        data = bytearray(os.urandom(dlen))
        for _ in range(dlen // 2048):
            w = r.choice(words); o = r.randrange(dlen - 64); data[o:o + len(w)] = w
        if r.random() < 0.2: o = r.randrange(dlen - 8); data[o:o + 4] = tag
        b[d:d + dlen] = data
        n += 1
        open(os.path.join(out, '%03d-%s' % (c % 1000, name)), 'wb').write(b)
print(n)
PY
}
mkdir -p "$work/A" "$work/AA"
nfiles=$(make_copies "$work/A" 1 "$scale")
make_copies "$work/AA/1" 2 "$scale" >/dev/null; make_copies "$work/AA/2" 3 "$scale" >/dev/null   # the doubled corpus
gen_s=$(( $(date +%s) - t0 )); echo "$nfiles $gen_s" >"$work/generated"
fi
read -r nfiles gen_s <"$work/generated"
[ "${GENERATE_ONLY:-0}" = 1 ] && exit 0
rm -f "$work"/*.db

# --- measurements ------------------------------------------------------------------------------------------
now() { date +%s.%N; }
seconds() { local t0; t0=$(now); "$@" >/dev/null 2>&1 || true; echo "$(now) - $t0" | bc -l; }
median() { # seconds, median of RUNS runs
  local i times=()
  for i in $(seq 1 "$runs"); do times+=("$(seconds "$@")"); done
  printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] }'
}
rss_mb() { /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>&1 || true; awk '{ printf "%.1f", $1 / 1024 }' "$work/rss"; }
mb() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f", s / 1048576 }'; }
warm() { find "$1" -type f -exec cat {} + >/dev/null; }

a_mb=$(mb "$work/A"); aa_mb=$(mb "$work/AA")
big=$(find "$work/A" -type f -size +30M | wc -l)
echo "tagwho speed benchmark  $(date -u +%F)  $(nproc) cores  $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "corpus: $nfiles files, $a_mb MB ($big of >= 30 MB; x64, x86, ARM64; clang and mingw), generated in ${gen_s} s"
echo "tag '$tag' in $(rg -a -l -F $tag "$work/A" | wc -l) files; medians of $runs runs, warm page cache"
echo
warm "$work/A"
t_tw=$(median "$tagwho" --no-index --no-tagdb $tag "$work/A")
t_rg=$(median rg -a -l -F $tag "$work/A")
# rg -l stops reading a file at its first match; a tool that reports every use of the tag reads whole files.
# rg -c counts every match, so it reads every byte: the cost of reading the corpus at all.
t_rg_all=$(median rg -a -c -F $tag "$work/A")
t_grep=$(median grep -r -l -a -F $tag "$work/A")
t_rare=$(median "$tagwho" --no-index --no-tagdb $rare "$work/A")
t_rare_rg=$(median rg -a -l -F $rare "$work/A")
t_drv=$(median "$tagwho" driver --no-tagdb "$work/A")
t_build=$(seconds "$tagwho" index build --index "$work/a.db" "$work/A")
t_q=$(median "$tagwho" --index "$work/a.db" --no-tagdb $tag)
t_q_rare=$(median "$tagwho" --index "$work/a.db" --no-tagdb $rare)  # proven nowhere: every file is searched
t_start=$(median "$tagwho" --version)
rows=$("$tagwho" --no-index --no-tagdb --json $tag "$work/A" 2>/dev/null | wc -l)
irows=$("$tagwho" --index "$work/a.db" --no-tagdb --json $tag 2>/dev/null | wc -l)
row() { printf '  %-34s %8.3f s  %8.1f MB/s  %s\n' "$1" "$2" "$(echo "$a_mb / $2" | bc -l)" "${3:-}"; }
row "tagwho $tag DIR (--no-index)" "$t_tw" "($rows results)"
row "rg -a -l -F $tag DIR" "$t_rg"
row "rg -a -c -F $tag DIR (every match)" "$t_rg_all"
row "grep -r -l -a -F $tag DIR" "$t_grep"
row "tagwho $rare DIR (in $(rg -a -l -F $rare "$work/A" | wc -l) files)" "$t_rare"
row "rg -a -l -F $rare DIR" "$t_rare_rg"
row "tagwho driver DIR (every tag)" "$t_drv"
row "tagwho index build DIR (cold)" "$t_build"
printf '  %-34s %8.1f ms  (%s results; tagwho --version: %.1f ms)\n' "tagwho --index DB $tag" \
  "$(echo "$t_q * 1000" | bc -l)" "$irows" "$(echo "$t_start * 1000" | bc -l)"
printf '  %-34s %8.1f ms  (outside every literal set: the files are searched for its bytes)\n' \
  "tagwho --index DB $rare" "$(echo "$t_q_rare * 1000" | bc -l)"
echo
r_rg=$(echo "$t_tw / $t_rg" | bc -l); r_grep=$(echo "$t_tw / $t_grep" | bc -l)
build_mbs=$(echo "$a_mb / $t_build" | bc -l)
printf '  ratio tagwho/rg   %6.2fx  (target <= 1.0x)\n' "$r_rg"
printf '  ratio tagwho/grep %6.2fx\n' "$r_grep"
printf '  ratio tagwho/rg   %6.2fx  against rg -c (which reads every byte, as listing every use needs)\n' \
  "$(echo "$t_tw / $t_rg_all" | bc -l)"
printf '  ratio tagwho/rg   %6.2fx  for %s (in no file: code decoded only where the prefilter sees a hint of it)\n' \
  "$(echo "$t_rare / $t_rare_rg" | bc -l)" "$rare"
printf '  index build       %6.1f MB/s on %s cores (target >= 150 MB/s on 2 cores)\n' "$build_mbs" "$(nproc)"
echo
rss_a=$(rss_mb "$tagwho" --no-index --no-tagdb $tag "$work/A")
rss_drv=$(rss_mb "$tagwho" driver --no-tagdb "$work/A")
rss_idx=$(rss_mb "$tagwho" index build --index "$work/r.db" "$work/A")
warm "$work/AA"
rss_aa=$(rss_mb "$tagwho" --no-index --no-tagdb $tag "$work/AA")
rss_drv_aa=$(rss_mb "$tagwho" driver --no-tagdb "$work/AA")
rss_idx_aa=$(rss_mb "$tagwho" index build --index "$work/rr.db" "$work/AA")
t_tw_aa=$(median "$tagwho" --no-index --no-tagdb $tag "$work/AA")
t_rg_aa=$(median rg -a -l -F $tag "$work/AA")
growth() { echo "($2 - $1) * 100 / $1" | bc -l; }
echo "peak RSS (MB)            corpus $a_mb MB   doubled $aa_mb MB   growth (target: <= 256 MB, < 10%)"
printf '  tagwho TAG DIR        %8s        %8s          %+.1f%%\n' "$rss_a" "$rss_aa" "$(growth "$rss_a" "$rss_aa")"
printf '  tagwho driver DIR     %8s        %8s          %+.1f%%\n' "$rss_drv" "$rss_drv_aa" "$(growth "$rss_drv" "$rss_drv_aa")"
printf '  tagwho index build    %8s        %8s          %+.1f%%\n' "$rss_idx" "$rss_idx_aa" "$(growth "$rss_idx" "$rss_idx_aa")"
printf 'doubled corpus: tagwho %.3f s, rg %.3f s: ratio %.2fx\n' "$t_tw_aa" "$t_rg_aa" "$(echo "$t_tw_aa / $t_rg_aa" | bc -l)"
