// SPDX-License-Identifier: GPL-2.0
/*
 * VMPF_FEATURE_EXTERNAL: a VMM nobody adapted to the module (QEMU), driven
 * from another process, as vmpf-ctl migrate/restore --qemu do it.
 *
 * The "VMM" is a child process with a KVM VM whose RAM is one shared memfd
 * laid out as QEMU lays out a PC's: memslot 0 maps the first 640 KiB,
 * memslot 1 the memory from 1 MiB on, and the 384 KiB between them are in
 * the memfd but in no memslot (a hole: VMPF_SLOT_NONE).  The test process
 * is the controller: it takes the VM descriptor with pidfd_getfd(), lists
 * the memslots, attaches, pre-copies, switches over in two steps with the
 * VMM doing what QEMU's own device-state save does in between (dirty
 * logging on, a harvest, a memslot re-created), commits, then restores the
 * file through a restore session's device node and compares every byte.
 * The page file is /dev/ram1; the tests skip where it or /dev/kvm is
 * missing.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmpf_test_util.h"
#include "pagefile.h"

#define TARGET		"/dev/ram1"
#define RAM_BYTES	(4 << 20)
#define LOW_BYTES	(640 << 10)
#define HIGH_OFF	(1 << 20)
#define HOLE_PAGE	(700 << 10)	/* in the hole */
#define NR_PAGES	(RAM_BYTES / 4096)

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* What the VMM child does on the controller's command. */
enum { CMD_DIRTY = 'd', CMD_QEMU_SAVE = 's', CMD_HOLE = 'h', CMD_RUN = 'x',
       CMD_QUIT = 'q' };

FIXTURE(ext) {
	int dev, target, vm;	/* vm: the child's VM, taken with pidfd_getfd() */
	int cmd, ack;		/* pipes to and from the child */
	pid_t child;
	unsigned char *ram;	/* the child's memfd, mapped here too */
	int memfd;
	struct vmpf_region regs[3];
	struct vmpf_source_attach at;
};

static void fill(unsigned char *ram, int gen)
{
	int i;

	for (i = 0; i < NR_PAGES; i++)
		memset(ram + (size_t)i * 4096, (i * 7 + gen) & 0xff, 4096);
}

static int set_slot(int vm, int slot, __u64 gpa, __u64 size, void *addr, __u32 flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (unsigned long)addr,
	};

	return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

/*
 * One instruction of guest code, at guest-physical 0: hlt.  Without an
 * in-kernel irqchip KVM_RUN comes back at once with KVM_EXIT_HLT.
 */
static int run_vcpu_once(int vcpu)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0, .rflags = 2 };

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs))
		return -errno;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) || ioctl(vcpu, KVM_SET_REGS, &regs) ||
	    ioctl(vcpu, KVM_RUN, 0))
		return -errno;
	return 0;
}

