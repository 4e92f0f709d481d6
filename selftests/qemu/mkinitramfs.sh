#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the test initramfs for one kernel:
#   mkinitramfs.sh KVER MODULE.ko OUT.cpio.gz FILE...
# It holds busybox-static, the kvm/kvm-amd modules and their dependencies
# from the kernel's own package (decompressed, in load order), the module
# under test, /init (guest-init.sh) and the given files in /bin.
# For QEMU as a VMM inside the test machine: the 9p modules (the host's
# root, shared by run-guest.sh, mounted at /host by guest-init.sh; left out
# when the kernel has none), /bin/qemu_vmm_lib.sh, and the inner guest's
# initramfs (mkinner.sh) as /lib/vmpf-inner.cpio.gz.  And selftests/crash_tool
# (make selftests builds it) for crash_test.sh.
# VMPF_MODULES_DIR: take the modules from there instead of /lib/modules/KVER
# (the debug-kernel lane's INSTALL_MOD_PATH tree).
set -euo pipefail

kver=$1 module=$2 out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
moddir=${VMPF_MODULES_DIR:-/lib/modules/$kver}
stage=$(mktemp -d)
chmod 755 "$stage"	# the root directory: unprivileged tests must reach /dev, /tmp, /bin
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,dev,proc,sys,tmp,lib/modules}
cp /bin/busybox "$stage/bin/busybox"
cp "$here/guest-init.sh" "$stage/init"
cp "$here/demo-role.sh" "$stage/bin/demo-role.sh"
cp "$here/../qemu_vmm_lib.sh" "$stage/bin/qemu_vmm_lib.sh"
cp "$here/../nfs_lib.sh" "$stage/bin/nfs_lib.sh"
# crash_test.sh's replayer, corrupter and lazy-restore checker.
[ -x "$here/../crash_tool" ] && cp "$here/../crash_tool" "$stage/bin/crash_tool"
"$here/mkinner.sh" "$stage/lib/vmpf-inner.cpio.gz"
chmod +x "$stage/init"
cp "$module" "$stage/lib/modules/vmpagefile.ko"
for f in "$@"; do
	cp "$f" "$stage/bin/"
done

find_module() {
	local name=$1 f
	f=$(find "$moddir/kernel" \( -name "$name.ko*" -o -name "${name//-/_}.ko*" \
		-o -name "${name//_/-}.ko*" \) | head -n 1)
	[ -n "$f" ] || { echo "mkinitramfs: module $name not found in $moddir" >&2; exit 1; }
	echo "$f"
}

declare -A seen
order=()
builtin() {
	grep -qE "/(${1//-/_}|${1//_/-}).ko\$" "$moddir/modules.builtin" 2>/dev/null
}

add_module() {
	local name=$1 f dep
	[ -n "${seen[$name]:-}" ] && return
	seen[$name]=1
	builtin "$name" && return	# in the kernel image already
	f=$(find_module "$name") || exit 1
	for dep in $(modinfo -F depends "$f" | tr ',' ' '); do
		add_module "$dep"
	done
	case $f in
	*.xz)	xz -dc "$f" ;;
	*.zst)	zstd -qdc "$f" ;;
	*.gz)	gzip -dc "$f" ;;
	*)	cat "$f" ;;
	esac > "$stage/lib/modules/$name.ko"
	order+=("$name")
}

# KVM, and what the tests use for page files: RAM disks (brd) and a
# filesystem on them (ext4 mounts the ext2 that busybox's mke2fs makes;
# it wants the crc32c crypto driver even then).
# Device-mapper, for storage fault injection (the error target, dm-flakey),
# slow storage (dm-delay) and the log of every write (dm-log-writes).
# virtio-blk: the disk the two hosts of the demo share.
# crc32c-intel before libcrc32c (the module's crc32c): libcrc32c takes the
# best implementation loaded when it loads, and insmod has no soft
# dependencies to follow.
# crc32c-intel and dm-log-writes are optional: the debug lane's kernel has
# neither (crc32c then comes from the generic driver; crash_test.sh skips
# its replays).
for m in kvm-amd brd crc32c_generic crc32c-intel libcrc32c ext4 dm-mod dm-flakey dm-delay dm-log-writes virtio_blk virtio_pci sd_mod scsi_debug; do
	case $m in
	crc32c-intel|dm-log-writes)
		if ! builtin "$m" && ! (find_module "$m" >/dev/null 2>&1); then
			echo "mkinitramfs: no $m module in $moddir: left out" >&2
			continue
		fi ;;
	esac
	add_module "$m"
