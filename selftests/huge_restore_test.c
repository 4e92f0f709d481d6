// SPDX-License-Identifier: GPL-2.0
/*
 * Restore sessions in huge pages (VMPF_RESTORE_HUGE): a fault fills its
 * whole 2 MiB block with one read, a PMD maps it, the block of zero pages
 * needs no read, the partial block at the end goes in 4 KiB pages, holes
 * punched before and after the fill read zero and return memory, a corrupt
 * page costs its huge page (SIGBUS, never mapped), concurrent faults on one
 * block issue one read, the prefetch completes in huge pages, and where
 * tmpfs gives no huge page (shmem_enabled=deny) the block goes in 4 KiB
 * pages with the same results.  The image is made on /dev/ram1 by a source
 * session over a VM without vCPUs; the tests skip where /dev/ram1 or
 * transparent huge pages are missing.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmpf_test_util.h"
#include "pagefile.h"
#include "test_image.h"

#define TARGET		"/dev/ram1"
#define HUGE_NR		512
#define HUGE_BYTES	(HUGE_NR * 4096UL)
/* Slot 0: four 2 MiB blocks; slot 1: a partial block of 259 pages. */
#define SLOT0_PAGES	(4 * HUGE_NR)
#define SLOT1_PAGES	259
#define TOTAL_PAGES	(SLOT0_PAGES + SLOT1_PAGES)
#define MAP_BYTES	((unsigned long)TOTAL_PAGES * 4096)
#define ZERO_BLOCK	1	/* every page of block 1 is zero */
#define STATE		"huge restore test device state"
#define THP_DIR		"/sys/kernel/mm/transparent_hugepage"
#define SHMEM_ENABLED	THP_DIR "/shmem_enabled"

static int page_is_zero(int i)
{
	return i / HUGE_NR == ZERO_BLOCK || i % 3 == 2;
}

static void fill_page(unsigned char *p, int i)
{
	vmpf_pattern_page(p, i, page_is_zero(i));
}

static int check_page(const unsigned char *p, int i)
{
	return vmpf_pattern_ok(p, i, page_is_zero(i));
}

/* The image's data_off, from its superblock. */
static long data_off(void)
{
	struct vmpf_pf_super *sb;
	int fd = open(TARGET, O_RDONLY | O_DIRECT);
	long off = -1;

	if (fd < 0 || posix_memalign((void **)&sb, 4096, 4096))
		return -1;
	if (pread(fd, sb, 4096, 0) == 4096)
		off = (long)sb->data_off;
	free(sb);
	close(fd);
	return off;
}

/* Overwrite one byte of the image's page @page. */
static int poke_page(int page, int at, unsigned char v)
{
	long base = data_off() + page * 4096L;
	int fd = open(TARGET, O_RDWR | O_DIRECT);
	unsigned char *buf;
	int ret = -1;

	if (fd < 0 || base < 0 || posix_memalign((void **)&buf, 4096, 4096))
		return -1;
	if (pread(fd, buf, 4096, base) == 4096) {
		buf[at] = v;
		if (pwrite(fd, buf, 4096, base) == 4096)
			ret = 0;
	}
	free(buf);
	close(fd);
	return ret;
}

/* A field of /proc/self/smaps for the mapping at @p, in kB; -1 if none. */
static long smaps_kb(const void *p, const char *field)
{
	char line[256], want[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	size_t flen = strlen(field);
	long kb = -1;
	int in = 0;

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)p);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, ' ') && strchr(line, '-') < strchr(line, ' '))
			in = !strncmp(line, want, strlen(want));
		else if (in && !strncmp(line, field, flen) && line[flen] == ':')
			kb = atol(line + flen + 1);
	}
	fclose(f);
	return kb;
}

