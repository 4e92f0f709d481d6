// SPDX-License-Identifier: GPL-2.0
/*
 * Restore sessions: the error paths of VMPF_IOC_RESTORE_OPEN, _INFO,
 * _PREFETCH and mmap, one per test, then the fault path: lazy faults,
 * concurrent faults on one page (one read), a corrupted page (SIGBUS, never
 * mapped), prefetch to completion; guest memory as memory: holes punched
 * in it, movable pages, the object reopened.  Each test first makes a committed page
 * file on /dev/ram1 with a source session over a VM without vCPUs whose
 * memory holds a known pattern; the tests skip where /dev/ram1 is missing.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmpf_test_util.h"
#include "pagefile.h"
#include "test_image.h"

#define TARGET		"/dev/ram1"
#define SLOT_PAGES	256
#define SLOT_BYTES	(SLOT_PAGES * 4096)
#define TOTAL_PAGES	(2 * SLOT_PAGES)
#define DATA_OFF	((2 + 1 + 256) * 4096)	/* header, table (512 * 8 B), state */
#define STATE		"restore test device state"

/* Page i of the image: every 3rd page zero, the others filled with i. */
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

/* Make a committed page file on TARGET.  0, or a negative step number. */
static int make_image(void)
{
	static const uint64_t slots[2] = { SLOT_PAGES, SLOT_PAGES };

	return vmpf_make_test_image(TARGET, slots, fill_page, STATE, sizeof(STATE));
}

/* Overwrite @len bytes at @off of TARGET (through a page-aligned buffer). */
static int poke(off_t off, const void *buf, size_t len)
{
	int fd = open(TARGET, O_RDWR | O_DIRECT);
	off_t base = off & ~4095L;
	void *page;
	int ret = -1;

	if (fd < 0 || posix_memalign(&page, 4096, 4096))
		return -1;
	if (pread(fd, page, 4096, base) == 4096) {
		memcpy((char *)page + (off - base), buf, len);
		if (pwrite(fd, page, 4096, base) == 4096)
			ret = 0;
	}
	free(page);
	close(fd);
	return ret;
}

FIXTURE(rst) {
	int dev, target;
	struct vmpf_restore_open ro;
	unsigned char *map;
};

FIXTURE_SETUP(rst)
{
	struct vmpf_api api;
	int ret;

	self->dev = self->target = -1;
	self->map = MAP_FAILED;
	vmpf_open_or_skip(&self->dev);
	if (access(TARGET, F_OK) || access("/dev/kvm", F_OK))
		SKIP(return, "%s or /dev/kvm missing (the test guest has them)", TARGET);
	ret = make_image();
	ASSERT_EQ(0, ret) TH_LOG("making the page file failed at step %d", -ret);
	ASSERT_EQ(0, vmpf_handshake(self->dev, VMPF_FEATURE_RESTORE, &api));
	self->target = open(TARGET, O_RDONLY | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, self->target);
	self->ro = (struct vmpf_restore_open){
		.target_fd = self->target,
		.flags = VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_NO_LEASE,
	};
}

FIXTURE_TEARDOWN(rst)
{
	if (self->map != MAP_FAILED)
		munmap(self->map, TOTAL_PAGES * 4096);
	if (self->dev >= 0)
		close(self->dev);
	if (self->target >= 0)
		close(self->target);
}

#define OPEN(self) vmpf_ioctl_checked((self)->dev, VMPF_IOC_RESTORE_OPEN, &(self)->ro)

TEST_F(rst, open_without_feature)
{
	struct vmpf_api api;
	int fd = vmpf_open(vmpf_device_path());

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmpf_handshake(fd, VMPF_FEATURE_SOURCE, &api));
	EXPECT_EQ(-EOPNOTSUPP, vmpf_ioctl_checked(fd, VMPF_IOC_RESTORE_OPEN, &self->ro));
	close(fd);
}

/* The image's lease record, read from TARGET. */
static int read_lease(struct vmpf_pf_lease *l)
{
	int fd = open(TARGET, O_RDONLY | O_DIRECT);
	void *page;
	int ret = -1;

	if (fd < 0 || posix_memalign(&page, 4096, 4096))
		return -1;
	if (pread(fd, page, 4096, VMPF_PF_BLOCK) == 4096) {
		memcpy(l, (char *)page + (VMPF_PF_LEASE_OFF - VMPF_PF_BLOCK), sizeof(*l));
		ret = 0;
	}
	free(page);
	close(fd);
	return ret;
}

/* Write a lease record of another owner for the image on TARGET. */
static int write_lease(uint32_t state, uint64_t owner)
{
	struct vmpf_pf_lease l = { 0 };
	struct vmpf_pf_super sb;
	int fd = open(TARGET, O_RDONLY);

	if (fd < 0 || pread(fd, &sb, sizeof(sb), 0) != sizeof(sb))
		return -1;
	close(fd);
	memcpy(l.magic, VMPF_PF_LEASE_MAGIC, 8);
	l.generation = sb.generation;
	l.owner = htole64(owner);
	l.beat = htole64(7);
	l.takeovers = htole64(1);
	l.state = htole32(state);
	l.lease_ms = htole32(1000);
	l.pid = htole32(4242);
	strcpy((char *)l.host, "gone-host");
	l.crc = htole32(pf_crc32c(&l, sizeof(l)));
	return poke(VMPF_PF_LEASE_OFF, &l, sizeof(l));
}

