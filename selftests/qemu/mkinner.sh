#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the inner guest's initramfs: the guest that QEMU runs as a KVM VM
# *inside* the test machine (qemu_vmm_lib.sh, qemu_boot_test.sh):
#   mkinner.sh OUT.cpio.gz
# It holds busybox-static, the dirtier (dirtier.c, built here with
# gcc -static) and an /init that mounts /proc and /dev, prints
# "vmpf-init UPTIME" (the kernel's boot time), loads virtio_blk when the
# command line asks for a disk (disk_blocks=N) and runs the dirtier; if the
# dirtier ends, the guest powers off.  The kernel's console stays quiet
# (qemu_vmm_lib.sh's "quiet"): its messages would cut the dirtier's lines.  The dirtier
# reads dirtier_mb=N and dirtier_pps=N from the kernel command line.
set -euo pipefail

out=$1
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
chmod 755 "$stage"
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$stage/bin/busybox"
${CC:-gcc} -static -O2 -Wall -Wextra -o "$stage/bin/dirtier" "$here/dirtier.c"
# virtio_blk for every kernel here (the inner guest's disk, disk_blocks=N):
# /init loads the one of the kernel it runs, uncompressed for busybox.
for m in /lib/modules/*/kernel/drivers/block/virtio_blk.ko*; do
	[ -e "$m" ] || continue
	k=${m#/lib/modules/}
	k=${k%%/*}
	mkdir -p "$stage/lib/modules/$k"
	case $m in
	*.xz) xz -dc "$m" > "$stage/lib/modules/$k/virtio_blk.ko" ;;
	*.zst) zstd -qdc "$m" > "$stage/lib/modules/$k/virtio_blk.ko" ;;
	*) cp "$m" "$stage/lib/modules/$k/virtio_blk.ko" ;;
	esac
done
cat > "$stage/init" <<'INIT'
#!/bin/busybox sh
# /init of the inner guest (written by selftests/qemu/mkinner.sh).
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev
echo "vmpf-init $(/bin/busybox cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
if /bin/busybox grep -q 'disk_blocks=[1-9]' /proc/cmdline; then
	/bin/busybox insmod "/lib/modules/$(/bin/busybox uname -r)/virtio_blk.ko"
	/bin/busybox mdev -s 2>/dev/null
	i=0
	while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do /bin/busybox sleep 0.1; i=$((i + 1)); done
fi
/bin/dirtier
echo "vmpf-dirtier exited $?" > /dev/ttyS0
# Why (the kernel is quiet on the console): e.g. the OOM killer's lines.
/bin/busybox dmesg | /bin/busybox tail -n 12 > /dev/ttyS0
/bin/busybox poweroff -f
INIT
chmod 755 "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -9) > "$out"