/* The VMM: a VM on the memfd, then commands until told to quit. */
static void vmm(int memfd, int cmd, int ack)
{
	int kvm = open("/dev/kvm", O_RDWR), vm, vcpu;
	unsigned char *ram = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	static unsigned long bitmap[NR_PAGES / 64];
	struct kvm_dirty_log log = { .slot = 1, .dirty_bitmap = bitmap };
	char c;

	if (kvm < 0 || ram == MAP_FAILED)
		_exit(2);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0 || set_slot(vm, 0, 0, LOW_BYTES, ram, 0) ||
	    set_slot(vm, 1, HIGH_OFF, RAM_BYTES - HIGH_OFF, ram + HIGH_OFF, 0))
		_exit(3);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0 || ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0) <= 0 ||
	    mmap(NULL, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE,
		 MAP_SHARED, vcpu, 0) == MAP_FAILED)
		_exit(3);
	ram[0] = 0xf4;	/* hlt */
	c = 'r';
	if (write(ack, &c, 1) != 1)
		_exit(4);
	while (read(cmd, &c, 1) == 1) {
		switch (c) {
		case CMD_DIRTY:		/* as a guest would: pages in both slots */
			ram[4096 * 3] ^= 0xff;
			ram[HIGH_OFF + 4096 * 10] ^= 0xff;
			break;
		case CMD_HOLE:		/* the VMM itself, where no memslot maps */
			ram[HOLE_PAGE] ^= 0xff;
			break;
		case CMD_QEMU_SAVE:	/* QEMU's migration: logging on, harvest, off */
			if (set_slot(vm, 1, HIGH_OFF, RAM_BYTES - HIGH_OFF, ram + HIGH_OFF,
				     KVM_MEM_LOG_DIRTY_PAGES) ||
			    ioctl(vm, KVM_GET_DIRTY_LOG, &log) ||
			    set_slot(vm, 1, HIGH_OFF, RAM_BYTES - HIGH_OFF, ram + HIGH_OFF, 0))
				c = 'E';
			break;
		case CMD_RUN:		/* a vCPU runs the guest: one instruction */
			if (run_vcpu_once(vcpu))
				c = 'E';
			break;
		case CMD_QUIT:
			_exit(0);
		}
		if (write(ack, &c, 1) != 1)
			_exit(4);
	}
	_exit(0);
}

static int tell(FIXTURE_DATA(ext) *self, char c)
{
	char r;

	if (write(self->cmd, &c, 1) != 1 || read(self->ack, &r, 1) != 1)
		return -1;
	return r == c ? 0 : -1;
}

