#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Migrations onto storage that fails, with device-mapper's error target
# swapped in under a page file on /dev/ram0: in round 0, in a later round,
# and at the switch-over.  Each time the migration must fail with a clear
# error, the VM must keep running with its memslots as they were, and the
# page file must stay uncommitted.  Then reads failing under a restore, and
# transient failures (dm-flakey: the device fails for a second, then works
# again), which the module retries through: the migration commits, the
# restore completes, both verified.  Prints TAP (busybox sh).
TAP_PREFIX=fault
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..6"
if ! command -v dmsetup >/dev/null || ! dmsetup version >/dev/null 2>&1; then
	for i in 1 2 3 4 5 6; do echo "ok $i fault.case$i # SKIP no dmsetup or device-mapper here"; done
	exit 0
fi

t=$(mktemp -d)
SECTORS=196608				# 96 MiB, room for a 64 MiB guest
GOOD="0 $SECTORS linear /dev/ram0 0"
# The first 2 MiB (header, page table) work, the rest fails.
HALF="0 4096 linear /dev/ram0 0
4096 $((SECTORS - 4096)) error"
BAD="0 $SECTORS error"
PF=/dev/mapper/vmpf-fault

swap() {
	dmsetup suspend vmpf-fault && echo "$1" | dmsetup reload vmpf-fault &&
		dmsetup resume vmpf-fault
}

# 1. Writes fail from round 0 on.  The header and the table, in the first
# 2 MiB, are written; the data pages are not.  The first write to fail is
# one of the pre-copy's two in flight: it is written again synchronously
# (the log says so), fails again, and the migration fails.
echo "$HALF" | dmsetup create vmpf-fault
echo "vmpf-test: storage_fault write_error_in_round0 begins" > /dev/kmsg
out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 1M --rate 2000 --seconds 0.2 \
	--migrate-to $PF --json 2>&1); rc=$?
swap "$GOOD"
info=$(vmpf-ctl info $PF 2>&1)
again=$(dmesg | sed -n '/storage_fault write_error_in_round0 begins/,$p' |
	grep -c "of the page file failed (error -5); writing them again")
if [ $rc = 1 ] && has "$out" "migration failed: writing [0-9]* pages at offset [0-9]* of the page file failed (error -5); the VM keeps running" &&
   [ "$again" -ge 1 ] &&
   has "$out" '"logging_off":true' && has "$out" '"pattern_errors":0' &&
   [ "$(num "$out" stores)" -gt 0 ] && has "$info" "committed  no"; then
	ok write_error_in_round0
else notok write_error_in_round0 "rc=$rc" "$out" "$info" "writes in flight done again: $again"; fi

# 2. Writes fail after some rounds: the guest dirties faster than the
# convergence target, so rounds go on; the device breaks after round 2,
# in a pre-copy round or (if pre-copy ended first) in the final one.
vmpf-vm --ram 16M --vcpus 2 --working-set 4M --seconds 0.1 --target-pages 1 \
	--max-rounds 10000 --wait-request --migrate-to $PF --json > $t/o2 2>&1 &
pid=$!
wait_for $t/o2 attached
i=0
while [ $i -lt 100 ]; do
	r=$(vmpf-ctl status --pid $pid --json 2>/dev/null | sed -n 's/.*"nr_rounds":\([0-9]*\).*/\1/p')
	[ "${r:-0}" -ge 2 ] && break
	sleep 0.1
	i=$((i + 1))
done
swap "$BAD"
vmpf-ctl finish --pid $pid > /dev/null 2>&1
wait $pid; rc=$?
swap "$GOOD"
out=$(cat $t/o2)
info=$(vmpf-ctl info $PF 2>&1)
if [ "${r:-0}" -ge 2 ] && [ $rc = 1 ] &&
   { has "$out" "migration failed: writing .* failed (error -5)" ||
     has "$out" "migration failed: reading back the page table failed (error -5)" ||
     has "$out" "switch-over failed: .*error -5"; } &&
   has "$out" '"logging_off":true' && has "$out" '"pattern_errors":0' &&
   has "$info" "committed  no"; then
	ok write_error_after_rounds
else notok write_error_after_rounds "rounds before the fault: $r" "rc=$rc" "$out" "$info"; fi

# 3. Writes fail at the switch-over: finish fails, the VM resumes.
vmpf-vm --ram 16M --vcpus 2 --working-set 1M --rate 2000 --seconds 0.1 --wait-request \
	--migrate-to $PF --json > $t/o3 2>&1 &
