// SPDX-License-Identifier: GPL-2.0
/*
 * The source-session ioctls: one test per error path first, then the
 * success path on a VM without vCPUs (nothing dirties its memory, so
 * pre-copy converges after round 0).  The page file is /dev/ram1, opened
 * O_DIRECT; the tests skip, saying so, where it does not exist.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmpf_test_util.h"
#include "pagefile.h"
#include "test_image.h"

#define TARGET		"/dev/ram1"
#define SLOT_BYTES	(1 << 20)
#define BIG_SLOT_BYTES	(512ULL << 20)	/* larger than the 256 MiB RAM disk */

FIXTURE(src) {
	int dev, kvm, vm, target;
	void *mem[2];
	size_t size[2];
	struct vmpf_region regs[2];
	struct vmpf_source_attach at;
};

static int add_slot(FIXTURE_DATA(src) *self, int i, size_t size, __u64 gpa, __u32 flags)
{
	self->size[i] = size;
	return vmpf_add_slot(self->vm, i, size, gpa, flags, &self->mem[i], &self->regs[i]);
}

FIXTURE_SETUP(src)
{
	struct vmpf_api api;

	self->dev = self->kvm = self->vm = self->target = -1;
	self->mem[0] = self->mem[1] = MAP_FAILED;
	vmpf_open_or_skip(&self->dev);
	ASSERT_EQ(0, vmpf_handshake(self->dev, VMPF_FEATURE_SOURCE, &api));
	self->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (self->kvm < 0)
		SKIP(return, "/dev/kvm: %s", strerror(errno));
	self->target = open(TARGET, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (self->target < 0)
		SKIP(return, "%s: %s (the test guest has RAM disks)", TARGET, strerror(errno));
	self->vm = ioctl(self->kvm, KVM_CREATE_VM, 0);
	ASSERT_LE(0, self->vm);
	ASSERT_EQ(0, add_slot(self, 0, SLOT_BYTES, 0, 0));
	ASSERT_EQ(0, add_slot(self, 1, SLOT_BYTES, 1ULL << 32, 0));
	self->at = (struct vmpf_source_attach){
		.vm_fd = self->vm, .target_fd = self->target,
		.regions = (unsigned long)self->regs, .nr_regions = 2,
	};
}

FIXTURE_TEARDOWN(src)
{
	int i;

	if (self->dev >= 0)
		close(self->dev);
	for (i = 0; i < 2; i++)
		if (self->mem[i] != MAP_FAILED)
			munmap(self->mem[i], self->size[i]);
	if (self->vm >= 0)
		close(self->vm);
	if (self->kvm >= 0)
		close(self->kvm);
	if (self->target >= 0)
		close(self->target);
}

#define ATTACH(self) vmpf_ioctl_checked((self)->dev, VMPF_IOC_SOURCE_ATTACH, &(self)->at)

TEST_F(src, attach_without_feature)
{
	struct vmpf_api api;
	int fd = vmpf_open(vmpf_device_path());

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmpf_handshake(fd, 0, &api));
	EXPECT_EQ(0, api.ioctls & (1ULL << _IOC_NR(VMPF_IOC_SOURCE_ATTACH)));
	EXPECT_EQ(-EOPNOTSUPP, vmpf_ioctl_checked(fd, VMPF_IOC_SOURCE_ATTACH, &self->at));
	close(fd);
}

TEST_F(src, attach_flags_nonzero)
{
	self->at.flags = 1;
	EXPECT_EQ(-EINVAL, ATTACH(self));
}

TEST_F(src, attach_reserved_nonzero)
{
	self->at.reserved[2] = 1;
	EXPECT_EQ(-EINVAL, ATTACH(self));
}

TEST_F(src, attach_downtime_too_long)
{
	self->at.downtime_ns = 3601ULL * 1000000000ULL;	/* over an hour */
	EXPECT_EQ(-EINVAL, ATTACH(self));
	self->at.downtime_ns = 1000000;			/* 1 ms: accepted */
	EXPECT_EQ(0, ATTACH(self));
}