/* Pages of guest memory in memory: the object's blocks (map_files). */
static long object_pages(const void *p)
{
	char path[96];
	struct stat sb;

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
		 (unsigned long)p + MAP_BYTES);
	return stat(path, &sb) ? -1 : (long)(sb.st_blocks / 8);
}

static uint64_t huge_fills(int fd)
{
	return vmpf_dev_counters(fd).huge_fills;
}

/* Faults that waited for a read. */
static uint64_t faults(const struct vmpf_restore_status *st)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < VMPF_FAULT_HIST; i++)
		n += st->fault_hist[i];
	return n;
}

/* Set shmem_enabled to @mode; the old one goes to @old.  0 or -1. */
static int shmem_enabled(const char *mode, char *old, size_t len)
{
	char buf[128] = "", *sel, *end;
	int fd = open(SHMEM_ENABLED, O_RDWR), ok;

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) <= 0)
		goto fail;
	sel = strchr(buf, '[');
	end = sel ? strchr(sel, ']') : NULL;
	if (!end)
		goto fail;
	*end = 0;
	if (old)
		snprintf(old, len, "%s", sel + 1);
	ok = write(fd, mode, strlen(mode)) == (ssize_t)strlen(mode);
	close(fd);
	return ok ? 0 : -1;
fail:
	close(fd);
	return -1;
}

FIXTURE(huge) {
	int dev, target;
	struct vmpf_restore_open ro;
	unsigned char *map;
	uint64_t fills0;
};

FIXTURE_SETUP(huge)
{
	static const uint64_t slots[2] = { SLOT0_PAGES, SLOT1_PAGES };
	struct vmpf_api api;
	int ret;

	self->dev = self->target = -1;
	self->map = MAP_FAILED;
	vmpf_open_or_skip(&self->dev);
	if (access(TARGET, F_OK) || access("/dev/kvm", F_OK))
		SKIP(return, "%s or /dev/kvm missing (the test guest has them)", TARGET);
	if (access(THP_DIR, F_OK))
		SKIP(return, "no transparent huge pages in this kernel (%s)", THP_DIR);
	ret = vmpf_make_test_image(TARGET, slots, fill_page, STATE, sizeof(STATE));
	ASSERT_EQ(0, ret) TH_LOG("making the page file failed at step %d", -ret);
	ASSERT_EQ(0, vmpf_handshake(self->dev, VMPF_FEATURE_RESTORE, &api));
	ASSERT_TRUE(api.features & VMPF_FEATURE_HUGE)
		TH_LOG("the kernel has transparent huge pages, the module says none for tmpfs");
	self->target = open(TARGET, O_RDONLY | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, self->target);
	self->ro = (struct vmpf_restore_open){
		.target_fd = self->target,
		.flags = VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_NO_LEASE | VMPF_RESTORE_HUGE,
	};
	self->fills0 = huge_fills(self->dev);
}

FIXTURE_TEARDOWN(huge)
{
	if (self->map != MAP_FAILED)
		munmap(self->map, MAP_BYTES);
	if (self->dev >= 0)
		close(self->dev);
	if (self->target >= 0)
		close(self->target);
}

#define OPEN_MAP(self, prot) do {						\
	ASSERT_EQ(0, vmpf_ioctl_checked((self)->dev, VMPF_IOC_RESTORE_OPEN, &(self)->ro)); \
	(self)->map = vmpf_map_huge_aligned(MAP_BYTES, prot, (self)->dev, 0);				\
	ASSERT_NE(MAP_FAILED, (self)->map);					\
} while (0)

