#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install what `make check` needs on a Debian 12 machine, and print the two
# kernels to test: the newest 6.1 LTS and the newest 6.12 that Debian
# offers today (never a hard-coded ABI number).  $VMPF_KERNELS overrides
# the choice.  Progress goes to stderr, the kernel list to stdout.
set -euo pipefail

log() { echo "deps: $*" >&2; }

TOOLS_PKGS="build-essential qemu-system-x86 busybox-static dkms sparse cpio
gzip xz-utils zstd kmod linux-source-6.12 perl dmsetup"

updated=
apt_update() {
	[ -n "$updated" ] && return 0
	updated=1
	log "apt-get update"
	apt-get update -qq >&2 || log "apt-get update failed; using the package lists as they are"
}

missing_pkgs() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			echo "$p"
	done
}

# newest_kernel REGEX: newest linux-headers-REGEX-amd64 with a matching image.
newest_kernel() {
	apt-cache search --names-only "^linux-headers-$1-amd64\$" 2>/dev/null |
		awk '{print $1}' | sed 's/^linux-headers-//' | sort -V |
		while read -r k; do
			apt-cache show "linux-image-$k" >/dev/null 2>&1 && echo "$k"
		done | tail -n 1
}

# newest_installed REGEX: fallback when no package list can be read.
newest_installed() {
	ls /lib/modules 2>/dev/null | grep -E "^$1-amd64\$" | sort -V | tail -n 1
}

if [ "$(id -u)" != 0 ] && ! command -v qemu-system-x86_64 >/dev/null; then
	log "not root: cannot install packages; run 'make check' as root"
	exit 1
fi

if [ -n "${VMPF_KERNELS:-}" ]; then
	kernels=$VMPF_KERNELS
else
	# Stale lists name kernels the archive has already dropped: refresh.
	[ "$(id -u)" = 0 ] && apt_update
	kernels=
	for re in '6\.1\.0-[0-9]+' '6\.12\.[0-9]+\+deb12'; do
		k=$(newest_kernel "$re")
		[ -n "$k" ] || k=$(newest_installed "$re")
		if [ -z "$k" ]; then
			log "no kernel matching $re offered by apt or installed"
			exit 1
		fi
		kernels="$kernels $k"
	done
fi

pkgs=$TOOLS_PKGS
for k in $kernels; do
	pkgs="$pkgs linux-headers-$k"
	[ -f "/boot/vmlinuz-$k" ] && [ -d "/lib/modules/$k/kernel" ] ||
		pkgs="$pkgs linux-image-$k"
done
# shellcheck disable=SC2086
need=$(missing_pkgs $pkgs)
if [ -n "$need" ]; then
	apt_update
	log "installing:" $need
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >&2
fi
echo $kernels
