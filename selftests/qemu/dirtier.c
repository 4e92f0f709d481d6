// SPDX-License-Identifier: GPL-2.0
/*
 * The inner guest's workload (static, run by the inner initramfs's /init):
 * a memory dirtier that checks its own memory, so that a guest migrated
 * through vmpagefile proves every page it got back.
 *
 *   dirtier [MIB [PAGES_PER_SECOND]]
 *
 * Without arguments (the inner guest's /init) it reads dirtier_mb=N
 * (default 32) and dirtier_pps=N (default 0: as fast as it can) from
 * /proc/cmdline and prints to the serial console; with arguments (a run by
 * hand) it prints to standard output.  It fills MIB MiB,
 * prints "vmpf-ready", then loops forever: it rewrites pages in a
 * pseudo-random order, each with a header (page index, write generation)
 * and the rest filled from (index, generation), and keeps every page's
 * generation in its own memory.  About ten times a second it prints
 * "vmpf-count N" (N goes up by one a line); every 20th line it first checks
 * every page against the generations and prints "vmpf-verify ok PAGES" or
 * "vmpf-verify BAD page P ..." (the first few bad pages) and
 * "vmpf-verify BAD pages N of PAGES".  Console lines go to /dev/ttyS0
 * (else /dev/console), each in one write().
 *
 * With disk_blocks=N (kernel command line, default 0) it also keeps a
 * disk busy: the first N 4 KiB blocks of /dev/vda, written with O_DIRECT,
 * each with a header (block, write sequence) and the rest filled from
 * both.  It writes every block once before "vmpf-ready", then a few
 * blocks per count line, and remembers each block's last sequence; every
 * VERIFY_EVERY lines it reads the N blocks back and prints
 * "vmpf-disk-verify ok N writes W" or "vmpf-disk-verify BAD block B: ..."
 * (its memory and its disk must agree: a guest migrated with its disk
 * proves both arrived from the same moment).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096UL
#define WORDS		(PAGE / sizeof(uint64_t))
#define LINE_NS		100000000ULL	/* a count line every 100 ms */
#define VERIFY_EVERY	20		/* lines */
#define BAD_SHOWN	8
#define DISK_PER_LINE	8		/* disk blocks written per count line */

static int out_fd = -1;

