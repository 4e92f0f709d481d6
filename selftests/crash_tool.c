// SPDX-License-Identifier: GPL-2.0
/*
 * crash_tool: what crash_test.sh needs to check the page file's crash
 * consistency (docs/hardening.md), in the test machine.
 *
 *   crash_tool replay LOG TARGET --run CMD [--points N] [--seed S]
 *	Replays a dm-log-writes log (the kernel's
 *	Documentation/admin-guide/device-mapper/log-writes.rst: a superblock,
 *	then per write an entry sector and the data) onto TARGET, which holds
 *	what the logged device held when logging began.  TARGET is brought to
 *	the state of every flush point in turn (every write logged before a
 *	flush is on the media), and of N random points between two flushes
 *	(the writes logged after the last flush partly applied: a random
 *	subset, some torn at a sector boundary; and in an interval of a few
 *	writes, such as the superblock's and the commit record's, every
 *	state: each write absent, whole, or torn keeping any prefix or suffix
 *	of its sectors), and CMD runs each time (sh -c,
 *	with VMPF_POINT describing the point).  CMD's first output word
 *	classifies the point; "bad..." is a failure.  Prints one line per
 *	point ("POINT => CMD's line") and the counts per class.  Exit 0 if no point was bad.
 *
 *   crash_tool lazycheck PAGEFILE SUMS [--hold]
 *	Opens PAGEFILE as a lazy restore (VMPF_IOC_RESTORE_OPEN, no prefetch),
 *	maps it and reads every page through the kernel's fault path (a page
 *	it refuses is a SIGBUS, caught), comparing each with SUMS (vmpf-vm
 *	--checksums: "gpa checksum" per page).  Prints "refused ERRNO: ..."
 *	when the open fails, else "opened generation G: P pages, refused R
 *	[first], mismatched M [first]".  --hold: once mapped, print "mapped"
 *	and read only after a SIGUSR1 (the caller breaks the storage first).
 *	Exit 0; 2 when it could not check.
 *
 *   crash_tool corrupt PAGEFILE SUMS --count N [--seed S]
 *	N times: one byte of the committed PAGEFILE changed (XOR with a random
 *	non-zero value) at a random offset in one of its areas, taken in turn
 *	(superblock, commit record, page table, device state, data pages,
 *	bytes no reader uses); then `vmpf-ctl verify` and a lazy restore as
 *	above must both catch it: the file refused (superblock, commit, table,
 *	state), exactly the changed page refused and every other page equal to
 *	SUMS (a data page), or nothing changed in the image (unused bytes:
 *	padding of the superblock and commit blocks, the device-state area
 *	after its end, the slots of zero pages).  The byte is restored each
 *	time.  Prints the counts by area.  Exit 0 if every one was as expected.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <endian.h>
#include <linux/fs.h>

#include "pagefile.h"
#include "vm.h"
#include "vmpf.h"

#define PAGE 4096ULL

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "crash_tool: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* xorshift64*: reproducible from --seed. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545f4914f6cdd1dULL;
}

/* splitmix64 of the seed: never the all-zero state xorshift stays in. */
static void rnd_seed(uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	rnd_state = (z ^ (z >> 31)) | 1;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void xpread(int fd, void *buf, size_t len, off_t off, const char *what)
{
	ssize_t r = pread(fd, buf, len, off);

	if (r != (ssize_t)len)
		die("reading %zu bytes at %lld of %s: %s", len, (long long)off, what,
		    r < 0 ? strerror(errno) : "short read");
}

static void xpwrite(int fd, const void *buf, size_t len, off_t off, const char *what)
{
	ssize_t r = pwrite(fd, buf, len, off);

	if (r != (ssize_t)len)
		die("writing %zu bytes at %lld of %s: %s", len, (long long)off, what,
		    r < 0 ? strerror(errno) : "short write");
}

/* ---- replay ------------------------------------------------------------ */

/* The log's format (drivers/md/dm-log-writes.c): little-endian. */
#define LW_MAGIC	0x6a736677736872ULL
#define LW_FLUSH	(1 << 0)
#define LW_FUA		(1 << 1)
#define LW_DISCARD	(1 << 2)
#define LW_MARK		(1 << 3)
#define LW_METADATA	(1 << 4)

struct lw_super {
	uint64_t magic, version, nr_entries;
	uint32_t sectorsize;
} __attribute__((packed));

struct lw_entry {
	uint64_t sector, nr_sectors, flags, data_len;
};

struct entry {
	uint64_t sector, nr, flags;	/* sector and nr in log sectors */
	uint64_t log_off;		/* where its data is in the log */
};

struct undo {
	off_t off;
	size_t len;
	void *old;
};

static int log_fd, tgt_fd;
static uint32_t ssize;
static struct entry *ents;
static uint64_t nents;
static const char *run_cmd;
static char *databuf;
static size_t databuf_len;

static void load_log(const char *path)
{
	struct lw_super sb;
	struct lw_entry e;
	uint64_t i, off;

	log_fd = open(path, O_RDONLY);
	if (log_fd < 0)
		die("cannot open %s: %s", path, strerror(errno));
	/* What the kernel wrote around the page cache: read it afresh. */
	ioctl(log_fd, BLKFLSBUF, 0);
	xpread(log_fd, &sb, sizeof(sb), 0, path);
	if (le64toh(sb.magic) != LW_MAGIC || le64toh(sb.version) != 1)
		die("%s is not a dm-log-writes log (magic %#" PRIx64 ")", path,
		    (uint64_t)le64toh(sb.magic));
	ssize = le32toh(sb.sectorsize);
	nents = le64toh(sb.nr_entries);
	if (ssize < 512 || ssize > 65536 || (ssize & (ssize - 1)))
		die("%s: sector size %u", path, ssize);
	ents = calloc(nents ? nents : 1, sizeof(*ents));
	if (!ents)
		die("out of memory");
	off = ssize;
	for (i = 0; i < nents; i++) {
		xpread(log_fd, &e, sizeof(e), off, path);
		ents[i].sector = le64toh(e.sector);
		ents[i].nr = le64toh(e.nr_sectors);
		ents[i].flags = le64toh(e.flags);
		if (ents[i].flags & LW_METADATA)
			die("%s: entry %" PRIu64 " has inline metadata (not written by a page file's I/O)",
			    path, i);
		off += ssize;
		ents[i].log_off = off;
		if (!(ents[i].flags & LW_DISCARD))
			off += ents[i].nr * ssize;
	}
}

static void *entry_data(const struct entry *e, uint64_t nr)
{
	size_t len = nr * ssize;

	if (len > databuf_len) {
		free(databuf);
		databuf = malloc(len);
		if (!databuf)
			die("out of memory");
		databuf_len = len;
	}
	if (e->flags & LW_DISCARD)
		memset(databuf, 0, len);	/* brd, like most, reads discarded blocks as zero */
	else
		xpread(log_fd, databuf, len, e->log_off, "the log");
	return databuf;
}

/*
 * The model: a write logged before a FLUSH entry is on the media once the
 * flush is; one logged after it may or may not be, in part or whole.  A
 * flush that carries data (REQ_PREFLUSH with a payload) is treated as if
 * its data were durable with it; the module never issues one (vfs_fsync()
 * sends an empty flush), and FUA writes, which it does not issue either,
 * are treated as any other write of their interval.
 */

/*
 * Apply sectors @first .. @first + @nr - 1 of entry @e (a torn write keeps
 * a prefix or a suffix); with @u, keep what was there.
 */
static void apply_part(const struct entry *e, uint64_t first, uint64_t nr, struct undo *u)
{
	off_t off = (e->sector + first) * ssize;
	size_t len = nr * ssize;
	char *data;

	if (!len)
		return;
	if (u) {
		u->off = off;
		u->len = len;
		u->old = malloc(len);
		if (!u->old)
			die("out of memory");
		xpread(tgt_fd, u->old, len, off, "the target");
	}
	data = entry_data(e, first + nr);
	xpwrite(tgt_fd, data + first * ssize, len, off, "the target");
}

static void apply(const struct entry *e, uint64_t nr, struct undo *u)
{
	apply_part(e, 0, nr, u);
}

static void undo_all(struct undo *u, uint64_t nu)
{
	while (nu--) {
		xpwrite(tgt_fd, u[nu].old, u[nu].len, u[nu].off, "the target");
		free(u[nu].old);
	}
}

struct classes {
	char name[16][24];
	unsigned int count[16];
	unsigned int n, bad, points;
};

static void classify(struct classes *c, const char *what)
{
	char line[512] = "", word[24] = "";
	unsigned int i;
	FILE *p;

	if (fsync(tgt_fd))
		die("fsync of the target: %s", strerror(errno));
	setenv("VMPF_POINT", what, 1);
	p = popen(run_cmd, "r");
	if (!p)
		die("cannot run %s", run_cmd);
	if (!fgets(line, sizeof(line), p))
		snprintf(line, sizeof(line), "bad: the check printed nothing\n");
	while (fgetc(p) != EOF)
		;
	pclose(p);
	line[strcspn(line, "\n")] = 0;
	printf("%s => %s\n", what, line);
	fflush(stdout);
	if (sscanf(line, "%23[^ :]", word) != 1 || !word[0])
		snprintf(word, sizeof(word), "bad");
	c->points++;
	if (!strncmp(word, "bad", 3))
		c->bad++;
	for (i = 0; i < c->n; i++)
		if (!strcmp(c->name[i], word))
			break;
	if (i == c->n) {
		if (c->n == 16)
			return;
		snprintf(c->name[c->n++], sizeof(c->name[0]), "%s", word);
	}
	c->count[i]++;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * A random point in the interval after flush @k (or before the first
 * flush, k = -1): the writes logged from @from up to @to (exclusive, the
 * next flush or the end), each applied or not, some only in part; then
 * CMD; then everything undone, newest first.
 */
static void random_point(struct classes *c, uint64_t from, uint64_t to, const char *after,
			 unsigned int id)
{
	struct undo *u = calloc(to - from + 1, sizeof(*u));
	uint64_t i, applied = 0, torn = 0, nu = 0;
	char what[160];

	if (!u)
		die("out of memory");
	for (i = from; i < to; i++) {
		const struct entry *e = &ents[i];
		uint64_t nr = e->nr;

		if ((e->flags & LW_MARK) || !nr || rnd_below(2))
			continue;
		if (nr > 1 && !rnd_below(4)) {
			nr = 1 + rnd_below(nr - 1);
			torn++;
		}
		apply(e, nr, &u[nu++]);
		applied++;
	}
	snprintf(what, sizeof(what), "random %u %s: %" PRIu64 " of writes %" PRIu64 "-%" PRIu64
		 " applied (%" PRIu64 " torn)", id, after, applied, from, to, torn);
	classify(c, what);
	undo_all(u, nu);
	free(u);
}

/*
 * Every state a short interval can leave (the superblock's and the commit
 * record's, which matter most): each write not applied, applied, or torn
 * anywhere at a sector boundary keeping its first or its last sectors.
 * Only for intervals with at most @max such states; returns how many.
 */
static unsigned int exhaustive(struct classes *c, uint64_t from, uint64_t to, const char *after,
			       uint64_t max)
{
	uint64_t idx[8], ways[8], i, n = 0, total = 1, state, rest;
	unsigned int points = 0;
	char what[200];
	int len;

	for (i = from; i < to; i++) {
		if ((ents[i].flags & LW_MARK) || !ents[i].nr)
			continue;
		if (n == 8)
			return 0;
		idx[n] = i;
		/* none, whole, prefix of 1..nr-1, suffix of 1..nr-1 */
		ways[n] = 2 + 2 * (ents[i].nr - 1);
		if (total > max / ways[n])
			return 0;
		total *= ways[n++];
	}
	for (state = 1; state < total; state++) {	/* 0: nothing applied, the flush state */
		struct undo u[8];
		uint64_t nu = 0;

		rest = state;
		len = snprintf(what, sizeof(what), "every state %s:", after);
		for (i = 0; i < n; i++) {
			const struct entry *e = &ents[idx[i]];
			uint64_t w = rest % ways[i], nr = e->nr;

			rest /= ways[i];
			if (!w)
				continue;
			if (w == 1) {
				apply(e, nr, &u[nu++]);
				len += snprintf(what + len, sizeof(what) - len, " write %" PRIu64, idx[i]);
			} else if (w <= nr) {
				apply_part(e, 0, w - 1, &u[nu++]);
				len += snprintf(what + len, sizeof(what) - len,
						" write %" PRIu64 " sectors 0-%" PRIu64, idx[i], w - 2);
			} else {
				uint64_t k = w - nr;	/* the last k sectors */

				apply_part(e, nr - k, k, &u[nu++]);
				len += snprintf(what + len, sizeof(what) - len,
						" write %" PRIu64 " sectors %" PRIu64 "-%" PRIu64, idx[i],
						nr - k, nr - 1);
			}
			if (len >= (int)sizeof(what))
				len = sizeof(what) - 1;
		}
		classify(c, what);
		undo_all(u, nu);
		points++;
	}
	return points;
}

static int cmd_replay(int argc, char **argv)
{
	uint64_t *flushes, nflush = 0, *pick, i, k, next = 0, npoints = 0, p, nex = 0;
	struct classes c = { 0 };
	char what[160], after[64];
	int a;

	if (argc < 4)
		die("usage: crash_tool replay LOG TARGET --run CMD [--points N] [--seed S]");
	for (a = 4; a < argc; a++) {
		if (!strcmp(argv[a], "--run") && a + 1 < argc)
			run_cmd = argv[++a];
		else if (!strcmp(argv[a], "--points") && a + 1 < argc)
			npoints = strtoull(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--seed") && a + 1 < argc)
			rnd_seed(strtoull(argv[++a], NULL, 10));
		else
			die("unknown argument %s", argv[a]);
	}
	if (!run_cmd)
		die("replay needs --run CMD");
	load_log(argv[2]);
	tgt_fd = open(argv[3], O_RDWR);
	if (tgt_fd < 0)
		die("cannot open %s: %s", argv[3], strerror(errno));

	flushes = calloc(nents + 1, sizeof(*flushes));
	pick = calloc(npoints + 1, sizeof(*pick));
	if (!flushes || !pick)
		die("out of memory");
	for (i = 0; i < nents; i++)
		if (ents[i].flags & LW_FLUSH)
			flushes[nflush++] = i;
	printf("log: %" PRIu64 " writes, %" PRIu64 " flushes, sector %u bytes\n", nents, nflush,
	       ssize);
	/*
	 * Random points: an interval each (0 = before the first flush).  One
	 * in every interval first; then intervals in proportion to the writes
	 * they hold (a pre-copy's interval holds most of them, and the most
	 * ways to be cut short).
	 */
	for (p = 0; p < npoints; p++) {
		uint64_t w = rnd_below(nents + 1);

		if (p <= nflush) {
			pick[p] = p;
			continue;
		}
		for (k = 0; k < nflush && flushes[k] < w; k++)
			;
		pick[p] = k;
	}
	qsort(pick, npoints, sizeof(*pick), cmp_u64);

	classify(&c, "start: nothing of the log applied");
	p = 0;
	for (k = 0; k <= nflush; k++) {
		uint64_t end = k < nflush ? flushes[k] : nents;

		/* The interval before flush k: random points, then the flush. */
		if (k)
			snprintf(after, sizeof(after), "after flush %" PRIu64, k);
		else
			snprintf(after, sizeof(after), "before the first flush");
		nex += exhaustive(&c, next, end, after, 64);
		for (; p < npoints && pick[p] == k; p++)
			random_point(&c, next, end, after, (unsigned int)p + 1);
		for (; next < end; next++)
			if (!(ents[next].flags & LW_MARK))
				apply(&ents[next], ents[next].nr, NULL);
		if (k == nflush)
			break;
		apply(&ents[next], ents[next].nr, NULL);	/* a flush may carry data */
		next++;
		snprintf(what, sizeof(what), "flush %" PRIu64 " of %" PRIu64 " (write %" PRIu64 ")",
			 k + 1, nflush, end);
		classify(&c, what);
	}
	classify(&c, "end: the whole log applied");

	printf("replay: %u points (%" PRIu64 " flush points, %" PRIu64
	       " states of short intervals, %" PRIu64 " random):", c.points, nflush, nex, npoints);
	for (i = 0; i < c.n; i++)
		printf(" %s %u%s", c.name[i], c.count[i], i + 1 < c.n ? "," : "");
	printf("; bad %u\n", c.bad);
	return c.bad ? 1 : 0;
}

/* ---- lazy restore check -------------------------------------------------- */

static sigjmp_buf bus_jmp;

static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
}

struct sums {
	uint64_t *gpa, *sum;
	size_t n;
};

static void load_sums(struct sums *s, const char *path)
{
	FILE *f = fopen(path, "r");
	uint64_t g, v;
	size_t cap = 0;

	if (!f)
		die("cannot open %s: %s", path, strerror(errno));
	memset(s, 0, sizeof(*s));
	while (fscanf(f, "%" SCNx64 " %" SCNx64, &g, &v) == 2) {
		if (s->n == cap) {
			cap = cap ? 2 * cap : 4096;
			s->gpa = realloc(s->gpa, cap * sizeof(*s->gpa));
			s->sum = realloc(s->sum, cap * sizeof(*s->sum));
			if (!s->gpa || !s->sum)
				die("out of memory");
		}
		s->gpa[s->n] = g;
		s->sum[s->n++] = v;
	}
	fclose(f);
}

/* The expected checksum of the page at @gpa, or 0 with *found = 0. */
static uint64_t sum_of(const struct sums *s, uint64_t gpa, int *found)
{
	size_t lo = 0, hi = s->n;

	/* vmpf-vm writes them in slot order; search, sorted or not. */
	if (hi && s->gpa[0] <= gpa && s->gpa[hi - 1] >= gpa) {
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (s->gpa[mid] < gpa)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < s->n && s->gpa[lo] == gpa) {
			*found = 1;
			return s->sum[lo];
		}
	}
	for (lo = 0; lo < s->n; lo++)
		if (s->gpa[lo] == gpa) {
			*found = 1;
			return s->sum[lo];
		}
	*found = 0;
	return 0;
}

struct lazy {
	int opened, err, disagree;
	char why[320];
	uint64_t generation, pages, refused, first_refused, mismatched, first_mismatch;
	uint64_t unlisted;
};

/* A lazy restore of @path, every page read through a fault. */
static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void lazy_check(const char *path, const struct sums *s, struct lazy *r, int hold)
{
	struct vmpf_restore_open ro = { 0 };
	struct vmpf_api api;
	struct sigaction sa = { 0 }, old;
	uint64_t i, j, *map_gpa = NULL;
	int dev, fd, found;
	uint8_t *mem;
	struct pf pf;

	memset(r, 0, sizeof(*r));
	r->first_refused = r->first_mismatch = ~0ULL;
	dev = vmpf_open(vmpf_device_path());
	if (dev < 0)
		die("cannot open %s: %s", vmpf_device_path(), strerror(-dev));
	if (vmpf_handshake(dev, VMPF_FEATURE_RESTORE, &api))
		die("handshake failed");
	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		die("cannot open %s: %s", path, strerror(errno));
	ro.target_fd = fd;
	ro.flags = VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_NO_LEASE;
	r->err = -__vmpf_ioctl(dev, VMPF_IOC_RESTORE_OPEN, &ro);
	close(fd);
	if (r->err) {
		vmpf_ioctl_error(VMPF_IOC_RESTORE_OPEN, r->err, r->why, sizeof(r->why));
		close(dev);
		return;
	}
	r->opened = 1;
	r->generation = ro.generation;
	r->pages = ro.total_pages;

	/*
	 * Page i of the mapping is the page of the region that holds it: the
	 * regions as userspace reads them, which must be the kernel's image.
	 */
	if (pf_open(&pf, path) || le64toh(pf.sb.generation) != r->generation ||
	    le64toh(pf.sb.total_pages) != r->pages) {
		r->disagree = 1;
		snprintf(r->why, sizeof(r->why), "the kernel opened generation %" PRIu64
			 " (%" PRIu64 " pages), userspace reads %s", r->generation, r->pages,
			 pf.why[0] ? pf.why : "another superblock");
		if (pf.fd > 0)
			pf_close(&pf);
		close(dev);
		return;
	}
	map_gpa = calloc(r->pages, sizeof(*map_gpa));
	if (!map_gpa)
		die("out of memory");
	for (i = 0; i < le32toh(pf.sb.nr_regions); i++) {
		const struct vmpf_pf_region *rg = &pf.sb.regions[i];

		for (j = 0; j < le64toh(rg->pages); j++)
			map_gpa[le64toh(rg->first_page) + j] =
				le32toh(rg->slot) == VMPF_PF_SLOT_NONE ? ~0ULL :
				le64toh(rg->gpa) + j * PAGE;
	}
	pf_close(&pf);

	mem = mmap(NULL, r->pages * PAGE, PROT_READ, MAP_SHARED, dev, 0);
	if (mem == MAP_FAILED)
		die("mmap of the restore session: %s", strerror(errno));
	if (hold) {
		/* The caller breaks the storage now, then says go (SIGUSR1). */
		printf("mapped\n");
		fflush(stdout);
		while (!go)
			usleep(10000);
	}
	sa.sa_handler = on_bus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	for (i = 0; i < r->pages; i++) {
		static uint64_t copy[PAGE / 8];
		volatile uint64_t idx = i;
		uint64_t want;

		if (sigsetjmp(bus_jmp, 1)) {
			if (!r->refused++)
				r->first_refused = idx;
			continue;
		}
		memcpy(copy, mem + idx * PAGE, PAGE);
		if (map_gpa[i] == ~0ULL)
			continue;
		want = sum_of(s, map_gpa[i], &found);
		if (!found) {
			r->unlisted++;
			continue;
		}
		if (vm_page_checksum((const uint8_t *)copy) != want && !r->mismatched++)
			r->first_mismatch = i;
	}
	sigaction(SIGBUS, &old, NULL);
	munmap(mem, r->pages * PAGE);
	free(map_gpa);
	close(dev);
}

static void print_lazy(const struct lazy *r)
{
	if (r->disagree) {
		printf("bad: readers disagree: %s\n", r->why);
		return;
	}
	if (!r->opened) {
		printf("refused %s: %s\n", strerror(r->err), r->why);
		return;
	}
	printf("opened generation %" PRIu64 ": %" PRIu64 " pages, refused %" PRIu64, r->generation,
	       r->pages, r->refused);
	if (r->refused)
		printf(" (first %" PRIu64 ")", r->first_refused);
	printf(", mismatched %" PRIu64, r->mismatched);
	if (r->mismatched)
		printf(" (first %" PRIu64 ")", r->first_mismatch);
	if (r->unlisted)
		printf(", %" PRIu64 " not in the checksums", r->unlisted);
	printf("\n");
}

static int cmd_lazycheck(int argc, char **argv)
{
	struct lazy r;
	struct sums s;
	int hold = argc == 5 && !strcmp(argv[4], "--hold");

	if (argc != 4 && !hold)
		die("usage: crash_tool lazycheck PAGEFILE SUMS [--hold]");
	if (hold)
		signal(SIGUSR1, on_usr1);
	load_sums(&s, argv[3]);
	lazy_check(argv[2], &s, &r, hold);
	print_lazy(&r);
	return 0;
}

/* ---- corruption ----------------------------------------------------------- */

/* The byte under test, put back if anything ends the program meanwhile. */
static int corrupt_fd = -1;
static off_t corrupt_off;
static uint8_t corrupt_old;

static void corrupt_restore(void)
{
	if (corrupt_fd >= 0 && pwrite(corrupt_fd, &corrupt_old, 1, corrupt_off) == 1)
		fsync(corrupt_fd);
}

enum area { A_SUPER, A_COMMIT, A_TABLE, A_STATE, A_DATA, A_UNUSED, A_NR };
static const char *const area_name[A_NR] = {
	"superblock", "commit", "table", "state", "data", "unused",
};

/* vmpf-ctl verify PAGEFILE: its exit status, its output's last line in @out. */
static int run_verify(const char *path, char *out, size_t len)
{
	char cmd[512], line[512];
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "vmpf-ctl verify '%s' 2>&1", path);
	p = popen(cmd, "r");
	if (!p)
		die("cannot run vmpf-ctl");
	out[0] = 0;
	while (fgets(line, sizeof(line), p))
		if (line[0] != '\n')
			snprintf(out, len, "%s", line);
	out[strcspn(out, "\n")] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static int cmd_corrupt(int argc, char **argv)
{
	unsigned int caught[A_NR] = { 0 }, harmless[A_NR] = { 0 }, bad[A_NR] = { 0 };
	uint64_t count = 0, n, data_pages = 0, zero_pages = 0, *datai, *zeroi;
	uint64_t table_off, state_off, state_max, state_len, data_off, total;
	const char *path = argv[2];
	unsigned int failures = 0;
	struct sums s;
	struct pf pf;
	int a, fd;

	if (argc < 4)
		die("usage: crash_tool corrupt PAGEFILE SUMS --count N [--seed S]");
	for (a = 4; a < argc; a++) {
		if (!strcmp(argv[a], "--count") && a + 1 < argc)
			count = strtoull(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--seed") && a + 1 < argc)
			rnd_seed(strtoull(argv[++a], NULL, 10));
		else
			die("unknown argument %s", argv[a]);
	}
	load_sums(&s, argv[3]);
	if (pf_open(&pf, path) || !pf.committed || pf_load_table(&pf))
		die("%s is not a committed page file: %s", path, pf.why);
	total = le64toh(pf.sb.total_pages);
	table_off = le64toh(pf.sb.table_off);
	state_off = le64toh(pf.sb.state_off);
	state_max = le64toh(pf.sb.state_max);
	state_len = le64toh(pf.commit.state_len);
	data_off = le64toh(pf.sb.data_off);
	datai = calloc(total, sizeof(*datai));
	zeroi = calloc(total, sizeof(*zeroi));
	if (!datai || !zeroi)
		die("out of memory");
	for (n = 0; n < total; n++) {
		if (pf.table[n].state == VMPF_PAGE_DATA)
			datai[data_pages++] = n;
		else
			zeroi[zero_pages++] = n;
	}
	pf_close(&pf);
	fd = open(path, O_RDWR);
	if (fd < 0)
		die("cannot open %s: %s", path, strerror(errno));
	atexit(corrupt_restore);

	for (n = 0; n < count; n++) {
		enum area ar = n % A_NR;
		uint64_t off = 0, page = ~0ULL, u;
		uint8_t old, new;
		char vout[512], expect[96];
		struct lazy r;
		int vrc, ok;

		switch (ar) {
		case A_SUPER:
			off = rnd_below(sizeof(struct vmpf_pf_super));
			break;
		case A_COMMIT:
			off = PAGE + rnd_below(sizeof(struct vmpf_pf_commit));
			break;
		case A_TABLE:
			off = table_off + rnd_below(state_off - table_off);
			break;
		case A_STATE:
			if (!state_len) {
				ar = A_TABLE;
				off = table_off + rnd_below(state_off - table_off);
				break;
			}
			off = state_off + rnd_below(state_len);
			break;
		case A_DATA:
			if (!data_pages)
				die("%s has no data page to corrupt", path);
			page = datai[rnd_below(data_pages)];
			off = data_off + page * PAGE + rnd_below(PAGE);
			break;
		default:
			/* Padding of blocks 0 and 1, the state area's tail, zero pages' slots. */
			u = rnd_below(4);
			if (u == 0)
				off = sizeof(struct vmpf_pf_super) +
				      rnd_below(PAGE - sizeof(struct vmpf_pf_super));
			else if (u == 1)
				off = PAGE + sizeof(struct vmpf_pf_commit) +
				      rnd_below(PAGE - sizeof(struct vmpf_pf_commit));
			else if (u == 2 && state_max > state_len)
				off = state_off + state_len + rnd_below(state_max - state_len);
			else if (zero_pages)
				off = data_off + zeroi[rnd_below(zero_pages)] * PAGE + rnd_below(PAGE);
			else
				off = PAGE + sizeof(struct vmpf_pf_commit);
			break;
		}
		xpread(fd, &old, 1, off, path);
		new = old ^ (uint8_t)(1 + rnd_below(255));
		corrupt_off = off;
		corrupt_old = old;
		corrupt_fd = fd;
		xpwrite(fd, &new, 1, off, path);
		if (fsync(fd))
			die("fsync: %s", strerror(errno));

		vrc = run_verify(path, vout, sizeof(vout));
		lazy_check(path, &s, &r, 0);
		switch (ar) {
		case A_DATA:
			snprintf(expect, sizeof(expect), "page %" PRIu64 " is corrupt", page);
			ok = vrc == 1 && strstr(vout, expect) && r.opened && r.refused == 1 &&
			     r.first_refused == page && !r.mismatched;
			snprintf(expect, sizeof(expect), "page %" PRIu64 " refused, the rest verified",
				 page);
			break;
		case A_UNUSED:
			ok = vrc == 0 && r.opened && !r.disagree && !r.refused && !r.mismatched;
			snprintf(expect, sizeof(expect), "opened, every page verified");
			break;
		default:
			ok = vrc != 0 && !r.opened;
			snprintf(expect, sizeof(expect), "refused by vmpf-ctl and the kernel");
			break;
		}
		if (!ok) {
			bad[ar]++;
			failures++;
			printf("BAD: byte %" PRIu64 " (%s) %02x -> %02x: expected %s; verify rc=%d: %s; kernel: ",
			       off, area_name[ar], old, new, expect, vrc, vout);
			print_lazy(&r);
		} else if (ar == A_UNUSED) {
			harmless[ar]++;
		} else {
			caught[ar]++;
		}
		corrupt_fd = -1;
		xpwrite(fd, &old, 1, off, path);
		if (fsync(fd))
			die("fsync: %s", strerror(errno));
	}
	close(fd);
	printf("corruptions: %" PRIu64 ";", count);
	for (a = 0; a < A_UNUSED; a++)
		printf(" %s %u caught,", area_name[a], caught[a]);
	printf(" unused bytes %u (outside the image: opened, every page verified); bad %u\n",
	       harmless[A_UNUSED], failures);
	for (a = 0; a < A_NR; a++)
		if (bad[a])
			printf("bad in %s: %u\n", area_name[a], bad[a]);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "replay"))
		return cmd_replay(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "lazycheck"))
		return cmd_lazycheck(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "corrupt"))
		return cmd_corrupt(argc, argv);
	fprintf(stderr, "usage: crash_tool replay|lazycheck|corrupt ... (see the source's head)\n");
	return 2;
}
