// SPDX-License-Identifier: GPL-2.0
/*
 * The UAPI handshake and ioctl dispatch of /dev/vmpagefile: negative tests
 * first, one error path each, then the success paths.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmpf_test_util.h"

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	vmpf_open_or_skip(&self->fd);
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
}

static struct vmpf_api good_api(void)
{
	struct vmpf_api a = { .api = VMPF_API };

	return a;
}

TEST_F(dev, api_wrong_version)
{
	struct vmpf_api a = good_api();

	a.api = VMPF_API + 1;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->fd, VMPF_IOC_API, &a));
}

TEST_F(dev, api_version_zero)
{
	struct vmpf_api a = good_api();

	a.api = 0;
	EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->fd, VMPF_IOC_API, &a));
}

TEST_F(dev, api_unknown_feature_bit)
{
	struct vmpf_api a = good_api();
	unsigned int bit;

	for (bit = 0; bit < 64; bit++) {
		if (VMPF_FEATURES_ALL & (1ULL << bit))
			continue;
		a = good_api();
		a.features = 1ULL << bit;
		EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->fd, VMPF_IOC_API, &a))
			TH_LOG("feature bit %u accepted", bit);
	}
}

TEST_F(dev, api_reserved_nonzero)
{
	struct vmpf_api a;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		a = good_api();
		a.reserved[i] = 1;
		EXPECT_EQ(-EINVAL, vmpf_ioctl_checked(self->fd, VMPF_IOC_API, &a))
			TH_LOG("reserved[%u] != 0 accepted", i);
	}
}

TEST_F(dev, api_bad_pointer)
{
	EXPECT_EQ(-EFAULT, __vmpf_ioctl(self->fd, VMPF_IOC_API, NULL));
}

TEST_F(dev, api_read_only_answer)
{
	/* The kernel must fail to write the answer and not count the handshake. */
	struct vmpf_api *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct vmpf_api ok;

	ASSERT_NE(MAP_FAILED, a);
	*a = good_api();
	ASSERT_EQ(0, mprotect(a, 4096, PROT_READ));
	EXPECT_EQ(-EFAULT, __vmpf_ioctl(self->fd, VMPF_IOC_API, a));
	EXPECT_EQ(0, vmpf_handshake(self->fd, 0, &ok));
	munmap(a, 4096);
}

TEST_F(dev, api_twice)
{
	struct vmpf_api a;

	ASSERT_EQ(0, vmpf_handshake(self->fd, 0, &a));
	EXPECT_EQ(-EEXIST, vmpf_handshake(self->fd, 0, &a));
}

TEST_F(dev, api_retry_after_failure)
{
	struct vmpf_api a = good_api();

	a.api = 99;
	ASSERT_EQ(-EINVAL, vmpf_ioctl_checked(self->fd, VMPF_IOC_API, &a));
	EXPECT_EQ(0, vmpf_handshake(self->fd, 0, &a));
}

TEST_F(dev, ioctl_before_api)
{
	struct vmpf_dev_info info;

	EXPECT_EQ(-EBADFD, vmpf_ioctl_checked(self->fd, VMPF_IOC_DEV_INFO, &info));
}

TEST_F(dev, unknown_ioctl_nr)
{
	struct vmpf_api a;
	__u64 buf[8] = { 0 };

	/* Unknown numbers are ENOTTY before and after the handshake. */
	EXPECT_EQ(-ENOTTY, __vmpf_ioctl(self->fd, _IOWR(VMPF_IOCTL_MAGIC, 0x3f, __u64), buf));
	ASSERT_EQ(0, vmpf_handshake(self->fd, 0, &a));
	EXPECT_EQ(-ENOTTY, __vmpf_ioctl(self->fd, _IOWR(VMPF_IOCTL_MAGIC, 0x3f, __u64), buf));
}

TEST_F(dev, known_nr_wrong_size)
{
	struct vmpf_api a;
	__u64 buf[16] = { VMPF_API };

	/* Same number as VMPF_IOC_API, different size: a different ioctl. */
	EXPECT_EQ(-ENOTTY, __vmpf_ioctl(self->fd, _IOWR(VMPF_IOCTL_MAGIC, 0x00, __u64[16]), buf));
	ASSERT_EQ(0, vmpf_handshake(self->fd, 0, &a));
}

TEST_F(dev, foreign_magic)
{
	__u64 buf[8] = { 0 };

	EXPECT_EQ(-ENOTTY, __vmpf_ioctl(self->fd, _IOWR('V', 0x00, struct vmpf_api), buf));
}

