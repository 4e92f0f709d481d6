// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded, randomized fuzzer of /dev/vmpagefile: every ioctl with random
 * and boundary values in every field, bad pointers (NULL, unmapped,
 * read-only, kernel, non-canonical, straddling a guard page), unknown
 * ioctl numbers and wrong sizes; in random order across the phases of real
 * sessions: a source session over a real KVM VM with real memslots (page
 * file /dev/ram0), restore sessions on a committed image (/dev/ram1, made
 * at the start) and on garbage; mmap with random offsets, lengths and
 * protections, touching the mapped pages; several threads on the same
 * descriptors, a thread closing, reopening and dup()ing them meanwhile,
 * and fork()ed children using inherited descriptors.
 *
 * It passes when every call returned (a watchdog reports a call blocked
 * for longer than VMPF_FUZZ_HANG seconds, default 60), every errno is one
 * the ioctl documents (see the allowed sets below), pages of the committed
 * image always read back right, the kernel stayed untainted and, once
 * everything is closed and unmapped, the module holds no session and no
 * memory for callers.
 *
 * VMPF_FUZZ_SEED=N reruns a seed; VMPF_FUZZ_CALLS=N sets the number of
 * calls (default 100000), shared by the worker threads.  Each thread's
 * sequence of calls is a function of the seed; their interleaving is not.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmpf_test_util.h"

/* Calls when VMPF_FUZZ_CALLS is not set. */
#ifndef VMPF_FUZZ_DEFAULT_CALLS
#define VMPF_FUZZ_DEFAULT_CALLS	100000
#endif
#define IMAGE_DEV	"/dev/ram1"	/* the committed image, made at the start */
#define TARGET_DEV	"/dev/ram0"	/* source sessions write here */
#define GARBAGE		"/tmp/vmpf-fuzz-garbage"
#define NWORKERS	4
#define NSLOTS		8
#define MAPS_PER_THREAD	8
#define S0_PAGES	64
#define S1_PAGES	32
#define S1_GPA		(1ULL << 32)
#define TOTAL_PAGES	(S0_PAGES + S1_PAGES)
#define IMAGE_STATE	"vmpf fuzz image on " IMAGE_DEV

/* --- random numbers: xorshift64*, one stream per thread --- */
static __thread uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static uint64_t rn(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static int chance(int pct)
{
	return (int)rn(100) < pct;
}

static const uint64_t interesting[] = {
	0, 1, 2, 3, 7, 8, 31, 32, 33, 63, 64, 65, 95, 96, 97, 255, 256, 511,
	4095, 4096, 4097, 8192, 65536, 1 << 20, (1 << 20) + 1, 1ULL << 27,
	(1ULL << 27) + 1, 1ULL << 30, (1ULL << 30) + 4096, 0x7fffffff,
	0x80000000, 0xffffffff, 1ULL << 32, (1ULL << 32) + 4096, 1ULL << 42,
	(1ULL << 42) + 4096, 1ULL << 47, 1ULL << 52, 1ULL << 61, 1ULL << 63,
	~0ULL, ~0ULL - 1, ~0ULL - 4095, ~0ULL << 12, (1ULL << 63) - 4096,
	0xffff800000000000ULL, 0x0000800000000000ULL - 4096,
};

static uint64_t ival(void)
{
	switch (rn(5)) {
	case 0:
		return rnd();
	case 1:
		return rn(4097);
	case 2:
		return rn(1 << 20) << 12;
	default:
		return interesting[rn(sizeof(interesting) / sizeof(interesting[0]))];
	}
}

/* --- what is being fuzzed, and what each may answer --- */
enum op {
	OP_API, OP_DEV_INFO, OP_ATTACH, OP_START, OP_STATUS, OP_REQUEST_FINISH,
	OP_FINISH, OP_ABORT, OP_MARK_DIRTY, OP_RESTORE_OPEN, OP_RESTORE_INFO,
	OP_PREFETCH, OP_RESTORE_STATUS, OP_SET_THROTTLE, OP_VCPU_THROTTLE, OP_ROUND_POLICY,
	OP_UNKNOWN, OP_MMAP, OP_TOUCH,
	OP_POLL, OP_FORK, OP_RECYCLE, OP_MEMSLOT, OP_MM, OP_KERNEL_ACCESS, NR_OPS
};

static const char *const op_name[NR_OPS] = {
	"API", "DEV_INFO", "SOURCE_ATTACH", "START", "STATUS", "REQUEST_FINISH",
	"FINISH", "ABORT", "MARK_DIRTY", "RESTORE_OPEN", "RESTORE_INFO",
	"PREFETCH", "RESTORE_STATUS", "SET_THROTTLE", "VCPU_THROTTLE", "ROUND_POLICY",
	"unknown ioctl", "mmap", "touch", "poll",
	"fork", "close/reopen", "memslot change", "mprotect/madvise/mremap",
	"kernel access",
};

/*
 * The errnos each call may fail with, from uapi/linux/vmpagefile.h and the
 * code.  Everywhere: EBADF (another thread closed the descriptor number
 * meanwhile).  Every ioctl but the handshake: EBADFD before it.  The
 * feature-gated ones: EOPNOTSUPP.  FINISH also returns the errno that
 * failed the session (ECANCELED when an abort won; EIO, ENOSPC, ETIMEDOUT,
 * ENOLINK, EREMOTEIO, ENXIO from the page file; ESRCH; ENOENT/EINVAL/EFAULT
 * from KVM's dirty log when the memslots changed under it; ESTALE, EXDEV,
 * EBUSY, ENOPROTOOPT when the VMM broke a rule of migrations).
 */
#define MAXERR 256
static const int allowed_list[NR_OPS][20] = {
	[OP_API]		= { EINVAL, EEXIST, EFAULT },
	[OP_DEV_INFO]		= { EBADFD, EFAULT },
	[OP_ATTACH]		= { EBADFD, EOPNOTSUPP, EINVAL, EPERM, ENOSPC, EBUSY,
				    EFAULT, ENOMEM, EXDEV, ENOPROTOOPT, EMEDIUMTYPE },
	[OP_START]		= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT, ENOMEM },
	[OP_STATUS]		= { EBADFD, EINVAL, EFAULT, ENOMEM },
	[OP_REQUEST_FINISH]	= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT },
	[OP_FINISH]		= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT, EPERM, EFAULT,
				    ENOMEM, ECANCELED, EIO, ENOSPC, ESRCH, ETIMEDOUT,
				    ENOLINK, EREMOTEIO, ENXIO, ESTALE, EXDEV, EBUSY,
				    ENOPROTOOPT },
	[OP_ABORT]		= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT, EBUSY },
	[OP_MARK_DIRTY]		= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT, EPERM, EFAULT },
	[OP_RESTORE_OPEN]	= { EBADFD, EOPNOTSUPP, EINVAL, ENODATA, EBADMSG,
				    EPROTONOSUPPORT, EBUSY, EFAULT, ENOMEM, EIO,
				    EROFS, EALREADY },
	[OP_RESTORE_INFO]	= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT, EFAULT },
	[OP_PREFETCH]		= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT, EFAULT, ENOMEM },
	[OP_RESTORE_STATUS]	= { EBADFD, EINVAL, EFAULT },
	[OP_SET_THROTTLE]	= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT, EFAULT },
	[OP_VCPU_THROTTLE]	= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT, EFAULT, ENOMEM },
	[OP_ROUND_POLICY]	= { EBADFD, EOPNOTSUPP, EINVAL, ENOENT, EFAULT, ENOMEM },
	[OP_UNKNOWN]		= { ENOTTY },
	/* ENODEV: no restore session; EACCES: PROT_WRITE on an O_RDONLY one. */
	[OP_MMAP]		= { ENODEV, EINVAL, ENOMEM, EACCES, EOVERFLOW, EPERM },
	[OP_POLL]		= { 0 },
};

static unsigned char allowed[NR_OPS][MAXERR];

