// SPDX-License-Identifier: GPL-2.0
/*
 * Loading and unloading vmpagefile.ko, its device node and its parameters.
 *
 * The tests load the module themselves with finit_module(2) from
 * $VMPF_MODULE (default /lib/modules/vmpagefile.ko) and leave it loaded
 * with default parameters when they end, whatever their outcome.
 */
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmpf_test_util.h"

#define MISC_MAJOR 10
#define LOAD_UNLOAD_ROUNDS 20

static const char *module_path(void)
{
	const char *p = getenv("VMPF_MODULE");

	return p && *p ? p : "/lib/modules/vmpagefile.ko";
}

/* 0 or -errno */
static int load(const char *params)
{
	int fd = open(module_path(), O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static int unload(void)
{
	return syscall(SYS_delete_module, "vmpagefile", O_NONBLOCK) ? -errno : 0;
}

static int read_sysfs(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	if (!fgets(buf, len, f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

FIXTURE(mod) {
	int unused;
};

FIXTURE_SETUP(mod)
{
	struct stat st;

	if (stat(module_path(), &st))
		SKIP(return, "%s not found; set VMPF_MODULE", module_path());
	if (!vmpf_module_loaded())
		ASSERT_EQ(0, load(""));
}

/* Whatever a test did, leave the module loaded with default parameters. */
FIXTURE_TEARDOWN(mod)
{
	char mode[16];

	if (vmpf_module_loaded() &&
	    (read_sysfs("/sys/module/vmpagefile/parameters/dev_mode", mode,
			sizeof(mode)) || strcmp(mode, "384")))
		unload();
	if (!vmpf_module_loaded())
		load("");
}

TEST_F(mod, device_node_root_only)
{
	struct stat st;

	ASSERT_EQ(0, stat(VMPF_DEVICE_PATH, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(0, st.st_gid);
	EXPECT_EQ(MISC_MAJOR, major(st.st_rdev));
}

TEST_F(mod, sysfs_version_and_parameters)
{
	char buf[64], ver[32];
	struct vmpf_api a;
	int fd;

	ASSERT_EQ(0, read_sysfs("/sys/module/vmpagefile/version", buf, sizeof(buf)));
	fd = vmpf_open(VMPF_DEVICE_PATH);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmpf_handshake(fd, 0, &a));
	close(fd);
	vmpf_format_version(ver, sizeof(ver), a.version);
	EXPECT_STREQ(ver, buf);
	ASSERT_EQ(0, read_sysfs("/sys/module/vmpagefile/parameters/dev_mode", buf,
				sizeof(buf)));
	EXPECT_STREQ("384", buf);	/* 0600 */
}

TEST_F(mod, load_twice)
{
	EXPECT_EQ(-EEXIST, load(""));
}

TEST_F(mod, nonroot_open_denied)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd;

		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(2);
		fd = open(VMPF_DEVICE_PATH, O_RDWR);
		_exit(fd < 0 && errno == EACCES ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("an unprivileged user could open the device");
}

TEST_F(mod, unload_refused_while_open)
{
	int fd = vmpf_open(VMPF_DEVICE_PATH);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EWOULDBLOCK, unload());
	EXPECT_TRUE(vmpf_module_loaded());
	close(fd);
	EXPECT_EQ(0, unload());
}

TEST_F(mod, load_unload_repeated)
{
	struct vmpf_api a;
	struct stat st;
	int i, fd;

	for (i = 0; i < LOAD_UNLOAD_ROUNDS; i++) {
		ASSERT_EQ(0, unload()) TH_LOG("round %d", i);
		ASSERT_FALSE(vmpf_module_loaded());
		ASSERT_EQ(-1, stat(VMPF_DEVICE_PATH, &st)) TH_LOG("node left behind");
		ASSERT_EQ(0, load("")) TH_LOG("round %d", i);
		fd = vmpf_open(VMPF_DEVICE_PATH);
		ASSERT_LE(0, fd) TH_LOG("round %d: %s", i, strerror(-fd));
		EXPECT_EQ(0, vmpf_handshake(fd, 0, &a));
		close(fd);
	}
}

TEST_F(mod, dev_mode_parameter)
{
	char buf[16];
	struct stat st;

	ASSERT_EQ(0, unload());
	ASSERT_EQ(0, load("dev_mode=0660"));
	ASSERT_EQ(0, stat(VMPF_DEVICE_PATH, &st));
	EXPECT_EQ(0660, st.st_mode & 07777);
	ASSERT_EQ(0, read_sysfs("/sys/module/vmpagefile/parameters/dev_mode", buf,
				sizeof(buf)));
	EXPECT_STREQ("432", buf);	/* 0660 */
}

TEST_F(mod, dev_mode_invalid_refused)
{
	struct stat st;

	ASSERT_EQ(0, unload());
	EXPECT_EQ(-EINVAL, load("dev_mode=0777"));
	EXPECT_FALSE(vmpf_module_loaded());
	EXPECT_EQ(-1, stat(VMPF_DEVICE_PATH, &st));
}

TEST_HARNESS_MAIN