TEST_F(src, attach_region_count)
{
	self->at.nr_regions = 0;
	EXPECT_EQ(-EINVAL, ATTACH(self));
	self->at.nr_regions = VMPF_MAX_REGIONS + 1;
	EXPECT_EQ(-EINVAL, ATTACH(self));
}

TEST_F(src, attach_regions_bad_pointer)
{
	self->at.regions = 8;
	EXPECT_EQ(-EFAULT, ATTACH(self));
}

TEST_F(src, attach_unaligned_region)
{
	self->regs[1].gpa += 512;
	EXPECT_EQ(-EINVAL, ATTACH(self));
}

TEST_F(src, attach_overlapping_regions)
{
	self->regs[1].gpa = self->regs[0].gpa + 4096;
	EXPECT_EQ(-EINVAL, ATTACH(self));
}

TEST_F(src, attach_oversized_region)
{
	self->regs[1].size = 1ULL << 50;
	EXPECT_EQ(-EINVAL, ATTACH(self));
}

TEST_F(src, attach_region_not_a_memslot)
{
	self->regs[1].size -= 4096;
	EXPECT_EQ(-EINVAL, ATTACH(self));
}

TEST_F(src, attach_vm_fd_not_kvm)
{
	self->at.vm_fd = self->target;
	EXPECT_EQ(-EINVAL, ATTACH(self));
}

TEST_F(src, attach_vm_fd_closed)
{
	self->at.vm_fd = 1000;
	EXPECT_EQ(-EBADF, ATTACH(self));
}

TEST_F(src, attach_target_without_odirect)
{
	int fd = open(TARGET, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	self->at.target_fd = fd;
	EXPECT_EQ(-EINVAL, ATTACH(self));
	close(fd);
}

TEST_F(src, attach_target_append)
{
	int fd = open(TARGET, O_RDWR | O_DIRECT | O_APPEND | O_CLOEXEC);

	ASSERT_LE(0, fd);
	self->at.target_fd = fd;
	EXPECT_EQ(-EINVAL, ATTACH(self));
	close(fd);
}

TEST_F(src, attach_target_not_storage)
{
	int p[2];

	ASSERT_EQ(0, pipe(p));
	self->at.target_fd = p[1];
	EXPECT_EQ(-EINVAL, ATTACH(self));
	close(p[0]);
	close(p[1]);
}

TEST_F(src, attach_target_too_small)
{
	struct kvm_userspace_memory_region r = { .slot = 1 };

	/* Replace slot 1 by one larger than the RAM disk. */
	ASSERT_EQ(0, ioctl(self->vm, KVM_SET_USER_MEMORY_REGION, &r));
	munmap(self->mem[1], self->size[1]);
	ASSERT_EQ(0, add_slot(self, 1, BIG_SLOT_BYTES, 1ULL << 32, 0));
	EXPECT_EQ(-ENOSPC, ATTACH(self));
	EXPECT_LT(BIG_SLOT_BYTES, self->at.required_bytes);
	EXPECT_EQ((SLOT_BYTES + BIG_SLOT_BYTES) / 4096, self->at.total_pages);
}

TEST_F(src, attach_slot_already_logging)
{
	struct kvm_userspace_memory_region r = {
		.slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .memory_size = SLOT_BYTES,
		.userspace_addr = (unsigned long)self->mem[0],
	};

	ASSERT_EQ(0, ioctl(self->vm, KVM_SET_USER_MEMORY_REGION, &r));
	EXPECT_EQ(-EBUSY, ATTACH(self));
}

TEST_F(src, attach_vm_of_another_process)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		struct vmpf_api api;
		int fd = vmpf_open(vmpf_device_path());

		if (fd < 0 || vmpf_handshake(fd, VMPF_FEATURE_SOURCE, &api))
			_exit(2);
		self->at.vm_fd = self->vm;	/* inherited, but not our mm's VM */
		_exit(vmpf_ioctl_checked(fd, VMPF_IOC_SOURCE_ATTACH, &self->at) == -EPERM ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(src, attach_twice)
{
	ASSERT_EQ(0, ATTACH(self));
	EXPECT_EQ(-EBUSY, ATTACH(self));
}

/*
 * One live session per VM: a second descriptor is refused while the first
 * session lives, and accepted once it ended (aborted) or was closed.
 */
TEST_F(src, attach_one_session_per_vm)
{
	struct vmpf_api api;
	int fd = vmpf_open(vmpf_device_path());

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmpf_handshake(fd, VMPF_FEATURE_SOURCE, &api));
	ASSERT_EQ(0, ATTACH(self));
	EXPECT_EQ(-EBUSY, vmpf_ioctl_checked(fd, VMPF_IOC_SOURCE_ATTACH, &self->at));
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_ABORT, NULL));
	EXPECT_EQ(0, vmpf_ioctl_checked(fd, VMPF_IOC_SOURCE_ATTACH, &self->at));
	close(fd);
}

