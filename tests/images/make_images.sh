#!/usr/bin/env bash
# Builds the disk images the offline-system tests read, from the shipped sample drivers, without mounting
# anything: a Windows-like tree (mixed-case names, a SYSTEM hive with services) as a folder, as NTFS
# volumes (mkntfs + ntfs_populate), in MBR and GPT partition tables (sfdisk), and converted to VHD, VHDX,
# VMDK (qemu-img) and E01 (ewfacquire); plus damaged images.
#
# Usage: make_images.sh OUTDIR MAKE_HIVE NTFS_POPULATE
#   OUTDIR/tree/        the folder copy (stands in for a read-only mounted volume)
#   OUTDIR/bare.img     one NTFS volume, no partition table
#   OUTDIR/mbr.img      MBR: p1 NTFS with Windows, p2 NTFS without
#   OUTDIR/gpt.img      GPT: p1 ESP (empty), p2 and p3 NTFS with Windows (so results name the partition)
#   OUTDIR/disk.vhd, disk-fixed.vhd, disk.vmdk, disk.E01 (from mbr.img), disk.vhdx (from gpt.img)
#   OUTDIR/garbage.img, truncated.vhdx, truncated.img   damaged images
#   OUTDIR/SHA256SUMS   checksums of every image, for the tests to prove nothing was written
# Exit status: 0 ok, 77 a tool is missing (tests skipped), 1 failure.
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 OUTDIR MAKE_HIVE NTFS_POPULATE" >&2; exit 2; }
out=$1 make_hive=$2 ntfs_populate=$3
samples=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/samples/bin
PATH=$PATH:/sbin:/usr/sbin