/* One fault: its whole block, one read, mapped by one PMD. */
TEST_F(huge, one_fault_fills_its_block)
{
	struct vmpf_restore_status st;
	int i;

	OPEN_MAP(self, PROT_READ | PROT_WRITE);
	EXPECT_TRUE(check_page(self->map + 5 * 4096, 5));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(HUGE_NR, st.resident);
	EXPECT_EQ(HUGE_NR, st.demand_pages);
	EXPECT_EQ(1, faults(&st));
	EXPECT_EQ(self->fills0 + 1, huge_fills(self->dev));
	EXPECT_EQ(HUGE_NR, object_pages(self->map));
	EXPECT_LE(2048, smaps_kb(self->map, "ShmemPmdMapped"))
		TH_LOG("the block is not mapped by a PMD");

	for (i = 0; i < HUGE_NR; i++)
		ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
	/* Writes stick, and need no fault of ours. */
	self->map[300 * 4096 + 7] = 0x42;
	EXPECT_EQ(0x42, self->map[300 * 4096 + 7]);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(1, faults(&st));
	EXPECT_EQ(HUGE_NR, st.resident);

	/* Another block: one more fault, one more read. */
	EXPECT_TRUE(check_page(self->map + 1600 * 4096, 1600));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(2 * HUGE_NR, st.resident);
	EXPECT_EQ(2, faults(&st));
	EXPECT_EQ(self->fills0 + 2, huge_fills(self->dev));
}

/* A block of zero pages needs no read and no memory. */
TEST_F(huge, zero_block_reads_nothing)
{
	struct vmpf_restore_status st;
	int i;

	OPEN_MAP(self, PROT_READ);
	EXPECT_TRUE(vmpf_page_is_clear(self->map + (ZERO_BLOCK * HUGE_NR + 7) * 4096));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(HUGE_NR, st.resident);
	EXPECT_EQ(HUGE_NR, st.zero_pages);
	EXPECT_EQ(self->fills0, huge_fills(self->dev));
	for (i = ZERO_BLOCK * HUGE_NR; i < (ZERO_BLOCK + 1) * HUGE_NR; i++)
		ASSERT_TRUE(vmpf_page_is_clear(self->map + i * 4096)) TH_LOG("page %d", i);
}

/* The partial block at the end goes in 4 KiB pages, whole. */
TEST_F(huge, partial_block_in_small_pages)
{
	struct vmpf_restore_status st;
	int i;

	OPEN_MAP(self, PROT_READ);
	EXPECT_TRUE(check_page(self->map + (SLOT0_PAGES + 100) * 4096, SLOT0_PAGES + 100));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(SLOT1_PAGES, st.resident);
	EXPECT_EQ(1, faults(&st));
	EXPECT_EQ(self->fills0, huge_fills(self->dev));
	for (i = SLOT0_PAGES; i < TOTAL_PAGES; i++)
		ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
}

/*
 * A hole punched before the fill: that page reads zero afterwards and is
 * never read; one punched into a filled huge page returns its memory.
 */
TEST_F(huge, holes_before_and_after_the_fill)
{
	struct vmpf_restore_status st;
	int i;

	OPEN_MAP(self, PROT_READ | PROT_WRITE);
	ASSERT_EQ(0, madvise(self->map + 10 * 4096, 4096, MADV_REMOVE)) TH_LOG("%s", strerror(errno));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(1, st.discarded);
	EXPECT_TRUE(check_page(self->map + 11 * 4096, 11));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(HUGE_NR, st.resident);
	EXPECT_EQ(HUGE_NR - 1, st.demand_pages);
	EXPECT_EQ(self->fills0 + 1, huge_fills(self->dev));
	EXPECT_TRUE(vmpf_page_is_clear(self->map + 10 * 4096));
	for (i = 0; i < HUGE_NR; i++)
		if (i != 10)
			ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);

	/* Into the huge page: tmpfs splits it, the rest stays. */
	EXPECT_EQ(HUGE_NR, object_pages(self->map));
	ASSERT_EQ(0, madvise(self->map + 20 * 4096, 2 * 4096, MADV_REMOVE));
	EXPECT_EQ(HUGE_NR - 2, object_pages(self->map));
	EXPECT_TRUE(vmpf_page_is_clear(self->map + 20 * 4096));
	EXPECT_TRUE(vmpf_page_is_clear(self->map + 21 * 4096));
	EXPECT_TRUE(check_page(self->map + 22 * 4096, 22));
	EXPECT_TRUE(check_page(self->map + 19 * 4096, 19));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(1, st.discarded);
	EXPECT_EQ(HUGE_NR, st.resident);
}

