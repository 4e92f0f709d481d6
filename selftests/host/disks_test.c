// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side unit tests of vmpf-ctl's disk mirroring (tools/ctl_disks.c)
 * against a fake QMP monitor: a thread on the other end of a socketpair
 * that answers each command with the text the test set for it, as QEMU
 * 7.2 prints it, and keeps the commands it was sent.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "ctl_disks.h"

#define NCMD 8

static struct {
	const char *cmd[NCMD];		/* command name ... */
	const char *reply[NCMD];	/* ... and its answer line */
	char sent[1 << 14];		/* every command line received */
	int fd;
	pthread_t t;
} fake;

static void answer(const char *cmd, const char *reply)
{
	int i;

	for (i = 0; i < NCMD; i++)
		if (!fake.cmd[i] || !strcmp(fake.cmd[i], cmd)) {
			fake.cmd[i] = cmd;
			fake.reply[i] = reply;
			return;
		}
}

static void *serve(void *arg)
{
	char buf[8192], name[64];
	size_t len = 0;
	ssize_t n;

	(void)arg;
	while ((n = read(fake.fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
		char *nl;

		len += n;
		buf[len] = 0;
		while ((nl = strchr(buf, '\n'))) {
			const char *r = "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no answer set\"}}";
			char *e = strstr(buf, "\"execute\": \"");
			int i;

			*nl = 0;
			strncat(fake.sent, buf, sizeof(fake.sent) - strlen(fake.sent) - 2);
			strcat(fake.sent, "\n");
			if (e && sscanf(e + 12, "%63[^\"]", name) == 1)
				for (i = 0; i < NCMD && fake.cmd[i]; i++)
					if (!strcmp(fake.cmd[i], name))
						r = fake.reply[i];
			/* An event first, as QEMU sends them at any time. */
			if (dprintf(fake.fd, "{\"event\": \"JOB_STATUS_CHANGE\", \"data\": {}}\n%s\n", r) < 0)
				return NULL;
			len -= nl + 1 - buf;
			memmove(buf, nl + 1, len + 1);
		}
	}
	return NULL;
}

FIXTURE(disks) {
	struct qmp q;
	struct ctl_disks ds;
	char dir[64];
	char why[700];
};

FIXTURE_SETUP(disks)
{
	int sv[2];

	memset(&fake, 0, sizeof(fake));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	memset(&self->q, 0, sizeof(self->q));
	self->q.fd = sv[0];
	fake.fd = sv[1];
	ASSERT_EQ(0, pthread_create(&fake.t, NULL, serve, NULL));
	strcpy(self->dir, "/tmp/vmpf-disks-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	self->why[0] = 0;
}

FIXTURE_TEARDOWN(disks)
{
	char cmd[128];

	close(self->q.fd);
	pthread_join(fake.t, NULL);
	close(fake.fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("could not remove %s", self->dir);
}

/* A -drive disk, a CD-ROM (read-only), an empty drive, a -blockdev disk. */
static const char *query_block =
	"{\"return\": [{\"io-status\": \"ok\", \"device\": \"disk0\", \"locked\": false, \"removable\": false, "
	"\"inserted\": {\"iops_rd\": 0, \"image\": {\"virtual-size\": 8388608, \"filename\": \"/x/other.raw\", "
	"\"format\": \"raw\", \"backing-image\": {\"filename\": \"/x/base.raw\", \"format\": \"raw\"}}, "
	"\"ro\": false, \"node-name\": \"#block123\", \"drv\": \"raw\", \"cache\": {\"no-flush\": false, \"direct\": false, \"writeback\": true}, "
	"\"file\": \"/local/vm/disk.raw\", \"encrypted\": false}, \"qdev\": \"/machine/peripheral-anon/device[0]/virtio-backend\", \"type\": \"unknown\"}, "
	"{\"io-status\": \"ok\", \"device\": \"cd0\", \"locked\": false, \"removable\": true, \"inserted\": {\"ro\": true, "
	"\"node-name\": \"#block456\", \"drv\": \"raw\", \"file\": \"/iso/boot.iso\"}, \"tray_open\": false, \"type\": \"unknown\"}, "
	"{\"device\": \"floppy0\", \"locked\": false, \"removable\": true, \"type\": \"unknown\"}, "
	"{\"device\": \"\", \"locked\": false, \"removable\": false, \"inserted\": {\"ro\": false, \"node-name\": \"data1\", "
	"\"drv\": \"qcow2\", \"file\": \"/local/vm/data.qcow2\"}, \"qdev\": \"data1dev\", \"type\": \"unknown\"}]}";

TEST_F(disks, plan_takes_writable_disks)
{
	answer("query-block", query_block);
	ASSERT_EQ(0, disks_plan(&self->q, self->dir, &self->ds, self->why, sizeof(self->why))) {
		TH_LOG("%s", self->why);
	}
	ASSERT_EQ(2, self->ds.n);
	EXPECT_EQ(1, self->ds.skipped_ro);
	EXPECT_STREQ("disk0", self->ds.d[0].device);
	EXPECT_STREQ("raw", self->ds.d[0].fmt);
	EXPECT_STREQ("/local/vm/disk.raw", self->ds.d[0].src);
	EXPECT_STREQ("vmpf-mirror-disk0", self->ds.d[0].job);
	EXPECT_NE(NULL, strstr(self->ds.d[0].target, "/disk.raw"));
	/* A -blockdev has no drive name: its node's. */
	EXPECT_STREQ("data1", self->ds.d[1].device);
	EXPECT_STREQ("qcow2", self->ds.d[1].fmt);
}

TEST_F(disks, plan_never_overwrites)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/disk.raw", self->dir);
	f = fopen(path, "w");
	ASSERT_NE(NULL, f);
	fclose(f);
	answer("query-block", query_block);
	EXPECT_EQ(-1, disks_plan(&self->q, self->dir, &self->ds, self->why, sizeof(self->why)));
	EXPECT_NE(NULL, strstr(self->why, "exists already"));
}

TEST_F(disks, plan_refuses)
{
	answer("query-block",
	       "{\"return\": [{\"device\": \"a\", \"inserted\": {\"ro\": false, \"node-name\": \"n1\", \"drv\": \"raw\", \"file\": \"/one/d.raw\"}}, "
	       "{\"device\": \"b\", \"inserted\": {\"ro\": false, \"node-name\": \"n2\", \"drv\": \"raw\", \"file\": \"/two/d.raw\"}}]}");
	EXPECT_EQ(-1, disks_plan(&self->q, self->dir, &self->ds, self->why, sizeof(self->why)));
	EXPECT_NE(NULL, strstr(self->why, "would both be copied")) TH_LOG("%s", self->why);

	answer("query-block",
	       "{\"return\": [{\"device\": \"a\", \"inserted\": {\"ro\": false, \"node-name\": \"n1\", \"drv\": \"raw\", \"file\": \"/x/d\\u00e9.raw\"}}]}");
	EXPECT_EQ(-1, disks_plan(&self->q, self->dir, &self->ds, self->why, sizeof(self->why)));
	EXPECT_NE(NULL, strstr(self->why, "not an image file that vmpf-ctl can name"));

	answer("query-block",
	       "{\"return\": [{\"device\": \"a\", \"inserted\": {\"ro\": false, \"node-name\": \"n1\", \"drv\": \"raw\", \"file\": \"nbd://host/x\"}}]}");
	EXPECT_EQ(-1, disks_plan(&self->q, self->dir, &self->ds, self->why, sizeof(self->why)));
	EXPECT_NE(NULL, strstr(self->why, "not an image file"));

	answer("query-block", query_block);
	EXPECT_EQ(-1, disks_plan(&self->q, "/nonexistent-dir", &self->ds, self->why, sizeof(self->why)));
	EXPECT_NE(NULL, strstr(self->why, "is not a directory"));
}

TEST_F(disks, start_poll_finish)
{
	answer("query-block", query_block);
	answer("drive-mirror", "{\"return\": {}}");
	ASSERT_EQ(0, disks_plan(&self->q, self->dir, &self->ds, self->why, sizeof(self->why)));
	ASSERT_EQ(0, disks_start(&self->q, &self->ds, self->why, sizeof(self->why)));
	EXPECT_NE(NULL, strstr(fake.sent, "\"job-id\": \"vmpf-mirror-disk0\", \"device\": \"disk0\""));
	EXPECT_NE(NULL, strstr(fake.sent, "\"format\": \"qcow2\", \"sync\": \"full\", \"mode\": \"absolute-paths\", \"auto-dismiss\": false"));

	/* Newest job first, as QEMU lists them; one not ready yet. */
	answer("query-block-jobs",
	       "{\"return\": [{\"auto-finalize\": true, \"io-status\": \"ok\", \"device\": \"vmpf-mirror-data1\", \"auto-dismiss\": false, \"busy\": true, \"len\": 1048576, \"offset\": 524288, \"paused\": false, \"speed\": 0, \"ready\": false, \"status\": \"running\", \"type\": \"mirror\"}, "
	       "{\"device\": \"vmpf-mirror-disk0\", \"len\": 8388608, \"offset\": 8388608, \"ready\": true, \"status\": \"ready\", \"type\": \"mirror\"}]}");
	EXPECT_EQ(0, disks_poll(&self->q, &self->ds, self->why, sizeof(self->why)));
	EXPECT_EQ(1, self->ds.d[0].ready);
	EXPECT_EQ(0, self->ds.d[1].ready);
	EXPECT_EQ(524288, self->ds.d[1].len - self->ds.d[1].offset);

	answer("query-block-jobs",
	       "{\"return\": [{\"device\": \"vmpf-mirror-data1\", \"len\": 1048576, \"offset\": 1048576, \"ready\": true, \"status\": \"ready\"}, "
	       "{\"device\": \"vmpf-mirror-disk0\", \"len\": 8388608, \"offset\": 8388608, \"ready\": true, \"status\": \"ready\"}]}");
	EXPECT_EQ(1, disks_poll(&self->q, &self->ds, self->why, sizeof(self->why)));

	/* The source's end: cancel in sync, the jobs conclude without error. */
	answer("block-job-cancel", "{\"return\": {}}");
	answer("job-dismiss", "{\"return\": {}}");
	answer("query-block-jobs",
	       "{\"return\": [{\"device\": \"vmpf-mirror-data1\", \"len\": 1048576, \"offset\": 1048576, \"ready\": false, \"status\": \"concluded\"}, "
	       "{\"device\": \"vmpf-mirror-disk0\", \"len\": 8388608, \"offset\": 8388608, \"ready\": false, \"status\": \"concluded\"}]}");
	ASSERT_EQ(0, disks_finish(&self->q, &self->ds, 0, self->why, sizeof(self->why))) {
		TH_LOG("%s", self->why);
	}
	EXPECT_EQ(1, self->ds.d[0].done);
	EXPECT_EQ(0, self->ds.d[0].moved);
	EXPECT_NE(NULL, strstr(fake.sent, "\"block-job-cancel\", \"arguments\": {\"device\": \"vmpf-mirror-disk0\"}"));
	EXPECT_NE(NULL, strstr(fake.sent, "\"job-dismiss\", \"arguments\": {\"id\": \"vmpf-mirror-data1\"}"));
}

TEST_F(disks, a_failed_job_fails_with_its_error)
{
	answer("query-block", query_block);
	answer("drive-mirror", "{\"return\": {}}");
	ASSERT_EQ(0, disks_plan(&self->q, self->dir, &self->ds, self->why, sizeof(self->why)));
	ASSERT_EQ(0, disks_start(&self->q, &self->ds, self->why, sizeof(self->why)));
	answer("query-block-jobs",
	       "{\"return\": [{\"device\": \"vmpf-mirror-data1\", \"len\": 1048576, \"offset\": 4096, \"ready\": false, \"status\": \"running\"}, "
	       "{\"device\": \"vmpf-mirror-disk0\", \"len\": 8388608, \"offset\": 1048576, \"ready\": false, \"status\": \"concluded\", \"error\": \"No space left on device\"}]}");
	EXPECT_EQ(-1, disks_poll(&self->q, &self->ds, self->why, sizeof(self->why)));
	EXPECT_NE(NULL, strstr(self->why, "the mirror of disk disk0"));
	EXPECT_NE(NULL, strstr(self->why, "No space left on device"));
}

TEST_F(disks, abort_keeps_a_disk_qemu_moved_onto)
{
	char t0[PATH_MAX], t1[PATH_MAX];
	FILE *f;

	answer("query-block", query_block);
	answer("drive-mirror", "{\"return\": {}}");
	ASSERT_EQ(0, disks_plan(&self->q, self->dir, &self->ds, self->why, sizeof(self->why)));
	ASSERT_EQ(0, disks_start(&self->q, &self->ds, self->why, sizeof(self->why)));
	/* QEMU created the targets. */
	strcpy(t0, self->ds.d[0].target);
	strcpy(t1, self->ds.d[1].target);
	f = fopen(t0, "w");
	ASSERT_NE(NULL, f);
	fclose(f);
	f = fopen(t1, "w");
	ASSERT_NE(NULL, f);
	fclose(f);
	answer("query-block-jobs",
	       "{\"return\": [{\"device\": \"vmpf-mirror-data1\", \"ready\": true, \"status\": \"ready\"}, "
	       "{\"device\": \"vmpf-mirror-disk0\", \"ready\": true, \"status\": \"ready\"}]}");
	ASSERT_EQ(1, disks_poll(&self->q, &self->ds, self->why, sizeof(self->why)));
	/* The destination's pivot: disk0 moves, data1's complete is refused. */
	self->ds.d[0].pivoting = 1;
	answer("block-job-cancel", "{\"return\": {}}");
	answer("job-dismiss", "{\"return\": {}}");
	answer("query-block-jobs",
	       "{\"return\": [{\"device\": \"vmpf-mirror-data1\", \"status\": \"concluded\", \"error\": \"Operation cancelled\"}, "
	       "{\"device\": \"vmpf-mirror-disk0\", \"status\": \"concluded\"}]}");
	disks_abort(&self->q, &self->ds);
	EXPECT_EQ(1, self->ds.d[0].moved);
	EXPECT_EQ(0, access(t0, F_OK));		/* QEMU runs on it: kept */
	EXPECT_NE(0, access(t1, F_OK));		/* partial: removed */
	/* Only the one not moving was force-cancelled. */
	EXPECT_NE(NULL, strstr(fake.sent, "{\"device\": \"vmpf-mirror-data1\", \"force\": true}"));
	EXPECT_EQ(NULL, strstr(fake.sent, "{\"device\": \"vmpf-mirror-disk0\", \"force\": true}"));
}

TEST_HARNESS_MAIN
