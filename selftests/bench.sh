#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: boot the newest Debian 6.12 kernel with the module and a
# virtio disk (a raw image on the host, no host cache) and run the
# benchmarks inside (selftests/bench/bench-guest.sh); print their tables and
# keep the JSON in build/bench/bench.json.
#   VMPF_BENCH="MIB REPS FAULTS SWMAX"   default "256 3 2000 1024"
# MIB: the page file of the fault, prefetch and pre-copy figures; SWMAX: the
# largest guest of the switch-over figure (64, 256, 1024 MiB up to it).
set -uo pipefail
cd "$(dirname "$0")/.."
read -r MIB REPS FAULTS SWMAX <<< "${VMPF_BENCH:-256 3 2000 1024}"
SWMAX=${SWMAX:-1024}
OUT=build/bench
mkdir -p "$OUT"
die() { echo "bench: $*" >&2; exit 1; }

kernels=$(selftests/deps.sh) || die "installing what the bench needs failed"
k=$(echo "$kernels" | tr ' ' '\n' | grep '^6\.12' | tail -n 1)
[ -n "$k" ] || k=$(echo "$kernels" | awk '{print $NF}')
make -s tools bench-tools >/dev/null || die "building the tools failed"
rm -rf "$OUT/mod" && mkdir -p "$OUT/mod" && cp -r Kbuild Makefile dkms.conf kernel uapi "$OUT/mod/"
make -s -C "$OUT/mod" KERNELRELEASE="$k" module >"$OUT/build.log" 2>&1 ||
	die "building the module failed: see $OUT/build.log"
selftests/qemu/mkinitramfs.sh "$k" "$OUT/mod/vmpagefile.ko" "$OUT/initrd.gz" \
	tools/vmpf-ctl tools/vmpf-vm selftests/bench/vmpf-bench selftests/bench/bench-guest.sh ||
	die "building the initramfs failed"
# The disk: page files on the raw device up to the largest guest, then an
# ext2 filesystem holding a page file of MIB for the same figures on a file.
big=$(( MIB > SWMAX ? MIB : SWMAX ))
amib=$(( big + big / 512 + 8 ))
fsmib=$(( (MIB + MIB / 512 + 4) * 11 / 10 + 16 ))
rm -f "$OUT/disk.img"
truncate -s $(( (amib + fsmib) * 1048576 )) "$OUT/disk.img"

echo "bench: kernel $k, ${MIB} MiB page file, $REPS repetitions, $FAULTS faults," \
	"guests up to $SWMAX MiB"
VMPF_GUEST_MEM=$(( 1280 + 3 * MIB )) VMPF_SHARED_DISK=$OUT/disk.img \
	VMPF_APPEND="vmpf_bench=$MIB,$REPS,$FAULTS,$SWMAX,$amib" \
	selftests/qemu/run-guest.sh "$k" "$OUT/initrd.gz" "$OUT/guest" 3600
res=$(tr -d '\r' < "$OUT/guest/result.log")
echo "$res" | grep -v '^VMPF-\|^BENCH-'
j() { echo "$res" | sed -n "s/^BENCH-JSON-$1 //p" | head -n 1; }
printf '{"kernel":"%s","crc":%s,"block":%s,"file":%s,"switchover":%s,"slowdown":%s,"converge":%s,"zero":%s,"handover":%s,"resume":%s}\n' \
	"$k" "$(j CRC)" "$(j BLOCK)" "$(j FILE)" "$(j SWITCHOVER)" "$(j SLOWDOWN)" "$(j CONVERGE)" "$(j ZERO)" \
	"$(j HANDOVER)" "$(j RESUME)" \
	> "$OUT/bench.json"
if ! echo "$res" | grep -q '^VMPF-BENCH-END 0$'; then
	echo "$res" | tail -n 20
	die "the benchmark failed (logs in $OUT/guest)"
fi
for part in BLOCK FILE SWITCHOVER SLOWDOWN CONVERGE ZERO HANDOVER RESUME; do
	[ -n "$(j $part)" ] || die "no $part figures (logs in $OUT/guest)"
done
if grep -aEq 'WARNING:|BUG:|Oops|Call Trace:' "$OUT/guest/console.log"; then
	die "the kernel log has a warning or oops: $OUT/guest/console.log"
fi
echo "bench: JSON in $OUT/bench.json"
