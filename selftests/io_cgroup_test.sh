#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Page-file I/O is the VMM's: the session's worker writes the page file in
# the kernel, yet an io.max on the VMM's cgroup v2 must limit it, as it
# limits the VMM's own I/O.  Round 0 of the same guest is timed without a
# limit and with io.max wbps=4 MiB/s on the RAM disk, in the same boot; the
# limited migration still commits and verifies.  (Rates are read from the
# guest's own clock, which io.max also uses.)  Prints TAP (busybox sh).
TAP_PREFIX=iocg
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..2"
CG=/sys/fs/cgroup
skip_all() {
	echo "ok 1 iocg.io_max_limits_precopy # SKIP $1"
	echo "ok 2 iocg.limited_migration_verifies # SKIP $1"
	exit 0
}
grep -q " $CG cgroup2 " /proc/mounts || mount -t cgroup2 none $CG 2>/dev/null ||
	skip_all "no cgroup v2"
echo +io > $CG/cgroup.subtree_control 2>/dev/null || skip_all "no io controller"
t=$(mktemp -d)
VCG=$CG/vmpf-io
mkdir -p $VCG
PF=/dev/ram0
DEV=$(cat /sys/block/ram0/dev)
LIMIT=4194304

# round0 IOMAX: migrate a guest from inside $VCG with io.max IOMAX; sets
# $rc, $out and $kbs, round 0's write rate in KiB/s.
round0() {
	echo "$DEV $1" > $VCG/io.max
	vmpf-vm --ram 16M --vcpus 2 --working-set 8M --rate 2000 --seconds 0.1 \
		--no-start --wait-request --migrate-to $PF --checksums $t/sums \
		--json > $t/out 2>&1 &
	pid=$!
	wait_for $t/out attached
	echo $pid > $VCG/cgroup.procs
	vmpf-ctl start --pid $pid > /dev/null 2>&1
	i=0
	while [ $i -lt 300 ] && ! vmpf-ctl status --pid $pid --json 2>/dev/null |
	      grep -q '"nr_rounds":[1-9]'; do
		sleep 0.1
		i=$((i + 1))
	done
	vmpf-ctl finish --pid $pid > /dev/null 2>&1
	wait $pid; rc=$?
	out=$(cat $t/out)
	r0=$(echo "$out" | sed -n 's/.*"round_stats":\[{"round":0,"dirty":[0-9]*,"written":\([0-9]*\),"zero":[0-9]*,"ns":\([0-9]*\)}.*/\1 \2/p')
	w=${r0% *} ns=${r0#* }
	kbs=0
	[ -n "$r0" ] && [ "$ns" -gt 0 ] && kbs=$((w * 4 * 1000000000 / ns))
}

round0 "wbps=max"
free_kbs=$kbs free_out=$out
round0 "wbps=$LIMIT"
echo "# round 0: $free_kbs KiB/s without a limit, $kbs KiB/s with io.max wbps=$LIMIT"
if [ "$kbs" -gt 0 ] && [ $((kbs * 1024)) -le $((LIMIT * 3 / 2)) ] &&
   [ $((kbs * 2)) -lt "$free_kbs" ]; then
	ok io_max_limits_precopy
else notok io_max_limits_precopy "limited: $kbs KiB/s, free: $free_kbs KiB/s" \
	"$out" "$free_out"; fi

r=$(vmpf-vm --load-pagefile $PF --verify $t/sums --seconds 0.1 --json 2>&1)
if [ $rc = 0 ] && has "$out" '"committed":true' && has "$r" '"verified_pages_mismatched":0'; then
	ok limited_migration_verifies
else notok limited_migration_verifies "rc=$rc" "$out" "$r"; fi

echo "$DEV wbps=max" > $VCG/io.max
rmdir $VCG 2>/dev/null
rm -rf $t
[ $fails = 0 ]
