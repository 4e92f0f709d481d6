#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest side of `make bench`, run by /init inside the booted kernel:
#   bench-guest.sh MIB REPS FAULTS SWMAX AMIB
# The virtio disk /dev/vda holds, from 0, AMIB MiB used raw (page files on a
# block device) and after them a filesystem for the same benchmark on a file.
# Prints the text of every section and, on lines starting BENCH-JSON-*, the
# same as JSON; ends with "VMPF-BENCH-END RC".
MIB=$1 REPS=$2 FAULTS=$3 SWMAX=$4 AMIB=$5
set -o pipefail
rc=0

# "median min max" of the numbers on stdin.
stats() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)], v[1], v[NR]; else print 0, 0, 0 }'
}
# json KEY: the number after "KEY": in $out.
json() {
	echo "$out" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | head -n 1
}
fail() {
	echo "# bench: $*"
	echo "$out" | tail -n 5 | sed 's/^/#   /'
	rc=1
}

# Which crc32c the module computes with (libcrc32c took the crypto API's
# best when it loaded): the driver with more than its own reference.
crc=$(awk '/^name/ { n = $3 } /^driver/ { d = $3 } /^refcnt/ { if (n == "crc32c" && $3 > 1) print d }' \
	/proc/crypto | head -n 1)
# And which of it and lib/crc32.c's tables the module measured faster.
sel=$(dmesg | sed -n 's/.*vmpagefile: crc32c: //p' | tail -n 1)
echo "# crc32c: the crypto API's driver is ${crc:-unknown}; the module measured: ${sel:-nothing}"
echo "BENCH-JSON-CRC {\"crc32c_driver\":\"${crc:-unknown}\",\"module\":\"$sel\"}"

# 1-3, 5 (memory): the benchmark program, on the block device...
echo "== page file on a block device (/dev/vda)"
vmpf-bench /dev/vda "$MIB" "$REPS" "$FAULTS" | sed 's/^BENCH-JSON /BENCH-JSON-BLOCK /' || rc=1

# ...and on a file of an ext2 filesystem on the same disk, past the raw part.
echo "== page file on a file (ext2 on the same disk)"
fmib=$((MIB + MIB / 512 + 4))
sectors=$(($(cat /sys/block/vda/size) - AMIB * 2048))
if dmsetup create benchfs --table "0 $sectors linear /dev/vda $((AMIB * 2048))" &&
   mke2fs -q /dev/mapper/benchfs >/dev/null 2>&1 && mkdir -p /mnt &&
   mount -t ext4 /dev/mapper/benchfs /mnt &&
   dd if=/dev/zero of=/mnt/pagefile bs=1M count=$fmib 2>/dev/null && sync; then
	vmpf-bench /mnt/pagefile "$MIB" "$REPS" "$FAULTS" |
		sed 's/^BENCH-JSON /BENCH-JSON-FILE /' || rc=1
	umount /mnt
else
	out="" fail "cannot make the file target"
fi
dmsetup remove benchfs 2>/dev/null

# 4. Switch-over against guest size: the same dirtying working set in each
# guest; pause-to-commit should follow the final dirty set, not RAM size.
# --downtime 1: switch over on convergence (at most 256 dirty pages), not
# as soon as the estimate fits 300 ms, so that final rounds compare.
echo "== switch-over (pause to commit), 2 vCPUs dirtying the same 4 MiB at 4000 pages/s"
js=""
for mib in 64 256 1024; do
	[ "$mib" -le "$SWMAX" ] || continue
	: > /tmp/sw.ns
	: > /tmp/sw.fp
	r=0
	while [ $r -lt "$REPS" ]; do
		r=$((r + 1))
		out=$(vmpf-vm --ram ${mib}M --vcpus 2 --working-set 4M --rate 4000 --seconds 0.5 \
			--downtime 1 --migrate-to /dev/vda --json 2>&1)
		if ! echo "$out" | grep -q '"committed":true'; then
			fail "switch-over run of a $mib MiB guest failed"
			continue
		fi
		json switchover_ns >> /tmp/sw.ns
		json final_pages >> /tmp/sw.fp
	done
	set -- $(stats < /tmp/sw.ns) $(stats < /tmp/sw.fp)
	awk -v m="$mib" -v a="$1" -v b="$2" -v c="$3" -v f="$4" 'BEGIN {
		printf "  %5d MiB guest  %8.1f ms [%.1f-%.1f], final round %d pages\n",
			m, a / 1e6, b / 1e6, c / 1e6, f }'
	js="$js${js:+,}{\"mib\":$mib,\"switchover_ns\":$1,\"switchover_ns_min\":$2,\"switchover_ns_max\":$3,\"final_pages\":$4}"
	echo "$mib $1" >> /tmp/sw.all