/* Leases: a read-write descriptor, a 1 s lease_ms. */
static void lease_setup(struct __test_metadata *_metadata, FIXTURE_DATA(rst) *self)
{
	int fd = open("/sys/module/vmpagefile/parameters/lease_ms", O_WRONLY);

	ASSERT_LE(0, fd);
	ASSERT_EQ(4, write(fd, "1000", 4));
	close(fd);
	close(self->target);
	self->target = open(TARGET, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, self->target);
	self->ro.target_fd = self->target;
	self->ro.flags = VMPF_RESTORE_NO_PREFETCH;
}

TEST_F(rst, lease_needs_a_writable_page_file)
{
	int fd = open(TARGET, O_RDWR | O_APPEND | O_DIRECT | O_CLOEXEC);

	/* O_APPEND would put the record at the end of the file. */
	ASSERT_LE(0, fd);
	self->ro.target_fd = fd;
	self->ro.flags = VMPF_RESTORE_NO_PREFETCH;
	EXPECT_EQ(-EINVAL, OPEN(self));
	close(fd);
	self->ro.target_fd = self->target;
	EXPECT_EQ(-EROFS, OPEN(self));
	self->ro.flags |= VMPF_RESTORE_NO_LEASE;
	EXPECT_EQ(0, OPEN(self));
}

/*
 * A session takes the lease and renews it; a second session on another
 * descriptor is refused (it sees a renewal); when the first ends, the
 * record says FREE and the second takes it at once.
 */
TEST_F(rst, lease_one_owner_at_a_time)
{
	struct vmpf_restore_status st;
	struct vmpf_pf_lease l;
	struct vmpf_api api;
	int dev2 = vmpf_open(vmpf_device_path());
	uint64_t beat;
	int i;

	lease_setup(_metadata, self);
	ASSERT_LE(0, dev2);
	ASSERT_EQ(0, vmpf_handshake(dev2, VMPF_FEATURE_RESTORE, &api));
	ASSERT_TRUE(api.features & VMPF_FEATURE_LEASE);
	ASSERT_EQ(0, OPEN(self));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(VMPF_LEASE_READING, st.lease);
	ASSERT_EQ(0, read_lease(&l));
	EXPECT_EQ(0, memcmp(l.magic, VMPF_PF_LEASE_MAGIC, 8));
	EXPECT_EQ(VMPF_LEASE_READING, le32toh(l.state));
	EXPECT_EQ(getpid(), (pid_t)le32toh(l.pid));
	EXPECT_EQ(1000, le32toh(l.lease_ms));
	beat = le64toh(l.beat);
	EXPECT_EQ(-EBUSY, vmpf_ioctl_checked(dev2, VMPF_IOC_RESTORE_OPEN, &self->ro));
	/* NO_LEASE does not get around a live owner either. */
	self->ro.flags |= VMPF_RESTORE_NO_LEASE;
	EXPECT_EQ(-EBUSY, vmpf_ioctl_checked(dev2, VMPF_IOC_RESTORE_OPEN, &self->ro));
	self->ro.flags &= ~VMPF_RESTORE_NO_LEASE;
	ASSERT_EQ(0, read_lease(&l));
	EXPECT_LT(beat, le64toh(l.beat)) TH_LOG("the lease was not renewed");
	close(self->dev);
	self->dev = -1;
	/* The session's end queues the last write: FREE within moments. */
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, read_lease(&l));
		if (le32toh(l.state) == VMPF_LEASE_FREE)
			break;
		usleep(20000);
	}
	EXPECT_EQ(VMPF_LEASE_FREE, le32toh(l.state));
	EXPECT_EQ(0, vmpf_ioctl_checked(dev2, VMPF_IOC_RESTORE_OPEN, &self->ro));
	ASSERT_EQ(0, read_lease(&l));
	EXPECT_EQ(VMPF_LEASE_READING, le32toh(l.state));
	EXPECT_EQ(2, le64toh(l.takeovers));
	close(dev2);
}

/* A record nobody renews (its host died) is taken over after its period. */
TEST_F(rst, lease_silent_owner_taken_over)
{
	struct vmpf_pf_lease l;

	lease_setup(_metadata, self);
	ASSERT_EQ(0, write_lease(VMPF_LEASE_RESTORED, 0x1234));
	ASSERT_EQ(0, OPEN(self));
	ASSERT_EQ(0, read_lease(&l));
	EXPECT_EQ(VMPF_LEASE_READING, le32toh(l.state));
	EXPECT_NE(0x1234, le64toh(l.owner));
	EXPECT_EQ(2, le64toh(l.takeovers));
	EXPECT_STRNE("gone-host", (char *)l.host);
}

/* A revoked image needs force; garbage in the record means nobody owns it. */
TEST_F(rst, lease_revoked_needs_force_garbage_is_free)
{
	static const char junk[176] = "not a lease at all";

	lease_setup(_metadata, self);
	ASSERT_EQ(0, write_lease(VMPF_LEASE_REVOKED, 0x99));
	EXPECT_EQ(-EALREADY, OPEN(self));
	self->ro.flags |= VMPF_RESTORE_FORCE;
	EXPECT_EQ(0, OPEN(self));
	close(self->dev);
	self->dev = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, vmpf_handshake(self->dev, VMPF_FEATURE_RESTORE, &(struct vmpf_api){ 0 }));
	ASSERT_EQ(0, poke(VMPF_PF_LEASE_OFF, junk, sizeof(junk)));
	self->ro.flags &= ~VMPF_RESTORE_FORCE;
	EXPECT_EQ(0, OPEN(self));
}