struct stat_op {
	uint64_t calls, ok, err[MAXERR];
};

static struct stat_op stats[NR_OPS];
static uint64_t image_pages_checked, source_scenarios, restore_scenarios, committed;
static uint64_t violations, sigbus_caught, sigsegv_caught, bad_data, fork_failures;
static int violations_printed;
static uint64_t seed;

static void add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;
	char buf[256];

	add(&violations, 1);
	if (__atomic_fetch_add(&violations_printed, 1, __ATOMIC_RELAXED) >= 30)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("# VIOLATION (seed %" PRIu64 "): %s\n", seed, buf);
	fflush(stdout);
}

/* The watchdog watches what each thread is doing, and since when. */
#define NTHREADS (NWORKERS + 1)
static struct {
	int op;			/* -1: between calls */
	uint64_t since_ns;
	uint64_t cmd, arg;
} busy[NTHREADS];
static __thread int me;
static volatile int stop_all;
static int hang_seconds = 60;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void enter(int op, uint64_t cmd, uint64_t arg)
{
	busy[me].cmd = cmd;
	busy[me].arg = arg;
	__atomic_store_n(&busy[me].since_ns, now_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&busy[me].op, op, __ATOMIC_RELEASE);
}

static void leave(void)
{
	__atomic_store_n(&busy[me].op, -1, __ATOMIC_RELEASE);
}

static void account(int op, int err)
{
	add(&stats[op].calls, 1);
	if (!err) {
		add(&stats[op].ok, 1);
		return;
	}
	add(&stats[op].err[err < MAXERR ? err : 0], 1);
	if (err >= MAXERR || !allowed[op][err])
		violation("%s failed with errno %d (%s), not in its allowed set",
			  op_name[op], err, strerror(err));
}

/* --- the environment: descriptors, buffers, the VM --- */
static int kvm_fd, vm_fd, target_rw, image_ro, image_nodirect, garbage_fd,
	   devnull_fd, dev_rdonly;
static unsigned char *guest[2];
static int slots[NSLOTS];		/* descriptors of /dev/vmpagefile */
static unsigned char *guard;		/* PROT_NONE */
static unsigned char *ro_page;		/* PROT_READ, holds a valid handshake */

/* Page i of guest RAM (slot 0 then slot 1): every 3rd page zero. */
static void fill_page(unsigned char *p, uint64_t i)
{
	memset(p, i % 3 == 2 ? 0 : (i & 0xff) | 1, 4096);
	if (i % 3 != 2)
		memcpy(p, &i, sizeof(i));
}

/*
 * Image pages some thread punched a hole over (MADV_REMOVE on a mapping of
 * the committed image: restored memory returns it, and it then reads as
 * zero).  Set before the madvise(), so a read that meets the hole finds
 * the bit; global over the sessions, so it only widens what is accepted.
 */
static unsigned long image_holes[(TOTAL_PAGES + 63) / 64];

static void mark_holes(uint64_t first, uint64_t n)
{
	uint64_t i;

	for (i = first; i < first + n && i < TOTAL_PAGES; i++)
		__atomic_fetch_or(&image_holes[i / 64], 1UL << (i % 64), __ATOMIC_SEQ_CST);
}

static int page_ok(const unsigned char *p, uint64_t i)
{
	unsigned char want[4096];
	int b;

	fill_page(want, i);
	if (!memcmp((const void *)p, want, 4095))	/* the last byte is scribbled on */
		return 1;
	if (i >= TOTAL_PAGES ||
	    !(__atomic_load_n(&image_holes[i / 64], __ATOMIC_SEQ_CST) & (1UL << (i % 64))))
		return 0;
	/* In a hole: zeros, or the page's bytes where a read raced the punch. */
	for (b = 0; b < 4095; b++)
		if (p[b] && p[b] != want[b])
			return 0;
	return 1;
}

static int get_slot_fd(void)
{
	return __atomic_load_n(&slots[rn(NSLOTS)], __ATOMIC_RELAXED);
}

/* Some fd number: mostly ours, sometimes anything. */
static uint64_t some_fd(void)
{
	switch (rn(12)) {
	case 0: return -1ULL;
	case 1: return (uint64_t)INT_MAX + 1;
	case 2: return 1ULL << 32 | (unsigned int)vm_fd;
	case 3: return kvm_fd;
	case 4: return devnull_fd;
	case 5: return get_slot_fd();
	case 6: return image_nodirect;
	case 7: return garbage_fd;
	case 8: return rn(64);
	case 9: return dev_rdonly;
	case 10: return image_ro;
	default: return target_rw;
	}
}

/* Per thread: a buffer of 4 pages ending at a PROT_NONE page. */
static __thread unsigned char *tbuf;
#define TBUF_LEN (4 * 4096)

/* A pointer for an argument of @size bytes: usually good, often not. */
static uint64_t some_ptr(size_t size, int good_pct)
{
	if (chance(good_pct))
		return (uint64_t)(tbuf + TBUF_LEN - size - rn(8) * 8 * (size < TBUF_LEN / 2));
	switch (rn(10)) {
	case 0: return 0;
	case 1: return (uint64_t)guard;
	case 2: return (uint64_t)ro_page;
	case 3: return 0xffffffff81000000ULL;		/* kernel text */
	case 4: return 0xffff888000000000ULL;		/* direct map */
	case 5: return 0x8000000000000000ULL;		/* non-canonical */
	case 6: return (uint64_t)(tbuf + TBUF_LEN - size + 8 * (1 + rn(size / 8)));
	case 7: return ~0ULL - 7;
	case 8: return 1 + rn(4095);
	default: return (uint64_t)(tbuf + TBUF_LEN - size + 1);	/* misaligned, straddles */
	}
}

static long raw_ioctl(int op, int fd, uint64_t cmd, uint64_t arg)
{
	long r;
	int err;

	enter(op, cmd, arg);
	r = syscall(SYS_ioctl, fd, (unsigned long)cmd, (unsigned long)arg);
	err = r < 0 ? errno : 0;
	leave();
	account(op, err);
	return r < 0 ? -err : r;
}

/* Copy @s to the per-thread buffer and return a pointer: good or bad. */
static uint64_t place(const void *s, size_t size, int good_pct)
{
	uint64_t p = some_ptr(size, good_pct);

	if (p >= (uint64_t)tbuf && p < (uint64_t)tbuf + TBUF_LEN &&
	    p + size <= (uint64_t)tbuf + TBUF_LEN)
		memcpy((void *)p, s, size);
	return p;
}

/* Flip up to @n random 64-bit fields of @s to random or boundary values. */
static void mutate(void *s, size_t size, int n)
{
	uint64_t *f = s;

	while (n-- > 0)
		f[rn(size / 8)] = ival();
}

/*
 * A pointer the kernel writes through: a mutation may have made it point
 * anywhere in our own address space, which the kernel would then rightly
 * overwrite.  Keep it to the buffer, or somewhere that faults.
 */
static void out_ptr(__u64 *p)
{
	if (*p < 0x0000800000000000ULL &&
	    (*p < (uint64_t)tbuf || *p >= (uint64_t)tbuf + TBUF_LEN))
		*p = *p < 4096 ? *p : (uint64_t)guard + (*p & 4095);
}

static uint64_t rand_features(void)
{
	static const uint64_t f[] = { VMPF_FEATURES_ALL, VMPF_FEATURES_ALL, VMPF_FEATURES_ALL,
				      VMPF_FEATURE_SOURCE, VMPF_FEATURE_RESTORE, 0, 4, ~0ULL };

	return f[rn(8)];
}

static void fuzz_api(int fd)
{
	struct vmpf_api a = { .api = VMPF_API, .features = rand_features() };

	if (chance(30))
		mutate(&a, sizeof(a), 1 + rn(2));
	raw_ioctl(OP_API, fd, VMPF_IOC_API, place(&a, sizeof(a), 85));
}

