#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# One host of the two-host demo, inside its QEMU guest (busybox sh).
#   demo-role.sh ROLE RAM [STORAGE]
# STORAGE raw (the default): both hosts see the same disk as /dev/vda,
# the page file is that disk, and nothing else connects them.  nfs: the
# hosts have a private link (eth0, 10.99.0.1 for A, 10.99.0.2 for B); A
# exports a directory with the kernel's NFS server, both mount it
# (NFSv4.2), and the page file is a file there.  ocfs2: the shared disk
# holds an OCFS2 filesystem (made on the machine running the demo), which
# both hosts mount with the o2cb cluster stack (heartbeat on the disk, the
# DLM over the private link); the page file is a file there.
#   source: run a dirtying VM, migrate it into the page file, then leave
#           its per-page checksums (taken at pause) for the destination to
#           verify against: at the end of the disk, or as a file.
#   dest:   wait for those checksums (so for the commit), restore the VM
#           lazily from the page file, let it run while its memory arrives,
#           then check through a second restore that every page the kernel
#           serves equals the source's memory at pause.
#   qemu-source, qemu-dest: the same with an unmodified QEMU as the VMM
#           (the host's, run inside this machine with KVM: qemu_vmm_lib.sh):
#           vmpf-ctl migrate --qmp, then QEMU's RAM at pause (QMP pmemsave)
#           for the other host; vmpf-ctl restore --qemu on the other host,
#           its RAM compared before the guest goes on, then the guest counts
#           on and checks its own memory.
#           With disk=local (the fourth argument) the QEMU guest also has
#           a local disk that it keeps writing and checking: the source
#           mirrors it into the share (vmpf-ctl migrate --disks-to), the
#           destination starts on that copy and moves it to its own local
#           storage while the guest runs (restore --qemu --disks-to).
# Results go to the second serial port as "VMPF-DEMO <role> <json>" lines.
role=$1 ram=$2 storage=${3:-raw} disk=${4:-none}
R=/dev/ttyS1
DISK=/dev/vda
# Every line of $2 goes out prefixed with "VMPF-DEMO $1 ".
say() { echo "$2" | sed "s/^/VMPF-DEMO $1 /" > $R; }
mb=$(( $(echo "$ram" | sed 's/M$//') ))

case $storage in
raw)
	PF=$DISK
	SUMS_MB=$(( $(blockdev --getsize64 $DISK) / 1048576 - 16 ))	# the last 16 MiB
	;;
nfs)
	. /bin/nfs_lib.sh
	SHARE=/mnt/share
	PF=$SHARE/vm.pf
	case $role in *source) me=1 ;; *) me=2 ;; esac
	hostname host-$me
	nfs_env
	ip link set eth0 up && ip addr add 10.99.0.$me/24 dev eth0 ||
		say storage-error "no network link: $(ip link 2>&1 | head -n 4)"
	if [ $me = 1 ]; then
		# The export: tmpfs (the server writes through its page cache;
		# the clients' O_DIRECT is theirs), room for the page file and
		# the RAM dump of the QEMU variant.
		mkdir -p /srv/nfs
		mount -t tmpfs -o size=$((3 * mb + 64))m tmpfs /srv/nfs
		why=$(nfs_server_start /srv/nfs 10.99.0.0/24) || say storage-error "NFS server: $why"
	fi
	# Until the server answers (B boots alongside A).  lookupcache=none:
	# files the other host creates show at once.
	i=0
	while ! why=$(nfs_mount 10.99.0.1:/srv/nfs $SHARE vers=4.2,proto=tcp,lookupcache=none) &&
	      [ $i -lt 120 ]; do
		sleep 1
		i=$((i + 1))
	done
	grep -q " $SHARE nfs4 " /proc/mounts || say storage-error "cannot mount the share: $why"
	say storage "{\"storage\":\"nfs\",\"mount\":\"$(grep " $SHARE " /proc/mounts | cut -d' ' -f1-4)\"}"
	if [ $me = 1 ]; then
		# The page file: layout size of the image, with room to spare.
		truncate -s $(( (mb + mb / 32 + 2 + 16) * 1048576 )) $PF
	fi
	;;
ocfs2)
	SHARE=/mnt/share
	PF=$SHARE/vm.pf
	case $role in *source) me=1 ;; *) me=2 ;; esac
	# o2cb names the nodes by host name.
	hostname host-$me
	ip link set lo up
	ip link set eth0 up && ip addr add 10.99.0.$me/24 dev eth0 ||
		say storage-error "no network link: $(ip link 2>&1 | head -n 4)"
	mkdir -p /etc/ocfs2 /dlm $SHARE
	cat > /etc/ocfs2/cluster.conf <<'CONF'