TEST_F(rst, open_bad_flags_and_reserved)
{
	self->ro.flags = 1ULL << 7;
	EXPECT_EQ(-EINVAL, OPEN(self));
	self->ro.flags = VMPF_RESTORE_NO_LEASE;
	self->ro.reserved[2] = 1;
	EXPECT_EQ(-EINVAL, OPEN(self));
}

TEST_F(rst, open_target_without_odirect)
{
	int fd = open(TARGET, O_RDONLY);

	self->ro.target_fd = fd;
	EXPECT_EQ(-EINVAL, OPEN(self));
	close(fd);
}

TEST_F(rst, open_uncommitted)
{
	static const char zero[64];

	ASSERT_EQ(0, poke(4096, zero, sizeof(zero)));
	EXPECT_EQ(-ENODATA, OPEN(self));
}

TEST_F(rst, open_torn_commit)
{
	ASSERT_EQ(0, poke(4096 + 40, "x", 1));
	EXPECT_EQ(-EBADMSG, OPEN(self));
}

TEST_F(rst, open_corrupt_superblock)
{
	ASSERT_EQ(0, poke(60, "x", 1));
	EXPECT_EQ(-EBADMSG, OPEN(self));
}

TEST_F(rst, open_not_a_page_file)
{
	ASSERT_EQ(0, poke(0, "NOTAPAGE", 8));
	EXPECT_EQ(-EINVAL, OPEN(self));
}

TEST_F(rst, open_corrupt_table)
{
	ASSERT_EQ(0, poke(8192 + 8 * 7 + 4, "\x07", 1));
	EXPECT_EQ(-EBADMSG, OPEN(self));
}

TEST_F(rst, open_twice)
{
	ASSERT_EQ(0, OPEN(self));
	EXPECT_EQ(-EBUSY, OPEN(self));
}

TEST_F(rst, info)
{
	struct vmpf_restore_region regs[3];
	struct vmpf_restore_info ri = { .regions = (unsigned long)regs, .regions_cap = 3 };
	char state[64];

	EXPECT_EQ(-ENOENT, vmpf_ioctl_checked(self->dev, VMPF_IOC_RESTORE_INFO, &ri));
	ASSERT_EQ(0, OPEN(self));
	EXPECT_EQ(TOTAL_PAGES, self->ro.total_pages);
	EXPECT_EQ(2, self->ro.nr_regions);
	EXPECT_EQ(sizeof(STATE), self->ro.state_len);
	ri.state = (unsigned long)state;
	ri.state_cap = 4;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_RESTORE_INFO, &ri));
	ri.state_cap = sizeof(state);
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_RESTORE_INFO, &ri));
	EXPECT_EQ(2, ri.nr_regions);
	EXPECT_STREQ(STATE, state);
	EXPECT_EQ(0, regs[0].gpa);
	EXPECT_EQ(1ULL << 32, regs[1].gpa);
	EXPECT_EQ(SLOT_BYTES, regs[1].size);
	EXPECT_EQ(SLOT_BYTES, regs[1].offset);
	EXPECT_EQ(1, regs[1].slot);
}

TEST_F(rst, mmap_errors)
{
	void *p;

	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENODEV, errno);
	ASSERT_EQ(0, OPEN(self));
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, self->dev, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, (TOTAL_PAGES + 1) * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->dev, TOTAL_PAGES * 4096);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(rst, prefetch_bad_input)
{
	struct vmpf_prefetch pf = { .op = 3 };

	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_PREFETCH, &pf));
	pf.op = VMPF_PREFETCH_RUN;
	EXPECT_EQ(-ENOENT, vmpf_ioctl_checked(self->dev, VMPF_IOC_PREFETCH, &pf));
	pf.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_PREFETCH, &pf));
}

/* Faults only: each touched page is read on demand, nothing else. */
TEST_F(rst, lazy_faults)
{
	struct vmpf_restore_status st;
	int i;

	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(VMPF_RESTORE_RUNNING, st.phase);
	EXPECT_EQ(0, st.resident);

	EXPECT_TRUE(check_page(self->map + 4 * 4096, 4));		/* data */
	EXPECT_TRUE(check_page(self->map + 5 * 4096, 5));		/* zero */
	EXPECT_TRUE(check_page(self->map + 300 * 4096, 300));	/* slot 1 */
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(3, st.resident);
	EXPECT_EQ(3, st.demand_pages);
	EXPECT_EQ(1, st.zero_pages);
	EXPECT_EQ(0, st.prefetched);

	/* Ordinary memory from now on: writes stick, re-reads need no I/O. */
	self->map[4 * 4096 + 100] = 0x42;
	EXPECT_EQ(0x42, self->map[4 * 4096 + 100]);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(3, st.resident);

	/* Touch the rest: complete. */
	for (i = 0; i < TOTAL_PAGES; i++)
		if (i != 4)
			ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(VMPF_RESTORE_COMPLETE, st.phase);
	EXPECT_EQ(TOTAL_PAGES, st.resident);
}

/* Concurrent faults on one page: one read. */
#define FAULTERS 8

struct faulters {
	unsigned char *p;
	pthread_barrier_t go;
	int ok[FAULTERS];
};

static void *fault_one(void *arg)
{
	struct faulters *f = arg;
	static int next;
	int me = __atomic_fetch_add(&next, 1, __ATOMIC_SEQ_CST) % FAULTERS;

	pthread_barrier_wait(&f->go);
	f->ok[me] = check_page(f->p, 7);
	return NULL;
}

