// SPDX-License-Identifier: GPL-2.0
/*
 * vmpf-vm's KVM plumbing: VM and memory creation, 64-bit boot state, vCPU
 * threads with pause/resume, device state, RAM images and checksums.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vm.h"
#include "vmpf.h"

extern const uint8_t vm_guest_code[], vm_guest_code_end[];

#define STATE_MAGIC	"VMPFVMST"
#define STATE_VERSION	1

/* The device state blob: this header, then one vm_vcpu_state per vCPU. */
struct vm_state_hdr {
	char magic[8];
	uint32_t version;
	uint32_t nvcpus;
	uint64_t ram_bytes;
	uint64_t vcpu_state_size;
};

struct vm_vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
};

static int vm_err(struct vm *vm, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->error, sizeof(vm->error), fmt, ap);
	va_end(ap);
	return -err;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint8_t *vm_gpa_to_hva(struct vm *vm, uint64_t gpa)
{
	int i;

	for (i = 0; i < vm->nslots; i++)
		if (gpa >= vm->slots[i].gpa &&
		    gpa - vm->slots[i].gpa < vm->slots[i].size)
			return vm->slots[i].hva + (gpa - vm->slots[i].gpa);
	return NULL;
}

static int vm_set_cpuid(struct vm *vm, int vcpu_fd)
{
	struct kvm_cpuid2 *cpuid;
	int n = 100, ret;

	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
		if (!cpuid)
			return vm_err(vm, ENOMEM, "out of memory");
		cpuid->nent = n;
		if (!ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid))
			break;
		ret = errno;
		free(cpuid);
		if (ret != E2BIG || n > 4000)
			return vm_err(vm, ret, "KVM_GET_SUPPORTED_CPUID: %s", strerror(ret));
		n *= 2;
	}
	ret = ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) ? -errno : 0;
	free(cpuid);
	if (ret)
		return vm_err(vm, -ret, "KVM_SET_CPUID2: %s", strerror(-ret));
	return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	uint64_t half;
	int i, ret;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->kvm_fd = vm->fd = -1;
	for (i = 0; i < VM_MAX_VCPUS; i++)
		vm->vcpu[i].fd = vm->vcpu[i].stats_fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);

	if (cfg->vcpus < 1 || cfg->vcpus > VM_MAX_VCPUS)
		return vm_err(vm, EINVAL, "vCPUs must be 1 to %d", VM_MAX_VCPUS);
	if (cfg->ram_bytes < (1 << 20) || cfg->ram_bytes > (4ULL << 30) ||
	    cfg->ram_bytes % (2 * VM_PAGE_SIZE))
		return vm_err(vm, EINVAL,
			      "guest RAM must be 1 MiB to 4 GiB, a multiple of 8 KiB");

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return vm_err(vm, errno, "cannot open /dev/kvm: %s", strerror(errno));
	vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return vm_err(vm, errno, "KVM_CREATE_VM: %s", strerror(errno));

	if (cfg->dirty_ring) {
		/* Before any vCPU exists, as KVM requires. */
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_DIRTY_LOG_RING,
			.args = { cfg->dirty_ring * sizeof(struct kvm_dirty_gfn) },
		};

		if (ioctl(vm->fd, KVM_ENABLE_CAP, &cap))
			return vm_err(vm, errno, "KVM_CAP_DIRTY_LOG_RING (%llu entries): %s",
				      (unsigned long long)cfg->dirty_ring, strerror(errno));
	}
	if (cfg->manual_protect) {
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			.args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
				  (cfg->manual_protect > 1 ? KVM_DIRTY_LOG_INITIALLY_SET : 0) },
		};

		if (ioctl(vm->fd, KVM_ENABLE_CAP, &cap))
			return vm_err(vm, errno, "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: %s",
				      strerror(errno));
	}

	/* Two slots with a hole between them, like RAM below and above 4 GiB. */
	half = cfg->ram_bytes / 2 / VM_PAGE_SIZE * VM_PAGE_SIZE;
	vm->nslots = 2;
	vm->slots[0] = (struct vm_slot){ .id = 0, .gpa = 0, .size = half };
	vm->slots[1] = (struct vm_slot){ .id = 1, .gpa = VM_SLOT1_GPA,
					 .size = cfg->ram_bytes - half };
	for (i = 0; i < vm->nslots; i++) {
		struct vm_slot *s = &vm->slots[i];
		struct kvm_userspace_memory_region r = {
			.slot = s->id,
			.guest_phys_addr = s->gpa,
			.memory_size = s->size,
		};

		if (cfg->mem_fd > 0)
			/* 2 MiB aligned: huge pages of it map as such (KVM too). */
			s->hva = vmpf_map_huge_aligned(s->size, PROT_READ | PROT_WRITE,
						       cfg->mem_fd, cfg->mem_off[i]);
		else
			s->hva = mmap(NULL, s->size, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (s->hva == MAP_FAILED) {
			s->hva = NULL;
			return vm_err(vm, errno, "cannot map %" PRIu64 " bytes of guest RAM",
				      s->size);
		}
		r.userspace_addr = (uintptr_t)s->hva;
		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r))
			return vm_err(vm, errno, "KVM_SET_USER_MEMORY_REGION slot %u: %s",
				      s->id, strerror(errno));
	}

	ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0)
		return vm_err(vm, errno, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->run_size = ret;
	for (i = 0; i < cfg->vcpus; i++) {
		struct vm_vcpu *v = &vm->vcpu[i];

		v->vm = vm;
		v->index = i;
		v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, i);
		if (v->fd < 0)
			return vm_err(vm, errno, "KVM_CREATE_VCPU %d: %s", i, strerror(errno));
		v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			      v->fd, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			return vm_err(vm, errno, "mmap of vCPU %d: %s", i, strerror(errno));
		}
		ret = vm_set_cpuid(vm, v->fd);
		if (ret)
			return ret;
		/*
		 * Now, once: KVM_GET_STATS_FD is a vCPU ioctl, which waits for
		 * the vCPU's mutex, held for as long as it is in KVM_RUN.
		 * Reading the statistics file later takes no lock.
		 */
		v->stats_fd = ioctl(v->fd, KVM_GET_STATS_FD, NULL);
	}
	return 0;
}

