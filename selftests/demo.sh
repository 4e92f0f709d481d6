#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: a real migration between two hosts that share nothing but
# the page file's storage.  Two QEMU machines boot the newest Debian 6.12
# kernel with the module.  Host A runs a dirtying VM and migrates it into
# the page file; host B waits for the commit, restores the VM lazily and
# resumes it while its memory arrives, then checks every page.
#   VMPF_DEMO_RAM  guest RAM (default 256M; 128M with QEMU)
#   VMPF_DEMO_VMM  vmpf-vm (default), or qemu: an unmodified QEMU (the
#                  host's, run inside each host with KVM) migrated by
#                  vmpf-ctl migrate --qmp and restore --qemu
#   VMPF_DEMO_STORAGE  raw (default): both hosts see one raw image as a
#                  virtio disk (no host cache, shared), the page file is
#                  that disk, and there is no network at all: the commit
#                  record is the hand-off.  nfs: the hosts have a private
#                  link (UDP between two ports of this machine's loopback:
#                  nothing leaves it); A exports a directory with the
#                  kernel's NFS server, both mount it (NFSv4.2), and the
#                  page file is a file there.  ocfs2: the shared disk
#                  holds an OCFS2 filesystem, which both hosts mount with
#                  the o2cb cluster stack (disk heartbeat, the DLM over
#                  the same private link); the page file is a file there.
#   VMPF_DEMO_DISK  local (QEMU only; storage nfs unless told ocfs2): the
#                  guest also has a 16 MiB disk on A's own storage, which
#                  it keeps writing and checking; A mirrors it into the
#                  share with the memory (vmpf-ctl migrate --disks-to), B
#                  starts on that copy and moves it to B's own storage
#                  while the guest runs (restore --qemu --disks-to).
# Exits non-zero if the migration or the verification fails.
set -uo pipefail
cd "$(dirname "$0")/.."
VMM=${VMPF_DEMO_VMM:-vmpf-vm}
case $VMM in
vmpf-vm) RAM=${VMPF_DEMO_RAM:-256M} ;;
qemu) RAM=${VMPF_DEMO_RAM:-128M} ;;
*) echo "demo: VMPF_DEMO_VMM=$VMM: say vmpf-vm or qemu" >&2; exit 2 ;;
esac
DISK=${VMPF_DEMO_DISK:-none}
case $DISK in
none) STORAGE=${VMPF_DEMO_STORAGE:-raw} ;;
local)
	[ "$VMM" = qemu ] || { echo "demo: VMPF_DEMO_DISK=local needs VMPF_DEMO_VMM=qemu" >&2; exit 2; }
	STORAGE=${VMPF_DEMO_STORAGE:-nfs}
	[ "$STORAGE" != raw ] ||
		{ echo "demo: VMPF_DEMO_DISK=local needs a filesystem on the share for the disk's copy: VMPF_DEMO_STORAGE=nfs or ocfs2" >&2; exit 2; }
	;;
*) echo "demo: VMPF_DEMO_DISK=$DISK: say local (or leave it unset)" >&2; exit 2 ;;
esac
case $STORAGE in
raw|nfs|ocfs2) ;;
*) echo "demo: VMPF_DEMO_STORAGE=$STORAGE: say raw, nfs or ocfs2" >&2; exit 2 ;;
esac
OUT=build/demo
mkdir -p "$OUT"

die() { echo "demo: $*" >&2; exit 1; }
num() { echo "$1" | sed -n "s/.*\"$2\":\([0-9-]*\).*/\1/p" | head -n 1; }
# failed WHAT ROLE_OUTPUT: the demo failed at WHAT; what the role reported.
failed() {
	ok=0
	echo "$1 FAILED:"
	echo "$2" | grep '^VMPF-DEMO' | sed 's/^/  /'
}