TEST_F(rst, concurrent_faults_one_read)
{
	struct faulters f;
	struct vmpf_restore_status st;
	pthread_t t[FAULTERS];
	int i;

	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	f.p = self->map + 7 * 4096;
	pthread_barrier_init(&f.go, NULL, FAULTERS);
	for (i = 0; i < FAULTERS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, fault_one, &f));
	for (i = 0; i < FAULTERS; i++) {
		pthread_join(t[i], NULL);
		EXPECT_TRUE(f.ok[i]);
	}
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(1, st.demand_pages);
	EXPECT_EQ(1, st.resident);
	pthread_barrier_destroy(&f.go);
}

TEST_F(rst, corrupt_page_sigbus)
{
	struct vmpf_restore_status st;

	ASSERT_EQ(0, poke(DATA_OFF + 10 * 4096 + 99, "\xee", 1));
	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	EXPECT_TRUE(touch_sigbus(self->map + 10 * 4096));
	EXPECT_TRUE(touch_sigbus(self->map + 10 * 4096 + 5));	/* never mapped */
	EXPECT_FALSE(touch_sigbus(self->map + 9 * 4096));
	EXPECT_TRUE(check_page(self->map + 9 * 4096, 9));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(1, st.bad_pages);
	EXPECT_EQ(1, st.crc_errors);
	EXPECT_EQ(10, st.first_bad);
	EXPECT_NE(NULL, strstr((char *)st.message, "page 10: crc32c mismatch"));
}

TEST_F(rst, prefetch_completes)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_restore_status st;
	int i;

	self->ro.flags = VMPF_RESTORE_NO_LEASE;
	ASSERT_EQ(0, OPEN(self));
	ASSERT_EQ(1, poll(&pfd, 1, 60000));
	EXPECT_TRUE(pfd.revents & POLLIN);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(VMPF_RESTORE_COMPLETE, st.phase);
	EXPECT_EQ(TOTAL_PAGES, st.prefetched);
	EXPECT_EQ(0, st.prefetching);
	EXPECT_LT(0, st.complete_ns);
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	for (i = 0; i < TOTAL_PAGES; i++)
		ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(0, st.demand_pages);
}

TEST_F(rst, prefetch_started_later)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_prefetch pf = { .op = VMPF_PREFETCH_RUN, .rate = 0 };
	struct vmpf_restore_status st;

	ASSERT_EQ(0, OPEN(self));
	EXPECT_EQ(0, poll(&pfd, 1, 200));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(0, st.resident);
	EXPECT_EQ(0, st.prefetching);
	vmpf_ioctl(self->dev, VMPF_IOC_PREFETCH, &pf);
	ASSERT_EQ(1, poll(&pfd, 1, 60000));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(TOTAL_PAGES, st.resident);
}

TEST_F(rst, close_during_prefetch)
{
	struct vmpf_dev_info before, after;
	struct vmpf_api api;
	int fd;

	vmpf_ioctl(self->dev, VMPF_IOC_DEV_INFO, &before);
	self->ro.flags = VMPF_RESTORE_NO_LEASE;
	self->ro.prefetch_rate = 50;	/* slow: still running at close */
	ASSERT_EQ(0, OPEN(self));
	usleep(100000);
	close(self->dev);
	fd = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, fd);
	self->dev = fd;
	ASSERT_EQ(0, vmpf_handshake(fd, 0, &api));
	vmpf_ioctl(fd, VMPF_IOC_DEV_INFO, &after);
	EXPECT_EQ(before.sessions, after.sessions);
	EXPECT_EQ(before.mem_bytes, after.mem_bytes);
}

/* The mapping keeps the session: close first, fault after. */
TEST_F(rst, mapping_outlives_descriptor)
{
	int i;

	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	close(self->dev);
	self->dev = -1;
	for (i = 0; i < TOTAL_PAGES; i += 17)
		ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
}

/* Faults racing the prefetch: every page comes in exactly once. */
static void *fault_range(void *arg)
{
	struct faulters *f = arg;
	static int next;
	int me = __atomic_fetch_add(&next, 1, __ATOMIC_SEQ_CST) % 4, i, ok = 1;

	pthread_barrier_wait(&f->go);
	for (i = me; i < TOTAL_PAGES; i += 4)
		ok &= check_page(f->p + i * 4096, i);
	f->ok[me] = ok;
	return NULL;
}

TEST_F(rst, prefetch_racing_faults)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_restore_status st;
	struct faulters f;
	pthread_t t[4];
	int i;

	self->ro.flags = VMPF_RESTORE_NO_LEASE;
	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	f.p = self->map;
	pthread_barrier_init(&f.go, NULL, 4);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, fault_range, &f));
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		EXPECT_TRUE(f.ok[i]);
	}
	ASSERT_EQ(1, poll(&pfd, 1, 60000));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(VMPF_RESTORE_COMPLETE, st.phase);
	EXPECT_EQ(TOTAL_PAGES, st.resident);
	EXPECT_EQ(TOTAL_PAGES, st.demand_pages + st.prefetched);
	pthread_barrier_destroy(&f.go);
}

/* A refused page raises EPOLLERR for a VMM waiting on completion. */
TEST_F(rst, bad_page_wakes_poll)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };

	ASSERT_EQ(0, poke(DATA_OFF + 10 * 4096 + 99, "\xee", 1));
	self->ro.flags = VMPF_RESTORE_NO_LEASE;
	ASSERT_EQ(0, OPEN(self));
	ASSERT_EQ(1, poll(&pfd, 1, 60000));
	EXPECT_TRUE(pfd.revents & POLLERR);
	EXPECT_FALSE(pfd.revents & POLLIN);
}

