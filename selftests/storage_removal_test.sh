#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The page file's storage disappearing mid-migration: a scsi_debug disk
# deleted (echo 1 > /sys/block/sdX/device/delete) while the module holds it
# open, on either side.  Unlike dm's error target, a deleted disk is really
# gone: its gendisk is dead, its capacity 0, and only the references that
# open files hold keep it (and the scsi_debug module) alive.
#   1. source, during pre-copy: the migration fails with a clear error, the
#      VM runs on with its memslots as they were, nothing is committed;
#   2. source, at the switch-over: finish fails, the VM resumes;
#   3. destination, lazy restore with faults only: a vCPU touching a page
#      that was not resident gets EFAULT from KVM_RUN, the log names it;
#   4. destination, with the prefetch: it marks the rest bad and ends.
# After each one: no warning or oops, the module's sessions are gone, and
# scsi_debug can be unloaded, which it cannot while anything (the module's
# reference to the page file included) still holds the deleted disk.
# Each case loads scsi_debug afresh, so each starts from a zeroed disk.
# Prints TAP (busybox sh).
TAP_PREFIX=removal
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..9"
SD=/lib/modules/scsi_debug.ko
if ! [ -f $SD ] || ! [ -f /lib/modules/sd_mod.ko ]; then
	for i in 1 2 3 4 5 6 7 8 9; do echo "ok $i removal.case$i # SKIP no scsi_debug in this initramfs"; done
	exit 0
fi

