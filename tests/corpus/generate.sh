#!/usr/bin/env bash
# Generate the tagwho test corpus.
#
# Usage: tests/corpus/generate.sh OUTDIR
#
# Compiles tests/corpus/src/{patterns,wrappers,thunk,apis}.c (one pattern per
# function, one tag per pattern) for
#   {clang (x86_64|i686)-pc-windows-msvc + lld-link, mingw-w64 gcc}
#   x {x64, x86} x {-O0, -O1, -O2, -Os}
# and clang aarch64-pc-windows-msvc + lld-link at the same levels (ARM64:
# clang only, Debian has no ARM64 mingw)
# into OUTDIR/<clang|mingw>-<x64|x86|arm64>-<O0|O1|O2|Os>.sys and writes
#   OUTDIR/truth.tsv  file, tag, expect (call|wrapper|objref|decoy), api, pattern
#                     (wrapper: reported as wrapper or call, see wrappers.c;
#                     objref: object-reference tag, see apis.c)
#   OUTDIR/forms.tsv  file, form, count  (call forms seen by llvm-objdump)
# Only those files are written to OUTDIR; temporaries go to a mktemp dir.
# Exit status: 0 ok, 77 toolchain missing (skip), 1 failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
incdir="$root/samples/include"
libdir="$root/samples/lib"
srcdir="$here/src"
corpusinc="$here/include"
corpuslib="$here/lib"