/*
 * The prefetch ends with one page refused and the rest in; asked to run
 * again it has nothing to do, and the status must not say it prefetches.
 */
TEST_F(rst, prefetch_run_after_its_end)
{
	struct vmpf_prefetch pf = { .op = VMPF_PREFETCH_RUN, .rate = 0 };
	struct vmpf_restore_status st;
	int i;

	ASSERT_EQ(0, poke(DATA_OFF + 10 * 4096 + 99, "\xee", 1));
	self->ro.flags = VMPF_RESTORE_NO_LEASE;
	ASSERT_EQ(0, OPEN(self));
	for (i = 0; i < 600; i++) {
		vmpf_rstatus(self->dev, &st);
		if (!st.prefetching)
			break;
		usleep(100000);
	}
	EXPECT_EQ(0, st.prefetching);
	EXPECT_EQ(TOTAL_PAGES - 1, st.resident);
	EXPECT_EQ(1, st.bad_pages);
	vmpf_ioctl(self->dev, VMPF_IOC_PREFETCH, &pf);
	usleep(200000);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(0, st.prefetching);
	EXPECT_EQ(VMPF_RESTORE_RUNNING, st.phase);
}

/*
 * One unreadable sector under the page file (device-mapper's error target
 * in a linear map of TARGET): the prefetch reads that run of pages in one
 * request, which fails even after its retries; it then reads the run page by
 * page, so only the page on the bad sector is refused, and carries on.
 */
/*
 * For the tests that put device-mapper under the page file: TARGET's size
 * in sectors, with any leftover device @name removed; -1 without either.
 */
static long dm_sectors(const char *name)
{
	char cmd[128];
	long sectors;
	FILE *f = fopen("/sys/block/ram1/size", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &sectors) != 1)
		sectors = -1;
	fclose(f);
	if (system("dmsetup version >/dev/null 2>&1"))
		return -1;
	snprintf(cmd, sizeof(cmd), "dmsetup remove %s >/dev/null 2>&1", name);
	system(cmd);
	return sectors;
}

TEST_F(rst, prefetch_skips_unreadable_page)
{
	struct vmpf_restore_status st;
	char cmd[512];
	long sectors = dm_sectors("vmpf-hole"), bad = (DATA_OFF + 10 * 4096) / 512;
	int i, fd;

	if (sectors < 0)
		SKIP(return, "no size for %s, or no device-mapper here", TARGET);
	snprintf(cmd, sizeof(cmd),
		 "printf '0 %ld linear %s 0\n%ld 8 error\n%ld %ld linear %s %ld\n' | dmsetup create vmpf-hole",
		 bad, TARGET, bad, bad + 8, sectors - bad - 8, TARGET, bad + 8);
	ASSERT_EQ(0, system(cmd));
	fd = open("/dev/mapper/vmpf-hole", O_RDONLY | O_DIRECT);
	ASSERT_LE(0, fd);
	self->ro.target_fd = fd;
	self->ro.flags = VMPF_RESTORE_SEQUENTIAL | VMPF_RESTORE_NO_LEASE;
	ASSERT_EQ(0, OPEN(self));
	for (i = 0; i < 600; i++) {		/* 60 s: the retries take 3.4 s */
		vmpf_rstatus(self->dev, &st);
		if (st.resident + st.bad_pages == TOTAL_PAGES)
			break;
		usleep(100000);
	}
	EXPECT_EQ(TOTAL_PAGES - 1, st.resident);
	EXPECT_EQ(1, st.bad_pages);
	EXPECT_EQ(1, st.io_errors);
	EXPECT_EQ(10, st.first_bad);
	EXPECT_LE(5, st.io_retries);	/* the run's, then the page's one */
	EXPECT_NE(NULL, strstr((char *)st.message, "page 10: reading the page file failed"));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	EXPECT_TRUE(touch_sigbus(self->map + 10 * 4096));
	for (i = 0; i < TOTAL_PAGES; i++)
		if (i != 10)
			ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
	munmap(self->map, TOTAL_PAGES * 4096);
	self->map = MAP_FAILED;
	close(self->dev);
	self->dev = -1;
	close(fd);
	EXPECT_EQ(0, system("dmsetup remove vmpf-hole"));
}

/*
 * A storage outage longer than the retry budget, under a fault that may
 * not drop the mm lock (/proc/self/mem: get_user_pages without unlocking).
 * The first page read in the outage spends the whole budget and is
 * refused; the storage is then known to be failing, and the next page's
 * read fails after one retry without being refused.  That fault waits for
 * the storage to come back and gets its page: not ENOMEM (it once
 * returned VM_FAULT_OOM), not a refused page.
 */
