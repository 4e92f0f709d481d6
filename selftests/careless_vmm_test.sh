#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A VMM that breaks the rules of a migration mid-pre-copy (busybox sh, in
# the test guest): it changes its memslots, harvests the dirty log or the
# dirty rings itself, adds SMM memslots, or combines the dirty ring with
# initially-set, or lets its vCPUs run through the switch-over.  Real VMMs
# do these things (QEMU remaps firmware windows,
# reaps rings, reads logs for VGA).  Each case ends in one of two ways,
# never a third: a committed image that verifies page by page, or a failed
# migration that says why in a sentence, an uncommitted page file, and a
# VM that keeps running.  Prints TAP.
TAP_PREFIX=careless
. "$(dirname "$0")/tap.sh"
t=$(mktemp -d)
BLK=/dev/ram0
dmesg0=$(dmesg | wc -l)

echo "TAP version 13"
echo "1..14"

# careless WHAT [vmpf-vm options]: a dirtying VM migrating while its VMM
# does WHAT 0.3 s into pre-copy (":0": before attach); then finish is asked
# for.  Sets $rc (the VMM's), $out, $fin (vmpf-ctl finish's output), $info.
careless() {
	what=$1
	shift
	mark=$(dmesg | wc -l)
	vmpf-vm --ram 16M --vcpus 2 --working-set 2M --rate 4000 --seconds 0.1 \
		--wait-request --migrate-to $BLK --checksums $t/sums --json \
		--misbehave "$what" "$@" > $t/out 2>&1 &
	pid=$!
	wait_for $t/out 'misbehaved\|failed\|vmpf-vm: VMPF_IOC'
	sleep 0.5	# a harvest or two after it
	fin=$(vmpf-ctl finish --pid $pid 2>&1)
	wait $pid; rc=$?
	out=$(cat $t/out)
	info=$(vmpf-ctl info $BLK 2>&1)
}
# committed NAME: the migration committed and the image verifies.
committed() {
	r=$(vmpf-vm --load-pagefile $BLK --verify $t/sums --seconds 0.1 --json 2>&1)
	if [ $rc = 0 ] && has "$out" 'misbehaved' && has "$out" '"committed":true' &&
	   has "$r" '"verified_pages_mismatched":0'; then
		ok "$1"
	else notok "$1" "vmm rc=$rc" "$out" "finish: $fin" "restore: $r"; fi
}
# recopied NAME: a memslot change the session may see half done (logging
# off for an instant: it fails, saying so) or done (the slots as they
# were: it copies every page again, in a later round, and commits).
recopied() {
	if [ $rc = 0 ]; then
		# the kernel log says the session started copying everything again
		if dmesg | tail -n +$((mark + 1)) | grep -q "memslots changed under the migration"; then
			committed "$1"
		else notok "$1" "committed without copying everything again" "$out"; fi
	else
		refused "$1" "changed memslot [01] during the migration"
	fi
}
# refused NAME SENTENCE: the migration failed saying SENTENCE, the page
# file is not committed, the guest ran on (its memory still follows its
# pattern).
refused() {
	if [ $rc = 1 ] && has "$out" "$2" && has "$out" '"pattern_errors":0' &&
	   has "$info" "committed  no"; then
		ok "$1"
	else notok "$1" "vmm rc=$rc (want 1), wanted: $2" "$out" "finish: $fin" "$info"; fi
}

# 1. Logging turned off and on again on every slot: KVM dropped the log
# meanwhile; the slots match again, so the regions are copied again whole
# (or, if a harvest fell in the instant logging was off, the migration
# fails saying so).
careless slot-toggle
recopied slot_toggled_recopied

# 2. Logging turned off and left off: pages written since were never logged.
# (Seen in pre-copy, or at the switch-over if round 0 is still running.)
careless slot-unlog
refused slot_unlogged_fails "changed memslot 0 during the migration.*the VM \(keeps running\|resumes\)"

# 3. Deleted and re-created exactly as before (vCPUs paused meanwhile).
careless slot-recreate
recopied slot_recreated_recopied

