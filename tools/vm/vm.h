/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small KVM VMM: the reference user of vmpagefile and the workload of its
 * tests.  See vm_abi.h for what the guest does.
 */
#ifndef VMPF_VM_H
#define VMPF_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>

#include "vm_abi.h"

struct vm_slot {
	uint32_t id;
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct vm_vcpu {
	struct vm *vm;
	int index;
	int fd;
	int stats_fd;		/* KVM's binary statistics, opened with the vCPU */
	struct kvm_run *run;
	pthread_t thread;
	/* progress, written by the vCPU thread, read by anyone */
	uint64_t stores;
	uint64_t passes;
	uint64_t exits;
	uint64_t work;		/* VM_MODE_COMPUTE: batches of computation */
	uint64_t ring_full;	/* exits because its dirty ring was full */
	/* Per cent of each 10 ms slice this vCPU sleeps; atomic, any thread sets it. */
	unsigned int throttle_pct;
	int compute;		/* runs VM_MODE_COMPUTE */
	int done;		/* made its cfg.max_passes: runs no more (vCPU thread only) */
};

struct vm_config {
	uint64_t ram_bytes;	/* split over two slots */
	int vcpus;		/* 1..VM_MAX_VCPUS */
	int mode;		/* VM_MODE_DIRTY or VM_MODE_IDLE */
	uint64_t ws_pages;	/* working set, pages; 0 = all writable pages */
	uint64_t rate;		/* stores per second over all vCPUs; 0 = unthrottled */
	uint64_t batch;		/* stores per progress exit */
	int mem_fd;		/* > 0: map slot i from it at mem_off[i] (MAP_SHARED) */
	int manual_protect;	/* enable KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, as QEMU does;
				 * 2: with KVM_DIRTY_LOG_INITIALLY_SET */
	uint64_t max_passes;	/* > 0: a vCPU stops after this many passes */
	int compute_vcpus;	/* the last this many vCPUs compute, touching no memory */
	uint64_t dirty_ring;	/* > 0: KVM's dirty ring with this many entries per vCPU */
	uint64_t mem_off[2];
};

struct vm {
	struct vm_config cfg;
	int kvm_fd;
	int fd;
	int nslots;
	struct vm_slot slots[2];
	struct vm_vcpu vcpu[VM_MAX_VCPUS];
	size_t run_size;

	/*
	 * @lock protects @running, @paused_vcpus and @quit; vCPU threads wait
	 * on @cond while paused, the controller waits on it for them to stop.
	 */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running;
	int paused_vcpus;
	int quit;
	int threads_started;
	char error[256];	/* first vCPU error, under @lock */
};

/*
 * With the dirty ring: entries of vCPU @i's ring flagged dirty that a
 * harvest resuming at entry @next would not reach (0 when @next is right),
 * or -errno.
 */
long vm_ring_stale(struct vm *vm, int i, uint64_t next);

/* With the dirty ring: entries flagged dirty in all rings, or -errno. */
long vm_ring_dirty(struct vm *vm);

/* Slow vCPU @i down by @pct per cent (-1: every vCPU). */
void vm_set_throttle(struct vm *vm, int i, unsigned int pct);

/* Create the VM, its memory and vCPUs; 0 or -errno with vm->error set. */
int vm_create(struct vm *vm, const struct vm_config *cfg);

/* Write page tables, code and parameters into fresh guest memory. */
int vm_boot_setup(struct vm *vm);

/* Start the vCPU threads (paused) / let them run / stop them all. */
int vm_start_threads(struct vm *vm);
void vm_resume(struct vm *vm);
void vm_pause(struct vm *vm);	/* returns once every vCPU is out of KVM_RUN */
void vm_destroy(struct vm *vm);

/* The device state: every vCPU's registers, as a blob (malloc'ed). */
int vm_save_state(struct vm *vm, void **blob, size_t *len);
int vm_load_state(struct vm *vm, const void *blob, size_t len);
/* Check a blob; its vCPU count and RAM size, without a VM.  0 or -EINVAL. */
int vm_state_peek(const void *blob, size_t len, int *vcpus, uint64_t *ram_bytes);

/* Guest memory as one plain image, slot after slot. */
int vm_save_ram(struct vm *vm, const char *path);
int vm_load_ram(struct vm *vm, const char *path);

/*
 * FNV-1a over a page's 64-bit words (not bytes: 8 times fewer steps); also
 * what selftests/crash_tool compares restored pages with.
 */
static inline uint64_t vm_page_checksum(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned int i;

	for (i = 0; i < VM_PAGE_SIZE / 8; i++) {
		h ^= w[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Each guest page's vm_page_checksum(), written as "gpa checksum" lines. */
int vm_write_checksums(struct vm *vm, const char *path);
/* Compare with a checksum file: number of mismatches, or -errno. */
long vm_verify_checksums(struct vm *vm, const char *path, char *first_bad,
			 size_t len);

/* Check every word the guest can have written: pages with foreign words. */
long vm_check_pattern(struct vm *vm, char *first_bad, size_t len);

/* The sum over the vCPUs of KVM's statistic @name (e.g. "pf_fast"); 0 if absent. */
uint64_t vm_vcpu_stat(struct vm *vm, const char *name);

/* 1 once every vCPU made cfg.max_passes passes (and stopped). */
int vm_passes_done(struct vm *vm);

/*
 * For tests of a VMM breaking the rules of a migration: do @what now, as a
 * careless VMM would ("slot-toggle", "slot-unlog", "slot-recreate",
 * "harvest", "ring-harvest", "ring-spin", "smm", "scribble").  0 or -errno.
 */
int vm_misbehave(struct vm *vm, const char *what);

/* Translate a guest-physical address to the VMM's address, or NULL. */
uint8_t *vm_gpa_to_hva(struct vm *vm, uint64_t gpa);

uint64_t vm_total_stores(struct vm *vm);

#endif /* VMPF_VM_H */