TEST_F(rst, outage_under_unretriable_fault)
{
	long sectors = dm_sectors("vmpf-outage");
	unsigned char got[4096];
	char cmd[512], heal[512];
	int fd, mem, status;
	pid_t healer;

	if (sectors < 0)
		SKIP(return, "no size for %s, or no device-mapper here", TARGET);
	snprintf(cmd, sizeof(cmd), "echo '0 %ld linear %s 0' | dmsetup create vmpf-outage",
		 sectors, TARGET);
	ASSERT_EQ(0, system(cmd));
	/* In 1.5 s, the plain linear table again. */
	snprintf(heal, sizeof(heal),
		 "sleep 1.5; echo '0 %ld linear %s 0' | dmsetup load vmpf-outage && dmsetup resume vmpf-outage",
		 sectors, TARGET);
	fd = open("/dev/mapper/vmpf-outage", O_RDONLY | O_DIRECT);
	ASSERT_LE(0, fd);
	self->ro.target_fd = fd;
	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	snprintf(cmd, sizeof(cmd),
		 "echo '0 %ld error' | dmsetup load vmpf-outage && dmsetup resume vmpf-outage",
		 sectors);
	ASSERT_EQ(0, system(cmd));
	EXPECT_TRUE(touch_sigbus(self->map + 19 * 4096));	/* the budget, refused */
	/*
	 * A process, forked now: a thread would have to fork the shell while
	 * the fault below holds this mm's lock, which fork() needs.
	 */
	healer = fork();
	ASSERT_LE(0, healer);
	if (!healer) {
		execl("/bin/sh", "sh", "-c", heal, (char *)NULL);
		_exit(127);
	}
	mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, mem);
	EXPECT_EQ(4096, pread(mem, got, sizeof(got),
			      (off_t)(unsigned long)(self->map + 22 * 4096)))
		TH_LOG("pread of /proc/self/mem: %s", strerror(errno));
	EXPECT_TRUE(check_page(got, 22));
	ASSERT_EQ(healer, waitpid(healer, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(mem);
	munmap(self->map, TOTAL_PAGES * 4096);
	self->map = MAP_FAILED;
	close(self->dev);
	self->dev = -1;
	close(fd);
	EXPECT_EQ(0, system("dmsetup remove vmpf-outage"));
}

/* munmap racing faults: the faulting side sees EFAULT, nothing breaks. */
struct unmap_race {
	unsigned char *map;
	volatile int stop;
	long faulted, efault;
};

static void *fault_all(void *arg)
{
	struct unmap_race *u = arg;
	unsigned char buf[64];
	int i;

	for (i = 0; i < TOTAL_PAGES && !u->stop; i++) {
		struct iovec local = { buf, sizeof(buf) };
		struct iovec remote = { u->map + (long)i * 4096, sizeof(buf) };

		if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == sizeof(buf))
			u->faulted++;
		else
			u->efault++;
	}
	return NULL;
}

TEST_F(rst, munmap_during_faults)
{
	struct vmpf_dev_info before, after;
	struct unmap_race u = { 0 };
	struct vmpf_api api;
	pthread_t t;

	vmpf_ioctl(self->dev, VMPF_IOC_DEV_INFO, &before);
	ASSERT_EQ(0, OPEN(self));
	u.map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, u.map);
	ASSERT_EQ(0, pthread_create(&t, NULL, fault_all, &u));
	usleep(20000);
	munmap(u.map, TOTAL_PAGES * 4096);
	pthread_join(t, NULL);
	EXPECT_EQ(TOTAL_PAGES, u.faulted + u.efault);
	close(self->dev);
	self->dev = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, vmpf_handshake(self->dev, 0, &api));
	vmpf_ioctl(self->dev, VMPF_IOC_DEV_INFO, &after);
	EXPECT_EQ(before.sessions, after.sessions);
}

/*
 * Guest memory is a tmpfs object (kernel/guestmem.c): its pages, counted
 * by the object's st_blocks through /proc/self/map_files/.
 */
static void object_path(const void *p, char *buf, size_t n)
{
	snprintf(buf, n, "/proc/self/map_files/%lx-%lx", (unsigned long)p,
		 (unsigned long)p + TOTAL_PAGES * 4096UL);
}

static long object_pages(const void *p)
{
	struct stat sb;
	char path[96];

	object_path(p, path, sizeof(path));
	return stat(path, &sb) ? -1 : (long)(sb.st_blocks / 8);
}

/*
 * MADV_REMOVE over restored pages and pages never read: the memory goes
 * back (the object's blocks), every page of the hole reads zero, and the
 * pages never read are never read from the page file afterwards.
 */
TEST_F(rst, hole_returns_memory_and_reads_zero)
{
	struct vmpf_restore_status st;
	int i;

	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	ASSERT_EQ(0, object_pages(self->map)) TH_LOG("the object's blocks: %s", strerror(errno));
	for (i = 0; i < 30; i++)
		ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(30, st.resident);
	EXPECT_EQ(30, st.demand_pages);
	EXPECT_EQ(30, object_pages(self->map));

	ASSERT_EQ(0, madvise(self->map, 60 * 4096, MADV_REMOVE)) TH_LOG("%s", strerror(errno));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(30, st.discarded);
	EXPECT_EQ(60, st.resident);
	EXPECT_EQ(0, object_pages(self->map));
	for (i = 0; i < 60; i++)
		ASSERT_TRUE(vmpf_page_is_clear(self->map + i * 4096)) TH_LOG("page %d", i);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(30, st.demand_pages);		/* none read again */
	EXPECT_EQ(60, st.resident);

	/* Writes in the hole stick; past it, the page file's pages. */
	self->map[40 * 4096 + 1] = 0x5a;
	EXPECT_EQ(0x5a, self->map[40 * 4096 + 1]);
	EXPECT_TRUE(check_page(self->map + 60 * 4096, 60));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(31, st.demand_pages);
}

/*
 * Holes punched over every page while the prefetch runs: whichever came
 * first, every page ends zero; none is read from the page file after its
 * hole.
 */
