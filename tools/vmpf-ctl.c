// SPDX-License-Identifier: GPL-2.0
/*
 * vmpf-ctl - drive and watch vmpagefile from the command line.
 *
 * Every failure ends in one sentence on stderr and a non-zero exit status:
 * 1 when a command ran and failed, 2 for a wrong command line.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "ctl_disks.h"
#include "ctl_qemu.h"
#include "ctl_util.h"
#include "pagefile.h"
#include "vm/handover.h"
#include "vmpf.h"

#ifndef VMPF_TOOL_VERSION
#define VMPF_TOOL_VERSION "unknown"
#endif

static int ctl_fail(const char *msg)
{
	fprintf(stderr, "vmpf-ctl: %s\n", msg);
	return CTL_EXIT_FAIL;
}

static int cmd_version(const struct ctl_opts *o)
{
	struct ctl_version v = { .tool_version = VMPF_TOOL_VERSION };
	const char *path = o->device ? o->device : vmpf_device_path();
	unsigned long cmd;
	char msg[256];
	int fd, ret;

	fd = vmpf_open(path);
	if (fd < 0) {
		/* Still say who we are: that is half of the answer. */
		ctl_print_version(stdout, &v, o->json);
		return ctl_fail(vmpf_open_error(-fd, vmpf_module_loaded(), path,
						msg, sizeof(msg)));
	}

	cmd = VMPF_IOC_API;
	ret = vmpf_handshake(fd, 0, &v.api);
	if (ret)
		goto fail;
	cmd = VMPF_IOC_DEV_INFO;
	ret = __vmpf_ioctl(fd, cmd, &v.info);
	if (ret)
		goto fail;
	close(fd);

	v.have_module = 1;
	ctl_print_version(stdout, &v, o->json);
	return CTL_EXIT_OK;

fail:
	close(fd);
	ctl_print_version(stdout, &v, o->json);
	return ctl_fail(vmpf_ioctl_error(cmd, -ret, msg, sizeof(msg)));
}

/*
 * Take the session descriptor of process @o->pid: its descriptor @o->fd,
 * or the first of its /dev/vmpagefile descriptors that holds a session.
 * pidfd_getfd(2) applies ptrace access rules.  The copy needs no handshake
 * of its own: the handshake belongs to the open file description.
 */
/*
 * One pass over /proc/PID/fd: the first /dev/vmpagefile descriptor with a
 * session, taken with pidfd_getfd(2), or -1.  *@seen counts the device's
 * descriptors looked at; *@err is the last pidfd_getfd() error.
 */
static int session_scan(const struct ctl_opts *o, int pidfd, int *seen, int *err)
{
	char dir[64], link[PATH_MAX], target[PATH_MAX];
	struct dirent *de;
	int fd = -1;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", o->pid);
	d = opendir(dir);
	if (!d) {
		*err = errno;
		return -1;
	}
	while ((de = readdir(d))) {
		struct vmpf_status st = { 0 };
		struct vmpf_restore_status rs = { 0 };
		long n;
		ssize_t l;

		if (de->d_name[0] == '.')
			continue;
		n = strtol(de->d_name, NULL, 10);
		if (o->fd >= 0 && n != o->fd)
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		l = readlink(link, target, sizeof(target) - 1);
		if (l < 0)
			continue;
		target[l] = 0;
		if (strcmp(target, VMPF_DEVICE_PATH))
			continue;
		(*seen)++;
		fd = syscall(SYS_pidfd_getfd, pidfd, (int)n, 0);
		if (fd < 0) {
			*err = errno;
			continue;
		}
		if (!__vmpf_ioctl(fd, VMPF_IOC_STATUS, &st) && st.phase != VMPF_PHASE_NONE)
			break;
		if (!__vmpf_ioctl(fd, VMPF_IOC_RESTORE_STATUS, &rs) &&
		    rs.phase != VMPF_RESTORE_NONE)
			break;
		close(fd);
		fd = -1;
	}
	closedir(d);
	return fd;
}