TEST_F(src, no_session)
{
	struct vmpf_finish f = { 0 };
	struct vmpf_mark_dirty m = { .gpa = 0, .len = 4096 };
	struct vmpf_status st = { 0 };

	EXPECT_EQ(-ENOENT, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	EXPECT_EQ(-ENOENT, __vmpf_ioctl(self->dev, VMPF_IOC_ABORT, NULL));
	EXPECT_EQ(-ENOENT, __vmpf_ioctl(self->dev, VMPF_IOC_REQUEST_FINISH, NULL));
	EXPECT_EQ(-ENOENT, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	EXPECT_EQ(-ENOENT, vmpf_ioctl_checked(self->dev, VMPF_IOC_MARK_DIRTY, &m));
	memset(&st.phase, 0xff, 16);
	vmpf_ioctl(self->dev, VMPF_IOC_STATUS, &st);
	EXPECT_EQ(VMPF_PHASE_NONE, st.phase);
	EXPECT_EQ(0, st.flags);
}

TEST_F(src, status_bad_input)
{
	struct vmpf_status st = { .reserved_in = { 1 } };

	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_STATUS, &st));
	st = (struct vmpf_status){ .in_flags = VMPF_STATUS_ACK_THROTTLE << 1 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_STATUS, &st));
	st = (struct vmpf_status){ .rounds_cap = 4 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_STATUS, &st));
}

static short poll_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLPRI };

	return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

/* VMPF_IOC_SET_THROTTLE: limits, phases, EPOLLPRI until acknowledged. */
TEST_F(src, set_throttle)
{
	struct vmpf_throttle t = { .pct = 60 };
	struct vmpf_status st = { 0 };

	EXPECT_EQ(-ENOENT, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));
	ASSERT_EQ(0, ATTACH(self));
	EXPECT_EQ(0, poll_now(self->dev));
	t = (struct vmpf_throttle){ .pct = 100 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));
	t = (struct vmpf_throttle){ .max_pct = 100 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));
	t = (struct vmpf_throttle){ .pct = 50, .max_pct = 40 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));
	t = (struct vmpf_throttle){ .pct = 10, .reserved = { 0, 1 } };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));

	t = (struct vmpf_throttle){ .pct = 60 };
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_STATUS, &st));
	EXPECT_EQ(60, st.throttle_pct);
	EXPECT_EQ(60, st.throttle_peak);
	/* A watcher's status leaves the event; the VMM's acknowledgement ends it. */
	EXPECT_EQ(POLLPRI, poll_now(self->dev));
	st = (struct vmpf_status){ .in_flags = VMPF_STATUS_ACK_THROTTLE };
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_STATUS, &st));
	EXPECT_EQ(0, poll_now(self->dev));
	t = (struct vmpf_throttle){ .pct = 20, .max_pct = 20 };
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));
	EXPECT_EQ(POLLPRI, poll_now(self->dev));
	st = (struct vmpf_status){ 0 };
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_STATUS, &st));
	EXPECT_EQ(20, st.throttle_pct);
	EXPECT_EQ(60, st.throttle_peak);
	/* max_pct 0 keeps the maximum in force: 60 is above it now. */
	t = (struct vmpf_throttle){ .pct = 60 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));
	t = (struct vmpf_throttle){ .pct = 10 };
	EXPECT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));

	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_ABORT, NULL));
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));
	EXPECT_EQ(0, poll_now(self->dev) & POLLPRI);
}