FIXTURE_SETUP(ext)
{
	struct vmpf_api api;
	int to[2], from[2], pidfd, i;
	char c;

	self->dev = self->target = self->vm = self->cmd = self->ack = self->memfd = -1;
	self->child = -1;
	self->ram = MAP_FAILED;
	vmpf_open_or_skip(&self->dev);
	if (access("/dev/kvm", F_OK))
		SKIP(return, "/dev/kvm missing");
	self->target = open(TARGET, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (self->target < 0)
		SKIP(return, "%s: %s (the test guest has RAM disks)", TARGET, strerror(errno));
	ASSERT_EQ(0, vmpf_handshake(self->dev, VMPF_FEATURE_SOURCE | VMPF_FEATURE_EXTERNAL, &api));
	self->memfd = memfd_create("ram0", 0);
	ASSERT_LE(0, self->memfd);
	ASSERT_EQ(0, ftruncate(self->memfd, RAM_BYTES));
	self->ram = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, self->memfd, 0);
	ASSERT_NE(MAP_FAILED, self->ram);
	fill(self->ram, 1);
	ASSERT_EQ(0, pipe(to));
	ASSERT_EQ(0, pipe(from));
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		close(to[1]);
		close(from[0]);
		vmm(self->memfd, to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	self->cmd = to[1];
	self->ack = from[0];
	ASSERT_EQ(1, read(self->ack, &c, 1));

	/* As vmpf-ctl does: the VM descriptor of the VMM's process. */
	pidfd = syscall(SYS_pidfd_open, self->child, 0);
	ASSERT_LE(0, pidfd);
	for (i = 3; i < 64 && self->vm < 0; i++) {
		char path[64], link[64] = "";

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", self->child, i);
		if (readlink(path, link, sizeof(link) - 1) > 0 &&
		    !strcmp(link, "anon_inode:kvm-vm"))
			self->vm = syscall(SYS_pidfd_getfd, pidfd, i, 0);
	}
	close(pidfd);
	ASSERT_LE(0, self->vm);

	/* The child's mapping has another address: the regions use its. */
	self->regs[0] = (struct vmpf_region){ .slot = 0, .gpa = 0, .size = LOW_BYTES };
	self->regs[1] = (struct vmpf_region){ .slot = VMPF_SLOT_NONE,
					      .size = HIGH_OFF - LOW_BYTES };
	self->regs[2] = (struct vmpf_region){ .slot = 1, .gpa = HIGH_OFF,
					      .size = RAM_BYTES - HIGH_OFF };
	self->at = (struct vmpf_source_attach){
		.vm_fd = self->vm, .target_fd = self->target,
		.regions = (unsigned long)self->regs, .nr_regions = 3,
	};
}

FIXTURE_TEARDOWN(ext)
{
	int status;

	if (self->dev >= 0)
		close(self->dev);
	if (self->vm >= 0)
		close(self->vm);
	if (self->cmd >= 0)
		close(self->cmd);	/* the child's read ends: it exits */
	if (self->child > 0)
		waitpid(self->child, &status, 0);
	if (self->ack >= 0)
		close(self->ack);
	if (self->ram != MAP_FAILED)
		munmap(self->ram, RAM_BYTES);
	if (self->memfd >= 0)
		close(self->memfd);
	if (self->target >= 0)
		close(self->target);
}

/* The memslots as the module lists them, with the child's addresses. */
static int list_slots(FIXTURE_DATA(ext) *self, struct vmpf_memslot *s, unsigned int cap,
		      struct vmpf_vm_memslots *m)
{
	*m = (struct vmpf_vm_memslots){ .vm_fd = self->vm, .slots = (unsigned long)s,
					.slots_cap = cap };
	return vmpf_ioctl_checked(self->dev, VMPF_IOC_VM_MEMSLOTS, m);
}

/* Fill in the child's addresses, from the listing. */
static int fix_regions(FIXTURE_DATA(ext) *self)
{
	struct vmpf_memslot s[4];
	struct vmpf_vm_memslots m;
	unsigned int i;
	__u64 base = 0;

	if (list_slots(self, s, 4, &m) || m.nr_slots != 2)
		return -1;
	for (i = 0; i < 2; i++)
		if (s[i].slot == 0)
			base = s[i].uaddr;
	self->regs[0].uaddr = base;
	self->regs[1].uaddr = base + LOW_BYTES;
	self->regs[2].uaddr = base + HIGH_OFF;
	return 0;
}

static __u64 phase(FIXTURE_DATA(ext) *self)
{
	struct vmpf_status st = { 0 };

	__vmpf_ioctl(self->dev, VMPF_IOC_STATUS, &st);
	return st.phase;
}

TEST_F(ext, memslots_listed)
{
	struct vmpf_memslot s[4];
	struct vmpf_vm_memslots m;
	struct vmpf_api api;
	int fd, i, seen = 0;

	ASSERT_EQ(0, list_slots(self, s, 4, &m));
	ASSERT_EQ(2, m.nr_slots);
	EXPECT_NE(0, m.generation);
	for (i = 0; i < 2; i++) {
		if (s[i].slot == 0) {
			EXPECT_EQ(0, s[i].gpa);
			EXPECT_EQ(LOW_BYTES, s[i].size);
			seen |= 1;
		} else if (s[i].slot == 1) {
			EXPECT_EQ(HIGH_OFF, s[i].gpa);
			EXPECT_EQ(RAM_BYTES - HIGH_OFF, s[i].size);
			seen |= 2;
		}
		EXPECT_EQ(0, s[i].flags);
	}
	EXPECT_EQ(3, seen);
	/* Room for one: the count still says two. */
	ASSERT_EQ(0, list_slots(self, s, 1, &m));
	EXPECT_EQ(2, m.nr_slots);
	m.flags = 1;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_VM_MEMSLOTS, &m));
	m.flags = 0;
	m.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_VM_MEMSLOTS, &m));
	m.reserved[1] = 0;
	m.vm_fd = self->target;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_VM_MEMSLOTS, &m));
	/* Not without the feature. */
	fd = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmpf_handshake(fd, VMPF_FEATURE_SOURCE, &api));
	EXPECT_EQ(-EOPNOTSUPP, list_slots(&(FIXTURE_DATA(ext)){ .dev = fd, .vm = self->vm },
					  s, 4, &m));
	close(fd);
}