cluster:
	node_count = 2
	heartbeat_mode = local
	name = vmpf

node:
	ip_port = 7777
	ip_address = 10.99.0.1
	number = 1
	name = host-1
	cluster = vmpf

node:
	ip_port = 7777
	ip_address = 10.99.0.2
	number = 2
	name = host-2
	cluster = vmpf
CONF
	grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs none /sys/kernel/config
	mount -t ocfs2_dlmfs ocfs2_dlmfs /dlm 2>/dev/null
	why=$(o2cb register-cluster vmpf 2>&1) || say storage-error "o2cb register-cluster: $why"
	# Both hosts mount at once; the second joins the first's domain.
	i=0
	while ! why=$(mount.ocfs2 $DISK $SHARE 2>&1) && [ $i -lt 20 ]; do
		sleep 3
		i=$((i + 1))
	done
	if grep -q " $SHARE ocfs2 " /proc/mounts; then
		say storage "{\"storage\":\"ocfs2\",\"mount\":\"$(grep " $SHARE " /proc/mounts | cut -d' ' -f1-4)\"}"
	else
		say storage-error "cannot mount OCFS2: $why $(dmesg | grep -i 'ocfs2\|o2' | tail -n 3)"
	fi
	[ $me = 1 ] && truncate -s $(( (mb + mb / 32 + 2 + 16) * 1048576 )) $PF
	;;
*)
	say storage-error "unknown storage '$storage'"
	exit 1
	;;
esac

# disk_await MAGIC BYTES TRIES (raw): wait, TRIES half-seconds at most,
# until the header at the disk's tail starts with MAGIC; $hdr: its BYTES.
disk_await() {
	i=0
	while [ $i -lt "$3" ]; do
		blockdev --flushbufs $DISK
		hdr=$(dd if=$DISK bs=1M skip=$SUMS_MB count=1 2>/dev/null | head -c "$2")
		case $hdr in "$1"*) return 0 ;; VMPFFAIL*) return 2 ;; esac
		sleep 0.5
		i=$((i + 1))
	done
	return 1
}
# share_umount: unmount the share once the restore's lease has let go of
# the page file (a kernel worker writes its last record just after the
# restore ends, through its own reference to the file).
share_umount() {
	i=0
	while ! umount $SHARE 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
}
# publish NAME FILE [HEADER]: FILE for the other host (nfs), as NAME.
publish() {
	cp "$2" "$SHARE/$1.tmp" && sync && mv "$SHARE/$1.tmp" "$SHARE/$1" &&
		{ [ -z "${3:-}" ] || echo "$3" > "$SHARE/$1.hdr"; }
}
# await NAME: wait (10 min at most) until the other host published NAME.
await() {
	i=0
	while [ ! -e "$SHARE/$1" ] && [ ! -e "$SHARE/failed" ] && [ $i -lt 1200 ]; do
		sleep 0.5
		i=$((i + 1))
	done
	[ -e "$SHARE/$1" ]
}
# source_failed: tell the destination, which waits for the source's
# results, that none will come (it gives up at once instead of in minutes).
source_failed() {
	if [ -n "${SHARE:-}" ]; then
		: > "$SHARE/failed"
		sync
	else
		printf 'VMPFFAIL\n' | dd of=$DISK bs=1M seek=$SUMS_MB conv=fsync 2>/dev/null
	fi
}
# dest_gives_up: the source failed; end this role.
dest_gives_up() {
	say dest-stderr "the source host failed: nothing to restore"
	[ -n "${SHARE:-}" ] && : > $SHARE/dest.done
	[ "$storage" = ocfs2 ] && share_umount
	echo "VMPF-DEMO-DONE dest 1" > $R
	exit 0
}

case $role in
source)
	out=$(vmpf-vm --ram "$ram" --vcpus 2 --working-set 8M --rate 4000 --seconds 1 \
		--migrate-to $PF --checksums /tmp/sums --json 2>/tmp/err); rc=$?
	say source "$out"
	[ -s /tmp/err ] && say source-stderr "$(cat /tmp/err)"
	if [ $rc = 0 ] && [ -n "${SHARE:-}" ]; then
		publish sums /tmp/sums || rc=1
	elif [ $rc = 0 ]; then
		{ printf 'VMPFSUMS %012d\n' "$(wc -c < /tmp/sums)"; cat /tmp/sums; } > /tmp/blob
		dd if=/tmp/blob of=$DISK bs=1M seek=$SUMS_MB conv=fsync 2>/dev/null || rc=1
	fi
	[ $rc = 0 ] || source_failed
	# The NFS server (the OCFS2 node) stays until the destination is done.
	[ -n "${SHARE:-}" ] && await dest.done
	[ "$storage" = ocfs2 ] && sleep 5 && share_umount
	echo "VMPF-DEMO-DONE source $rc" > $R
	;;