static void vm_long_mode_sregs(struct kvm_sregs *s)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 8, .type = 11,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = code;

	data.selector = 16;
	data.type = 3;
	data.l = 0;
	data.db = 1;
	s->cs = code;
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->cr3 = VM_PML4_GPA;
	s->cr4 = 1 << 5;				/* PAE */
	s->cr0 = 1 << 0 | 1 << 1 | 1 << 4 | 1 << 5 | 1 << 16 | 1ULL << 31;
							/* PE MP ET NE WP PG */
	s->efer = 1 << 8 | 1 << 10;			/* LME LMA */
}

int vm_boot_setup(struct vm *vm)
{
	size_t code_len = vm_guest_code_end - vm_guest_code;
	uint64_t *pml4, *pdpt, *pd, writable, ws, left;
	struct vm_range ranges[VM_MAX_RANGES];
	int i, j, nranges = 0;

	if (code_len > VM_CODE_MAX)
		return vm_err(vm, E2BIG, "guest code too large");
	if (vm->slots[0].size < VM_RESERVED_PAGES * VM_PAGE_SIZE)
		return vm_err(vm, EINVAL, "slot 0 too small for the boot area");
	memcpy(vm_gpa_to_hva(vm, VM_CODE_GPA), vm_guest_code, code_len);

	/* Identity map 0..8 GiB with 2 MiB pages. */
	pml4 = (uint64_t *)vm_gpa_to_hva(vm, VM_PML4_GPA);
	pdpt = (uint64_t *)vm_gpa_to_hva(vm, VM_PDPT_GPA);
	pml4[0] = VM_PDPT_GPA | 3;
	for (i = 0; i < VM_PD_COUNT; i++) {
		pdpt[i] = (VM_PD_GPA + i * VM_PAGE_SIZE) | 3;
		pd = (uint64_t *)vm_gpa_to_hva(vm, VM_PD_GPA + i * VM_PAGE_SIZE);
		for (j = 0; j < 512; j++)
			pd[j] = ((uint64_t)i << 30 | (uint64_t)j << 21) | 0x83;
	}

	/* The working set: the first ws pages the guest may write, in GPA order. */
	writable = vm->slots[0].size / VM_PAGE_SIZE - VM_RESERVED_PAGES +
		   vm->slots[1].size / VM_PAGE_SIZE;
	ws = vm->cfg.ws_pages && vm->cfg.ws_pages < writable ? vm->cfg.ws_pages : writable;
	left = ws;
	for (i = 0; i < vm->nslots && left; i++) {
		uint64_t first = vm->slots[i].gpa / VM_PAGE_SIZE + (i ? 0 : VM_RESERVED_PAGES);
		uint64_t count = vm->slots[i].size / VM_PAGE_SIZE - (i ? 0 : VM_RESERVED_PAGES);

		if (count > left)
			count = left;
		ranges[nranges++] = (struct vm_range){ .gpn = first, .count = count };
		left -= count;
	}
	vm->cfg.ws_pages = ws;

	for (i = 0; i < vm->cfg.vcpus; i++) {
		struct vm_params *p = (struct vm_params *)
			vm_gpa_to_hva(vm, VM_PARAMS_GPA + i * sizeof(*p));
		struct vm_vcpu *v = &vm->vcpu[i];
		struct kvm_regs regs = {
			.rip = VM_CODE_GPA,
			.rdi = i,
			.rsi = VM_PARAMS_GPA + i * sizeof(*p),
			.rsp = VM_STACKS_GPA + (i + 1) * VM_PAGE_SIZE - 8,
			.rflags = 2,
		};
		struct kvm_sregs sregs;

		v->compute = vm->cfg.mode == VM_MODE_DIRTY &&
			     i >= vm->cfg.vcpus - vm->cfg.compute_vcpus;
		p->mode = v->compute ? VM_MODE_COMPUTE : vm->cfg.mode;
		p->batch = vm->cfg.batch;
		p->start = ws * i / vm->cfg.vcpus;
		p->nranges = nranges;
		memcpy(p->ranges, ranges, sizeof(ranges));

		if (ioctl(v->fd, KVM_GET_SREGS, &sregs))
			return vm_err(vm, errno, "KVM_GET_SREGS: %s", strerror(errno));
		vm_long_mode_sregs(&sregs);
		if (ioctl(v->fd, KVM_SET_SREGS, &sregs))
			return vm_err(vm, errno, "KVM_SET_SREGS: %s", strerror(errno));
		if (ioctl(v->fd, KVM_SET_REGS, &regs))
			return vm_err(vm, errno, "KVM_SET_REGS: %s", strerror(errno));
	}
	return 0;
}

