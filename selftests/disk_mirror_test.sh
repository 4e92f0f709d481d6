#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A QEMU VM with a local disk migrated with it (vmpf-ctl migrate
# --disks-to, restore --qemu --disks-to), inside the test machine (busybox
# sh, the host's QEMU with KVM, as qemu_migrate_test.sh).  The guest
# writes its disk all the time (the dirtier's disk_blocks=N: blocks with
# a sequence number, remembered in guest memory) and reads every block
# back every two seconds ("vmpf-disk-verify ok"): a guest whose memory
# and disk did not come from the same moment fails its own check.
#   enospc    the copy's directory is too small: the mirror fails, the
#             migration ends saying so, the guest runs on, on its own
#             disk; no partial copy left, the page file uncommitted;
#   abort     Ctrl-C on vmpf-ctl while the disk is mirrored: the same;
#             before that, vmpf-ctl status --pid shows the disk's progress
#             beside memory's (text and JSON);
#   migrate   a migration with the disk: committed, the copy on the
#             "share" equals the source's image at its pause byte for byte;
#   dest      the destination QEMU starts on the copy; the guest counts on
#             and its checks of memory and disk pass; with --disks-to it
#             moves onto a local copy while it runs (the share's image is
#             removed) and its disk check passes again after that.
# One source guest serves all four parts (the failed ones leave it
# running).  Skipped (saying why) without /host or /dev/kvm, or if the
# guest does not boot (docs/testing.md).
TAP_PREFIX=mirror
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/qemu_vmm_lib.sh"

RAM=96
BLOCKS=512	# the guest's 2 MiB of disk blocks
GUEST="dirtier_mb=16 disk_blocks=$BLOCKS no-steal-acc"
PF=/dev/ram1
t=/tmp/disk_mirror
tests="enospc_fails enospc_runs_on status_shows_disks abort_fails abort_runs_on migrate copy_equal dest_verifies dest_moves dest_verifies_after"

echo "TAP version 13"
echo "1..10"
if ! vq_usable; then
	for x in $tests; do skip "$x" "$VQ_WHY"; done
	exit 0
fi

qmp() { vmpf-ctl qmp --qmp "$1/qmp.sock" "$2" ${3:+"$3"} 2>&1; }
status_of() { qmp "$1" query-status | sed -n 's/.*"status": "\([a-z-]*\)".*/\1/p'; }
# disk_lines DIR: how many disk checks DIR's guest passed so far
disk_lines() { tr -d '\r' < "$1/serial.log" | grep -c '^vmpf-disk-verify ok'; }
disk_bad() { tr -d '\r' < "$1/serial.log" | grep '^vmpf-disk-verify BAD\|^vmpf-verify BAD' | head -n 3; }
# runs_on DIR: the guest passes one more disk check (counting on, disk intact)
runs_on() {
	_n=$(disk_lines "$1")
	_i=0
	while [ "$(disk_lines "$1")" -le "$_n" ] && [ $_i -lt 600 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ "$(disk_lines "$1")" -gt "$_n" ] && [ -z "$(disk_bad "$1")" ]
}

rm -rf $t
mkdir -p $t/local $t/share $t/local2 $t/tiny
truncate -s 8M $t/local/disk.raw
S=$t/src D=$t/dst
if ! VQ_APPEND="$GUEST" vq_boot $S $RAM \
	-drive file=$t/local/disk.raw,format=raw,if=none,id=disk0 \
	-device virtio-blk-pci,drive=disk0 -qmp "unix:$S/ctl.sock,server=on,wait=off"; then
	for x in $tests; do
		skip "$x" "the inner guest did not boot in three tries (nested KVM in this test machine; see docs/testing.md)"
	done
	vq_stop $S
	exit 0
fi
spid=$VQ_PID
if [ -n "$(disk_bad $S)" ] || ! runs_on $S; then
	for x in $tests; do skip "$x" "the guest does not check its disk: $(tr -d '\r' < $S/serial.log | tail -n 3)"; done
	vq_stop $S
	exit 0
fi

# --- the copy's directory too small ----------------------------------------
mount -t tmpfs -o size=1m tiny $t/tiny
vmpf-ctl migrate --qmp $S/ctl.sock $PF --disks-to $t/tiny > $t/enospc.out 2>&1
rc=$?
if [ $rc = 1 ] && has "$(cat $t/enospc.out)" "mirror of disk disk0.*No space left" &&
   [ -z "$(ls $t/tiny)" ] && has "$(vmpf-ctl info $PF --json 2>&1)" '"committed":false'; then
	ok enospc_fails
else notok enospc_fails "rc=$rc" "$(tail -n 5 $t/enospc.out)" "left: $(ls $t/tiny)"; fi
if [ "$(status_of $S)" = running ] && runs_on $S; then ok enospc_runs_on
else notok enospc_runs_on "status $(status_of $S)" "$(disk_bad $S)" "$(tr -d '\r' < $S/serial.log | tail -n 3)"; fi
umount $t/tiny