static void fuzz_dev_info(int fd)
{
	raw_ioctl(OP_DEV_INFO, fd, VMPF_IOC_DEV_INFO, some_ptr(sizeof(struct vmpf_dev_info), 80));
}

static void make_regions(struct vmpf_region *r, __u64 *n)
{
	struct vmpf_region s0 = { 0, 0, S0_PAGES * 4096, (uint64_t)guest[0] };
	struct vmpf_region s1 = { 1, S1_GPA, S1_PAGES * 4096, (uint64_t)guest[1] };
	uint64_t i;

	switch (rn(4)) {
	case 0: r[0] = s0; *n = 1; break;
	case 1: r[0] = s1; *n = 1; break;
	case 2: r[0] = s1; r[1] = s0; *n = 2; break;
	default: r[0] = s0; r[1] = s1; *n = 2; break;
	}
	if (!chance(35))
		return;
	switch (rn(12)) {
	case 0: r[1] = r[0]; *n = 2; break;				/* the same twice */
	case 1: r[1] = r[0]; r[1].slot = 7; *n = 2; break;		/* overlapping gpa */
	case 2: r[0].gpa += 4096; break;				/* not the memslot */
	case 3: r[0].size -= 4096; break;
	case 4: r[0].uaddr += 4096; break;
	case 5: r[0].gpa |= 1 + rn(4095); break;			/* unaligned */
	case 6: r[0].gpa = ~0ULL << 12; break;				/* gpa + size wraps */
	case 7: r[0].uaddr = ~0ULL << 12; break;			/* uaddr + size wraps */
	case 8: r[0].uaddr = 0xffff888000000000ULL; break;		/* kernel */
	case 9: r[0].size = 0; break;
	case 10:							/* many */
		*n = rn(VMPF_MAX_REGIONS + 2);
		for (i = 0; i < *n && i < VMPF_MAX_REGIONS + 1; i++)
			r[i] = i % 2 ? s1 : s0;
		break;
	default:
		mutate(&r[rn(*n)], sizeof(*r), 1);
		break;
	}
}

static void fuzz_attach(int fd)
{
	struct vmpf_region regs[VMPF_MAX_REGIONS + 2];
	struct vmpf_source_attach a = { .vm_fd = vm_fd, .target_fd = target_rw };
	static const uint64_t state_max[] = { 0, 0, 4096, 8192, 65536, 1 << 20, 4095,
					      1ULL << 30, (1ULL << 30) + 4096, 1ULL << 29 };
	uint64_t p;

	make_regions(regs, &a.nr_regions);
	a.state_max = state_max[rn(10)];
	if (chance(30))
		a.max_rounds = rn(4);
	if (chance(30))
		a.target_pages = rn(2) ? 0 : ~0ULL;
	if (chance(15))
		a.vm_fd = some_fd();
	if (chance(15))
		a.target_fd = some_fd();
	if (chance(15))
		mutate(&a, sizeof(a), 1);
	/* The region table sits at the start of the buffer, the struct at its end. */
	memcpy(tbuf, regs, sizeof(regs));
	a.regions = chance(90) ? (uint64_t)tbuf : some_ptr(sizeof(regs[0]) * 2, 0);
	if (chance(5))		/* the second entry is in the guard page */
		a.regions = (uint64_t)(tbuf + TBUF_LEN - sizeof(regs[0])), a.nr_regions = 2;
	p = place(&a, sizeof(a), 85);
	if (!raw_ioctl(OP_ATTACH, fd, VMPF_IOC_SOURCE_ATTACH, p)) {
		struct vmpf_source_attach *out = (void *)p;
		uint64_t i, pages = 0;

		for (i = 0; i < a.nr_regions; i++)
			pages += regs[i].size / 4096;
		if (out->total_pages != pages)
			violation("SOURCE_ATTACH succeeded with total_pages %llu, regions hold %llu",
				  (unsigned long long)out->total_pages,
				  (unsigned long long)pages);
	}
}

static uint64_t zero_or_junk(void)
{
	return chance(85) ? 0 : ival();
}

static void fuzz_simple(int fd, int op, uint64_t cmd)
{
	raw_ioctl(op, fd, cmd, zero_or_junk());
}

static void fuzz_status(int fd)
{
	struct vmpf_status s = { 0 };

	if (chance(60)) {
		s.rounds = (uint64_t)tbuf;	/* 64 entries fit before the status */
		s.rounds_cap = rn(80);
	}
	if (chance(15))
		s.rounds = some_ptr(64, 30);
	if (chance(20))
		s.in_flags = VMPF_STATUS_ACK_THROTTLE;
	if (chance(15))
		mutate(&s, 32, 1);
	out_ptr(&s.rounds);
	memset(tbuf + TBUF_LEN - sizeof(s), 0xa5, sizeof(s));
	raw_ioctl(OP_STATUS, fd, VMPF_IOC_STATUS, place(&s, sizeof(s), 85));
}

static void fuzz_finish(int fd)
{
	struct vmpf_finish f = { 0 };

	f.state = (uint64_t)tbuf;
	f.state_len = rn(8192);
	if (chance(20))
		f.state = some_ptr(64, 20);
	if (chance(20))
		f.state_len = ival() & (chance(50) ? 0xfffff : ~0ULL);
	if (chance(10))
		mutate(&f, 48, 1);
	raw_ioctl(OP_FINISH, fd, VMPF_IOC_FINISH, place(&f, sizeof(f), 85));
}

static void fuzz_mark_dirty(int fd)
{
	struct vmpf_mark_dirty m;

	if (rn(2)) {
		m.gpa = rn(S0_PAGES) * 4096 + (chance(20) ? rn(4096) : 0);
		m.len = 1 + rn(S0_PAGES * 4096 - m.gpa);
	} else {
		m.gpa = S1_GPA + rn(S1_PAGES * 4096);
		m.len = 1 + rn(S1_GPA + S1_PAGES * 4096 - m.gpa + (chance(10) ? 8192 : 0));
	}
	m.reserved[0] = m.reserved[1] = 0;
	if (chance(25))
		mutate(&m, sizeof(m), 1 + rn(2));
	raw_ioctl(OP_MARK_DIRTY, fd, VMPF_IOC_MARK_DIRTY, place(&m, sizeof(m), 85));
}

static void fuzz_restore_open(int fd)
{
	struct vmpf_restore_open o = { .target_fd = image_ro, .flags = VMPF_RESTORE_NO_LEASE };
	static const uint64_t rates[] = { 0, 0, 1, 50, 1000, ~0ULL };
	uint64_t p;

	o.flags = rn(16);
	o.prefetch_rate = rates[rn(6)];
	if (chance(25))
		o.target_fd = some_fd();
	if (chance(10))
		mutate(&o, 48, 1);
	p = place(&o, sizeof(o), 85);
	if (!raw_ioctl(OP_RESTORE_OPEN, fd, VMPF_IOC_RESTORE_OPEN, p) && o.target_fd == image_ro) {
		struct vmpf_restore_open *r = (void *)p;

		if (r->total_pages != TOTAL_PAGES || r->nr_regions != 2 ||
		    r->state_len != sizeof(IMAGE_STATE))
			violation("RESTORE_OPEN of the image: %llu pages, %llu regions, %llu state bytes",
				  (unsigned long long)r->total_pages,
				  (unsigned long long)r->nr_regions,
				  (unsigned long long)r->state_len);
	}
}

static void fuzz_restore_info(int fd)
{
	struct vmpf_restore_info in = { 0 };

	if (chance(70)) {
		in.regions = (uint64_t)tbuf;
		in.regions_cap = rn(4);
	}
	if (chance(60)) {
		in.state = (uint64_t)tbuf + 4096;
		in.state_cap = chance(80) ? 4096 : rn(64);
	}
	if (chance(20))
		in.regions = some_ptr(48, 20);
	if (chance(20))
		in.state = some_ptr(64, 20);
	if (chance(15))
		mutate(&in, 48, 1);
	out_ptr(&in.regions);
	out_ptr(&in.state);
	raw_ioctl(OP_RESTORE_INFO, fd, VMPF_IOC_RESTORE_INFO, place(&in, sizeof(in), 85));
}