#define VM_SLICE_NS	10000000ULL

/*
 * --rate: sleep so that this vCPU's stores follow its share of the rate,
 * slowed down by the migration's throttle (a throttled guest does not
 * catch up afterwards).  @due is when the next batch may run; a vCPU that
 * fell far behind (descheduled) starts over rather than bursting.
 */
static void vm_pace(struct vm_vcpu *v, uint64_t stores, uint64_t *due)
{
	struct vm *vm = v->vm;
	unsigned int pct = __atomic_load_n(&v->throttle_pct, __ATOMIC_RELAXED);
	uint64_t per_vcpu = vm->cfg.rate / (vm->cfg.vcpus - vm->cfg.compute_vcpus);
	uint64_t now = now_ns();
	struct timespec ts;

	if (!per_vcpu)
		return;
	if (pct > 99)
		pct = 99;
	per_vcpu = per_vcpu * (100 - pct) / 100 ?: 1;
	if (*due + 100000000ULL < now)
		*due = now;
	*due += stores * 1000000000ULL / per_vcpu;
	if (*due <= now)
		return;
	ts.tv_sec = (*due - now) / 1000000000ULL;
	ts.tv_nsec = (*due - now) % 1000000000ULL;
	nanosleep(&ts, NULL);
}

/*
 * Without --rate: the migration's throttle runs the vCPU (100 - pct) % of
 * each 10 ms slice and sleeps the rest.  Checked at each exit; at full
 * speed the guest exits every 64 stores, often enough for 10 ms slices.
 */
static void vm_throttle(struct vm_vcpu *v, uint64_t *slice_start)
{
	unsigned int pct = __atomic_load_n(&v->throttle_pct, __ATOMIC_RELAXED);
	uint64_t now = now_ns(), nap;
	struct timespec ts;

	/* Paced vCPUs are throttled by their pace; computing ones never are. */
	if (!pct || pct > 99 || (v->vm->cfg.rate && !v->compute)) {
		*slice_start = now;
		return;
	}
	if (now - *slice_start < VM_SLICE_NS * (100 - pct) / 100)
		return;
	nap = VM_SLICE_NS * pct / 100;
	ts.tv_sec = nap / 1000000000ULL;
	ts.tv_nsec = nap % 1000000000ULL;
	nanosleep(&ts, NULL);
	*slice_start = now_ns();
}