TEST_F(dev, not_seekable_not_readable)
{
	char c;

	EXPECT_EQ(-1, lseek(self->fd, 0, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
	EXPECT_EQ(-1, read(self->fd, &c, 1));
	EXPECT_EQ(-1, write(self->fd, &c, 1));
}

TEST_F(dev, api_ok)
{
	struct vmpf_dev_info info;
	struct vmpf_api a;
	__u64 want_ioctls = 1ULL << _IOC_NR(VMPF_IOC_DEV_INFO);
	char sysver[64] = "", ver[32];
	FILE *f;

	memset(&a, 0xff, sizeof(a));
	a = good_api();
	vmpf_ioctl(self->fd, VMPF_IOC_API, &a);
	EXPECT_EQ(VMPF_API, a.api);
	EXPECT_EQ(VMPF_FEATURES_ALL, a.features);
	EXPECT_EQ(want_ioctls, a.ioctls & want_ioctls);
	EXPECT_EQ(0, a.ioctls & (1ULL << _IOC_NR(VMPF_IOC_API)));
	EXPECT_EQ(0, a.reserved[0]);
	EXPECT_EQ(0, a.reserved[1]);

	/* The version matches what modinfo/sysfs say. */
	vmpf_format_version(ver, sizeof(ver), a.version);
	f = fopen("/sys/module/vmpagefile/version", "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(sysver, sizeof(sysver), f));
	fclose(f);
	sysver[strcspn(sysver, "\n")] = 0;
	EXPECT_STREQ(sysver, ver);

	memset(&info, 0xff, sizeof(info));
	vmpf_ioctl(self->fd, VMPF_IOC_DEV_INFO, &info);
	EXPECT_EQ(a.version, info.version);
	EXPECT_EQ(VMPF_FEATURES_ALL, info.features);
	EXPECT_LE(1, info.open_files);
	EXPECT_LE(1, info.mem_bytes);
	EXPECT_EQ(0, info.reserved);
}

TEST_F(dev, handshake_is_per_file)
{
	struct vmpf_dev_info info;
	struct vmpf_api a;
	int fd2;

	ASSERT_EQ(0, vmpf_handshake(self->fd, 0, &a));
	fd2 = vmpf_open(vmpf_device_path());
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-EBADFD, vmpf_ioctl_checked(fd2, VMPF_IOC_DEV_INFO, &info));
	EXPECT_EQ(0, vmpf_handshake(fd2, 0, &a));
	EXPECT_EQ(0, vmpf_ioctl_checked(fd2, VMPF_IOC_DEV_INFO, &info));
	close(fd2);
}

/* Many threads race the handshake on one file: exactly one wins. */
#define RACERS 8

struct race {
	int fd;
	pthread_barrier_t start;
	int result[RACERS];
};

static void *race_api(void *arg)
{
	struct race *r = arg;
	static int next;
	int me = __atomic_fetch_add(&next, 1, __ATOMIC_SEQ_CST) % RACERS;
	struct vmpf_api a;

	pthread_barrier_wait(&r->start);
	r->result[me] = vmpf_handshake(r->fd, 0, &a);
	return NULL;
}

TEST_F(dev, api_race_one_winner)
{
	pthread_t t[RACERS];
	struct race r = { .fd = self->fd };
	int i, ok = 0, exist = 0;

	pthread_barrier_init(&r.start, NULL, RACERS);
	for (i = 0; i < RACERS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, race_api, &r));
	for (i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < RACERS; i++) {
		ok += r.result[i] == 0;
		exist += r.result[i] == -EEXIST;
	}
	EXPECT_EQ(1, ok);
	EXPECT_EQ(RACERS - 1, exist);
	pthread_barrier_destroy(&r.start);
}

/* Threads opening and closing the device at once; counters return to rest. */
#define OPENERS 16
#define OPENS_PER_THREAD 500

static void *open_close(void *arg)
{
	long fails = 0;
	int i;

	(void)arg;
	for (i = 0; i < OPENS_PER_THREAD; i++) {
		struct vmpf_api a;
		int fd = vmpf_open(vmpf_device_path());

		if (fd < 0) {
			fails++;
			continue;
		}
		if (i % 2 && vmpf_handshake(fd, 0, &a))
			fails++;
		close(fd);
	}
	return (void *)fails;
}

TEST_F(dev, open_close_many_threads)
{
	struct vmpf_dev_info before, after;
	pthread_t t[OPENERS];
	struct vmpf_api a;
	long fails = 0;
	int i;

	ASSERT_EQ(0, vmpf_handshake(self->fd, 0, &a));
	vmpf_ioctl(self->fd, VMPF_IOC_DEV_INFO, &before);
	for (i = 0; i < OPENERS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, open_close, NULL));
	for (i = 0; i < OPENERS; i++) {
		void *ret;

		pthread_join(t[i], &ret);
		fails += (long)ret;
	}
	EXPECT_EQ(0, fails);
	vmpf_ioctl(self->fd, VMPF_IOC_DEV_INFO, &after);
	EXPECT_EQ(before.open_files, after.open_files);
	EXPECT_EQ(before.mem_bytes, after.mem_bytes);
}

/* Sessions need a descriptor opened for writing; counters do not. */
TEST(api_read_only_descriptor)
{
	struct vmpf_api a = good_api();
	struct vmpf_dev_info info;
	int fd = open(vmpf_device_path(), O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		SKIP(return, "cannot open %s", vmpf_device_path());
	a.features = VMPF_FEATURE_SOURCE;
	EXPECT_EQ(-1, ioctl(fd, VMPF_IOC_API, &a));
	EXPECT_EQ(EBADF, errno);
	a = good_api();
	a.features = VMPF_FEATURE_RESTORE;
	EXPECT_EQ(-1, ioctl(fd, VMPF_IOC_API, &a));
	EXPECT_EQ(EBADF, errno);
	a = good_api();
	EXPECT_EQ(0, ioctl(fd, VMPF_IOC_API, &a));
	EXPECT_EQ(0, ioctl(fd, VMPF_IOC_DEV_INFO, &info));
	close(fd);
}

TEST_HARNESS_MAIN
