// SPDX-License-Identifier: GPL-2.0
/*
 * Restored memory faulted from inside other kernel paths, with the page
 * file a regular file on a filesystem (ext4's direct reads take the file's
 * i_rwsem): from inside write() to another file of the same filesystem
 * (which holds that file's i_rwsem), through /proc/self/mem (a fault that
 * may not drop the mm lock), and through process_vm_readv() (one that
 * may).  Each must bring in the right page.  On the debug kernel
 * (make check-debug) lockdep watches the lock orders these make.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmpf_test_util.h"

#define DISK	"/dev/ram1"
#define MNT	"/tmp/fault_lock_mnt"
#define PF	MNT "/pf"
#define OUT	MNT "/out"

FIXTURE(fl) {
	int dev, pf;
	unsigned char *map;
	size_t size;
};

FIXTURE_SETUP(fl)
{
	struct vmpf_restore_region reg[VMPF_MAX_REGIONS];
	struct vmpf_restore_open ro = { 0 };
	struct vmpf_restore_info ri = { 0 };
	struct vmpf_api api;
	static char state[1 << 20];

	self->dev = self->pf = -1;
	self->map = MAP_FAILED;
	vmpf_open_or_skip(&self->dev);
	if (access(DISK, F_OK) || access("/dev/kvm", F_OK))
		SKIP(return, "%s or /dev/kvm missing (the test guest has them)", DISK);
	/* A committed page file in a file of an ext4-mounted filesystem. */
	ASSERT_EQ(0, system("umount " MNT " 2>/dev/null; mkdir -p " MNT " && "
			    "mke2fs -q " DISK " >/dev/null 2>&1 && "
			    "mount -t ext4 " DISK " " MNT " && "
			    "dd if=/dev/zero of=" PF " bs=1M count=0 seek=24 2>/dev/null && "
			    "vmpf-vm --ram 16M --working-set 4M --rate 4000 --seconds 0.2 "
			    "--migrate-to " PF " >/dev/null 2>&1"));
	ASSERT_EQ(0, vmpf_handshake(self->dev, VMPF_FEATURE_RESTORE, &api));
	self->pf = open(PF, O_RDONLY | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, self->pf);
	ro.target_fd = self->pf;
	ro.flags = VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_NO_LEASE;
	vmpf_ioctl(self->dev, VMPF_IOC_RESTORE_OPEN, &ro);
	ri.regions = (unsigned long)reg;
	ri.regions_cap = VMPF_MAX_REGIONS;
	ri.state = (unsigned long)state;
	ri.state_cap = sizeof(state);
	vmpf_ioctl(self->dev, VMPF_IOC_RESTORE_INFO, &ri);
	self->size = ro.total_pages * 4096;
	self->map = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
}

FIXTURE_TEARDOWN(fl)
{
	if (self->map != MAP_FAILED)
		munmap(self->map, self->size);
	if (self->dev >= 0)
		close(self->dev);
	if (self->pf >= 0)
		close(self->pf);
	umount(MNT);
}

TEST_F(fl, fault_inside_write_to_same_fs)
{
	unsigned char back[4096];
	size_t page = 300;
	int out = open(OUT, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);

	ASSERT_LE(0, out);
	/* write() holds OUT's i_rwsem while it copies from restored memory. */
	ASSERT_EQ(4096, write(out, self->map + page * 4096, 4096));
	ASSERT_EQ(4096, pread(out, back, 4096, 0));
	EXPECT_EQ(0, memcmp(back, self->map + page * 4096, 4096));
	close(out);
}

TEST_F(fl, fault_through_proc_mem)
{
	unsigned char via_mem[4096];
	size_t page = 301;
	int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);

	ASSERT_LE(0, mem);
	/* access_remote_vm(): get_user_pages without a way to drop the lock. */
	ASSERT_EQ(4096, pread(mem, via_mem, 4096, (off_t)(unsigned long)(self->map + page * 4096)));
	EXPECT_EQ(0, memcmp(via_mem, self->map + page * 4096, 4096));
	close(mem);
}

TEST_F(fl, fault_through_process_vm_readv)
{
	unsigned char got[4096];
	size_t page = 302;
	struct iovec local = { got, sizeof(got) };
	struct iovec remote = { self->map + page * 4096, 4096 };

	ASSERT_EQ(4096, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(0, memcmp(got, self->map + page * 4096, 4096));
}

TEST_HARNESS_MAIN
