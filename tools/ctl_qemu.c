// SPDX-License-Identifier: GPL-2.0
/*
 * vmpf-ctl with an unmodified QEMU: `migrate` (source), `restore --qemu`
 * (destination) and `qmp`.
 *
 * The division of labour: QEMU keeps its devices, the module moves guest
 * RAM.  QEMU's RAM is one shared memory backend; QEMU's own migration with
 * the x-ignore-shared capability then carries only the device state and
 * QEMU's small private RAM (firmware, option ROMs), and that stream is the
 * page file's device-state blob.  On the source the module tracks the
 * memslots of the backend through QEMU's KVM descriptor (taken with
 * pidfd_getfd); the page file holds the backend's pages in the backend's
 * order, holes (memory no memslot maps) included, so that the destination
 * QEMU can map the whole backend from the restore session's guest memory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "ctl_disks.h"
#include "ctl_qemu.h"
#include "ctl_util.h"
#include "qmp.h"
#include "vmpf.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define KVM_MEM_LOG_DIRTY_PAGES	(1UL << 0)
#define QEMU_STATE_MAX		(16ULL << 20)	/* room for QEMU's device state */
#define QEMU_STATE_FD		200		/* -incoming fd: in the new QEMU */
#define QEMU_RAM_FD		201		/* guest memory, open across exec */
#define IGNORE_SHARED(on) \
	"{\"capabilities\": [{\"capability\": \"x-ignore-shared\", \"state\": " on "}]}"

static struct qmp qmp;
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("vmpf-ctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EXIT_FAIL;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static void nap_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

int ctl_qmp(const struct ctl_opts *o)
{
	char why[600];

	if (qmp_open(&qmp, o->qmp, why, sizeof(why)))
		return fail("%s", why);
	if (qmp_exec(&qmp, o->qmp_cmd, o->qmp_args, -1, why, sizeof(why))) {
		qmp_close(&qmp);
		return fail("%s", why);
	}
	fputs(qmp.reply, stdout);
	qmp_close(&qmp);
	return CTL_EXIT_OK;
}

/* QEMU's KVM VM descriptor, taken from process @pid; or -1 with @why. */
static int qemu_vm_fd(pid_t pid, char *why, size_t len)
{
	char dir[64], path[320], link[128];
	struct dirent *d;
	int pidfd, fd = -1;
	DIR *dp;

	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		snprintf(why, len, "cannot open QEMU's process %d: %s", pid, strerror(errno));
		return -1;
	}
	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	dp = opendir(dir);
	if (!dp) {
		snprintf(why, len, "cannot list %s: %s (run vmpf-ctl as root)", dir, strerror(errno));
		close(pidfd);
		return -1;
	}
	snprintf(why, len, "QEMU (process %d) has no KVM VM: start it with -accel kvm", pid);
	while ((d = readdir(dp))) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (strcmp(link, "anon_inode:kvm-vm"))
			continue;
		fd = syscall(SYS_pidfd_getfd, pidfd, atoi(d->d_name), 0);
		if (fd < 0)
			snprintf(why, len, "cannot take QEMU's KVM descriptor (pidfd_getfd: %s): run vmpf-ctl as root",
				 strerror(errno));
		break;
	}
	closedir(dp);
	close(pidfd);
	return fd;
}

/* One mapping of QEMU's address space, from /proc/PID/maps. */
struct qemu_map {
	unsigned long start, end, off, inode;
	int shared;
	char name[200];
};

/*
 * The shared mapping of QEMU's address space that holds @addr, merged with
 * its neighbours of the same file (madvise() may have split it).
 */
static int qemu_find_map(pid_t pid, unsigned long addr, struct qemu_map *out)
{
	struct qemu_map cur, found = { 0 };
	char path[64], line[512];
	int have = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char perms[8] = "", dev[16];
		int pos = 0;

		memset(&cur, 0, sizeof(cur));
		if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &cur.start, &cur.end, perms,
			   &cur.off, dev, &cur.inode, &pos) < 6)
			continue;
		cur.shared = perms[3] == 's';
		snprintf(cur.name, sizeof(cur.name), "%s", pos ? line + pos : "");
		cur.name[strcspn(cur.name, "\n")] = 0;
		if (have && cur.inode == found.inode && cur.start == found.end &&
		    cur.off == found.off + (found.end - found.start) && cur.shared) {
			found.end = cur.end;
			continue;
		}
		if (have && addr < found.end)
			break;
		have = cur.shared && cur.inode && addr >= cur.start && addr < cur.end;
		if (have)
			found = cur;
		else if (addr >= cur.start && addr < cur.end)
			break;	/* private: not a shared backend */
	}
	fclose(f);
	if (!have)
		return -1;
	*out = found;
	return 0;
}

/*
 * Guest RAM outside the backend being migrated: a memslot on another
 * shared mapping (a second backend: NUMA nodes, a hot-plugged DIMM) would
 * not be in the page file.  QEMU's private RAM (firmware, ROMs) is carried
 * by its own migration stream.
 */
static int other_shared_ram(const struct vmpf_memslot *slots, unsigned long long n, pid_t pid,
			    const struct qemu_map *ram, char *why, size_t len)
{
	unsigned long long i;
	struct qemu_map m;

	for (i = 0; i < n; i++) {
		if (slots[i].slot >> 16 ||
		    (slots[i].uaddr >= ram->start && slots[i].uaddr < ram->end))
			continue;
		if (!qemu_find_map(pid, slots[i].uaddr, &m)) {
			snprintf(why, len, "QEMU's guest RAM is in more than one shared backend (memslot %llu, guest address %#llx, is in %s: NUMA nodes or hot-plugged memory); vmpf-ctl migrates one",
				 (unsigned long long)slots[i].slot, (unsigned long long)slots[i].gpa,
				 m.name);
			return -1;
		}
	}
	return 0;
}

/* At the switch-over, with QEMU stopped: no backend added meanwhile. */
static int still_one_backend(int dev, int vm_fd, pid_t pid, const struct qemu_map *ram,
			     char *why, size_t len)
{
	static struct vmpf_memslot slots[VMPF_MAX_MEMSLOTS];
	struct vmpf_vm_memslots m = { .vm_fd = vm_fd, .slots = (uintptr_t)slots,
				      .slots_cap = VMPF_MAX_MEMSLOTS };
	int ret = __vmpf_ioctl(dev, VMPF_IOC_VM_MEMSLOTS, &m);

	if (ret) {
		vmpf_ioctl_error(VMPF_IOC_VM_MEMSLOTS, -ret, why, len);
		return -1;
	}
	return other_shared_ram(slots, m.nr_slots < VMPF_MAX_MEMSLOTS ? m.nr_slots :
				VMPF_MAX_MEMSLOTS, pid, ram, why, len);
}

