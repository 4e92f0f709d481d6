// SPDX-License-Identifier: GPL-2.0
/*
 * vmpf-bench: the benchmarks of `make bench`, run inside a booted test
 * kernel.  Every figure is compared with a baseline measured in the same
 * boot, on the same device and the same data, and reported as a ratio:
 * times inside an emulated machine mean nothing alone.
 *
 *   vmpf-bench DEVICE MIB REPS FAULTS
 *
 * 1. pre-copy: round 0 of a source session (a VM whose pages are all
 *    non-zero) against sequential O_DIRECT writes of the same size: the
 *    device's limit (Linux AIO, queue depths 1 to 16, requests of 256 KiB
 *    and 1 MiB: the best rate in that boot, and which gave it) and one
 *    256 KiB request at a time;
 * 2. fault service: first touches of FAULTS random pages of a restored
 *    mapping, prefetch off, one thread and four, against a userfaultfd
 *    handler that reads the page from the same page file with pread() on an
 *    O_DIRECT descriptor and installs it with UFFDIO_COPY;
 * 3. prefetch: time to fully resident against a sequential O_DIRECT read
 *    of the same extent, the best and one request at a time as in 1;
 * 4. module memory per GiB of guest RAM, source and restore;
 * 5. where the time of 1 and 3 goes, per GiB: the module thread's CPU time
 *    (its /proc/PID/schedstat: vmpf-src/N copies, vmpf-pf/N prefetches),
 *    the device's busy time and average queue depth while it ran
 *    (/sys/dev/block/M:m/stat), beside the elapsed time: a thread whose
 *    CPU time is most of the elapsed time is bound by the CPU, not the
 *    device.
 * Each figure is the median of REPS runs, with min and max.  Prints a table
 * and, on a line starting "BENCH-JSON ", the same as JSON.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "vmpf.h"

#define PAGE		4096UL
#define IO_BYTES	(256 * 1024UL)
#define MAX_REPS	9
#define THREADS		4
#define MAX_DEPTH	16

static const char *dev_path;
static unsigned long total_pages;
static unsigned long long data_off;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "vmpf-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct fig {
	double v[MAX_REPS];
	int n;
};

static void add(struct fig *f, double v)
{
	f->v[f->n++] = v;
}

static double med(struct fig *f)
{
	qsort(f->v, f->n, sizeof(double), cmp_double);
	return f->v[f->n / 2];
}

/* One line of the table: a figure, its baseline, their ratio, the goal. */
struct row {
	const char *name;
	struct fig *a, *b;
	double scale;
	const char *unit, *goal, *key_a, *key_b;
};

static void print_row(const struct row *r)
{
	char a[64], b[64];

	med(r->a);
	med(r->b);
	snprintf(a, sizeof(a), "%.1f [%.1f-%.1f] %s", med(r->a) * r->scale,
		 r->a->v[0] * r->scale, r->a->v[r->a->n - 1] * r->scale, r->unit);
	snprintf(b, sizeof(b), "%.1f [%.1f-%.1f] %s", med(r->b) * r->scale,
		 r->b->v[0] * r->scale, r->b->v[r->b->n - 1] * r->scale, r->unit);
	printf("%-40s %29s %29s %6.2f  %s\n", r->name, a, b, med(r->a) / med(r->b), r->goal);
}

static void json_fig(const char *key, struct fig *f, double scale)
{
	printf(",\"%s\":%.2f,\"%s_min\":%.2f,\"%s_max\":%.2f", key, med(f) * scale, key,
	       f->v[0] * scale, key, f->v[f->n - 1] * scale);
}

/* A row whose figure another row has already given has no @key_a. */
static void json_row(const struct row *r)
{
	if (r->key_a)
		json_fig(r->key_a, r->a, r->scale);
	if (r->key_b)
		json_fig(r->key_b, r->b, r->scale);
}

/* --- where the time goes -------------------------------------------------- */

/* A moment: the module threads' CPU time, the device's counters, the clock. */
struct cost_mark {
	double t;
	unsigned long long cpu_ns;	/* summed over threads named @prefix* */
	unsigned long long busy_ms;	/* io_ticks */
	unsigned long long queue_ms;	/* time_in_queue: request-milliseconds */
};

/* Per GiB over the runs: elapsed, module CPU and device busy ms; depth. */
struct cost {
	double elapsed, cpu, busy, queue;
	int n;
};

/* The CPU time of process @pid (its schedstat), or 0 if it is gone. */
static unsigned long long pid_cpu_ns(long pid)
{
	unsigned long long v = 0;
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/schedstat", pid);
	f = fopen(path, "r");
	if (f && fscanf(f, "%llu", &v) != 1)
		v = 0;
	if (f)
		fclose(f);
	return v;
}