static int session_fd(const struct ctl_opts *o, char *msg, size_t len)
{
	struct timespec pause = { 0, 100000000 };
	int pidfd, fd = -1, err = 0, seen = 0, pass;

	pidfd = syscall(SYS_pidfd_open, (pid_t)o->pid, 0);
	if (pidfd < 0) {
		snprintf(msg, len, "no process %ld: %s", o->pid, strerror(errno));
		return -1;
	}
	/*
	 * A scan can come up empty while the VMM is busy with its descriptor
	 * table (seen once in hundreds of runs, unexplained): look again
	 * before saying there is no session.
	 */
	for (pass = 0; pass < 3 && fd < 0; pass++) {
		if (pass)
			nanosleep(&pause, NULL);
		seen = 0;
		fd = session_scan(o, pidfd, &seen, &err);
		if (err == EACCES || err == EPERM || err == ENOENT)
			break;
	}
	close(pidfd);
	if (fd >= 0 && pass > 1)
		fprintf(stderr, "vmpf-ctl: found the session on look %d\n", pass);
	if (fd >= 0)
		return fd;
	if (err)
		snprintf(msg, len, "cannot take process %ld's descriptor: %s (run as root)",
			 o->pid, strerror(err));
	else
		snprintf(msg, len, "process %ld holds no vmpagefile session%s (%d descriptor%s of %s)",
			 o->pid, o->fd >= 0 ? " on that descriptor" : "", seen,
			 seen == 1 ? "" : "s", VMPF_DEVICE_PATH);
	return -1;
}

static int get_status(int fd, struct vmpf_status *st, struct vmpf_round_stats *rounds,
		      unsigned int cap)
{
	memset(st, 0, sizeof(*st));
	st->rounds = (unsigned long)rounds;
	st->rounds_cap = cap;
	return __vmpf_ioctl(fd, VMPF_IOC_STATUS, st);
}

static int phase_done(unsigned long long phase)
{
	return phase == VMPF_PHASE_COMMITTED || phase == VMPF_PHASE_ABORTED ||
	       phase == VMPF_PHASE_FAILED;
}

/* start --history: begin where the last migration of this VM ended. */
static int start_from_history(const struct ctl_opts *o, int fd, char *msg, size_t len)
{
	struct vmpf_vcpu_throttle vt = { 0 };
	struct vmpf_throttle t = { 0 };
	struct vmpf_pf_commit c;
	int ret;

	if (pf_history(o->history, &c, msg, len))
		return -1;
	t.pct = le32toh(c.throttle_pct);
	/* Within the maximum the VMM set. */
	if (!__vmpf_ioctl(fd, VMPF_IOC_VCPU_THROTTLE, &vt) && t.pct > vt.throttle_max)
		t.pct = vt.throttle_max;
	ret = __vmpf_ioctl(fd, VMPF_IOC_SET_THROTTLE, &t);
	if (ret) {
		vmpf_ioctl_error(VMPF_IOC_SET_THROTTLE, -ret, msg, len);
		return -1;
	}
	if (!o->json)
		printf("history    %s: %llu rounds, final round %llu pages, throttle %u %% (peak %u %%); starting with %llu %%\n",
		       o->history, (unsigned long long)le64toh(c.rounds),
		       (unsigned long long)le64toh(c.final_pages), le32toh(c.throttle_pct),
		       le32toh(c.throttle_peak), (unsigned long long)t.pct);
	return 0;
}

/*
 * @pol holds the latest min(@npol, 64) rounds' decisions, @rounds the
 * latest min(@nst, 64) rounds' statistics, read a moment earlier: move the
 * decisions so that entry i is about the same round as @rounds[i].
 */
static void align_policy(struct vmpf_round_policy *pol, unsigned long long npol,
			 const struct vmpf_round_stats *rounds, unsigned long long nst)
{
	struct vmpf_round_policy copy[64];
	unsigned int n = nst < 64 ? nst : 64, m = npol < 64 ? npol : 64, i, j;

	memcpy(copy, pol, sizeof(copy));
	memset(pol, 0, sizeof(copy));
	for (i = 0; i < n; i++)
		for (j = 0; j < m; j++)
			if (copy[j].round == rounds[i].round) {
				pol[i] = copy[j];
				break;
			}
}

