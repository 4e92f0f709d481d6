/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A committed page file for the restore tests: a source session over a VM
 * without vCPUs whose two memslots (at 0 and 4 GiB) hold what @fill puts
 * in each page, migrated to @target.  Page i of the image is page i of the
 * two slots in order.
 */
#ifndef VMPF_TEST_IMAGE_H
#define VMPF_TEST_IMAGE_H

#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmpf.h"

/* The tests' pattern: page @i all zero, or (i & 0xff) | 1 after i itself. */
/*
 * Map @size bytes of anonymous memory (not reserved) at *@mem and make it
 * memslot @slot of @vm at @gpa with @flags; fill @reg for an attach.  0 or
 * -errno; *@mem is MAP_FAILED if the mapping failed.
 */
static inline int vmpf_add_slot(int vm, int slot, size_t size, __u64 gpa, __u32 flags,
				void **mem, struct vmpf_region *reg)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size,
	};

	*mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (*mem == MAP_FAILED)
		return -errno;
	r.userspace_addr = (unsigned long)*mem;
	*reg = (struct vmpf_region){
		.slot = slot, .gpa = gpa, .size = size, .uaddr = r.userspace_addr,
	};
	return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

static inline void vmpf_pattern_page(unsigned char *p, int i, int zero)
{
	memset(p, zero ? 0 : (i & 0xff) | 1, 4096);
	if (!zero)
		memcpy(p, &i, sizeof(i));
}

/* Page @p holds what vmpf_pattern_page() puts in page @i. */
static inline int vmpf_pattern_ok(const unsigned char *p, int i, int zero)
{
	unsigned char want[4096];

	vmpf_pattern_page(want, i, zero);
	return !memcmp(p, want, 4096);
}

/* The restore session's status on @fd (zeroes if the ioctl fails). */
static inline void vmpf_rstatus(int fd, struct vmpf_restore_status *st)
{
	memset(st, 0, sizeof(*st));
	__vmpf_ioctl(fd, VMPF_IOC_RESTORE_STATUS, st);
}

/* The module's counters, through @fd (handshaken). */
static inline struct vmpf_dev_info vmpf_dev_counters(int fd)
{
	struct vmpf_dev_info info = { 0 };

	__vmpf_ioctl(fd, VMPF_IOC_DEV_INFO, &info);
	return info;
}

static inline int vmpf_page_is_clear(const unsigned char *p)
{
	int i;

	for (i = 0; i < 4096; i++)
		if (p[i])
			return 0;
	return 1;
}

/* 0, or a negative step number. */
static inline int vmpf_make_test_image(const char *target_path, const uint64_t slot_pages[2],
				       void (*fill)(unsigned char *page, int i),
				       const char *state, size_t state_len)
{
	struct vmpf_region regs[2];
	struct vmpf_source_attach at = { 0 };
	struct vmpf_finish fin = { .state = (unsigned long)state, .state_len = state_len };
	struct pollfd pfd;
	struct vmpf_api api;
	int kvm, vm, dev, target, i, n = 0, ret = -1;
	unsigned char *mem[2];

	kvm = open("/dev/kvm", O_RDWR);
	vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
	dev = vmpf_open(vmpf_device_path());
	target = open(target_path, O_RDWR | O_DIRECT);
	if (vm < 0 || dev < 0 || target < 0 || vmpf_handshake(dev, VMPF_FEATURE_SOURCE, &api))
		return -1;
	for (i = 0; i < 2; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i, .guest_phys_addr = i ? 1ULL << 32 : 0,
			.memory_size = slot_pages[i] * 4096,
		};
		uint64_t p;

		mem[i] = mmap(NULL, r.memory_size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem[i] == MAP_FAILED)
			return -2;
		r.userspace_addr = (unsigned long)mem[i];
		if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r))
			return -3;
		regs[i] = (struct vmpf_region){ .slot = i, .gpa = r.guest_phys_addr,
						.size = r.memory_size, .uaddr = r.userspace_addr };
		for (p = 0; p < slot_pages[i]; p++)
			fill(mem[i] + p * 4096, n++);
	}
	at.vm_fd = vm;
	at.target_fd = target;
	at.regions = (unsigned long)regs;
	at.nr_regions = 2;
	if (__vmpf_ioctl(dev, VMPF_IOC_SOURCE_ATTACH, &at) ||
	    __vmpf_ioctl(dev, VMPF_IOC_START, NULL))
		return -4;
	pfd = (struct pollfd){ .fd = dev, .events = POLLIN };
	if (poll(&pfd, 1, 60000) != 1 || __vmpf_ioctl(dev, VMPF_IOC_FINISH, &fin))
		return -5;
	ret = 0;
	close(dev);
	close(target);
	close(vm);
	close(kvm);
	for (i = 0; i < 2; i++)
		munmap(mem[i], slot_pages[i] * 4096);
	return ret;
}

static sigjmp_buf vmpf_sigbus_jmp;

static inline void vmpf_on_sigbus(int sig)
{
	siglongjmp(vmpf_sigbus_jmp, 1);
}

/* 1 if reading the byte at @p raised SIGBUS (a page the restore refused). */
static inline int touch_sigbus(volatile unsigned char *p)
{
	struct sigaction sa = { .sa_handler = vmpf_on_sigbus }, old;
	int bus = 0;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(vmpf_sigbus_jmp, 1))
		bus = 1;
	else
		(void)*p;
	sigaction(SIGBUS, &old, NULL);
	return bus;
}

#endif /* VMPF_TEST_IMAGE_H */