/* The newest thread whose name starts with @prefix (a module kthread), or 0. */
static long thread_pid(const char *prefix)
{
	char path[300], comm[64];
	struct dirent *e;
	DIR *d = opendir("/proc");
	long pid = 0;
	FILE *f;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, prefix, strlen(prefix)) &&
		    atol(e->d_name) > pid)
			pid = atol(e->d_name);
		fclose(f);
	}
	closedir(d);
	return pid;
}

static unsigned long long thread_cpu_ns(const char *prefix)
{
	long pid = thread_pid(prefix);

	return pid ? pid_cpu_ns(pid) : 0;
}

static void cost_mark(struct cost_mark *m, const char *prefix)
{
	unsigned long long f[11] = { 0 };
	char path[80];
	struct stat sb;
	FILE *fp;
	int i;

	m->t = now();
	m->cpu_ns = thread_cpu_ns(prefix);
	m->busy_ms = m->queue_ms = 0;
	if (stat(dev_path, &sb))
		return;
	if (!S_ISBLK(sb.st_mode))
		sb.st_rdev = sb.st_dev;	/* a file: the device under its filesystem */
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/stat", major(sb.st_rdev),
		 minor(sb.st_rdev));
	fp = fopen(path, "r");
	if (!fp)
		return;
	for (i = 0; i < 11 && fscanf(fp, "%llu", &f[i]) == 1; i++)
		;
	fclose(fp);
	m->busy_ms = f[9];
	m->queue_ms = f[10];
}

/* From @a to @b, for @bytes moved; @cpu_ns: thread CPU time, if sampled apart. */
static void cost_add(struct cost *c, const struct cost_mark *a, const struct cost_mark *b,
		     unsigned long long cpu_ns, double bytes)
{
	double gib = bytes / 1073741824.0;

	c->elapsed += (b->t - a->t) * 1e3 / gib;
	c->cpu += cpu_ns / 1e6 / gib;
	c->busy += (b->busy_ms - a->busy_ms) / gib;
	c->queue += b->busy_ms > a->busy_ms ?
		    (double)(b->queue_ms - a->queue_ms) / (b->busy_ms - a->busy_ms) : 0;
	c->n++;
}

static void cost_print(const char *what, const struct cost *c, double best_rate)
{
	double n = c->n ? c->n : 1;

	printf("%s per GiB: %.0f ms elapsed, module thread CPU %.0f ms (%.0f %%), device busy %.0f ms at %.1f requests in flight; the device's best needs %.0f ms\n",
	       what, c->elapsed / n, c->cpu / n, c->elapsed ? 100 * c->cpu / c->elapsed : 0,
	       c->busy / n, c->queue / n, best_rate ? 1073741824.0 / best_rate * 1e3 : 0);
}

static void cost_json(const char *key, const struct cost *c)
{
	double n = c->n ? c->n : 1;

	printf(",\"%s_ms_per_gib\":%.1f,\"%s_cpu_ms_per_gib\":%.1f,\"%s_busy_ms_per_gib\":%.1f,\"%s_qdepth\":%.2f",
	       key, c->elapsed / n, key, c->cpu / n, key, c->busy / n, key, c->queue / n);
}

static struct cost precopy_cost, prefetch_cost;

/* The VM's memory: every page non-zero, a pattern derived from its index. */
static void fill(unsigned char *p, unsigned long idx)
{
	unsigned long i;

	for (i = 0; i < PAGE / 8; i++)
		((unsigned long *)p)[i] = (idx * 0x9e3779b97f4a7c15UL) ^ (i + 1);
}

static int check(const unsigned char *p, unsigned long idx)
{
	unsigned long i;

	for (i = 0; i < PAGE / 8; i++)
		if (((const unsigned long *)p)[i] != ((idx * 0x9e3779b97f4a7c15UL) ^ (i + 1)))
			return 0;
	return 1;
}

/* Sequential O_DIRECT I/O of @bytes at @off; bytes per second. */
static double raw_io(int write_it, unsigned long long off, unsigned long long bytes)
{
	int fd = open(dev_path, (write_it ? O_WRONLY : O_RDONLY) | O_DIRECT);
	unsigned long long done;
	void *buf;
	double t;

	if (fd < 0 || posix_memalign(&buf, PAGE, IO_BYTES))
		die("raw I/O");
	memset(buf, 0x5a, IO_BYTES);
	t = now();
	for (done = 0; done < bytes; done += IO_BYTES) {
		ssize_t n = write_it ? pwrite(fd, buf, IO_BYTES, off + done) :
				       pread(fd, buf, IO_BYTES, off + done);
		if (n != (ssize_t)IO_BYTES)
			die("raw I/O");
	}
	if (write_it)
		fsync(fd);
	t = now() - t;
	close(fd);
	free(buf);
	return bytes / t;
}

