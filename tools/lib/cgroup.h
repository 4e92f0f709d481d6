/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Enforcing a session's throttle on a VMM that does not apply it itself:
 * through the cpu.max of the VMM's cgroup v2, with a guardian process
 * that puts the old value back however vmpf-ctl ends (success, abort,
 * error, SIGKILL).
 */
#ifndef VMPF_CGROUP_H
#define VMPF_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

struct cg_throttle {
	char path[512];		/* the VMM's cgroup directory */
	char orig[64];		/* its cpu.max before we touched it */
	long long quota;	/* orig's quota in µs, -1 for "max" */
	long long period;	/* orig's period in µs */
	unsigned int vcpus;	/* the VMM's vCPUs (its kvm-vcpu descriptors) */
	unsigned int pct;	/* the throttle in force */
	pid_t guardian;		/* restores @orig when @pipe_fd closes */
	int pipe_fd;
	int lock_fd;		/* flock()ed: one enforcer per cgroup, guardian included */
};

/*
 * Find process @pid's cgroup and check that its cpu.max may be ours to
 * change: cgroup v2, not the root, the cpu controller on, no other
 * process inside.  0, or -1 with a sentence in @why.
 */
int cg_throttle_open(struct cg_throttle *cg, long pid, char *why, size_t len);

/*
 * Take the cgroup (another vmpf-ctl enforcing on it is refused: it would
 * take our throttled value for the original) and start the guardian;
 * from now on cpu.max is restored whatever happens.
 */
int cg_throttle_guard(struct cg_throttle *cg, char *why, size_t len);

/*
 * Take @pct per cent of each vCPU's time away: the quota becomes that
 * share of the old one (of all vCPUs' time when there was none).
 */
int cg_throttle_apply(struct cg_throttle *cg, unsigned int pct, char *why, size_t len);

/* Put the old cpu.max back (the guardian does) and wait for it. */
int cg_throttle_release(struct cg_throttle *cg);

/* "Q P" that cg_throttle_apply() writes for @pct, into @buf. */
void cg_throttle_value(const struct cg_throttle *cg, unsigned int pct, char *buf,
		       size_t len);

#endif /* VMPF_CGROUP_H */