# 4. The VMM reads the dirty log itself (no manual protection: that clears
# it): the session cannot trust what is left.
careless harvest
refused foreign_harvest_fails "somebody else harvested or cleared the dirty log of memslot"

# 5. The same with manual protection, as QEMU runs: a read takes nothing.
careless harvest --manual-protect
committed foreign_read_manual_protect_harmless

# 6. The VMM reaps the dirty rings itself.
careless ring-harvest --dirty-ring 4096
refused foreign_ring_harvest_fails "somebody else harvested vCPU [0-9]*'s dirty ring"

# 7. Memslot changes with the dirty ring: as with the bitmap.
careless slot-toggle --dirty-ring 4096
recopied ring_slot_toggled_recopied

# 8. A VM with SMM memslots (address space 1) is refused at attach.
careless smm:0
if [ $rc = 1 ] && has "$out" "uses SMM.*-machine smm=off" && ! has "$out" '"committed":true'; then
	ok smm_refused_at_attach
else notok smm_refused_at_attach "vmm rc=$rc" "$out"; fi

# 9. SMM memslots added mid-pre-copy fail the migration.
careless smm
refused smm_added_fails "memslots in another address space (SMM)"

# 10. The dirty ring with initially-set is refused at attach.
careless slot-toggle:9 --dirty-ring 4096 --initially-set
if [ $rc = 1 ] && has "$out" "dirty ring with KVM_DIRTY_LOG_INITIALLY_SET" &&
   ! has "$out" '"committed":true'; then
	ok ring_initially_set_refused
else notok ring_initially_set_refused "vmm rc=$rc" "$out"; fi

# 11. The page through which the session hands KVM its arguments cannot be
# made writable or written by the VMM (mprotect, /proc/self/mem), moved
# (mremap) or handed to a child (MADV_DOFORK).
careless scribble --manual-protect
committed args_page_not_writable

# 12. The VMM keeps marking every entry of its dirty rings dirty (they are
# mapped writable in it): the session's walk of a ring is bounded by what
# KVM pushed, so it neither spins nor takes garbage; the marks overwrite
# the session's hand-backs, which it sees as entries taken from it.
careless ring-spin --dirty-ring 4096
if [ $rc = 0 ] && has "$out" 'misbehaved' && has "$out" '"committed":true'; then
	r=$(vmpf-vm --load-pagefile $BLK --verify $t/sums --seconds 0.1 --json 2>&1)
	if has "$r" '"verified_pages_mismatched":0'; then
		ok ring_spin_bounded
	else notok ring_spin_bounded "committed, but: $r"; fi
else
	refused ring_spin_bounded "harvested vCPU [0-9]*'s dirty ring"
fi

# 13. The VMM lets its vCPUs run on through FINISH (it resumes them once
# the checksums and device state are taken, and calls FINISH once they
# store again): the guest writes pages the final round may not see.  A
# vCPU inside KVM_RUN at FINISH refuses it (EBUSY: its mutex is taken);
# one that ran by the commit moved KVM's exit count: refused too.
vmpf-vm --ram 16M --vcpus 2 --working-set 2M --rate 0 --seconds 0.1 \
	--migrate-to $BLK --checksums $t/sums --json --misbehave finish-running > $t/out 2>&1
rc=$?
out=$(cat $t/out) info=$(vmpf-ctl info $BLK 2>&1) fin=
refused finish_while_running_fails "a vCPU is running (inside KVM_RUN)\|the guest ran during the switch-over ([0-9]* VM exits)\|vCPU [0-9]* was running at the commit"

# 14. After all that the module holds nothing and the kernel is clean.
v=$(vmpf-ctl version --json 2>&1)
new=$(dmesg | tail -n +$((dmesg0 + 1)) | grep 'BUG\|WARNING\|Call Trace')
if has "$v" '"sessions":0' && [ -z "$new" ]; then
	ok nothing_left
else notok nothing_left "$v" "$new"; fi

rm -rf $t
[ $fails = 0 ]