/* Another process's VM: only with the feature, and with CAP_SYS_PTRACE. */
TEST_F(ext, foreign_attach_needs_feature_and_capability)
{
	struct vmpf_api api;
	int fd, status;
	pid_t pid;

	ASSERT_EQ(0, fix_regions(self));
	fd = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmpf_handshake(fd, VMPF_FEATURE_SOURCE, &api));
	self->at.nr_regions = 1;	/* no hole: that needs the feature too */
	EXPECT_EQ(-EPERM, vmpf_ioctl_checked(fd, VMPF_IOC_SOURCE_ATTACH, &self->at));
	close(fd);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct { __u32 version; int pid; } hdr = { 0x20080522, 0 };
		struct { __u32 effective, permitted, inheritable; } data[2] = { 0 };

		/* Every capability but CAP_SYS_PTRACE (19), then try. */
		if (syscall(SYS_capget, &hdr, data))
			_exit(2);
		data[0].effective &= ~(1U << 19);
		if (syscall(SYS_capset, &hdr, data))
			_exit(3);
		_exit(vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at) == -EPERM ?
		      0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at));
}

TEST_F(ext, hole_regions_checked)
{
	struct vmpf_api api;
	int fd;

	ASSERT_EQ(0, fix_regions(self));
	self->regs[1].gpa = 4096;	/* a hole has no guest address */
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at));
	self->regs[1].gpa = 0;
	self->at.regions = (unsigned long)&self->regs[1];	/* holes only */
	self->at.nr_regions = 1;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at));
	self->at.regions = (unsigned long)self->regs;
	self->at.nr_regions = 3;
	/* Without the feature, VMPF_SLOT_NONE is a bad slot number. */
	fd = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmpf_handshake(fd, VMPF_FEATURE_SOURCE, &api));
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(fd, VMPF_IOC_SOURCE_ATTACH, &self->at));
	close(fd);
}

static void wait_converged(struct __test_metadata *_metadata, FIXTURE_DATA(ext) *self)
{
	struct pollfd p = { .fd = self->dev, .events = POLLIN };

	ASSERT_EQ(1, poll(&p, 1, 60000));
	ASSERT_EQ(VMPF_PHASE_PRECOPY, phase(self));
}

TEST_F(ext, finish_flags_checked)
{
	struct vmpf_finish f = { .flags = VMPF_FINISH_STATE };
	struct pf pf;

	ASSERT_EQ(0, fix_regions(self));
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at));
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	wait_converged(_metadata, self);
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	f.flags = VMPF_FINISH_PAGES | VMPF_FINISH_STATE;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	f.flags = VMPF_FINISH_PAGES;
	f.state_len = 1;
	f.state = (unsigned long)&f;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	f.flags = 1ULL << 5;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));

	f = (struct vmpf_finish){ .flags = VMPF_FINISH_PAGES };
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	EXPECT_EQ(VMPF_PHASE_STATE_WAIT, phase(self));
	/* Only the state may follow, or an abort. */
	f = (struct vmpf_finish){ .flags = VMPF_FINISH_PAGES };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	f = (struct vmpf_finish){ 0 };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	EXPECT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_ABORT, NULL));
	EXPECT_EQ(VMPF_PHASE_ABORTED, phase(self));
	ASSERT_EQ(0, pf_open(&pf, TARGET));
	EXPECT_FALSE(pf.committed);
	pf_close(&pf);
}

/* The VMM dies while the session waits for its state: nothing commits. */
TEST_F(ext, vmm_dies_waiting_for_state)
{
	struct vmpf_finish f = { .flags = VMPF_FINISH_PAGES };
	static const char state[] = "state";
	int status, i;

	ASSERT_EQ(0, fix_regions(self));
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at));
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	wait_converged(_metadata, self);
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	ASSERT_EQ(1, write(self->cmd, (char []){ CMD_QUIT }, 1));
	ASSERT_EQ(self->child, waitpid(self->child, &status, 0));
	self->child = -1;
	close(self->vm);		/* our copy held the VM, not its mm users */
	self->vm = -1;
	for (i = 0; i < 100 && phase(self) == VMPF_PHASE_STATE_WAIT; i++)
		usleep(50000);
	EXPECT_EQ(VMPF_PHASE_ABORTED, phase(self));
	f = (struct vmpf_finish){ .flags = VMPF_FINISH_STATE, .state = (unsigned long)state,
				  .state_len = sizeof(state) };
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
}