static void fuzz_prefetch(int fd)
{
	struct vmpf_prefetch p = { .op = 1 + rn(2), .rate = chance(50) ? 0 : ival() };

	if (chance(20))
		p.op = rn(2) ? rn(5) : ival();
	if (chance(10))
		mutate(&p, sizeof(p), 1);
	raw_ioctl(OP_PREFETCH, fd, VMPF_IOC_PREFETCH, place(&p, sizeof(p), 85));
}

static void fuzz_restore_status(int fd)
{
	struct vmpf_restore_status s = { 0 };

	if (chance(10))
		mutate(&s, 16, 1);
	raw_ioctl(OP_RESTORE_STATUS, fd, VMPF_IOC_RESTORE_STATUS, place(&s, sizeof(s), 85));
}

static void fuzz_set_throttle(int fd)
{
	struct vmpf_throttle t = { .pct = rn(101), .max_pct = chance(50) ? 0 : rn(101) };

	if (chance(10))
		mutate(&t, sizeof(t), 1);
	raw_ioctl(OP_SET_THROTTLE, fd, VMPF_IOC_SET_THROTTLE, place(&t, sizeof(t), 85));
}

static void fuzz_vcpu_throttle(int fd)
{
	struct vmpf_vcpu_throttle v = { .vcpus = (uint64_t)tbuf, .vcpus_cap = rn(128) };

	if (chance(20))
		v.in_flags = VMPF_STATUS_ACK_THROTTLE;
	if (chance(15))
		v.vcpus = some_ptr(64, 30);
	if (chance(10))
		mutate(&v, 32, 1);
	out_ptr(&v.vcpus);
	raw_ioctl(OP_VCPU_THROTTLE, fd, VMPF_IOC_VCPU_THROTTLE, place(&v, sizeof(v), 85));
}

static void fuzz_round_policy(int fd)
{
	struct vmpf_round_policies p = { .rounds = (uint64_t)tbuf, .rounds_cap = rn(80) };

	if (chance(15))
		p.rounds = some_ptr(64, 30);
	if (chance(10))
		mutate(&p, 32, 1);
	out_ptr(&p.rounds);
	raw_ioctl(OP_ROUND_POLICY, fd, VMPF_IOC_ROUND_POLICY, place(&p, sizeof(p), 85));
}

static const uint64_t known_cmds[] = {
	VMPF_IOC_API, VMPF_IOC_DEV_INFO, VMPF_IOC_SOURCE_ATTACH, VMPF_IOC_START,
	VMPF_IOC_STATUS, VMPF_IOC_REQUEST_FINISH, VMPF_IOC_FINISH, VMPF_IOC_ABORT,
	VMPF_IOC_MARK_DIRTY, VMPF_IOC_RESTORE_OPEN, VMPF_IOC_RESTORE_INFO,
	VMPF_IOC_PREFETCH, VMPF_IOC_RESTORE_STATUS, VMPF_IOC_SET_THROTTLE,
	VMPF_IOC_VCPU_THROTTLE, VMPF_IOC_ROUND_POLICY,
	/*
	 * Not called by this test, but real: a random command that equals one
	 * is no unknown ioctl (seed 942393815484 made one, which failed with
	 * EFAULT, not ENOTTY).
	 */
	VMPF_IOC_VM_MEMSLOTS, VMPF_IOC_RESTORE_NODE, VMPF_IOC_RESTORE_MEMFD,
};
#define NR_KNOWN (sizeof(known_cmds) / sizeof(known_cmds[0]))

static void fuzz_unknown(int fd)
{
	uint64_t cmd, k = known_cmds[rn(NR_KNOWN)];
	unsigned int i, t;

	do {
		switch (rn(6)) {
		case 0:		/* a known number with another size */
			cmd = _IOC(_IOC_DIR(k), _IOC_TYPE(k), _IOC_NR(k),
				   rn(2) ? rn(1 << _IOC_SIZEBITS) : _IOC_SIZE(k) + 8 * (rn(3) + 1));
			break;
		case 1:		/* another direction */
			cmd = _IOC(rn(4), _IOC_TYPE(k), _IOC_NR(k), _IOC_SIZE(k));
			break;
		case 2:		/* a number past the last one */
			cmd = _IOC(rn(4), VMPF_IOCTL_MAGIC, 0x10 + rn(240), rn(512));
			break;
		case 3:		/* another magic */
			/*
			 * Not 0x94: the VFS answers FICLONE and FICLONERANGE
			 * (_IOW(0x94, 13, 32 bytes), SET_THROTTLE's shape)
			 * before any driver sees them.
			 */
			do
				t = rn(256);
			while (t == 0x94);
			cmd = _IOC(_IOC_DIR(k), t, _IOC_NR(k), _IOC_SIZE(k));
			break;
		case 4:		/* upper bits set: the command is an unsigned int */
			cmd = k | (uint64_t)(1 + rn(0xffffffff)) << 32;
			break;
		default:
			cmd = (uint32_t)rnd();
			break;
		}
		for (i = 0; i < NR_KNOWN; i++)
			if ((uint32_t)cmd == known_cmds[i])
				break;
	} while (i < NR_KNOWN);
	raw_ioctl(OP_UNKNOWN, fd, cmd, some_ptr(512, 50));
}

/* --- mappings and touching them --- */
struct map {
	unsigned char *p;
	size_t pages;
	uint64_t first;		/* page index of the mapping's first page */
	int prot;
	int image;		/* the session is on the committed image */
	int known;		/* the session is known (RESTORE_INFO said so) */
	int dofork;		/* MADV_DOFORK: a child gets it after all */
};

static __thread struct map maps[MAPS_PER_THREAD];
static __thread sigjmp_buf touch_jmp;
static __thread volatile int touching;
static __thread volatile int touch_sig;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	if (touching) {
		touch_sig = sig;
		touching = 0;
		siglongjmp(touch_jmp, 1);
	}
	/* Not ours: say where, and die of it, as without a handler. */
	{
		char msg[160];
		int n = snprintf(msg, sizeof(msg),
				 "# unexpected signal %d at %p in thread %d, op %d (seed %llu)\n",
				 sig, si->si_addr, me, busy[me].op, (unsigned long long)seed);

		if (write(1, msg, n) < 0)
			n = 0;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* 0 if the access went through, else the signal it raised. */
static int touch(volatile unsigned char *p, int write, unsigned char *copy)
{
	touch_sig = 0;
	if (sigsetjmp(touch_jmp, 1))
		return touch_sig;
	touching = 1;
	if (write)
		p[4095] = (unsigned char)rnd();
	else if (copy)
		memcpy(copy, (const void *)p, 4096);
	else
		(void)p[rn(4096)];
	touching = 0;
	return 0;
}

static void fuzz_mmap(int fd)
{
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
				     PROT_NONE, PROT_WRITE, PROT_READ | PROT_EXEC };
	struct vmpf_restore_info in = { .state = (uint64_t)tbuf, .state_cap = 4096 };
	struct map *m = &maps[rn(MAPS_PER_THREAD)];
	uint64_t off, len;
	int flags = MAP_SHARED, d, image = 0, known = 0;
	void *p;

	if (m->p) {
		munmap(m->p, m->pages * 4096);
		m->p = NULL;
	}
	if (chance(15))
		return;		/* just the unmap */
	/* A private copy of the description: its session cannot change under us. */
	d = fcntl(get_slot_fd(), F_DUPFD_CLOEXEC, 0);
	if (d < 0)
		return;
	if (!syscall(SYS_ioctl, d, VMPF_IOC_RESTORE_INFO, &in))
		known = 1, image = in.state_len == sizeof(IMAGE_STATE) && !memcmp(tbuf, IMAGE_STATE,
								       sizeof(IMAGE_STATE));
	off = rn(TOTAL_PAGES);
	len = 1 + rn(TOTAL_PAGES - off);
	if (chance(15)) {
		off = ival() >> 12;
		len = rn(2) ? ival() >> 12 : 1 + rn(TOTAL_PAGES + 2);
	}
	if (chance(10))
		flags = rn(2) ? MAP_PRIVATE : MAP_SHARED | MAP_NORESERVE | MAP_POPULATE;
	m->prot = prots[rn(6)];
	enter(OP_MMAP, off, len);
	p = mmap(NULL, len * 4096, m->prot, flags, d, off * 4096);
	leave();
	account(OP_MMAP, p == MAP_FAILED ? errno : 0);
	close(d);
	if (p == MAP_FAILED)
		return;
	if (off + len > TOTAL_PAGES || (flags & MAP_PRIVATE))
		violation("mmap of pages %llu..+%llu flags %#x succeeded", (unsigned long long)off,
			  (unsigned long long)len, flags);
	m->p = p;
	m->pages = len;
	m->first = off;
	m->image = image;
	m->known = known;
	m->dofork = 0;
}