TEST_F(src, round_policy_bad_input)
{
	struct vmpf_round_policy p[2];
	struct vmpf_round_policies rp = { 0 };

	EXPECT_EQ(-ENOENT, vmpf_ioctl_checked(self->dev, VMPF_IOC_ROUND_POLICY, &rp));
	ASSERT_EQ(0, ATTACH(self));
	rp = (struct vmpf_round_policies){ .reserved_in = { 0, 1 } };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_ROUND_POLICY, &rp));
	rp = (struct vmpf_round_policies){ .rounds_cap = 2 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_ROUND_POLICY, &rp));
	rp = (struct vmpf_round_policies){ .rounds = 8, .rounds_cap = 2 };
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_ROUND_POLICY, &rp));
	EXPECT_EQ(0, rp.nr_rounds);	/* nothing copied before a round */
	rp = (struct vmpf_round_policies){ .rounds = (unsigned long)p, .rounds_cap = 2 };
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_ROUND_POLICY, &rp));
	EXPECT_EQ(0, rp.nr_rounds);
}

/* VMPF_IOC_VCPU_THROTTLE on a VM without the dirty ring: one throttle for all. */
TEST_F(src, vcpu_throttle_without_ring)
{
	struct vmpf_vcpu_stat vs[4];
	struct vmpf_vcpu_throttle vt = { 0 };
	struct vmpf_throttle t = { .pct = 40 };

	EXPECT_EQ(-ENOENT, vmpf_ioctl_checked(self->dev, VMPF_IOC_VCPU_THROTTLE, &vt));
	ASSERT_EQ(0, ATTACH(self));
	vt = (struct vmpf_vcpu_throttle){ .in_flags = 2 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_VCPU_THROTTLE, &vt));
	vt = (struct vmpf_vcpu_throttle){ .reserved_in = 1 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_VCPU_THROTTLE, &vt));
	vt = (struct vmpf_vcpu_throttle){ .vcpus_cap = 4 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_VCPU_THROTTLE, &vt));

	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SET_THROTTLE, &t));
	EXPECT_EQ(POLLPRI, poll_now(self->dev));
	vt = (struct vmpf_vcpu_throttle){ .vcpus = (unsigned long)vs, .vcpus_cap = 4,
					  .in_flags = VMPF_STATUS_ACK_THROTTLE };
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_VCPU_THROTTLE, &vt));
	EXPECT_EQ(0, vt.per_vcpu);
	EXPECT_EQ(40, vt.throttle_pct);
	EXPECT_EQ(99, vt.throttle_max);
	EXPECT_EQ(0, vt.nr_vcpus);
	EXPECT_EQ(0, poll_now(self->dev));
}

TEST_F(src, arguments_of_argless_ioctls)
{
	ASSERT_EQ(0, ATTACH(self));
	EXPECT_EQ(-EINVAL, ioctl(self->dev, VMPF_IOC_START, 1) ? -errno : 0);
	EXPECT_EQ(-EINVAL, ioctl(self->dev, VMPF_IOC_ABORT, 1) ? -errno : 0);
	EXPECT_EQ(-EINVAL, ioctl(self->dev, VMPF_IOC_REQUEST_FINISH, 1) ? -errno : 0);
}

TEST_F(src, finish_before_start)
{
	struct vmpf_finish f = { 0 };

	ASSERT_EQ(0, ATTACH(self));
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	EXPECT_EQ(-EINVAL, __vmpf_ioctl(self->dev, VMPF_IOC_REQUEST_FINISH, NULL));
}

