#!/bin/bash
# Writes a series of pool usage logs for the tagwho poolmon tests: poolmonlog1.txt .. poolmonlogN.txt,
# an hour apart (file mtimes), in which
#   Leak Nonp  grows in every interval (the Leak sample driver's tag: 1 KB blocks, never freed),
#   Brst Paged rises to a peak mid-series and falls back to about where it started (a burst, not a leak),
#   the other tags (FMfn, File on both pools, Toke, MmSt, "Dh 0", "Cc  ", Thre) wobble around a level.
# Usage: make_series.sh OUTDIR [COUNT=12] [LAYOUT=x64|x86|poolused]. Deterministic (fixed seed).
set -eu
out=$1
count=${2:-12}
layout=${3:-x64}
mkdir -p "$out"
start=1700000000  # 2023-11-14 22:13:20 UTC
for ((i = 1; i <= count; i++)); do
  awk -v i="$i" -v n="$count" -v layout="$layout" '
    function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
    # tag, pool, bytes, per-allocation size; allocs/frees are made consistent with bytes
    function row(tag, type, bytes, per,    diff, frees, allocs) {
      diff = int(bytes / per); bytes = diff * per
      frees = 100000 + i * 5000 + diff; allocs = frees + diff
      if (layout == "x64")
        printf " %4s %5s %18d %18d  %16d %14d     %12d        \n", tag, type, allocs, frees, diff, bytes, per
      else if (layout == "x86")
        printf " %4s %5s %9d %9d  %8d %7d     %6d        \n", tag, type, allocs, frees, diff, bytes, per
      else
        pu[tag] = pu[tag] (type == "Nonp " ? "N" : "P") " " diff " " bytes "\n"
    }
    function noise(level, spread) { return int(level + (rnd() - 0.5) * 2 * spread) }
    BEGIN {
      seed = 4242 + 7919 * i
      if (layout == "x64") {
        print ""
        print " Memory:16645940K Avail: 9123456K  PageFlts:12345678   InRam Krnl:21400K P:612340K"
        print " Commit: 8123456K Limit:19123456K Peak: 9234567K            Pool N:412340K P:823450K"
        print ""
        print " Tag  Type     Allocs            Frees               Diff            Bytes                 Per Alloc"
        print ""
      } else if (layout == "x86") {
        print ""
        print " Tag  Type     Allocs         Frees    Diff   Bytes    Per Alloc"
        print ""
      }
      mid = int((n + 1) / 2)
      brst = 2097152 + (i <= mid ? (i - 1) * 6291456 : (mid - 1) * 6291456 - (i - mid) * 7340032)
      if (brst < 2097152) brst = 2097152 + (i % 2) * 16384
      row("Brst", "Paged", brst, 4096)
      row("Cc  ", "Paged", noise(98304, 8192), 64)
      row("Dh 0", "Nonp ", noise(45056, 4096), 128)
      row("FMfn", "Paged", noise(104857600, 262144), 512)
      row("File", "Nonp ", noise(25165824, 131072), 384)
      row("File", "Paged", noise(4194304, 65536), 256)
      row("Leak", "Nonp ", 1048576 + (i - 1) * 786432 + int(rnd() * 8) * 1024, 1024)
      row("MmSt", "Paged", noise(52428800, 196608), 1024)
      row("Thre", "Nonp ", noise(13179648, 98304), 3515)
      row("Toke", "Paged", noise(12582912, 98304), 1200)
      if (layout == "poolused") {
        print "0: kd> !poolused"
        print "   Sorting by  Tag"
        print ""
        print "  Pool Used:"
        print "            NonPaged            Paged"
        print " Tag    Allocs     Used    Allocs     Used"
        for (t in pu) order[++k] = t
        for (a = 1; a <= k; a++) for (b = a + 1; b <= k; b++) if (order[b] < order[a]) { x = order[a]; order[a] = order[b]; order[b] = x }
        for (a = 1; a <= k; a++) {
          t = order[a]; na = nb = pa = pb = 0
          split(pu[t], lines, "\n")
          for (l in lines) { if (lines[l] == "") continue; split(lines[l], f, " ")
            if (f[1] == "N") { na = f[2]; nb = f[3] } else { pa = f[2]; pb = f[3] } }
          printf " %-4s %8d %8d %8d %8d%s\n", t, na, nb, pa, pb, "UNKNOWN pooltag \x27" t "\x27, please update pooltag.txt"
        }
      }
    }' > "$out/poolmonlog$i.txt"
  touch -d "@$((start + (i - 1) * 3600))" "$out/poolmonlog$i.txt"
done
