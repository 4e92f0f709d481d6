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
# QEMU's, or 124 on timeout, or 125 when the machine froze (below).
#
# VMPF_GUEST_QUIET=N: a machine whose console and result channel both
# stay silent for N seconds is taken as frozen (seen in the one-CPU
# machines that run QEMU as the test VMM: the whole test machine stops,
# its own watchdogs included: docs/testing.md): its CPUs' state from
# QEMU's monitor goes to OUTDIR/frozen.txt and QEMU is stopped.
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
rm -f "$out/console.log" "$out/result.log" "$out/frozen.txt" "$out/monitor.sock"
quiet=${VMPF_GUEST_QUIET:-0}
if [ "$quiet" -gt 0 ]; then
	extra+=(-monitor "unix:$out/monitor.sock,server=on,wait=off")
fi

# HMP commands to the monitor socket; what QEMU answered, on stdout.
monitor() {
	python3 - "$out/monitor.sock" "$@" <<'PY' 2>&1
import re, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
for cmd in sys.argv[2:]:
    s.sendall((cmd + "\n").encode())
    time.sleep(1)
s.settimeout(2)
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except OSError:
    pass
# The monitor echoes each key with terminal escapes: keep the answers.
text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.decode("utf-8", "replace"))
sys.stdout.write(re.sub(r"\(qemu\) [^\n]*", "(qemu)", text))
PY
}

# The newest change to either channel, in seconds since the epoch.
last_output() {
	stat -c %Y "$out/console.log" "$out/result.log" 2>/dev/null | sort -n | tail -n 1
}

timeout --kill-after=10 "$limit" qemu-system-x86_64 \
	-accel tcg,thread=single -cpu max -m "${VMPF_GUEST_MEM:-2048}" -smp "${VMPF_GUEST_SMP:-2}" \
	-nodefaults -display none -no-reboot \
	-kernel "${VMPF_KERNEL_IMAGE:-/boot/vmlinuz-$kver}" -initrd "$initrd" \
	-append "console=ttyS0 rdinit=/init panic=-1 panic_on_warn=1 oops=panic hung_task_panic=1 softlockup_panic=1 ${VMPF_APPEND:-}" \
	"${extra[@]}" \
	-serial "file:$out/console.log" -serial "file:$out/result.log" \
	</dev/null >"$out/qemu.log" 2>&1 &
qpid=$!
if [ "$quiet" -gt 0 ]; then
	tick=$(( quiet < 10 ? quiet : 10 ))
	while kill -0 $qpid 2>/dev/null; do
		sleep $tick
		kill -0 $qpid 2>/dev/null || break
		last=$(last_output)
		[ -n "$last" ] && [ $(( $(date +%s) - last )) -ge "$quiet" ] || continue
		{
			echo "no output on the console or the result channel for $quiet s"
			monitor "info status" "info cpus" "info registers -a"
		} > "$out/frozen.txt"
		kill $qpid 2>/dev/null
		wait $qpid
		exit 125
	done
fi
wait $qpid
