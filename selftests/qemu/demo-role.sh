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
#   qemu-source, qemu-dest: the same with an unmodified QEMU as the VMM
#           (the host's, run inside this machine with KVM: qemu_vmm_lib.sh):
#           vmpf-ctl migrate --qmp, then QEMU's RAM at pause (QMP pmemsave)
#           at the end of the disk; vmpf-ctl restore --qemu on the other
#           host, its RAM compared before the guest goes on, then the guest
#           counts on and checks its own memory.
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
qemu-source)
	. /bin/qemu_vmm_lib.sh
	mb=$(( $(echo "$ram" | sed 's/M$//') ))
	rc=1
	if vq_usable; then
		VQ_APPEND="dirtier_mb=$((mb / 4)) no-steal-acc" vq_start /tmp/vm "$mb"
		vq_wait_for /tmp/vm/serial.log "^vmpf-count 5" 300 "$VQ_PID"
		out=$(vmpf-ctl migrate --qmp /tmp/vm/qmp.sock $DISK --json 2>/tmp/err); rc=$?
		say qemu-source "$(echo "$out" | tail -n 1)"
		[ -s /tmp/err ] && say source-stderr "$(cat /tmp/err)"
	else
		say source-stderr "cannot run QEMU here: $VQ_WHY"
	fi
	if [ $rc = 0 ]; then
		count=$(tr -d '\r' < /tmp/vm/serial.log | sed -n 's/^vmpf-count \([0-9]*\)$/\1/p' | tail -n 1)
		vmpf-ctl qmp --qmp /tmp/vm/qmp.sock pmemsave \
			"{\"val\": 0, \"size\": $((mb << 20)), \"filename\": \"/tmp/src.mem\"}" > /dev/null
		dd if=/tmp/src.mem of=$DISK bs=1M seek=$((SUMS_MB - mb)) conv=fsync 2>/dev/null &&
			printf 'VMPFDUMP %012d %d\n' "$((mb << 20))" "$count" |
			dd of=$DISK bs=1M seek=$SUMS_MB conv=fsync 2>/dev/null || rc=1
		vmpf-ctl qmp --qmp /tmp/vm/qmp.sock quit > /dev/null
	fi
	echo "VMPF-DEMO-DONE source $rc" > $R
	;;
qemu-dest)
	. /bin/qemu_vmm_lib.sh
	mb=$(( $(echo "$ram" | sed 's/M$//') ))
	i=0
	while [ $i -lt 1200 ]; do
		blockdev --flushbufs $DISK
		hdr=$(dd if=$DISK bs=1M skip=$SUMS_MB count=1 2>/dev/null | head -c 32)
		case $hdr in VMPFDUMP*) break ;; esac
		sleep 0.5
		i=$((i + 1))
	done
	count=$(echo "$hdr" | cut -d' ' -f3)
	dd if=$DISK of=/tmp/src.mem bs=1M skip=$((SUMS_MB - mb)) count=$mb 2>/dev/null
	say dest-info "$(vmpf-ctl info $DISK --json 2>&1)"
	rc=1
	mkdir -p /tmp/d
	if vq_usable; then
		eval "set -- $(VQ_APPEND="dirtier_mb=$((mb / 4)) no-steal-acc" vq_guest_args "$mb")"
		# shellcheck disable=SC2086
		vmpf-ctl restore --qemu $DISK -- $VQ_QEMU "$@" -S -serial file:/tmp/d/serial.log \
			-qmp unix:/tmp/d/qmp.sock,server=on,wait=off > /tmp/d/restore.out 2>&1 &
		rpid=$!
		vq_wait_for /tmp/d/restore.out "^resumed\|vmpf-ctl:" 120 $rpid
		resumed=$(grep '^resumed' /tmp/d/restore.out | sed -n 's/.* \([0-9.]*\) ms after the open.*/\1/p')
		vmpf-ctl qmp --qmp /tmp/d/qmp.sock pmemsave \
			"{\"val\": 0, \"size\": $((mb << 20)), \"filename\": \"/tmp/dst.mem\"}" > /dev/null
		same=false
		vq_same_ram /tmp/src.mem /tmp/dst.mem > /tmp/same && same=true
		rm -f /tmp/dst.mem
		vmpf-ctl qmp --qmp /tmp/d/qmp.sock cont > /dev/null
		vq_wait_for /tmp/d/serial.log "^vmpf-verify" 240 $rpid
		first=$(tr -d '\r' < /tmp/d/serial.log | sed -n 's/^vmpf-count \([0-9]*\)$/\1/p' | head -n 1)
		verify=$(tr -d '\r' < /tmp/d/serial.log | grep '^vmpf-verify' | head -n 1)
		st=$(vmpf-ctl restore --pid $rpid --json 2>&1)
		say qemu-dest "{\"resumed_ms\":${resumed:-0},\"ram_equal\":$same,\"source_count\":${count:-0},\"dest_first_count\":${first:-0},\"guest_check\":\"$verify\",\"status\":$st}"
		vmpf-ctl qmp --qmp /tmp/d/qmp.sock quit > /dev/null
		wait $rpid
		[ "$same" = true ] && [ -n "$first" ] && [ "$first" -gt "${count:-0}" ] &&
			echo "$verify" | grep -q '^vmpf-verify ok' && rc=0
		[ $rc = 0 ] || say dest-stderr "$(tail -n 5 /tmp/d/restore.out; cat /tmp/same)"
	else
		say dest-stderr "cannot run QEMU here: $VQ_WHY"
	fi
	echo "VMPF-DEMO-DONE dest $rc" > $R
	;;
esac