static int cmp_slot_uaddr(const void *a, const void *b)
{
	const struct vmpf_memslot *x = a, *y = b;

	return x->uaddr < y->uaddr ? -1 : x->uaddr > y->uaddr;
}

/*
 * The regions of QEMU's RAM backend: its memslots in the backend's order,
 * the gaps between them (memory no memslot maps) as VMPF_SLOT_NONE.
 */
static int qemu_regions(int dev, int vm_fd, pid_t pid, struct vmpf_region *regs,
			unsigned int *nr, struct qemu_map *ram, char *why, size_t len)
{
	static struct vmpf_memslot slots[VMPF_MAX_MEMSLOTS];
	struct vmpf_vm_memslots m = { .vm_fd = vm_fd, .slots = (uintptr_t)slots,
				      .slots_cap = VMPF_MAX_MEMSLOTS };
	unsigned long long i, n, biggest = 0, pos;
	unsigned int r = 0;
	int ret;

	ret = __vmpf_ioctl(dev, VMPF_IOC_VM_MEMSLOTS, &m);
	if (ret) {
		vmpf_ioctl_error(VMPF_IOC_VM_MEMSLOTS, -ret, why, len);
		return -1;
	}
	n = m.nr_slots < VMPF_MAX_MEMSLOTS ? m.nr_slots : VMPF_MAX_MEMSLOTS;
	for (i = 0; i < n; i++) {
		if (slots[i].slot >> 16) {
			snprintf(why, len, "QEMU's VM has System Management Mode memory (SMRAM, memslot %llu of address space 1), whose writes vmpagefile cannot track: start QEMU with -machine smm=off",
				 (unsigned long long)(slots[i].slot & 0xffff));
			return -1;
		}
		if (slots[i].size > slots[biggest].size)
			biggest = i;
	}
	if (!n) {
		snprintf(why, len, "QEMU's VM has no memory yet");
		return -1;
	}
	/* Guest RAM's backend is the shared mapping under the biggest memslot. */
	if (qemu_find_map(pid, slots[biggest].uaddr, ram)) {
		snprintf(why, len, "QEMU's guest RAM is not in a shared memory backend: start QEMU with -machine memory-backend=ram0 -object memory-backend-memfd,id=ram0,share=on,size=SIZE (or memory-backend-file,share=on)");
		return -1;
	}
	if (ram->off) {
		snprintf(why, len, "QEMU maps its RAM backend %s from offset %lu: not supported",
			 ram->name, ram->off);
		return -1;
	}
	/* The backend's memslots, in its order; the others are QEMU's own. */
	if (other_shared_ram(slots, n, pid, ram, why, len))
		return -1;
	qsort(slots, n, sizeof(slots[0]), cmp_slot_uaddr);
	pos = ram->start;
	for (i = 0; i < n; i++) {
		struct vmpf_memslot *s = &slots[i];

		if (s->uaddr + s->size <= ram->start || s->uaddr >= ram->end)
			continue;
		if (s->uaddr < pos || s->uaddr + s->size > ram->end) {
			snprintf(why, len, "memslot %llu (guest address %#llx) maps memory of the RAM backend twice or only in part: not supported",
				 (unsigned long long)s->slot, (unsigned long long)s->gpa);
			return -1;
		}
		if (s->flags & KVM_MEM_LOG_DIRTY_PAGES) {
			snprintf(why, len, "QEMU itself logs dirty pages of memslot %llu (guest address %#llx): a display's VGA memory in guest RAM, or a QEMU migration in progress",
				 (unsigned long long)s->slot, (unsigned long long)s->gpa);
			return -1;
		}
		if (r + 2 > VMPF_MAX_REGIONS) {
			snprintf(why, len, "QEMU's RAM backend has more than %d memslots and holes",
				 VMPF_MAX_REGIONS);
			return -1;
		}
		if (s->uaddr > pos)
			regs[r++] = (struct vmpf_region){ .slot = VMPF_SLOT_NONE,
							  .size = s->uaddr - pos, .uaddr = pos };
		regs[r++] = (struct vmpf_region){ .slot = s->slot, .gpa = s->gpa,
						  .size = s->size, .uaddr = s->uaddr };
		pos = s->uaddr + s->size;
	}
	if (pos < ram->end) {
		if (r + 1 > VMPF_MAX_REGIONS) {
			snprintf(why, len, "QEMU's RAM backend has more than %d memslots and holes",
				 VMPF_MAX_REGIONS);
			return -1;
		}
		regs[r++] = (struct vmpf_region){ .slot = VMPF_SLOT_NONE,
						  .size = ram->end - pos, .uaddr = pos };
	}
	*nr = r;
	return 0;
}

/* Open (or create) the page file and attach; the size is fixed up once. */
static int attach(int dev, int vm_fd, const struct ctl_opts *o, struct vmpf_region *regs,
		  unsigned int nr, struct vmpf_source_attach *a, char *why, size_t len)
{
	struct stat st;
	int target, ret;

	target = open(o->path, O_RDWR | O_DIRECT | O_CLOEXEC | O_CREAT, 0600);
	if (target < 0) {
		snprintf(why, len, "cannot open the page file %s with O_DIRECT: %s", o->path,
			 strerror(errno));
		return -1;
	}
	memset(a, 0, sizeof(*a));
	a->vm_fd = vm_fd;
	a->target_fd = target;
	a->regions = (uintptr_t)regs;
	a->nr_regions = nr;
	a->state_max = QEMU_STATE_MAX;
	a->downtime_ns = o->downtime_ms > 0 ? o->downtime_ms * 1000000ULL : 0;
	ret = __vmpf_ioctl(dev, VMPF_IOC_SOURCE_ATTACH, a);
	if (ret == -ENOSPC && !fstat(target, &st) && S_ISREG(st.st_mode)) {
		if (ftruncate(target, a->required_bytes)) {
			snprintf(why, len, "cannot make %s %llu bytes long: %s", o->path,
				 (unsigned long long)a->required_bytes, strerror(errno));
			close(target);
			return -1;
		}
		ret = __vmpf_ioctl(dev, VMPF_IOC_SOURCE_ATTACH, a);
	}
	close(target);
	if (ret) {
		char m[300];

		vmpf_ioctl_error(VMPF_IOC_SOURCE_ATTACH, -ret, m, sizeof(m));
		if (ret == -ENOSPC)
			snprintf(why, len, "%s is too small: the migration needs %llu bytes", o->path,
				 (unsigned long long)a->required_bytes);
		else
			snprintf(why, len, "cannot attach to QEMU's VM: %s", m);
		return -1;
	}
	return 0;
}

