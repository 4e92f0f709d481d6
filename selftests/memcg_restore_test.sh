#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A lazy restore under a memory cgroup limit below the guest's size.
# With no swap: the VMM is OOM-killed once, by its own faults; the
# prefetch, which waits for room and does not insist on memory, invokes
# no OOM killer; once the VMM is gone its session stops and is freed, and
# nothing else in the machine is killed.  With swap (/dev/ram1): restored
# memory is ordinary shared memory, so the guest keeps running, swapping,
# while compaction moves its pages, and verifies page for page, as a guest
# booted in that cgroup would; restored in 2 MiB huge pages (--huge) too.
# Prints TAP (busybox sh).
TAP_PREFIX=memcg
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..4"
CG=/sys/fs/cgroup
skip_all() {
	echo "ok 1 memcg.vmm_oom_killed_once # SKIP $1"
	echo "ok 2 memcg.session_freed_no_more_oom # SKIP $1"
	echo "ok 3 memcg.swaps_under_limit # SKIP $1"
	echo "ok 4 memcg.huge_swaps_under_limit # SKIP $1"
	exit 0
}
mkdir -p $CG
grep -q " $CG cgroup2 " /proc/mounts || mount -t cgroup2 none $CG 2>/dev/null ||
	skip_all "no cgroup v2"
echo +memory > $CG/cgroup.subtree_control 2>/dev/null || skip_all "no memory controller"
t=$(mktemp -d)
VCG=$CG/vmpf-mem
mkdir -p $VCG
PF=/dev/ram0

# A 64 MiB guest whose every page holds data.
m=$(vmpf-vm --ram 64M --vcpus 2 --seconds 0.3 --migrate-to $PF --checksums $t/s 2>&1) ||
	echo "# migration failed: $m"
echo 32M > $VCG/memory.max
echo 0 > $VCG/memory.swap.max 2>/dev/null
dmesg -c > /dev/null
# make check's scan of the kernel log leaves out what is between these.
echo "<4>vmpf-test: an OOM kill is expected from here" > /dev/kmsg
sh -c "echo \$\$ > $VCG/cgroup.procs && exec vmpf-vm --restore $PF --verify $t/s --wait-complete --seconds 1" \
	> $t/out 2>&1
rc=$?
kills=$(sed -n 's/^oom_kill \([0-9]*\)/\1/p' $VCG/memory.events)
echo "<4>vmpf-test: no OOM kill is expected from here" > /dev/kmsg
echo "# restore: rc=$rc, oom_kill $kills, $(tail -n 1 $t/out)"
if [ $rc = 137 ] && [ "$kills" = 1 ]; then ok vmm_oom_killed_once
else notok vmm_oom_killed_once "rc=$rc, oom kills $kills" "$(tail -n 3 $t/out)" \
	"$(dmesg | grep -i 'oom\|vmpagefile' | tail -n 5)"; fi

# Five seconds on: the session freed, no OOM killer invoked since the kill.
i=0
while ! has "$(vmpf-ctl version --json 2>&1)" '"open_files":1,"sessions":0,' && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 5
v=$(vmpf-ctl version --json 2>&1)
invoked=$(dmesg | grep -c 'invoked oom-killer')
if has "$v" '"open_files":1,"sessions":0,' && [ "$invoked" -le 1 ] &&
   ! dmesg | grep -q 'no killable processes'; then
	ok session_freed_no_more_oom
else notok session_freed_no_more_oom "$v" "OOM killer invoked $invoked times" \
	"$(dmesg | grep -i 'oom' | tail -n 5)"; fi
echo "# oom killer invoked $invoked time(s); session freed after $((i / 10)).$((i % 10)) s"