done
if [ -s /tmp/sw.all ]; then
	awk 'NR == 1 { s = $2; sm = $1 } { l = $2; lm = $1 } END {
		if (s > 0) printf "  ratio %d MiB / %d MiB: %.2f (goal <= 1.2)\n", lm, sm, l / s }' /tmp/sw.all
fi
echo "BENCH-JSON-SWITCHOVER [$js]"

# 5. Guest slowdown: the guest's own store rate while it runs alone and
# while pre-copy runs (1 vCPU, so a guest CPU is left for the copy thread),
# with KVM clearing the dirty log at each harvest, with manual protection
# (re-protected in 2 MiB groups just before each is copied), and with
# manual protection and initially-set; and how many faults KVM's MMU took
# during pre-copy (pf_taken; pf_fast: write-protection faults fixed on the
# fast path).
gmib=256
[ "$SWMAX" -ge 256 ] || gmib=64
echo "== guest slowdown during pre-copy: a $gmib MiB guest storing to $((gmib / 4)) MiB as fast as it can"
js=""
for mode in auto manual initset; do
	flag=
	[ $mode = manual ] && flag=--manual-protect
	[ $mode = initset ] && flag=--initially-set
	: > /tmp/sl
	: > /tmp/pft
	: > /tmp/pff
	r=0
	while [ $r -lt "$REPS" ]; do
		r=$((r + 1))
		out=$(vmpf-vm --ram ${gmib}M --vcpus 1 --working-set $((gmib / 4))M --seconds 2 --max-rounds 4 \
			$flag --migrate-to /dev/vda --json 2>&1)
		if ! echo "$out" | grep -q '"committed":true'; then
			fail "slowdown run ($mode) failed"
			continue
		fi
		a=$(json stores_per_s)
		d=$(json precopy_stores_per_s)
		awk -v a="$a" -v d="$d" 'BEGIN { if (a > 0) printf "%.3f\n", d / a }' >> /tmp/sl
		# Faults per second of pre-copy (the rounds before the final one):
		# the modes' rounds do not last equally long.
		pns=$(echo "$out" | grep -o '"ns":[0-9]*' | sed 's/"ns"://' | sed '$d' |
			awk '{ s += $1 } END { print s + 0 }')
		awk -v f="$(json kvm_pf_taken)" -v ns="$pns" 'BEGIN { if (ns > 0) printf "%.0f\n", f * 1e9 / ns }' >> /tmp/pft
		awk -v f="$(json kvm_pf_fast)" -v ns="$pns" 'BEGIN { if (ns > 0) printf "%.0f\n", f * 1e9 / ns }' >> /tmp/pff
	done
	set -- $(stats < /tmp/sl) $(stats < /tmp/pft) $(stats < /tmp/pff)
	name="dirty log cleared at each harvest"
	[ $mode = manual ] && name="manual protection, 2 MiB groups"
	[ $mode = initset ] && name="the same, initially-set"
	printf "  %-34s store rate during pre-copy / alone: %s [%s-%s]; KVM faults/s %s [%s-%s], fast path %s\n" \
		"$name" "$1" "$2" "$3" "$4" "$5" "$6" "$7"
	js="$js${js:+,}\"$mode\":{\"rate_ratio\":$1,\"rate_ratio_min\":$2,\"rate_ratio_max\":$3,\"kvm_pf_per_s\":$4,\"kvm_pf_fast_per_s\":$7}"