dest)
	if [ -n "${SHARE:-}" ]; then
		await sums && cp $SHARE/sums /tmp/sums || dest_gives_up
	else
		disk_await VMPFSUMS 21 600 || dest_gives_up
		len=${hdr#VMPFSUMS }
		len=$((10#$len + 0))
		dd if=$DISK bs=1M skip=$SUMS_MB count=16 2>/dev/null | tail -c +22 | head -c "$len" > /tmp/sums
	fi
	say dest-info "$(vmpf-ctl info $PF --json 2>&1)"
	out=$(vmpf-vm --restore $PF --seconds 1 --wait-complete --json 2>/tmp/err); rc=$?
	say dest "$out"
	[ -s /tmp/err ] && say dest-stderr "$(cat /tmp/err)"
	ver=$(vmpf-vm --restore $PF --no-prefetch --verify /tmp/sums --seconds 0 --json 2>&1); vrc=$?
	say verify "$ver"
	[ $rc = 0 ] && [ $vrc = 0 ] || rc=1
	[ -n "${SHARE:-}" ] && : > $SHARE/dest.done
	# OCFS2: leave the cluster before the other host does (a two-node
	# o2cb cluster fences the higher node that loses the lower one).
	[ "$storage" = ocfs2 ] && share_umount
	echo "VMPF-DEMO-DONE dest $rc" > $R
	;;
qemu-source)
	. /bin/qemu_vmm_lib.sh
	rc=1
	if vq_usable; then
		# A boot that locks up (nested KVM in these test machines,
		# docs/testing.md) is tried again, at most three times.
		dargs= dopt= dappend=
		if [ "$disk" = local ]; then
			mkdir -p /tmp/local
			truncate -s 16M /tmp/local/disk.raw
			dargs="-drive file=/tmp/local/disk.raw,format=raw,if=none,id=disk0 -device virtio-blk-pci,drive=disk0"
			dopt="--disks-to $SHARE"
			dappend=" disk_blocks=1024"
		fi
		# shellcheck disable=SC2086
		if VQ_APPEND="dirtier_mb=$((mb / 4)) no-steal-acc$dappend" vq_boot /tmp/vm "$mb" $dargs > /tmp/boot.log; then
			# shellcheck disable=SC2086
			out=$(vmpf-ctl migrate --qmp /tmp/vm/qmp.sock $PF $dopt --json 2>/tmp/err); rc=$?
			say qemu-source "$(echo "$out" | tail -n 1)"
			[ -s /tmp/err ] && say source-stderr "$(cat /tmp/err)"
		else
			say source-stderr "the guest did not boot in three tries (nested KVM in this test machine; see docs/testing.md)"
		fi
		[ -s /tmp/boot.log ] && say source-stderr "$(cat /tmp/boot.log)"
	else
		say source-stderr "cannot run QEMU here: $VQ_WHY"
	fi
	if [ $rc = 0 ]; then
		count=$(tr -d '\r' < /tmp/vm/serial.log | sed -n 's/^vmpf-count \([0-9]*\)$/\1/p' | tail -n 1)
		vmpf-ctl qmp --qmp /tmp/vm/qmp.sock pmemsave \
			"{\"val\": 0, \"size\": $((mb << 20)), \"filename\": \"/tmp/src.mem\"}" > /dev/null
		if [ -n "${SHARE:-}" ]; then
			publish src.mem /tmp/src.mem "VMPFDUMP $((mb << 20)) $count" || rc=1
		else
			dd if=/tmp/src.mem of=$DISK bs=1M seek=$((SUMS_MB - mb)) conv=fsync 2>/dev/null &&
				printf 'VMPFDUMP %012d %d\n' "$((mb << 20))" "$count" |
				dd of=$DISK bs=1M seek=$SUMS_MB conv=fsync 2>/dev/null || rc=1
		fi
		rm -f /tmp/src.mem
		vmpf-ctl qmp --qmp /tmp/vm/qmp.sock quit > /dev/null
	fi
	[ $rc = 0 ] || source_failed
	[ -n "${SHARE:-}" ] && await dest.done
	[ "$storage" = ocfs2 ] && sleep 5 && share_umount
	echo "VMPF-DEMO-DONE source $rc" > $R
	;;
qemu-dest)
	. /bin/qemu_vmm_lib.sh
	if [ -n "${SHARE:-}" ]; then
		await src.mem || dest_gives_up
		hdr=$(cat $SHARE/src.mem.hdr)
		cp $SHARE/src.mem /tmp/src.mem
	else
		disk_await VMPFDUMP 32 1200 || dest_gives_up
		dd if=$DISK of=/tmp/src.mem bs=1M skip=$((SUMS_MB - mb)) count=$mb 2>/dev/null
	fi
	count=$(echo "$hdr" | cut -d' ' -f3)
	say dest-info "$(vmpf-ctl info $PF --json 2>&1)"
	rc=1
	mkdir -p /tmp/d
	if vq_usable; then
		dargs= dopt= dappend=
		if [ "$disk" = local ]; then
			mkdir -p /tmp/local
			dargs="-drive file=$SHARE/disk.raw,format=raw,if=none,id=disk0 -device virtio-blk-pci,drive=disk0"
			dopt="--disks-to /tmp/local"
			dappend=" disk_blocks=1024"
		fi
		eval "set -- $(VQ_APPEND="dirtier_mb=$((mb / 4)) no-steal-acc$dappend" vq_guest_args "$mb")"
		# shellcheck disable=SC2086
		vmpf-ctl restore --qemu $PF $dopt -- $VQ_QEMU "$@" $dargs -S -serial file:/tmp/d/serial.log \
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
		# A guest that prints nothing for a minute after cont will not:
		# say where its vCPU is instead of waiting out the rest.
		where=
		if vq_wait_for /tmp/d/serial.log "^vmpf-count" 60 $rpid; then
			vq_wait_for /tmp/d/serial.log "^vmpf-verify" 240 $rpid
		else
			where="vCPU: $(vq_where /tmp/d/qmp.sock); QEMU: $(vmpf-ctl qmp --qmp /tmp/d/qmp.sock query-status 2>&1)"
		fi
		# The disk: checked from the share's copy, then moved to local
		# storage, then checked again there.
		dcheck= dmoved=false dafter=
		if [ "$disk" = local ] && [ -z "$where" ]; then
			vq_wait_for /tmp/d/serial.log "^vmpf-disk-verify" 120 $rpid
			dcheck=$(tr -d '\r' < /tmp/d/serial.log | grep '^vmpf-disk-verify' | head -n 1)
			if vq_wait_for /tmp/d/restore.out "runs on the copies\|vmpf-ctl:" 300 $rpid &&
			   grep -q 'runs on the copies' /tmp/d/restore.out && [ ! -e $SHARE/disk.raw ]; then
				dmoved=true
				n=$(tr -d '\r' < /tmp/d/serial.log | grep -c '^vmpf-disk-verify')
				i=0
				while [ "$(tr -d '\r' < /tmp/d/serial.log | grep -c '^vmpf-disk-verify')" -le "$n" ] &&
				      [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
				dafter=$(tr -d '\r' < /tmp/d/serial.log | grep '^vmpf-disk-verify' | tail -n 1)
			fi
		fi
		first=$(tr -d '\r' < /tmp/d/serial.log | sed -n 's/^vmpf-count \([0-9]*\)$/\1/p' | head -n 1)
		verify=$(tr -d '\r' < /tmp/d/serial.log | grep '^vmpf-verify' | head -n 1)
		st=$(vmpf-ctl restore --pid $rpid --json 2>&1)
		say qemu-dest "{\"resumed_ms\":${resumed:-0},\"ram_equal\":$same,\"source_count\":${count:-0},\"dest_first_count\":${first:-0},\"guest_check\":\"$verify\",\"disk_check\":\"$dcheck\",\"disk_moved\":$dmoved,\"disk_check_after\":\"$dafter\",\"status\":$st}"
		vmpf-ctl qmp --qmp /tmp/d/qmp.sock quit > /dev/null
		wait $rpid
		[ "$same" = true ] && [ -n "$first" ] && [ "$first" -gt "${count:-0}" ] &&
			echo "$verify" | grep -q '^vmpf-verify ok' && rc=0
		[ "$disk" = local ] && ! { echo "$dcheck" | grep -q '^vmpf-disk-verify ok' &&
			[ $dmoved = true ] && echo "$dafter" | grep -q '^vmpf-disk-verify ok'; } && rc=1
		[ $rc = 0 ] || say dest-stderr "$(tail -n 12 /tmp/d/restore.out; cat /tmp/same)
${where:+the guest printed nothing after cont: $where
}the guest's console, last lines:
$(tr -d '\r' < /tmp/d/serial.log | tail -n 25)"
	else
		say dest-stderr "cannot run QEMU here: $VQ_WHY"
	fi
	[ -n "${SHARE:-}" ] && : > $SHARE/dest.done
	# OCFS2: leave the cluster before the other host does (a two-node
	# o2cb cluster fences the higher node that loses the lower one).
	[ "$storage" = ocfs2 ] && share_umount
	echo "VMPF-DEMO-DONE dest $rc" > $R
	;;
esac
