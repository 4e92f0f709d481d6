#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Lazy restore of migrated VMs with vmpf-vm (busybox sh): guest RAM mapped
# from the page file through vmpagefile, vCPU faults served in the kernel
# through KVM, with and without prefetch, from a block device and a file;
# a corrupt page; kill -9 mid-restore; in 2 MiB huge pages, which KVM
# maps with 2 MiB pages.  Prints TAP.
TAP_PREFIX=lazy
. "$(dirname "$0")/tap.sh"
t=$(mktemp -d)
BLK=/dev/ram0

echo "TAP version 13"
echo "1..9"

out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 2M --rate 4000 --seconds 0.3 \
	--migrate-to $BLK --checksums $t/s --json 2>&1) || echo "# migration failed: $out"

# 1. Faults only: the vCPUs' accesses bring in just what they touch.  (How
# much they touch in 0.3 s depends on the kernel's speed: 300-1500 pages
# seen, the fewest under KASAN; 128 is well past the guest's own code and
# page tables.)
r=$(vmpf-vm --restore $BLK --no-prefetch --seconds 0.3 --json 2>&1); rc=$?
res=$(num "$r" resident)
if [ $rc = 0 ] && has "$r" '"complete":false' && [ "$(num "$r" prefetched)" = 0 ] &&
   [ "$(num "$r" demand)" -gt 128 ] && [ "$res" -lt 4096 ] &&
   [ "$(num "$r" demand)" = "$res" ] && [ "$(num "$r" stores)" -gt 0 ] &&
   has "$r" '"pattern_errors":0'; then
	ok vcpu_faults_without_prefetch
else notok vcpu_faults_without_prefetch "rc=$rc" "$r"; fi