TEST_F(src, finish_bad_input)
{
	static char state[8];
	struct vmpf_finish f = { .flags = 1 };

	ASSERT_EQ(0, ATTACH(self));
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	f = (struct vmpf_finish){ .reserved = { 1 } };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	f = (struct vmpf_finish){ .state = (unsigned long)state, .state_len = (1 << 20) + 1 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	f = (struct vmpf_finish){ .state = 8, .state_len = 8 };
	EXPECT_EQ(-EFAULT, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
}

TEST_F(src, finish_from_another_process)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, ATTACH(self));
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct vmpf_finish f = { 0 };
		struct vmpf_mark_dirty m = { .gpa = 0, .len = 4096 };

		_exit(vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f) == -EPERM &&
		      vmpf_ioctl_checked(self->dev, VMPF_IOC_MARK_DIRTY, &m) == -EPERM ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(src, mark_dirty_bad_input)
{
	struct vmpf_mark_dirty m = { .gpa = SLOT_BYTES - 4096, .len = 8192 };

	ASSERT_EQ(0, ATTACH(self));
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_MARK_DIRTY, &m));
	m = (struct vmpf_mark_dirty){ .gpa = 0, .len = 0 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_MARK_DIRTY, &m));
	m = (struct vmpf_mark_dirty){ .gpa = 0, .len = 8, .reserved = { 1 } };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_MARK_DIRTY, &m));
	m = (struct vmpf_mark_dirty){ .gpa = ~0ULL - 10, .len = 100 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_MARK_DIRTY, &m));
	m = (struct vmpf_mark_dirty){ .gpa = (1ULL << 32) + 100, .len = 8 };
	EXPECT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_MARK_DIRTY, &m));
}

TEST_F(src, abort_attached_then_again)
{
	struct vmpf_status st = { 0 };

	ASSERT_EQ(0, ATTACH(self));
	EXPECT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_ABORT, NULL));
	EXPECT_EQ(-EINVAL, __vmpf_ioctl(self->dev, VMPF_IOC_ABORT, NULL));
	EXPECT_EQ(-EINVAL, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	vmpf_ioctl(self->dev, VMPF_IOC_STATUS, &st);
	EXPECT_EQ(VMPF_PHASE_ABORTED, st.phase);
	EXPECT_EQ(ECANCELED, st.error);
}