static void vm_fail(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	if (!vm->error[0]) {
		va_start(ap, fmt);
		vsnprintf(vm->error, sizeof(vm->error), fmt, ap);
		va_end(ap);
	}
	vm->quit = 1;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

/*
 * Finish the instruction that caused the last exit (an "out" completes on
 * the next KVM_RUN) without entering the guest, so that saved registers
 * point past it.
 */
static void vm_complete_exit(struct vm_vcpu *v)
{
	v->run->immediate_exit = 1;
	ioctl(v->fd, KVM_RUN, 0);
	v->run->immediate_exit = 0;
}

static void *vm_vcpu_thread(void *arg)
{
	struct vm_vcpu *v = arg;
	struct vm *vm = v->vm;
	uint64_t pace_due = now_ns(), slice_start = pace_due;

	for (;;) {
		pthread_mutex_lock(&vm->lock);
		/* A vCPU done with its passes stays as if paused, for good. */
		if ((!vm->running || v->done) && !vm->quit) {
			vm_complete_exit(v);
			vm->paused_vcpus++;
			pthread_cond_broadcast(&vm->cond);
			while ((!vm->running || v->done) && !vm->quit)
				pthread_cond_wait(&vm->cond, &vm->lock);
			vm->paused_vcpus--;
			pace_due = now_ns();
		}
		if (vm->quit) {
			pthread_mutex_unlock(&vm->lock);
			break;
		}
		pthread_mutex_unlock(&vm->lock);

		if (ioctl(v->fd, KVM_RUN, 0)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vm_fail(vm, "vCPU %d: KVM_RUN: %s", v->index, strerror(errno));
			break;
		}
		__atomic_add_fetch(&v->exits, 1, __ATOMIC_RELAXED);
		if (v->run->exit_reason == KVM_EXIT_DIRTY_RING_FULL) {
			/* The migration session harvests the ring: wait for room. */
			__atomic_add_fetch(&v->ring_full, 1, __ATOMIC_RELAXED);
			usleep(1000);
			continue;
		}
		if (v->run->exit_reason != KVM_EXIT_IO ||
		    v->run->io.direction != KVM_EXIT_IO_OUT) {
			vm_fail(vm, "vCPU %d: unexpected exit reason %u", v->index,
				v->run->exit_reason);
			break;
		}
		switch (v->run->io.port) {
		case VM_PORT_BATCH:
			__atomic_add_fetch(&v->stores, vm->cfg.batch, __ATOMIC_RELAXED);
			vm_pace(v, vm->cfg.batch, &pace_due);
			vm_throttle(v, &slice_start);
			break;
		case VM_PORT_WORK:
			__atomic_add_fetch(&v->work, 1, __ATOMIC_RELAXED);
			vm_throttle(v, &slice_start);
			break;
		case VM_PORT_PASS:
			if (__atomic_add_fetch(&v->passes, 1, __ATOMIC_RELAXED) ==
			    vm->cfg.max_passes)
				v->done = 1;
			break;
		case VM_PORT_IDLE:
			usleep(2000);
			break;
		default:
			vm_fail(vm, "vCPU %d: write to unknown port %#x", v->index,
				v->run->io.port);
			return NULL;
		}
	}
	return NULL;
}

int vm_start_threads(struct vm *vm)
{
	int i, ret;

	for (i = 0; i < vm->cfg.vcpus; i++) {
		ret = pthread_create(&vm->vcpu[i].thread, NULL, vm_vcpu_thread,
				     &vm->vcpu[i]);
		if (ret) {
			vm_fail(vm, "cannot start vCPU thread: %s", strerror(ret));
			return -ret;
		}
		vm->threads_started++;
	}
	vm_pause(vm);
	return 0;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->running = 1;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->running = 0;
	while (vm->paused_vcpus < vm->threads_started && !vm->quit)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}

void vm_destroy(struct vm *vm)
{
	int i;

	pthread_mutex_lock(&vm->lock);
	vm->quit = 1;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	for (i = 0; i < vm->threads_started; i++)
		pthread_join(vm->vcpu[i].thread, NULL);
	for (i = 0; i < VM_MAX_VCPUS; i++) {
		if (vm->vcpu[i].run)
			munmap(vm->vcpu[i].run, vm->run_size);
		if (vm->vcpu[i].stats_fd >= 0)
			close(vm->vcpu[i].stats_fd);
		if (vm->vcpu[i].fd >= 0)
			close(vm->vcpu[i].fd);
	}
	for (i = 0; i < vm->nslots; i++)
		if (vm->slots[i].hva)
			munmap(vm->slots[i].hva, vm->slots[i].size);
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
}

/* Counter @name of one vCPU from KVM's binary statistics; 0 if absent. */
static uint64_t vcpu_stat(int fd, const char *name)
{
	struct kvm_stats_header h;
	struct kvm_stats_desc *d;
	uint64_t val = 0;
	size_t dsize;
	uint32_t i;

	if (fd < 0)
		return 0;
	if (pread(fd, &h, sizeof(h), 0) != sizeof(h))
		goto out;
	dsize = sizeof(*d) + h.name_size;
	d = malloc(dsize);
	if (!d)
		goto out;
	for (i = 0; i < h.num_desc; i++) {
		if (pread(fd, d, dsize, h.desc_offset + i * dsize) != (ssize_t)dsize)
			break;
		d->name[h.name_size - 1] = 0;
		if (strcmp(d->name, name))
			continue;
		if (pread(fd, &val, sizeof(val), h.data_offset + d->offset) != sizeof(val))
			val = 0;
		break;
	}
	free(d);
out:
	return val;
}

uint64_t vm_vcpu_stat(struct vm *vm, const char *name)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < vm->cfg.vcpus; i++)
		n += vcpu_stat(vm->vcpu[i].stats_fd, name);
	return n;
}

