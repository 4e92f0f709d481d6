#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Programs the test machines run but this machine must not install:
#   pkg-root.sh nfs     the NFS server and client (nfs_test.sh, the demo's
#                       NFS storage): Debian's nfs-kernel-server, nfs-common
#                       and rpcbind (installing them would start an NFS
#                       server on this machine)
#   pkg-root.sh ocfs2   OCFS2's tools and its o2cb cluster stack (the demo's
#                       OCFS2 storage): ocfs2-tools (installing it would
#                       set up a cluster service here)
# The packages, with the libraries this machine lacks, are downloaded and
# unpacked into a cache.  Prints the directory; fails (a sentence on
# stderr) when they cannot be had.  VMPF_CACHE: the cache
# (/var/cache/vmpagefile).
set -euo pipefail

case ${1:-} in
nfs)	pkgs="nfs-kernel-server nfs-common rpcbind libnfsidmap1 libwrap0 libtirpc-common netbase"
	probe=usr/sbin/rpc.nfsd ;;
ocfs2)	pkgs="ocfs2-tools libcmap4 libdlm3 libqb100 libcorosync-common4"
	probe=sbin/mkfs.ocfs2 ;;
*)	echo "usage: pkg-root.sh nfs|ocfs2" >&2; exit 2 ;;
esac
dir=${VMPF_CACHE:-/var/cache/vmpagefile}/$1-root

if [ -x "$dir/$probe" ] && [ -e "$dir/.complete" ]; then
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
		echo "pkg-root: cannot download $pkgs: $(tail -n 1 "$tmp/err")" >&2
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
