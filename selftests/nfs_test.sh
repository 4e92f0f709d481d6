#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The page file on NFS (busybox sh): the kernel's NFS server in the test
# machine exports a filesystem, mounted twice over the loopback, NFSv4.2
# and NFSv3, as two hosts would mount it (separate clients, separate
# caches).  A migration through one mount restores through the other; a
# new image written through one is what the other reads; the ownership
# lease across the two; the server going away mid-pre-copy and mid-restore
# (hard mounts: the I/O waits, the migration completes; a soft mount: the
# retry budget, then a clean failure or a verified image, never wrong
# data).  Prints TAP.
TAP_PREFIX=nfs
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/nfs_lib.sh"
t=$(mktemp -d)
EXP=/srv/nfs
N4=/mnt/n4 N3=/mnt/n3 NS=/mnt/ns
NAMES="server_and_two_mounts v42_to_v3 v3_to_v42 new_image_seen_through_other_mount
lease_across_mounts soft_mount_outage server_restart_mid_precopy server_restart_mid_restore"

echo "TAP version 13"
echo "1..8"
why=$(nfs_have) && why=$(mke2fs -q /dev/ram1 2>&1) && mkdir -p $EXP &&
	why=$(mount -t ext4 /dev/ram1 $EXP 2>&1) || {
	for name in $NAMES; do skip $name "$why"; done
	exit 0
}

# 1. The server, and two mounts of its export.
s=$(nfs_server_start $EXP 127.0.0.1 2>&1); src=$?
m4=$(nfs_mount 127.0.0.1:$EXP $N4 vers=4.2,proto=tcp); m4rc=$?
m3=$(nfs_mount 127.0.0.1:$EXP $N3 vers=3,proto=tcp,nolock); m3rc=$?
if [ $src = 0 ] && [ $m4rc = 0 ] && [ $m3rc = 0 ] && grep -q " $N4 nfs4 .*vers=4.2" /proc/mounts &&
   grep -q " $N3 nfs .*vers=3" /proc/mounts; then
	ok server_and_two_mounts
else
	notok server_and_two_mounts "server: $s" "v4.2: $m4" "v3: $m3" "$(dmesg | tail -n 5)"
	for name in $(echo $NAMES | cut -d' ' -f2-); do skip $name "no NFS mounts"; done
	exit 1
fi

# migrate DIR NAME ARGS...: a 16 MiB guest into DIR/NAME (made 24 MiB),
# its checksums at pause in $t/NAME.sum.
migrate() {
	_d=$1 _n=$2
	shift 2
	truncate -s 24M $_d/$_n
	vmpf-vm --ram 16M --vcpus 2 --working-set 2M --rate 4000 --seconds 0.3 \
		--migrate-to $_d/$_n --checksums $t/$_n.sum "$@" 2>&1
}
# precopy_with_outage FILE SUMS OUT SECONDS: a 32 MiB guest pre-copies into
# FILE (vmpf-vm attached, then pre-copy until asked to finish); the NFS
# server stops for SECONDS in the middle of it; then the switch-over.
precopy_with_outage() {
	truncate -s 40M "$1"
	vmpf-vm --ram 32M --vcpus 2 --working-set 4M --rate 4000 --seconds 0.2 --wait-request \
		--migrate-to "$1" --checksums "$2" > "$3" 2>&1 &
	_pid=$!
	wait_for "$3" attached
	sleep 1
	nfs_server_pause
	sleep "$4"
	nfs_server_resume > /dev/null
	sleep 1
	vmpf-ctl finish --pid $_pid > /dev/null 2>&1
	wait $_pid
}
# restore_verify FILE SUMS: restore lazily, compare every page, complete.
restore_verify() {
	vmpf-vm --restore "$1" --verify "$2" --wait-complete --seconds 0.1 --json 2>&1
}

