// SPDX-License-Identifier: GPL-2.0
/*
 * cpu.max enforcement of a session's throttle, see cgroup.h.
 *
 * The guardian is a child of vmpf-ctl in a session of its own (no signal
 * from the terminal reaches it) that blocks reading a pipe whose only
 * writer is vmpf-ctl.  Whenever vmpf-ctl ends (returns, is killed with
 * any signal, even SIGKILL) the kernel closes the writer, the guardian
 * reads end-of-file and writes the old cpu.max back.  vmpf-ctl writes
 * cpu.max only while the guardian runs, and only before it closes the
 * pipe, so the guardian's write is always the last one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int ret = -1;

	if (!f)
		return -1;
	if (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, "\n")] = 0;
		ret = 0;
	}
	fclose(f);
	return ret;
}

static int write_str(const char *dir, const char *file, const char *s)
{
	char path[600];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	return 0;
}

/* Where cgroup v2 is mounted, from /proc/self/mountinfo. */
static int cgroup2_mount(char *buf, size_t len)
{
	char line[1024], root[256], mnt[512];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - cgroup2 ");

		if (!sep || sscanf(line, "%*s %*s %*s %255s %511s", root, mnt) != 2)
			continue;
		if (strcmp(root, "/"))
			continue;
		snprintf(buf, len, "%s", mnt);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

static unsigned int count_vcpus(long pid)
{
	char dir[64], link[600], target[128];
	unsigned int n = 0;
	struct dirent *de;
	ssize_t l;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		l = readlink(link, target, sizeof(target) - 1);
		if (l <= 0)
			continue;
		target[l] = 0;
		if (!strncmp(target, "anon_inode:kvm-vcpu", 19))
			n++;
	}
	closedir(d);
	return n;
}

int cg_throttle_open(struct cg_throttle *cg, long pid, char *why, size_t len)
{
	char file[600], line[600], mnt[512], quota[32];
	long other = 0;
	FILE *f;

	memset(cg, 0, sizeof(*cg));
	cg->pipe_fd = -1;
	cg->lock_fd = -1;
	cg->guardian = -1;
	snprintf(file, sizeof(file), "/proc/%ld/cgroup", pid);
	f = fopen(file, "re");
	if (!f) {
		snprintf(why, len, "cannot read %s: %s", file, strerror(errno));
		return -1;
	}
	line[0] = 0;
	while (fgets(line, sizeof(line), f) && strncmp(line, "0::", 3))
		line[0] = 0;
	fclose(f);
	line[strcspn(line, "\n")] = 0;
	if (strncmp(line, "0::", 3)) {
		snprintf(why, len, "process %ld is in no cgroup v2 hierarchy: cpu.max needs cgroup v2",
			 pid);
		return -1;
	}
	if (!strcmp(line + 3, "/")) {
		snprintf(why, len,
			 "process %ld runs in the root cgroup, which has no cpu.max: put the VMM in a cgroup of its own to enforce the throttle",
			 pid);
		return -1;
	}
	if (cgroup2_mount(mnt, sizeof(mnt))) {
		snprintf(why, len, "cgroup v2 is not mounted here (mount -t cgroup2 none /sys/fs/cgroup)");
		return -1;
	}
	if (snprintf(cg->path, sizeof(cg->path), "%s%s", mnt, line + 3) >=
	    (int)sizeof(cg->path)) {
		snprintf(why, len, "the VMM's cgroup path is too long");
		return -1;
	}

	snprintf(file, sizeof(file), "%s/cpu.max", cg->path);
	if (read_line(file, cg->orig, sizeof(cg->orig)) ||
	    sscanf(cg->orig, "%31s %lld", quota, &cg->period) != 2 || cg->period <= 0) {
		snprintf(why, len,
			 "the VMM's cgroup %s has no cpu.max: enable the cpu controller in its parent's cgroup.subtree_control",
			 cg->path);
		return -1;
	}
	if (!strcmp(quota, "max"))
		cg->quota = -1;
	else if (sscanf(quota, "%lld", &cg->quota) != 1 || cg->quota <= 0)
		goto bad;

	/* Throttling a cgroup throttles everyone in it. */
	snprintf(file, sizeof(file), "%s/cgroup.procs", cg->path);
	f = fopen(file, "re");
	if (!f)
		goto bad;
	while (fgets(line, sizeof(line), f))
		if (strtol(line, NULL, 10) != pid)
			other = strtol(line, NULL, 10);
	fclose(f);
	if (other) {
		snprintf(why, len,
			 "the VMM's cgroup %s also holds process %ld: throttling it would slow that one too; give the VMM a cgroup of its own",
			 cg->path, other);
		return -1;
	}
	cg->vcpus = count_vcpus(pid);
	if (!cg->vcpus)
		cg->vcpus = 1;
	return 0;
bad:
	snprintf(why, len, "cannot read the VMM's cgroup %s: %s", cg->path,
		 errno ? strerror(errno) : "unexpected cpu.max");
	return -1;
}

