#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Source-side migrations inside the test guest (busybox sh), with vmpf-vm
# as the VMM and the workload: pre-copy into a page file on a RAM disk
# (/dev/ram0) or on a file (ext2 on /dev/ram1), switch-over, commit; then
# vmpf-vm restores the page file eagerly and checks every page against the
# checksums it recorded at pause.  Prints TAP.
TAP_PREFIX=migrate
. "$(dirname "$0")/tap.sh"
t=$(mktemp -d)
# restore PAGEFILE SUMS: eager restore must match the checksums at pause
restore() {
	vmpf-vm --load-pagefile "$1" --verify "$2" --seconds 0.2 --json 2>&1
}

echo "TAP version 13"
echo "1..17"

BLK=/dev/ram0
# What the module holds with only vmpf-ctl's own descriptor open (a struct
# vmpf_file: its size depends on the kernel's debug options).
mem0=$(vmpf-ctl version --json 2>&1 | sed -n 's/.*"mem_bytes":\([0-9]*\).*/\1/p')
have_file=0
if mke2fs -q /dev/ram1 >/dev/null 2>&1 && mkdir -p /mnt && mount -t ext4 /dev/ram1 /mnt; then
	have_file=1
fi

# 1. An idle guest: zero pages are recorded, not written.
out=$(vmpf-vm --ram 16M --idle --seconds 0.2 --migrate-to $BLK --checksums $t/s1 --json 2>&1); rc=$?
info=$(vmpf-ctl info $BLK --json 2>&1)
data=$(echo "$info" | sed -n 's/.*"data":\([0-9]*\).*/\1/p')
if [ $rc = 0 ] && has "$out" '"committed":true' && has "$info" '"committed":true' &&
   [ "${data:-9999}" -lt 100 ] && [ "$(num "$out" bytes_written)" -lt 1048576 ] &&
   vmpf-ctl verify $BLK >/dev/null 2>&1 && r=$(restore $BLK $t/s1); then
	ok idle_guest_zero_pages_not_written
else notok idle_guest_zero_pages_not_written "rc=$rc" "$out" "$info" "$r"; fi

# 2. Low dirty rate: rounds converge; the image equals memory at pause.
out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 1M --rate 2000 --seconds 0.3 \
	--migrate-to $BLK --checksums $t/s2 --json 2>&1); rc=$?
flags=$(num "$out" flags)
if [ $rc = 0 ] && has "$out" '"committed":true' && [ $((flags & 1)) = 1 ] &&
   r=$(restore $BLK $t/s2) && [ "$(num "$r" verified_pages_mismatched)" = 0 ]; then
	ok low_rate_converges_and_verifies
else notok low_rate_converges_and_verifies "rc=$rc" "$out" "$r"; fi

# 3. The corrupted page of a committed file is found by verify and restore.
off=$(( (2 + 8 + 256) * 4096 + 0x40 * 4096 + 8 ))	# data_off + page 0x40
printf '\125' | dd of=$BLK bs=1 seek=$off conv=notrunc 2>/dev/null
v=$(vmpf-ctl verify $BLK 2>&1); vrc=$?
r=$(restore $BLK $t/s2); rrc=$?
if [ $vrc = 1 ] && has "$v" "1 bad; first: page 64 is corrupt" && [ $rrc = 1 ] &&
   has "$r" "page 64 is corrupt"; then
	ok corrupt_page_detected
else notok corrupt_page_detected "verify rc=$vrc: $v" "restore rc=$rrc: $r"; fi

# 4. Dirtying faster than copying: the round limit ends pre-copy, the
# statistics show the guest dirtying during it, and the image is still
# right.  (Emulated CPUs can starve the guest for a round; then it may
# converge instead: the image must be right either way.)
out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 8M --seconds 0.2 --max-rounds 2 --downtime 1 \
	--target-pages 1 --migrate-to $BLK --checksums $t/s4 --json 2>&1); rc=$?
flags=$(num "$out" flags)
r1=$(echo "$out" | sed -n 's/.*{"round":1,"dirty":\([0-9]*\).*/\1/p')
if [ $rc = 0 ] && has "$out" '"committed":true' && [ "${r1:-0}" -gt 0 ] &&
   { [ $((flags & 2)) = 2 ] && [ "$(num "$out" rounds)" = 3 ] || [ $((flags & 1)) = 1 ]; } &&
   r=$(restore $BLK $t/s4); then
	ok high_rate_round_limit_still_correct