# 2, 3. Written through one mount, restored through the other.
m=$(migrate $N4 a); mrc=$?
r=$(restore_verify $N3/a $t/a.sum); rc=$?
if [ $mrc = 0 ] && [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0' &&
   has "$r" '"complete":true'; then
	ok v42_to_v3
else notok v42_to_v3 "migration rc=$mrc: $m" "restore rc=$rc: $r"; fi
m=$(migrate $N3 b); mrc=$?
r=$(restore_verify $N4/b $t/b.sum); rc=$?
if [ $mrc = 0 ] && [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0'; then
	ok v3_to_v42
else notok v3_to_v42 "migration rc=$mrc: $m" "restore rc=$rc: $r"; fi

# 4. A new image in a file the other mount has read and cached: vmpf-ctl
# (page cache, after dropping it) and the kernel (direct I/O) see the new
# one, not the cached superblock.
i0=$(vmpf-ctl info --json $N3/a)
m=$(migrate $N4 a); mrc=$?
g4=$(num "$(vmpf-ctl info --json $N4/a)" generation)
i3=$(vmpf-ctl info --json $N3/a)
r=$(restore_verify $N3/a $t/a.sum); rc=$?
if [ $mrc = 0 ] && [ "$(num "$i3" generation)" = "$g4" ] && [ "$(num "$i0" generation)" != "$g4" ] &&
   [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0'; then
	ok new_image_seen_through_other_mount
else notok new_image_seen_through_other_mount "migration rc=$mrc: $m" "before: $i0" \
	"through the writer's mount: $g4" "through the other: $i3" "restore rc=$rc: $r"; fi

# 5. The ownership lease works across the two mounts.
old_ms=$(cat /sys/module/vmpagefile/parameters/lease_ms)
echo 1000 > /sys/module/vmpagefile/parameters/lease_ms
vmpf-vm --restore $N4/a --prefetch-rate 100 --seconds 8 > $t/owner 2>&1 &
owner=$!
wait_for $t/owner restoring
r=$(vmpf-vm --restore $N3/a --seconds 0.1 2>&1); rc=$?
kill -9 $owner
wait $owner
r2=$(restore_verify $N3/a $t/a.sum); rc2=$?
echo "$old_ms" > /sys/module/vmpagefile/parameters/lease_ms
if [ $rc = 1 ] && has "$r" "the image is in use" && [ $rc2 = 0 ] &&
   has "$r2" '"verified_pages_mismatched":0'; then
	ok lease_across_mounts
else notok lease_across_mounts "second restore rc=$rc: $r" "after the owner died rc=$rc2: $r2" \
	"$(cat $t/owner)"; fi

# 6. A soft mount (requests fail after 3 s and a retransmission) and an
# outage of 12 s, longer than that and the module's retry budget (3.4 s),
# mid-pre-copy: the migration either completes and verifies, or fails
# with a sentence and leaves no committed image; never a committed image
# with wrong pages.
mo=$(nfs_mount 127.0.0.1:$EXP $NS vers=4.2,proto=tcp,soft,timeo=30,retrans=1)
precopy_with_outage $NS/d $t/d.sum $t/d.out 12; mrc=$?
info=$(vmpf-ctl info $N4/d 2>&1)
if [ $mrc = 0 ]; then
	r=$(restore_verify $N4/d $t/d.sum); rc=$?
	if [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0'; then
		ok soft_mount_outage
	else notok soft_mount_outage "migration completed; restore rc=$rc: $r"; fi
elif has "$(cat $t/d.out)" "vmpf-vm: .*fail\|error" && has "$(cat $t/d.out)" "attached" &&
     ! has "$info" "committed  yes"; then
	ok soft_mount_outage
	echo "# soft mount: the migration failed cleanly: $(grep -i 'fail\|error' $t/d.out | head -n 1)"
else notok soft_mount_outage "mount: $mo" "migration rc=$mrc: $(cat $t/d.out)" "$info"; fi

# 7. The server goes away for 3 s in the middle of a pre-copy (hard mount:
# the writes wait for it), then comes back with a new v4 state and a grace
# period: the migration completes, and the image verifies.
precopy_with_outage $N4/c $t/c.sum $t/c.out 3; mrc=$?
r=$(vmpf-vm --restore $N3/c --verify $t/c.sum --wait-complete --seconds 0.1 --json 2>&1); rc=$?
if [ $mrc = 0 ] && [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0'; then
	ok server_restart_mid_precopy
else notok server_restart_mid_precopy "migration rc=$mrc: $(cat $t/c.out)" "restore rc=$rc: $r"; fi

# 8. ... and in the middle of a restore: the faults wait for it.
vmpf-vm --restore $N3/c --verify $t/c.sum --wait-complete --seconds 0.1 --json > $t/r7 2>&1 &
pid=$!
wait_for $t/r7 restoring
nfs_server_pause
sleep 3
nfs_server_resume > /dev/null
wait $pid; rc=$?
r=$(cat $t/r7)
if [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0'; then
	ok server_restart_mid_restore
else notok server_restart_mid_restore "restore rc=$rc: $r"; fi

# Each restore's lease is let go of by a kernel worker just after the
# restore ends, through its own reference to the page file: the mounts
# are busy until then.  The server must outlive that last write (a hard
# mount would wait for it for ever).
for m in $NS $N4 $N3; do
	i=0
	while grep -q " $m nfs" /proc/mounts && ! umount $m 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.2
		i=$((i + 1))
	done
done
nfs_server_pause
exportfs -ua
umount $EXP
rm -rf $t
[ $fails = 0 ]
