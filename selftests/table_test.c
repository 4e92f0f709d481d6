// SPDX-License-Identifier: GPL-2.0
/*
 * A restore session's page table (kernel/table.c): the session keeps two
 * bits of state a page and a crc per 4 KiB table block, not the table, so
 * it holds at most 0.1 % of guest RAM; a page's crc32c comes from a cache
 * of table blocks, and a block not in it is read again (counted in
 * table_reads) and checked, so a table changed on storage after the open
 * refuses the pages it describes (SIGBUS) and lets nothing unchecked in.
 * The image, 64 MiB (32 table blocks), is made on /dev/ram1 by a source
 * session over a VM without vCPUs; the tests skip where /dev/ram1 is
 * missing.
 */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmpf_test_util.h"
#include "pagefile.h"
#include "test_image.h"

#define TARGET		"/dev/ram1"
#define SLOT0_PAGES	12288
#define SLOT1_PAGES	4096
#define TOTAL_PAGES	(SLOT0_PAGES + SLOT1_PAGES)
#define MAP_BYTES	((unsigned long)TOTAL_PAGES * 4096)
#define BLOCK_PAGES	512	/* page-table entries in a 4 KiB block */
#define BLOCKS		(TOTAL_PAGES / BLOCK_PAGES)
#define STATE		"table test device state"

static int page_is_zero(int i)
{
	return i % 3 == 2;
}

static void fill_page(unsigned char *p, int i)
{
	vmpf_pattern_page(p, i, page_is_zero(i));
}

static int check_page(const unsigned char *p, int i)
{
	return vmpf_pattern_ok(p, i, page_is_zero(i));
}

/* A data page of table block @b. */
static int data_page(int b, int k)
{
	int i = b * BLOCK_PAGES + k;

	return page_is_zero(i) ? i + 1 : i;
}

/* A zero page of table block @b. */
static int zero_page(int b)
{
	int i = b * BLOCK_PAGES;

	while (!page_is_zero(i))
		i++;
	return i;
}

static uint64_t table_reads(int fd)
{
	return vmpf_dev_counters(fd).table_reads;
}

/* Flip a byte of page @idx's crc in the table on storage. */
static int poke_table_crc(int idx)
{
	struct vmpf_pf_super *sb;
	unsigned char *buf;
	int fd = open(TARGET, O_RDWR | O_DIRECT), ret = -1;
	long off;

	if (fd < 0 || posix_memalign((void **)&sb, 4096, 4096) ||
	    posix_memalign((void **)&buf, 4096, 4096))
		return -1;
	if (pread(fd, sb, 4096, 0) != 4096)
		goto out;
	off = (long)sb->table_off + idx * 8L;
	if (pread(fd, buf, 4096, off & ~4095L) != 4096)
		goto out;
	buf[off & 4095] ^= 0x5a;
	if (pwrite(fd, buf, 4096, off & ~4095L) == 4096)
		ret = 0;
out:
	free(sb);
	free(buf);
	close(fd);
	return ret;
}

FIXTURE(table) {
	int dev, target;
	struct vmpf_restore_open ro;
	unsigned char *map;
	char cache[32];
};

FIXTURE_SETUP(table)
{
	static const uint64_t slots[2] = { SLOT0_PAGES, SLOT1_PAGES };
	struct vmpf_api api;
	int ret;

	self->dev = self->target = -1;
	self->map = MAP_FAILED;
	self->cache[0] = 0;
	vmpf_open_or_skip(&self->dev);
	if (access(TARGET, F_OK) || access("/dev/kvm", F_OK))
		SKIP(return, "%s or /dev/kvm missing (the test guest has them)", TARGET);
	ret = vmpf_make_test_image(TARGET, slots, fill_page, STATE, sizeof(STATE));
	ASSERT_EQ(0, ret) TH_LOG("making the page file failed at step %d", -ret);
	ASSERT_EQ(0, vmpf_handshake(self->dev, VMPF_FEATURE_RESTORE, &api));
	self->target = open(TARGET, O_RDONLY | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, self->target);
	self->ro = (struct vmpf_restore_open){
		.target_fd = self->target,
		.flags = VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_NO_LEASE,
	};
}

FIXTURE_TEARDOWN(table)
{
	if (self->cache[0])
		vmpf_module_param("table_cache", self->cache, NULL, 0);
	if (self->map != MAP_FAILED)
		munmap(self->map, MAP_BYTES);
	if (self->dev >= 0)
		close(self->dev);
	if (self->target >= 0)
		close(self->target);
}

#define OPEN(self) vmpf_ioctl_checked((self)->dev, VMPF_IOC_RESTORE_OPEN, &(self)->ro)

static int map_it(FIXTURE_DATA(table) *self)
{
	self->map = mmap(NULL, MAP_BYTES, PROT_READ, MAP_SHARED, self->dev, 0);
	return self->map == MAP_FAILED ? -1 : 0;
}

