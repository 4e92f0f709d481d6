#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# One host of the two-host demo, inside its QEMU guest (busybox sh).  Both
# hosts see the same disk as /dev/vda; nothing else connects them.
#   source: run a dirtying VM, migrate it into the page file on /dev/vda,
#           then leave its per-page checksums (taken at pause) at the end of
#           the disk for the destination to verify against.
#   dest:   wait for those checksums (so for the commit), restore the VM
#           lazily from the page file, let it run while its memory arrives,
#           then check through a second restore that every page the kernel
#           serves equals the source's memory at pause.
# Results go to the second serial port as "VMPF-DEMO <role> <json>" lines.
role=$1 ram=$2
R=/dev/ttyS1
DISK=/dev/vda
SUMS_MB=$(( $(blockdev --getsize64 $DISK) / 1048576 - 16 ))	# the last 16 MiB
# Every line of $2 goes out prefixed with "VMPF-DEMO $1 ".
say() { echo "$2" | sed "s/^/VMPF-DEMO $1 /" > $R; }

case $role in
source)
	out=$(vmpf-vm --ram "$ram" --vcpus 2 --working-set 8M --rate 4000 --seconds 1 \
		--migrate-to $DISK --checksums /tmp/sums --json 2>/tmp/err); rc=$?
	say source "$out"
	[ -s /tmp/err ] && say source-stderr "$(cat /tmp/err)"
	if [ $rc = 0 ]; then
		{ printf 'VMPFSUMS %012d\n' "$(wc -c < /tmp/sums)"; cat /tmp/sums; } > /tmp/blob
		dd if=/tmp/blob of=$DISK bs=1M seek=$SUMS_MB conv=fsync 2>/dev/null || rc=1
	fi
	echo "VMPF-DEMO-DONE source $rc" > $R
	;;
dest)
	i=0
	while [ $i -lt 600 ]; do
		blockdev --flushbufs $DISK
		hdr=$(dd if=$DISK bs=1M skip=$SUMS_MB count=1 2>/dev/null | head -c 21)
		case $hdr in VMPFSUMS*) break ;; esac
		sleep 0.5
		i=$((i + 1))
	done
	len=${hdr#VMPFSUMS }
	len=$((10#$len + 0))
	dd if=$DISK bs=1M skip=$SUMS_MB count=16 2>/dev/null | tail -c +22 | head -c "$len" > /tmp/sums
	say dest-info "$(vmpf-ctl info $DISK --json 2>&1)"
	out=$(vmpf-vm --restore $DISK --seconds 1 --wait-complete --json 2>/tmp/err); rc=$?
	say dest "$out"
	[ -s /tmp/err ] && say dest-stderr "$(cat /tmp/err)"
	ver=$(vmpf-vm --restore $DISK --no-prefetch --verify /tmp/sums --seconds 0 --json 2>&1); vrc=$?
	say verify "$ver"
	[ $rc = 0 ] && [ $vrc = 0 ] || rc=1
	echo "VMPF-DEMO-DONE dest $rc" > $R
	;;
esac