# With swap: runs on, swapping; compaction in the middle of its run.
vmstat() { v=$(sed -n "s/^$1 //p" /proc/vmstat); echo "${v:-0}"; }
# The cgroup's most swapped-out memory, in pages, while process $1 runs
# (polled: a kernel without vm event counters, as the debug lane's, has
# no pswpout to count swapping by); waits for it and leaves its status in
# $rc.
swap_peak() {
	local peak=0 cur
	while kill -0 "$1" 2>/dev/null; do
		cur=$(cat $VCG/memory.swap.current 2>/dev/null || echo 0)
		[ "$cur" -le "$peak" ] || peak=$cur
		sleep 0.2
	done
	wait "$1"
	rc=$?
	swpeak=$((peak / 4096))
}
if ! { mkswap /dev/ram1 > /dev/null 2>&1 && swapon /dev/ram1; }; then
	echo "ok 3 memcg.swaps_under_limit # SKIP no swap on /dev/ram1"
	echo "ok 4 memcg.huge_swaps_under_limit # SKIP no swap on /dev/ram1"
else
	echo max > $VCG/memory.swap.max 2>/dev/null
	dmesg -c > /dev/null
	out0=$(vmstat pswpout) mig0=$(vmstat pgmigrate_success)
	out0=${out0:-0} mig0=${mig0:-0}
	sh -c "echo \$\$ > $VCG/cgroup.procs && exec vmpf-vm --restore $PF --verify $t/s --seconds 3 --json" \
		> $t/out 2>&1 &
	pid=$!
	(sleep 2; echo 1 > /proc/sys/vm/compact_memory) &
	swap_peak $pid
	kills=$(sed -n 's/^oom_kill \([0-9]*\)/\1/p' $VCG/memory.events)
	swapped=$(($(vmstat pswpout) - out0)) moved=$(($(vmstat pgmigrate_success) - mig0))
	[ $swapped -gt 0 ] || swapped=$swpeak
	held=$(dmesg | grep -c 'memory cgroup is near its limit')
	echo "# restore with swap: rc=$rc, oom_kill $kills, $swapped pages swapped out," \
		"$moved pages migrated, prefetch waits logged $held"
	if [ $rc = 0 ] && [ "$kills" = 1 ] && [ $swapped -gt 0 ] && [ "$held" = 1 ] &&
	   has "$(cat $t/out)" '"verified_pages_mismatched":0,"pattern_errors":0,'; then
		ok swaps_under_limit
	else notok swaps_under_limit "rc=$rc, oom kills $kills (1 from test 1), swapped $swapped," \
		"prefetch waits logged $held" "$(tail -c 600 $t/out)"; fi

	# The same in huge pages: tmpfs splits a huge page to swap it.
	out0=$(vmstat pswpout)
	f0=$(num "$(vmpf-ctl version --json 2>&1)" huge_fills)
	sh -c "echo \$\$ > $VCG/cgroup.procs && exec vmpf-vm --restore $PF --huge --verify $t/s --seconds 3 --json" \
		> $t/out 2>&1 &
	swap_peak $!
	kills=$(sed -n 's/^oom_kill \([0-9]*\)/\1/p' $VCG/memory.events)
	swapped=$(($(vmstat pswpout) - ${out0:-0}))
	[ $swapped -gt 0 ] || swapped=$swpeak
	f1=$(num "$(vmpf-ctl version --json 2>&1)" huge_fills)
	echo "# in huge pages: rc=$rc, oom_kill $kills, $swapped pages swapped out," \
		"$((${f1:-0} - ${f0:-0})) huge pages filled"
	if [ $rc = 0 ] && [ "$kills" = 1 ] && [ $swapped -gt 0 ] && [ "${f1:-0}" -gt "${f0:-0}" ] &&
	   has "$(cat $t/out)" '"verified_pages_mismatched":0,"pattern_errors":0,'; then
		ok huge_swaps_under_limit
	else notok huge_swaps_under_limit "rc=$rc, oom kills $kills (1 from test 1), swapped $swapped," \
		"huge pages filled ${f0:-?} -> ${f1:-?}" "$(tail -c 600 $t/out)"; fi
	swapoff /dev/ram1
fi
rmdir $VCG
rm -rf $t
[ $fails = 0 ]
