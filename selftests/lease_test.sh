#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# One owner of an image at a time (busybox sh): the ownership lease a
# restore takes in the page file.  A second restore of a running image is
# refused, and so is a migration into it; a killed VMM lets go at once; a
# host that stops renewing (its storage frozen with dm suspend, as a dead
# or cut-off host) is taken over after the lease's period, and finds out
# when it comes back; --force; a VM that was restored whole can move on
# through the file it came from.  The lease's period is 1 s here (module
# parameter lease_ms).  Prints TAP.
TAP_PREFIX=lease
. "$(dirname "$0")/tap.sh"
t=$(mktemp -d)
BLK=/dev/ram0
P=/sys/module/vmpagefile/parameters

echo "TAP version 13"
echo "1..10"

old_ms=$(cat $P/lease_ms)
echo 1000 > $P/lease_ms
out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 2M --rate 4000 --seconds 0.3 \
	--migrate-to $BLK --checksums $t/s 2>&1) || echo "# migration failed: $out"

# start_owner NAME DEV ARGS...: a slow restore (prefetch 100 pages/s) that
# holds the lease; waits until it does.  Sets $owner.
start_owner() {
	_o=$1 _d=$2
	shift 2
	vmpf-vm --restore "$_d" --prefetch-rate 100 --seconds 30 "$@" > $t/$_o 2>&1 &
	owner=$!
	wait_for $t/$_o restoring
}
lease_of() { vmpf-ctl restore --pid "$1" --json 2>&1 | sed -n 's/.*"lease":"\([a-z]*\)".*/\1/p'; }

# 1. A second restore of an image that a running restore owns is refused,
# with a sentence; vmpf-ctl info names the owner.
start_owner o1 $BLK
r=$(vmpf-vm --restore $BLK --seconds 0.1 2>&1); rc=$?
i=$(vmpf-ctl info $BLK 2>&1)
l=$(lease_of $owner)
if [ $rc = 1 ] && has "$r" "the image is in use" && [ "$l" = reading ] &&
   has "$i" "owner      host .*, pid $owner: restoring"; then
	ok second_restore_refused
else notok second_restore_refused "rc=$rc" "$r" "lease of the first: $l" "$i"; fi

# 2. So is a migration into the page file: it would overwrite pages the
# running restore still reads.
r=$(vmpf-vm --ram 16M --seconds 0.1 --migrate-to $BLK 2>&1); rc=$?
if [ $rc = 1 ] && has "$r" "a restore (on this host or another) still reads" &&
   [ "$(lease_of $owner)" = reading ]; then
	ok migration_into_owned_image_refused
else notok migration_into_owned_image_refused "rc=$rc" "$r"; fi