/*
 * Sequential O_DIRECT I/O of @bytes at @off with @depth requests of @size
 * bytes in flight (Linux AIO through its system calls: the test machine
 * has no libaio); bytes per second.
 */
static double raw_aio(int write_it, unsigned long long off, unsigned long long bytes,
		      int depth, unsigned long size)
{
	struct iocb cbs[MAX_DEPTH], *cbp;
	struct io_event ev[MAX_DEPTH];
	int fd, i, n, inflight = 0, free_slot[MAX_DEPTH], nfree = depth, failed = 0;
	unsigned long long next = 0, done = 0;
	aio_context_t ctx = 0;
	char *buf;
	double t;

	fd = open(dev_path, (write_it ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0 || posix_memalign((void **)&buf, PAGE, size * depth) ||
	    syscall(SYS_io_setup, depth, &ctx))
		die("raw AIO");
	memset(buf, 0x5a, size * depth);
	for (i = 0; i < depth; i++)
		free_slot[i] = i;
	t = now();
	while (done < bytes) {
		while (nfree && next < bytes) {
			int slot = free_slot[--nfree];

			memset(&cbs[slot], 0, sizeof(cbs[slot]));
			cbs[slot].aio_data = slot;
			cbs[slot].aio_lio_opcode = write_it ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
			cbs[slot].aio_fildes = fd;
			cbs[slot].aio_buf = (unsigned long)(buf + slot * size);
			cbs[slot].aio_nbytes = size;
			cbs[slot].aio_offset = off + next;
			cbp = &cbs[slot];
			if (syscall(SYS_io_submit, ctx, 1, &cbp) != 1)
				die("io_submit");
			next += size;
			inflight++;
		}
		n = syscall(SYS_io_getevents, ctx, 1, inflight, ev, NULL);
		if (n < 1)
			die("io_getevents");
		for (i = 0; i < n; i++) {
			/* A short or failed request: no figure from this depth. */
			if (ev[i].res != (long long)size)
				failed = 1;
			free_slot[nfree++] = ev[i].data;
			done += size;
			inflight--;
		}
	}
	if (write_it)
		fsync(fd);
	t = now() - t;
	syscall(SYS_io_destroy, ctx);
	close(fd);
	free(buf);
	if (failed)
		fprintf(stderr, "vmpf-bench: a %s of %lu KiB at depth %d came back short: left out\n",
			write_it ? "write" : "read", size >> 10, depth);
	return failed ? 0 : bytes / t;
}

/* The device's best rate over the depths and sizes; which gave it. */
static double raw_best(int write_it, unsigned long long off, unsigned long long bytes,
		       int *best_depth, unsigned long *best_size)
{
	static const int depths[] = { 1, 4, 8, 16 };
	static const unsigned long sizes[] = { 256 * 1024UL, 1024 * 1024UL };
	double best = 0, r;
	unsigned int d, z;

	for (z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++)
		for (d = 0; d < sizeof(depths) / sizeof(depths[0]); d++) {
			if (bytes % sizes[z])
				continue;
			r = raw_aio(write_it, off, bytes, depths[d], sizes[z]);
			if (r > best) {
				best = r;
				*best_depth = depths[d];
				*best_size = sizes[z];
			}
		}
	/* No depth gave a figure: one request at a time is all there is. */
	if (!best) {
		best = raw_io(write_it, off, bytes);
		*best_depth = 1;
		*best_size = IO_BYTES;
	}
	return best;
}

/*
 * A source session's memory just after attach (it allocates everything
 * then), for a VM of @pages untouched pages: with two sizes, the fixed
 * part and the share of guest RAM.
 */
static double attach_mem(unsigned long pages)
{
	struct vmpf_source_attach at = { 0 };
	struct vmpf_status st = { 0 };
	struct kvm_userspace_memory_region r = { .memory_size = pages * PAGE };
	struct vmpf_region reg;
	struct vmpf_api api;
	int kvm, vm, dev, target;
	void *mem;

	kvm = open("/dev/kvm", O_RDWR);
	vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
	dev = vmpf_open(vmpf_device_path());
	target = open(dev_path, O_RDWR | O_DIRECT);
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm < 0 || dev < 0 || target < 0 || mem == MAP_FAILED ||
	    vmpf_handshake(dev, VMPF_FEATURE_SOURCE, &api))
		die("source setup");
	r.userspace_addr = (unsigned long)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r))
		die("memslot");
	reg = (struct vmpf_region){ .slot = 0, .size = pages * PAGE, .uaddr = r.userspace_addr };
	at.vm_fd = vm;
	at.target_fd = target;
	at.regions = (unsigned long)&reg;
	at.nr_regions = 1;
	if (__vmpf_ioctl(dev, VMPF_IOC_SOURCE_ATTACH, &at) ||
	    __vmpf_ioctl(dev, VMPF_IOC_STATUS, &st))
		die("attach");
	close(dev);
	close(target);
	close(vm);
	close(kvm);
	munmap(mem, pages * PAGE);
	return st.mem_bytes;
}