long vm_ring_dirty(struct vm *vm)
{
	size_t len = vm->cfg.dirty_ring * sizeof(struct kvm_dirty_gfn);
	struct kvm_dirty_gfn *ring;
	long dirty = 0;
	uint64_t j;
	int i;

	for (i = 0; i < vm->cfg.vcpus; i++) {
		ring = mmap(NULL, len, PROT_READ, MAP_SHARED, vm->vcpu[i].fd,
			    KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));
		if (ring == MAP_FAILED)
			return -errno;
		for (j = 0; j < vm->cfg.dirty_ring; j++)
			dirty += !!(__atomic_load_n(&ring[j].flags, __ATOMIC_ACQUIRE) &
				    KVM_DIRTY_GFN_F_DIRTY);
		munmap(ring, len);
	}
	return dirty;
}

long vm_ring_stale(struct vm *vm, int i, uint64_t next)
{
	size_t len = vm->cfg.dirty_ring * sizeof(struct kvm_dirty_gfn);
	struct kvm_dirty_gfn *ring;
	uint64_t n = vm->cfg.dirty_ring, j, dirty = 0, run = 0;

	ring = mmap(NULL, len, PROT_READ, MAP_SHARED, vm->vcpu[i].fd,
		    KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));
	if (ring == MAP_FAILED)
		return -errno;
	for (j = 0; j < n; j++)
		dirty += !!(__atomic_load_n(&ring[j].flags, __ATOMIC_ACQUIRE) &
			    KVM_DIRTY_GFN_F_DIRTY);
	while (run < n && (__atomic_load_n(&ring[(next + run) % n].flags, __ATOMIC_ACQUIRE) &
			   KVM_DIRTY_GFN_F_DIRTY))
		run++;
	munmap(ring, len);
	return (long)(dirty - run);
}

void vm_set_throttle(struct vm *vm, int i, unsigned int pct)
{
	int k;

	for (k = 0; k < vm->cfg.vcpus; k++)
		if (i < 0 || k == i)
			__atomic_store_n(&vm->vcpu[k].throttle_pct, pct, __ATOMIC_RELAXED);
}

int vm_passes_done(struct vm *vm)
{
	int i;

	if (!vm->cfg.max_passes)
		return 0;
	for (i = 0; i < vm->cfg.vcpus; i++)
		if (__atomic_load_n(&vm->vcpu[i].passes, __ATOMIC_RELAXED) < vm->cfg.max_passes)
			return 0;
	return 1;
}

uint64_t vm_total_stores(struct vm *vm)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < vm->cfg.vcpus; i++)
		n += __atomic_load_n(&vm->vcpu[i].stores, __ATOMIC_RELAXED);
	return n;
}

int vm_save_state(struct vm *vm, void **blob, size_t *len)
{
	struct vm_state_hdr *h;
	struct vm_vcpu_state *s;
	int i;

	*len = sizeof(*h) + vm->cfg.vcpus * sizeof(*s);
	h = calloc(1, *len);
	if (!h)
		return vm_err(vm, ENOMEM, "out of memory");
	memcpy(h->magic, STATE_MAGIC, 8);
	h->version = STATE_VERSION;
	h->nvcpus = vm->cfg.vcpus;
	h->ram_bytes = vm->cfg.ram_bytes;
	h->vcpu_state_size = sizeof(*s);
	s = (struct vm_vcpu_state *)(h + 1);
	for (i = 0; i < vm->cfg.vcpus; i++, s++) {
		int fd = vm->vcpu[i].fd;

		if (ioctl(fd, KVM_GET_REGS, &s->regs) || ioctl(fd, KVM_GET_SREGS, &s->sregs) ||
		    ioctl(fd, KVM_GET_FPU, &s->fpu)) {
			free(h);
			return vm_err(vm, errno, "vCPU %d: cannot read registers: %s", i,
				      strerror(errno));
		}
	}
	*blob = h;
	return 0;
}