static void fuzz_touch_map(struct map *m)
{
	unsigned char copy[4096];
	uint64_t i;
	int write, sig;

	if (!m->p)
		return;
	i = rn(m->pages);
	write = (m->prot & PROT_WRITE) ? chance(30) : chance(5);
	enter(OP_TOUCH, (uint64_t)m->p, i);
	sig = touch(m->p + i * 4096, write, write ? NULL : copy);
	leave();
	add(&stats[OP_TOUCH].calls, 1);
	if (!sig)
		add(&stats[OP_TOUCH].ok, 1);
	if (sig == SIGBUS)
		add(&sigbus_caught, 1);
	else if (sig)
		add(&sigsegv_caught, 1);
	if (sig == SIGSEGV && (m->prot & (write ? PROT_WRITE : PROT_READ)))
		violation("SIGSEGV touching page %llu of a mapping with prot %#x",
			  (unsigned long long)(m->first + i), m->prot);
	if (!sig && (m->prot == PROT_NONE || (write && !(m->prot & PROT_WRITE))))
		violation("a %s of a mapping with prot %#x went through",
			  write ? "write" : "read", m->prot);
	if (m->image && sig == SIGBUS)
		violation("SIGBUS on page %llu of the committed image",
			  (unsigned long long)(m->first + i));
	if (m->image && !sig && !write)
		add(&image_pages_checked, 1);
	if (m->image && !sig && !write && !page_ok(copy, m->first + i)) {
		add(&bad_data, 1);
		violation("page %llu of the committed image reads back wrong",
			  (unsigned long long)(m->first + i));
	}
}

static void fuzz_touch(void)
{
	fuzz_touch_map(&maps[rn(MAPS_PER_THREAD)]);
}

static void fuzz_poll(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT | POLLPRI };
	int r;

	enter(OP_POLL, fd, 0);
	r = poll(&p, 1, 0);
	leave();
	add(&stats[OP_POLL].calls, 1);
	if (r < 0)
		violation("poll failed: %s", strerror(errno));
	else
		add(&stats[OP_POLL].ok, 1);
}

