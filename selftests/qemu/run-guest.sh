#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot one kernel with a test initramfs under TCG:
#   run-guest.sh KVER INITRD OUTDIR [TIMEOUT_SECONDS]
# -cpu max exposes SVM, so kvm-amd loads inside and /dev/kvm runs real
# guests.  The kernel console goes to OUTDIR/console.log, the result channel
# (second serial port) to OUTDIR/result.log.  A warning panics the guest
# (panic_on_warn) and -no-reboot turns that into QEMU exiting.
# thread=single: QEMU 7.2's multi-threaded TCG raced with the nested guests'
# page-table and code patching here (seen: an L2 triple fault during dirty
# logging, an int3 oops in __schedule after a static-key flip); one TCG
# thread still runs two guest CPUs, interleaved.  Exit status:
# QEMU's, or 124 on timeout.
set -uo pipefail

kver=$1 initrd=$2 out=$3 limit=${4:-900}
# VMPF_GUEST_MEM: MiB (default 2048: the RAM disks hold up to 512 MiB,
# and qemu_migrate_test.sh runs two inner guests and keeps two dumps of
# guest RAM).
# Optional: VMPF_KERNEL_IMAGE (boot this image instead of
# /boot/vmlinuz-KVER: the debug-kernel lane's own build), VMPF_APPEND (more
# kernel arguments), VMPF_SHARED_DISK (a raw
# image attached as a virtio disk that another QEMU may share: no host
# cache, no image locking, share-rw), VMPF_HOSTROOT=0 (do not share the
# host's root: by default it is shared read-only over virtio-9p, tag
# hostroot, which guest-init.sh mounts at /host; the tests run the host's
# own QEMU from there).
extra=()
if [ "${VMPF_HOSTROOT:-1}" != 0 ]; then
	extra+=(-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap)
fi
if [ -n "${VMPF_SHARED_DISK:-}" ]; then
	extra+=(-drive "file=$VMPF_SHARED_DISK,if=none,id=d0,format=raw,cache=none,file.locking=off"
	       -device virtio-blk-pci,drive=d0,share-rw=on)
fi
# VMPF_LINK=LOCAL:REMOTE:N: a private link to another test machine, a
# virtio NIC whose frames go as UDP datagrams between ports LOCAL and
# REMOTE of 127.0.0.1 (nothing leaves this machine); N (1-9) makes its MAC
# address 52:54:00:99:00:0N.
if [ -n "${VMPF_LINK:-}" ]; then
	IFS=: read -r lp rp nic <<< "$VMPF_LINK"
	extra+=(-netdev "dgram,id=l0,local.type=inet,local.host=127.0.0.1,local.port=$lp,remote.type=inet,remote.host=127.0.0.1,remote.port=$rp"
		-device "virtio-net-pci,netdev=l0,mac=52:54:00:99:00:0$nic")
fi
mkdir -p "$out"
rm -f "$out/console.log" "$out/result.log"

timeout --kill-after=10 "$limit" qemu-system-x86_64 \
	-accel tcg,thread=single -cpu max -m "${VMPF_GUEST_MEM:-2048}" -smp "${VMPF_GUEST_SMP:-2}" \
	-nodefaults -display none -no-reboot \
	-kernel "${VMPF_KERNEL_IMAGE:-/boot/vmlinuz-$kver}" -initrd "$initrd" \
	-append "console=ttyS0 rdinit=/init panic=-1 panic_on_warn=1 oops=panic hung_task_panic=1 softlockup_panic=1 ${VMPF_APPEND:-}" \
	"${extra[@]}" \
	-serial "file:$out/console.log" -serial "file:$out/result.log" \
	</dev/null >"$out/qemu.log" 2>&1