TEST_F(src, start_twice)
{
	ASSERT_EQ(0, ATTACH(self));
	EXPECT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	EXPECT_EQ(-EINVAL, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
}

/* The success path: converge, finish, commit; the file says so. */
TEST_F(src, precopy_finish_commit)
{
	static const char state[] = "device state of a VM with no vCPUs";
	struct vmpf_round_stats rounds[4];
	struct vmpf_status st = { .rounds = (unsigned long)rounds, .rounds_cap = 4 };
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_finish f = { .state = (unsigned long)state, .state_len = sizeof(state) };
	struct vmpf_dev_info info;
	struct pf pf;
	void *got;
	size_t len;

	memset(self->mem[0], 0x5a, 8192);	/* two data pages, the rest zero */
	ASSERT_EQ(0, ATTACH(self));
	EXPECT_EQ(2 * SLOT_BYTES / 4096, self->at.total_pages);
	vmpf_ioctl(self->dev, VMPF_IOC_DEV_INFO, &info);
	EXPECT_LE(1, info.sessions);
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	ASSERT_EQ(1, poll(&pfd, 1, 60000));
	vmpf_ioctl(self->dev, VMPF_IOC_STATUS, &st);
	EXPECT_EQ(VMPF_PHASE_PRECOPY, st.phase);
	EXPECT_TRUE(st.flags & VMPF_STATUS_CONVERGED);
	ASSERT_EQ(1, st.nr_rounds);
	EXPECT_EQ(512, rounds[0].dirty_pages);
	EXPECT_EQ(2, rounds[0].written_pages);
	EXPECT_EQ(510, rounds[0].zero_pages);

	vmpf_ioctl(self->dev, VMPF_IOC_FINISH, &f);
	EXPECT_EQ(0, f.final_pages);
	EXPECT_EQ(2, f.rounds);
	vmpf_ioctl(self->dev, VMPF_IOC_STATUS, &st);
	EXPECT_EQ(VMPF_PHASE_COMMITTED, st.phase);

	ASSERT_EQ(0, pf_open(&pf, TARGET));
	EXPECT_TRUE(pf.committed) TH_LOG("%s", pf.why);
	ASSERT_EQ(0, pf_load_table(&pf));
	EXPECT_EQ(VMPF_PAGE_DATA, pf.table[0].state);
	EXPECT_EQ(VMPF_PAGE_ZERO, pf.table[2].state);
	EXPECT_EQ(VMPF_PAGE_ZERO, pf.table[300].state);
	ASSERT_EQ(0, pf_read_state(&pf, &got, &len));
	EXPECT_EQ(sizeof(state), len);
	EXPECT_EQ(0, memcmp(state, got, len));
	free(got);
	pf_close(&pf);
}

/* A poll() that began before the session learns when it wants finish. */
static void *poll_early(void *arg)
{
	struct pollfd pfd = { .fd = *(int *)arg, .events = POLLIN };

	return (void *)(long)(poll(&pfd, 1, 30000) == 1 && (pfd.revents & POLLIN));
}

TEST_F(src, poll_from_before_attach)
{
	pthread_t t;
	void *woke;

	ASSERT_EQ(0, pthread_create(&t, NULL, poll_early, &self->dev));
	usleep(100000);
	ASSERT_EQ(0, ATTACH(self));
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	pthread_join(t, &woke);
	EXPECT_EQ(1, (long)woke);
}

/* Closing the descriptor mid pre-copy frees the session. */
TEST_F(src, close_mid_precopy)
{
	struct vmpf_dev_info before, after;

	vmpf_ioctl(self->dev, VMPF_IOC_DEV_INFO, &before);
	ASSERT_EQ(0, ATTACH(self));
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	close(self->dev);
	self->dev = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, vmpf_handshake(self->dev, 0, &(struct vmpf_api){ 0 }));
	vmpf_ioctl(self->dev, VMPF_IOC_DEV_INFO, &after);
	EXPECT_EQ(before.sessions, after.sessions);
	EXPECT_EQ(before.mem_bytes, after.mem_bytes);
}

/*
 * The VMM deletes a memslot during pre-copy (against the rules): the
 * session must fail or abort without re-creating it when it turns dirty
 * logging off.  Found by the fuzzer's author: KVM_SET_USER_MEMORY_REGION
 * with the slot's old definition brought it back.
 */
TEST_F(src, memslot_deleted_under_session)
{
	struct kvm_userspace_memory_region r = { .slot = 1, .guest_phys_addr = 1ULL << 32 };
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_status st = { 0 };
	int i;

	ASSERT_EQ(0, ATTACH(self));
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	ASSERT_EQ(1, poll(&pfd, 1, 60000));
	r.userspace_addr = (unsigned long)self->mem[1];
	ASSERT_EQ(0, ioctl(self->vm, KVM_SET_USER_MEMORY_REGION, &r));	/* size 0: delete */
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_ABORT, NULL));
	for (i = 0; i < 600; i++) {
		ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_STATUS, &st));
		if (st.phase == VMPF_PHASE_ABORTED || st.phase == VMPF_PHASE_FAILED)
			break;
		usleep(100000);
	}
	ASSERT_TRUE(st.phase == VMPF_PHASE_ABORTED || st.phase == VMPF_PHASE_FAILED);
	/* Slot 1 is gone for good: a new slot fits where it was. */
	r.slot = 2;
	r.memory_size = SLOT_BYTES;
	EXPECT_EQ(0, ioctl(self->vm, KVM_SET_USER_MEMORY_REGION, &r))
		TH_LOG("the session re-created the memslot the VMM deleted: %s", strerror(errno));
	/* Slot 0, untouched by the VMM, is as it was: not logging. */
	r = (struct kvm_userspace_memory_region){ .slot = 0, .memory_size = SLOT_BYTES,
		.userspace_addr = (unsigned long)self->mem[0] };
	EXPECT_EQ(0, ioctl(self->vm, KVM_SET_USER_MEMORY_REGION, &r));
}

TEST_HARNESS_MAIN
