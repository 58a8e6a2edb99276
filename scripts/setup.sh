#!/bin/sh
# Installs the Debian 12 packages tagwho needs to build, test and rebuild its sample drivers,
# skipping those already present. Run as root (or with sudo available). libclang-rt-14-dev holds libFuzzer
# and the clang sanitizer runtimes the fuzz targets (fuzz/) link with.
set -eu

arch=$(dpkg --print-architecture)
hyperscan=libhyperscan-dev
[ "$arch" = amd64 ] || hyperscan=libvectorscan-dev   # Hyperscan is x86-only; vectorscan is its port

packages="g++ make cmake pkg-config ca-certificates
  liblief-dev $hyperscan libcli11-dev doctest-dev libzydis-dev libcapstone-dev libsqlite3-dev sqlite3 libtsk-dev libregf-dev libbfio-dev
  clang lld llvm mingw-w64 libclang-rt-14-dev
  ntfs-3g ntfs-3g-dev qemu-utils ewf-tools fdisk strace"   # the tests build NTFS disk images with these (strace: read-only proof)

missing=""
for package in $packages; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $package"
done
[ -z "$missing" ] && exit 0

echo "tagwho setup: installing$missing" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