else notok high_rate_round_limit_still_correct "rc=$rc" "$out" "$r"; fi

# 5. The VMM's own write to guest memory must be reported: without
# VMPF_IOC_MARK_DIRTY the image misses it, and verification says so.
out=$(vmpf-vm --ram 16M --idle --seconds 0.1 --no-mark-dirty --migrate-to $BLK \
	--checksums $t/s5 2>&1); rc=$?
r=$(restore $BLK $t/s5); rrc=$?
if [ $rc = 0 ] && [ $rrc = 1 ] && has "$r" "1 pages differ.*first: page 0x3f000"; then
	ok unreported_vmm_write_is_caught
else notok unreported_vmm_write_is_caught "rc=$rc rrc=$rrc" "$out" "$r"; fi

# 6. A regular file on a filesystem as the page file.
if [ $have_file = 1 ]; then
	dd if=/dev/zero of=/mnt/pf bs=1M count=0 seek=24 2>/dev/null
	out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 1M --rate 2000 --seconds 0.3 \
		--migrate-to /mnt/pf --checksums $t/s6 --json 2>&1); rc=$?
	if [ $rc = 0 ] && has "$out" '"committed":true' &&
	   vmpf-ctl verify /mnt/pf >/dev/null 2>&1 && r=$(restore /mnt/pf $t/s6); then
		ok file_target
	else notok file_target "rc=$rc" "$out" "$r"; fi
else
	skip file_target "cannot make and mount an ext2 filesystem on /dev/ram1"
fi

# 7. Too small a target is refused before anything is written.
dd if=/dev/zero of=$t/small bs=1M count=0 seek=1 2>/dev/null
target=$t/small
[ $have_file = 1 ] && { cp $t/small /mnt/small; target=/mnt/small; }
out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 1M --rate 2000 --seconds 0.2 \
	--migrate-to $target --json 2>&1); rc=$?
if [ $rc = 1 ] && has "$out" "too small: it needs [0-9]* bytes" &&
   has "$out" '"pattern_errors":0' && [ "$(num "$out" stores)" -gt 0 ] &&
   [ -z "$(tr -d '\000' < $target | head -c 1)" ]; then
	ok too_small_target_refused
else notok too_small_target_refused "rc=$rc" "$out"; fi

# 8. Abort from vmpf-ctl: the VM runs on, its memslots log no more, the page
# file stays uncommitted.
vmpf-vm --ram 16M --vcpus 2 --working-set 1M --rate 2000 --seconds 0.1 --wait-request \
	--migrate-to $BLK --json > $t/o8 2>&1 &
pid=$!
wait_for $t/o8 attached
st=$(vmpf-ctl status --pid $pid 2>&1); src=$?
a=$(vmpf-ctl abort --pid $pid 2>&1); arc=$?
wait $pid; rc=$?
out=$(cat $t/o8)
info=$(vmpf-ctl info $BLK 2>&1)
if [ $src = 0 ] && has "$st" "^phase      precopy" && [ $arc = 0 ] && has "$a" "phase      aborted" &&
   [ $rc = 1 ] && has "$out" "migration aborted: aborted; the VM keeps running" &&
   has "$out" '"logging_off":true' && has "$out" '"pattern_errors":0' &&
   has "$info" "committed  no: no commit record"; then
	ok abort_leaves_vm_running_uncommitted
else notok abort_leaves_vm_running_uncommitted "status rc=$src" "$st" "abort rc=$arc" "$a" "vmm rc=$rc" "$out" "$info"; fi

# 9. Finish asked by vmpf-ctl; status --watch follows it to the commit.
vmpf-vm --ram 16M --vcpus 2 --working-set 1M --rate 2000 --seconds 0.1 --wait-request \
	--migrate-to $BLK --checksums $t/s9 --json > $t/o9 2>&1 &
pid=$!
wait_for $t/o9 attached
vmpf-ctl status --pid $pid --watch --json > $t/w9 2>&1 &
wpid=$!
sleep 0.5
f=$(vmpf-ctl finish --pid $pid 2>&1); frc=$?
wait $pid; rc=$?
wait $wpid; wrc=$?
if [ $frc = 0 ] && has "$f" "phase      committed" && [ $rc = 0 ] && [ $wrc = 0 ] &&
   grep -q '"phase":"precopy"' $t/w9 && tail -n 1 $t/w9 | grep -q '"phase":"committed"' &&
   r=$(restore $BLK $t/s9); then
	ok finish_and_watch_from_ctl