/* --cgroup-throttle: cpu.max follows the session's throttle. */
static int enforce_throttle(const struct ctl_opts *o, struct cg_throttle *cg,
			    const struct vmpf_status *st, char *msg, size_t len)
{
	/* Not during the switch-over: it runs in the VMM's threads too. */
	unsigned int pct = st->phase == VMPF_PHASE_PRECOPY ? (unsigned int)st->throttle_pct : 0;
	char val[64];

	if (pct == cg->pct)
		return 0;
	if (cg_throttle_apply(cg, pct, msg, len))
		return -1;
	cg_throttle_value(cg, cg->pct, val, sizeof(val));
	if (!o->json) {
		printf("cpu.max    '%s' in %s: throttle %u %%\n", val, cg->path, cg->pct);
		fflush(stdout);
	}
	return 0;
}

/*
 * The disks that a 'vmpf-ctl migrate --disks-to' with process id @pid
 * mirrors (ctl_disks.h), if it does: its text lines, or ,"disks":[...]
 * to go inside a JSON object.  Nothing if there are none.
 */
static void print_disks(FILE *f, long pid, int json)
{
	static char buf[1 << 16];
	char path[128];
	size_t n;
	FILE *d;

	snprintf(path, sizeof(path), CTL_DISKS_DIR "/disks-%ld.%s", pid, json ? "json" : "txt");
	d = fopen(path, "r");
	if (!d)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, d);
	fclose(d);
	buf[n] = 0;
	if (!n)
		return;
	if (json)
		fprintf(f, ",\"disks\":%s", buf);
	else
		fputs(buf, f);
}

/* A status as ctl_print_status*() prints it, with the disks' progress added. */
static void print_status_disks(const struct ctl_opts *o, const struct vmpf_status *st,
			       const struct vmpf_round_stats *rounds,
			       const struct vmpf_round_policy *pol, unsigned int n,
			       const struct vmpf_vcpu_throttle *vt,
			       const struct vmpf_vcpu_stat *vs, unsigned int nv, int line)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	if (!m)
		return;
	if (line && !o->json)
		ctl_print_status_line(m, st);
	else
		ctl_print_status_full(m, st, rounds, pol, n, vt, vs, nv, o->json);
	fclose(m);
	/* JSON: one object per line; the disks go in before its closing brace. */
	if (o->json && len >= 2 && text[len - 2] == '}') {
		fwrite(text, 1, len - 2, stdout);
		print_disks(stdout, o->pid, 1);
		fputs("}\n", stdout);
	} else {
		fwrite(text, 1, len, stdout);
		if (!o->json)
			print_disks(stdout, o->pid, 0);
	}
	free(text);
}