done
# 9p over virtio: the host's root at /host.  Optional: a kernel built
# without it (the debug lane's) boots without /host.
for m in netfs 9pnet 9pnet_virtio 9p; do
	if builtin "$m" || (find_module "$m" >/dev/null 2>&1); then
		add_module "$m"
	else
		echo "mkinitramfs: no $m module in $moddir: no /host in the guest" >&2
	fi
done

# NFS: the server (nfsd) and client (nfsv3, nfsv4) of nfs_test.sh and of
# the demo's NFS storage; OCFS2 with its o2cb stack for the demo's OCFS2
# storage; virtio-net for the demo's link between its two hosts.
# Optional: without them nfs_test.sh skips, saying why.
for m in nfsd nfsv3 nfsv4 virtio_net ocfs2 ocfs2_stack_o2cb ocfs2_dlmfs; do
	if builtin "$m" || (find_module "$m" >/dev/null 2>&1); then
		add_module "$m"
	else
		echo "mkinitramfs: no $m module in $moddir: no NFS in the guest" >&2
	fi
done

# dmsetup, a dynamic binary: bring its libraries and loader along.
# LIBPATH: more directories to find libraries in (the NFS programs').
add_binary() {
	local lib
	cp "$1" "$stage/bin/"
	for lib in $(LD_LIBRARY_PATH=${LIBPATH:-} ldd "$1" | grep -o '/[^ ]*'); do
		case $lib in
		/lib64/*|/lib/x86_64-linux-gnu/*|/usr/lib/x86_64-linux-gnu/*)
			mkdir -p "$stage$(dirname "$lib")"
			cp -L "$lib" "$stage$lib" ;;
		*)	# unpacked elsewhere (pkg-root.sh): where the loader looks
			mkdir -p "$stage/lib/x86_64-linux-gnu"
			cp -L "$lib" "$stage/lib/x86_64-linux-gnu/" ;;
		esac
	done
}
if command -v dmsetup >/dev/null; then
	add_binary "$(command -v dmsetup)"
fi
# The NFS programs, from Debian's packages unpacked by pkg-root.sh, with
# the files they read (/etc/netconfig for libtirpc, services, rpc).
if nfs=$("$here/pkg-root.sh" nfs); then
	LIBPATH="$nfs/lib/x86_64-linux-gnu:$nfs/usr/lib/x86_64-linux-gnu"
	for b in usr/sbin/rpc.nfsd usr/sbin/rpc.mountd usr/sbin/exportfs sbin/mount.nfs \
		 sbin/rpcbind usr/sbin/rpcinfo; do
		add_binary "$nfs/$b"
	done
	LIBPATH=
	mkdir -p "$stage/etc"
	cp "$nfs/etc/netconfig" "$nfs/etc/services" "$nfs/etc/protocols" "$nfs/etc/rpc" "$stage/etc/"
else
	echo "mkinitramfs: no NFS programs: nfs_test.sh will skip" >&2
fi
# OCFS2's tools and o2cb (the demo's OCFS2 storage), in /sbin too, where
# mount.ocfs2 runs ocfs2_hb_ctl from.
if o2=$("$here/pkg-root.sh" ocfs2); then
	LIBPATH="$o2/lib/x86_64-linux-gnu:$o2/usr/lib/x86_64-linux-gnu"
	mkdir -p "$stage/sbin"
	for b in mkfs.ocfs2 mount.ocfs2 o2cb ocfs2_hb_ctl mounted.ocfs2; do
		add_binary "$o2/sbin/$b"
		ln -sf "/bin/$b" "$stage/sbin/$b"
	done
	LIBPATH=
else
	echo "mkinitramfs: no OCFS2 tools: the demo cannot use OCFS2" >&2
fi
printf '%s\n' "${order[@]}" > "$stage/lib/modules/load.order"

(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