else notok finish_and_watch_from_ctl "finish rc=$frc" "$f" "vmm rc=$rc" "$(cat $t/o9)" "watch rc=$wrc" "$(tail -n 3 $t/w9)" "$r"; fi

# 10. A VMM that attaches and lets the operator start.
vmpf-vm --ram 16M --working-set 1M --rate 1000 --seconds 0.1 --no-start --wait-request \
	--migrate-to $BLK --checksums $t/s10 > $t/o10 2>&1 &
pid=$!
wait_for $t/o10 attached
st=$(vmpf-ctl status --pid $pid 2>&1)
s=$(vmpf-ctl start --pid $pid 2>&1); src=$?
again=$(vmpf-ctl start --pid $pid 2>&1); arc=$?
f=$(vmpf-ctl finish --pid $pid 2>&1); frc=$?
wait $pid; rc=$?
if has "$st" "^phase      attached" && [ $src = 0 ] && [ $arc = 1 ] &&
   has "$again" "not possible in the session's phase" && [ $frc = 0 ] && [ $rc = 0 ] &&
   r=$(restore $BLK $t/s10); then
	ok start_from_ctl
else notok start_from_ctl "$st" "start rc=$src: $s" "again rc=$arc: $again" "finish rc=$frc: $f" "vmm rc=$rc" "$(cat $t/o10)" "$r"; fi

# 11. kill -9 of the VMM mid pre-copy: the session goes with it.
vmpf-vm --ram 16M --vcpus 2 --working-set 4M --seconds 0.1 --wait-request \
	--migrate-to $BLK > $t/o11 2>&1 &
pid=$!
wait_for $t/o11 attached
sleep 0.3
kill -9 $pid
wait $pid
v=$(vmpf-ctl version --json 2>&1)
info=$(vmpf-ctl info $BLK 2>&1)
if has "$v" '"sessions":0' && has "$v" '"open_files":1,' && has "$info" "committed  no"; then
	ok kill9_mid_precopy_releases_session
else notok kill9_mid_precopy_releases_session "$v" "$info" "$(cat $t/o11)"; fi

# 12. Two VMs migrating at once.
t2=$BLK
[ $have_file = 1 ] && { dd if=/dev/zero of=/mnt/pf2 bs=1M count=0 seek=24 2>/dev/null; t2=/mnt/pf2; }
if [ $have_file = 1 ]; then
	vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.2 --migrate-to $BLK \
		--checksums $t/s12a > $t/o12a 2>&1 &
	p1=$!
	vmpf-vm --ram 16M --vcpus 2 --working-set 2M --rate 3000 --seconds 0.2 --migrate-to $t2 \
		--checksums $t/s12b > $t/o12b 2>&1 &
	p2=$!
	wait $p1; r1=$?
	wait $p2; r2=$?
	if [ $r1 = 0 ] && [ $r2 = 0 ] && ra=$(restore $BLK $t/s12a) && rb=$(restore $t2 $t/s12b); then
		ok two_sessions_at_once
	else notok two_sessions_at_once "rc=$r1 $(cat $t/o12a)" "rc=$r2 $(cat $t/o12b)" "$ra" "$rb"; fi
else
	skip two_sessions_at_once "needs the ext2 file target"
fi

# 13. An uncommitted page file is refused by restore and verify.
vmpf-vm --ram 16M --idle --seconds 0.1 --wait-request --migrate-to $BLK > $t/o13 2>&1 &
pid=$!
wait_for $t/o13 attached
vmpf-ctl abort --pid $pid > /dev/null 2>&1
wait $pid
r=$(vmpf-vm --load-pagefile $BLK 2>&1); rrc=$?
v=$(vmpf-ctl verify $BLK 2>&1); vrc=$?
if [ $rrc = 1 ] && has "$r" "no commit record" && [ $vrc = 1 ] &&
   has "$v" "not a committed page file"; then
	ok uncommitted_refused
else notok uncommitted_refused "restore rc=$rrc: $r" "verify rc=$vrc: $v"; fi

# 15. A VMM using KVM's manual dirty-log protection (QEMU does): harvests
# must also clear the log, or rounds never converge.
out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 1M --rate 2000 --seconds 0.3 --manual-protect \
	--migrate-to $BLK --checksums $t/s15 --json 2>&1); rc=$?