/* A corrupt page costs its huge page: never mapped, SIGBUS; others fine. */
TEST_F(huge, corrupt_page_refuses_its_huge_page)
{
	struct vmpf_restore_status st;

	ASSERT_EQ(0, poke_page(7, 99, 0xee));
	OPEN_MAP(self, PROT_READ);
	EXPECT_TRUE(touch_sigbus(self->map + 4 * 4096));
	EXPECT_TRUE(touch_sigbus(self->map + 7 * 4096));
	EXPECT_TRUE(touch_sigbus(self->map + 511 * 4096));
	EXPECT_FALSE(touch_sigbus(self->map + 512 * 4096));
	EXPECT_TRUE(check_page(self->map + 1601 * 4096, 1601));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(HUGE_NR, st.bad_pages);
	EXPECT_EQ(1, st.crc_errors);
	EXPECT_EQ(7, st.first_bad);
	EXPECT_NE(NULL, strstr((char *)st.message, "page 7: crc32c mismatch"))
		TH_LOG("message: %s", st.message);
	EXPECT_NE(NULL, strstr((char *)st.message, "huge page, pages 0-511"));
}

/*
 * A hole punched before a corrupt block's fill: the hole's page is refused
 * with the block (tmpfs would give it a huge page over the others), and
 * nothing of the block stays in memory.
 */
TEST_F(huge, refused_block_takes_its_holes)
{
	struct vmpf_restore_status st;

	ASSERT_EQ(0, poke_page(2 * HUGE_NR + 9, 99, 0xee));
	OPEN_MAP(self, PROT_READ | PROT_WRITE);
	ASSERT_EQ(0, madvise(self->map + 2 * HUGE_NR * 4096, 4096, MADV_REMOVE));
	EXPECT_TRUE(touch_sigbus(self->map + (2 * HUGE_NR + 1) * 4096));
	EXPECT_TRUE(touch_sigbus(self->map + 2 * HUGE_NR * 4096));
	EXPECT_TRUE(touch_sigbus(self->map + (3 * HUGE_NR - 1) * 4096));
	EXPECT_EQ(0, object_pages(self->map));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(HUGE_NR, st.bad_pages);
	EXPECT_EQ(2 * HUGE_NR + 9, st.first_bad);
	EXPECT_TRUE(check_page(self->map + 5 * 4096, 5));
}

/* The object may not grow while it is restored (its last block would). */
TEST_F(huge, object_cannot_grow_while_restoring)
{
	struct vmpf_restore_memfd mf = { 0 };

	OPEN_MAP(self, PROT_READ);
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_RESTORE_MEMFD, &mf));
	EXPECT_EQ(-1, fallocate(mf.fd, 0, MAP_BYTES, HUGE_BYTES));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(0, fallocate(mf.fd, FALLOC_FL_KEEP_SIZE, 0, 4096));
	EXPECT_EQ((off_t)MAP_BYTES, lseek(mf.fd, 0, SEEK_END));
	close(mf.fd);
	EXPECT_TRUE(check_page(self->map + 4 * 4096, 4));
}

#define FAULTERS 8

struct faulters {
	unsigned char *p;
	pthread_barrier_t go;
	int ok[FAULTERS];
};

static void *fault_page(void *arg)
{
	struct faulters *f = arg;
	static int next;
	int me = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % FAULTERS;
	int page = 2 * HUGE_NR + me * 61;

	pthread_barrier_wait(&f->go);
	f->ok[me] = check_page(f->p + page * 4096, page);
	return NULL;
}

