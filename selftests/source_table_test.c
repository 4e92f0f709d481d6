// SPDX-License-Identifier: GPL-2.0
/*
 * The source's page table (kernel/source_table.c): the session keeps a
 * write-back cache of 4 KiB table blocks, not the table, so it holds at
 * most 0.1 % of guest RAM beyond its fixed buffers.  A block changed again
 * after it was evicted is read back (counted in table_reads) and checked
 * against the crc it was written with; a block changed on storage under
 * the migration fails it, uncommitted.  The VM has no vCPUs: the test
 * writes guest memory itself and says so with VMPF_IOC_MARK_DIRTY.  The
 * page file is /dev/ram1 (256 MiB); the tests skip where it is missing.
 */
#include <endian.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmpf_test_util.h"
#include "pagefile.h"
#include "test_image.h"

#define TARGET		"/dev/ram1"
#define SLOT_PAGES	8192		/* two 32 MiB slots: 32 table blocks */
#define TOTAL_PAGES	(2 * SLOT_PAGES)
#define BLOCK_PAGES	512		/* page-table entries in a 4 KiB block */
#define BLOCKS		(TOTAL_PAGES / BLOCK_PAGES)

FIXTURE(stbl) {
	int dev, kvm, vm, target;
	void *mem[2];
	size_t size[2];
	struct vmpf_region regs[2];
	struct vmpf_source_attach at;
	char cache[32];
};

/* Page @i (0 to TOTAL_PAGES) of the guest, as the VMM maps it. */
static unsigned char *page(FIXTURE_DATA(stbl) *self, unsigned long i)
{
	return (unsigned char *)self->mem[i / SLOT_PAGES] + (i % SLOT_PAGES) * 4096;
}

/* A quarter of the pages are zero; the rest carry their number and @v. */
static void fill(unsigned char *p, unsigned long i, unsigned long v)
{
	if (i % 4 == 3) {
		memset(p, 0, 4096);
		return;
	}
	memset(p, (int)(i * 7 + v) | 1, 4096);
	memcpy(p, &i, sizeof(i));
	memcpy(p + 8, &v, sizeof(v));
}

static int add_slot(FIXTURE_DATA(stbl) *self, int i, size_t size, __u64 gpa)
{
	self->size[i] = size;
	return vmpf_add_slot(self->vm, i, size, gpa, 0, &self->mem[i], &self->regs[i]);
}

static int make_vm(FIXTURE_DATA(stbl) *self, size_t size0, size_t size1)
{
	int ret;

	self->vm = ioctl(self->kvm, KVM_CREATE_VM, 0);
	if (self->vm < 0)
		return -errno;
	ret = add_slot(self, 0, size0, 0);
	if (!ret)
		ret = add_slot(self, 1, size1, 1ULL << 32);
	self->at = (struct vmpf_source_attach){
		.vm_fd = self->vm, .target_fd = self->target,
		.regions = (unsigned long)self->regs, .nr_regions = 2,
	};
	return ret;
}

static void drop_vm(FIXTURE_DATA(stbl) *self)
{
	int i;

	for (i = 0; i < 2; i++)
		if (self->mem[i] != MAP_FAILED)
			munmap(self->mem[i], self->size[i]);
	self->mem[0] = self->mem[1] = MAP_FAILED;
	if (self->vm >= 0)
		close(self->vm);
	self->vm = -1;
}

FIXTURE_SETUP(stbl)
{
	struct vmpf_api api;
	unsigned long i;

	self->dev = self->kvm = self->vm = self->target = -1;
	self->mem[0] = self->mem[1] = MAP_FAILED;
	self->cache[0] = 0;
	vmpf_open_or_skip(&self->dev);
	ASSERT_EQ(0, vmpf_handshake(self->dev, VMPF_FEATURE_SOURCE, &api));
	self->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (self->kvm < 0)
		SKIP(return, "/dev/kvm: %s", strerror(errno));
	self->target = open(TARGET, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (self->target < 0)
		SKIP(return, "%s: %s (the test guest has RAM disks)", TARGET, strerror(errno));
	ASSERT_EQ(0, make_vm(self, SLOT_PAGES * 4096UL, SLOT_PAGES * 4096UL));
	for (i = 0; i < TOTAL_PAGES; i++)
		fill(page(self, i), i, 0);
}

FIXTURE_TEARDOWN(stbl)
{
	if (self->cache[0])
		vmpf_module_param("source_table_cache", self->cache, NULL, 0);
	if (self->dev >= 0)
		close(self->dev);
	drop_vm(self);
	if (self->kvm >= 0)
		close(self->kvm);
	if (self->target >= 0)
		close(self->target);
}

/* Table blocks read again, module-wide; ~0 if it cannot be asked. */
static __u64 table_reads(int dev)
{
	struct vmpf_dev_info info = { 0 };

	return __vmpf_ioctl(dev, VMPF_IOC_DEV_INFO, &info) ? ~0ULL : info.table_reads;
}

/* The smallest cache: 2 of the 32 blocks.  Attach, start, round 0 done. */
static void start_small(struct __test_metadata *_metadata, FIXTURE_DATA(stbl) *self)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_status st = { 0 };
	__u64 r0;

	ASSERT_EQ(0, vmpf_module_param("source_table_cache", "0", self->cache,
				       sizeof(self->cache)))
		TH_LOG("the source_table_cache parameter is not writable");
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at));
	r0 = table_reads(self->dev);
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	ASSERT_EQ(1, poll(&pfd, 1, 120000));
	vmpf_ioctl(self->dev, VMPF_IOC_STATUS, &st);
	ASSERT_EQ(VMPF_PHASE_PRECOPY, st.phase) TH_LOG("%s", (char *)st.message);
	ASSERT_EQ(1, st.nr_rounds);
	/* Round 0 wrote every block once and read none: none was written before. */
	EXPECT_EQ(r0, table_reads(self->dev));
}