flags=$(num "$out" flags)
if [ $rc = 0 ] && has "$out" '"committed":true' && [ $((flags & 1)) = 1 ] &&
   [ "$(num "$out" rounds)" -lt 10 ] && r=$(restore $BLK $t/s15); then
	ok manual_dirty_log_protect
else notok manual_dirty_log_protect "rc=$rc" "$out" "$r"; fi

# 17. Manual protection on and off give the same image: a guest whose
# vCPUs stop after 3 passes over their working set, made while pre-copy
# runs, ends with the same memory in every run; the image taken with
# KVM's manual dirty-log protection (re-protected group by group), the one
# taken with initially-set too, and the one taken without must all hold
# exactly that memory (each verified against the first one's checksums).
# With initially-set, round 0 protects as it copies: round 1 copies only
# what the guest dirtied, not all 4096 pages again.
same_image() {
	vmpf-vm --ram 16M --vcpus 2 --working-set 2M --rate 3000 --passes 3 --seconds 0.1 --target-pages 1 \
		--wait-request $1 --migrate-to $BLK --checksums $t/s17$2 --json > $t/o17$2 2>&1 &
	pid=$!
	wait_for $t/o17$2 attached
	wait_for $t/o17$2 "made its passes"
	vmpf-ctl finish --pid $pid > /dev/null 2>&1
	wait $pid
}
same_image --manual-protect a
ra=$(restore $BLK $t/s17a); rca=$?
same_image "" b
rb=$(restore $BLK $t/s17a); rcb=$?
same_image --initially-set c
rc_=$(restore $BLK $t/s17a); rcc=$?
oa=$(cat $t/o17a); ob=$(cat $t/o17b); oc=$(cat $t/o17c)
r1=$(echo "$oc" | sed -n 's/.*{"round":1,"dirty":\([0-9]*\).*/\1/p')
if has "$oa" "made its passes" && has "$oa" '"committed":true' && [ "$(num "$oa" rounds)" -gt 2 ] &&
   has "$ob" "made its passes" && has "$ob" '"committed":true' &&
   has "$oc" "made its passes" && has "$oc" '"committed":true' &&
   [ -n "$r1" ] && [ "$r1" -lt 4096 ] &&
   cmp -s $t/s17a $t/s17b && cmp -s $t/s17a $t/s17c &&
   [ $rca = 0 ] && [ $rcb = 0 ] && [ $rcc = 0 ]; then
	ok manual_protect_on_off_same_image
else notok manual_protect_on_off_same_image "$oa" "$ob" "$oc" "restore a rc=$rca: $ra" \
	"restore b rc=$rcb: $rb" "restore c rc=$rcc: $rc_"; fi
echo "# initially-set: round 1 copied $r1 pages of 4096"


# 16. The VMM dies while vmpf-ctl holds a copy of its session descriptor:
# the session still ends (aborted), it does not copy a dead VM's memory on.
vmpf-vm --ram 16M --vcpus 2 --working-set 1M --rate 2000 --seconds 0.1 --wait-request \
	--migrate-to $BLK > $t/o16 2>&1 &
pid=$!
wait_for $t/o16 attached
vmpf-ctl status --pid $pid --watch > $t/w16 2>&1 &
wpid=$!
sleep 0.5
kill -9 $pid
wait $pid
i=0
while kill -0 $wpid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
alive=0
kill -0 $wpid 2>/dev/null && { alive=1; kill $wpid; }
wait $wpid
v=$(vmpf-ctl version --json 2>&1)
if [ $alive = 0 ] && tail -n 1 $t/w16 | grep -q "^aborted" && has "$v" '"sessions":0,'; then
	ok vmm_death_ends_session_held_elsewhere
else notok vmm_death_ends_session_held_elsewhere "watch still running: $alive" "$(tail -n 3 $t/w16)" "$v"; fi

# 14. After all that the module holds nothing.
v=$(vmpf-ctl version --json 2>&1)
if has "$v" '"open_files":1,"sessions":0,"mem_bytes":[0-9]*}' &&
   [ "$(echo "$v" | sed -n 's/.*"mem_bytes":\([0-9]*\).*/\1/p')" -le "${mem0:-0}" ]; then
	ok module_memory_returned
else notok module_memory_returned "$v" "at the start: ${mem0:-unknown} bytes"; fi

[ $have_file = 1 ] && umount /mnt
rm -rf $t
[ $fails = 0 ]