kernels=$(selftests/deps.sh) || die "installing what the demo needs failed"
k=$(echo "$kernels" | tr ' ' '\n' | grep '^6\.12' | tail -n 1)
[ -n "$k" ] || k=$(echo "$kernels" | awk '{print $NF}')
dsay=
[ "$DISK" = local ] && dsay=", a local disk"
echo "demo: kernel $k, guest RAM $RAM, VMM $VMM, storage $STORAGE$dsay"

make -s tools >/dev/null || die "building the tools failed"
rm -rf "$OUT/mod" && mkdir -p "$OUT/mod" && cp -r Kbuild Makefile dkms.conf kernel uapi "$OUT/mod/"
make -s -C "$OUT/mod" KERNELRELEASE="$k" module >"$OUT/build.log" 2>&1 ||
	die "building the module failed: see $OUT/build.log"
selftests/qemu/mkinitramfs.sh "$k" "$OUT/mod/vmpagefile.ko" "$OUT/initrd.gz" \
	tools/vmpf-ctl tools/vmpf-vm || die "building the initramfs failed"

ram_mb=$(( $(numfmt --from=iec "$RAM") / 1048576 ))
# Each host holds the guest's RAM once or twice (VMM and restore mapping).
export VMPF_GUEST_MEM=$(( 768 + 2 * ram_mb ))
roles="source dest"
if [ "$VMM" = qemu ]; then
	# QEMU's RAM, the dumps at pause and on the destination.
	export VMPF_GUEST_MEM=$(( 768 + 4 * ram_mb ))
	roles="qemu-source qemu-dest"
fi
if [ "$STORAGE" = raw ]; then
	# The shared disk: the page file, then 16 MiB where A leaves its checksums.
	disk=$OUT/shared.img
	rm -f "$disk"
	truncate -s $(( (ram_mb + ram_mb / 32 + 2 + 8 + 16) * 1048576 )) "$disk"
	if [ "$VMM" = qemu ]; then
		# QEMU's device-state room (16 MiB), and A's dump of guest RAM at pause.
		truncate -s $(( (2 * ram_mb + ram_mb / 32 + 2 + 16 + 16) * 1048576 )) "$disk"
	fi
	echo "demo: booting host A (source) and host B (destination) on one shared disk"
	link_a= link_b=
else
	# Two UDP ports of the loopback for the link, from this process's id.
	p=$(( 20000 + ($$ % 20000) * 2 ))
	link_a="$p:$((p + 1)):1" link_b="$((p + 1)):$p:2"
	disk=
fi
if [ "$STORAGE" = nfs ]; then
	# A's export (tmpfs) holds the page file, and the RAM dump with QEMU.
	VMPF_GUEST_MEM=$(( VMPF_GUEST_MEM + 3 * ram_mb ))
	echo "demo: booting host A (source, NFS server) and host B (destination), linked by UDP ports $p and $((p + 1)) of 127.0.0.1"
elif [ "$STORAGE" = ocfs2 ]; then
	# The page file, the RAM dump with QEMU, OCFS2's journals and metadata.
	disk=$OUT/shared.img
	rm -f "$disk"
	truncate -s $(( (3 * ram_mb + 16 + 128) * 1048576 )) "$disk"
	o2=$(selftests/qemu/pkg-root.sh ocfs2) || die "OCFS2's tools cannot be had"
	LD_LIBRARY_PATH=$o2/usr/lib/x86_64-linux-gnu:$o2/lib/x86_64-linux-gnu \
		"$o2/sbin/mkfs.ocfs2" -q -F -b 4K -C 4K -N 2 -J size=8M -L vmpfshare \
		--cluster-stack=o2cb --cluster-name=vmpf "$disk" > "$OUT/mkfs.log" 2>&1 ||
		die "mkfs.ocfs2 failed: $(tail -n 3 "$OUT/mkfs.log")"
	echo "demo: booting host A (source) and host B (destination): OCFS2 on one shared disk, the o2cb cluster over UDP ports $p and $((p + 1)) of 127.0.0.1"