/*
 * QEMU's own writes to guest RAM (device emulation, DMA into guest buffers,
 * vhost) do not go through the guest's page tables: KVM's dirty log never
 * sees them.  The kernel's soft-dirty bits do: clearing them (writing 4 to
 * /proc/PID/clear_refs) write-protects every page of the process, and each
 * write after that, by QEMU's threads, by KVM on the guest's behalf or a
 * pinning O_DIRECT read, sets the page's bit in /proc/PID/pagemap (bit 55).
 * Reading the bits and clearing them is not one atomic step, so it is done
 * only while QEMU is stopped (QMP stop drains its I/O and stops its
 * devices): nothing writes in between.  The pages found are handed to the
 * session with VMPF_IOC_MARK_DIRTY.
 */
#define PM_SOFT_DIRTY	(1ULL << 55)

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		ret = -errno;
	close(fd);
	return ret;
}

static int soft_dirty_bit(const volatile char *p)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	off_t off = ((uintptr_t)p / 4096) * 8;

	if (fd < 0 || pread(fd, &e, 8, off) != 8)
		e = 0;
	if (fd >= 0)
		close(fd);
	return !!(e & PM_SOFT_DIRTY);
}

/* Does this kernel keep soft-dirty bits (CONFIG_MEM_SOFT_DIRTY)? */
static int soft_dirty_works(void)
{
	static volatile char page[4096] __attribute__((aligned(4096)));
	int clean;

	page[0] = 1;
	if (write_str("/proc/self/clear_refs", "4"))
		return 0;
	clean = !soft_dirty_bit(page);
	page[0] = 2;
	return clean && soft_dirty_bit(page);
}

static int mark_run(int dev, uint64_t gpa, uint64_t pages, char *why, size_t len)
{
	struct vmpf_mark_dirty m = { .gpa = gpa, .len = pages * 4096 };
	int ret = __vmpf_ioctl(dev, VMPF_IOC_MARK_DIRTY, &m);

	if (ret)
		vmpf_ioctl_error(VMPF_IOC_MARK_DIRTY, -ret, why, len);
	return ret;
}

/*
 * With QEMU stopped: mark what was written since the last clear, then
 * clear (unless @keep, at the switch-over: nothing runs until the end).
 * Returns the pages marked, or -1 with @why.
 */
static long soft_dirty_sync(int dev, pid_t pid, const struct vmpf_region *regs,
			    unsigned int nr, int keep, char *why, size_t len)
{
	static uint64_t ent[4096];
	char path[64];
	long marked = 0;
	unsigned int r;
	int fd, ret;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	for (r = 0; r < nr; r++) {
		uint64_t pages = regs[r].size / 4096, p, i, n, run = 0, run_len = 0;

		if (regs[r].slot == VMPF_SLOT_NONE)
			continue;	/* copied again at the pause anyway */
		for (p = 0; p < pages; p += n) {
			ssize_t got;

			n = pages - p < 4096 ? pages - p : 4096;
			got = pread(fd, ent, n * 8, (regs[r].uaddr / 4096 + p) * 8);
			if (got != (ssize_t)(n * 8)) {
				snprintf(why, len, "cannot read %s: %s", path,
					 got < 0 ? strerror(errno) : "short read");
				goto err;
			}
			for (i = 0; i < n; i++) {
				if (ent[i] & PM_SOFT_DIRTY) {
					if (!run_len++)
						run = p + i;
					continue;
				}
				if (run_len && mark_run(dev, regs[r].gpa + run * 4096, run_len,
							why, len))
					goto err;
				marked += run_len;
				run_len = 0;
			}
		}
		if (run_len && mark_run(dev, regs[r].gpa + run * 4096, run_len, why, len))
			goto err;
		marked += run_len;
	}
	close(fd);
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	ret = keep ? 0 : write_str(path, "4");
	if (ret) {
		snprintf(why, len, "cannot clear QEMU's soft-dirty bits: %s", strerror(-ret));
		return -1;
	}
	return marked;
err:
	close(fd);
	return -1;
}

static int get_status(int dev, struct vmpf_status *st)
{
	memset(st, 0, sizeof(*st));
	return __vmpf_ioctl(dev, VMPF_IOC_STATUS, st);
}

/*
 * QEMU saves its device state (x-ignore-shared: not the RAM backend) into
 * a pipe vmpf-ctl reads.  Returns the bytes in @buf, or -1 with @why.
 */
