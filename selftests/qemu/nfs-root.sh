#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The NFS server and client programs of the test machines (nfs_test.sh,
# the demo's NFS storage): Debian's nfs-kernel-server, nfs-common and
# rpcbind, with the libraries this machine lacks, downloaded and unpacked
# into a cache (never installed here: installing would start an NFS
# server on this machine).  Prints the directory; fails (a sentence on
# stderr) when the packages cannot be had.
#   nfs-root.sh            VMPF_CACHE: the cache (/var/cache/vmpagefile)
set -euo pipefail

dir=${VMPF_CACHE:-/var/cache/vmpagefile}/nfs-root
pkgs="nfs-kernel-server nfs-common rpcbind libnfsidmap1 libwrap0 libtirpc-common netbase"

if [ -x "$dir/usr/sbin/rpc.nfsd" ] && [ -e "$dir/.complete" ]; then
	echo "$dir"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt's download sandbox user must be able to write there.
chmod 777 "$tmp"
# shellcheck disable=SC2086
if ! (cd "$tmp" && apt-get download -q $pkgs >/dev/null 2>"$tmp/err"); then
	# Package lists older than the archive: refresh them once.
	apt-get update -qq >/dev/null 2>&1 || true
	# shellcheck disable=SC2086
	(cd "$tmp" && apt-get download -q $pkgs >/dev/null 2>"$tmp/err") || {
		echo "nfs-root: cannot download $pkgs: $(tail -n 1 "$tmp/err")" >&2
		exit 1
	}
fi
rm -rf "$dir.new"
mkdir -p "$dir.new"
for d in "$tmp"/*.deb; do
	dpkg-deb -x "$d" "$dir.new"
done
touch "$dir.new/.complete"
rm -rf "$dir"
mv "$dir.new" "$dir"
echo "$dir"