static void say(const char *fmt, ...)
{
	char buf[160];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if (len > (int)sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	/* One write per line: the line reaches the UART whole. */
	if (write(out_fd, buf, len) < 0 && out_fd != 1)
		(void)!write(1, buf, len);
	if (out_fd != 1)
		tcdrain(out_fd);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Word w (w >= 2) of page idx at generation gen. */
static inline uint64_t word_of(uint64_t seed, uint64_t w)
{
	return seed ^ (w * 0x9e3779b97f4a7c15ULL);
}

static void fill(uint64_t *p, uint64_t idx, uint64_t gen)
{
	uint64_t seed = mix(idx * 0x100000001b3ULL + gen), w;

	p[0] = idx;
	p[1] = gen;
	for (w = 2; w < WORDS; w++)
		p[w] = word_of(seed, w);
}

/* 0 if the page is right, else 1 + the first wrong word. */
static uint64_t check(const uint64_t *p, uint64_t idx, uint64_t gen)
{
	uint64_t seed = mix(idx * 0x100000001b3ULL + gen), w;

	if (p[0] != idx)
		return 1;
	if (p[1] != gen)
		return 2;
	for (w = 2; w < WORDS; w++)
		if (p[w] != word_of(seed, w))
			return w + 1;
	return 0;
}

/* N=value from the kernel command line, or def. */
static unsigned long cmdline_ul(const char *key, unsigned long def)
{
	char buf[4096], *s;
	size_t klen = strlen(key);
	ssize_t len;
	int fd;

	fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		return def;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return def;
	buf[len] = 0;
	for (s = buf; (s = strstr(s, key)); s += klen)
		if ((s == buf || s[-1] == ' ') && s[klen] == '=')
			return strtoul(s + klen + 1, NULL, 0);
	return def;
}

/* The disk side: see the header comment. */
struct disk {
	int fd;
	unsigned long blocks;
	uint64_t seq;		/* writes so far */
	uint64_t *last;		/* each block's last sequence */
	uint64_t *buf;		/* one block, aligned for O_DIRECT */
};

static int disk_write(struct disk *d, unsigned long b)
{
	d->seq++;
	fill(d->buf, b | 1ULL << 63, d->seq);
	if (pwrite(d->fd, d->buf, PAGE, (off_t)(b * PAGE)) != (ssize_t)PAGE) {
		say("vmpf-disk-verify BAD write of block %lu: %s", b, strerror(errno));
		return -1;
	}
	d->last[b] = d->seq;
	return 0;
}

static int disk_open(struct disk *d, unsigned long blocks)
{
	unsigned long b;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->blocks = blocks;
	if (!blocks)
		return 0;
	d->fd = open("/dev/vda", O_RDWR | O_DIRECT);
	d->last = calloc(blocks, sizeof(*d->last));
	if (d->fd < 0 || !d->last || posix_memalign((void **)&d->buf, PAGE, PAGE)) {
		say("vmpf-dirtier: cannot use /dev/vda for %lu blocks: %s", blocks, strerror(errno));
		return -1;
	}
	for (b = 0; b < blocks; b++)
		if (disk_write(d, b))
			return -1;
	return 0;
}

static void disk_verify(struct disk *d)
{
	unsigned long b, bad = 0;

	for (b = 0; b < d->blocks; b++) {
		uint64_t w;

		if (pread(d->fd, d->buf, PAGE, (off_t)(b * PAGE)) != (ssize_t)PAGE) {
			say("vmpf-disk-verify BAD read of block %lu: %s", b, strerror(errno));
			return;
		}
		w = check(d->buf, b | 1ULL << 63, d->last[b]);
		if (!w)
			continue;
		if (bad++ < BAD_SHOWN)
			say("vmpf-disk-verify BAD block %lu: seq %llu, want %llu, word %llu", b,
			    (unsigned long long)d->buf[1], (unsigned long long)d->last[b],
			    (unsigned long long)(w - 1));
	}
	if (bad)
		say("vmpf-disk-verify BAD blocks %lu of %lu", bad, d->blocks);
	else
		say("vmpf-disk-verify ok %lu writes %llu", d->blocks, (unsigned long long)d->seq);
}

static void open_console(void)
{
	static const char * const paths[] = { "/dev/ttyS0", "/dev/console" };
	unsigned int i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		out_fd = open(paths[i], O_WRONLY | O_NOCTTY | O_SYNC);
		if (out_fd >= 0)
			return;
	}
	out_fd = 1;
}

int main(int argc, char **argv)
{
	unsigned long mib, pps, npages, i, bad, gen_total = 0;
	uint64_t count = 0, next_line, rng = 0x2545f4914f6cdd1dULL, t0;
	uint64_t pps_start, pps_done = 0;
	struct disk disk;
	uint32_t *gens;
	char *mem;

	if (argc > 1)
		out_fd = 1;
	else
		open_console();
	mib = argc > 1 ? strtoul(argv[1], NULL, 0) : cmdline_ul("dirtier_mb", 32);
	pps = argc > 2 ? strtoul(argv[2], NULL, 0) : cmdline_ul("dirtier_pps", 0);
	if (!mib)
		mib = 32;
	npages = mib * (1024 * 1024 / PAGE);
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	gens = calloc(npages, sizeof(*gens));
	if (mem == MAP_FAILED || !gens) {
		say("vmpf-dirtier: cannot allocate %lu MiB: %s", mib, strerror(errno));
		return 1;
	}
	t0 = now_ns();
	for (i = 0; i < npages; i++)
		fill((uint64_t *)(mem + i * PAGE), i, 0);
	say("vmpf-dirtier: %lu MiB, %lu pages, filled in %llu ms, %lu pages/s max",
	    mib, npages, (unsigned long long)((now_ns() - t0) / 1000000), pps);
	if (disk_open(&disk, argc > 1 ? 0 : cmdline_ul("disk_blocks", 0)))
		return 1;
	say("vmpf-ready");

	next_line = now_ns() + LINE_NS;
	pps_start = now_ns();
	for (;;) {
		uint64_t t;

		/* A batch of pages between two looks at the clock. */
		for (i = 0; i < 16; i++) {
			unsigned long p;

			if (pps && pps_done * 1000000000ULL >= pps * (now_ns() - pps_start))
				break;
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			p = rng % npages;
			fill((uint64_t *)(mem + p * PAGE), p, ++gens[p]);
			gen_total++;
			pps_done++;
		}
		t = now_ns();
		if (t < next_line)
			continue;
		next_line += LINE_NS;
		if (next_line < t)	/* paused (e.g. migrated): no burst of lines */
			next_line = t + LINE_NS;
		if (pps && t - pps_start > 1000000000ULL) {
			/* The rate cap looks at the last second only. */
			pps_start = t;
			pps_done = 0;
		}
		count++;
		for (i = 0; disk.blocks && i < DISK_PER_LINE; i++) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			if (disk_write(&disk, rng % disk.blocks))
				return 1;
		}
		if (count % VERIFY_EVERY == 0) {
			bad = 0;
			for (i = 0; i < npages; i++) {
				const uint64_t *p = (const uint64_t *)(mem + i * PAGE);
				uint64_t w = check(p, i, gens[i]);

				if (!w)
					continue;
				if (bad++ < BAD_SHOWN)
					say("vmpf-verify BAD page %lu: header index %llu gen %llu, want gen %u, word %llu",
					    i, (unsigned long long)p[0],
					    (unsigned long long)p[1], gens[i],
					    (unsigned long long)(w - 1));
			}
			if (bad)
				say("vmpf-verify BAD pages %lu of %lu", bad, npages);
			else
				say("vmpf-verify ok %lu writes %lu", npages, gen_total);
			if (disk.blocks)
				disk_verify(&disk);
			/* Checking took time: do not count it as dirtying time. */
			next_line = now_ns() + LINE_NS;
		}
		say("vmpf-count %llu", (unsigned long long)count);
	}
}