/* Change page @i to version @v and tell the session. */
static int touch(FIXTURE_DATA(stbl) *self, unsigned long i, unsigned long v)
{
	struct vmpf_mark_dirty m = {
		.gpa = i < SLOT_PAGES ? i * 4096 : (1ULL << 32) + (i - SLOT_PAGES) * 4096,
		.len = 4096,
	};

	fill(page(self, i), i, v);
	return __vmpf_ioctl(self->dev, VMPF_IOC_MARK_DIRTY, &m);
}

/*
 * With 2 of 32 blocks cached, pages changed in 6 evicted blocks cost
 * exactly one read each (the first two together before the final round,
 * the rest as it reaches them, in order),
 * and the committed table is right entry by entry: state, crc, round.
 */
TEST_F(stbl, evicted_blocks_read_back)
{
	static const unsigned long changed[] = {
		5, 3 * BLOCK_PAGES + 1, 3 * BLOCK_PAGES + 300, 7 * BLOCK_PAGES,
		12 * BLOCK_PAGES + 511, SLOT_PAGES + 17, /* page 8209: block 16 */
	};
	struct vmpf_finish f = { .state = (unsigned long)"s", .state_len = 1 };
	unsigned long i, k, data = 0, bad = 0;
	unsigned char *buf = malloc(4096);
	__u64 r0;
	struct pf pf;

	ASSERT_NE(NULL, buf);
	start_small(_metadata, self);
	r0 = table_reads(self->dev);
	for (k = 0; k < sizeof(changed) / sizeof(changed[0]); k++)
		ASSERT_EQ(0, touch(self, changed[k], 1));
	/* A zero page becomes data, and a data page zero. */
	ASSERT_EQ(0, touch(self, 9 * BLOCK_PAGES + 3, 2));
	memset(page(self, 3 * BLOCK_PAGES + 1), 0, 4096);
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	EXPECT_EQ(7, f.final_pages);
	/* Blocks 0, 3, 7, 9, 12, 16. */
	EXPECT_EQ(6, table_reads(self->dev) - r0);

	ASSERT_EQ(0, pf_open(&pf, TARGET));
	ASSERT_TRUE(pf.committed) TH_LOG("%s", pf.why);
	ASSERT_EQ(0, pf_load_table(&pf)) TH_LOG("the table's crc is not the commit's");
	for (i = 0; i < TOTAL_PAGES; i++) {
		unsigned int want_round = 0, round = le16toh(pf.table[i].round);
		int zero = 1;

		for (k = 0; k < 4096 && zero; k++)
			zero = !page(self, i)[k];
		for (k = 0; k < sizeof(changed) / sizeof(changed[0]); k++)
			if (changed[k] == i)
				want_round = f.rounds - 1;
		if (i == 9 * BLOCK_PAGES + 3)
			want_round = f.rounds - 1;
		data += !zero;
		if (pf.table[i].state != (zero ? VMPF_PAGE_ZERO : VMPF_PAGE_DATA) ||
		    round != want_round ||
		    pf_read_page(&pf, i, buf) || memcmp(buf, page(self, i), 4096)) {
			if (bad++ < 5)
				TH_LOG("page %lu: state %u round %u, wanted %s in round %u",
				       i, pf.table[i].state, round,
				       zero ? "zero" : "data", want_round);
		}
	}
	EXPECT_EQ(0, bad);
	EXPECT_EQ(data, pf.commit.data_pages);
	EXPECT_EQ(TOTAL_PAGES - data, pf.commit.zero_pages);
	pf_close(&pf);
	free(buf);
}

/*
 * Rewrite table block @bad on storage after round 0, change a page in it
 * and in each of @others (blocks), and finish: the migration fails,
 * saying which block, and the page file stays uncommitted.
 */
