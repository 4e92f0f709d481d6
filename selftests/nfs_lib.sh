# SPDX-License-Identifier: GPL-2.0
# NFS in the test machines (busybox sh; sourced by nfs_test.sh and the
# demo's NFS storage): the kernel's NFS server (nfsd) with Debian's
# rpcbind, rpc.mountd, exportfs and rpc.nfsd, and its client through
# mount.nfs.  mkinitramfs.sh puts the programs in /bin (pkg-root.sh).

# nfs_have: 0 when the programs and modules are there; else says why.
nfs_have() {
	for _p in rpc.nfsd rpc.mountd exportfs mount.nfs rpcbind; do
		command -v $_p > /dev/null || { echo "no $_p in the test machine"; return 1; }
	done
	grep -qw nfsd /proc/filesystems || { echo "no nfsd filesystem (module)"; return 1; }
	grep -qw nfs4 /proc/filesystems || { echo "no NFSv4 client (module)"; return 1; }
}

# The users and directories the daemons want.
nfs_env() {
	mkdir -p /etc /var/lib/nfs/rpc_pipefs /var/lib/nfs/v4recovery /var/lib/nfs/sm /run/rpcbind
	chmod 777 /run/rpcbind
	grep -q '^_rpc:' /etc/passwd 2>/dev/null || cat >> /etc/passwd <<'PW'
root:x:0:0:root:/:/bin/sh
_rpc:x:107:65534::/run/rpcbind:/bin/false
statd:x:108:65534::/var/lib/nfs:/bin/false
nobody:x:65534:65534:nobody:/:/bin/false
PW
	grep -q '^nogroup:' /etc/group 2>/dev/null || printf 'root:x:0:\nnogroup:x:65534:\n' >> /etc/group
	ip link set lo up
}

# nfs_server_start DIR CLIENTS: export DIR (a filesystem) read-write to
# CLIENTS (an address, a network/len or *), NFSv3 and v4.x.  The v4 grace
# period is cut to its 10 s minimum.  0, or says what failed.
nfs_server_start() {
	nfs_env
	grep -q ' /proc/fs/nfsd ' /proc/mounts || mount -t nfsd nfsd /proc/fs/nfsd ||
		{ echo "cannot mount the nfsd filesystem"; return 1; }
	pidof rpcbind > /dev/null || rpcbind || { echo "rpcbind did not start"; return 1; }
	echo "$1 $2(rw,sync,no_root_squash,no_subtree_check,fsid=1)" > /etc/exports
	exportfs -ra 2>&1 || { echo "exportfs failed"; return 1; }
	pidof rpc.mountd > /dev/null || rpc.mountd 2>&1 || { echo "rpc.mountd did not start"; return 1; }
	nfs_server_resume
}

# Serve again after nfs_server_pause (a restarted server: new state, a
# grace period for v4 clients to reclaim theirs).
nfs_server_resume() {
	rpc.nfsd --grace-time 10 --lease-time 10 8 2>&1 || { echo "rpc.nfsd failed"; return 1; }
}

# Stop serving (every nfsd thread ends): clients see the server gone.
nfs_server_pause() {
	rpc.nfsd 0
}

# nfs_mount SERVER:PATH DIR OPTIONS
nfs_mount() {
	mkdir -p "$2"
	mount.nfs "$1" "$2" -o "$3" 2>&1
}
