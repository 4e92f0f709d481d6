#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Take kselftest_harness.h and kselftest.h from Debian's linux-source
# package (never copied into this repository).  Usage: get-harness.sh OUTDIR
set -euo pipefail
out=${1:?usage: get-harness.sh OUTDIR}
mkdir -p "$out"
tarball=
for t in /usr/src/linux-source-6.12.tar.xz /usr/src/linux-source-6.1.tar.xz; do
	[ -f "$t" ] && { tarball=$t; break; }
done
if [ -z "$tarball" ]; then
	echo "get-harness.sh: no /usr/src/linux-source-*.tar.xz; install linux-source-6.12" >&2
	exit 1
fi
top=$(basename "$tarball" .tar.xz)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -C "$tmp" -xJf "$tarball" \
	"$top/tools/testing/selftests/kselftest_harness.h" \
	"$top/tools/testing/selftests/kselftest.h" \
	"$top/scripts/checkpatch.pl" \
	"$top/scripts/spelling.txt" \
	"$top/scripts/const_structs.checkpatch"
cp "$tmp/$top/tools/testing/selftests/kselftest_harness.h" \
   "$tmp/$top/tools/testing/selftests/kselftest.h" "$out/"
mkdir -p "$out/scripts"
cp "$tmp/$top/scripts/checkpatch.pl" "$tmp/$top/scripts/spelling.txt" \
   "$tmp/$top/scripts/const_structs.checkpatch" "$out/scripts/"
echo "kselftest harness and checkpatch taken from $tarball"