/* Make the page file; returns round 0's write rate, session memory. */
static double make_image(double *mem_bytes)
{
	struct vmpf_round_stats rounds[4];
	struct vmpf_status st = { .rounds = (unsigned long)rounds, .rounds_cap = 4 };
	struct vmpf_finish fin = { .state = (unsigned long)"bench", .state_len = 6 };
	struct vmpf_source_attach at = { 0 };
	struct vmpf_region regs[2];
	struct cost_mark c0, c1;
	struct pollfd pfd;
	struct vmpf_api api;
	unsigned long half = total_pages / 2, i;
	int kvm, vm, dev, target;
	unsigned char *mem[2];

	kvm = open("/dev/kvm", O_RDWR);
	vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
	dev = vmpf_open(vmpf_device_path());
	target = open(dev_path, O_RDWR | O_DIRECT);
	if (vm < 0 || dev < 0 || target < 0 || vmpf_handshake(dev, VMPF_FEATURE_SOURCE, &api))
		die("source setup");
	for (i = 0; i < 2; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i, .guest_phys_addr = i ? 1ULL << 32 : 0, .memory_size = half * PAGE,
		};

		mem[i] = mmap(NULL, half * PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem[i] == MAP_FAILED)
			die("guest memory");
		r.userspace_addr = (unsigned long)mem[i];
		if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r))
			die("memslot");
		regs[i] = (struct vmpf_region){ .slot = i, .gpa = r.guest_phys_addr,
						.size = half * PAGE, .uaddr = r.userspace_addr };
	}
	for (i = 0; i < total_pages; i++)
		fill(mem[i / half] + (i % half) * PAGE, i);
	at.vm_fd = vm;
	at.target_fd = target;
	at.regions = (unsigned long)regs;
	at.nr_regions = 2;
	if (__vmpf_ioctl(dev, VMPF_IOC_SOURCE_ATTACH, &at))
		die("attach");
	cost_mark(&c0, "vmpf-src/");
	if (__vmpf_ioctl(dev, VMPF_IOC_START, NULL))
		die("start");
	pfd = (struct pollfd){ .fd = dev, .events = POLLIN };
	if (poll(&pfd, 1, 600000) != 1 || __vmpf_ioctl(dev, VMPF_IOC_STATUS, &st))
		die("pre-copy");
	/* Round 0 is all this session copies: no page is dirtied meanwhile. */
	cost_mark(&c1, "vmpf-src/");
	cost_add(&precopy_cost, &c0, &c1, c1.cpu_ns - c0.cpu_ns, total_pages * PAGE);
	if (__vmpf_ioctl(dev, VMPF_IOC_FINISH, &fin))
		die("finish");
	*mem_bytes = st.mem_bytes;
	data_off = at.required_bytes - total_pages * PAGE;
	close(dev);
	close(target);
	close(vm);
	close(kvm);
	munmap(mem[0], half * PAGE);
	munmap(mem[1], half * PAGE);
	return (double)rounds[0].write_rate;
}

/* --- fault service ------------------------------------------------------ */

struct toucher {
	unsigned char *base;
	const unsigned long *idx;
	int n;
	double *lat;
	int bad;
};

static void *touch(void *arg)
{
	struct toucher *t = arg;
	int i;

	for (i = 0; i < t->n; i++) {
		volatile unsigned char *p = t->base + t->idx[i] * PAGE;
		double t0 = now();

		(void)*p;
		t->lat[i] = now() - t0;
		t->bad += !check((const unsigned char *)p, t->idx[i]);
	}
	return NULL;
}

/* Touch @n pages with @threads threads; latencies into @lat; pages/s. */
static double touch_all(unsigned char *base, const unsigned long *idx, int n, int threads,
			double *lat, int *bad)
{
	struct toucher t[THREADS];
	pthread_t th[THREADS];
	double t0;
	int i, per = n / threads;

	t0 = now();
	for (i = 0; i < threads; i++) {
		t[i] = (struct toucher){ base, idx + i * per, per, lat + i * per, 0 };
		pthread_create(&th[i], NULL, touch, &t[i]);
	}
	*bad = 0;
	for (i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		*bad += t[i].bad;
	}
	return per * threads / (now() - t0);
}