/* Faults on eight pages of one block at once: one read. */
TEST_F(huge, concurrent_faults_one_read)
{
	struct vmpf_restore_status st;
	pthread_t t[FAULTERS];
	struct faulters f;
	int i;

	OPEN_MAP(self, PROT_READ);
	f.p = self->map;
	pthread_barrier_init(&f.go, NULL, FAULTERS);
	for (i = 0; i < FAULTERS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, fault_page, &f));
	for (i = 0; i < FAULTERS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < FAULTERS; i++)
		EXPECT_TRUE(f.ok[i]) TH_LOG("faulter %d", i);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(HUGE_NR, st.resident);
	EXPECT_EQ(HUGE_NR, st.demand_pages);
	EXPECT_EQ(self->fills0 + 1, huge_fills(self->dev));
}

/* The prefetch brings every block in, in huge pages where it can. */
TEST_F(huge, prefetch_completes)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_restore_status st;
	int i;

	self->ro.flags &= ~VMPF_RESTORE_NO_PREFETCH;
	OPEN_MAP(self, PROT_READ);
	ASSERT_EQ(1, poll(&pfd, 1, 60000));
	EXPECT_TRUE(pfd.revents & POLLIN);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(VMPF_RESTORE_COMPLETE, st.phase);
	EXPECT_EQ(TOTAL_PAGES, st.prefetched);
	/* Blocks 0, 2 and 3; block 1 is zero, block 4 partial. */
	EXPECT_EQ(self->fills0 + 3, huge_fills(self->dev));
	for (i = 0; i < TOTAL_PAGES; i++)
		ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(0, st.demand_pages);
	EXPECT_LE(3 * 2048, smaps_kb(self->map, "ShmemPmdMapped"));
}

/*
 * No huge page from tmpfs (shmem_enabled=deny): the block goes in whole,
 * in 4 KiB pages, and a corrupt page costs only itself.
 */
TEST_F(huge, no_huge_page_falls_back_to_small_pages)
{
	struct vmpf_restore_status st;
	char old[32];
	int i, denied;

	ASSERT_EQ(0, poke_page(1699, 5, 0xee));
	denied = !shmem_enabled("deny", old, sizeof(old));
	if (!denied)
		SKIP(return, "cannot write 'deny' to %s", SHMEM_ENABLED);
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_RESTORE_OPEN, &self->ro));
	self->map = vmpf_map_huge_aligned(MAP_BYTES, PROT_READ, self->dev, 0);
	if (self->map != MAP_FAILED) {
		EXPECT_TRUE(check_page(self->map + 5 * 4096, 5));
		EXPECT_TRUE(touch_sigbus(self->map + 1699 * 4096));
		EXPECT_TRUE(check_page(self->map + 1701 * 4096, 1701));
	}
	EXPECT_EQ(0, shmem_enabled(old, NULL, 0));
	ASSERT_NE(MAP_FAILED, self->map);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(2 * HUGE_NR - 1, st.resident);
	EXPECT_EQ(1, st.bad_pages);
	EXPECT_EQ(1699, st.first_bad);
	EXPECT_EQ(self->fills0, huge_fills(self->dev));
	EXPECT_EQ(0, smaps_kb(self->map, "ShmemPmdMapped"));
	for (i = 0; i < HUGE_NR; i++)
		ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(2, faults(&st));
}

/* Without the flag nothing changes: 4 KiB pages, one per fault. */
TEST_F(huge, small_session_unchanged)
{
	struct vmpf_restore_status st;

	self->ro.flags &= ~VMPF_RESTORE_HUGE;
	OPEN_MAP(self, PROT_READ);
	EXPECT_TRUE(check_page(self->map + 5 * 4096, 5));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(1, st.resident);
	EXPECT_EQ(self->fills0, huge_fills(self->dev));
	EXPECT_EQ(0, smaps_kb(self->map, "ShmemPmdMapped"));
}

TEST_HARNESS_MAIN