static int cmd_session(const struct ctl_opts *o)
{
	struct vmpf_round_stats rounds[64];
	struct timespec half = { 0, 500000000 }, fifth = { 0, 200000000 };
	static struct vmpf_vcpu_stat vs[VMPF_MAX_VCPUS];
	struct vmpf_round_policy pol[64];
	int have_pol = 0;
	struct cg_throttle cg = { .guardian = -1, .pipe_fd = -1, .lock_fd = -1 };
	struct vmpf_vcpu_throttle vt;
	struct vmpf_status st;
	int have_vt = 0;
	unsigned long cmd = VMPF_IOC_STATUS;
	char msg[320];
	int fd, ret;

	fd = session_fd(o, msg, sizeof(msg));
	if (fd < 0)
		return ctl_fail(msg);
	if (o->cgroup_throttle) {
		if (cg_throttle_open(&cg, o->pid, msg, sizeof(msg)) ||
		    cg_throttle_guard(&cg, msg, sizeof(msg))) {
			close(fd);
			return ctl_fail(msg);
		}
		if (!o->json)
			printf("cgroup     %s: cpu.max '%s', %u vCPUs; put back when this ends\n",
			       cg.path, cg.orig, cg.vcpus);
	}
	if (o->history && start_from_history(o, fd, msg, sizeof(msg))) {
		cg_throttle_release(&cg);
		close(fd);
		return ctl_fail(msg);
	}

	switch (o->cmd) {
	case CTL_CMD_START:
		cmd = VMPF_IOC_START;
		break;
	case CTL_CMD_FINISH:
		cmd = VMPF_IOC_REQUEST_FINISH;
		break;
	case CTL_CMD_ABORT:
		cmd = VMPF_IOC_ABORT;
		break;
	default:
		break;
	}
	/* finish --when-ready: until the estimate meets the downtime target. */
	while (o->when_ready) {
		ret = get_status(fd, &st, rounds, 64);
		if (ret || phase_done(st.phase) || (st.flags & VMPF_STATUS_READY))
			break;
		nanosleep(&half, NULL);
	}
	if (cmd != VMPF_IOC_STATUS) {
		ret = __vmpf_ioctl(fd, cmd, NULL);
		if (ret) {
			cg_throttle_release(&cg);
			close(fd);
			return ctl_fail(vmpf_ioctl_error(cmd, -ret, msg, sizeof(msg)));
		}
	}

	for (;;) {
		ret = get_status(fd, &st, rounds, 64);
		if (ret) {
			cg_throttle_release(&cg);
			close(fd);
			return ctl_fail(vmpf_ioctl_error(VMPF_IOC_STATUS, -ret, msg, sizeof(msg)));
		}
		if (st.phase == VMPF_PHASE_NONE) {
			cg_throttle_release(&cg);
			close(fd);
			return ctl_fail("that session is a restore, not a migration; see 'vmpf-ctl restore'");
		}
		if (o->cgroup_throttle && !phase_done(st.phase) &&
		    enforce_throttle(o, &cg, &st, msg, sizeof(msg))) {
			cg_throttle_release(&cg);
			close(fd);
			return ctl_fail(msg);
		}
		if (o->watch) {
			print_status_disks(o, &st, NULL, NULL, 0, NULL, NULL, 0, 1);
			fflush(stdout);
		}
		/* finish waits for the VMM to switch over and commit. */
		if ((!o->watch && o->cmd != CTL_CMD_FINISH && !o->cgroup_throttle) ||
		    phase_done(st.phase))
			break;
		nanosleep(o->cgroup_throttle ? &fifth : &half, NULL);
	}
	if (!o->watch) {
		struct vmpf_round_policies rp = { .rounds = (unsigned long)pol, .rounds_cap = 64 };

		memset(&vt, 0, sizeof(vt));
		vt.vcpus = (unsigned long)vs;
		vt.vcpus_cap = VMPF_MAX_VCPUS;
		have_vt = !__vmpf_ioctl(fd, VMPF_IOC_VCPU_THROTTLE, &vt);
		/* Taken after the status: the same rounds, or more. */
		have_pol = !__vmpf_ioctl(fd, VMPF_IOC_ROUND_POLICY, &rp);
		if (have_pol)
			align_policy(pol, rp.nr_rounds, rounds, st.nr_rounds);
	}
	close(fd);
	if (o->cgroup_throttle) {
		cg_throttle_release(&cg);
		if (!o->json)
			printf("cpu.max    '%s' put back in %s\n", cg.orig, cg.path);
	}
	if (!o->watch)
		print_status_disks(o, &st, rounds, have_pol ? pol : NULL,
				   st.nr_rounds < 64 ? st.nr_rounds : 64,
				   have_vt ? &vt : NULL, vs, VMPF_MAX_VCPUS, 0);
	if ((o->cmd == CTL_CMD_FINISH || o->cgroup_throttle) && st.phase != VMPF_PHASE_COMMITTED)
		return ctl_fail("the migration did not commit");
	if (o->cmd == CTL_CMD_ABORT && st.phase != VMPF_PHASE_ABORTED)
		return ctl_fail("the migration was not aborted");
	return CTL_EXIT_OK;
}

static int cmd_restore(const struct ctl_opts *o)
{
	struct vmpf_restore_status st = { 0 };
	char msg[320];
	int fd, ret;

	fd = session_fd(o, msg, sizeof(msg));
	if (fd < 0)
		return ctl_fail(msg);
	if (o->prefetch_op || o->rate >= 0) {
		struct vmpf_prefetch p = {
			.op = o->prefetch_op ? o->prefetch_op : VMPF_PREFETCH_RUN,
			.rate = o->rate > 0 ? o->rate : 0,
		};

		ret = __vmpf_ioctl(fd, VMPF_IOC_PREFETCH, &p);
		if (ret) {
			close(fd);
			return ctl_fail(vmpf_ioctl_error(VMPF_IOC_PREFETCH, -ret, msg, sizeof(msg)));
		}
	}
	ret = __vmpf_ioctl(fd, VMPF_IOC_RESTORE_STATUS, &st);
	close(fd);
	if (ret)
		return ctl_fail(vmpf_ioctl_error(VMPF_IOC_RESTORE_STATUS, -ret, msg, sizeof(msg)));
	if (st.phase == VMPF_RESTORE_NONE)
		return ctl_fail("that session is a migration, not a restore; see 'vmpf-ctl status'");
	ctl_print_restore_status(stdout, &st, o->json);
	return CTL_EXIT_OK;
}