TEST_F(rst, hole_racing_prefetch)
{
	struct pollfd pfd = { .fd = self->dev, .events = POLLIN };
	struct vmpf_restore_status st;
	int i, round;

	/* Slow enough that the holes meet it half-way. */
	self->ro.flags = VMPF_RESTORE_SEQUENTIAL | VMPF_RESTORE_NO_LEASE;
	self->ro.prefetch_rate = 1000;
	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	do {
		usleep(10000);
		vmpf_rstatus(self->dev, &st);
	} while (st.prefetched < TOTAL_PAGES / 4);
	for (round = 0; round < 4; round++)
		for (i = 0; i < TOTAL_PAGES; i += 16)
			ASSERT_EQ(0, madvise(self->map + i * 4096, 16 * 4096, MADV_REMOVE));
	ASSERT_EQ(1, poll(&pfd, 1, 60000));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(VMPF_RESTORE_COMPLETE, st.phase);
	for (i = 0; i < TOTAL_PAGES; i++)
		ASSERT_TRUE(vmpf_page_is_clear(self->map + i * 4096)) TH_LOG("page %d", i);
	TH_LOG("%llu pages discarded before the prefetch reached them, %llu prefetched",
	       (unsigned long long)st.discarded, (unsigned long long)st.prefetched);
	EXPECT_EQ(TOTAL_PAGES, st.discarded + st.prefetched);
	EXPECT_LT(0, st.discarded);
}

/*
 * The object's descriptor (VMPF_IOC_RESTORE_MEMFD), reopened through
 * /proc/self/fd/N as QEMU's memory-backend-file does: its mapping restores
 * pages, its punched holes (QEMU's balloon) count pages as restored and
 * zero, and read(), write() and ftruncate() wait for the restore's end
 * (EBUSY), after which it is ordinary tmpfs.
 */
TEST_F(rst, memfd_reopened_like_qemu)
{
	struct vmpf_restore_memfd mf = { 0 };
	struct vmpf_restore_status st;
	unsigned char buf[4096];
	unsigned char *map;
	char path[64];
	int fd, i;

	/* No session yet: nothing to give. */
	EXPECT_EQ(-ENOENT, vmpf_ioctl_checked(self->dev, VMPF_IOC_RESTORE_MEMFD, &mf));
	ASSERT_EQ(0, OPEN(self));
	mf.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->dev, VMPF_IOC_RESTORE_MEMFD, &mf));
	mf.reserved[1] = 0;
	ASSERT_EQ(0, vmpf_ioctl_checked(self->dev, VMPF_IOC_RESTORE_MEMFD, &mf));
	snprintf(path, sizeof(path), "/proc/self/fd/%llu", (unsigned long long)mf.fd);
	fd = open(path, O_RDWR);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", path, strerror(errno));
	close(mf.fd);
	EXPECT_EQ(TOTAL_PAGES * 4096L, lseek(fd, 0, SEEK_END));
	EXPECT_EQ(-1, pread(fd, buf, 4096, 7 * 4096));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, pwrite(fd, buf, 4096, 7 * 4096));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, ftruncate(fd, 4096));
	EXPECT_EQ(EBUSY, errno);

	map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	EXPECT_TRUE(check_page(map + 4 * 4096, 4));
	ASSERT_EQ(0, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20 * 4096,
			       10 * 4096)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(-1, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 40 * 4096 + 100,
				4096));
	EXPECT_EQ(EINVAL, errno);
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(10, st.discarded);
	EXPECT_EQ(1, st.demand_pages);
	for (i = 20; i < 30; i++)
		ASSERT_TRUE(vmpf_page_is_clear(map + i * 4096)) TH_LOG("page %d", i);
	for (i = 0; i < TOTAL_PAGES; i++)
		if (i < 20 || i >= 30)
			ASSERT_TRUE(check_page(map + i * 4096, i)) TH_LOG("page %d", i);
	vmpf_rstatus(self->dev, &st);
	ASSERT_EQ(VMPF_RESTORE_COMPLETE, st.phase);
	EXPECT_EQ(4096, pread(fd, buf, 4096, 7 * 4096));
	EXPECT_TRUE(check_page(buf, 7));
	munmap(map, TOTAL_PAGES * 4096);
	close(fd);
}

/* The page-frame number of @p (root reads them from pagemap), or 0. */
static unsigned long long page_pfn(int pagemap, const void *p)
{
	unsigned long long e = 0;

	if (pread(pagemap, &e, 8, (unsigned long)p / 4096 * 8) != 8 || !(e >> 63))
		return 0;
	return e & ((1ULL << 55) - 1);
}

/*
 * Restored pages are movable: the kernel migrates them (soft offline:
 * MADV_SOFT_OFFLINE moves a page's contents to a new page frame, as
 * compaction and NUMA balancing do) and the memory keeps its contents.
 */
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif
TEST_F(rst, pages_migrate)
{
	unsigned long long pfn[8], now;
	int pagemap, i, moved = 0;

	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_LE(0, pagemap);
	/* Data pages 10, 13, ... (every third page is a zero page). */
	for (i = 0; i < 8; i++) {
		ASSERT_TRUE(check_page(self->map + (10 + 3 * i) * 4096, 10 + 3 * i));
		pfn[i] = page_pfn(pagemap, self->map + (10 + 3 * i) * 4096);
		ASSERT_NE(0, pfn[i]);
		if (madvise(self->map + (10 + 3 * i) * 4096, 4096, MADV_SOFT_OFFLINE) &&
		    errno == EINVAL)
			SKIP(goto out, "no MADV_SOFT_OFFLINE (CONFIG_MEMORY_FAILURE)");
	}
	for (i = 0; i < 8; i++) {
		ASSERT_TRUE(check_page(self->map + (10 + 3 * i) * 4096, 10 + 3 * i));
		now = page_pfn(pagemap, self->map + (10 + 3 * i) * 4096);
		moved += now && now != pfn[i];
	}
	EXPECT_EQ(8, moved);
out:
	close(pagemap);
}

