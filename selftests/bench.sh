#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: boot the newest Debian 6.12 kernel with the module and a
# virtio disk (a raw image on the host, no host cache) and run vmpf-bench
# inside; print its table and keep its JSON in build/bench/bench.json.
#   VMPF_BENCH="MIB REPS FAULTS"   default "256 3 2000"
set -uo pipefail
cd "$(dirname "$0")/.."
read -r MIB REPS FAULTS <<< "${VMPF_BENCH:-256 3 2000}"
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
	tools/vmpf-ctl tools/vmpf-vm selftests/bench/vmpf-bench || die "building the initramfs failed"
rm -f "$OUT/disk.img"
truncate -s $(( (MIB + MIB / 64 + 16) * 1048576 )) "$OUT/disk.img"

echo "bench: kernel $k, ${MIB} MiB page file, $REPS repetitions, $FAULTS faults"
VMPF_GUEST_MEM=$(( 1024 + 3 * MIB )) VMPF_SHARED_DISK=$OUT/disk.img \
	VMPF_APPEND="vmpf_bench=$MIB,$REPS,$FAULTS" \
	selftests/qemu/run-guest.sh "$k" "$OUT/initrd.gz" "$OUT/guest" 3600
res=$(tr -d '\r' < "$OUT/guest/result.log")
echo "$res" | grep -v '^VMPF-\|^BENCH-\|^#'
sw=$(echo "$res" | sed -n 's/^BENCH-SWITCHOVER //p')
if [ -n "$sw" ]; then
	echo "switch-over (pause to commit), same 4 MiB dirtying working set, 2 vCPUs:"
	echo "$sw" | while read -r m ns fp; do
		printf "  %-10s %8.1f ms, final round %s pages\n" "${m#mib=} MiB" \
			"$(awk "BEGIN{print ${ns#switchover_ns=}/1e6}")" "${fp#final_pages=}"
	done
	small=$(echo "$sw" | head -n 1 | sed 's/.*switchover_ns=\([0-9]*\).*/\1/')
	large=$(echo "$sw" | tail -n 1 | sed 's/.*switchover_ns=\([0-9]*\).*/\1/')
	[ "$small" -gt 0 ] 2>/dev/null &&
		echo "  ratio largest/smallest $(awk "BEGIN{printf \"%.2f\", $large/$small}") (goal <= 1.2)"
fi
z=$(echo "$res" | sed -n 's/^BENCH-ZERO //p')
if [ -n "$z" ]; then
	set -- $(echo "$z" | sed 's/round0=//; s/bytes_written=//; s/ram_bytes=//')
	echo "a 64 MiB guest, 90 % zero: round 0 found $3 of $1 pages zero and wrote $2;"
	echo "  $4 bytes written in all for $5 bytes of RAM"
fi
echo "$res" | sed -n 's/^BENCH-JSON //p' > "$OUT/bench.json"
if ! echo "$res" | grep -q '^VMPF-BENCH-END 0$' || [ ! -s "$OUT/bench.json" ]; then
	echo "$res" | tail -n 20
	die "the benchmark failed (logs in $OUT/guest)"
fi
if grep -aEq 'WARNING:|BUG:|Oops|Call Trace:' "$OUT/guest/console.log"; then
	die "the kernel log has a warning or oops: $OUT/guest/console.log"
fi
echo "bench: JSON in $OUT/bench.json"