fi
# QEMU's hosts get one CPU: inner QEMU guests lock up in two-CPU test
# machines (docs/testing.md, check.sh's qemu lane).
smp=2
[ "$VMM" = qemu ] && smp=1
export VMPF_GUEST_SMP=$smp
VMPF_SHARED_DISK=$disk VMPF_LINK=$link_a VMPF_APPEND="vmpf_demo=${roles% *},$RAM,$STORAGE,$DISK" \
	selftests/qemu/run-guest.sh "$k" "$OUT/initrd.gz" "$OUT/host-a" 1200 &
a=$!
VMPF_SHARED_DISK=$disk VMPF_LINK=$link_b VMPF_APPEND="vmpf_demo=${roles#* },$RAM,$STORAGE,$DISK" \
	selftests/qemu/run-guest.sh "$k" "$OUT/initrd.gz" "$OUT/host-b" 1200 &
b=$!
wait $a
wait $b

res_a=$(tr -d '\r' < "$OUT/host-a/result.log")
res_b=$(tr -d '\r' < "$OUT/host-b/result.log")
if [ "$STORAGE" != raw ]; then
	echo
	echo "=== storage: $STORAGE ==="
	for r in "$res_a" "$res_b"; do
		echo "$r" | sed -n 's/^VMPF-DEMO storage .*"mount":"\([^"]*\)".*/mounted            \1/p'
		echo "$r" | sed -n 's/^VMPF-DEMO storage-error /FAILED             /p'
	done
fi