/*
 * remap_file_pages() maps a VMA's file again: the tmpfs object.  Its pages
 * must still come through the restore (filled from the page file), never
 * as tmpfs's zero pages.
 */
TEST_F(rst, remap_file_pages_still_restores)
{
	int i;

	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	ASSERT_EQ(0, remap_file_pages(self->map, 16 * 4096, 0, 32, 0)) TH_LOG("%s", strerror(errno));
	for (i = 0; i < 16; i++)
		ASSERT_TRUE(check_page(self->map + i * 4096, 32 + i)) TH_LOG("page %d", 32 + i);
	for (i = 16; i < 48; i++)
		ASSERT_TRUE(check_page(self->map + i * 4096, i)) TH_LOG("page %d", i);
}

/*
 * shmem_enabled=force (a debugging switch) makes tmpfs hand out huge
 * pages, which would be mapped whole: pages to be read from the page file
 * are refused (SIGBUS), never shown as zeros.  A zero page needs no fill:
 * tmpfs gives it a small page (the mapping is VM_NOHUGEPAGE) and it reads
 * zero.
 */
#define SHMEM_ENABLED "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
/*
 * Set shmem_enabled to "force"; its old mode goes to @old.  1 if set, 0 if
 * it cannot be (no THP), -1 on a surprise.
 */
static int shmem_force(char *old, size_t len)
{
	char buf[128] = "", *sel, *end;
	int fd = open(SHMEM_ENABLED, O_RDWR), forced;

	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof(buf) - 1) <= 0) {
		close(fd);
		return -1;
	}
	sel = strchr(buf, '[');
	end = sel ? strchr(sel, ']') : NULL;
	if (!end) {
		close(fd);
		return -1;
	}
	*end = 0;
	snprintf(old, len, "%s", sel + 1);
	forced = write(fd, "force", 5) == 5;
	close(fd);
	return forced;
}

static int shmem_restore(const char *old)
{
	int fd = open(SHMEM_ENABLED, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, old, strlen(old)) == (ssize_t)strlen(old);
	close(fd);
	return ok ? 0 : -1;
}

TEST_F(rst, forced_huge_pages_refused)
{
	struct vmpf_restore_status st;
	char old[128];
	int forced = shmem_force(old, sizeof(old));

	ASSERT_LE(0, forced);
	if (!forced)
		SKIP(return, "cannot write 'force' to %s", SHMEM_ENABLED);
	ASSERT_EQ(0, OPEN(self));
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	EXPECT_NE(MAP_FAILED, self->map);
	if (self->map != MAP_FAILED) {
		EXPECT_TRUE(touch_sigbus(self->map + 4 * 4096));	/* data */
		EXPECT_TRUE(touch_sigbus(self->map + 301 * 4096));	/* another data page */
		EXPECT_FALSE(touch_sigbus(self->map + 5 * 4096));	/* zero */
		EXPECT_TRUE(check_page(self->map + 5 * 4096, 5));
	}
	ASSERT_EQ(0, shmem_restore(old));
	vmpf_rstatus(self->dev, &st);
	EXPECT_EQ(2, st.bad_pages);
	EXPECT_NE(NULL, strstr((char *)st.message, "huge page"));
}

/*
 * The same under the prefetch, whose runs are two data pages here: the
 * first page's refusal lets go of the second, which is refused in turn;
 * the prefetch ends and a touch of either page gets SIGBUS.  (The second
 * page's in-flight bit used to stay taken: the prefetch never ended and a
 * fault on that page waited for ever.)
 */
TEST_F(rst, forced_huge_pages_prefetch_settles)
{
	struct vmpf_restore_status st;
	char old[128];
	int forced = shmem_force(old, sizeof(old)), i;

	ASSERT_LE(0, forced);
	if (!forced)
		SKIP(return, "cannot write 'force' to %s", SHMEM_ENABLED);
	self->ro.flags = VMPF_RESTORE_NO_LEASE;
	ASSERT_EQ(0, OPEN(self));
	for (i = 0; i < 200; i++) {
		vmpf_rstatus(self->dev, &st);
		if (!st.prefetching)
			break;
		usleep(100000);
	}
	ASSERT_EQ(0, shmem_restore(old));
	EXPECT_EQ(0, st.prefetching);
	EXPECT_EQ(TOTAL_PAGES, st.resident + st.bad_pages);
	EXPECT_EQ(TOTAL_PAGES - TOTAL_PAGES / 3, st.bad_pages);	/* the data pages */
	self->map = mmap(NULL, TOTAL_PAGES * 4096, PROT_READ, MAP_SHARED, self->dev, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	EXPECT_TRUE(touch_sigbus(self->map + 0 * 4096));
	EXPECT_TRUE(touch_sigbus(self->map + 1 * 4096));
	EXPECT_TRUE(check_page(self->map + 2 * 4096, 2));	/* zero */
}

TEST_HARNESS_MAIN