/* Open a fresh descriptor the way a random caller would. */
static int fresh_fd(void)
{
	struct vmpf_api a = { .api = VMPF_API, .features = rand_features() };
	int fd;

	fd = open(vmpf_device_path(), (chance(15) ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return fd;
	if (chance(90)) {
		if (a.features > VMPF_FEATURES_ALL)
			a.features = VMPF_FEATURES_ALL;
		syscall(SYS_ioctl, fd, VMPF_IOC_API, &a);
	}
	return fd;
}

/* Replace slot @i with a new or dup()ed descriptor, closing the old one. */
static void recycle(int i)
{
	int fd, old;

	if (chance(25))
		fd = dup(__atomic_load_n(&slots[rn(NSLOTS)], __ATOMIC_RELAXED));
	else
		fd = fresh_fd();
	if (fd < 0)
		return;
	old = __atomic_exchange_n(&slots[i], fd, __ATOMIC_RELAXED);
	enter(OP_RECYCLE, old, fd);
	close(old);
	leave();
	add(&stats[OP_RECYCLE].calls, 1);
	add(&stats[OP_RECYCLE].ok, 1);
}

/* Delete and re-create memslot 1 under whatever session uses it. */
static void fuzz_memslot(void)
{
	struct kvm_userspace_memory_region r = {
		.slot = 1, .guest_phys_addr = S1_GPA, .memory_size = 0,
		.userspace_addr = (uint64_t)guest[1],
	};

	enter(OP_MEMSLOT, 0, 0);
	ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
	r.memory_size = S1_PAGES * 4096;
	ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
	leave();
	add(&stats[OP_MEMSLOT].calls, 1);
	add(&stats[OP_MEMSLOT].ok, 1);
}

/*
 * A child with copies of the descriptors: FINISH and MARK_DIRTY are not its
 * to call (EPERM), nor ATTACH of the parent's VM; guest RAM mappings are
 * not inherited (touching them: SIGSEGV).  Reports by exit status.
 */
static int child_checks(void)
{
	struct vmpf_finish f = { 0 };
	struct vmpf_mark_dirty md = { .gpa = 0, .len = 4096 };
	struct vmpf_region reg = { 0, 0, S0_PAGES * 4096, (uint64_t)guest[0] };
	struct vmpf_source_attach a = { .vm_fd = vm_fd, .target_fd = target_rw,
					.regions = (uint64_t)&reg, .nr_regions = 1 };
	struct { __u32 version; int pid; } hdr = { 0x20080522, 0 };
	struct { __u32 effective, permitted, inheritable; } caps[2];
	int i, k, r, bad = 0;

	/*
	 * Without CAP_SYS_PTRACE: with it (and VMPF_FEATURE_EXTERNAL), root
	 * may attach to another process's VM on purpose.
	 */
	if (syscall(SYS_capget, &hdr, caps))
		return 16;
	caps[0].effective &= ~(1U << 19);	/* CAP_SYS_PTRACE */
	if (syscall(SYS_capset, &hdr, caps))
		return 16;
	for (k = 0; k < 8; k++) {
		int fd = slots[rn(NSLOTS)];

		r = syscall(SYS_ioctl, fd, VMPF_IOC_FINISH, &f) < 0 ? errno : 0;
		bad |= !(r == EPERM || r == ENOENT || r == EBADFD || r == EOPNOTSUPP ||
			 r == EBADF);
		r = syscall(SYS_ioctl, fd, VMPF_IOC_MARK_DIRTY, &md) < 0 ? errno : 0;
		bad |= !(r == EPERM || r == ENOENT || r == EBADFD || r == EOPNOTSUPP ||
			 r == EBADF) << 1;
		r = syscall(SYS_ioctl, fd, VMPF_IOC_SOURCE_ATTACH, &a) < 0 ? errno : 0;
		bad |= !(r == EPERM || r == EBUSY || r == EBADFD || r == EOPNOTSUPP ||
			 r == EBADF) << 2;
	}
	for (i = 0; i < MAPS_PER_THREAD; i++)
		if (maps[i].p && maps[i].prot != PROT_NONE && !maps[i].dofork)
			bad |= (touch(maps[i].p, 0, NULL) != SIGSEGV) << 3;
	return bad;
}

static void fuzz_fork(void)
{
	pid_t pid;
	int status;

	enter(OP_FORK, 0, 0);
	pid = fork();
	if (!pid)
		_exit(child_checks());
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	leave();
	add(&stats[OP_FORK].calls, 1);
	if (pid < 0)
		return;
	if (WIFEXITED(status) && !WEXITSTATUS(status)) {
		add(&stats[OP_FORK].ok, 1);
		return;
	}
	add(&fork_failures, 1);
	violation("fork child: status %#x (bits: 1 FINISH, 2 MARK_DIRTY, 4 ATTACH not refused, 8 inherited mapping, 16 capset)",
		  status);
}

/*
 * Change a mapping the VMM's way: protections, advice (MADV_DOFORK undoes
 * VM_DONTCOPY; MADV_REMOVE returns restored memory, which then reads as
 * zero), moves; growing must fail (VM_DONTEXPAND).  Their errnos are the
 * mm's business, not checked.
 */
static void fuzz_mm(void)
{
	static const int advice[] = { MADV_DONTNEED, MADV_WILLNEED, MADV_COLD, MADV_PAGEOUT,
				      MADV_REMOVE, MADV_DOFORK, MADV_DONTFORK, MADV_FREE,
				      MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_HUGEPAGE,
				      MADV_NORMAL, MADV_RANDOM, MADV_DONTDUMP, MADV_SEQUENTIAL,
				      MADV_MERGEABLE, 25 /* MADV_COLLAPSE */ };
	struct map *m = &maps[rn(MAPS_PER_THREAD)];
	uint64_t i, n;
	void *p;
	int a;

	if (!m->p)
		return;
	i = rn(m->pages);
	n = 1 + rn(m->pages - i);
	enter(OP_MM, (uint64_t)m->p, i);
	switch (rn(6)) {
	case 4:		/* locked in, unlocked */
		if (!mlock(m->p + i * 4096, n * 4096))
			munlock(m->p + i * 4096, n * 4096);
		break;
	case 5:		/* the file has no fsync: an error, nothing else */
		msync(m->p + i * 4096, n * 4096, rn(2) ? MS_SYNC : MS_ASYNC | MS_INVALIDATE);
		break;
	case 0:		/* the whole mapping, so m->prot stays true */
		m->prot = rn(2) ? PROT_READ : PROT_READ | PROT_WRITE;
		mprotect(m->p, m->pages * 4096, m->prot);
		break;
	case 1:
		a = advice[rn(sizeof(advice) / sizeof(advice[0]))];
		if (a == MADV_REMOVE && m->image)
			mark_holes(m->first + i, n);
		if (a == MADV_DOFORK && !madvise(m->p, m->pages * 4096, a))
			m->dofork = 1;
		else if (a != MADV_DOFORK)
			madvise(m->p + i * 4096, n * 4096, a);
		break;
	case 2:		/* grow in place: VM_DONTEXPAND */
		p = mremap(m->p, m->pages * 4096, (m->pages + 1) * 4096, 0);
		if (p != MAP_FAILED)
			violation("mremap grew a guest RAM mapping of %zu pages", m->pages);
		break;
	default:	/* move it */
		p = mremap(m->p, m->pages * 4096, m->pages * 4096, MREMAP_MAYMOVE);
		if (p != MAP_FAILED)
			m->p = p;
		break;
	}
	leave();
	add(&stats[OP_MM].calls, 1);
	add(&stats[OP_MM].ok, 1);
}

static int scratch_fd;	/* a tmpfs file */
static int smaps_fd, pagemap_fd;
static char smaps_buf[1 << 16];

/*
 * The kernel touching the mapping on our behalf: copy_from_user (write to
 * a file), GUP of another "process" (process_vm_readv), and an O_DIRECT
 * read into it (pinned for write; only where the session is not the
 * image, whose contents are checked), /proc/self/smaps and pagemap walking
 * its page tables.  Failures are EFAULT or a short count, never a signal.
 */
static void fuzz_kernel_access(void)
{
	struct map *m = &maps[rn(MAPS_PER_THREAD)];
	unsigned char buf[256];
	struct iovec l = { buf, sizeof(buf) }, r;
	uint64_t i;
	ssize_t n = 0;
	int e = 0, k = rn(5);

	if (!m->p)
		return;
	i = rn(m->pages);
	r = (struct iovec){ m->p + i * 4096 + rn(4096 - sizeof(buf)), sizeof(buf) };
	enter(OP_KERNEL_ACCESS, (uint64_t)m->p, i);
	if (k == 0)
		n = pwrite(scratch_fd, m->p + i * 4096, 4096, rn(16) * 4096);
	else if (k == 1)
		n = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
	else if (k == 2 && m->known && !m->image && (m->prot & PROT_WRITE))
		n = pread(image_ro, m->p + i * 4096, 4096, rn(16) * 4096);
	else if (k == 3)	/* walks our page tables: the pages must look sane */
		n = pread(smaps_fd, smaps_buf, sizeof(smaps_buf), 0);
	else if (k == 4)
		n = pread(pagemap_fd, buf, 8 * 32, ((uint64_t)m->p >> 12) * 8);
	e = n < 0 ? errno : 0;
	leave();
	add(&stats[OP_KERNEL_ACCESS].calls, 1);
	if (!e)
		add(&stats[OP_KERNEL_ACCESS].ok, 1);
	else
		add(&stats[OP_KERNEL_ACCESS].err[e < MAXERR ? e : 0], 1);
	if (e && e != EFAULT && e != EIO)
		violation("the kernel reading a mapping failed with %s", strerror(e));
}

/*
 * A whole source session in order, with the other threads meddling: a
 * fresh descriptor, attach, start, marks, status, request, wait for the
 * switch-over point, then finish, or abort, or just leave it to be closed.
 */
static void source_scenario(void)
{
	struct vmpf_region regs[VMPF_MAX_REGIONS + 2];
	struct vmpf_source_attach a = { .vm_fd = vm_fd, .target_fd = target_rw };
	struct vmpf_mark_dirty md = { 0 };
	struct vmpf_status st = { 0 };
	struct vmpf_finish f = { .state = (uint64_t)tbuf, .state_len = rn(4096) };
	struct pollfd pfd;
	int fd, k, slot = rn(NSLOTS), old;
	__u64 n;

	fd = open(vmpf_device_path(), O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	old = __atomic_exchange_n(&slots[slot], fd, __ATOMIC_RELAXED);
	close(old);
	add(&source_scenarios, 1);
	fuzz_api(fd);
	do {
		make_regions(regs, &n);
	} while (chance(80) && (regs[0].gpa & 4095 || n > 2));
	a.nr_regions = n;
	memcpy(tbuf + 8192, regs, sizeof(regs));
	a.regions = (uint64_t)tbuf + 8192;
	a.state_max = rn(2) ? 0 : 4096 << rn(8);
	a.max_rounds = rn(4);
	if (raw_ioctl(OP_ATTACH, fd, VMPF_IOC_SOURCE_ATTACH, (uint64_t)&a))
		return;
	if (chance(90) && raw_ioctl(OP_START, fd, VMPF_IOC_START, 0))
		return;
	for (k = rn(6); k > 0; k--) {
		if (rn(2)) {
			md.gpa = rn(2) ? rn(S0_PAGES) * 4096 : S1_GPA + rn(S1_PAGES) * 4096;
			md.len = 1 + rn(8 * 4096);
			raw_ioctl(OP_MARK_DIRTY, fd, VMPF_IOC_MARK_DIRTY, (uint64_t)&md);
		} else {
			st.rounds = (uint64_t)tbuf;
			st.rounds_cap = 64;
			raw_ioctl(OP_STATUS, fd, VMPF_IOC_STATUS, (uint64_t)&st);
		}
	}
	if (chance(50))
		raw_ioctl(OP_REQUEST_FINISH, fd, VMPF_IOC_REQUEST_FINISH, 0);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	enter(OP_POLL, fd, 1);
	poll(&pfd, 1, 5000);
	leave();
	switch (rn(5)) {
	case 0:
		raw_ioctl(OP_ABORT, fd, VMPF_IOC_ABORT, 0);
		break;
	case 1:
		break;
	default:
		if (!raw_ioctl(OP_FINISH, fd, VMPF_IOC_FINISH, (uint64_t)&f))
			add(&committed, 1);
		break;
	}
}

/* A restore session on the image, mapped whole and touched. */
static void restore_scenario(void)
{
	struct vmpf_restore_open o = { .target_fd = image_ro, .flags = rn(4) | VMPF_RESTORE_NO_LEASE,
				       .prefetch_rate = rn(2) ? 0 : 1 + rn(2000) };
	struct vmpf_prefetch pf = { .op = 1 + rn(2), .rate = rn(3) ? 0 : rn(5000) };
	struct map *m = &maps[rn(MAPS_PER_THREAD)];
	int fd, k, slot = rn(NSLOTS), old;
	void *p;

	fd = open(vmpf_device_path(), O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	old = __atomic_exchange_n(&slots[slot], fd, __ATOMIC_RELAXED);
	close(old);
	add(&restore_scenarios, 1);
	fuzz_api(fd);
	if (raw_ioctl(OP_RESTORE_OPEN, fd, VMPF_IOC_RESTORE_OPEN, (uint64_t)&o))
		return;
	if (chance(50))
		raw_ioctl(OP_PREFETCH, fd, VMPF_IOC_PREFETCH, (uint64_t)&pf);
	if (m->p)
		munmap(m->p, m->pages * 4096);
	m->p = NULL;
	enter(OP_MMAP, 0, TOTAL_PAGES);
	p = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	leave();
	account(OP_MMAP, p == MAP_FAILED ? errno : 0);
	if (p == MAP_FAILED)
		return;
	*m = (struct map){ .p = p, .pages = TOTAL_PAGES, .prot = PROT_READ | PROT_WRITE,
			   .image = 1, .known = 1 };
	for (k = rn(16); k > 0; k--)
		fuzz_touch_map(m);
}

/* --- threads --- */
static uint64_t calls_per_worker;

static void one_call(void)
{
	int fd = get_slot_fd();
	unsigned int w = rn(1000);

	/* Weights in per mille: cheap ioctls most, expensive steps rarely. */
	if (w < 40)		fuzz_api(fd);
	else if (w < 80)	fuzz_dev_info(fd);
	else if (w < 110)	fuzz_attach(fd);
	else if (w < 135)	fuzz_simple(fd, OP_START, VMPF_IOC_START);
	else if (w < 215)	fuzz_status(fd);
	else if (w < 245)	fuzz_simple(fd, OP_REQUEST_FINISH, VMPF_IOC_REQUEST_FINISH);
	else if (w < 265)	fuzz_finish(fd);
	else if (w < 285)	fuzz_simple(fd, OP_ABORT, VMPF_IOC_ABORT);
	else if (w < 365)	fuzz_mark_dirty(fd);
	else if (w < 395)	fuzz_restore_open(fd);
	else if (w < 475)	fuzz_restore_info(fd);
	else if (w < 535)	fuzz_prefetch(fd);
	else if (w < 615)	fuzz_restore_status(fd);
	else if (w < 635)	fuzz_set_throttle(fd);
	else if (w < 650)	fuzz_vcpu_throttle(fd);
	else if (w < 665)	fuzz_round_policy(fd);
	else if (w < 715)	fuzz_unknown(fd);
	else if (w < 765)	fuzz_mmap(fd);
	else if (w < 915)	fuzz_touch();
	else if (w < 940)	fuzz_poll(fd);
	else if (w < 942)	fuzz_fork();
	else if (w < 970)	recycle(rn(NSLOTS));
	else if (w < 980)	fuzz_mm();
	else if (w < 990)	fuzz_kernel_access();
	else if (w < 994)	source_scenario();
	else if (w < 999)	restore_scenario();
	else			fuzz_memslot();
}

static void *thread_buf(void)
{
	unsigned char *b = mmap(NULL, TBUF_LEN + 4096, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (b == MAP_FAILED)
		return NULL;
	mprotect(b + TBUF_LEN, 4096, PROT_NONE);
	return b;
}

static void *worker(void *arg)
{
	uint64_t i;
	int k;

	me = (int)(long)arg;
	rng = seed ^ (0x9e3779b97f4a7c15ULL * (me + 1));
	tbuf = thread_buf();
	if (!tbuf)
		return NULL;
	for (i = 0; i < calls_per_worker && !stop_all; i++)
		one_call();
	for (k = 0; k < MAPS_PER_THREAD; k++)
		if (maps[k].p)
			munmap(maps[k].p, maps[k].pages * 4096);
	return NULL;
}

/* Closes, reopens and dup()s descriptors under the workers' feet. */
static volatile int workers_done;

static void *closer(void *arg)
{
	me = NWORKERS;
	rng = seed ^ 0xc105e5c105e5ULL;
	while (!workers_done) {
		recycle(rn(NSLOTS));
		usleep(rn(3000));
	}
	return NULL;
}

/* The watchdog's own backstop: if even it stops running, SIGALRM says so. */
static void on_alarm(int sig)
{
	static const char msg[] = "# HANG: the watchdog thread itself stalled\n";

	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(KSFT_FAIL);
	_exit(KSFT_FAIL);
}

static void *watchdog(void *arg)
{
	int i;

	signal(SIGALRM, on_alarm);
	while (!workers_done) {
		uint64_t t = now_ns();

		alarm(hang_seconds + 30);

		for (i = 0; i < NTHREADS; i++) {
			int op = __atomic_load_n(&busy[i].op, __ATOMIC_ACQUIRE);
			uint64_t since = __atomic_load_n(&busy[i].since_ns, __ATOMIC_RELAXED);

			if (op >= 0 && t > since && t - since > hang_seconds * 1000000000ULL) {
				printf("# HANG (seed %" PRIu64 "): thread %d in %s (%#llx, %#llx) for %llu s\n",
				       seed, i, op_name[op], (unsigned long long)busy[i].cmd,
				       (unsigned long long)busy[i].arg,
				       (unsigned long long)((t - since) / 1000000000ULL));
				fflush(stdout);
				_exit(KSFT_FAIL);
			}
		}
		usleep(200000);
	}
	alarm(0);
	return NULL;
}

/* --- setup --- */
static int setup_vm(void)
{
	int i;

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		return -1;
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		return -2;
	for (i = 0; i < 2; i++) {
		size_t pages = i ? S1_PAGES : S0_PAGES;
		struct kvm_userspace_memory_region r = {
			.slot = i, .guest_phys_addr = i ? S1_GPA : 0,
			.memory_size = pages * 4096,
		};
		uint64_t k;

		guest[i] = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (guest[i] == MAP_FAILED)
			return -3;
		for (k = 0; k < pages; k++)
			fill_page(guest[i] + k * 4096, k + (i ? S0_PAGES : 0));
		r.userspace_addr = (uint64_t)guest[i];
		if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r))
			return -4;
	}
	return 0;
}

/* A committed image of the VM on IMAGE_DEV.  0 or a negative step. */
static int make_image(void)
{
	struct vmpf_region regs[2] = {
		{ 0, 0, S0_PAGES * 4096, (uint64_t)guest[0] },
		{ 1, S1_GPA, S1_PAGES * 4096, (uint64_t)guest[1] },
	};
	struct vmpf_source_attach a = { .regions = (uint64_t)regs, .nr_regions = 2,
					.state_max = 4096 };
	struct vmpf_finish f = { .state = (uint64_t)IMAGE_STATE, .state_len = sizeof(IMAGE_STATE) };
	struct pollfd pfd;
	struct vmpf_api api;
	int dev, t, ret = 0;

	dev = vmpf_open(vmpf_device_path());
	t = open(IMAGE_DEV, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (dev < 0 || t < 0 || vmpf_handshake(dev, VMPF_FEATURE_SOURCE, &api))
		return -1;
	a.vm_fd = vm_fd;
	a.target_fd = t;
	if (__vmpf_ioctl(dev, VMPF_IOC_SOURCE_ATTACH, &a) ||
	    __vmpf_ioctl(dev, VMPF_IOC_START, NULL))
		ret = -2;
	pfd = (struct pollfd){ .fd = dev, .events = POLLIN };
	if (!ret && (poll(&pfd, 1, 60000) != 1 || __vmpf_ioctl(dev, VMPF_IOC_FINISH, &f)))
		ret = -3;
	close(dev);
	close(t);
	return ret;
}

static uint64_t tainted(void)
{
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");
	unsigned long long v = ~0ULL;

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = ~0ULL;
		fclose(f);
	}
	return v;
}

static void print_stats(void)
{
	int op, e;

	for (op = 0; op < NR_OPS; op++) {
		char line[1024];
		int n;

		if (!stats[op].calls)
			continue;
		n = snprintf(line, sizeof(line), "# %-15s calls %-7" PRIu64 " ok %-7" PRIu64,
			     op_name[op], stats[op].calls, stats[op].ok);
		for (e = 0; e < MAXERR && n < (int)sizeof(line) - 40; e++)
			if (stats[op].err[e])
				n += snprintf(line + n, sizeof(line) - n, " %s %" PRIu64,
					      e ? strerrorname_np(e) ?: "?" : "E>255",
					      stats[op].err[e]);
		printf("%s\n", line);
	}
	printf("# signals caught while touching mappings: SIGBUS %" PRIu64 ", SIGSEGV %" PRIu64 "\n",
	       sigbus_caught, sigsegv_caught);
	printf("# image pages read and checked %" PRIu64 "; scenarios: %" PRIu64 " source (%" PRIu64
	       " committed), %" PRIu64 " restore\n", image_pages_checked, source_scenarios,
	       committed, restore_scenarios);
}

FIXTURE(fuzz) {
	int dummy;
};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

TEST_F_TIMEOUT(fuzz, random_calls, 1800)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER };
	struct vmpf_dev_info before = { 0 }, after = { 0 };
	pthread_t th[NWORKERS], cl, wd;
	uint64_t calls = VMPF_FUZZ_DEFAULT_CALLS, taint0, t0, i;
	struct vmpf_api api;
	const char *s;
	int info_fd, op, e, ret;

	info_fd = vmpf_open(vmpf_device_path());
	if (info_fd == -ENOENT)
		SKIP(return, "%s missing: module not loaded", vmpf_device_path());
	ASSERT_LE(0, info_fd);
	if (access(IMAGE_DEV, F_OK) || access(TARGET_DEV, F_OK) || access("/dev/kvm", F_OK))
		SKIP(return, "%s, %s or /dev/kvm missing (the test guest has them)",
		     IMAGE_DEV, TARGET_DEV);

	s = getenv("VMPF_FUZZ_SEED");
	seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	s = getenv("VMPF_FUZZ_CALLS");
	if (s)
		calls = strtoull(s, NULL, 0);
	s = getenv("VMPF_FUZZ_HANG");
	if (s)
		hang_seconds = atoi(s);
	calls_per_worker = (calls + NWORKERS - 1) / NWORKERS;
	printf("# seed %" PRIu64 " (VMPF_FUZZ_SEED=%" PRIu64 " reruns it), %" PRIu64 " calls, %d threads\n",
	       seed, seed, calls, NWORKERS);
	fflush(stdout);

	for (op = 0; op < NR_OPS; op++) {
		for (e = 0; e < 20 && allowed_list[op][e]; e++)
			allowed[op][allowed_list[op][e]] = 1;
		/* Everywhere: another thread closed that number meanwhile. */
		allowed[op][EBADF] = 1;
	}

	taint0 = tainted();
	ASSERT_EQ(0, vmpf_handshake(info_fd, 0, &api));
	ASSERT_EQ(0, vmpf_ioctl_checked(info_fd, VMPF_IOC_DEV_INFO, &before));

	ret = setup_vm();
	ASSERT_EQ(0, ret) TH_LOG("setting up the VM failed at step %d", -ret);
	ret = make_image();
	ASSERT_EQ(0, ret) TH_LOG("making the committed image failed at step %d", -ret);

	target_rw = open(TARGET_DEV, O_RDWR | O_DIRECT | O_CLOEXEC);
	image_ro = open(IMAGE_DEV, O_RDONLY | O_DIRECT | O_CLOEXEC);
	image_nodirect = open(IMAGE_DEV, O_RDONLY | O_CLOEXEC);
	devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	dev_rdonly = open(vmpf_device_path(), O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, target_rw);
	ASSERT_LE(0, image_ro);
	ASSERT_LE(0, image_nodirect);
	/* Garbage on tmpfs; O_DIRECT there only since Linux 6.6. */
	garbage_fd = open(GARBAGE, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, garbage_fd);
	rng = seed;
	{
		unsigned char junk[4096];
		int k;

		for (k = 0; k < 64; k++) {
			for (e = 0; e < 4096; e += 8)
				*(uint64_t *)(junk + e) = rnd();
			if (k == 0)
				memcpy(junk, VMPF_PF_MAGIC, 8);
			ASSERT_EQ(4096, write(garbage_fd, junk, 4096));
		}
		close(garbage_fd);
		garbage_fd = open(GARBAGE, O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (garbage_fd < 0)
			garbage_fd = open(GARBAGE, O_RDONLY | O_CLOEXEC);
		ASSERT_LE(0, garbage_fd);
	}

	scratch_fd = open("/tmp/vmpf-fuzz-scratch", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, scratch_fd);
	smaps_fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	guard = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, guard);
	ASSERT_NE(MAP_FAILED, ro_page);
	*(struct vmpf_api *)ro_page = (struct vmpf_api){ .api = VMPF_API };
	mprotect(ro_page, 4096, PROT_READ);

	for (i = 0; i < NSLOTS; i++) {
		slots[i] = fresh_fd();
		ASSERT_LE(0, slots[i]);
	}
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	for (i = 0; i < NTHREADS; i++)
		busy[i].op = -1;

	t0 = now_ns();
	ASSERT_EQ(0, pthread_create(&wd, NULL, watchdog, NULL));
	ASSERT_EQ(0, pthread_create(&cl, NULL, closer, NULL));
	for (i = 0; i < NWORKERS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, worker, (void *)(long)i));
	for (i = 0; i < NWORKERS; i++)
		pthread_join(th[i], NULL);
	workers_done = 1;
	pthread_join(cl, NULL);
	pthread_join(wd, NULL);
	printf("# %" PRIu64 " calls in %.1f s\n", calls, (now_ns() - t0) / 1e9);

	for (i = 0; i < NSLOTS; i++)
		close(slots[i]);
	close(target_rw);
	close(image_ro);
	close(image_nodirect);
	close(garbage_fd);
	close(devnull_fd);
	close(dev_rdonly);
	close(vm_fd);
	close(kvm_fd);
	unlink(GARBAGE);
	close(scratch_fd);
	close(smaps_fd);
	close(pagemap_fd);
	unlink("/tmp/vmpf-fuzz-scratch");
	signal(SIGBUS, SIG_DFL);
	signal(SIGSEGV, SIG_DFL);
	print_stats();

	ASSERT_EQ(0, vmpf_ioctl_checked(info_fd, VMPF_IOC_DEV_INFO, &after));
	EXPECT_EQ(0, violations) TH_LOG("%llu calls broke the rules; seed %llu",
					(unsigned long long)violations, (unsigned long long)seed);
	EXPECT_EQ(0, bad_data);
	EXPECT_EQ(0, fork_failures);
	EXPECT_EQ(taint0, tainted()) TH_LOG("the kernel got tainted; seed %llu",
					    (unsigned long long)seed);
	EXPECT_EQ(1, after.open_files) TH_LOG("descriptions still open after closing all");
	EXPECT_EQ(0, after.sessions) TH_LOG("sessions alive after closing all");
	EXPECT_EQ(before.mem_bytes, after.mem_bytes) TH_LOG("module memory not given back");
	close(info_fd);
}

TEST_HARNESS_MAIN
