#!/usr/bin/env bash
# Build the tagwho sample drivers (samples/src/*.c) with two toolchains and
# three architectures (ARM64 with clang only: Debian has no ARM64 mingw):
#   bin/<name>-clang-x64.sys   clang --target=x86_64-pc-windows-msvc + lld-link
#   bin/<name>-clang-x86.sys   clang --target=i686-pc-windows-msvc   + lld-link
#   bin/<name>-clang-arm64.sys clang --target=aarch64-pc-windows-msvc + lld-link
#   bin/<name>-mingw-x64.sys   x86_64-w64-mingw32-gcc
#   bin/<name>-mingw-x86.sys   i686-w64-mingw32-gcc
# Import libraries for ntoskrnl.exe are made with llvm-dlltool from
# lib/ntoskrnl.def (x64, ARM64) and lib/ntoskrnl_x86.def (x86, stdcall names).
# Output is deterministic (lld-link /Brepro, ld --no-insert-timestamp).
#
# Usage: samples/build.sh [OUTDIR]     (default OUTDIR: samples/bin)
# Exits non-zero on any failure; temporary files live in a mktemp dir.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
outdir=${1:-"$here/bin"}

die() { echo "build.sh: $*" >&2; exit 1; }

for tool in clang lld-link llvm-dlltool llvm-readobj \
            x86_64-w64-mingw32-gcc i686-w64-mingw32-gcc x86_64-w64-mingw32-dlltool i686-w64-mingw32-dlltool; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tagwho-samples.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

llvm-dlltool -m i386:x86-64 -d "$here/lib/ntoskrnl.def" \
    -l "$tmp/ntoskrnl_x64.lib" || die "llvm-dlltool (x64) failed"
llvm-dlltool -m i386 -k -d "$here/lib/ntoskrnl_x86.def" \
    -l "$tmp/ntoskrnl_x86.lib" || die "llvm-dlltool (x86) failed"
llvm-dlltool -m arm64 -d "$here/lib/ntoskrnl.def" \
    -l "$tmp/ntoskrnl_arm64.lib" || die "llvm-dlltool (arm64) failed"
# GNU ld misreads llvm-dlltool's short import libraries (the import descriptor ends up pointing 8 bytes
# past the real lookup table and IAT), so the mingw builds get import libraries from binutils' dlltool.
x86_64-w64-mingw32-dlltool -d "$here/lib/ntoskrnl.def" -D ntoskrnl.exe \
    -l "$tmp/ntoskrnl_x64.a" || die "x86_64-w64-mingw32-dlltool failed"
i686-w64-mingw32-dlltool -k -d "$here/lib/ntoskrnl_x86.def" -D ntoskrnl.exe \
    -l "$tmp/ntoskrnl_x86.a" || die "i686-w64-mingw32-dlltool failed"

cflags_common=(-O2 -ffreestanding -fno-stack-protector -Wall -Wextra -Werror
               -I "$here/include")

build_clang() { # src arch out
    local src=$1 arch=$2 out=$3 triple machine obj
    case $arch in
        x64) triple=x86_64-pc-windows-msvc; machine=x64 ;;
        x86) triple=i686-pc-windows-msvc;   machine=x86 ;;
        arm64) triple=aarch64-pc-windows-msvc; machine=arm64 ;;
    esac
    obj="$tmp/$(basename "$out" .sys).obj"
    clang --target="$triple" "${cflags_common[@]}" -funwind-tables \
        -c "$src" -o "$obj"
    lld-link /nologo /driver:wdm /subsystem:native /entry:DriverEntry \
        /nodefaultlib /machine:"$machine" /Brepro /out:"$out" \
        "$obj" "$tmp/ntoskrnl_$arch.lib"
}

build_mingw() { # src arch out
    local src=$1 arch=$2 out=$3 cc entry extra=() obj
    case $arch in
        x64) cc=x86_64-w64-mingw32-gcc; entry=DriverEntry ;;
        x86) cc=i686-w64-mingw32-gcc;   entry=_DriverEntry@8
             extra=(-fno-asynchronous-unwind-tables) ;;
    esac
    obj="$tmp/$(basename "$out" .sys).o"
    "$cc" "${cflags_common[@]}" -fno-ident "${extra[@]}" -c "$src" -o "$obj"
    "$cc" -s -nostdlib -nostartfiles \
        -Wl,--subsystem,native -Wl,--entry,"$entry" -Wl,--wdmdriver \
        -Wl,--dynamicbase -Wl,--no-insert-timestamp \
        -o "$out" "$obj" "$tmp/ntoskrnl_$arch.a"
}

n=0
for src in "$here"/src/*.c; do
    name=$(basename "$src" .c)
    for tc in clang mingw; do
        arches="x64 x86"
        [ "$tc" = clang ] && arches="x64 x86 arm64"
        for arch in $arches; do
            out="$outdir/$name-$tc-$arch.sys"
            rm -f "$out"
            "build_$tc" "$src" "$arch" "$out" || die "failed: $out"
            # Sanity: a native-subsystem image importing from ntoskrnl.exe.
            info=$(llvm-readobj --file-headers --coff-imports "$out") \
                || die "unreadable: $out"
            grep -q 'IMAGE_SUBSYSTEM_NATIVE' <<<"$info" \
                || die "not a native image: $out"
            grep -q 'Name: ntoskrnl.exe' <<<"$info" \
                || die "no ntoskrnl.exe imports: $out"
            n=$((n + 1))
        done
    done
done
[ "$n" -gt 0 ] || die "no sources in $here/src"
echo "build.sh: built $n drivers into $outdir"
