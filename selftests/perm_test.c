// SPDX-License-Identifier: GPL-2.0
/*
 * Permissions: /dev/vmpagefile is root's by default; an unprivileged
 * process cannot open it, cannot take a root VMM's session descriptor (nor
 * can vmpf-ctl for it), and even when granted the device node it cannot
 * attach a VM it does not own or drive a session it was not given.  The
 * unprivileged side is a child that drops to uid/gid 65534 (nobody).
 */
#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmpf_test_util.h"

#define NOBODY	65534
#define TARGET	"/dev/ram0"

/* Run @fn(@arg) as nobody in a child; its exit status. */
static int as_nobody(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(100);
		_exit(fn(arg));
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

TEST(node_is_root_only)
{
	struct stat st;

	ASSERT_EQ(0, stat(vmpf_device_path(), &st)) TH_LOG("module not loaded?");
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(0, st.st_gid);
}

static int open_device(void *arg)
{
	int fd;

	if (access("/dev", X_OK))
		return 2;	/* refused before the node: proves nothing */
	fd = open(vmpf_device_path(), O_RDWR);

	return fd < 0 && errno == EACCES ? 0 : 1;
}

TEST(unprivileged_open_refused)
{
	EXPECT_EQ(0, as_nobody(open_device, NULL));
}

/* A root "VMM" with a session; the child tries to reach it. */
struct vmm {
	int kvm, vm, dev, target;
	void *mem;
	pid_t pid;
};

static int vmm_setup(struct vmm *v)
{
	struct kvm_userspace_memory_region r = { .slot = 0, .memory_size = 1 << 20 };
	struct vmpf_region reg = { .slot = 0, .size = 1 << 20 };
	struct vmpf_source_attach at = { .regions = (unsigned long)&reg, .nr_regions = 1 };
	struct vmpf_api api;

	v->pid = getpid();
	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	v->vm = v->kvm < 0 ? -1 : ioctl(v->kvm, KVM_CREATE_VM, 0);
	v->dev = vmpf_open(vmpf_device_path());
	v->target = open(TARGET, O_RDWR | O_DIRECT | O_CLOEXEC);
	v->mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->vm < 0 || v->dev < 0 || v->target < 0 || v->mem == MAP_FAILED ||
	    vmpf_handshake(v->dev, VMPF_FEATURE_SOURCE, &api))
		return -1;
	r.userspace_addr = reg.uaddr = (unsigned long)v->mem;
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &r))
		return -1;
	at.vm_fd = v->vm;
	at.target_fd = v->target;
	return __vmpf_ioctl(v->dev, VMPF_IOC_SOURCE_ATTACH, &at);
}

static void vmm_teardown(struct vmm *v)
{
	close(v->dev);
	close(v->target);
	close(v->vm);
	close(v->kvm);
	munmap(v->mem, 1 << 20);
}

/* pidfd_getfd() of the root VMM's session descriptor: ptrace rules say no. */
static int steal_session(void *arg)
{
	struct vmm *v = arg;
	int pidfd = syscall(SYS_pidfd_open, v->pid, 0), fd;

	if (pidfd < 0)
		return 2;
	fd = syscall(SYS_pidfd_getfd, pidfd, v->dev, 0);
	return fd < 0 && errno == EPERM ? 0 : 1;
}

TEST(unprivileged_cannot_take_a_session)
{
	struct vmm v;

	ASSERT_EQ(0, vmm_setup(&v));
	EXPECT_EQ(0, as_nobody(steal_session, &v));
	vmm_teardown(&v);
}

/* vmpf-ctl run as nobody against the root VMM: a sentence, exit 1. */
static int ctl_status(void *arg)
{
	char pid[32];
	int out;

	snprintf(pid, sizeof(pid), "%d", ((struct vmm *)arg)->pid);
	out = open("/tmp/perm_ctl.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		return 2;
	dup2(out, 1);
	dup2(out, 2);
	execlp("vmpf-ctl", "vmpf-ctl", "status", "--pid", pid, (char *)NULL);
	return 3;
}

TEST(vmpf_ctl_as_unprivileged_user)
{
	char buf[512] = "";
	struct vmm v;
	int fd, rc;

	if (access("/bin/vmpf-ctl", X_OK))
		SKIP(return, "no vmpf-ctl in /bin");
	ASSERT_EQ(0, vmm_setup(&v));
	unlink("/tmp/perm_ctl.out");
	rc = as_nobody(ctl_status, &v);
	fd = open("/tmp/perm_ctl.out", O_RDONLY);
	if (fd >= 0) {
		ASSERT_LE(0, read(fd, buf, sizeof(buf) - 1));
		close(fd);
	}
	EXPECT_EQ(1, rc) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "Permission denied")) TH_LOG("%s", buf);
	vmm_teardown(&v);
}

/*
 * Granted the device node (as a udev rule would), nobody still cannot
 * attach root's VM (inherited descriptor, another mm), nor finish, mark or
 * abort through a descriptor it opened itself: those need a session.
 */
static int granted(void *arg)
{
	struct vmm *v = arg;
	struct vmpf_region reg = { .slot = 0, .size = 1 << 20, .uaddr = (unsigned long)v->mem };
	struct vmpf_source_attach at = {
		.vm_fd = v->vm, .target_fd = v->target,
		.regions = (unsigned long)&reg, .nr_regions = 1,
	};
	struct vmpf_api api;
	int fd = vmpf_open(vmpf_device_path());

	if (fd < 0 || vmpf_handshake(fd, VMPF_FEATURE_SOURCE, &api))
		return 2;
	if (__vmpf_ioctl(fd, VMPF_IOC_SOURCE_ATTACH, &at) != -EPERM)
		return 3;
	if (__vmpf_ioctl(fd, VMPF_IOC_ABORT, NULL) != -ENOENT)
		return 4;
	return 0;
}

TEST(granted_node_still_needs_own_vm)
{
	struct vmm v;
	int rc;

	ASSERT_EQ(0, vmm_setup(&v));
	ASSERT_EQ(0, chmod(vmpf_device_path(), 0666));
	/* The child inherits v.vm and v.target: descriptors without O_CLOEXEC. */
	fcntl(v.vm, F_SETFD, 0);
	fcntl(v.target, F_SETFD, 0);
	rc = as_nobody(granted, &v);
	chmod(vmpf_device_path(), 0600);
	EXPECT_EQ(0, rc) TH_LOG("step %d let nobody through", rc);
	vmm_teardown(&v);
}

TEST_HARNESS_MAIN