# 2. Every page equals memory at the source's pause; prefetch completes.
r=$(vmpf-vm --restore $BLK --verify $t/s --seconds 0.2 --wait-complete --json 2>&1); rc=$?
if [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0' && has "$r" '"complete":true' &&
   [ "$(num "$r" resident)" = 4096 ] && has "$r" '"pattern_errors":0'; then
	ok verify_and_complete
else notok verify_and_complete "rc=$rc" "$r"; fi

# 3. From a file, prefetching in page order.
if mke2fs -q /dev/ram1 >/dev/null 2>&1 && mkdir -p /mnt && mount -t ext4 /dev/ram1 /mnt; then
	dd if=/dev/zero of=/mnt/pf bs=1M count=0 seek=24 2>/dev/null
	m=$(vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.2 --migrate-to /mnt/pf \
		--checksums $t/sf 2>&1)
	r=$(vmpf-vm --restore /mnt/pf --sequential --verify $t/sf --wait-complete --seconds 0.2 \
		--json 2>&1); rc=$?
	if [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0' && has "$r" '"complete":true'; then
		ok file_target_sequential
	else notok file_target_sequential "$m" "rc=$rc" "$r"; fi
	umount /mnt
else
	skip file_target_sequential "cannot make and mount ext2 on /dev/ram1"
fi

# 4. kill -9 of the VMM mid-restore, prefetch running slowly.
vmpf-vm --restore $BLK --prefetch-rate 100 --seconds 5 > $t/o4 2>&1 &
pid=$!
sleep 1
kill -9 $pid
wait $pid
v=$(vmpf-ctl version --json 2>&1)
if has "$v" '"open_files":1,"sessions":0,'; then
	ok kill9_mid_restore
else notok kill9_mid_restore "$v" "$(cat $t/o4)"; fi

# 5. A corrupt page the guest touches: never mapped; KVM_RUN fails with
# EFAULT for the vCPU that touched it, the kernel log names the page.  (On
# a slow kernel the VMM's own check of guest memory at the end may touch
# it first: then that thread gets SIGBUS, exit status 135, as rightly.)
data_off=$(( (2 + 8 + 256) * 4096 ))
printf '\252' | dd of=$BLK bs=1 seek=$((data_off + 0x40 * 4096 + 64)) conv=notrunc 2>/dev/null
r=$(vmpf-vm --restore $BLK --no-prefetch --seconds 0.3 2>&1); rc=$?
if { { [ $rc = 1 ] && has "$r" "KVM_RUN: Bad address"; } || [ $rc = 135 ]; } &&
   dmesg | grep -q "restore: page 64: crc32c mismatch"; then
	ok corrupt_page_refused
else notok corrupt_page_refused "rc=$rc" "$r" "$(dmesg | tail -n 3)"; fi

# 6. An uncommitted page file is refused.
vmpf-vm --ram 16M --idle --seconds 0.1 --wait-request --migrate-to $BLK > $t/o6 2>&1 &
pid=$!
i=0
while ! grep -q attached $t/o6 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
vmpf-ctl abort --pid $pid > /dev/null 2>&1
wait $pid
r=$(vmpf-vm --restore $BLK 2>&1); rc=$?
if [ $rc = 1 ] && has "$r" "holds no committed image"; then
	ok uncommitted_refused
else notok uncommitted_refused "rc=$rc" "$r"; fi

# 7. vmpf-ctl restore watches and steers the prefetch of another process.
out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 2M --rate 4000 --seconds 0.3 \
	--migrate-to $BLK 2>&1) || echo "# migration failed: $out"
# The VMM runs long enough for a slow (loaded) machine to finish the prefetch
# while it still exists: vmpf-ctl status is asked of it afterwards.
vmpf-vm --restore $BLK --no-prefetch --seconds 10 > $t/o7 2>&1 &
pid=$!
i=0
while ! grep -q restoring $t/o7 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
a=$(vmpf-ctl restore --pid $pid --json 2>&1); arc=$?
b=$(vmpf-ctl restore --pid $pid --run --rate 0 2>&1); brc=$?
i=0
while [ $i -lt 80 ]; do
	c=$(vmpf-ctl restore --pid $pid 2>&1)
	has "$c" "restore    complete" && break
	sleep 0.1
	i=$((i + 1))
done
s=$(vmpf-ctl status --pid $pid 2>&1); src=$?
wait $pid; rc=$?
if [ $arc = 0 ] && has "$a" '"phase":"running","prefetching":false' && [ $brc = 0 ] &&
   has "$c" "restore    complete" && has "$c" "pages      4096 of 4096 restored" &&
   [ $src = 1 ] && has "$s" "restore" && [ $rc = 0 ]; then
	ok ctl_restore_steers_prefetch
else notok ctl_restore_steers_prefetch "$a" "$b" "$c" "status rc=$src: $s" "vmm rc=$rc" "$(cat $t/o7)"; fi

# 8. Tracepoints: rounds on the source side, fills and waiting faults on
# the restore side.
T=/sys/kernel/tracing
if mount -t tracefs nodev $T 2>/dev/null || [ -d $T/events ]; then
	echo > $T/trace
	echo 1 > $T/events/vmpagefile/enable
	vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.2 --migrate-to $BLK >/dev/null 2>&1
	vmpf-vm --restore $BLK --no-prefetch --seconds 0.2 >/dev/null 2>&1
	echo 0 > $T/events/vmpagefile/enable
	tr=$(cat $T/trace)
	if has "$tr" "vmpf_round: round=0 dirty=4096" && has "$tr" "vmpf_fill: page=[0-9]* by=fault" &&
	   has "$tr" "vmpf_fault: page=[0-9]* latency_ns=[0-9]* result=0"; then
		ok tracepoints
	else notok tracepoints "$(echo "$tr" | grep vmpf | head -n 5)"; fi
else
	skip tracepoints "no tracefs"
fi

# 9. Huge pages: guest RAM in 2 MiB tmpfs huge pages, filled with one read
# each; KVM maps them with 2 MiB pages (its pages_2m, in debugfs); every
# page equals memory at the source's pause.
D=/sys/kernel/debug
[ -d $D/kvm ] || mount -t debugfs none $D 2>/dev/null
if [ -d $D/kvm ]; then
	out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 12M --rate 40000 --seconds 0.3 \
		--migrate-to $BLK --checksums $t/sh 2>&1) || echo "# migration failed: $out"
	f0=$(num "$(vmpf-ctl version --json 2>&1)" huge_fills)
	vmpf-vm --restore $BLK --huge --no-prefetch --verify $t/sh --seconds 3 --json > $t/o9 2>&1 &
	pid=$!
	i=0 p2m=0
	while [ $i -lt 50 ] && kill -0 $pid 2>/dev/null; do
		sleep 0.1
		p2m=$(cat $D/kvm/$pid-*/pages_2m 2>/dev/null | head -n 1)
		[ "${p2m:-0}" -gt 0 ] && break
		i=$((i + 1))
	done
	wait $pid; rc=$?
	r=$(cat $t/o9)
	f1=$(num "$(vmpf-ctl version --json 2>&1)" huge_fills)
	if [ $rc = 0 ] && has "$r" '"verified_pages_mismatched":0' && [ "${p2m:-0}" -gt 0 ] &&
	   [ "$f1" -gt "$f0" ] && has "$r" '"pattern_errors":0'; then
		echo "# KVM pages_2m=$p2m, huge pages filled $((f1 - f0))"
		ok huge_pages_kvm_maps_2m
	else notok huge_pages_kvm_maps_2m "rc=$rc pages_2m=$p2m huge_fills $f0 -> $f1" "$r"; fi
else
	skip huge_pages_kvm_maps_2m "no debugfs"
fi

rm -rf $t
[ $fails = 0 ]