if [ "$VMM" = qemu ]; then
	src=$(echo "$res_a" | sed -n 's/^VMPF-DEMO qemu-source {/{/p')
	dst=$(echo "$res_b" | sed -n 's/^VMPF-DEMO qemu-dest {/{/p')
	ok=1
	echo
	echo "=== host A: QEMU, pre-copy and switch-over (vmpf-ctl migrate --qmp) ==="
	if echo "$src" | grep -q '"committed":true'; then
		echo "rounds             $(num "$src" rounds)"
		echo "switch-over        $(awk "BEGIN{printf \"%.1f\", $(num "$src" switchover_ns)/1e6}") ms from QMP stop to commit: final round $(awk "BEGIN{printf \"%.1f\", $(num "$src" final_round_ns)/1e6}") ms ($(num "$src" final_pages) pages), QEMU's device state $(awk "BEGIN{printf \"%.1f\", $(num "$src" state_save_ns)/1e6}") ms, commit $(awk "BEGIN{printf \"%.1f\", $(num "$src" commit_ns)/1e6}") ms"
		echo "device state       $(num "$src" state_bytes) bytes (QEMU's stream, x-ignore-shared)"
		echo "QEMU's own writes  $(num "$src" qemu_written_pages) pages (soft-dirty), $(num "$src" sync_pauses) pauses to read them"
		echo "bytes written      $(num "$src" bytes_written)"
		if [ "$DISK" = local ]; then
			echo "disk mirrored      $(num "$src" copied) bytes into the share (QEMU's drive-mirror during pre-copy); its last writes $(awk "BEGIN{printf \"%.1f\", $(num "$src" disks_ns)/1e6}") ms of the switch-over"
		fi
	else
		failed migration "$res_a"
	fi
	echo
	echo "=== host B: QEMU, lazy restore (vmpf-ctl restore --qemu) ==="
	if echo "$dst" | grep -q '"ram_equal":true'; then
		echo "QEMU resumed       $(num "$dst" resumed_ms | head -n 1) ms after the restore session opened (QEMU start included)"
		echo "  on demand        $(num "$dst" demand_pages) pages (faults served in the kernel)"
		echo "  prefetched       $(num "$dst" prefetched) pages ($(num "$dst" zero_pages) zero, no I/O)"
		echo "  fully resident   after $(awk "BEGIN{printf \"%.1f\", $(num "$dst" complete_ns)/1e6}") ms"
		echo "verification       guest RAM equals A's at its pause (QMP pmemsave on both)"
		echo "guest              counted on from $(num "$dst" dest_first_count) (A stopped at $(num "$dst" source_count)); its own check: $(echo "$dst" | sed -n 's/.*"guest_check":"\([^"]*\)".*/\1/p')"
		if [ "$DISK" = local ]; then
			echo "disk               on the share's copy: $(echo "$dst" | sed -n 's/.*"disk_check":"\([^"]*\)".*/\1/p')"
			moved=no
			echo "$dst" | grep -q '"disk_moved":true' && moved=yes
			echo "                   moved to B's own storage while the guest ran: $moved; then: $(echo "$dst" | sed -n 's/.*"disk_check_after":"\([^"]*\)".*/\1/p')"
		fi
	else
		failed restore "$res_b"
	fi
	grep -q '^VMPF-DEMO-DONE dest 0' <<< "$res_b" || ok=0
else
	src=$(echo "$res_a" | sed -n 's/^VMPF-DEMO source {/{/p')
	dst=$(echo "$res_b" | sed -n 's/^VMPF-DEMO dest {/{/p')
	ver=$(echo "$res_b" | sed -n 's/^VMPF-DEMO verify {/{/p')
	ok=1

	echo
	echo "=== host A: pre-copy and switch-over ==="
	if echo "$src" | grep -q '"committed":true'; then
		echo "guest RAM          $(( $(num "$src" ram_bytes) / 1048576 )) MiB, $(num "$src" vcpus) vCPUs, dirtying"
		echo "rounds             $(num "$src" rounds) (pages copied per round: $(echo "$src" |
			grep -o '"dirty":[0-9]*' | cut -d: -f2 | tr '\n' ' '))"
		echo "switch-over        $(awk "BEGIN{printf \"%.1f\", $(num "$src" switchover_ns)/1e6}") ms from pause to commit (final round: $(num "$src" final_pages) pages)"
		echo "bytes written      $(num "$src" bytes_written)"
	else
		failed migration "$res_a"
	fi

	echo
	echo "=== host B: lazy restore ==="
	if echo "$dst" | grep -q '"complete":true'; then
		echo "resumed at once; while the guest ran, its memory arrived:"
		echo "  on demand        $(num "$dst" demand) pages (faults served in the kernel)"
		echo "  prefetched       $(num "$dst" prefetched) pages ($(num "$dst" zero) of all pages zero, no I/O)"
		echo "  fully resident   after $(awk "BEGIN{printf \"%.1f\", $(num "$dst" complete_ns)/1e6}") ms"
		echo "  guest pattern    $( [ "$(num "$dst" pattern_errors)" = 0 ] && echo intact || echo BROKEN)"
		[ "$(num "$dst" pattern_errors)" = 0 ] || ok=0
	else
		failed restore "$res_b"
	fi
	mism=$(num "$ver" verified_pages_mismatched)
	if [ "$mism" = 0 ]; then
		echo "verification       every page equals the source's memory at pause"
	else
		ok=0
		echo "verification       FAILED: ${mism:-no result} pages differ"
		echo "$ver" | sed 's/^/  /'
	fi
fi
for h in host-a host-b; do
	if grep -aEq 'WARNING:|BUG:|Oops|Call Trace:|Kernel panic' "$OUT/$h/console.log"; then
		ok=0
		echo "$h: the kernel log has a warning or oops: $OUT/$h/console.log"
	fi
done
echo
if [ $ok = 1 ]; then
	if [ "$STORAGE" != raw ]; then
		echo "demo: migration through a page file on $STORAGE succeeded"
	else
		echo "demo: migration through the shared disk succeeded"
	fi
else
	echo "demo: FAILED (logs in $OUT/host-a and $OUT/host-b)"
	exit 1
fi
