#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install what `make check`, `make demo`, `make bench` and `make
# check-debug` need on a Debian 12 machine, and print the two kernels to
# test: for the 6.1 LTS line and for 6.12, the newest ABI that can really
# be installed today (never a hard-coded ABI number).  The one place where
# a kernel is chosen.  Progress goes to stderr, the kernel list to stdout.
#
# Debian publishes a new ABI's packages over days (headers first, the
# signed image later) and retires the old ABI with a security update, so a
# package *name* proves nothing: an ABI is taken only when its headers and
# an image both have an installation candidate (`apt-cache policy`).  The
# image may be the signed package or its `-unsigned` flavour: the tests
# boot it under QEMU, no Secure Boot is involved.  When installing an ABI
# fails all the same (package lists older than the archive), the next
# older ABI is tried, then a kernel already installed.  One line per
# kernel line says what was picked and why a newer ABI was skipped.
#
# Usage: deps.sh                     tools and the two kernels (printed)
#        deps.sh --no-kernels PKG... tools and PKG..., no kernel (check-debug,
#                                    which builds its own kernel)
# Environment:
#   VMPF_KERNELS="K1 K2"  test these kernels (still installed if missing)
#   VMPF_SYSROOT=DIR      where /boot and /lib/modules are (for the tests
#                         of this script, with stub apt-cache, apt-get and
#                         dpkg-query on PATH)
set -euo pipefail

SYSROOT=${VMPF_SYSROOT:-}
log() { echo "deps: $*" >&2; }

TOOLS_PKGS="build-essential qemu-system-x86 busybox-static dkms sparse cpio
gzip xz-utils zstd kmod linux-source-6.12 perl dmsetup"

# The kernel lines under test: a name and the ABI pattern of its packages.
LINES="6.1:6\.1\.0-[0-9]+ 6.12:6\.12\.[0-9]+\+deb12"

updated=
apt_update() {
	[ -n "$updated" ] && return 0
	updated=1
	log "apt-get update"
	apt-get update -qq >&2 || log "apt-get update failed; using the package lists as they are"
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

is_installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing_pkgs() {
	local p
	for p in "$@"; do
		is_installed "$p" || echo "$p"
	done
}

# has_candidate PKG: apt would install PKG.  A virtual name, a name only
# the lists of another release know, or a package without a version for
# this architecture has "Candidate: (none)"; an unknown name prints nothing.
has_candidate() {
	LC_ALL=C apt-cache policy "$1" 2>/dev/null |
		awk '/^ *Candidate:/ { if ($2 != "(none)") ok = 1 } END { exit !ok }'
}

image_here() { # image_here K: the kernel and its modules are on disk
	[ -f "$SYSROOT/boot/vmlinuz-$1" ] && [ -d "$SYSROOT/lib/modules/$1/kernel" ]
}

headers_here() {
	[ -e "$SYSROOT/lib/modules/$1/build/Makefile" ] || is_installed "linux-headers-$1"
}

# abis RE: every ABI of a line that the package lists name or that is
# installed, newest first.
abis() {
	{
		apt-cache search --names-only "^linux-(headers|image)-$1-amd64(-unsigned)?\$" 2>/dev/null |
			awk '{print $1}' | sed -E 's/^linux-(headers|image)-//; s/-unsigned$//'
		ls "$SYSROOT/lib/modules" 2>/dev/null | grep -E "^$1-amd64\$" || true
	} | sort -u -V -r
}

# kernel_pkgs K: sets $pkgs to the packages that K still needs; returns 1,
# with the reason in $why, when one of them cannot be installed.
why=
pkgs=
kernel_pkgs() {
	local k=$1
	pkgs=
	if ! headers_here "$k"; then
		if ! has_candidate "linux-headers-$k"; then
			why="linux-headers-$k has no installation candidate"
			return 1
		fi
		pkgs="linux-headers-$k"
	fi
	if ! image_here "$k"; then
		if has_candidate "linux-image-$k"; then
			pkgs="$pkgs linux-image-$k"
		elif has_candidate "linux-image-$k-unsigned"; then
			pkgs="$pkgs linux-image-$k-unsigned"
		else
			why="neither linux-image-$k nor linux-image-$k-unsigned has an installation candidate"
			return 1
		fi
	fi
	pkgs=${pkgs# }
}

# pick NAME RE: install and print the newest installable kernel of a line.
pick() {
	local name=$1 re=$2 k skipped=
	for k in $(abis "$re"); do
		if ! kernel_pkgs "$k"; then
			skipped="$skipped; skipped $k: $why"
			continue
		fi
		if [ -n "$pkgs" ]; then
			# shellcheck disable=SC2086
			if ! apt_install $pkgs; then
				skipped="$skipped; skipped $k: installing $pkgs failed (package lists older than the archive?)"
				continue
			fi
			log "kernel $name: $k (installed $pkgs)$skipped"
		else
			log "kernel $name: $k (already installed)$skipped"
		fi
		echo "$k"
		return 0
	done
	log "kernel $name: no kernel matching $re can be installed or is installed$skipped"
	return 1
}

if [ "$(id -u)" != 0 ] && ! command -v qemu-system-x86_64 >/dev/null; then
	log "not root: cannot install packages; run 'make check' as root"
	exit 1
fi

no_kernels=
if [ "${1:-}" = --no-kernels ]; then
	no_kernels=1
	shift
	TOOLS_PKGS="$TOOLS_PKGS $*"
fi

# Stale lists name kernels the archive has already dropped: refresh.
[ "$(id -u)" = 0 ] && apt_update

# shellcheck disable=SC2086
need=$(missing_pkgs $TOOLS_PKGS)
if [ -n "$need" ]; then
	log "installing:" $need
	# shellcheck disable=SC2086
	apt_install $need
fi

[ -n "$no_kernels" ] && exit 0

kernels=
if [ -n "${VMPF_KERNELS:-}" ]; then
	for k in $VMPF_KERNELS; do
		if ! kernel_pkgs "$k"; then
			log "kernel $k (from VMPF_KERNELS) cannot be installed: $why"
			exit 1
		fi
		if [ -n "$pkgs" ]; then
			# shellcheck disable=SC2086
			apt_install $pkgs
		fi
		log "kernel $k: from VMPF_KERNELS${pkgs:+ (installed $pkgs)}"
		kernels="$kernels $k"
	done
else
	for line in $LINES; do
		k=$(pick "${line%%:*}" "${line#*:}") || exit 1
		kernels="$kernels $k"
	done
fi
echo $kernels