/* Check a blob and return its vCPU count and RAM size, without a VM. */
int vm_state_peek(const void *blob, size_t len, int *vcpus, uint64_t *ram_bytes)
{
	const struct vm_state_hdr *h = blob;

	if (len < sizeof(*h) || memcmp(h->magic, STATE_MAGIC, 8) ||
	    h->version != STATE_VERSION || h->vcpu_state_size != sizeof(struct vm_vcpu_state) ||
	    h->nvcpus < 1 || h->nvcpus > VM_MAX_VCPUS ||
	    len != sizeof(*h) + h->nvcpus * sizeof(struct vm_vcpu_state))
		return -EINVAL;
	*vcpus = h->nvcpus;
	*ram_bytes = h->ram_bytes;
	return 0;
}

int vm_load_state(struct vm *vm, const void *blob, size_t len)
{
	const struct vm_state_hdr *h = blob;
	const struct vm_vcpu_state *s;
	uint64_t ram;
	int i, n;

	if (vm_state_peek(blob, len, &n, &ram))
		return vm_err(vm, EINVAL, "not a vmpf-vm device state (bad magic, version or size)");
	if (n != vm->cfg.vcpus || ram != vm->cfg.ram_bytes)
		return vm_err(vm, EINVAL,
			      "device state is for %d vCPUs and %" PRIu64 " bytes of RAM, this VM has %d and %" PRIu64,
			      n, ram, vm->cfg.vcpus, vm->cfg.ram_bytes);
	s = (const struct vm_vcpu_state *)(h + 1);
	for (i = 0; i < n; i++, s++) {
		int fd = vm->vcpu[i].fd;

		if (ioctl(fd, KVM_SET_SREGS, &s->sregs) || ioctl(fd, KVM_SET_REGS, &s->regs) ||
		    ioctl(fd, KVM_SET_FPU, &s->fpu))
			return vm_err(vm, errno, "vCPU %d: cannot load registers: %s", i,
				      strerror(errno));
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int vm_save_ram(struct vm *vm, const char *path)
{
	int fd, i, ret = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return vm_err(vm, errno, "cannot create %s: %s", path, strerror(errno));
	for (i = 0; i < vm->nslots && !ret; i++)
		ret = write_all(fd, vm->slots[i].hva, vm->slots[i].size);
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	if (ret)
		return vm_err(vm, -ret, "cannot write %s: %s", path, strerror(-ret));
	return 0;
}

int vm_load_ram(struct vm *vm, const char *path)
{
	int fd, i;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vm_err(vm, errno, "cannot open %s: %s", path, strerror(errno));
	for (i = 0; i < vm->nslots; i++) {
		size_t done = 0;

		while (done < vm->slots[i].size) {
			ssize_t n = read(fd, vm->slots[i].hva + done, vm->slots[i].size - done);

			if (n <= 0) {
				int err = n < 0 ? errno : EINVAL;

				close(fd);
				return vm_err(vm, err, "%s: %s", path,
					      n < 0 ? strerror(err) : "shorter than guest RAM");
			}
			done += n;
		}
	}
	close(fd);
	return 0;
}

int vm_write_checksums(struct vm *vm, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
	uint64_t off;
	int i, ret = 0;

	if (!f)
		return vm_err(vm, errno, "cannot create %s: %s", path, strerror(errno));
	for (i = 0; i < vm->nslots; i++)
		for (off = 0; off < vm->slots[i].size; off += VM_PAGE_SIZE)
			fprintf(f, "%#" PRIx64 " %016" PRIx64 "\n", vm->slots[i].gpa + off,
				vm_page_checksum(vm->slots[i].hva + off));
	if (fflush(f) || ferror(f))
		ret = vm_err(vm, EIO, "cannot write %s", path);
	if (f != stdout)
		fclose(f);
	return ret;
}

long vm_verify_checksums(struct vm *vm, const char *path, char *first_bad,
			 size_t len)
{
	FILE *f = fopen(path, "r");
	uint64_t gpa, sum, pages = 0, want;
	long bad = 0;
	uint8_t *hva;
	int i;

	if (!f)
		return vm_err(vm, errno, "cannot open %s: %s", path, strerror(errno));
	first_bad[0] = 0;
	while (fscanf(f, "%" SCNx64 " %" SCNx64, &gpa, &sum) == 2) {
		hva = gpa % VM_PAGE_SIZE ? NULL : vm_gpa_to_hva(vm, gpa);
		if (!hva) {
			fclose(f);
			return vm_err(vm, EINVAL, "%s: %#" PRIx64 " is not a page of this VM",
				      path, gpa);
		}
		pages++;
		if (vm_page_checksum(hva) != sum && !bad++)
			snprintf(first_bad, len, "page %#" PRIx64 ": checksum %016" PRIx64
				 ", expected %016" PRIx64, gpa, vm_page_checksum(hva), sum);
	}
	fclose(f);
	for (want = 0, i = 0; i < vm->nslots; i++)
		want += vm->slots[i].size / VM_PAGE_SIZE;
	if (pages != want)
		return vm_err(vm, EINVAL, "%s: %" PRIu64 " pages listed, the VM has %" PRIu64,
			      path, pages, want);
	return bad;
}

long vm_check_pattern(struct vm *vm, char *first_bad, size_t len)
{
	const struct vm_params *p = (const struct vm_params *)vm_gpa_to_hva(vm, VM_PARAMS_GPA);
	uint64_t r, i, w;
	long bad = 0;

	first_bad[0] = 0;
	if (p->nranges > VM_MAX_RANGES) {
		snprintf(first_bad, len, "guest parameters corrupt");
		return 1;
	}
	for (r = 0; r < p->nranges; r++) {
		for (i = 0; i < p->ranges[r].count; i++) {
			uint64_t gpn = p->ranges[r].gpn + i;
			const uint64_t *page = (const uint64_t *)
				vm_gpa_to_hva(vm, gpn * VM_PAGE_SIZE);

			if (!page) {
				snprintf(first_bad, len, "working set page %#" PRIx64
					 " outside guest RAM", gpn);
				return 1;
			}
			for (w = 0; w < VM_PAGE_SIZE / 8; w++) {
				int ok = w < (uint64_t)vm->cfg.vcpus ?
					 !page[w] || (uint32_t)page[w] == (uint32_t)gpn :
					 !page[w];

				if (!ok && !bad++)
					snprintf(first_bad, len,
						 "page %#" PRIx64 " word %" PRIu64 " holds %#" PRIx64,
						 (uint64_t)(gpn * VM_PAGE_SIZE), w, page[w]);
			}
		}
	}
	return bad;
}

/* KVM_SET_USER_MEMORY_REGION on slot @s of the VM with @flags and @size. */
static int vm_set_slot(struct vm *vm, const struct vm_slot *s, uint32_t flags, uint64_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = s->id, .flags = flags, .guest_phys_addr = s->gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)s->hva,
	};

	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

/* Every vCPU's dirty-ring entries flagged dirty handed back to KVM. */
static int vm_ring_steal(struct vm *vm)
{
	size_t len = vm->cfg.dirty_ring * sizeof(struct kvm_dirty_gfn);
	struct kvm_dirty_gfn *ring;
	uint64_t j;
	int i;

	for (i = 0; i < vm->cfg.vcpus; i++) {
		ring = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu[i].fd,
			    KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));
		if (ring == MAP_FAILED)
			return -errno;
		for (j = 0; j < vm->cfg.dirty_ring; j++)
			if (__atomic_load_n(&ring[j].flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY)
				__atomic_store_n(&ring[j].flags, KVM_DIRTY_GFN_F_RESET,
						 __ATOMIC_RELEASE);
		munmap(ring, len);
	}
	return ioctl(vm->fd, KVM_RESET_DIRTY_RINGS, 0) < 0 ? -errno : 0;
}