/* Who owns the image, as its lease says (a live owner renews it). */
static void ctl_print_lease(const struct vmpf_pf_lease *l)
{
	const char *host = (const char *)l->host;
	unsigned int pid = le32toh(l->pid);

	switch (le32toh(l->state)) {
	case VMPF_LEASE_READING:
	case VMPF_LEASE_RESTORED:
		printf("owner      host %s, pid %u: %s; lease of %u ms, renewed %llu times (a live owner renews it every %u ms)\n",
		       host, pid, le32toh(l->state) == VMPF_LEASE_READING ?
		       "restoring (pages are read from this file)" :
		       "restored (the VM runs there from memory)",
		       le32toh(l->lease_ms), (unsigned long long)le64toh(l->beat),
		       le32toh(l->lease_ms) / 4);
		break;
	case VMPF_LEASE_REVOKED:
		printf("owner      the source took the VM back (host %s): restores are refused\n", host);
		break;
	default:
		printf("owner      nobody now (the last: host %s, pid %u, whose restore ended)\n",
		       host, pid);
		break;
	}
}

static int cmd_pagefile(const struct ctl_opts *o)
{
	unsigned long long counts[3] = { 0 }, pages, i, bad = 0, first_bad = 0;
	char uuid[40], first_why[160] = "";
	static unsigned char buf[VMPF_PF_PAGE_SIZE];
	int table_ok, history, ret;
	void *state = NULL;
	size_t state_len = 0;
	struct pf pf;

	ret = pf_open(&pf, o->path);
	if (ret) {
		pf_close(&pf);
		fprintf(stderr, "vmpf-ctl: %s: %s\n", o->path, pf.why);
		return CTL_EXIT_FAIL;
	}
	pages = le64toh(pf.sb.total_pages);
	history = pf.committed && (le64toh(pf.commit.flags) & VMPF_PF_COMMIT_HISTORY);
	table_ok = !pf_load_table(&pf);
	if (table_ok)
		for (i = 0; i < pages; i++)
			if (pf.table[i].state <= VMPF_PAGE_DATA)
				counts[pf.table[i].state]++;
	for (i = 0; i < 16; i++)
		sprintf(uuid + 2 * i + (i >= 4) + (i >= 6) + (i >= 8) + (i >= 10), "%02x%s",
			pf.sb.uuid[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");

	if (o->cmd == CTL_CMD_VERIFY) {
		if (!pf.committed)
			goto fail_uncommitted;
		if (!table_ok) {
			fprintf(stderr, "vmpf-ctl: %s: %s\n", o->path, pf.why);
			pf_close(&pf);
			return CTL_EXIT_FAIL;
		}
		if (pf_read_state(&pf, &state, &state_len)) {
			fprintf(stderr, "vmpf-ctl: %s: %s\n", o->path, pf.why);
			pf_close(&pf);
			return CTL_EXIT_FAIL;
		}
		free(state);
		for (i = 0; i < pages; i++) {
			if (pf.table[i].state == VMPF_PAGE_NONE || pf.table[i].state > VMPF_PAGE_DATA) {
				snprintf(pf.why, sizeof(pf.why), "page %llu has no valid state", i);
			} else if (!pf_read_page(&pf, i, buf)) {
				continue;
			}
			if (!bad++) {
				first_bad = i;
				snprintf(first_why, sizeof(first_why), "%s", pf.why);
			}
		}
		if (o->json)
			printf("{\"path\":\"%s\",\"committed\":true,\"pages\":%llu,\"data_pages\":%llu,"
			       "\"zero_pages\":%llu,\"bad_pages\":%llu,\"first_bad\":%lld}\n",
			       o->path, pages, counts[VMPF_PAGE_DATA], counts[VMPF_PAGE_ZERO], bad,
			       bad ? (long long)first_bad : -1LL);
		else
			printf("%s: %llu pages: %llu data and %llu zero verified, %llu bad%s%s\n",
			       o->path, pages, counts[VMPF_PAGE_DATA] - (bad ? bad : 0),
			       counts[VMPF_PAGE_ZERO], bad, bad ? "; first: " : "", first_why);
		pf_close(&pf);
		return bad ? CTL_EXIT_FAIL : CTL_EXIT_OK;
	}

	if (o->json) {
		printf("{\"path\":\"%s\",\"version\":%u,\"uuid\":\"%s\",\"generation\":%llu,"
		       "\"committed\":%s,\"reason\":", o->path, le32toh(pf.sb.version), uuid,
		       (unsigned long long)le64toh(pf.sb.generation),
		       pf.committed ? "true" : "false");
		ctl_json_string(stdout, pf.committed ? "" : pf.why);
		printf(",\"file_size\":%llu,\"total_pages\":%llu,\"state_len\":%llu,"
		       "\"rounds\":%llu,\"pages_by_state\":{\"never_written\":%llu,\"zero\":%llu,"
		       "\"data\":%llu},",
		       (unsigned long long)le64toh(pf.sb.file_size), pages,
		       pf.committed ? (unsigned long long)le64toh(pf.commit.state_len) : 0ULL,
		       pf.committed ? (unsigned long long)le64toh(pf.commit.rounds) : 0ULL,
		       counts[0], counts[1], counts[2]);
		if (pf.lease_valid) {
			printf("\"lease\":{\"state\":\"%s\",\"host\":",
			       pf_lease_state_name(le32toh(pf.lease.state)));
			ctl_json_string(stdout, (const char *)pf.lease.host);
			printf(",\"pid\":%u,\"renewals\":%llu,\"lease_ms\":%u,\"owners\":%llu},",
			       le32toh(pf.lease.pid), (unsigned long long)le64toh(pf.lease.beat),
			       le32toh(pf.lease.lease_ms),
			       (unsigned long long)le64toh(pf.lease.takeovers));
		} else {
			printf("\"lease\":null,");
		}
		if (history)
			printf("\"history\":{\"precopy_ns\":%llu,\"final_pages\":%llu,"
			       "\"dirty_rate\":%llu,\"write_rate\":%llu,\"throttle_pct\":%u,"
			       "\"throttle_peak\":%u},",
			       (unsigned long long)le64toh(pf.commit.precopy_ns),
			       (unsigned long long)le64toh(pf.commit.final_pages),
			       (unsigned long long)le64toh(pf.commit.dirty_rate),
			       (unsigned long long)le64toh(pf.commit.write_rate),
			       le32toh(pf.commit.throttle_pct), le32toh(pf.commit.throttle_peak));
		else
			printf("\"history\":null,");
		printf("\"regions\":[");
		for (i = 0; i < le32toh(pf.sb.nr_regions); i++) {
			char slot[16] = "null";

			if (le32toh(pf.sb.regions[i].slot) != VMPF_PF_SLOT_NONE)
				snprintf(slot, sizeof(slot), "%u", le32toh(pf.sb.regions[i].slot));
			printf("%s{\"slot\":%s,\"gpa\":%llu,\"pages\":%llu,\"flags\":%u}",
			       i ? "," : "", slot,
			       (unsigned long long)le64toh(pf.sb.regions[i].gpa),
			       (unsigned long long)le64toh(pf.sb.regions[i].pages),
			       le32toh(pf.sb.regions[i].flags));
		}
		printf("]}\n");
	} else {
		printf("page file  %s, format version %u, uuid %s\n", o->path,
		       le32toh(pf.sb.version), uuid);
		printf("generation %016llx\n", (unsigned long long)le64toh(pf.sb.generation));
		if (pf.committed)
			printf("committed  yes: %llu rounds, device state %llu bytes\n",
			       (unsigned long long)le64toh(pf.commit.rounds),
			       (unsigned long long)le64toh(pf.commit.state_len));
		else
			printf("committed  no: %s\n", pf.why);
		if (pf.lease_valid)
			ctl_print_lease(&pf.lease);
		else if (pf.committed)
			printf("owner      nobody: no restore has taken the image\n");
		if (history)
			printf("history    pre-copy %.2f s, final round %llu pages, throttle %u %% (peak %u %%), %llu pages/s dirtied, %.1f MiB/s written\n",
			       le64toh(pf.commit.precopy_ns) / 1e9,
			       (unsigned long long)le64toh(pf.commit.final_pages),
			       le32toh(pf.commit.throttle_pct), le32toh(pf.commit.throttle_peak),
			       (unsigned long long)le64toh(pf.commit.dirty_rate),
			       le64toh(pf.commit.write_rate) / 1048576.0);
		printf("size       %llu bytes for %llu pages\n",
		       (unsigned long long)le64toh(pf.sb.file_size), pages);
		for (i = 0; i < le32toh(pf.sb.nr_regions); i++)
			if (le32toh(pf.sb.regions[i].slot) == VMPF_PF_SLOT_NONE)
				printf("region %llu   no memslot (memory of the VMM's RAM no memslot mapped), %llu pages\n",
				       i, (unsigned long long)le64toh(pf.sb.regions[i].pages));
			else
				printf("region %llu   slot %u, gpa %#llx, %llu pages, flags %#x\n", i,
				       le32toh(pf.sb.regions[i].slot),
				       (unsigned long long)le64toh(pf.sb.regions[i].gpa),
				       (unsigned long long)le64toh(pf.sb.regions[i].pages),
				       le32toh(pf.sb.regions[i].flags));
		if (table_ok)
			printf("pages      %llu data, %llu zero, %llu never written\n",
			       counts[2], counts[1], counts[0]);
		else
			printf("pages      unknown: %s\n", pf.why);
	}
	pf_close(&pf);
	return CTL_EXIT_OK;

fail_uncommitted:
	fprintf(stderr, "vmpf-ctl: %s is not a committed page file: %s\n", o->path, pf.why);
	pf_close(&pf);
	return CTL_EXIT_FAIL;
}

/* revoke: the source takes the VM back after its commit (tools/lib/pagefile.c). */
static int cmd_revoke(const struct ctl_opts *o)
{
	char msg[400];

	if (pf_revoke(o->path, o->force, msg, sizeof(msg)))
		return ctl_fail(msg);
	printf("%s: %s\n", o->path, msg);
	return CTL_EXIT_OK;
}

/* handover: become the new VMM, pointed at the old one's socket. */
static int cmd_handover(const struct ctl_opts *o)
{
	char path[64], **argv;
	struct stat sb;
	int i;

	handover_path(o->pid, path, sizeof(path));
	if (stat(path, &sb) || !S_ISSOCK(sb.st_mode)) {
		fprintf(stderr, "vmpf-ctl: process %ld offers no handover (no socket %s): "
			"start it with vmpf-vm --handover\n", o->pid, path);
		return CTL_EXIT_FAIL;
	}
	argv = calloc(o->qemu_argc + 3, sizeof(*argv));
	if (!argv)
		return CTL_EXIT_FAIL;
	for (i = 0; i < o->qemu_argc; i++)
		argv[i] = o->qemu_argv[i];
	argv[i++] = "--take-over";
	argv[i++] = path;
	fprintf(stderr, "vmpf-ctl: handing the guest of process %ld to %s\n", o->pid, argv[0]);
	execvp(argv[0], argv);
	fprintf(stderr, "vmpf-ctl: cannot run %s: %s\n", argv[0], strerror(errno));
	free(argv);
	return CTL_EXIT_FAIL;
}

int main(int argc, char *argv[])
{
	struct ctl_opts o;
	char err[256];
	int ret;

	ret = ctl_parse(argc, argv, &o, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "vmpf-ctl: %s\n", err);
		return ret;
	}
	if (o.help) {
		ctl_print_help(stdout, o.topic);
		return CTL_EXIT_OK;
	}

	switch (o.cmd) {
	case CTL_CMD_VERSION:
		return cmd_version(&o);
	case CTL_CMD_START:
	case CTL_CMD_STATUS:
	case CTL_CMD_FINISH:
	case CTL_CMD_ABORT:
		return cmd_session(&o);
	case CTL_CMD_INFO:
	case CTL_CMD_VERIFY:
		return cmd_pagefile(&o);
	case CTL_CMD_RESTORE:
		return o.qemu ? ctl_restore_qemu(&o) : cmd_restore(&o);
	case CTL_CMD_MIGRATE:
		return ctl_migrate_qemu(&o);
	case CTL_CMD_QMP:
		return ctl_qmp(&o);
	case CTL_CMD_HANDOVER:
		return cmd_handover(&o);
	case CTL_CMD_REVOKE:
		return cmd_revoke(&o);
	default:
		break;
	}
	ctl_print_help(stderr, CTL_CMD_NONE);
	return CTL_EXIT_USAGE;
}