missing=()
for tool in mkntfs sfdisk qemu-img ewfacquire sha256sum; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -x "$make_hive" ] || missing+=("make_hive helper")
[ -x "$ntfs_populate" ] || missing+=("ntfs_populate helper (ntfs-3g-dev)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "make_images.sh: missing ${missing[*]}: offline-image tests skipped (scripts/setup.sh installs them)" >&2
  exit 77
fi

rm -rf "$out"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- The Windows tree ------------------------------------------------------------------------------------
tree=$out/tree
sys=$tree/Windows/system32
mkdir -p "$sys/DRIVERS" "$sys/DriverStore/FileRepository/leak.inf_arm64_5f3c1a" "$sys/config" \
  "$tree/Program Files/Vendor" "$tree/Users/Public"
cp "$samples/leak-clang-x64.sys" "$sys/DRIVERS/Leak.sys"
cp "$samples/pooluser-clang-x64.sys" "$sys/DRIVERS/PoolUser.SYS"
cp "$samples/quiet-clang-x64.sys" "$sys/DRIVERS/quiet.sys"
cp "$samples/leak-clang-arm64.sys" "$sys/DriverStore/FileRepository/leak.inf_arm64_5f3c1a/leak-arm64.sys"
cp "$samples/leak-mingw-x64.sys" "$sys/ntoskrnl.exe"            # a kernel module in System32 (by name)
cp "$samples/leak-clang-x86.sys" "$sys/userland.dll"            # made a console-subsystem DLL: not kernel
pe=$(od -An -tu4 -j60 -N4 "$sys/userland.dll" | tr -d ' ')
printf '\x03' | dd of="$sys/userland.dll" bs=1 seek=$((pe + 24 + 68)) conv=notrunc status=none
echo "Leak" >"$sys/notes.txt"
cp "$samples/leak-mingw-x86.sys" "$tree/Program Files/Vendor/VENDOR.SYS"   # found only through the registry
cp "$samples/leak-clang-x64.sys" "$tree/Users/Public/leak-copy.sys"        # not a place drivers live

# SYSTEM hive: ControlSet002 is current; ControlSet001 holds a stale LeakSvc (disabled) that must not win.
services='ControlSet002\Services'
tab=$'\t'
"$make_hive" "$sys/config/SYSTEM" <<SPEC
Select${tab}Current${tab}dword${tab}2
ControlSet001\Services\LeakSvc${tab}Start${tab}dword${tab}4
ControlSet001\Services\LeakSvc${tab}Type${tab}dword${tab}1
$services\LeakSvc${tab}DisplayName${tab}sz${tab}Leak sample driver
$services\LeakSvc${tab}ImagePath${tab}expand${tab}\SystemRoot\System32\drivers\leak.sys
$services\LeakSvc${tab}Start${tab}dword${tab}3
$services\LeakSvc${tab}Type${tab}dword${tab}1
$services\LeakSvc${tab}Group${tab}sz${tab}Extended Base
$services\PoolUser${tab}ImagePath${tab}expand${tab}System32\drivers\pooluser.sys
$services\PoolUser${tab}Start${tab}dword${tab}1
$services\PoolUser${tab}Type${tab}dword${tab}1
$services\Quiet${tab}Start${tab}dword${tab}4
$services\Quiet${tab}Type${tab}dword${tab}1
$services\Vendor${tab}ImagePath${tab}expand${tab}\??\C:\Program Files\Vendor\vendor.sys
$services\Vendor${tab}Start${tab}dword${tab}2
$services\Vendor${tab}Type${tab}dword${tab}1
$services\Ghost${tab}ImagePath${tab}expand${tab}\SystemRoot\System32\drivers\ghost.sys
$services\Ghost${tab}Start${tab}dword${tab}0
$services\Ghost${tab}Type${tab}dword${tab}1
$services\OtherDrive${tab}ImagePath${tab}expand${tab}D:\Drivers\other.sys
$services\OtherDrive${tab}Start${tab}dword${tab}3
$services\OtherDrive${tab}Type${tab}dword${tab}1
$services\Spooler${tab}ImagePath${tab}expand${tab}%SystemRoot%\System32\spoolsv.exe
$services\Spooler${tab}Start${tab}dword${tab}2
$services\Spooler${tab}Type${tab}dword${tab}16
SPEC

# --- NTFS volumes ------------------------------------------------------------------------------------------
sectors=16384   # 8 MiB volumes
make_volume() {  # make_volume FILE TREE
  truncate -s $((sectors * 512)) "$1"
  mkntfs -F -Q -q -H 255 -S 63 -p 2048 "$1" >/dev/null 2>"$tmp/mkntfs.err" || { cat "$tmp/mkntfs.err" >&2; exit 1; }
  (cd "$2" && find . -type f | sort | while IFS= read -r file; do printf '%s\t%s\n' "$2/${file#./}" "/${file#./}"; done) \
    | "$ntfs_populate" "$1"
}
make_volume "$tmp/windows.ntfs" "$tree"
mkdir -p "$tmp/data/Drivers"
cp "$samples/leak-clang-x64.sys" "$tmp/data/Drivers/leak.sys"   # a data volume: not searched
make_volume "$tmp/data.ntfs" "$tmp/data"

cp "$tmp/windows.ntfs" "$out/bare.img"

# MBR: p1 Windows at 1 MiB, p2 data.
truncate -s $(((2048 + 2 * sectors) * 512)) "$out/mbr.img"
printf 'label: dos\nstart=2048, size=%d, type=7\nstart=%d, size=%d, type=7\n' $sectors $((2048 + sectors)) $sectors \
  | sfdisk -q "$out/mbr.img" >/dev/null
dd if="$tmp/windows.ntfs" of="$out/mbr.img" bs=512 seek=2048 conv=notrunc status=none
dd if="$tmp/data.ntfs" of="$out/mbr.img" bs=512 seek=$((2048 + sectors)) conv=notrunc status=none

# GPT: p1 ESP (left empty), p2 and p3 Windows.
truncate -s $(((4096 + 2 * sectors + 2048) * 512)) "$out/gpt.img"
printf 'label: gpt\nstart=2048, size=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=4096, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\nstart=%d, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' \
  $sectors $((4096 + sectors)) $sectors | sfdisk -q "$out/gpt.img" >/dev/null
dd if="$tmp/windows.ntfs" of="$out/gpt.img" bs=512 seek=4096 conv=notrunc status=none
dd if="$tmp/windows.ntfs" of="$out/gpt.img" bs=512 seek=$((4096 + sectors)) conv=notrunc status=none

# --- Container formats ----------------------------------------------------------------------------------
qemu-img convert -q -f raw -O vpc "$out/mbr.img" "$out/disk.vhd"
qemu-img convert -q -f raw -O vpc -o subformat=fixed "$out/mbr.img" "$out/disk-fixed.vhd"
qemu-img convert -q -f raw -O vhdx "$out/gpt.img" "$out/disk.vhdx"
qemu-img convert -q -f raw -O vmdk "$out/mbr.img" "$out/disk.vmdk"
ewfacquire -u -q -t "$out/disk" -f encase6 -c deflate:fast -C 1 -D tagwho -e tagwho -E 1 -N test \
  "$out/mbr.img" >"$tmp/ewf.log" 2>&1 || { cat "$tmp/ewf.log" >&2; exit 1; }
[ -f "$out/disk.E01" ] || { echo "make_images.sh: ewfacquire wrote no disk.E01" >&2; cat "$tmp/ewf.log" >&2; exit 1; }

# --- Damaged images ---------------------------------------------------------------------------------------
head -c 3000000 /dev/urandom >"$out/garbage.img"
head -c 1048576 "$out/disk.vhdx" >"$out/truncated.vhdx"
head -c $(((2048 + 1200) * 512)) "$out/mbr.img" >"$out/truncated.img"

(cd "$out" && sha256sum ./*.img ./*.vhd ./*.vhdx ./*.vmdk ./*.E01 >SHA256SUMS)
echo "make_images.sh: $(ls "$out" | grep -vc -e '^tree$' -e SHA256SUMS) images in $out"