int vm_scribble_args(void);

/* --misbehave ring-spin: for a second, keep marking every ring entry dirty. */
static int vm_ring_spin(struct vm *vm)
{
	size_t len = vm->cfg.dirty_ring * sizeof(struct kvm_dirty_gfn);
	struct kvm_dirty_gfn *ring[VM_MAX_VCPUS];
	struct timespec t0, t;
	uint64_t j;
	int i;

	for (i = 0; i < vm->cfg.vcpus; i++) {
		ring[i] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu[i].fd,
			       KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));
		if (ring[i] == MAP_FAILED)
			return -errno;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (i = 0; i < vm->cfg.vcpus; i++)
			for (j = 0; j < vm->cfg.dirty_ring; j++)
				__atomic_store_n(&ring[i][j].flags, KVM_DIRTY_GFN_F_DIRTY,
						 __ATOMIC_RELEASE);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 1);
	for (i = 0; i < vm->cfg.vcpus; i++)
		munmap(ring[i], len);
	return 0;
}

int vm_misbehave(struct vm *vm, const char *what)
{
	static uint64_t bitmap[1 << 13];
	int i, ret = 0, k;

	if (!strcmp(what, "slot-toggle") || !strcmp(what, "slot-unlog")) {
		/* Logging off and (toggle) on again: KVM drops the log meanwhile. */
		for (i = 0; i < vm->nslots && !ret; i++) {
			ret = vm_set_slot(vm, &vm->slots[i], 0, vm->slots[i].size);
			if (!ret && !strcmp(what, "slot-toggle"))
				ret = vm_set_slot(vm, &vm->slots[i], KVM_MEM_LOG_DIRTY_PAGES,
						  vm->slots[i].size);
		}
	} else if (!strcmp(what, "slot-recreate")) {
		/* Deleted and created again exactly as the session left it. */
		vm_pause(vm);
		for (i = 0; i < vm->nslots && !ret; i++) {
			ret = vm_set_slot(vm, &vm->slots[i], 0, 0);
			if (!ret)
				ret = vm_set_slot(vm, &vm->slots[i], KVM_MEM_LOG_DIRTY_PAGES,
						  vm->slots[i].size);
		}
		vm_resume(vm);
	} else if (!strcmp(what, "harvest")) {
		/* The VMM reads (and so clears) the dirty log itself, a few times. */
		for (k = 0; k < 5 && !ret; k++) {
			for (i = 0; i < vm->nslots && !ret; i++) {
				struct kvm_dirty_log log = { .slot = vm->slots[i].id,
							     .dirty_bitmap = bitmap };

				if (vm->slots[i].size / VM_PAGE_SIZE > sizeof(bitmap) * 8)
					continue;
				if (ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log))
					ret = -errno;
			}
			usleep(20000);
		}
	} else if (!strcmp(what, "ring-harvest")) {
		for (k = 0; k < 5 && !ret; k++) {
			ret = vm_ring_steal(vm);
			usleep(20000);
		}
	} else if (!strcmp(what, "ring-spin")) {
		ret = vm_ring_spin(vm);
	} else if (!strcmp(what, "scribble")) {
		ret = vm_scribble_args();
	} else if (!strcmp(what, "smm")) {
		/* An SMRAM-like memslot in address space 1. */
		struct vm_slot s = { .id = (1 << 16) | 7, .gpa = 0xa0000, .size = 0x20000 };

		s.hva = mmap(NULL, s.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);
		if (s.hva == MAP_FAILED)
			return -errno;
		ret = vm_set_slot(vm, &s, 0, s.size);
	} else {
		ret = -EINVAL;
	}
	return ret;
}