# 3. A VMM killed with -9 lets go at once: the next restore needs no wait
# for the lease to expire, and restores the committed image.
kill -9 $owner
wait $owner
n0=$(dmesg | grep -c "taking the image over")
r=$(vmpf-vm --restore $BLK --verify $t/s --wait-complete --seconds 0.1 --json 2>&1); rc=$?
if [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0' &&
   [ "$(dmesg | grep -c "taking the image over")" = "$n0" ]; then
	ok killed_owner_lets_go
else notok killed_owner_lets_go "rc=$rc" "$r" "$(dmesg | tail -n 3)"; fi

# 4. An owner that stops renewing: its host's path to the page file is
# frozen (dm suspend), as a crashed or cut-off host's.  Another restore,
# through the device itself, watches the lease for its period, takes the
# image over and restores the committed image; the old owner, back, finds
# it lost its lease.
S=$(blockdev --getsz $BLK)
if dmsetup create vmpf-lease --table "0 $S linear $BLK 0" 2>$t/dm; then
	start_owner o4 /dev/mapper/vmpf-lease
	sleep 0.5
	dmsetup suspend vmpf-lease
	r=$(vmpf-vm --restore $BLK --verify $t/s --wait-complete --seconds 0.1 --json 2>&1); rc=$?
	d=$(dmesg | grep "taking the image over from host" | tail -n 1)
	dmsetup resume vmpf-lease
	i=0
	while [ "$(lease_of $owner)" = reading ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	l=$(lease_of $owner)
	kill -9 $owner
	wait $owner
	if [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0' && [ -n "$d" ] &&
	   [ "$l" = lost ]; then
		ok silent_owner_taken_over_after_lease
	else notok silent_owner_taken_over_after_lease "rc=$rc" "$r" "dmesg: $d" \
		"old owner's lease: $l" "$(dmesg | grep vmpagefile | tail -n 4)"; fi
	dmsetup remove vmpf-lease
else
	skip silent_owner_taken_over_after_lease "no dm-linear: $(cat $t/dm)"
fi

# 5. --force takes a live owner's image at once; the owner finds out.
start_owner o5 $BLK
r=$(vmpf-vm --restore $BLK --force --verify $t/s --wait-complete --seconds 0.1 --json 2>&1); rc=$?
i=0
while [ "$(lease_of $owner)" = reading ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
l=$(lease_of $owner)
kill -9 $owner
wait $owner
if [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0' && [ "$l" = lost ] &&
   dmesg | grep -q "taking the image over from host .* by force"; then
	ok force_takes_over
else notok force_takes_over "rc=$rc" "$r" "old owner's lease: $l"; fi

# 6. A VM restored whole no longer reads the file: a new migration may go
# into it (the VM moving on through the file it came from), and ends the
# restored VM's lease.  A second restore is still refused while it owns it.
vmpf-vm --restore $BLK --seconds 15 > $t/o6 2>&1 &
owner=$!
i=0
while [ "$(lease_of $owner)" != restored ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
l1=$(lease_of $owner)
r1=$(vmpf-vm --restore $BLK --seconds 0.1 2>&1); rc1=$?
r2=$(vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.2 --migrate-to $BLK \
	--checksums $t/s6 2>&1); rc2=$?
i=0
while [ "$(lease_of $owner)" = restored ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
l2=$(lease_of $owner)
kill -9 $owner
wait $owner
r3=$(vmpf-vm --restore $BLK --verify $t/s6 --seconds 0.1 --json 2>&1); rc3=$?
if [ "$l1" = restored ] && [ $rc1 = 1 ] && has "$r1" "the image is in use" && [ $rc2 = 0 ] &&
   [ "$l2" = lost ] && [ $rc3 = 0 ] && has "$r3" '"verified_pages_mismatched":0'; then
	ok restored_vm_moves_on
else notok restored_vm_moves_on "lease $l1, then $l2" "second restore rc=$rc1: $r1" \
	"migration rc=$rc2: $r2" "restore of the new image rc=$rc3: $r3"; fi

# 7. vmpf-ctl info after the owner ended: nobody owns the image.
i=$(vmpf-ctl info $BLK 2>&1)
j=$(vmpf-ctl info --json $BLK 2>&1)
if has "$i" "owner      nobody now (the last: host" && has "$j" '"lease":{"state":"free"'; then
	ok info_after_owner_ended
else notok info_after_owner_ended "$i" "$j"; fi

# 8. A source takes its VM back after the commit (vmpf-ctl revoke):
# restores are then refused unless forced; a revocation after a
# destination ran the VM is refused unless forced.
out=$(vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.2 --migrate-to $BLK \
	--checksums $t/s8 2>&1) || echo "# migration failed: $out"
v1=$(vmpf-ctl revoke $BLK 2>&1); rc1=$?
r1=$(vmpf-vm --restore $BLK --seconds 0.1 2>&1); rcr1=$?
r2=$(vmpf-vm --restore $BLK --force --verify $t/s8 --seconds 0.1 --json 2>&1); rcr2=$?
v2=$(vmpf-ctl revoke $BLK 2>&1); rc2=$?
v3=$(vmpf-ctl revoke --force $BLK 2>&1); rc3=$?
if [ $rc1 = 0 ] && has "$v1" "revoked: no destination restores this image" &&
   [ $rcr1 = 1 ] && has "$r1" "source took the VM back" &&
   [ $rcr2 = 0 ] && has "$r2" '"verified_pages_mismatched":0' &&
   [ $rc2 = 1 ] && has "$v2" "the VM ran on host .* after the commit" && [ $rc3 = 0 ]; then
	ok revoke_after_commit
else notok revoke_after_commit "revoke rc=$rc1: $v1" "restore rc=$rcr1: $r1" \
	"forced restore rc=$rcr2: $r2" "revoke after it rc=$rc2: $v2" "forced rc=$rc3: $v3"; fi

# 9. No revocation while a destination runs the VM.
out=$(vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.2 --migrate-to $BLK 2>&1) ||
	echo "# migration failed: $out"
start_owner o9 $BLK
v=$(vmpf-ctl revoke $BLK 2>&1); rc=$?
l=$(lease_of $owner)
kill -9 $owner
wait $owner
if [ $rc = 1 ] && has "$v" "the VM runs on host .* from this image" && [ "$l" = reading ]; then
	ok revoke_refused_while_destination_runs
else notok revoke_refused_while_destination_runs "rc=$rc: $v" "lease of the destination: $l"; fi

# 10. A page file this host may only read (a read-only device here, a
# read-only export elsewhere): a restore cannot take the lease and says
# so; --no-lease restores without one (the operator vouches that no other
# host runs the VM), and leaves no record.
out=$(vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.2 --migrate-to $BLK \
	--checksums $t/s10 2>&1) || echo "# migration failed: $out"
blockdev --setro $BLK
r1=$(vmpf-vm --restore $BLK --seconds 0.1 2>&1); rc1=$?
r2=$(vmpf-vm --restore $BLK --no-lease --verify $t/s10 --seconds 0.1 --json 2>&1); rc2=$?
blockdev --setrw $BLK
i=$(vmpf-ctl info $BLK 2>&1)
if [ $rc1 = 1 ] && has "$r1" "the page file is read-only" && [ $rc2 = 0 ] &&
   has "$r2" '"verified_pages_mismatched":0' && has "$i" "owner      nobody: no restore has taken"; then
	ok no_lease_on_a_read_only_page_file
else notok no_lease_on_a_read_only_page_file "rc=$rc1: $r1" "--no-lease rc=$rc2: $r2" "$i"; fi

echo "$old_ms" > $P/lease_ms
rm -rf $t
[ $fails = 0 ]