/*
 * A vCPU runs between the two steps (as after a QMP cont in between): the
 * guest may have written what the final round did not see.  KVM counted
 * the exit: the commit is refused, the file stays uncommitted.
 */
TEST_F(ext, guest_ran_between_the_steps)
{
	static const char state[] = "state";
	struct vmpf_finish f = { .flags = VMPF_FINISH_PAGES };
	struct vmpf_status st = { 0 };
	struct pf pf;

	ASSERT_EQ(0, fix_regions(self));
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at));
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	wait_converged(_metadata, self);
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	ASSERT_EQ(0, tell(self, CMD_RUN));
	f = (struct vmpf_finish){ .flags = VMPF_FINISH_STATE, .state = (unsigned long)state,
				  .state_len = sizeof(state) };
	EXPECT_EQ(-ESTALE, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	__vmpf_ioctl(self->dev, VMPF_IOC_STATUS, &st);
	EXPECT_EQ(VMPF_PHASE_FAILED, st.phase);
	EXPECT_NE(NULL, strstr((char *)st.message, "the guest ran during the switch-over"))
		TH_LOG("%s", st.message);
	ASSERT_EQ(0, pf_open(&pf, TARGET));
	EXPECT_FALSE(pf.committed);
	pf_close(&pf);
}

/*
 * The whole flow: attach from outside, pre-copy, guest writes, a write by
 * the VMM into the hole, the final round, QEMU's own save in between (it
 * turns logging on, harvests and turns it off: the session no longer
 * looks), the state, the commit; then a restore through the node.
 */