t=$(mktemp -d)
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# scsi_disk: the name (sda, ...) of scsi_debug's disk once sd has probed it
# (asynchronously) and devtmpfs has made its node; 10 s at most.
scsi_disk() {
	i=0
	while [ $i -lt 100 ]; do
		for d in /sys/block/sd*; do
			[ -f "$d/device/model" ] && grep -q scsi_debug "$d/device/model" &&
				[ "$(cat "$d/size")" -gt 0 ] && [ -b "/dev/${d##*/}" ] &&
				{ echo "${d##*/}"; return 0; }
		done
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# load_disk: scsi_debug with one 64 MiB disk (room for a 16 MiB guest's
# page file); sets DISK and PF.  dmesg is cleared: each case reads its own.
load_disk() {
	dmesg -c > /dev/null
	insmod $SD dev_size_mb=64 num_tgts=1 max_luns=1 || return 1
	DISK=$(scsi_disk) || return 1
	PF=/dev/$DISK
}

# remove_disk: the hot removal.  Synchronous: sd's remove has run (the
# gendisk is dead) when the write returns.
remove_disk() {
	echo 1 > /sys/block/$DISK/device/delete
}

# rescan: bring the deleted disk back (scsi_debug keeps its data in the
# host's store, not the disk), to read what the failed migration left.
# Only once nothing holds the old one any more.  Sets DISK and PF.
rescan() {
	for h in /sys/class/scsi_host/host*; do
		grep -q scsi_debug $h/proc_name 2>/dev/null && echo "- - -" > $h/scan
	done
	DISK=$(scsi_disk) || return 1
	PF=/dev/$DISK
}

# The taint bits a warning, an oops, a bad page or a soft lockup set.  The
# value is not 0 here: vmpagefile is an out-of-tree (and unsigned) module.
taint0=$(cat /proc/sys/kernel/tainted)

# clean NAME: after a case, once its processes have exited: the kernel
# stayed healthy, vmpagefile's sessions are gone (its own descriptor is
# vmpf-ctl's), and scsi_debug unloads.  fput() from a kernel thread is
# deferred to a workqueue, so the last two get a few seconds.
clean() {
	c0=$(now)
	i=0
	while [ $i -lt 50 ]; do
		v=$(vmpf-ctl version --json 2>&1)
		has "$v" '"open_files":1,"sessions":0,' && break
		sleep 0.1
		i=$((i + 1))
	done
	i=0
	while [ $i -lt 50 ]; do
		rmmod scsi_debug 2> $t/rmmod && break
		sleep 0.1
		i=$((i + 1))
	done
	rc=$?
	taint=$(cat /proc/sys/kernel/tainted)
	d=$(dmesg | grep -E 'BUG:|WARNING:|Call Trace|Oops|general protection|refcount_t')
	if has "$v" '"open_files":1,"sessions":0,' && [ $rc = 0 ] && [ "$taint" = "$taint0" ] &&
	   [ -z "$d" ] && ! test -d /sys/module/scsi_debug; then
		echo "# $1: sessions gone and scsi_debug unloaded after $(since $c0) s"
		ok "$1"
	else notok "$1" "$v" "rmmod scsi_debug: $(cat $t/rmmod) (refcnt $(cat /sys/module/scsi_debug/refcnt 2>/dev/null))" \
		"tainted $taint (was $taint0)" "$d"; fi
}

# 0. The boot loaded scsi_debug with its defaults (one 8 MiB disk) from
# load.order; nothing uses it.  Unload it so that each case has its own.
# Wait for sd's asynchronous probe of that disk to end first.
scsi_disk > /dev/null
if rmmod scsi_debug 2> $t/rmmod && load_disk; then
	ok scsi_debug_reloaded
else notok scsi_debug_reloaded "$(cat $t/rmmod)" "$(ls /sys/block)"; fi

# 1. Deleted during pre-copy.  A committed image first, so that "committed
# no" afterwards shows that the new migration invalidated it.  Then a guest
# dirtying faster than the convergence target keeps the rounds going; the
# disk goes after round 2.  The writes fail: ENODEV from a request that
# races with the removal, ENOSPC once the dead disk's capacity is 0; the
# module does not retry either (it retries EIO and the like for 3.4 s).
# The migration fails.
t0=$(now)
m=$(vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.2 --migrate-to $PF 2>&1)
vmpf-vm --ram 16M --vcpus 2 --working-set 4M --seconds 0.1 --target-pages 1 \
	--max-rounds 10000 --wait-request --migrate-to $PF --json > $t/o1 2>&1 &
pid=$!
wait_for $t/o1 attached
i=0
while [ $i -lt 100 ]; do
	r=$(vmpf-ctl status --pid $pid --json 2>/dev/null | sed -n 's/.*"nr_rounds":\([0-9]*\).*/\1/p')
	[ "${r:-0}" -ge 2 ] && break
	sleep 0.1
	i=$((i + 1))
done
remove_disk
t1=$(now)
wait $pid; rc=$?
echo "# precopy: the migration failed $(since $t1) s after the removal"
out=$(cat $t/o1)
echo "$out" | grep "migration failed" | sed 's/^/# /'
rescan
info=$(vmpf-ctl info $PF 2>&1)
# The removal hits a round's data pages, the page table's blocks as they
# are written, or a table block the source reads back to change it (a
# working set over more blocks than its cache holds): each says which.
if has "$m" "migrated into" && [ "${r:-0}" -ge 2 ] && [ $rc = 1 ] &&
   { has "$out" "migration failed: writing [0-9]* pages at offset [0-9]* of the page file failed (error -[0-9]*); the VM keeps running" ||
     has "$out" "migration failed: writing the page table failed (error -[0-9]*); the VM keeps running" ||
     has "$out" "migration failed: reading back the page table failed (error -[0-9]*); the VM keeps running"; } &&
   has "$out" '"logging_off":true' && has "$out" '"pattern_errors":0' &&
   [ "$(num "$out" stores)" -gt 0 ] && has "$info" "committed  no"; then
	ok removed_during_precopy
else notok removed_during_precopy "$m" "rounds before the removal: $r" "rc=$rc" "$out" "$info" \
	"$(dmesg | grep -E 'vmpagefile|sd ' | tail -n 5)"; fi
echo "# case 1 took $(since $t0) s"
clean clean_after_precopy

# 2. Deleted at the switch-over: the guest is idle, so pre-copy has nothing
# more to write once it is ready; the finish asked for right after the
# removal is the first to write (the VMM's marked page, the table, the
# device state, the commit) and fails.  The VM resumes.
load_disk
t0=$(now)
vmpf-vm --ram 16M --idle --seconds 0.1 --wait-request --migrate-to $PF --json > $t/o2 2>&1 &
pid=$!
wait_for $t/o2 attached
i=0
while [ $i -lt 100 ]; do
	s=$(vmpf-ctl status --pid $pid 2>/dev/null)
	has "$s" "converged" && break
	sleep 0.1
	i=$((i + 1))
done
remove_disk
t1=$(now)
f=$(vmpf-ctl finish --pid $pid 2>&1); frc=$?
wait $pid; rc=$?
echo "# switchover: finish failed $(since $t1) s after the removal"
out=$(cat $t/o2)
echo "$out" | grep "switch-over failed" | sed 's/^/# /'
rescan
info=$(vmpf-ctl info $PF 2>&1)
if has "$s" "converged" && [ $frc = 1 ] && has "$f" "phase      failed" &&
   has "$f" "the migration did not commit" &&
   [ $rc = 1 ] && has "$out" "switch-over failed: .*; the VM resumes" &&
   ! has "$out" "too small" &&
   has "$out" '"logging_off":true' && has "$out" '"pattern_errors":0' &&
   has "$info" "committed  no"; then
	ok removed_at_switchover
else notok removed_at_switchover "status before: $s" "finish rc=$frc" "$f" "vmm rc=$rc" "$out" "$info" \
	"$(dmesg | grep -E 'vmpagefile|sd ' | tail -n 5)"; fi
echo "# case 2 took $(since $t0) s"
clean clean_after_switchover

# 3. Deleted under a lazy restore, faults only.  One vCPU at 200 pages a
# second goes through a 4 MiB working set (1024 data pages; the rest are
# zero pages, which need no read): after a second it has faulted some in
# and is still going.  The next page it touches cannot be read (ENODEV at
# once, or EIO after 3.4 s of retries: a dead disk of capacity 0 reads as
# empty, which the module counts as EIO; which one is a race): never mapped,
# KVM_RUN fails with EFAULT, the log names the page.  vmpf-vm notices a
# failed vCPU only when its --seconds are over.
load_disk
t0=$(now)
m=$(vmpf-vm --ram 16M --working-set 4M --rate 2000 --seconds 0.3 --migrate-to $PF 2>&1)
vmpf-vm --restore $PF --no-prefetch --rate 200 --seconds 8 > $t/o3 2>&1 &
pid=$!
wait_for $t/o3 restoring
sleep 1
a=$(vmpf-ctl restore --pid $pid --json 2>&1)
remove_disk
t1=$(now)
wait $pid; rc=$?
out=$(cat $t/o3)
log=$(dmesg | grep "restore: page [0-9]*: reading the page file failed (error -[0-9]*); not mapped")
echo "# lazy: the removal returned at uptime $t1; the first retry (if any) and the refused page:"
dmesg | grep -E "reading 1 pages .*retry 1 of|restore: page" | head -n 2 | sed 's/^/# /'
if has "$m" "migrated into" && [ "$(num "$a" demand_pages)" -gt 0 ] &&
   [ "$(num "$a" resident)" -lt "$(num "$a" total_pages)" ] &&
   [ $rc = 1 ] && has "$out" "KVM_RUN: Bad address" && [ -n "$log" ]; then
	ok removed_mid_lazy_restore
else notok removed_mid_lazy_restore "$m" "before: $a" "rc=$rc" "$out" \
	"$(dmesg | grep -E 'vmpagefile|sd ' | tail -n 5)"; fi
echo "# case 3 took $(since $t0) s"
clean clean_after_lazy_restore

# 4. Deleted under a restore whose prefetch runs (slowly, so that it is
# mid-way).  The vCPU is all but idle: at --rate 1 it stores one batch and
# sleeps for seconds, touching nothing more.  The prefetch, let loose after
# the removal, marks what it could not read bad and ends; the status says
# so and names the first bad page.  Then the VMM is killed.
load_disk
t0=$(now)
m=$(vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.3 --migrate-to $PF 2>&1)
vmpf-vm --restore $PF --prefetch-rate 50 --rate 1 --seconds 60 > $t/o4 2>&1 &
pid=$!
wait_for $t/o4 restoring
sleep 1.5
a=$(vmpf-ctl restore --pid $pid --json 2>&1)
remove_disk
t1=$(now)
vmpf-ctl restore --pid $pid --rate 0 > /dev/null 2>&1
i=0
while [ $i -lt 600 ]; do
	b=$(vmpf-ctl restore --pid $pid --json 2>&1)
	has "$b" '"prefetching":false' && break
	sleep 0.1
	i=$((i + 1))
done
echo "# prefetch: it ended $(since $t1) s after the removal"
kill -9 $pid
wait $pid 2> /dev/null
out=$(cat $t/o4)
if has "$m" "migrated into" && [ "$(num "$a" prefetched)" -gt 0 ] && has "$a" '"prefetching":true' &&
   has "$b" '"phase":"running","prefetching":false' && [ "$(num "$b" bad_pages)" -gt 0 ] &&
   [ "$(num "$b" io_errors)" = "$(num "$b" bad_pages)" ] &&
   [ $(( $(num "$b" resident) + $(num "$b" bad_pages) )) = "$(num "$b" total_pages)" ] &&
   has "$b" '"message":"page [0-9]*: reading the page file failed (error -[0-9]*); accesses to it get SIGBUS"' &&
   dmesg | grep -q "restore: page [0-9]*: reading the page file failed (error -[0-9]*); not mapped"; then
	ok removed_mid_prefetch
else notok removed_mid_prefetch "$m" "before: $a" "after: $b" "$out" \
	"$(dmesg | grep -E 'vmpagefile|sd ' | tail -n 5)"; fi
echo "# case 4 took $(since $t0) s"
clean clean_after_prefetch

dmesg -c > /dev/null
rm -rf $t
[ $fails = 0 ]