done
echo "BENCH-JSON-SLOWDOWN {$js}"

# 6. A guest that out-dirties its storage (dm-delay holds each request of
# the page file 20 ms: about 12 MB/s), with and without the throttle the
# session asks for: rounds, final round, switch-over, guest store rate.
echo "== a guest dirtying 8 MiB at 8000 pages/s into slow storage (20 ms a request)"
js=""
if echo "0 $((AMIB * 2048)) delay /dev/vda 0 20" | dmsetup create benchslow; then
	# history: the same guest again, starting with the throttle the
	# previous (throttled) migration recorded in the page file.
	for mode in none throttle history; do
		flag=
		[ $mode = throttle ] && flag=--throttle
		[ $mode = history ] && flag="--throttle --history /dev/mapper/benchslow"
		out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 8M --rate 8000 --seconds 1 \
			--target-pages 1 --max-rounds 20 $flag --migrate-to /dev/mapper/benchslow \
			--json 2>&1)
		if ! echo "$out" | grep -q '"committed":true'; then
			fail "the slow-storage run ($mode) failed"
			continue
		fi
		set -- "$(json rounds)" "$(json final_pages)" "$(json switchover_ns)" \
			"$(json throttle_max)" "$(json stores_per_s)" "$(json precopy_stores_per_s)"
		awk -v m="$mode" -v r="$1" -v f="$2" -v s="$3" -v t="$4" -v a="$5" -v d="$6" 'BEGIN {
			printf "  %-9s %3d rounds, final round %5d pages, switch-over %7.1f ms, throttle up to %2d %%, store rate during pre-copy / alone %.3f\n",
				m, r, f, s / 1e6, t, (a > 0 ? d / a : 0) }'
		js="$js${js:+,}\"$mode\":{\"rounds\":$1,\"final_pages\":$2,\"switchover_ns\":$3,\"throttle_max\":$4,\"stores_per_s\":$5,\"precopy_stores_per_s\":$6}"
	done
	dmsetup remove benchslow
else
	out="" fail "no dm-delay"
fi
echo "BENCH-JSON-CONVERGE {$js}"

# 7. A guest that is 90 % zero pages: what pre-copy writes, and how long.
echo "== a 64 MiB guest, 90 % zero pages"
out=$(vmpf-vm --ram 64M --working-set 6553K --rate 4000 --seconds 0.3 \
	--migrate-to /dev/vda --json 2>&1)
if echo "$out" | grep -q '"committed":true'; then
	set -- $(echo "$out" | sed -n 's/.*{"round":0,"dirty":\([0-9]*\),"written":\([0-9]*\),"zero":\([0-9]*\),"ns":\([0-9]*\)}.*/\1 \2 \3 \4/p')
	bw=$(json bytes_written)
	ns=$(echo "$out" | grep -o '"ns":[0-9]*' | sed 's/"ns"://' | awk '{ s += $1 } END { print s + 0 }')
	awk -v d="$1" -v w="$2" -v z="$3" -v t="$4" -v bw="$bw" -v ns="$ns" 'BEGIN {
		printf "  round 0: %d of %d pages zero, %d written, %.1f ms; all rounds: %.1f ms, %.1f MB written (%.0f %% of RAM)\n",
			z, d, w, t / 1e6, ns / 1e6, bw / 1e6, 100 * bw / 67108864 }'
	echo "BENCH-JSON-ZERO {\"ram_bytes\":67108864,\"round0_pages\":$1,\"round0_zero\":$3,\"round0_ns\":$4,\"precopy_ns\":$ns,\"bytes_written\":$bw}"
else
	fail "the 90 % zero guest did not migrate"
fi