pid=$!
wait_for $t/o3 attached
sleep 0.5
swap "$BAD"
f=$(vmpf-ctl finish --pid $pid 2>&1); frc=$?
wait $pid; rc=$?
swap "$GOOD"
out=$(cat $t/o3)
info=$(vmpf-ctl info $PF 2>&1)
if [ $frc = 1 ] && has "$f" "phase      failed" && has "$f" "the migration did not commit" &&
   [ $rc = 1 ] && has "$out" "switch-over failed: .*; the VM resumes" &&
   has "$out" '"logging_off":true' && has "$out" '"pattern_errors":0' &&
   has "$info" "committed  no"; then
	ok write_error_at_finish
else notok write_error_at_finish "finish rc=$frc" "$f" "vmm rc=$rc" "$out" "$info"; fi

# 4. Reads fail under a restore: the pages behind the failing part are never
# mapped; the vCPU that touches one gets EFAULT from KVM_RUN.
m=$(vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.2 --migrate-to $PF 2>&1)
swap "$HALF"
r=$(vmpf-vm --restore $PF --no-prefetch --seconds 0.3 2>&1); rc=$?
swap "$GOOD"
if [ $rc = 1 ] && has "$r" "KVM_RUN: Bad address" &&
   dmesg | grep -q "restore: page [0-9]*: reading the page file failed (error -5); not mapped"; then
	ok read_error_in_restore
else notok read_error_in_restore "$m" "rc=$rc" "$r" "$(dmesg | tail -n 3)"; fi

# dm-flakey works for UP seconds, fails for a second, and so on, from the
# moment its table is loaded.  flakey UP [N FEATURE...]: load it, remember when.
flakey() {
	up=$1
	shift
	swap "0 $SECTORS flakey /dev/ram0 0 $up 1 $*"
	t0=$(cut -d' ' -f1 /proc/uptime)
}
# until_flakey SECONDS: wait until SECONDS after the table was loaded.
until_flakey() {
	while awk -v t0="$t0" -v s="$1" -v now="$(cut -d' ' -f1 /proc/uptime)" \
		'BEGIN { exit !(now < t0 + s) }'; do
		sleep 0.1
	done
}

# 5. Writes fail for a second during round 0 of a 64 MiB guest whose every
# page is dirty: retried, committed, verified.  Pre-copy starts (and flushes
# the new header) just before the failing second; the switch-over comes in
# the next working period, after the retries (3.4 s at most) are over: a
# cache flush is never retried, so none may fall into the failing second.
flakey 8 1 error_writes
vmpf-vm --ram 64M --vcpus 2 --seconds 0.2 --target-pages 1 --max-rounds 10000 \
	--wait-request --no-start --migrate-to $PF --checksums $t/s5 --json > $t/o5 2>&1 &
pid=$!
wait_for $t/o5 attached
until_flakey 7.6
vmpf-ctl start --pid $pid > /dev/null 2>&1
until_flakey 12.5
st=$(vmpf-ctl status --pid $pid --json 2>&1)
vmpf-ctl finish --pid $pid > /dev/null 2>&1
wait $pid; rc=$?
swap "$GOOD"
out=$(cat $t/o5)
r=$(vmpf-vm --load-pagefile $PF --verify $t/s5 --seconds 0.1 --json 2>&1); vrc=$?
if [ $rc = 0 ] && has "$out" '"committed":true' && [ "$(num "$out" io_retries)" -gt 0 ] &&
   [ "$(num "$st" io_retries)" -gt 0 ] && [ $vrc = 0 ] && has "$r" '"verified_pages_mismatched":0' &&
   dmesg | grep -q "writing [0-9]* pages at offset [0-9]* of the page file failed (error -5); retry 1 of 5"; then
	ok transient_write_errors_retried
else notok transient_write_errors_retried "rc=$rc" "$out" "status: $st" "verify rc=$vrc" "$r" \
	"$(dmesg | grep vmpagefile | tail -n 3)"; fi

# 6. Reads fail for a second under a lazy restore (faults and prefetch at
# once): retried; every page arrives and verifies.
flakey 5
until_flakey 5
r=$(vmpf-vm --restore $PF --verify $t/s5 --wait-complete --seconds 0.1 --json 2>&1); rc=$?
swap "$GOOD"
if [ $rc = 0 ] && has "$r" '"complete":true' && has "$r" '"bad":0' &&
   [ "$(num "$r" io_retries)" -gt 0 ] && has "$r" '"verified_pages_mismatched":0'; then
	ok transient_read_errors_retried
else notok transient_read_errors_retried "rc=$rc" "$r" "$(dmesg | grep vmpagefile | tail -n 3)"; fi

dmesg -c > /dev/null
dmsetup remove vmpf-fault
rm -rf $t
[ $fails = 0 ]