# --- abort while the disk is mirrored --------------------------------------
# --manual: no switch-over before 'vmpf-ctl finish', so Ctrl-C comes first.
vmpf-ctl migrate --qmp $S/ctl.sock $PF --disks-to $t/share --manual > $t/abort.out 2>&1 &
mpid=$!
vq_wait_for $t/abort.out "^disk " 60 $mpid
# status --pid (of the migrating vmpf-ctl) shows the disk beside memory.
st=$(vmpf-ctl status --pid $mpid 2>&1)
stj=$(vmpf-ctl status --pid $mpid --json 2>&1)
if has "$st" "^phase      precopy" && has "$st" "^disk       disk0 (raw) → $t/share/disk.raw: " &&
   has "$stj" "\"disks\":\[{\"device\":\"disk0\",.*\"left\":[0-9]*"; then
	ok status_shows_disks
else notok status_shows_disks "$st" "$stj"; fi
kill -INT $mpid
wait $mpid
rc=$?
if [ $rc = 1 ] && has "$(cat $t/abort.out)" "aborted" && [ ! -e $t/share/disk.raw ] &&
   has "$(vmpf-ctl info $PF --json 2>&1)" '"committed":false'; then
	ok abort_fails
else notok abort_fails "rc=$rc" "$(tail -n 6 $t/abort.out)" "left: $(ls $t/share)"; fi
if [ "$(status_of $S)" = running ] && runs_on $S; then ok abort_runs_on
else notok abort_runs_on "status $(status_of $S)" "$(disk_bad $S)"; fi

# --- the migration with the disk --------------------------------------------
vmpf-ctl migrate --qmp $S/ctl.sock $PF --disks-to $t/share --json > $t/mig.json 2> $t/mig.err
rc=$?
res=$(tail -n 1 $t/mig.json)
echo "# migrate: $res"
if [ $rc = 0 ] && has "$res" '"committed":true' &&
   has "$res" "\"disks\":\[{\"device\":\"disk0\",\"format\":\"raw\",\"source\":\"$t/local/disk.raw\",\"target\":\"$t/share/disk.raw\"" &&
   has "$res" '"done":true' && [ "$(status_of $S)" = postmigrate ]; then
	ok migrate
else notok migrate "rc=$rc" "$(cat $t/mig.err)" "$res" "status $(status_of $S)"; fi
# The source stays paused: its image is the disk at the pause, as the copy.
if cmp $t/local/disk.raw $t/share/disk.raw > $t/cmp 2>&1; then ok copy_equal
else notok copy_equal "$(cat $t/cmp)"; fi

# --- the destination, on the copy; then onto a local one ---------------------
eval "set -- $(VQ_APPEND="$GUEST" vq_guest_args "$RAM")"
mkdir -p $D
rm -f $D/serial.log
# shellcheck disable=SC2086
vmpf-ctl restore --qemu $PF --disks-to $t/local2 -- $VQ_QEMU "$@" \
	-drive file=$t/share/disk.raw,format=raw,if=none,id=disk0 \
	-device virtio-blk-pci,drive=disk0 -S -serial file:$D/serial.log \
	-qmp unix:$D/qmp.sock,server=on,wait=off > $D/restore.out 2>&1 &
rpid=$!
vq_wait_for $D/restore.out "^resumed\|vmpf-ctl:" 60 $rpid
qmp $D cont > /dev/null
# Its first disk check after cont reads what the share's copy holds.
locked=
if vq_wait_for $D/serial.log "^vmpf-disk-verify" 120 $rpid && [ -z "$(disk_bad $D)" ] &&
   vq_wait_for $D/serial.log "^vmpf-verify" 120 $rpid && [ -z "$(disk_bad $D)" ]; then
	ok dest_verifies
else
	where=$(vq_where $D/qmp.sock)
	if [ -z "$(disk_bad $D)" ] && vq_locked_up "$where"; then
		locked="the restored guest stopped: nested lockup, vCPU at $where"
		skip dest_verifies "$locked"
	else notok dest_verifies "$(disk_bad $D)" "$(tr -d '\r' < $D/serial.log | tail -n 4)" "$where"; fi
fi
vq_wait_for $D/restore.out "^disks .*runs on the copies\|vmpf-ctl:" 120 $rpid
if has "$(cat $D/restore.out)" "runs on the copies in $t/local2" && [ ! -e $t/share/disk.raw ] &&
   [ -s $t/local2/disk.raw ] && qmp $D query-block | grep -q "$t/local2/disk.raw"; then
	ok dest_moves
else notok dest_moves "$(tail -n 6 $D/restore.out)" "share: $(ls $t/share)" "local2: $(ls $t/local2)"; fi
if runs_on $D; then ok dest_verifies_after
elif [ -n "$locked" ] && [ -z "$(disk_bad $D)" ]; then
	# Locked up before the pivot already: it cannot run on after it.
	skip dest_verifies_after "$locked"
else notok dest_verifies_after "$(disk_bad $D)" "$(tr -d '\r' < $D/serial.log | tail -n 3)"; fi
qmp $D quit > /dev/null
wait $rpid
qmp $S quit > /dev/null
wait $spid
[ $fails = 0 ]
