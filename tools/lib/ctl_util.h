/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmpf-ctl's command line and output formatting, kept apart from main()
 * so that the host-side unit tests can exercise them without a device.
 */
#ifndef VMPF_CTL_UTIL_H
#define VMPF_CTL_UTIL_H

#include <stdio.h>
#include <linux/vmpagefile.h>

enum ctl_cmd {
	CTL_CMD_NONE,
	CTL_CMD_HELP,
	CTL_CMD_VERSION,
	CTL_CMD_START,
	CTL_CMD_STATUS,
	CTL_CMD_FINISH,
	CTL_CMD_ABORT,
	CTL_CMD_INFO,
	CTL_CMD_VERIFY,
	CTL_CMD_RESTORE,
	CTL_CMD_MIGRATE,
	CTL_CMD_QMP,
	CTL_CMD_HANDOVER,
	CTL_CMD_REVOKE,
};

struct ctl_opts {
	enum ctl_cmd cmd;
	int json;		/* --json */
	int help;		/* --help, or 'help' with a topic */
	enum ctl_cmd topic;	/* the command --help or 'help' is about */
	const char *device;	/* --device, or NULL for the default */
	long pid;		/* --pid: the VMM holding the session, or 0 */
	long fd;		/* --fd: its session descriptor, or -1 to search */
	int watch;		/* --watch */
	int when_ready;		/* finish --when-ready */
	const char *history;	/* start --history PAGEFILE */
	int cgroup_throttle;	/* start/status --cgroup-throttle */
	const char *path;	/* PAGEFILE of info and verify */
	int prefetch_op;	/* restore: --run or --pause, else 0 */
	long long rate;		/* restore: --rate, or -1 */
	const char *qmp;	/* migrate, qmp: --qmp SOCKET */
	long long downtime_ms;	/* migrate: --downtime MS, or -1 */
	int manual;		/* migrate --manual: switch over on 'finish' only */
	const char *qemu;	/* restore --qemu PAGEFILE */
	int no_prefetch;	/* restore --qemu: --no-prefetch */
	int huge;		/* restore --qemu: --huge (2 MiB pages) */
	int force;		/* restore --qemu, revoke: --force (whatever the lease says) */
	int no_lease;		/* restore --qemu: --no-lease (no ownership lease) */
	const char *disks_to;	/* migrate, restore --qemu: --disks-to DIR */
	char *const *qemu_argv;	/* restore --qemu: the QEMU command after --;
				 * handover: the new VMM's */
	int qemu_argc;
	const char *qmp_cmd;	/* qmp: COMMAND [ARGUMENTS] */
	const char *qmp_args;
};

/* Exit codes of vmpf-ctl. */
#define CTL_EXIT_OK	0
#define CTL_EXIT_FAIL	1	/* the command ran and failed */
#define CTL_EXIT_USAGE	2	/* the command line is wrong */

/*
 * Parse argv into @o.  Returns 0, or CTL_EXIT_USAGE with one sentence in
 * @err for a person.
 */
int ctl_parse(int argc, char *const argv[], struct ctl_opts *o, char *err,
	      size_t errlen);

/* The top-level help, or one command's help for @topic. */
void ctl_print_help(FILE *f, enum ctl_cmd topic);

/* What `vmpf-ctl version` reports. */
struct ctl_version {
	const char *tool_version;
	int have_module;		/* the fields below are valid */
	struct vmpf_api api;		/* the handshake's answer */
	struct vmpf_dev_info info;
};

void ctl_print_version(FILE *f, const struct ctl_version *v, int json);

/* "precopy" etc. for enum vmpf_phase. */
const char *ctl_phase_name(unsigned long long phase);

/* A session's status; @rounds holds @n of its latest rounds. */
void ctl_print_status(FILE *f, const struct vmpf_status *st,
		      const struct vmpf_round_stats *rounds, unsigned int n,
		      int json);

/*
 * The same, with what the session decided after each round (@pol, NULL if
 * unknown, else @n entries for the same rounds as @rounds) and the
 * per-vCPU throttle of a VM using the dirty ring: @vt (NULL if unknown)
 * and its min(vt->nr_vcpus, @nv) entries at @vs.
 */
void ctl_print_status_full(FILE *f, const struct vmpf_status *st,
			   const struct vmpf_round_stats *rounds,
			   const struct vmpf_round_policy *pol, unsigned int n,
			   const struct vmpf_vcpu_throttle *vt,
			   const struct vmpf_vcpu_stat *vs, unsigned int nv, int json);

/* A restore session's status. */
void ctl_print_restore_status(FILE *f, const struct vmpf_restore_status *st, int json);

/* One line of `status --watch`. */
void ctl_print_status_line(FILE *f, const struct vmpf_status *st);

/* A JSON string literal for @s, with quotes and escapes. */
void ctl_json_string(FILE *f, const char *s);

#endif /* VMPF_CTL_UTIL_H */