static double vmpf_faults(const unsigned long *idx, int n, int threads, double *lat, int *bad,
			  double *mem_bytes)
{
	/* The data path only: no ownership lease (bench-guest.sh's time to
	 * first instruction, through vmpf-vm, includes it). */
	struct vmpf_restore_open ro = {
		.flags = VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_NO_LEASE,
	};
	struct vmpf_restore_status st = { 0 };
	struct vmpf_api api;
	unsigned char *map;
	double rate;
	int dev = vmpf_open(vmpf_device_path());

	ro.target_fd = open(dev_path, O_RDONLY | O_DIRECT);
	if (dev < 0 || vmpf_handshake(dev, VMPF_FEATURE_RESTORE, &api) ||
	    __vmpf_ioctl(dev, VMPF_IOC_RESTORE_OPEN, &ro))
		die("restore open");
	map = mmap(NULL, total_pages * PAGE, PROT_READ, MAP_SHARED, dev, 0);
	if (map == MAP_FAILED)
		die("restore mmap");
	rate = touch_all(map, idx, n, threads, lat, bad);
	__vmpf_ioctl(dev, VMPF_IOC_RESTORE_STATUS, &st);
	*mem_bytes = st.mem_bytes;
	munmap(map, total_pages * PAGE);
	close(ro.target_fd);
	close(dev);
	return rate;
}

/* Page-table blocks restores read again (VMPF_IOC_DEV_INFO). */
static double table_reads(void)
{
	struct vmpf_dev_info info = { 0 };
	int fd = vmpf_open(vmpf_device_path());
	struct vmpf_api api;

	if (fd >= 0 && !vmpf_handshake(fd, 0, &api))
		__vmpf_ioctl(fd, VMPF_IOC_DEV_INFO, &info);
	if (fd >= 0)
		close(fd);
	return info.table_reads;
}

static void pct(double *lat, int n, double *p50, double *p99);

/* vmpf_faults() with table_cache=100; its median to @f.  Pages wrong. */
static int whole_table_faults(const unsigned long *idx, int n, double *lat, struct fig *f,
			      double *reads, double *mem_bytes)
{
	char old[32] = "";
	double p50, p99, t0;
	int bad = 0;

	if (vmpf_module_param("table_cache", "100", old, sizeof(old)))
		return 0;
	t0 = table_reads();
	vmpf_faults(idx, n, 1, lat, &bad, mem_bytes);
	*reads = table_reads() - t0;
	pct(lat, n, &p50, &p99);
	add(f, p50);
	vmpf_module_param("table_cache", old, NULL, 0);
	return bad;
}

struct uffd_handler {
	int uffd, fd;
	unsigned char *base;
	void *buf;
};

/* The baseline: what Firecracker's and QEMU's handlers do, per fault. */
static void *uffd_serve(void *arg)
{
	struct uffd_handler *h = arg;
	struct uffd_msg msg;

	for (;;) {
		struct uffdio_copy copy;
		unsigned long idx;

		if (read(h->uffd, &msg, sizeof(msg)) != sizeof(msg))
			return NULL;	/* closed: done */
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		idx = (msg.arg.pagefault.address - (unsigned long)h->base) / PAGE;
		if (pread(h->fd, h->buf, PAGE, data_off + idx * PAGE) != PAGE)
			die("uffd pread");
		copy = (struct uffdio_copy){
			.dst = (unsigned long)h->base + idx * PAGE,
			.src = (unsigned long)h->buf, .len = PAGE,
		};
		if (ioctl(h->uffd, UFFDIO_COPY, &copy) && errno != EEXIST)
			die("UFFDIO_COPY");
	}
}