static void changed_block(struct __test_metadata *_metadata, FIXTURE_DATA(stbl) *self,
			  unsigned long bad, const unsigned long *others, int n)
{
	struct vmpf_finish f = { .state = (unsigned long)"s", .state_len = 1 };
	struct vmpf_status st = { 0 };
	char want[64];
	void *junk;
	struct pf pf;
	int i;

	start_small(_metadata, self);
	ASSERT_EQ(0, pf_open(&pf, TARGET));
	ASSERT_EQ(0, posix_memalign(&junk, 4096, 4096));
	memset(junk, 0xa5, 4096);
	ASSERT_EQ(4096, pwrite(self->target, junk, 4096,
			       pf.sb.table_off + bad * 4096));
	pf_close(&pf);
	free(junk);
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, touch(self, others[i] * BLOCK_PAGES + 40, 1));
	ASSERT_EQ(0, touch(self, bad * BLOCK_PAGES + 8, 1));
	EXPECT_NE(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	vmpf_ioctl(self->dev, VMPF_IOC_STATUS, &st);
	EXPECT_EQ(VMPF_PHASE_FAILED, st.phase);
	EXPECT_EQ(EIO, st.error);
	snprintf(want, sizeof(want), "page-table block %lu on storage is not", bad);
	EXPECT_NE(NULL, strstr((char *)st.message, want))
		TH_LOG("message: %s", (char *)st.message);
	ASSERT_EQ(0, pf_open(&pf, TARGET));
	EXPECT_FALSE(pf.committed);
	pf_close(&pf);
}

/*
 * A table block rewritten on storage under the migration (another host,
 * a careless tool) is found when it is read back, and fails it: read
 * with the others before the final round (2 free slots: blocks 3 and 6)
 */
TEST_F(stbl, changed_block_fails)
{
	static const unsigned long others[] = { 6 };

	changed_block(_metadata, self, 3, others, 1);
}

/* ... and read alone, when the round reaches it (blocks 1 and 2 went first). */
TEST_F(stbl, changed_block_fails_when_reached)
{
	static const unsigned long others[] = { 1, 2 };

	changed_block(_metadata, self, 5, others, 2);
}

/* The whole table cached (source_table_cache=100): nothing is read back. */
TEST_F(stbl, whole_table_reads_nothing)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_finish f = { .state = (unsigned long)"s", .state_len = 1 };
	unsigned long i;
	__u64 r0;
	struct pf pf;

	ASSERT_EQ(0, vmpf_module_param("source_table_cache", "100", self->cache,
				       sizeof(self->cache)));
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_SOURCE_ATTACH, &self->at));
	r0 = table_reads(self->dev);
	ASSERT_EQ(0, __vmpf_ioctl(self->dev, VMPF_IOC_START, NULL));
	ASSERT_EQ(1, poll(&pfd, 1, 120000));
	for (i = 0; i < TOTAL_PAGES; i += 97)
		ASSERT_EQ(0, touch(self, i, 3));
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_FINISH, &f));
	EXPECT_EQ(r0, table_reads(self->dev));
	ASSERT_EQ(0, pf_open(&pf, TARGET));
	ASSERT_TRUE(pf.committed) TH_LOG("%s", pf.why);
	EXPECT_EQ(0, pf_load_table(&pf));
	pf_close(&pf);
}

/* Session memory after attach, for a VM of @pages pages in two slots. */
static __u64 attach_mem(struct __test_metadata *_metadata, FIXTURE_DATA(stbl) *self,
			unsigned long pages)
{
	struct vmpf_status st = { 0 };
	struct vmpf_api api;
	int dev, ret;

	drop_vm(self);
	ret = make_vm(self, pages / 2 * 4096, pages / 2 * 4096);
	if (ret) {
		TH_LOG("a VM of %lu pages: %s", pages, strerror(-ret));
		return 0;
	}
	dev = vmpf_open(vmpf_device_path());
	if (dev < 0 || vmpf_handshake(dev, VMPF_FEATURE_SOURCE, &api))
		return 0;
	ret = vmpf_ioctl_checked(dev, VMPF_IOC_SOURCE_ATTACH, &self->at);
	if (!ret)
		ret = vmpf_ioctl_checked(dev, VMPF_IOC_STATUS, &st);
	close(dev);
	if (ret)
		TH_LOG("attaching a VM of %lu pages: %s", pages, strerror(-ret));
	return ret ? 0 : st.mem_bytes;
}

/*
 * The memory goal, with the module's defaults: what a session holds grows
 * by at most 0.1 % of the guest's growth (the table alone is 0.195 %); the
 * fixed part (256 KiB of I/O buffers, the session) is paid once.
 */
TEST_F(stbl, memory_within_budget)
{
	__u64 small = attach_mem(_metadata, self, 16384);	/* 64 MiB */
	__u64 big = attach_mem(_metadata, self, 49152);	/* 192 MiB */
	double slope = (double)(big - small) / (128 << 20);

	ASSERT_NE(0, small);
	ASSERT_NE(0, big);
	TH_LOG("64 MiB: %llu bytes, 192 MiB: %llu bytes, %.4f %% of the growth",
	       small, big, slope * 100);
	EXPECT_LE(slope, 0.001);
	EXPECT_LE(big, (192 << 20) / 1000 + 256 * 1024 + 64 * 1024);
}

TEST_HARNESS_MAIN