static long qemu_save_state(char *buf, size_t cap, char *why, size_t len)
{
	char status[64] = "", desc[300];
	size_t got = 0;
	int p[2];

	if (pipe2(p, O_CLOEXEC)) {
		snprintf(why, len, "pipe: %s", strerror(errno));
		return -1;
	}
	if (qmp_exec(&qmp, "getfd", "{\"fdname\": \"vmpf-state\"}", p[1], why, len)) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	close(p[1]);
	if (qmp_exec(&qmp, "migrate", "{\"uri\": \"fd:vmpf-state\"}", -1, why, len)) {
		close(p[0]);
		return -1;
	}
	for (;;) {
		ssize_t n;

		if (got == cap) {
			snprintf(why, len, "QEMU's device state is larger than the %zu bytes the page file has room for",
				 cap);
			close(p[0]);
			qmp_exec(&qmp, "migrate_cancel", NULL, -1, desc, sizeof(desc));
			return -1;
		}
		n = read(p[0], buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(p[0]);
	/* The stream ended: QEMU says whether it completed. */
	for (;;) {
		if (qmp_exec(&qmp, "query-migrate", NULL, -1, why, len))
			return -1;
		qmp_json_str(qmp.reply, "status", status, sizeof(status));
		if (!strcmp(status, "completed"))
			return got;
		if (!strcmp(status, "failed") || !strcmp(status, "cancelled")) {
			if (qmp_json_str(qmp.reply, "error-desc", desc, sizeof(desc)))
				snprintf(desc, sizeof(desc), "no reason given");
			snprintf(why, len, "QEMU's device-state save %s: %s", status, desc);
			return -1;
		}
		nap_ms(10);
	}
}

static const char *qemu_status(char *buf, size_t len)
{
	char why[200];

	if (qmp_exec(&qmp, "query-status", NULL, -1, why, sizeof(why)) ||
	    qmp_json_str(qmp.reply, "status", buf, len))
		snprintf(buf, len, "unknown");
	return buf;
}

int ctl_migrate_qemu(const struct ctl_opts *o)
{
	struct cg_throttle cg = { .guardian = -1, .pipe_fd = -1, .lock_fd = -1 };
	static struct ctl_disks disks;
	struct vmpf_region regs[VMPF_MAX_REGIONS];
	struct vmpf_source_attach a;
	struct vmpf_finish fin;
	struct vmpf_status st;
	struct qemu_map ram;
	struct vmpf_api api;
	char why[700], m[300], status[64];
	uint64_t t_stop = 0, t_pages = 0, t_disks = 0, t_state = 0, t_commit, t_sync = 0;
	uint64_t t_disk_line = 0;
	uint64_t target_ns = o->downtime_ms > 0 ? o->downtime_ms * 1000000ULL : 300000000ULL;
	int disks_ready = 1, warned = 0, ready_at_stop = 0;
	uint64_t sd_pause_ns = 0, sd_pause_max = 0, sd_syncs = 0, sd_pages = 0;
	unsigned long long synced_round = 0;
	int was_running, caps_set = 0;
	unsigned long long last_round = ~0ULL;
	unsigned int nr = 0, i;
	int dev = -1, vm_fd = -1, ret, paused = 0, rc = CTL_EXIT_FAIL;
	long state_len = 0;
	char *state = NULL;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (qmp_open(&qmp, o->qmp, why, sizeof(why)))
		return fail("%s", why);
	if (qmp_exec(&qmp, "query-kvm", NULL, -1, why, sizeof(why)))
		goto out;
	if (qmp_json_bool(qmp.reply, "enabled") != 1) {
		snprintf(why, sizeof(why), "QEMU (process %d) does not use KVM: vmpagefile migrates KVM guests (start QEMU with -accel kvm)",
			 qmp.pid);
		goto out;
	}
	was_running = !strcmp(qemu_status(status, sizeof(status)), "running");
	vm_fd = qemu_vm_fd(qmp.pid, why, sizeof(why));
	if (vm_fd < 0)
		goto out;
	dev = vmpf_open(vmpf_device_path());
	if (dev < 0) {
		vmpf_open_error(-dev, vmpf_module_loaded(), vmpf_device_path(), why, sizeof(why));
		goto out;
	}
	ret = vmpf_handshake(dev, VMPF_FEATURE_SOURCE | VMPF_FEATURE_EXTERNAL, &api);
	if (ret) {
		vmpf_ioctl_error(VMPF_IOC_API, -ret, why, sizeof(why));
		goto out;
	}
	if (qemu_regions(dev, vm_fd, qmp.pid, regs, &nr, &ram, why, sizeof(why)))
		goto out;
	if (!was_running && strcmp(status, "paused")) {
		snprintf(why, sizeof(why), "QEMU's guest is %s, not running or paused", status);
		goto out;
	}
	/* Before anything changes: where each disk would go, and whether it can. */
	if (o->disks_to && disks_plan(&qmp, o->disks_to, &disks, why, sizeof(why)))
		goto out;
	if (attach(dev, vm_fd, o, regs, nr, &a, why, sizeof(why)))
		goto out;
	if (!o->json) {
		printf("qemu       process %d, RAM backend %s, %lu MiB; %u regions\n", qmp.pid,
		       ram.name, (ram.end - ram.start) >> 20, nr);
		for (i = 0; i < nr; i++) {
			if (regs[i].slot == VMPF_SLOT_NONE)
				printf("region %-3u no memslot, %llu KiB at offset %#llx (copied paused)\n", i,
				       (unsigned long long)regs[i].size >> 10,
				       (unsigned long long)(regs[i].uaddr - ram.start));
			else
				printf("region %-3u memslot %llu, gpa %#llx, %llu KiB\n", i,
				       (unsigned long long)regs[i].slot, (unsigned long long)regs[i].gpa,
				       (unsigned long long)regs[i].size >> 10);
		}
		fflush(stdout);
	}
	if (!soft_dirty_works()) {
		snprintf(why, sizeof(why), "this kernel keeps no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY): QEMU's own writes to guest RAM could not be tracked");
		goto out;
	}
	if (o->cgroup_throttle &&
	    (cg_throttle_open(&cg, qmp.pid, why, sizeof(why)) ||
	     cg_throttle_guard(&cg, why, sizeof(why))))
		goto out;
	/* Soft-dirty from here on: cleared with QEMU's I/O drained. */
	if (was_running) {
		if (qmp_exec(&qmp, "stop", NULL, -1, why, sizeof(why)))
			goto out;
		paused = 1;
	}
	snprintf(m, sizeof(m), "/proc/%d/clear_refs", qmp.pid);
	ret = write_str(m, "4");
	if (ret) {
		snprintf(why, sizeof(why), "cannot clear QEMU's soft-dirty bits: %s", strerror(-ret));
		goto out;
	}
	ret = __vmpf_ioctl(dev, VMPF_IOC_START, NULL);
	if (ret) {
		vmpf_ioctl_error(VMPF_IOC_START, -ret, why, sizeof(why));
		goto out;
	}
	if (paused) {
		if (qmp_exec(&qmp, "cont", NULL, -1, why, sizeof(why)))
			goto out;
		paused = 0;
	}
	t_sync = now_ns();
	if (disks.n) {
		if (disks_start(&qmp, &disks, why, sizeof(why)))
			goto out;
		disks_ready = 0;
		if (!o->json)
			printf("disks      mirroring %u disk%s to %s (QEMU's drive-mirror)%s\n", disks.n,
			       disks.n == 1 ? "" : "s", disks.dir,
			       disks.skipped_ro ? "; read-only disks stay where they are" : "");
	} else if (o->disks_to && !o->json) {
		printf("disks      none to mirror: QEMU has no writable disk\n");
	}

	/* Pre-copy, until the session says switch over (or fails). */
	for (;;) {
		ret = get_status(dev, &st);
		if (ret) {
			vmpf_ioctl_error(VMPF_IOC_STATUS, -ret, why, sizeof(why));
			goto out;
		}
		if (st.phase != VMPF_PHASE_PRECOPY && st.phase != VMPF_PHASE_ATTACHED) {
			snprintf(why, sizeof(why), "pre-copy stopped: %s",
				 st.message[0] ? (char *)st.message : ctl_phase_name(st.phase));
			goto out;
		}
		if (st.round != last_round || o->json) {
			if (o->json)
				ctl_print_status(stdout, &st, NULL, 0, 1);
			else
				ctl_print_status_line(stdout, &st);
			fflush(stdout);
			last_round = st.round;
		}
		/* Say it once: rounds go on to the round limit, then the pause is long. */
		if ((st.flags & VMPF_STATUS_NOT_CONVERGING) && !warned && !o->cgroup_throttle) {
			fprintf(stderr, "vmpf-ctl: pre-copy is not converging: the guest dirties memory faster than the page file takes it (the session asks for a %llu %% throttle); --cgroup-throttle would slow QEMU down, or raise --downtime\n",
				(unsigned long long)st.throttle_pct);
			warned = 1;
		}
		if (o->cgroup_throttle) {
			unsigned int pct = (unsigned int)st.throttle_pct;

			if (pct != cg.pct && cg_throttle_apply(&cg, pct, why, sizeof(why)))
				goto out;
		}
		if (interrupted) {
			snprintf(why, sizeof(why), "interrupted: the migration was aborted");
			goto out;
		}
		if (disks.n) {
			ret = disks_poll(&qmp, &disks, why, sizeof(why));
			if (ret < 0)
				goto out;
			disks_ready = ret;
			disks_publish(&disks, getpid());
			if (now_ns() - t_disk_line > 2000000000ULL) {
				if (o->json) {
					printf("{\"disks\":");
					disks_print(stdout, &disks, 1);
					printf("}\n");
				} else {
					disks_print(stdout, &disks, 0);
				}
				fflush(stdout);
				t_disk_line = now_ns();
			}
		}
		/* Memory and disks: the switch-over waits for both. */
		if ((o->manual ? (st.flags & VMPF_STATUS_FINISH_REQUESTED) :
		     (st.flags & (VMPF_STATUS_READY | VMPF_STATUS_CONVERGED |
				  VMPF_STATUS_ROUND_LIMIT | VMPF_STATUS_FINISH_REQUESTED))) &&
		    disks_ready) {
			ready_at_stop = !!(st.flags & (VMPF_STATUS_READY | VMPF_STATUS_CONVERGED));
			break;
		}
		/* A new round, at most once a second: what QEMU wrote meanwhile. */
		if (st.round != synced_round && now_ns() - t_sync > 1000000000ULL && was_running) {
			uint64_t t = now_ns();
			long n;

			if (qmp_exec(&qmp, "stop", NULL, -1, why, sizeof(why)))
				goto out;
			paused = 1;
			n = soft_dirty_sync(dev, qmp.pid, regs, nr, 0, why, sizeof(why));
			if (n < 0)
				goto out;
			if (qmp_exec(&qmp, "cont", NULL, -1, why, sizeof(why)))
				goto out;
			paused = 0;
			t_sync = now_ns();
			sd_pause_ns += t_sync - t;
			sd_pause_max = t_sync - t > sd_pause_max ? t_sync - t : sd_pause_max;
			sd_syncs++;
			sd_pages += n;
			synced_round = st.round;
		}
		nap_ms(o->cgroup_throttle ? 200 : 500);
	}
	if (o->cgroup_throttle)
		cg_throttle_apply(&cg, 0, m, sizeof(m));

	/* The switch-over. */
	state = malloc(QEMU_STATE_MAX);
	if (!state) {
		snprintf(why, sizeof(why), "out of memory");
		goto out;
	}
	t_stop = now_ns();
	if (was_running) {
		if (qmp_exec(&qmp, "stop", NULL, -1, why, sizeof(why)))
			goto out;
		paused = 1;
	}
	if (still_one_backend(dev, vm_fd, qmp.pid, &ram, why, sizeof(why)))
		goto out;
	ret = soft_dirty_sync(dev, qmp.pid, regs, nr, 1, why, sizeof(why));
	if (ret < 0)
		goto out;
	sd_pages += ret;
	memset(&fin, 0, sizeof(fin));
	fin.flags = VMPF_FINISH_PAGES;
	ret = __vmpf_ioctl(dev, VMPF_IOC_FINISH, &fin);
	if (ret) {
		get_status(dev, &st);
		snprintf(why, sizeof(why), "the final round failed: %s",
			 st.message[0] ? (char *)st.message :
			 vmpf_ioctl_error(VMPF_IOC_FINISH, -ret, m, sizeof(m)));
		goto out;
	}
	t_pages = now_ns();
	/* The disks' last writes, the guest paused: the copies are this moment's. */
	if (disks.n && disks_finish(&qmp, &disks, 0, why, sizeof(why)))
		goto out;
	t_disks = now_ns();
	/* Only now, and put back if we fail: QEMU's own migrations need it off. */
	if (qmp_exec(&qmp, "migrate-set-capabilities", IGNORE_SHARED("true"), -1, why, sizeof(why)))
		goto out;
	caps_set = 1;
	state_len = qemu_save_state(state, QEMU_STATE_MAX, why, sizeof(why));
	if (state_len < 0)
		goto out;
	t_state = now_ns();
	memset(&fin, 0, sizeof(fin));
	fin.flags = VMPF_FINISH_STATE;
	fin.state = (uintptr_t)state;
	fin.state_len = state_len;
	ret = __vmpf_ioctl(dev, VMPF_IOC_FINISH, &fin);
	if (ret) {
		get_status(dev, &st);
		snprintf(why, sizeof(why), "the commit failed: %s",
			 st.message[0] ? (char *)st.message :
			 vmpf_ioctl_error(VMPF_IOC_FINISH, -ret, m, sizeof(m)));
		goto out;
	}
	t_commit = now_ns();
	get_status(dev, &st);
	if (o->json) {
		printf("{\"committed\":true,\"pagefile\":\"%s\",\"rounds\":%llu,\"final_pages\":%llu,\"state_bytes\":%ld,\"bytes_written\":%llu,\"switchover_ns\":%llu,\"final_round_ns\":%llu,\"disks_ns\":%llu,\"state_save_ns\":%llu,\"commit_ns\":%llu,\"qemu_written_pages\":%llu,\"sync_pauses\":%llu,\"sync_pause_ns\":%llu,\"sync_pause_max_ns\":%llu,\"disks\":",
		       o->path, (unsigned long long)fin.rounds, (unsigned long long)fin.final_pages,
		       state_len, (unsigned long long)fin.bytes_written,
		       (unsigned long long)(t_commit - t_stop), (unsigned long long)(t_pages - t_stop),
		       (unsigned long long)(t_disks - t_pages), (unsigned long long)(t_state - t_disks),
		       (unsigned long long)(t_commit - t_state),
		       (unsigned long long)sd_pages, (unsigned long long)sd_syncs,
		       (unsigned long long)sd_pause_ns, (unsigned long long)sd_pause_max);
		disks_print(stdout, &disks, 1);
		printf("}\n");
	} else {
		printf("committed  %s: %llu rounds, final round %llu pages, device state %ld bytes, %llu MiB written\n"
		       "switch-over %.1f ms (pause to commit): final round %.1f ms, disks %.1f ms, QEMU's device state %.1f ms, commit %.1f ms\n"
		       "soft-dirty %llu pages written outside the guest's page tables marked; %llu pauses to read them, %.1f ms in all, longest %.1f ms\n"
		       "qemu       process %d stays paused, as after its own migration: quit it once the destination runs\n",
		       o->path, (unsigned long long)fin.rounds, (unsigned long long)fin.final_pages,
		       state_len, (unsigned long long)fin.bytes_written >> 20,
		       (t_commit - t_stop) / 1e6, (t_pages - t_stop) / 1e6, (t_disks - t_pages) / 1e6,
		       (t_state - t_disks) / 1e6, (t_commit - t_state) / 1e6, (unsigned long long)sd_pages,
		       (unsigned long long)sd_syncs, sd_pause_ns / 1e6, sd_pause_max / 1e6, qmp.pid);
		if (disks.n) {
			disks_print(stdout, &disks, 0);
			printf("disks      the copies in %s are the VM's disks at its pause: start the destination's QEMU on them\n",
			       disks.dir);
		}
	}
	if (t_commit - t_stop > target_ns)
		fprintf(stderr, "vmpf-ctl: the switch-over took %.1f ms, over the %llu ms downtime target: %s\n",
			(t_commit - t_stop) / 1e6, (unsigned long long)(target_ns / 1000000),
			ready_at_stop ?
			"the estimate covers guest RAM and the commit, QEMU's device state comes on top" :
			"pre-copy switched over without reaching the target (not converging, or the round limit)");
	rc = CTL_EXIT_OK;
	paused = 0;
	caps_set = 0;
out:
	if (caps_set)
		qmp_exec(&qmp, "migrate-set-capabilities", IGNORE_SHARED("false"), -1, m, sizeof(m));
	/* The mirrors go, their copies too: QEMU never left its own disks. */
	if (rc != CTL_EXIT_OK && disks.n)
		disks_abort(&qmp, &disks);
	if (disks.n)
		disks_unpublish(getpid());
	if (rc != CTL_EXIT_OK && dev >= 0) {
		/* Nothing committed: the session goes, the memslots get their flags back. */
		__vmpf_ioctl(dev, VMPF_IOC_ABORT, NULL);
	}
	if (dev >= 0)
		close(dev);
	if (vm_fd >= 0)
		close(vm_fd);
	if (o->cgroup_throttle)
		cg_throttle_release(&cg);
	if (paused) {
		/* QEMU's own migration may have ended: cont runs the guest on. */
		if (qmp_exec(&qmp, "cont", NULL, -1, m, sizeof(m)))
			fprintf(stderr, "vmpf-ctl: could not resume the guest (%s): run 'cont' in QEMU's monitor\n",
				m);
		else
			fprintf(stderr, "vmpf-ctl: the guest runs on in QEMU (process %d), untouched\n",
				qmp.pid);
	}
	qmp_close(&qmp);
	free(state);
	if (rc != CTL_EXIT_OK)
		return fail("%s", why);
	return rc;
}

/* -object memory-backend-*,id=ID for the backend -machine memory-backend=ID names. */
static int find_backend(char *const *argv, int argc, int *obj, char *id, size_t len)
{
	int i;

	id[0] = 0;
	for (i = 0; i + 1 < argc; i++) {
		const char *p;

		if (strcmp(argv[i], "-machine") && strcmp(argv[i], "-M"))
			continue;
		p = strstr(argv[i + 1], "memory-backend=");
		if (p) {
			snprintf(id, len, "%s", p + strlen("memory-backend="));
			id[strcspn(id, ",")] = 0;
		}
	}
	if (!id[0])
		return -1;
	for (i = 0; i + 1 < argc; i++) {
		const char *p;
		size_t l = strlen(id);

		if (strcmp(argv[i], "-object") || strncmp(argv[i + 1], "memory-backend-", 15))
			continue;
		for (p = argv[i + 1]; (p = strstr(p, "id=")); p += 3)
			if ((p[-1] == ',') && !strncmp(p + 3, id, l) &&
			    (p[3 + l] == ',' || !p[3 + l])) {
				*obj = i + 1;
				return 0;
			}
	}
	return -2;
}

int ctl_restore_qemu(const struct ctl_opts *o)
{
	static struct vmpf_restore_region regs[VMPF_MAX_REGIONS];
	struct vmpf_restore_open ro = { 0 };
	struct vmpf_restore_info ri = { 0 };
	struct vmpf_restore_memfd memfd = { 0 };
	struct vmpf_restore_status rs;
	static struct ctl_disks disks;
	struct vmpf_api api;
	char why[700], id[64], path[128], backend[400], tmpdir[] = "/tmp/vmpf-ctl.XXXXXX";
	char sock[160], qmp_opt[200], status[64], desc[300];
	char **argv = NULL;
	uint64_t bytes, t0, t_run = 0;
	int dev = -1, target, ret, obj, p[2] = { -1, -1 }, i, n, rc = CTL_EXIT_FAIL, wst;
	pid_t child = -1;
	void *state = NULL;
	int complete = 0, ram_fd = -1, mirroring = 0, disks_failed = 0;
	uint64_t t_disk_line = 0;

	signal(SIGPIPE, SIG_IGN);
	ret = find_backend(o->qemu_argv, o->qemu_argc, &obj, id, sizeof(id));
	if (ret == -1)
		return fail("QEMU's command line must name its RAM backend: -machine memory-backend=ID -object memory-backend-memfd,id=ID,share=on,size=SIZE, as on the source");
	if (ret == -2)
		return fail("QEMU's command line names RAM backend '%s' but no -object memory-backend-...,id=%s",
			    id, id);

	dev = vmpf_open(vmpf_device_path());
	if (dev < 0)
		return fail("%s", vmpf_open_error(-dev, vmpf_module_loaded(), vmpf_device_path(),
						 why, sizeof(why)));
	ret = vmpf_handshake(dev, VMPF_FEATURE_RESTORE | VMPF_FEATURE_EXTERNAL, &api);
	if (ret) {
		vmpf_ioctl_error(VMPF_IOC_API, -ret, why, sizeof(why));
		goto out;
	}
	/* Read-write: the restore writes its ownership lease into the file. */
	target = open(o->qemu, (o->no_lease ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
	if (target < 0) {
		snprintf(why, sizeof(why), "cannot open the page file %s with O_DIRECT: %s", o->qemu,
			 strerror(errno));
		goto out;
	}
	t0 = now_ns();
	ro.target_fd = target;
	ro.flags = (o->no_prefetch ? VMPF_RESTORE_NO_PREFETCH : 0) |
		   (o->huge ? VMPF_RESTORE_HUGE : 0) |
		   (o->force ? VMPF_RESTORE_FORCE : 0) |
		   (o->no_lease ? VMPF_RESTORE_NO_LEASE : 0);
	ret = __vmpf_ioctl(dev, VMPF_IOC_RESTORE_OPEN, &ro);
	close(target);
	if (ret) {
		char m[300];

		snprintf(why, sizeof(why), "cannot restore from %s: %s", o->qemu,
			 vmpf_ioctl_error(VMPF_IOC_RESTORE_OPEN, -ret, m, sizeof(m)));
		goto out;
	}
	state = malloc(ro.state_len ? ro.state_len : 1);
	ri.regions = (uintptr_t)regs;
	ri.regions_cap = VMPF_MAX_REGIONS;
	ri.state = (uintptr_t)state;
	ri.state_cap = ro.state_len;
	ret = state ? __vmpf_ioctl(dev, VMPF_IOC_RESTORE_INFO, &ri) : -ENOMEM;
	if (ret) {
		vmpf_ioctl_error(VMPF_IOC_RESTORE_INFO, -ret, why, sizeof(why));
		goto out;
	}
	bytes = ro.total_pages * VMPF_PF_PAGE_SIZE;
	/*
	 * Guest memory's own descriptor, which QEMU reopens by path
	 * (/proc/self/fd/N: QEMU 7.2 opens mem-path by name): a tmpfs file, so
	 * that QEMU's discards (virtio-balloon, free page reporting) punch
	 * holes in it; fallocate() on a device node fails with ENODEV.
	 */
	ret = __vmpf_ioctl(dev, VMPF_IOC_RESTORE_MEMFD, &memfd);
	if (ret) {
		vmpf_ioctl_error(VMPF_IOC_RESTORE_MEMFD, -ret, why, sizeof(why));
		goto out;
	}
	if (dup2((int)memfd.fd, QEMU_RAM_FD) < 0) {
		snprintf(why, sizeof(why), "dup2: %s", strerror(errno));
		close((int)memfd.fd);
		goto out;
	}
	close((int)memfd.fd);
	ram_fd = QEMU_RAM_FD;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", QEMU_RAM_FD);

	/* QEMU's command line, with the RAM backend on guest memory and ours added. */
	if (!mkdtemp(tmpdir)) {
		snprintf(why, sizeof(why), "mkdtemp: %s", strerror(errno));
		goto out;
	}
	snprintf(sock, sizeof(sock), "%s/qmp.sock", tmpdir);
	snprintf(qmp_opt, sizeof(qmp_opt), "unix:%s,server=on,wait=off", sock);
	/* Huge pages: QEMU maps the backend 2 MiB aligned, so a PMD can map them. */
	snprintf(backend, sizeof(backend), "memory-backend-file,id=%s,share=on,mem-path=%s,size=%llu%s",
		 id, path, (unsigned long long)bytes, o->huge ? ",align=2M" : "");
	argv = calloc(o->qemu_argc + 8, sizeof(*argv));
	if (!argv) {
		snprintf(why, sizeof(why), "out of memory");
		goto out;
	}
	for (i = 0, n = 0; i < o->qemu_argc; i++) {
		if (!strcmp(o->qemu_argv[i], "-incoming") && i + 1 < o->qemu_argc) {
			i++;
			continue;
		}
		argv[n++] = i == obj ? backend : o->qemu_argv[i];
	}
	argv[n++] = "-incoming";
	argv[n++] = "defer";
	argv[n++] = "-qmp";
	argv[n++] = qmp_opt;
	argv[n] = NULL;
	if (!o->json) {
		printf("restore    %s: %llu MiB of guest RAM in %llu regions, device state %llu bytes\n",
		       o->qemu, (unsigned long long)bytes >> 20, (unsigned long long)ri.nr_regions,
		       (unsigned long long)ri.state_len);
		printf("qemu       RAM backend '%s' mapped from the session's guest memory (%s)\n",
		       id, path);
		fflush(stdout);
	}

	if (pipe(p)) {
		snprintf(why, sizeof(why), "pipe: %s", strerror(errno));
		goto out;
	}
	child = fork();
	if (child < 0) {
		snprintf(why, sizeof(why), "fork: %s", strerror(errno));
		goto out;
	}
	if (!child) {
		close(dev);
		close(p[1]);
		if (dup2(p[0], QEMU_STATE_FD) < 0)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "vmpf-ctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[0]);
	p[0] = -1;
	signal(SIGINT, SIG_IGN);	/* QEMU gets it; we wait for QEMU */

	if (qmp_open_wait(&qmp, sock, 60000, why, sizeof(why)))
		goto out_kill;
	if (qmp_exec(&qmp, "migrate-set-capabilities", IGNORE_SHARED("true"), -1, why,
		     sizeof(why)))
		goto out_kill;
	snprintf(desc, sizeof(desc), "{\"uri\": \"fd:%d\"}", QEMU_STATE_FD);
	if (qmp_exec(&qmp, "migrate-incoming", desc, -1, why, sizeof(why)))
		goto out_kill;
	for (size_t off = 0; off < ri.state_len;) {
		ssize_t w = write(p[1], (char *)state + off, ri.state_len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(why, sizeof(why), "QEMU did not take its device state: %s",
				 strerror(errno));
			goto out_kill;
		}
		off += w;
	}
	close(p[1]);
	p[1] = -1;
	for (;;) {
		if (qmp_exec(&qmp, "query-migrate", NULL, -1, why, sizeof(why)))
			goto out_kill;
		qmp_json_str(qmp.reply, "status", status, sizeof(status));
		if (!strcmp(status, "completed"))
			break;
		if (!strcmp(status, "failed")) {
			if (qmp_json_str(qmp.reply, "error-desc", desc, sizeof(desc)))
				snprintf(desc, sizeof(desc), "no reason given (see QEMU's messages)");
			snprintf(why, sizeof(why), "QEMU could not load the device state: %s", desc);
			goto out_kill;
		}
		nap_ms(10);
	}
	t_run = now_ns();
	memset(&rs, 0, sizeof(rs));
	__vmpf_ioctl(dev, VMPF_IOC_RESTORE_STATUS, &rs);
	if (o->json)
		printf("{\"resumed\":true,\"qemu_pid\":%d,\"resume_ns\":%llu,\"state_bytes\":%llu,\"resident\":%llu,\"total_pages\":%llu}\n",
		       child, (unsigned long long)(t_run - t0), (unsigned long long)ri.state_len,
		       (unsigned long long)rs.resident, (unsigned long long)rs.total_pages);
	else
		printf("resumed    QEMU process %d %s %.1f ms after the open, %llu of %llu pages in memory\n",
		       child, strcmp(qemu_status(status, sizeof(status)), "running") ?
		       "loaded its device state (paused: -S)" : "runs the guest",
		       (t_run - t0) / 1e6, (unsigned long long)rs.resident,
		       (unsigned long long)rs.total_pages);
	fflush(stdout);
	/* The disks from the share to local storage, while the guest runs. */
	if (o->disks_to) {
		if (disks_plan(&qmp, o->disks_to, &disks, why, sizeof(why)) ||
		    disks_start(&qmp, &disks, why, sizeof(why))) {
			disks_abort(&qmp, &disks);
			fprintf(stderr, "vmpf-ctl: the disks stay where they are: %s\n", why);
			disks_failed = 1;
		} else if (disks.n) {
			mirroring = 1;
			if (!o->json)
				printf("disks      mirroring %u disk%s to %s; QEMU moves onto the copies when they are in sync\n",
				       disks.n, disks.n == 1 ? "" : "s", disks.dir);
		}
		fflush(stdout);
	}
	if (!mirroring)
		qmp_close(&qmp);

	/* Until QEMU exits: say when all of guest RAM has arrived. */
	for (;;) {
		pid_t w = waitpid(child, &wst, WNOHANG);

		if (mirroring && w != child) {
			ret = disks_poll(&qmp, &disks, why, sizeof(why));
			if (ret > 0)
				ret = disks_finish(&qmp, &disks, 1, why, sizeof(why)) ? -1 : 2;
			if (ret < 0) {
				disks_abort(&qmp, &disks);
				fprintf(stderr, "vmpf-ctl: the disks stay on the share: %s\n", why);
				disks_failed = 1;
			}
			/* QEMU runs on the local copies: the share keeps only the page file. */
			for (i = 0; ret && i < (int)disks.n; i++) {
				if (!disks.d[i].moved)
					continue;
				if (ret < 0)
					fprintf(stderr, "vmpf-ctl: disk %s moved to %s all the same\n",
						disks.d[i].device, disks.d[i].target);
				if (unlink(disks.d[i].src))
					fprintf(stderr, "vmpf-ctl: could not remove %s: %s\n",
						disks.d[i].src, strerror(errno));
			}
			if (ret == 2) {
				if (o->json) {
					printf("{\"disks_moved\":");
					disks_print(stdout, &disks, 1);
					printf("}\n");
				} else {
					disks_print(stdout, &disks, 0);
					printf("disks      QEMU runs on the copies in %s; the share's images are removed\n",
					       disks.dir);
				}
			} else if (!ret && !o->json && now_ns() - t_disk_line > 2000000000ULL) {
				disks_print(stdout, &disks, 0);
				t_disk_line = now_ns();
			}
			if (ret) {
				mirroring = 0;
				qmp_close(&qmp);
			}
			fflush(stdout);
		}

		memset(&rs, 0, sizeof(rs));
		if (!__vmpf_ioctl(dev, VMPF_IOC_RESTORE_STATUS, &rs) && !complete &&
		    rs.phase == VMPF_RESTORE_COMPLETE) {
			complete = 1;
			if (!o->json)
				printf("complete   all %llu pages in memory %.1f ms after the open: %llu on demand, %llu prefetched, %llu zero, %llu bad\n",
				       (unsigned long long)rs.total_pages, rs.complete_ns / 1e6,
				       (unsigned long long)rs.demand_pages,
				       (unsigned long long)rs.prefetched,
				       (unsigned long long)rs.zero_pages,
				       (unsigned long long)rs.bad_pages);
			fflush(stdout);
		}
		if (w == child)
			break;
		nap_ms(200);
	}
	child = -1;
	/* QEMU ended before its disks moved: the local copies are partial. */
	for (i = 0; mirroring && i < (int)disks.n; i++)
		if (disks.d[i].created && !disks.d[i].moved && !disks.d[i].pivoting)
			unlink(disks.d[i].target);
	ctl_print_restore_status(stdout, &rs, o->json);
	rc = WIFEXITED(wst) ? WEXITSTATUS(wst) : CTL_EXIT_FAIL;
	if (rc)
		snprintf(why, sizeof(why), "QEMU %s %d", WIFEXITED(wst) ? "exited with status" :
			 "was killed by signal", WIFEXITED(wst) ? WEXITSTATUS(wst) : WTERMSIG(wst));
	else if (disks_failed || mirroring) {
		snprintf(why, sizeof(why), "the guest ran, but its disks did not move to %s (see above)",
			 o->disks_to);
		rc = CTL_EXIT_FAIL;
	}
	goto out;

out_kill:
	if (child > 0) {
		kill(child, SIGTERM);
		waitpid(child, &wst, 0);
		child = -1;
	}
out:
	qmp_close(&qmp);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (dev >= 0)
		close(dev);
	if (ram_fd >= 0)
		close(ram_fd);
	if (tmpdir[strlen(tmpdir) - 1] != 'X') {
		unlink(sock);
		rmdir(tmpdir);
	}
	free(argv);
	free(state);
	if (rc != CTL_EXIT_OK)
		return fail("%s", why);
	return rc;
}