die() { echo "generate.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }

missing=()
for tool in clang lld-link llvm-dlltool llvm-objdump llvm-readobj \
            x86_64-w64-mingw32-gcc i686-w64-mingw32-gcc x86_64-w64-mingw32-dlltool i686-w64-mingw32-dlltool; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "generate.sh: SKIP: missing toolchain: ${missing[*]}" \
         "(needs clang, lld, llvm, mingw-w64)" >&2
    exit 77
fi

# --- expected facts --------------------------------------------------------
# tag <TAB> expect <TAB> api <TAB> pattern ; the same for every built file.
# Call, wrapper and objref tags must match the TAG4(...) uses in src/*.c
# exactly (checked below), except the untagged* rows ('None': the kernel's
# tag for ExAllocatePool, no TAG4 in the source).
#   objref: an object-reference tag (Ob*WithTag): reported as call evidence
#           with tag_kind objref, never as a pool tag (call or wrapper).
#   protected-pool: passed with the PROTECTED_POOL bit (0x80000000), reported
#           without it (the 4 bytes of the tag never occur in the file).
TABLE='Cnst	call	ExAllocatePoolWithTag	const
LpCt	call	ExAllocatePoolWithTag	loop
LpRg	call	ExAllocatePoolWithTag	loop-callee-saved
Mul1	call	ExAllocatePoolWithTag	multi-call
Mul2	call	ExAllocatePoolWithTag	multi-call
Mul3	call	ExAllocatePoolWithTag	multi-call
Quot	call	ExAllocatePoolWithQuotaTag	quota
Prio	call	ExAllocatePoolWithTagPriority	priority
Pl2a	call	ExAllocatePool2	pool2-const-flags
Pl2b	call	ExAllocatePool2	pool2-var-flags
Free	call	ExFreePoolWithTag	free
LkNp	call	ExInitializeNPagedLookasideList	lookaside-npaged
LkPg	call	ExInitializePagedLookasideList	lookaside-paged
PgCl	call	ExAllocatePoolWithTag	page-section
PgLp	call	ExAllocatePoolWithQuotaTag	page-section-loop
Thnk	call	ExAllocatePoolWithTag	thunk
DStr	decoy	-	string-literal
DCmp	decoy	-	compare-only
DStk	decoy	-	stack-string
DDat	decoy	-	data-constant
WrA1	wrapper	ExAllocatePoolWithTag	wrapper-1-level
WrA2	wrapper	ExAllocatePoolWithTag	wrapper-2-levels
WrA3	wrapper	ExAllocatePoolWithTag	wrapper-3-levels
WrTl	wrapper	ExAllocatePoolWithTag	wrapper-tail-call
WrLk	wrapper	ExInitializeNPagedLookasideList	wrapper-lookaside-5th-param
WrF1	wrapper	ExFreePoolWithTag	wrapper-two-tags
WrF2	wrapper	ExFreePoolWithTag	wrapper-two-tags
WrFc	wrapper	ExAllocatePoolWithTag	wrapper-fastcall
InlW	call	ExAllocatePoolWithTag	wrapper-inlined
WrSz	call	ExAllocatePoolWithTag	size-param-wrapper
CdCa	call	ExAllocatePoolWithTag	cond-call
QzCb	call	ExAllocatePoolWithTag	cond-call
CdWa	wrapper	ExAllocatePoolWithTag	cond-wrapper
YxWb	wrapper	ExAllocatePoolWithTag	cond-wrapper
RoCn	wrapper	ExAllocatePoolWithTag	rdata-constant
GlNw	wrapper	ExAllocatePoolWithTag	global-never-written
DGwr	decoy	-	global-written
DPrm	decoy	-	param-not-a-tag
DSiz	decoy	-	param-is-size
DTb0	decoy	-	rdata-table-unused-entry
Pl3a	call	ExAllocatePool3	pool3
LkEx	call	ExInitializeLookasideListEx	lookaside-ex-7th
RmLk	call	IoInitializeRemoveLockEx	remove-lock
FltA	call	FltAllocatePoolAlignedWithTag	fltmgr-alloc
FltF	call	FltFreePoolAlignedWithTag	fltmgr-free
NdAl	call	NdisAllocateMemoryWithTag	ndis-alloc
NdAp	call	NdisAllocateMemoryWithTagPriority	ndis-alloc-priority
NdFr	call	NdisFreeMemoryWithTag	ndis-free
NdFp	call	NdisFreeMemoryWithTagPriority	ndis-free-priority
VpAl	call	VideoPortAllocatePool	videoport-alloc
None	call	ExAllocatePool	untagged
None	call	ExAllocatePoolWithQuota	untagged-quota
Prot	call	ExAllocatePoolWithTag	protected-pool
ObHd	objref	ObReferenceObjectByHandleWithTag	objref-by-handle
ObPt	objref	ObReferenceObjectByPointerWithTag	objref-by-pointer
ObRf	objref	ObfReferenceObjectWithTag	objref-reference
ObDf	objref	ObfDereferenceObjectWithTag	objref-dereference
ObDd	objref	ObDereferenceObjectDeferDeleteWithTag	objref-defer-delete
WdMc	call	WdfMemoryCreate	kmdf-memory-create
WdLl	call	WdfLookasideListCreate	kmdf-lookaside-create
DKse	decoy	-	non-tag-api-KeSetEvent
DDbg	decoy	-	non-tag-api-DbgPrint
DUsz	decoy	-	untagged-size
DWpr	decoy	-	kmdf-other-index'

# ULONG value of a 4-char tag as poolmon shows it (little-endian bytes).
tag_value() {
    local t=$1 v=0 i c
    for i in 3 2 1 0; do
        printf -v c '%d' "'${t:i:1}"
        v=$((v * 256 + c))
    done
    echo "$v"
}

src_tags=$(cat "$srcdir"/*.c |
    sed -n "s/.*TAG4('\(.\)','\(.\)','\(.\)','\(.\)').*/\1\2\3\4/p" | sort -u)
# (one TAG4 per line in the sources; count them to be sure)
n_uses=$(cat "$srcdir"/*.c | grep -o "TAG4('.','.','.','.')" | wc -l)
[ "$n_uses" -eq "$(printf '%s\n' "$src_tags" | wc -l)" ] ||
    die "each TAG4 tag must be used exactly once, one per line, in src/*.c"
# call tags whose value occurs as such in the code (not 'None', not protected)
table_call=$(printf '%s\n' "$TABLE" |
    awk -F'\t' '$2=="call" && $4 !~ /^(untagged|protected)/{print $1}' | sort -u)
table_decoy=$(printf '%s\n' "$TABLE" | awk -F'\t' '$2=="decoy"{print $1}' | sort -u)
table_tagged=$(printf '%s\n' "$TABLE" |
    awk -F'\t' '($2=="call"||$2=="wrapper"||$2=="objref") && $4 !~ /^untagged/{print $1}' | sort -u)
[ "$src_tags" = "$table_tagged" ] ||
    die "truth table call, wrapper and objref tags differ from TAG4 uses in src/*.c"
for t in $table_decoy; do
    grep -qx "$t" <<<"$src_tags" && die "decoy $t is used with TAG4"
done

# --- build -----------------------------------------------------------------
mkdir -p "$1"
outdir=$(cd "$1" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tagwho-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ntoskrnl: the samples' import definitions plus the corpus's own (tests/corpus/lib/ntoskrnl_extra*.def).
cat "$libdir/ntoskrnl.def" "$corpuslib/ntoskrnl_extra.def" >"$tmp/nt_x64.def"
cat "$libdir/ntoskrnl_x86.def" "$corpuslib/ntoskrnl_extra_x86.def" >"$tmp/nt_x86.def"
llvm-dlltool -m i386:x86-64 -d "$tmp/nt_x64.def" -l "$tmp/nt_x64.lib" ||
    die "llvm-dlltool (x64) failed"
llvm-dlltool -m i386 -k -d "$tmp/nt_x86.def" -l "$tmp/nt_x86.lib" ||
    die "llvm-dlltool (x86) failed"
# GNU ld misreads llvm-dlltool's short import libraries (the import descriptor ends up pointing 8 bytes
# past the real lookup table and IAT), so the mingw builds get import libraries from binutils' dlltool.
x86_64-w64-mingw32-dlltool -d "$tmp/nt_x64.def" -D ntoskrnl.exe -l "$tmp/nt_x64.a" ||
    die "x86_64-w64-mingw32-dlltool failed"
i686-w64-mingw32-dlltool -k -d "$tmp/nt_x86.def" -D ntoskrnl.exe -l "$tmp/nt_x86.a" ||
    die "i686-w64-mingw32-dlltool failed"
# ARM64: clang -O0 copies the stack-string decoy with a call to memcpy (ntoskrnl exports it).
{ cat "$libdir/ntoskrnl.def" "$corpuslib/ntoskrnl_extra.def"; echo memcpy; } >"$tmp/nt_arm64.def"
llvm-dlltool -m arm64 -d "$tmp/nt_arm64.def" -l "$tmp/nt_arm64.lib" ||
    die "llvm-dlltool (arm64) failed"
# The other drivers' imports (tests/corpus/lib): fltmgr.sys, ndis.sys, videoprt.sys, WDFLDR.SYS.
extra_libs() { # arch -> the import libraries to link (clang: .lib, mingw: .a)
    local a=$1 m
    for m in fltmgr ndis videoprt wdfldr; do
        if [ "$a" = x86 ]; then echo "$tmp/${m}_x86.lib" "$tmp/${m}_x86.a"
        else echo "$tmp/${m}_$a.lib" "$tmp/${m}_$a.a"; fi
    done
}
for m in fltmgr ndis videoprt wdfldr; do
    dll=$(awk '$1=="LIBRARY"{print $2}' "$corpuslib/$m.def")
    llvm-dlltool -m i386:x86-64 -d "$corpuslib/$m.def" -l "$tmp/${m}_x64.lib" &&
    llvm-dlltool -m arm64 -d "$corpuslib/$m.def" -l "$tmp/${m}_arm64.lib" &&
    llvm-dlltool -m i386 -k -d "$corpuslib/${m}_x86.def" -l "$tmp/${m}_x86.lib" &&
    x86_64-w64-mingw32-dlltool -d "$corpuslib/$m.def" -D "$dll" -l "$tmp/${m}_x64.a" &&
    i686-w64-mingw32-dlltool -k -d "$corpuslib/${m}_x86.def" -D "$dll" -l "$tmp/${m}_x86.a" ||
        die "import library for $dll failed"
done

common=(-ffreestanding -fno-stack-protector -Wall -Wextra -Werror -I "$incdir" -I "$corpusinc")

build_one() { # tc arch opt -> $tmp/out/<tc>-<arch>-<opt>.sys
    local tc=$1 arch=$2 opt=$3 name="$1-$2-$3" w="$tmp/$1-$2-$3"
    mkdir -p "$w"
    if [ "$tc" = clang ]; then
        local triple=x86_64-pc-windows-msvc machine=x64
        [ "$arch" = x86 ] && triple=i686-pc-windows-msvc machine=x86
        [ "$arch" = arm64 ] && triple=aarch64-pc-windows-msvc machine=arm64
        clang --target="$triple" "-$opt" "${common[@]}" -funwind-tables \
            -c "$srcdir/patterns.c" -o "$w/patterns.obj" &&
        clang --target="$triple" "-$opt" "${common[@]}" -funwind-tables \
            -c "$srcdir/wrappers.c" -o "$w/wrappers.obj" &&
        clang --target="$triple" "-$opt" "${common[@]}" -funwind-tables \
            -DTAGWHO_NO_DLLIMPORT -c "$srcdir/thunk.c" -o "$w/thunk.obj" &&
        clang --target="$triple" "-$opt" "${common[@]}" -funwind-tables \
            -c "$srcdir/apis.c" -o "$w/apis.obj" &&
        lld-link /nologo /driver:wdm /subsystem:native /entry:DriverEntry \
            /nodefaultlib /machine:"$machine" /Brepro \
            /out:"$tmp/out/$name.sys" "$w/patterns.obj" "$w/wrappers.obj" "$w/thunk.obj" \
            "$w/apis.obj" "$tmp/nt_$arch.lib" $(extra_libs "$arch" | tr ' ' '\n' | grep '\.lib$')
    else
        local cc=x86_64-w64-mingw32-gcc entry=DriverEntry extra=()
        if [ "$arch" = x86 ]; then
            cc=i686-w64-mingw32-gcc entry=_DriverEntry@8
            extra=(-fno-asynchronous-unwind-tables)
        fi
        "$cc" "-$opt" "${common[@]}" -fno-ident "${extra[@]}" \
            -c "$srcdir/patterns.c" -o "$w/patterns.o" &&
        "$cc" "-$opt" "${common[@]}" -fno-ident "${extra[@]}" \
            -c "$srcdir/wrappers.c" -o "$w/wrappers.o" &&
        "$cc" "-$opt" "${common[@]}" -fno-ident "${extra[@]}" \
            -DTAGWHO_NO_DLLIMPORT -c "$srcdir/thunk.c" -o "$w/thunk.o" &&
        "$cc" "-$opt" "${common[@]}" -fno-ident "${extra[@]}" \
            -c "$srcdir/apis.c" -o "$w/apis.o" &&
        "$cc" -s -nostdlib -nostartfiles \
            -Wl,--subsystem,native -Wl,--entry,"$entry" -Wl,--wdmdriver \
            -Wl,--dynamicbase -Wl,--no-insert-timestamp \
            -o "$tmp/out/$name.sys" "$w/patterns.o" "$w/wrappers.o" "$w/thunk.o" \
            "$w/apis.o" "$tmp/nt_$arch.a" $(extra_libs "$arch" | tr ' ' '\n' | grep '\.a$')
    fi
}

mkdir -p "$tmp/out"
files=()
pids=()
for tc in clang mingw; do
    arches="x64 x86"
    [ "$tc" = clang ] && arches="x64 x86 arm64"
    for arch in $arches; do
        for opt in O0 O1 O2 Os; do
            files+=("$tc-$arch-$opt.sys")
            build_one "$tc" "$arch" "$opt" >"$tmp/$tc-$arch-$opt.log" 2>&1 &
            pids+=($!)
        done
    done
done
fail=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "generate.sh: build failed: ${files[$i]}" >&2
        sed 's/^/  /' "$tmp/${files[$i]%.sys}.log" >&2
        fail=1
    fi
done
[ "$fail" -eq 0 ] || die "build failed"

# --- self-check: every tag occurs in every file ------------------------------
# x86/x64: the tag's 4 bytes (call tags as an immediate at the call or in a
# register load; decoys in .rdata/.data or as a compared/stored immediate).
# ARM64: the 4 bytes need not appear (32-bit constants are built from two
# 16-bit halves); call tags must show as "mov wN, #lo" + "movk wN, #hi, lsl
# #16" in the disassembly, decoys as those halves (w or x) or as bytes.
# (GCC computes a conditional tag arithmetically: cond-* tags need not occur.)
# (untagged rows: 'None' is the kernel's tag, not in the file; protected-pool:
# the top byte carries the PROTECTED_POOL bit.)
all_tags=$(printf '%s\n' "$TABLE" | awk -F'\t' '$4 !~ /^(cond-|untagged|protected)/{print $1}' | sort -u)
has_halves() { # disassembly tag regs(w|wx)
    local v lo hi
    v=$(tag_value "$2"); lo=$((v & 0xffff)); hi=$((v >> 16))
    grep -qE "[[:space:]]mov[[:space:]]+[$3][0-9]+, #$lo\$" "$1" &&
        grep -qE "[[:space:]]movk[[:space:]]+[$3][0-9]+, #$hi, lsl #16\$" "$1"
}
for f in "${files[@]}"; do
    if [[ $f == *-arm64-* ]]; then
        llvm-objdump -d --no-show-raw-insn "$tmp/out/$f" >"$tmp/$f.dis" ||
            die "$f: llvm-objdump failed"
        for t in $table_call; do
            has_halves "$tmp/$f.dis" "$t" w ||
                die "$f: movz/movk halves of call tag '$t' not found"
        done
        for t in $table_decoy; do
            LC_ALL=C grep -qaF -- "$t" "$tmp/out/$f" || has_halves "$tmp/$f.dis" "$t" wx ||
                die "$f: decoy '$t' found neither as bytes nor as movz/movk halves"
        done
        continue
    fi
    for t in $all_tags; do
        LC_ALL=C grep -qaF -- "$t" "$tmp/out/$f" ||
            die "$f: bytes of tag '$t' not found"
    done
done

# --- truth.tsv ---------------------------------------------------------------
{
    printf 'file\ttag\texpect\tapi\tpattern\n'
    for f in "${files[@]}"; do
        printf '%s\n' "$TABLE" | awk -F'\t' -v f="$f" -v OFS='\t' \
            '{print f, $1, $2, $3, $4}'
    done
} >"$tmp/out/truth.tsv"

# --- forms.tsv ---------------------------------------------------------------
# Forms, from llvm-objdump -d (Intel syntax) and the IAT data directory:
#   call-iat          call [IAT slot]        (x64 call [rip+d], x86 call [abs])
#   iat-load          mov reg, [IAT slot]
#   call-reg          call reg, reg loaded from an IAT slot somewhere in the file
#   thunk             jmp [IAT slot] not preceded by code of the same function
#                     (import thunk; mingw ld emits one per import, used or not)
#   call-thunk        direct call to such a thunk
#   tail-jmp-iat      jmp [IAT slot] ending a function (tail call, args set)
#   negative-rip      x64 IAT slot reached with [rip - d] (call, jmp or mov)
#   tag-push-imm      x86 push <call tag>
#   tag-mov-esp-imm   x86 mov dword ptr [esp + N], <call tag>
#   tag-mov-rsp-imm   x64 mov dword ptr [rsp + N], <call tag> (stack argument
#                     at -O1+, or a local at clang -O0)
#   tag-arg-reg-imm   mov <x64 argument register>, <call tag>
#   tag-callee-saved  mov <callee-saved register>, <call tag>
#   tag-frame-local   mov dword ptr [rbp/ebp - N], <call tag>
#   tag-mov-mem-other mov dword ptr [other base], <call tag> (e.g. clang x86
#                     -O0 builds ExAllocatePool2's arguments through eax)
# ARM64 (from llvm-objdump -d, default syntax):
#   a64-iat-load      ldr xN, [xM, #off] where an earlier adrp xM, page makes
#                     page + off an IAT slot
#   a64-thunk         adrp xN; ldr xN, [xN, #slot]; br xN after a ret/b/br
#   a64-blr-iat       blr xN, xN loaded from an IAT slot somewhere in the file
#   a64-br-iat        br xN outside a thunk, xN loaded from an IAT slot (tail)
#   a64-bl-thunk      bl to such a thunk
#   a64-tag-movz-movk mov wN, #lo ... movk wN, #hi, lsl #16 making a call tag
#   a64-tag-apart     the same with other instructions between the two halves
#   a64-tag-callee-saved  the same into w19-w28
#   a64-tag-stack     str wN, [sp, #k] of a register holding a call tag
call_values=$(for t in $table_call; do tag_value "$t"; done | tr '\n' ' ')
{
    printf 'file\tform\tcount\n'
    for f in "${files[@]}"; do
        hdr=$(llvm-readobj --file-headers "$tmp/out/$f")
        base=$(awk '$1=="ImageBase:"{print $2}' <<<"$hdr")
        iatrva=$(awk '$1=="IATRVA:"{print $2}' <<<"$hdr")
        iatsize=$(awk '$1=="IATSize:"{print $2}' <<<"$hdr")
        [ -n "$base" ] && [ -n "$iatrva" ] && [ -n "$iatsize" ] ||
            die "$f: no IAT directory"
        lo=$((base + iatrva))
        hi=$((lo + iatsize))
        if [[ $f == *-arm64-* ]]; then
            awk -v f="$f" -v lo="$lo" -v hi="$hi" -v tags="$call_values" '
            function hex(s,   i, c, v) {
                s = tolower(s); sub(/^0x/, "", s); v = 0
                for (i = 1; i <= length(s); i++) {
                    c = index("0123456789abcdef", substr(s, i, 1)) - 1
                    if (c < 0) break
                    v = v * 16 + c
                }
                return v
            }
            function key(s) {
                s = tolower(s); sub(/^0x/, "", s); sub(/:$/, "", s)
                sub(/^0+/, "", s)
                return s
            }
            function add(form) { cnt[form]++ }
            BEGIN {
                n = split(tags, tv, " ")
                for (i = 1; i <= n; i++) istag[tv[i]] = 1
                prev = ""; n = 0
            }
            !/^ *[0-9a-f]+: *\t/ { prev = ""; next }
            {
                n++
                addr = key($1)
                line = $0
                sub(/^[^\t]*\t/, "", line)
                mn = line; sub(/\t.*/, "", mn)
                ops = ""
                if (index(line, "\t")) { ops = line; sub(/^[^\t]*\t/, "", ops) }
                r = ops; sub(/,.*/, "", r)
                if (mn == "adrp") {
                    p = ops; sub(/^[^,]*, /, "", p); sub(/ .*/, "", p)
                    page[r] = hex(p); adrpat[r] = addr; adrpprev[r] = prev
                } else if (mn == "ldr" && match(ops, /\[x[0-9]+, #[0-9]+\]$/)) {
                    m = substr(ops, RSTART + 1, RLENGTH - 2)
                    b = m; sub(/,.*/, "", b)
                    o = m; sub(/.*#/, "", o)
                    if ((b in page) && page[b] + o >= lo + 0 && page[b] + o < hi + 0) {
                        add("a64-iat-load"); loaded[r] = 1
                        if (r == b && prevmn == "adrp") {
                            pending_thunk = r; pending_at = adrpat[r]
                            pending_ok = (adrpprev[r] == "" || adrpprev[r] ~ /^(ret|b|br|udf)$/)
                        }
                    }
                } else if (mn == "br") {
                    if (pending_thunk == ops && prevmn == "ldr" && pending_ok) {
                        add("a64-thunk"); thunk[pending_at] = 1
                    } else brreg[ops]++
                } else if (mn == "blr") {
                    blrreg[ops]++
                } else if (mn == "bl") {
                    c = ops; sub(/ .*/, "", c); dcall[key(c)]++
                } else if (mn == "mov" && match(ops, /^w[0-9]+, #[0-9]+$/)) {
                    v = ops; sub(/.*#/, "", v); movz[r] = v; movzn[r] = n
                } else if (mn == "movk" && match(ops, /^w[0-9]+, #[0-9]+, lsl #16$/)) {
                    v = ops; sub(/^[^#]*#/, "", v); sub(/,.*/, "", v)
                    if ((r in movz) && ((v * 65536 + movz[r]) in istag)) {
                        add("a64-tag-movz-movk"); holds[r] = 1
                        if (n - movzn[r] > 1) add("a64-tag-apart")
                        if (r ~ /^w(19|2[0-8])$/) add("a64-tag-callee-saved")
                    }
                } else if (mn == "str" && (r in holds) && ops ~ /\[sp(, #[0-9]+)?\]$/) {
                    add("a64-tag-stack")
                }
                if (mn != "ldr") pending_thunk = (mn == "adrp" ? pending_thunk : "")
                prevmn = mn
                prev = mn
            }
            END {
                for (x in blrreg) if (x in loaded) cnt["a64-blr-iat"] += blrreg[x]
                for (x in brreg) if (x in loaded) cnt["a64-br-iat"] += brreg[x]
                for (a in dcall) if (a in thunk) cnt["a64-bl-thunk"] += dcall[a]
                for (k in cnt) printf "%s\t%s\t%d\n", f, k, cnt[k]
            }' "$tmp/$f.dis" | sort
            continue
        fi
        llvm-objdump -d -M intel --no-show-raw-insn "$tmp/out/$f" |
        awk -v f="$f" -v lo="$lo" -v hi="$hi" -v tags="$call_values" '
            # numeric value of a hex string (exact below 2^53)
            function hex(s,   i, c, v) {
                s = tolower(s); sub(/^0x/, "", s); v = 0
                for (i = 1; i <= length(s); i++) {
                    c = index("0123456789abcdef", substr(s, i, 1)) - 1
                    if (c < 0) break
                    v = v * 16 + c
                }
                return v
            }
            # canonical string key of a hex address (array subscripts must
            # not go through CONVFMT, which mawk applies to big numbers)
            function key(s) {
                s = tolower(s); sub(/^0x/, "", s); sub(/:$/, "", s)
                sub(/^0+/, "", s)
                return s
            }
            # target address of a memory operand: the "# 0x..." comment
            # (x64 rip-relative) or the absolute [N] (x86)
            function target(s) {
                if (match(s, /# 0x[0-9a-f]+/))
                    return hex(substr(s, RSTART + 2, RLENGTH - 2))
                if (match(s, /ptr \[[0-9]+\]/))
                    return substr(s, RSTART + 5, RLENGTH - 6) + 0
                return -1
            }
            function iat(a) { return a >= lo + 0 && a < hi + 0 }
            function add(form) { cnt[form]++ }
            BEGIN {
                n = split(tags, tv, " ")
                for (i = 1; i <= n; i++) istag[tv[i]] = 1
                n = split("rbx rbp rdi rsi r12 r13 r14 r15 ebx ebp edi esi " \
                          "r12d r13d r14d r15d", cs, " ")
                for (i = 1; i <= n; i++) callee[cs[i]] = 1
                n = split("ecx edx r8d r9d rcx rdx r8 r9", ar, " ")
                for (i = 1; i <= n; i++) argreg[ar[i]] = 1
                prev = ""
            }
            !/^ *[0-9a-f]+: *\t/ { prev = ""; next }   # labels, headers
            {
                addr = key($1)
                line = $0
                sub(/^[^\t]*\t/, "", line)              # drop "addr:   "
                mn = line; sub(/\t.*/, "", mn)
                ops = ""
                if (index(line, "\t")) { ops = line; sub(/^[^\t]*\t/, "", ops) }
                if (ops ~ /ptr \[/) {
                    t = target(ops)
                    if (iat(t)) {
                        if (ops ~ /rip - /) add("negative-rip")
                        if (mn == "call") add("call-iat")
                        else if (mn == "jmp") {
                            if (prev == "" || prev ~ /^(ret|jmp|int3|nop|<unknown>)$/) {
                                add("thunk"); thunk[addr] = 1
                            } else add("tail-jmp-iat")
                        } else if (mn == "mov") {
                            add("iat-load")
                            r = ops; sub(/,.*/, "", r); loaded[r] = 1
                        }
                    }
                }
                if (mn == "call" && ops ~ /^[a-z0-9]+$/) regcall[ops]++
                if (mn == "call" && ops ~ /^0x[0-9a-f]+/) {
                    c = ops; sub(/ .*/, "", c); dcall[key(c)]++
                }
                # immediates that are call tags (decimal in Intel syntax)
                if (mn == "mov" && match(ops, /, [0-9]+$/)) {
                    v = substr(ops, RSTART + 2)
                    dst = substr(ops, 1, RSTART - 1)
                    if (v in istag) {
                        if (dst ~ /^dword ptr \[esp( \+ [0-9]+)?\]$/)
                            add("tag-mov-esp-imm")
                        else if (dst ~ /^dword ptr \[rsp( \+ [0-9]+)?\]$/)
                            add("tag-mov-rsp-imm")
                        else if (dst ~ /^dword ptr \[[re]bp - [0-9]+\]$/)
                            add("tag-frame-local")
                        else if (dst ~ /^dword ptr \[/)
                            add("tag-mov-mem-other")
                        else if (dst in callee)
                            add("tag-callee-saved")
                        else if (dst in argreg)
                            add("tag-arg-reg-imm")
                    }
                }
                if (mn == "push" && (ops in istag)) add("tag-push-imm")
                prev = mn
            }
            END {
                for (r in regcall) if (r in loaded) cnt["call-reg"] += regcall[r]
                for (a in dcall) if (a in thunk) cnt["call-thunk"] += dcall[a]
                for (k in cnt) printf "%s\t%s\t%d\n", f, k, cnt[k]
            }' | sort
    done
} >"$tmp/out/forms.tsv"

# The corpus must exercise every form it is meant to test (somewhere).
for form in call-iat call-reg thunk call-thunk tail-jmp-iat negative-rip \
            tag-push-imm tag-mov-esp-imm tag-mov-rsp-imm tag-callee-saved \
            a64-iat-load a64-thunk a64-blr-iat a64-br-iat a64-bl-thunk \
            a64-tag-movz-movk a64-tag-apart a64-tag-callee-saved a64-tag-stack; do
    awk -F'\t' -v x="$form" '$2==x{found=1} END{exit !found}' \
        "$tmp/out/forms.tsv" || die "no build shows form '$form'"
done

# --- publish -----------------------------------------------------------------
for f in "${files[@]}" truth.tsv forms.tsv; do
    mv -f "$tmp/out/$f" "$outdir/$f"
done
echo "generate.sh: ${#files[@]} files, truth.tsv and forms.tsv in $outdir"