# 8. Same-host handover (vmpf-ctl handover): pause to resume in the new VMM
# for a 64 MiB and a 1 GiB guest in a memfd; nothing of RAM is copied, so
# the ratio should stay near 1.
echo "== same-host handover (pause to resume), 2 vCPUs dirtying 4 MiB at 4000 pages/s"
js="" ho0=""
for mib in 64 1024; do
	[ "$mib" -le "$SWMAX" ] || continue
	: > /tmp/ho.ns
	r=0
	while [ $r -lt "$REPS" ]; do
		r=$((r + 1))
		vmpf-vm --memfd --ram ${mib}M --vcpus 2 --working-set 4M --rate 4000 --handover \
			--seconds 60 --json > /tmp/ho.old 2>&1 &
		old=$!
		i=0
		while [ ! -S /run/vmpf-vm/$old.sock ] && [ $i -lt 300 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		out=$(vmpf-ctl handover --pid $old -- vmpf-vm --seconds 0.2 --json 2>&1)
		wait $old
		if ! echo "$out" | grep -q '"taken_over":true'; then
			fail "handover of a $mib MiB guest failed"
			continue
		fi
		json handover_ns >> /tmp/ho.ns
	done
	set -- $(stats < /tmp/ho.ns)
	awk -v m="$mib" -v a="$1" -v b="$2" -v c="$3" 'BEGIN {
		printf "  %5d MiB guest  %8.1f ms [%.1f-%.1f]\n", m, a / 1e6, b / 1e6, c / 1e6 }'
	js="$js${js:+,}{\"mib\":$mib,\"handover_ns\":$1,\"handover_ns_min\":$2,\"handover_ns_max\":$3}"
	[ -n "$ho0" ] && awk -v a="$ho0" -v b="$1" -v m="$mib" 'BEGIN {
		if (a > 0) printf "  ratio %d MiB / 64 MiB: %.2f (goal <= 1.2)\n", m, b / a }'
	ho0=${ho0:-$1}
done
echo "BENCH-JSON-HANDOVER [$js]"

# 9. Time to first instruction of a lazy restore: from RESTORE_OPEN to the
# vCPUs running (vmpf-vm --restore, no prefetch), 64 MiB against 1 GiB.
echo "== lazy restore: RESTORE_OPEN to the guest running, no prefetch"
js="" r0=""
for mib in 64 1024; do
	[ "$mib" -le "$SWMAX" ] || continue
	out=$(vmpf-vm --ram ${mib}M --vcpus 2 --working-set 4M --rate 4000 --seconds 0.3 \
		--downtime 1 --migrate-to /dev/vda --json 2>&1)
	if ! echo "$out" | grep -q '"committed":true'; then
		fail "migrating a $mib MiB guest for the restore figure failed"
		continue
	fi
	: > /tmp/ttfi.ns
	r=0
	while [ $r -lt "$REPS" ]; do
		r=$((r + 1))
		out=$(vmpf-vm --restore /dev/vda --no-prefetch --seconds 0.2 --json 2>&1)
		json resume_ns >> /tmp/ttfi.ns
	done
	set -- $(stats < /tmp/ttfi.ns)
	awk -v m="$mib" -v a="$1" -v b="$2" -v c="$3" 'BEGIN {
		printf "  %5d MiB guest  %8.1f ms [%.1f-%.1f]\n", m, a / 1e6, b / 1e6, c / 1e6 }'
	js="$js${js:+,}{\"mib\":$mib,\"resume_ns\":$1,\"resume_ns_min\":$2,\"resume_ns_max\":$3}"
	[ -n "$r0" ] && awk -v a="$r0" -v b="$1" -v m="$mib" 'BEGIN {
		if (a > 0) printf "  ratio %d MiB / 64 MiB: %.2f (goal <= 1.2)\n", m, b / a }'
	r0=${r0:-$1}
done
echo "BENCH-JSON-RESUME [$js]"
echo "VMPF-BENCH-END $rc"