static double uffd_faults(const unsigned long *idx, int n, int threads, double *lat, int *bad)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	struct uffd_handler h;
	pthread_t th;
	double rate;

	h.uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	h.fd = open(dev_path, O_RDONLY | O_DIRECT);
	h.base = mmap(NULL, total_pages * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h.uffd < 0 || h.fd < 0 || h.base == MAP_FAILED || posix_memalign(&h.buf, PAGE, PAGE) ||
	    ioctl(h.uffd, UFFDIO_API, &api))
		die("userfaultfd");
	reg = (struct uffdio_register){
		.range = { (unsigned long)h.base, total_pages * PAGE },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(h.uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
	pthread_create(&th, NULL, uffd_serve, &h);
	rate = touch_all(h.base, idx, n, threads, lat, bad);
	munmap(h.base, total_pages * PAGE);
	close(h.uffd);		/* the handler's read fails: it ends */
	pthread_cancel(th);
	pthread_join(th, NULL);
	close(h.fd);
	free(h.buf);
	return rate;
}

/* --- huge pages --------------------------------------------------------- */

/*
 * Every page made resident by faults alone, in page order, one thread:
 * in 4 KiB pages or in 2 MiB huge pages (VMPF_RESTORE_HUGE).  Bytes per
 * second; @faults: the faults that waited for a read.
 */
static double fault_fill(int huge, double *faults, double *mem_bytes)
{
	struct vmpf_restore_open ro = {
		.flags = VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_NO_LEASE |
			 (huge ? VMPF_RESTORE_HUGE : 0),
	};
	struct vmpf_restore_status st = { 0 };
	volatile unsigned char sum = 0;
	struct vmpf_api api;
	unsigned char *map;
	unsigned long i;
	double t;
	int dev = vmpf_open(vmpf_device_path()), k;

	ro.target_fd = open(dev_path, O_RDONLY | O_DIRECT);
	if (dev < 0 || vmpf_handshake(dev, VMPF_FEATURE_RESTORE, &api) ||
	    __vmpf_ioctl(dev, VMPF_IOC_RESTORE_OPEN, &ro))
		die("fault fill open");
	map = vmpf_map_huge_aligned(total_pages * PAGE, PROT_READ, dev, 0);
	if (map == MAP_FAILED)
		die("fault fill mmap");
	t = now();
	for (i = 0; i < total_pages; i++)
		sum += map[i * PAGE];
	t = now() - t;
	(void)sum;
	__vmpf_ioctl(dev, VMPF_IOC_RESTORE_STATUS, &st);
	if (st.resident != total_pages)
		die("fault fill: not every page resident");
	*faults = 0;
	for (k = 0; k < VMPF_FAULT_HIST; k++)
		*faults += st.fault_hist[k];
	*mem_bytes = st.mem_bytes;
	munmap(map, total_pages * PAGE);
	close(ro.target_fd);
	close(dev);
	return total_pages * PAGE / t;
}

/* --- prefetch ----------------------------------------------------------- */

static double prefetch_rate(int huge)
{
	/* The prefetch alone, from the open: no ownership lease either. */
	struct vmpf_restore_open ro = {
		.flags = VMPF_RESTORE_NO_LEASE | (huge ? VMPF_RESTORE_HUGE : 0),
	};
	unsigned long long cpu = 0, c;
	struct cost_mark c0, c1;
	long pid = 0;
	struct pollfd pfd;
	struct vmpf_api api;
	int dev = vmpf_open(vmpf_device_path()), i;
	double t;

	ro.target_fd = open(dev_path, O_RDONLY | O_DIRECT);
	if (dev < 0 || vmpf_handshake(dev, VMPF_FEATURE_RESTORE, &api))
		die("prefetch setup");
	cost_mark(&c0, "vmpf-pf/");
	t = now();
	if (__vmpf_ioctl(dev, VMPF_IOC_RESTORE_OPEN, &ro))
		die("prefetch open");
	/*
	 * The prefetch thread ends when it is done: its CPU time is sampled
	 * while it runs (the last 50 ms or so go uncounted).
	 */
	pfd = (struct pollfd){ .fd = dev, .events = POLLIN };
	for (i = 0; i < 24000; i++) {
		if (!pid)
			pid = thread_pid("vmpf-pf/");
		c = pid ? pid_cpu_ns(pid) : 0;
		cpu = c > cpu ? c : cpu;
		if (poll(&pfd, 1, 50) == 1)
			break;
	}
	if (i == 24000)
		die("prefetch did not complete");
	t = now() - t;
	cost_mark(&c1, "vmpf-pf/");
	if (!huge)
		cost_add(&prefetch_cost, &c0, &c1, cpu, total_pages * PAGE);
	close(ro.target_fd);
	close(dev);
	return total_pages * PAGE / t;
}

static void pct(double *lat, int n, double *p50, double *p99)
{
	qsort(lat, n, sizeof(double), cmp_double);
	*p50 = lat[n / 2];
	*p99 = lat[n * 99 / 100];
}

int main(int argc, char **argv)
{
	struct fig pre, raww, f1v, f1u, f1vr, f1ur, f4v, f4u, f4vr, f4ur, pf, rawr, rawwb, rawrb;
	struct fig pfh, ffs, ffh, f1all;
	double src_mem = 0, src_small = 0, src_big = 0, src_fixed, src_share,
	       rst_mem = 0, all_mem = 0, *lat, p99v1 = 0, p99u1 = 0, p50, p99;
	double treads = 0, treads_all = 0, t0;
	double faults_small = 0, faults_huge = 0, huge_mem = 0, small_mem = 0;
	unsigned long *idx, i, wsize = 0, rsize = 0;
	int reps, n, r, bad, bad_total = 0, wdepth = 0, rdepth = 0;
	unsigned long seed = 12345;
	const struct row rows[] = {
		{ "pre-copy round 0 (vs best raw write)", &pre, &rawwb, 1.0 / 1048576, "MB/s",
		  ">= 0.90", "precopy_mbs", "raw_write_best_mbs" },
		{ "pre-copy round 0 (vs 1 x 256K write)", &pre, &raww, 1.0 / 1048576, "MB/s",
		  "", NULL, "raw_write_mbs" },
		{ "fault median, 1 thread (vs uffd)", &f1vr, &f1ur, 1e6, "us", "<= 0.50",
		  "fault_us_1t", "uffd_fault_us_1t" },
		{ "faults/s, 1 thread (vs uffd)", &f1v, &f1u, 1, "/s", "",
		  "faults_per_s_1t", "uffd_faults_per_s_1t" },
		{ "fault median, 1 thread (vs whole table)", &f1vr, &f1all, 1e6, "us", "",
		  NULL, "fault_us_1t_whole_table" },
		{ "fault median, 4 threads (vs uffd)", &f4vr, &f4ur, 1e6, "us", "<= 0.50",
		  "fault_us_4t", "uffd_fault_us_4t" },
		{ "faults/s, 4 threads (vs uffd)", &f4v, &f4u, 1, "/s", "",
		  "faults_per_s_4t", "uffd_faults_per_s_4t" },
		{ "prefetch to resident (vs best raw read)", &pf, &rawrb, 1.0 / 1048576, "MB/s",
		  ">= 0.90", "prefetch_mbs", "raw_read_best_mbs" },
		{ "prefetch to resident (vs 1 x 256K read)", &pf, &rawr, 1.0 / 1048576, "MB/s",
		  "", NULL, "raw_read_mbs" },
		{ "prefetch to resident, 2 MiB (vs 4 KiB)", &pfh, &pf, 1.0 / 1048576, "MB/s",
		  "", "huge_prefetch_mbs", NULL },
		{ "faults to resident, 2 MiB (vs 4 KiB)", &ffh, &ffs, 1.0 / 1048576, "MB/s",
		  "", "huge_fault_fill_mbs", "small_fault_fill_mbs" },
	};

	if (argc != 5) {
		fprintf(stderr, "usage: vmpf-bench DEVICE MIB REPS FAULTS\n");
		return 2;
	}
	memset(&pre, 0, sizeof(pre));
	raww = f1v = f1u = f1vr = f1ur = f4v = f4u = f4vr = f4ur = pf = rawr = rawwb = rawrb = pre;
	pfh = ffs = ffh = f1all = pre;
	dev_path = argv[1];
	total_pages = strtoul(argv[2], NULL, 0) * 1048576 / PAGE;
	reps = atoi(argv[3]);
	n = atoi(argv[4]) / THREADS * THREADS;
	if (reps < 1 || reps > MAX_REPS || n < THREADS || (unsigned long)n > total_pages)
		return 2;
	/* The layout of docs/pagefile-format.md, 1 MiB of device state. */
	data_off = 2 * PAGE + (total_pages * 8 + PAGE - 1) / PAGE * PAGE + 1048576;
	idx = malloc(n * sizeof(*idx));
	lat = malloc(n * sizeof(*lat));
	/* N distinct random pages (an LCG over the page numbers). */
	for (i = 0; i < (unsigned long)n; i++) {
		unsigned long j, v;
again:
		seed = seed * 6364136223846793005UL + 1442695040888963407UL;
		v = (seed >> 17) % total_pages;
		for (j = 0; j < i; j++)
			if (idx[j] == v)
				goto again;
		idx[i] = v;
	}

	for (r = 0; r < reps; r++) {
		/* Raw writes first, over where the data area will be. */
		add(&raww, raw_io(1, data_off, total_pages * PAGE));
		add(&rawwb, raw_best(1, data_off, total_pages * PAGE, &wdepth, &wsize));
		add(&pre, make_image(&src_mem));
		add(&rawr, raw_io(0, data_off, total_pages * PAGE));
		add(&rawrb, raw_best(0, data_off, total_pages * PAGE, &rdepth, &rsize));

		/*
		 * What the page-table cache costs the faults: the same faults
		 * with every table block's crcs kept (table_cache=100), before
		 * the default's in odd repetitions and after it in even ones.
		 */
		if (r & 1)
			bad_total += whole_table_faults(idx, n, lat, &f1all, &treads_all, &all_mem);
		t0 = table_reads();
		add(&f1v, vmpf_faults(idx, n, 1, lat, &bad, &rst_mem));
		treads = table_reads() - t0;
		bad_total += bad;
		pct(lat, n, &p50, &p99);
		add(&f1vr, p50);
		p99v1 = p99;
		if (!(r & 1))
			bad_total += whole_table_faults(idx, n, lat, &f1all, &treads_all, &all_mem);
		add(&f1u, uffd_faults(idx, n, 1, lat, &bad));
		bad_total += bad;
		pct(lat, n, &p50, &p99);
		add(&f1ur, p50);
		p99u1 = p99;

		add(&f4v, vmpf_faults(idx, n, THREADS, lat, &bad, &rst_mem));
		bad_total += bad;
		pct(lat, n, &p50, &p99);
		add(&f4vr, p50);
		add(&f4u, uffd_faults(idx, n, THREADS, lat, &bad));
		bad_total += bad;
		pct(lat, n, &p50, &p99);
		add(&f4ur, p50);

		add(&pf, prefetch_rate(0));
		add(&pfh, prefetch_rate(1));
		add(&ffs, fault_fill(0, &faults_small, &small_mem));
		add(&ffh, fault_fill(1, &faults_huge, &huge_mem));
	}

	printf("vmpagefile benchmarks: %lu MiB page file on %s, %d faults, median [min-max] of %d\n",
	       total_pages * PAGE >> 20, dev_path, n, reps);
	printf("%-40s %29s %29s %6s  goal\n", "figure", "vmpagefile", "baseline", "ratio");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		print_row(&rows[i]);
	printf("device's best (last run): write %d x %lu KiB in flight, read %d x %lu KiB\n",
	       wdepth, wsize >> 10, rdepth, rsize >> 10);
	printf("fault p99, 1 thread: vmpagefile %.1f us, userfaultfd %.1f us\n", p99v1 * 1e6,
	       p99u1 * 1e6);
	printf("module memory per GiB of guest RAM: source %.0f KiB (%.3f %%), restore %.0f KiB (%.3f %%), goal <= 0.1 %%\n",
	       src_mem / (total_pages * PAGE / 1073741824.0) / 1024,
	       100 * src_mem / (total_pages * PAGE),
	       rst_mem / (total_pages * PAGE / 1073741824.0) / 1024,
	       100 * rst_mem / (total_pages * PAGE));
	printf("page-table blocks read by %d random faults: %.0f with the default cache (%.0f KiB per GiB in all), %.0f with the whole table (%.0f KiB per GiB)\n",
	       n, treads, rst_mem / (total_pages * PAGE / 1073741824.0) / 1024, treads_all,
	       all_mem / (total_pages * PAGE / 1073741824.0) / 1024);
	printf("faults per GiB made resident in page order: 4 KiB pages %.0f, 2 MiB pages %.0f; module memory per GiB, 2 MiB pages: %.0f KiB (%.3f %%)\n",
	       faults_small / (total_pages * PAGE / 1073741824.0),
	       faults_huge / (total_pages * PAGE / 1073741824.0),
	       huge_mem / (total_pages * PAGE / 1073741824.0) / 1024,
	       100 * huge_mem / (total_pages * PAGE));
	/* The source's fixed part and its share of guest RAM, from two sizes. */
	src_small = attach_mem(total_pages / 4);
	src_big = attach_mem(total_pages);
	src_share = (src_big - src_small) / (total_pages * 3 / 4 * PAGE);
	src_fixed = src_big - src_share * total_pages * PAGE;
	printf("source session memory: %.0f KiB fixed (I/O buffers, the session) + %.4f %% of guest RAM; %.3f %% at 1 GiB, %.3f %% at 8 GiB\n",
	       src_fixed / 1024, 100 * src_share,
	       100 * (src_fixed / 1073741824.0 + src_share),
	       100 * (src_fixed / 8589934592.0 + src_share));
	cost_print("pre-copy round 0", &precopy_cost, med(&rawwb));
	cost_print("prefetch to resident", &prefetch_cost, med(&rawrb));
	printf("pages with wrong content: %d (vmpagefile and the userfaultfd baseline)\n", bad_total);
	printf("BENCH-JSON {\"mib\":%lu,\"faults\":%d,\"reps\":%d", total_pages * PAGE >> 20, n,
	       reps);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		json_row(&rows[i]);
	printf(",\"best_write_depth\":%d,\"best_write_kib\":%lu,\"best_read_depth\":%d,"
	       "\"best_read_kib\":%lu", wdepth, wsize >> 10, rdepth, rsize >> 10);
	cost_json("precopy", &precopy_cost);
	cost_json("prefetch", &prefetch_cost);
	printf(",\"faults_per_gib_4k\":%.0f,\"faults_per_gib_2m\":%.0f",
	       faults_small / (total_pages * PAGE / 1073741824.0),
	       faults_huge / (total_pages * PAGE / 1073741824.0));
	printf(",\"table_reads\":%.0f,\"table_reads_whole_table\":%.0f,\"restore_mem_bytes_whole_table\":%.0f",
	       treads, treads_all, all_mem);
	printf(",\"source_mem_fixed_bytes\":%.0f,\"source_mem_share\":%.6f", src_fixed,
	       src_share);
	printf(",\"fault_p99_us_1t\":%.2f,\"uffd_fault_p99_us_1t\":%.2f,"
	       "\"source_mem_bytes\":%.0f,\"restore_mem_bytes\":%.0f,\"bad_pages\":%d}\n",
	       p99v1 * 1e6, p99u1 * 1e6, src_mem, rst_mem, bad_total);
	return bad_total ? 1 : 0;
}