/*
 * The session's memory, all of it, within 0.1 % of guest RAM and the
 * session's fixed part (its structure, the device state's page: 16 KiB is
 * generous); not the table.
 */
TEST_F(table, memory_within_a_tenth_of_a_percent)
{
	struct vmpf_restore_status st;

	ASSERT_EQ(0, OPEN(self));
	vmpf_rstatus(self->dev, &st);
	TH_LOG("restore session memory: %llu bytes for %lu MiB of guest RAM (%.3f %%)",
	       (unsigned long long)st.mem_bytes, MAP_BYTES >> 20,
	       100.0 * st.mem_bytes / MAP_BYTES);
	EXPECT_LT(0, st.mem_bytes);
	EXPECT_LE(st.mem_bytes, MAP_BYTES / 1000 + 16384);
	EXPECT_LT(st.mem_bytes, TOTAL_PAGES * 8UL);	/* less than the table */
}

/*
 * With the smallest cache (two blocks), each block's first data page reads
 * its table block, a block still cached reads nothing, and one evicted is
 * read again; every page checks.
 */
TEST_F(table, misses_read_the_block_again)
{
	uint64_t r0, r1;
	int b;

	ASSERT_EQ(0, vmpf_module_param("table_cache", "0", self->cache, sizeof(self->cache)))
		TH_LOG("the table_cache parameter is not writable");
	ASSERT_EQ(0, OPEN(self));
	ASSERT_EQ(0, map_it(self));
	r0 = table_reads(self->dev);
	for (b = 0; b < 6; b++)
		ASSERT_TRUE(check_page(self->map + data_page(b, 0) * 4096UL, data_page(b, 0)))
			TH_LOG("block %d", b);
	r1 = table_reads(self->dev);
	EXPECT_EQ(6, r1 - r0);
	/* Blocks 4 and 5 are cached: no read. */
	EXPECT_TRUE(check_page(self->map + data_page(5, 7) * 4096UL, data_page(5, 7)));
	EXPECT_TRUE(check_page(self->map + data_page(4, 9) * 4096UL, data_page(4, 9)));
	EXPECT_EQ(r1, table_reads(self->dev));
	/* Block 0 was evicted: read again. */
	EXPECT_TRUE(check_page(self->map + data_page(0, 30) * 4096UL, data_page(0, 30)));
	EXPECT_EQ(r1 + 1, table_reads(self->dev));
	/* Zero pages need no crc. */
	EXPECT_TRUE(check_page(self->map + zero_page(20) * 4096UL, zero_page(20)));
	EXPECT_EQ(r1 + 1, table_reads(self->dev));
}

/*
 * A table block changed on storage after the open (a new migration into
 * the file, a careless tool): its data pages are refused, not restored
 * unchecked; its zero pages and other blocks' pages are fine.
 */
TEST_F(table, changed_block_refused)
{
	struct vmpf_restore_status st;
	int victim = data_page(3, 40);

	ASSERT_EQ(0, OPEN(self));
	ASSERT_EQ(0, map_it(self));
	ASSERT_EQ(0, poke_table_crc(data_page(3, 100)));
	EXPECT_TRUE(touch_sigbus(self->map + victim * 4096UL));
	EXPECT_TRUE(check_page(self->map + data_page(2, 40) * 4096UL, data_page(2, 40)));
	EXPECT_TRUE(check_page(self->map + zero_page(3) * 4096UL, zero_page(3)));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(1, st.bad_pages);
	EXPECT_EQ(0, st.crc_errors);
	EXPECT_EQ(victim, st.first_bad);
	EXPECT_NE(NULL, strstr((char *)st.message, "page-table block changed on storage"))
		TH_LOG("message: %s", st.message);
}

/* The prefetch, with the smallest cache: complete, every page checks. */
TEST_F(table, prefetch_with_smallest_cache)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_restore_status st;
	uint64_t r0;
	int i;

	ASSERT_EQ(0, vmpf_module_param("table_cache", "0", self->cache, sizeof(self->cache)));
	self->ro.flags = VMPF_RESTORE_NO_LEASE;
	r0 = table_reads(self->dev);
	ASSERT_EQ(0, OPEN(self));
	ASSERT_EQ(1, poll(&pfd, 1, 120000));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(VMPF_RESTORE_COMPLETE, st.phase);
	EXPECT_EQ(0, st.bad_pages);
	/* In page order: each block read once, give or take a run's edge. */
	EXPECT_LE(BLOCKS, table_reads(self->dev) - r0);
	EXPECT_GE(2 * BLOCKS, table_reads(self->dev) - r0);
	ASSERT_EQ(0, map_it(self));
	for (i = 0; i < TOTAL_PAGES; i++)
		ASSERT_TRUE(check_page(self->map + i * 4096UL, i)) TH_LOG("page %d", i);
}

TEST_HARNESS_MAIN