/*
 * --misbehave scribble: find the session's arguments page in our own
 * address space and try to make it writable or write it; every attempt
 * must fail.  0 if they all did, -EPERM if one succeeded.
 */
int vm_scribble_args(void)
{
	char line[512];
	unsigned long start = 0, end;
	FILE *maps = fopen("/proc/self/maps", "r");
	uint64_t junk = ~0ULL;
	void *elsewhere, *moved;
	int mem, bad = 0;

	if (!maps)
		return -errno;
	while (fgets(line, sizeof(line), maps))
		if (strstr(line, "[vmpagefile-args]") &&
		    sscanf(line, "%lx-%lx", &start, &end) == 2)
			break;
	fclose(maps);
	if (!start)
		return -ENOENT;
	bad |= !mprotect((void *)start, 4096, PROT_READ | PROT_WRITE);
	/* Nor moved away (the session would lose it) nor copied into a child. */
	elsewhere = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (elsewhere != MAP_FAILED) {
		moved = mremap((void *)start, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED,
			       elsewhere);
		bad |= moved != MAP_FAILED;
		munmap(moved != MAP_FAILED ? (void *)start : elsewhere, 4096);
	}
	bad |= !madvise((void *)start, 4096, MADV_DOFORK);
	mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mem >= 0) {
		bad |= pwrite(mem, &junk, sizeof(junk), (off_t)start) == sizeof(junk);
		close(mem);
	}
	return bad ? -EPERM : 0;
}