/* One lock file per cgroup, named after its path. */
static int lock_cgroup(struct cg_throttle *cg, char *why, size_t len)
{
	char path[64];
	unsigned long h = 5381;
	const char *s;

	for (s = cg->path; *s; s++)
		h = h * 33 + (unsigned char)*s;
	/* /run where there is one (a minimal initramfs may have only /tmp). */
	snprintf(path, sizeof(path), "%s/vmpf-cgroup-%016lx.lock",
		 access("/run", W_OK) ? "/tmp" : "/run", h);
	cg->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (cg->lock_fd < 0) {
		snprintf(why, len, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(cg->lock_fd, LOCK_EX | LOCK_NB)) {
		snprintf(why, len,
			 "another vmpf-ctl already enforces a throttle on the cgroup %s", cg->path);
		close(cg->lock_fd);
		cg->lock_fd = -1;
		return -1;
	}
	return 0;
}

int cg_throttle_guard(struct cg_throttle *cg, char *why, size_t len)
{
	int p[2], fd;
	char c;
	pid_t pid;

	if (lock_cgroup(cg, why, len))
		return -1;
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(why, len, "cannot make a pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(why, len, "cannot start the process that restores cpu.max: %s",
			 strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (!pid) {
		/*
		 * Hold nothing of vmpf-ctl's but the pipe (3) and the cgroup's
		 * lock (4, held until the old value is back): a copy of the
		 * session descriptor, or of the pipe's writing end, would keep
		 * things alive that must end with vmpf-ctl.
		 */
		int rd = fcntl(p[0], F_DUPFD, 100), lk = fcntl(cg->lock_fd, F_DUPFD, 100);

		/* Above everything first, so that neither dup2() clobbers the other. */
		if (rd < 0 || lk < 0 || dup2(rd, 3) < 0 || dup2(lk, 4) < 0)
			_exit(1);
		if (close_range(5, ~0U, 0))
			_exit(1);
		close(0);
		close(1);
		close(2);
		fd = open("/dev/null", O_RDWR);
		if (fd == 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		if (chdir("/")) {
			/* only to keep no directory busy: no harm if not */
		}
		while (read(3, &c, 1) < 0 && errno == EINTR)
			;
		/* The cgroup may be gone with the VMM: then nothing to restore. */
		write_str(cg->path, "cpu.max", cg->orig);
		_exit(0);
	}
	close(p[0]);
	cg->guardian = pid;
	cg->pipe_fd = p[1];
	return 0;
}

/* The guardian is alive (not exited, not a zombie we have not reaped). */
static int guardian_alive(struct cg_throttle *cg)
{
	int status;

	return cg->guardian > 0 && waitpid(cg->guardian, &status, WNOHANG) == 0;
}

void cg_throttle_value(const struct cg_throttle *cg, unsigned int pct, char *buf,
		       size_t len)
{
	long long base, q;

	if (!pct) {
		snprintf(buf, len, "%s", cg->orig);
		return;
	}
	base = cg->quota > 0 ? cg->quota : cg->period * cg->vcpus;
	q = base * (100 - (long long)pct) / 100;
	if (q < 1000)
		q = 1000;	/* the smallest quota cgroups accept */
	snprintf(buf, len, "%lld %lld", q, cg->period);
}

int cg_throttle_apply(struct cg_throttle *cg, unsigned int pct, char *why, size_t len)
{
	char val[64];
	int ret;

	if (!guardian_alive(cg)) {
		/* Nobody would undo it: put the old value back and stop here. */
		cg->guardian = -1;
		write_str(cg->path, "cpu.max", cg->orig);
		snprintf(why, len,
			 "the process that restores cpu.max died: cpu.max of %s put back to '%s', throttle no longer enforced",
			 cg->path, cg->orig);
		return -1;
	}
	cg_throttle_value(cg, pct, val, sizeof(val));
	ret = write_str(cg->path, "cpu.max", val);
	if (ret) {
		snprintf(why, len, "cannot write '%s' to %s/cpu.max: %s", val, cg->path,
			 strerror(-ret));
		return -1;
	}
	cg->pct = pct;
	return 0;
}

int cg_throttle_release(struct cg_throttle *cg)
{
	int status = 0;

	if (cg->pipe_fd >= 0)
		close(cg->pipe_fd);
	while (cg->guardian > 0 && waitpid(cg->guardian, &status, 0) < 0 && errno == EINTR)
		;
	if (cg->lock_fd >= 0)
		close(cg->lock_fd);
	cg->guardian = -1;
	cg->pipe_fd = -1;
	cg->lock_fd = -1;
	return 0;
}