TEST_F(ext, two_step_switchover_then_restore_through_node)
{
	static const char state[] = "QEMU's device state, x-ignore-shared";
	struct vmpf_finish f = { .flags = VMPF_FINISH_PAGES };
	struct vmpf_restore_region rr[4];
	struct vmpf_restore_info ri = { .regions = (unsigned long)rr, .regions_cap = 4 };
	struct vmpf_restore_node node = { 0 };
	struct vmpf_restore_open ro = { 0 };
	unsigned char *map, *want;
	struct vmpf_api api;
	char path[96];
	struct stat stb;
	struct pf pf;
	int rfd, nfd, rt, i;

	ASSERT_EQ(0, fix_regions(self));
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at));
	EXPECT_EQ(NR_PAGES, self->at.total_pages);
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	wait_converged(_metadata, self);
	/*
	 * The VMM's own writes are not in KVM's log: the controller marks
	 * them (vmpf-ctl finds QEMU's with soft-dirty bits); the hole needs
	 * nothing, it is copied again at the pause.
	 */
	ASSERT_EQ(0, tell(self, CMD_DIRTY));
	vmpf_ioctl(self->dev, VMPF_IOC_MARK_DIRTY,
		   (&(struct vmpf_mark_dirty){ .gpa = 3 * 4096, .len = 4096 }));
	vmpf_ioctl(self->dev, VMPF_IOC_MARK_DIRTY,
		   (&(struct vmpf_mark_dirty){ .gpa = HIGH_OFF + 10 * 4096, .len = 4096 }));
	ASSERT_EQ(0, tell(self, CMD_HOLE));
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	EXPECT_EQ(VMPF_PHASE_STATE_WAIT, phase(self));
	EXPECT_LE(3, f.final_pages) TH_LOG("two dirtied pages and the hole");
	ASSERT_EQ(0, tell(self, CMD_QEMU_SAVE));
	f = (struct vmpf_finish){ .flags = VMPF_FINISH_STATE, .state = (unsigned long)state,
				  .state_len = sizeof(state) };
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	EXPECT_EQ(VMPF_PHASE_COMMITTED, phase(self));
	close(self->dev);
	self->dev = -1;

	/* The file: version 2, the hole a region without memslot. */
	ASSERT_EQ(0, pf_open(&pf, TARGET));
	EXPECT_TRUE(pf.committed) TH_LOG("%s", pf.why);
	EXPECT_EQ(2, le32toh(pf.sb.version));
	EXPECT_EQ(VMPF_PF_SLOT_NONE, le32toh(pf.sb.regions[1].slot));
	pf_close(&pf);

	/* Restore through a node, as QEMU's memory-backend-file would. */
	rfd = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, vmpf_handshake(rfd, VMPF_FEATURE_RESTORE, &api));
	EXPECT_EQ(-EOPNOTSUPP, vmpf_ioctl_checked(rfd, VMPF_IOC_RESTORE_NODE, &node));
	close(rfd);
	rfd = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, vmpf_handshake(rfd, VMPF_FEATURE_RESTORE | VMPF_FEATURE_EXTERNAL, &api));
	EXPECT_EQ(-ENOENT, vmpf_ioctl_checked(rfd, VMPF_IOC_RESTORE_NODE, &node));
	rt = open(TARGET, O_RDONLY | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, rt);
	ro.target_fd = rt;
	ro.flags = VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_NO_LEASE;
	ASSERT_EQ(0, vmpf_ioctl_checked(rfd, VMPF_IOC_RESTORE_OPEN, &ro));
	close(rt);
	ASSERT_EQ(0, vmpf_ioctl_checked(rfd, VMPF_IOC_RESTORE_INFO, &ri));
	ASSERT_EQ(3, ri.nr_regions);
	EXPECT_EQ(VMPF_SLOT_NONE, rr[1].slot);
	EXPECT_EQ(LOW_BYTES, rr[1].offset);
	EXPECT_EQ(HIGH_OFF, rr[2].offset);
	node.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(rfd, VMPF_IOC_RESTORE_NODE, &node));
	node.reserved[0] = 0;
	ASSERT_EQ(0, vmpf_ioctl_checked(rfd, VMPF_IOC_RESTORE_NODE, &node));
	EXPECT_EQ(-EEXIST, vmpf_ioctl_checked(rfd, VMPF_IOC_RESTORE_NODE, &node));
	snprintf(path, sizeof(path), "/dev/%s", (char *)node.name);
	ASSERT_EQ(0, stat(path, &stb)) TH_LOG("%s: %s", path, strerror(errno));
	EXPECT_TRUE(S_ISCHR(stb.st_mode));
	EXPECT_EQ(0600, stb.st_mode & 0777);
	EXPECT_EQ(node.dev >> 32, major(stb.st_rdev));
	EXPECT_EQ(node.dev & 0xffffffff, minor(stb.st_rdev));

	nfd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, nfd);
	EXPECT_EQ(-1, lseek(nfd, 0, SEEK_END));		/* QEMU copes: no size */
	map = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, nfd, 0);
	ASSERT_NE(MAP_FAILED, map);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, RAM_BYTES, PROT_READ, MAP_PRIVATE, nfd, 0));
	/* The mapping, not the descriptors, keeps the session now. */
	close(nfd);
	close(rfd);
	want = self->ram;	/* the child's memory as it was at the pause */
	for (i = 0; i < NR_PAGES; i++)
		if (memcmp(map + (size_t)i * 4096, want + (size_t)i * 4096, 4096))
			break;
	EXPECT_EQ(NR_PAGES, i) TH_LOG("page %d differs (hole pages %d-%d)", i,
				      LOW_BYTES / 4096, HIGH_OFF / 4096 - 1);
	munmap(map, RAM_BYTES);
	/* The session is gone with its last mapping, and its node with it. */
	for (i = 0; i < 50 && !access(path, F_OK); i++)
		usleep(20000);
	EXPECT_NE(0, access(path, F_OK)) TH_LOG("%s outlived its session", path);
}

TEST_HARNESS_MAIN
