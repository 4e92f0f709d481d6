// SPDX-License-Identifier: GPL-2.0
/*
 * Proves that /dev/kvm works in the booted test kernel, dirty log included:
 * everything the migration tests build on.  A real-mode guest writes to
 * chosen pages; the test checks memory and that KVM_GET_DIRTY_LOG reports
 * every one of them and no page the guest did not touch, then that the log
 * is cleared and re-armed by a harvest.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define GUEST_PAGES	16
#define PAGE		4096
#define PATTERN		0xab
/*
 * KVM may report the code page (page 0) dirty although the guest only
 * fetches from it: the dirty log may over-report, never under-report.
 */
#define CODE_PAGE_BIT	1UL

/*
 * 16-bit real-mode code: for each page P, "mov ax, P<<8; mov ds, ax;
 * mov byte [0], PATTERN", then hlt.  Segment P<<8 is guest-physical
 * address P * 4096.
 */
static size_t emit_writes(unsigned char *code, const int *pages, int n)
{
	size_t len = 0;
	int i;

	for (i = 0; i < n; i++) {
		unsigned int seg = pages[i] << 8;
		unsigned char insn[] = {
			0xb8, seg & 0xff, seg >> 8,		/* mov ax, seg */
			0x8e, 0xd8,				/* mov ds, ax */
			0xc6, 0x06, 0x00, 0x00, PATTERN,	/* mov byte [0], imm */
		};

		memcpy(code + len, insn, sizeof(insn));
		len += sizeof(insn);
	}
	code[len++] = 0xf4;					/* hlt */
	return len;
}

FIXTURE(vm) {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	unsigned char *mem;
};

FIXTURE_SETUP(vm)
{
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.flags = KVM_MEM_LOG_DIRTY_PAGES,
		.guest_phys_addr = 0,
		.memory_size = GUEST_PAGES * PAGE,
	};
	int size;

	self->vm = self->vcpu = -1;
	self->run = NULL;
	self->mem = MAP_FAILED;
	self->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (self->kvm < 0)
		SKIP(return, "/dev/kvm: %s (kvm modules not loaded?)", strerror(errno));
	ASSERT_EQ(KVM_API_VERSION, ioctl(self->kvm, KVM_GET_API_VERSION, 0));

	self->vm = ioctl(self->kvm, KVM_CREATE_VM, 0);
	ASSERT_LE(0, self->vm) TH_LOG("KVM_CREATE_VM: %s", strerror(errno));

	self->mem = mmap(NULL, GUEST_PAGES * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	region.userspace_addr = (unsigned long)self->mem;
	ASSERT_EQ(0, ioctl(self->vm, KVM_SET_USER_MEMORY_REGION, &region))
		TH_LOG("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));

	self->vcpu = ioctl(self->vm, KVM_CREATE_VCPU, 0);
	ASSERT_LE(0, self->vcpu) TH_LOG("KVM_CREATE_VCPU: %s", strerror(errno));
	size = ioctl(self->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	ASSERT_LT(0, size);
	self->run_size = size;
	self->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, self->vcpu, 0);
	ASSERT_NE(MAP_FAILED, self->run);
}

FIXTURE_TEARDOWN(vm)
{
	if (self->run && self->run != MAP_FAILED)
		munmap(self->run, self->run_size);
	if (self->vcpu >= 0)
		close(self->vcpu);
	if (self->mem != MAP_FAILED)
		munmap(self->mem, GUEST_PAGES * PAGE);
	if (self->vm >= 0)
		close(self->vm);
	if (self->kvm >= 0)
		close(self->kvm);
}

/* Run real-mode code at guest-physical @ip until it halts. */
static int run_until_hlt(int vcpu, struct kvm_run *run, unsigned long ip)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = ip, .rflags = 0x2 };

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs))
		return -errno;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) || ioctl(vcpu, KVM_SET_REGS, &regs))
		return -errno;
	if (ioctl(vcpu, KVM_RUN, 0))
		return -errno;
	return run->exit_reason;
}

static int dirty_log(int vm, unsigned long *bitmap)
{
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = bitmap };

	*bitmap = 0;
	return ioctl(vm, KVM_GET_DIRTY_LOG, &log) ? -errno : 0;
}

static unsigned long page_bits(const int *pages, int n)
{
	unsigned long bits = 0;

	while (n--)
		bits |= 1UL << pages[n];
	return bits;
}

TEST_F(vm, guest_writes_and_dirty_log)
{
	static const int first[] = { 2, 5, 9 }, second[] = { 7 };
	unsigned long bitmap;
	size_t len;
	int i;

	len = emit_writes(self->mem, first, 3);
	emit_writes(self->mem + 0x100, second, 1);
	ASSERT_LT(len, 0x100);

	/* KVM reports dirtying since the slot was created: start clean. */
	ASSERT_EQ(0, dirty_log(self->vm, &bitmap));

	ASSERT_EQ(KVM_EXIT_HLT, run_until_hlt(self->vcpu, self->run, 0))
		TH_LOG("exit reason %u", self->run->exit_reason);
	for (i = 0; i < GUEST_PAGES; i++)
		EXPECT_EQ(page_bits(first, 3) >> i & 1 ? PATTERN : 0, self->mem[i * PAGE + (i ? 0 : 0x200)])
			TH_LOG("page %d", i);

	ASSERT_EQ(0, dirty_log(self->vm, &bitmap));
	EXPECT_EQ(page_bits(first, 3), bitmap & ~CODE_PAGE_BIT);

	/* A harvest clears the log: nothing ran since. */
	ASSERT_EQ(0, dirty_log(self->vm, &bitmap));
	EXPECT_EQ(0, bitmap);

	/* And re-arms it: a second run is tracked again. */
	ASSERT_EQ(KVM_EXIT_HLT, run_until_hlt(self->vcpu, self->run, 0x100));
	EXPECT_EQ(PATTERN, self->mem[7 * PAGE]);
	ASSERT_EQ(0, dirty_log(self->vm, &bitmap));
	EXPECT_EQ(page_bits(second, 1), bitmap & ~CODE_PAGE_BIT);
}

TEST_F(vm, dirty_log_bad_slot)
{
	unsigned long bitmap;
	struct kvm_dirty_log log = { .slot = 5, .dirty_bitmap = &bitmap };

	EXPECT_EQ(-1, ioctl(self->vm, KVM_GET_DIRTY_LOG, &log));
	EXPECT_EQ(ENOENT, errno);
}

TEST_HARNESS_MAIN
