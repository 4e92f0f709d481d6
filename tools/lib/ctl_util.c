// SPDX-License-Identifier: GPL-2.0
/*
 * vmpf-ctl command line parsing and output formatting, see ctl_util.h.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_util.h"
#include "vmpf.h"

static const struct ctl_command {
	const char *name;
	enum ctl_cmd cmd;
	const char *summary;
	const char *usage;
	const char *help;
} ctl_commands[] = {
	{
		"version", CTL_CMD_VERSION,
		"show the versions and features of vmpf-ctl and the loaded module",
		"vmpf-ctl version [--json] [--device PATH]",
		"Prints vmpf-ctl's own version and API, then opens the control device,\n"
		"does the API handshake and prints the module's version, the feature\n"
		"bits it supports, the ioctls it accepts and its counters.\n"
		"Exits 1 with one sentence on stderr if the module is not loaded or\n"
		"the device cannot be used.\n",
	},
	{
		"start", CTL_CMD_START,
		"start pre-copy of a session a VMM attached",
		"vmpf-ctl start --pid PID [--fd N] [--history PAGEFILE] [--cgroup-throttle] [--json]",
		"Starts pre-copy of the session that the VMM with process id PID\n"
		"attached but did not start.  vmpf-ctl reaches the session through\n"
		"the VMM's descriptor of /dev/vmpagefile, taken with pidfd_getfd(2)\n"
		"(ptrace rules apply: run as root or as the VMM's user); --fd picks\n"
		"one if the VMM has several.\n"
		"--history PAGEFILE starts with the throttle that the migration\n"
		"committed in PAGEFILE needed (an earlier migration of the same VM;\n"
		"it may be the target itself, read before it is overwritten).\n"
		"--cgroup-throttle enforces the session's throttle on a VMM that does\n"
		"not apply it: vmpf-ctl stays until the migration ends, sets the\n"
		"cpu.max of the VMM's cgroup v2 (which must hold the VMM alone) as\n"
		"the throttle changes, and puts the old cpu.max back at the end, also\n"
		"if vmpf-ctl is killed.  It then exits 0 only if the migration\n"
		"committed.\n",
	},
	{
		"status", CTL_CMD_STATUS,
		"show a migration's phase, rounds and progress",
		"vmpf-ctl status --pid PID [--fd N] [--watch] [--cgroup-throttle] [--json]",
		"Shows the phase, the current round, pages written and left, the\n"
		"statistics of each pre-copy round and any error of the session held\n"
		"by process PID.  --watch prints a line per half second until the\n"
		"migration ends; --json prints JSON (one object per line with --watch).\n"
		"For a 'vmpf-ctl migrate --disks-to' (PID: that vmpf-ctl), each disk's\n"
		"mirror too: bytes copied and left, in sync or not (JSON: \"disks\").\n"
		"--cgroup-throttle follows the migration to its end, enforcing its\n"
		"throttle through the VMM's cgroup (see 'vmpf-ctl help start').\n",
	},
	{
		"finish", CTL_CMD_FINISH,
		"ask the VMM to switch over now, and wait for the commit",
		"vmpf-ctl finish --pid PID [--fd N] [--when-ready] [--json]",
		"Asks the VMM holding the session to switch over (it pauses its vCPUs\n"
		"and hands over its device state), then waits until the page file is\n"
		"committed.  With --when-ready it first waits until the session\n"
		"estimates the switch-over under the VMM's downtime target.  Exits 0\n"
		"if the page file was committed, 1 if the migration failed or was\n"
		"aborted.\n",
	},
	{
		"abort", CTL_CMD_ABORT,
		"stop a migration, leaving the VM running and the page file uncommitted",
		"vmpf-ctl abort --pid PID [--fd N]",
		"Stops pre-copy (or a switch-over that has not committed yet), gives\n"
		"the memslots their flags back and leaves the page file uncommitted.\n"
		"The VM keeps running where it is.\n",
	},
	{
		"info", CTL_CMD_INFO,
		"describe a page file: superblock, regions, commit, page counts",
		"vmpf-ctl info PAGEFILE [--json]",
		"Reads a page file (a block device or a file) from userspace and\n"
		"prints its format version, generation, regions, whether it is\n"
		"committed (and if not, why) and its pages by state.  Exits 0 if the\n"
		"file could be read, committed or not.\n",
	},
	{
		"revoke", CTL_CMD_REVOKE,
		"take a VM back to its source after the commit: no destination restores it",
		"vmpf-ctl revoke PAGEFILE [--force]",
		"For a source whose migration committed but whose destination never\n"
		"started (or failed before it ran the guest): marks the image in\n"
		"PAGEFILE revoked in its ownership lease, so that every restore of it\n"
		"is refused (unless forced), and only then may the source VM run again\n"
		"(QEMU: QMP cont).  Refused while a destination renews a lease on the\n"
		"image (the VM runs there: it watches the lease for its period), and if\n"
		"a destination restored it before (the VM ran there after the commit,\n"
		"its disks moved on).  --force revokes whatever the lease says.  Exits 0\n"
		"once revoked.\n",
	},
	{
		"verify", CTL_CMD_VERIFY,
		"check every crc32c of a committed page file",
		"vmpf-ctl verify PAGEFILE [--json]",
		"Checks the superblock, the commit record, the page table, the\n"
		"device state and the crc32c of every data page.  Exits 0 if all are\n"
		"right, 1 otherwise, naming the first bad page.\n",
	},
	{
		"restore", CTL_CMD_RESTORE,
		"watch and steer a restore: pages resident, faults, prefetch",
		"vmpf-ctl restore --pid PID [--fd N] [--run | --pause] [--rate N] [--json]\n"
		"       vmpf-ctl restore --qemu PAGEFILE [--no-prefetch] [--huge] [--force | --no-lease] [--disks-to DIR] -- QEMU [ARGS...]",
		"Shows the restore session held by process PID: pages resident, brought\n"
		"in by faults and by the prefetch, zero pages, errors, the fault latency\n"
		"histogram.  --run starts or resumes the background prefetch, --pause\n"
		"pauses it (faults still bring pages in), --rate N limits it to N pages\n"
		"per second (0: no limit).\n"
		"\n"
		"With --qemu, starts the guest a 'vmpf-ctl migrate' committed to\n"
		"PAGEFILE in a new QEMU: QEMU [ARGS] is the source's command line (the\n"
		"same machine and devices).  vmpf-ctl opens a restore session, gives it\n"
		"a device node, replaces QEMU's RAM backend (the -object named by\n"
		"-machine memory-backend=) with a memory-backend-file on that node,\n"
		"adds -incoming defer and a QMP socket of its own, feeds QEMU the stored\n"
		"device state, and the guest resumes (unless -S) before its RAM has\n"
		"arrived: faults read pages from PAGEFILE in the kernel, the prefetch\n"
		"reads the rest.  vmpf-ctl stays until QEMU exits, prints when all of\n"
		"guest RAM is in memory, and exits with QEMU's status.  --huge backs\n"
		"guest RAM with 2 MiB transparent huge pages where the host has them\n"
		"free: a fault reads a whole 2 MiB page at once, and KVM maps it with\n"
		"one 2 MiB entry.\n"
		"\n"
		"One VM runs from one image: the restore takes the image's ownership\n"
		"lease in PAGEFILE and renews it while it reads from the file.  Another\n"
		"restore of the image, on any host, is refused while that lease is\n"
		"renewed; an owner that stopped renewing (its host died) is taken over\n"
		"after the lease's period (10 s by default).  An image its source took\n"
		"back (vmpf-ctl revoke) is refused.  --force takes the image whatever\n"
		"its lease says: only when the VM that owned it is known to be gone.\n"
		"--no-lease takes no lease (PAGEFILE may then be read-only, e.g. on a\n"
		"read-only export): you guarantee that no other host runs this VM.\n"
		"\n"
		"--disks-to DIR moves the VM's writable disks (the images on the share\n"
		"that 'vmpf-ctl migrate --disks-to' made) to DIR, on this host, while the\n"
		"guest runs: QEMU mirrors each to a file of the same name in DIR, moves\n"
		"onto the copy once it is in sync (block-job-complete), and vmpf-ctl\n"
		"removes the share's image.  If that fails, the guest runs on from the\n"
		"share, the partial copies are removed and vmpf-ctl exits 1 when QEMU\n"
		"exits.\n",
	},
	{
		"migrate", CTL_CMD_MIGRATE,
		"live-migrate a running QEMU guest into a page file",
		"vmpf-ctl migrate --qmp SOCKET PAGEFILE [--downtime MS] [--manual] [--cgroup-throttle] [--disks-to DIR] [--json]",
		"Migrates the guest of the QEMU whose QMP monitor listens on SOCKET\n"
		"(-qmp unix:SOCKET,server=on,wait=off) into PAGEFILE (a block device, or\n"
		"a file, created if missing, on a filesystem both hosts share).  QEMU\n"
		"needs KVM, its guest RAM in one shared memory backend (-machine\n"
		"memory-backend=ram0 -object memory-backend-memfd,id=ram0,share=on,size=N)\n"
		"and no SMM (-machine smm=off).  vmpf-ctl takes QEMU's KVM descriptor\n"
		"(pidfd_getfd, so run it as root), finds the memslots of that backend,\n"
		"pre-copies while the guest runs, prints a line per round, and when the\n"
		"estimated switch-over is under --downtime (default 300 ms) or pre-copy\n"
		"stops converging (the estimate covers guest RAM and the commit; QEMU's\n"
		"device state comes on top, 0.1-0.3 s in the test machines):\n"
		"pauses QEMU (QMP stop), copies the last dirty pages,\n"
		"has QEMU save its device state with x-ignore-shared into the page file\n"
		"and commits.  Any failure before the commit resumes the guest where it\n"
		"runs (QMP cont) and leaves the page file uncommitted; after the commit\n"
		"QEMU stays paused, as after its own migration: quit it once the\n"
		"destination runs.  --cgroup-throttle slows QEMU through its cgroup's\n"
		"cpu.max when the guest dirties memory faster than it can be copied.\n"
		"--manual keeps pre-copying until 'vmpf-ctl finish --pid PID' (PID:\n"
		"this vmpf-ctl) asks for the switch-over.  'vmpf-ctl status --pid PID'\n"
		"watches it.  Interrupting vmpf-ctl (Ctrl-C) aborts.  Exits 0 once\n"
		"committed.\n"
		"\n"
		"--disks-to DIR moves the VM's local disks with it: each writable disk\n"
		"is mirrored by QEMU (drive-mirror, full, in the image's format) to a\n"
		"file of the same name in DIR, a directory on the share, while memory\n"
		"is pre-copied; progress is printed every 2 s.  The switch-over waits\n"
		"until every mirror is in sync, and the pause includes the mirrors'\n"
		"last writes: the copies are then the disks at the pause, and QEMU\n"
		"stays on its own images.  Start the destination's QEMU on the copies.\n"
		"A copy that exists already is not overwritten.  A mirror that fails\n"
		"(e.g. DIR full) or an abort ends the migration: the guest runs on, on\n"
		"its own disks, and the partial copies are removed.\n",
	},
	{
		"qmp", CTL_CMD_QMP,
		"run one QMP command on a QEMU and print its answer",
		"vmpf-ctl qmp --qmp SOCKET COMMAND [ARGUMENTS-JSON]",
		"Sends COMMAND (with ARGUMENTS, a JSON object) to the QMP monitor at\n"
		"SOCKET and prints QEMU's answer line.  Exits 1 with QEMU's error.\n",
	},
	{
		"handover", CTL_CMD_HANDOVER,
		"hand a running vmpf-vm guest to a new VMM process on this host",
		"vmpf-ctl handover --pid PID -- VMM [ARGS...]",
		"Replaces the VMM process PID under its running guest, e.g. to upgrade\n"
		"the VMM binary: runs VMM [ARGS] (a vmpf-vm, in place of vmpf-ctl) with\n"
		"--take-over /run/vmpf-vm/PID.sock added.  PID must have been started\n"
		"with --handover and guest RAM that another process can map (--memfd,\n"
		"or a restore session's).  The old VMM pauses, passes its device state\n"
		"and its RAM's descriptor over the socket, and exits once the new one\n"
		"has resumed the guest; no guest page is copied or read.  If the new\n"
		"VMM fails before it resumes, the old one resumes and runs on.\n",
	},
	{
		"help", CTL_CMD_HELP,
		"show help for a command",
		"vmpf-ctl help [COMMAND]",
		"Without COMMAND, lists the commands; with one, shows its help.\n",
	},
};

#define CTL_NCOMMANDS (sizeof(ctl_commands) / sizeof(ctl_commands[0]))

static const struct ctl_command *ctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < CTL_NCOMMANDS; i++)
		if (!strcmp(ctl_commands[i].name, name))
			return &ctl_commands[i];
	return NULL;
}

static const struct ctl_command *ctl_find_cmd(enum ctl_cmd cmd)
{
	size_t i;

	for (i = 0; i < CTL_NCOMMANDS; i++)
		if (ctl_commands[i].cmd == cmd)
			return &ctl_commands[i];
	return NULL;
}

int ctl_parse(int argc, char *const argv[], struct ctl_opts *o, char *err,
	      size_t errlen)
{
	const struct ctl_command *c;
	int i;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	o->rate = -1;
	o->downtime_ms = -1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-p"))
			a = "--pid";
		if (!strcmp(a, "--pid") || !strcmp(a, "--fd")) {
			char *end;
			long v;

			if (i + 1 >= argc) {
				snprintf(err, errlen, "option '%s' needs a number", a);
				return CTL_EXIT_USAGE;
			}
			v = strtol(argv[++i], &end, 10);
			if (*end || end == argv[i] || v < (a[2] == 'p' ? 1 : 0) || v > INT_MAX) {
				snprintf(err, errlen, "'%s' is not a valid %s", argv[i],
					 a[2] == 'p' ? "process id" : "descriptor number");
				return CTL_EXIT_USAGE;
			}
			if (a[2] == 'p')
				o->pid = v;
			else
				o->fd = v;
		} else if (!strcmp(a, "--run") || !strcmp(a, "--pause")) {
			o->prefetch_op = a[2] == 'r' ? VMPF_PREFETCH_RUN : VMPF_PREFETCH_PAUSE;
		} else if (!strcmp(a, "--rate")) {
			char *end;

			if (i + 1 >= argc) {
				snprintf(err, errlen, "option '--rate' needs a number of pages per second");
				return CTL_EXIT_USAGE;
			}
			o->rate = strtoll(argv[++i], &end, 10);
			if (*end || end == argv[i] || o->rate < 0) {
				snprintf(err, errlen, "'%s' is not a valid rate", argv[i]);
				return CTL_EXIT_USAGE;
			}
		} else if (!strcmp(a, "--qmp") || !strcmp(a, "--qemu")) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				snprintf(err, errlen, "option '%s' needs a %s", a,
					 a[3] == 'm' ? "QMP socket path" : "PAGEFILE");
				return CTL_EXIT_USAGE;
			}
			if (a[3] == 'm')
				o->qmp = argv[++i];
			else
				o->qemu = argv[++i];
		} else if (!strcmp(a, "--downtime")) {
			char *end;

			if (i + 1 >= argc) {
				snprintf(err, errlen, "option '--downtime' needs milliseconds");
				return CTL_EXIT_USAGE;
			}
			o->downtime_ms = strtoll(argv[++i], &end, 10);
			if (*end || end == argv[i] || o->downtime_ms <= 0 ||
			    o->downtime_ms > 3600000) {
				snprintf(err, errlen, "'%s' is not a valid downtime in milliseconds",
					 argv[i]);
				return CTL_EXIT_USAGE;
			}
		} else if (!strcmp(a, "--manual")) {
			o->manual = 1;
		} else if (!strcmp(a, "--no-prefetch")) {
			o->no_prefetch = 1;
		} else if (!strcmp(a, "--huge")) {
			o->huge = 1;
		} else if (!strcmp(a, "--force")) {
			o->force = 1;
		} else if (!strcmp(a, "--no-lease")) {
			o->no_lease = 1;
		} else if (!strcmp(a, "--disks-to")) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				snprintf(err, errlen, "option '--disks-to' needs a directory");
				return CTL_EXIT_USAGE;
			}
			o->disks_to = argv[++i];
		} else if (!strcmp(a, "--") && ((o->cmd == CTL_CMD_RESTORE && o->qemu) ||
					       o->cmd == CTL_CMD_HANDOVER)) {
			o->qemu_argv = &argv[i + 1];
			o->qemu_argc = argc - i - 1;
			break;
		} else if (!strcmp(a, "-w") || !strcmp(a, "--watch")) {
			o->watch = 1;
		} else if (!strcmp(a, "--when-ready")) {
			o->when_ready = 1;
		} else if (!strcmp(a, "--cgroup-throttle")) {
			o->cgroup_throttle = 1;
		} else if (!strcmp(a, "--history")) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				snprintf(err, errlen, "option '--history' needs a PAGEFILE");
				return CTL_EXIT_USAGE;
			}
			o->history = argv[++i];
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			o->help = 1;
		} else if (!strcmp(a, "-j") || !strcmp(a, "--json")) {
			o->json = 1;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--device")) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				snprintf(err, errlen, "option '%s' needs a device path", a);
				return CTL_EXIT_USAGE;
			}
			o->device = argv[++i];
		} else if (!strncmp(a, "--device=", 9)) {
			if (!a[9]) {
				snprintf(err, errlen, "option '--device=' needs a device path");
				return CTL_EXIT_USAGE;
			}
			o->device = a + 9;
		} else if (a[0] == '-' && a[1]) {
			snprintf(err, errlen, "unknown option '%s'; see 'vmpf-ctl --help'", a);
			return CTL_EXIT_USAGE;
		} else if (o->cmd == CTL_CMD_NONE) {
			c = ctl_find(a);
			if (!c) {
				snprintf(err, errlen, "unknown command '%s'; see 'vmpf-ctl --help'", a);
				return CTL_EXIT_USAGE;
			}
			o->cmd = c->cmd;
		} else if ((o->cmd == CTL_CMD_INFO || o->cmd == CTL_CMD_VERIFY ||
			    o->cmd == CTL_CMD_MIGRATE || o->cmd == CTL_CMD_REVOKE) && !o->path) {
			o->path = a;
		} else if (o->cmd == CTL_CMD_QMP && (!o->qmp_cmd || !o->qmp_args)) {
			if (!o->qmp_cmd)
				o->qmp_cmd = a;
			else
				o->qmp_args = a;
		} else if (o->cmd == CTL_CMD_HELP && o->topic == CTL_CMD_NONE) {
			c = ctl_find(a);
			if (!c) {
				snprintf(err, errlen, "no help for unknown command '%s'; see 'vmpf-ctl --help'", a);
				return CTL_EXIT_USAGE;
			}
			o->topic = c->cmd;
		} else {
			snprintf(err, errlen, "unexpected argument '%s'; see 'vmpf-ctl --help'", a);
			return CTL_EXIT_USAGE;
		}
	}

	/* 'vmpf-ctl help X' and 'vmpf-ctl X --help' mean the same. */
	if (o->cmd == CTL_CMD_HELP) {
		o->help = 1;
	} else if (o->help) {
		o->topic = o->cmd;
	} else if (o->cmd == CTL_CMD_NONE) {
		snprintf(err, errlen, "no command given; see 'vmpf-ctl --help'");
		return CTL_EXIT_USAGE;
	} else if ((o->cmd == CTL_CMD_INFO || o->cmd == CTL_CMD_VERIFY ||
		    o->cmd == CTL_CMD_REVOKE) && !o->path) {
		snprintf(err, errlen, "%s needs a PAGEFILE; see 'vmpf-ctl help %s'",
			 ctl_find_cmd(o->cmd)->name, ctl_find_cmd(o->cmd)->name);
		return CTL_EXIT_USAGE;
	} else if (o->cmd == CTL_CMD_MIGRATE && (!o->qmp || !o->path)) {
		snprintf(err, errlen, "migrate needs --qmp SOCKET and a PAGEFILE; see 'vmpf-ctl help migrate'");
		return CTL_EXIT_USAGE;
	} else if (o->cmd == CTL_CMD_QMP && (!o->qmp || !o->qmp_cmd)) {
		snprintf(err, errlen, "qmp needs --qmp SOCKET and a COMMAND; see 'vmpf-ctl help qmp'");
		return CTL_EXIT_USAGE;
	} else if (o->cmd == CTL_CMD_RESTORE && o->qemu && !o->qemu_argc) {
		snprintf(err, errlen, "restore --qemu needs the QEMU command line after '--'; see 'vmpf-ctl help restore'");
		return CTL_EXIT_USAGE;
	} else if (o->cmd == CTL_CMD_HANDOVER && (!o->pid || !o->qemu_argc)) {
		snprintf(err, errlen, "handover needs --pid PID and the new VMM's command after '--'; see 'vmpf-ctl help handover'");
		return CTL_EXIT_USAGE;
	} else if (o->cmd == CTL_CMD_RESTORE && o->qemu && o->pid) {
		snprintf(err, errlen, "restore takes --pid (a running restore) or --qemu (a new one), not both");
		return CTL_EXIT_USAGE;
	} else if (((o->cmd >= CTL_CMD_START && o->cmd <= CTL_CMD_ABORT) ||
		    (o->cmd == CTL_CMD_RESTORE && !o->qemu)) && !o->pid) {
		snprintf(err, errlen, "%s needs --pid PID, the VMM holding the session",
			 ctl_find_cmd(o->cmd)->name);
		return CTL_EXIT_USAGE;
	}
	if ((o->prefetch_op || o->rate >= 0) && o->cmd != CTL_CMD_RESTORE) {
		snprintf(err, errlen, "--run, --pause and --rate are for restore only");
		return CTL_EXIT_USAGE;
	}
	if (o->watch && o->cmd != CTL_CMD_STATUS) {
		snprintf(err, errlen, "--watch is for status only");
		return CTL_EXIT_USAGE;
	}
	if (o->when_ready && o->cmd != CTL_CMD_FINISH) {
		snprintf(err, errlen, "--when-ready is for finish only");
		return CTL_EXIT_USAGE;
	}
	if (o->history && o->cmd != CTL_CMD_START) {
		snprintf(err, errlen, "--history is for start only");
		return CTL_EXIT_USAGE;
	}
	if (o->cgroup_throttle && o->cmd != CTL_CMD_START && o->cmd != CTL_CMD_STATUS &&
	    o->cmd != CTL_CMD_MIGRATE) {
		snprintf(err, errlen, "--cgroup-throttle is for start, status and migrate only");
		return CTL_EXIT_USAGE;
	}
	if (o->qmp && o->cmd != CTL_CMD_MIGRATE && o->cmd != CTL_CMD_QMP) {
		snprintf(err, errlen, "--qmp is for migrate and qmp only");
		return CTL_EXIT_USAGE;
	}
	if (o->disks_to && o->cmd != CTL_CMD_MIGRATE && !(o->cmd == CTL_CMD_RESTORE && o->qemu)) {
		snprintf(err, errlen, "--disks-to is for migrate and restore --qemu only");
		return CTL_EXIT_USAGE;
	}
	if ((o->downtime_ms >= 0 || o->manual) && o->cmd != CTL_CMD_MIGRATE) {
		snprintf(err, errlen, "--downtime and --manual are for migrate only");
		return CTL_EXIT_USAGE;
	}
	if ((o->qemu && o->cmd != CTL_CMD_RESTORE) ||
	    ((o->no_prefetch || o->no_lease || o->huge) && !o->qemu) ||
	    (o->force && !o->qemu && o->cmd != CTL_CMD_REVOKE)) {
		snprintf(err, errlen, "--qemu, --no-prefetch, --huge and --no-lease are for restore --qemu only, --force for it and revoke");
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

void ctl_print_help(FILE *f, enum ctl_cmd topic)
{
	const struct ctl_command *c = ctl_find_cmd(topic);
	size_t i;

	if (c) {
		fprintf(f, "Usage: %s\n\n%s - %s\n\n%s", c->usage, c->name,
			c->summary, c->help);
		return;
	}

	fprintf(f,
		"Usage: vmpf-ctl [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Drive and watch vmpagefile, the live migration of KVM guests through a\n"
		"page file on shared storage.\n"
		"\n"
		"Commands:\n");
	for (i = 0; i < CTL_NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", ctl_commands[i].name,
			ctl_commands[i].summary);
	fprintf(f,
		"\n"
		"Options:\n"
		"  -d, --device PATH  the control device (default $VMPF_DEVICE or %s)\n"
		"  -j, --json         machine-readable output\n"
		"  -p, --pid PID      the VMM process holding the migration session\n"
		"      --fd N         its session descriptor, if it has several\n"
		"  -w, --watch        status: print progress until the migration ends\n"
		"      --when-ready   finish: wait until the estimated downtime meets the target\n"
		"      --history PAGEFILE  start: begin with the throttle an earlier migration needed\n"
		"      --cgroup-throttle   start, status: enforce the throttle through the VMM's cgroup\n"
		"      --run, --pause, --rate N  restore: steer the background prefetch\n"
		"  -h, --help         this help, or a command's help after the command\n"
		"\n"
		"Exit status: 0 success, 1 the command failed, 2 a usage error.\n",
		VMPF_DEVICE_PATH);
}

void ctl_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Print the names of the bits set in @mask, separated by @sep. */
static void ctl_print_bits(FILE *f, __u64 mask, const char *(*name)(unsigned int),
			   const char *sep, int json)
{
	const char *first = "";
	unsigned int bit;
	char unknown[32];

	for (bit = 0; bit < 64; bit++) {
		const char *n;

		if (!(mask & (1ULL << bit)))
			continue;
		n = name(bit);
		if (!n) {
			snprintf(unknown, sizeof(unknown), "bit%u", bit);
			n = unknown;
		}
		fputs(first, f);
		if (json)
			ctl_json_string(f, n);
		else
			fputs(n, f);
		first = sep;
	}
	if (!*first && !json)
		fputs("none", f);
}

void ctl_print_version(FILE *f, const struct ctl_version *v, int json)
{
	char mod[32];

	if (v->have_module)
		vmpf_format_version(mod, sizeof(mod), v->api.version);

	if (!json) {
		fprintf(f, "vmpf-ctl %s (API %d)\n", v->tool_version, VMPF_API);
		if (!v->have_module)
			return;
		fprintf(f, "module   %s (API %llu)\n", mod,
			(unsigned long long)VMPF_API);
		fputs("features ", f);
		ctl_print_bits(f, v->api.features, vmpf_feature_name, " ", 0);
		fputs("\nioctls   ", f);
		ctl_print_bits(f, v->api.ioctls, vmpf_ioctl_bit_name, " ", 0);
		fprintf(f, "\nopen files %llu, sessions %llu, module memory %llu bytes, huge pages filled %llu, page-table blocks read again %llu\n",
			(unsigned long long)v->info.open_files,
			(unsigned long long)v->info.sessions,
			(unsigned long long)v->info.mem_bytes,
			(unsigned long long)v->info.huge_fills,
			(unsigned long long)v->info.table_reads);
		return;
	}

	fputs("{\"tool\":{\"version\":", f);
	ctl_json_string(f, v->tool_version);
	fprintf(f, ",\"api\":%d}", VMPF_API);
	if (v->have_module) {
		fputs(",\"module\":{\"version\":", f);
		ctl_json_string(f, mod);
		fprintf(f, ",\"api\":%d,\"features_mask\":%llu,\"features\":[",
			VMPF_API, (unsigned long long)v->api.features);
		ctl_print_bits(f, v->api.features, vmpf_feature_name, ",", 1);
		fprintf(f, "],\"ioctls_mask\":%llu,\"ioctls\":[",
			(unsigned long long)v->api.ioctls);
		ctl_print_bits(f, v->api.ioctls, vmpf_ioctl_bit_name, ",", 1);
		/* mem_bytes last: scripts match "...,\"mem_bytes\":N}". */
		fprintf(f, "],\"huge_fills\":%llu,\"table_reads\":%llu,\"open_files\":%llu,\"sessions\":%llu,\"mem_bytes\":%llu}",
			(unsigned long long)v->info.huge_fills,
			(unsigned long long)v->info.table_reads,
			(unsigned long long)v->info.open_files,
			(unsigned long long)v->info.sessions,
			(unsigned long long)v->info.mem_bytes);
	}
	fputs("}\n", f);
}

const char *ctl_phase_name(unsigned long long phase)
{
	static const char *const names[] = {
		"none", "attached", "precopy", "finishing", "committed", "aborted", "failed",
		"state-wait",
	};

	return phase < sizeof(names) / sizeof(names[0]) ? names[phase] : "unknown";
}

static const char *const ctl_flag_names[] = {
	"converged", "round-limit", "finish-requested", "ready", "not-converging",
};

#define CTL_FLAGS	(sizeof(ctl_flag_names) / sizeof(ctl_flag_names[0]))

void ctl_print_status_line(FILE *f, const struct vmpf_status *st)
{
	fprintf(f, "%-9s round %llu, %llu/%llu pages written, %llu dirty, %.1f MiB, %.1f s%s%s\n",
		ctl_phase_name(st->phase), (unsigned long long)st->round,
		(unsigned long long)st->pages_written, (unsigned long long)st->total_pages,
		(unsigned long long)st->dirty_pages, st->bytes_written / 1048576.0,
		st->elapsed_ns / 1e9, st->message[0] ? ": " : "",
		(const char *)st->message);
}

void ctl_print_status(FILE *f, const struct vmpf_status *st,
		      const struct vmpf_round_stats *rounds, unsigned int n,
		      int json)
{
	ctl_print_status_full(f, st, rounds, NULL, n, NULL, NULL, 0, json);
}

void ctl_print_status_full(FILE *f, const struct vmpf_status *st,
			   const struct vmpf_round_stats *rounds,
			   const struct vmpf_round_policy *pol, unsigned int n,
			   const struct vmpf_vcpu_throttle *vt,
			   const struct vmpf_vcpu_stat *vs, unsigned int nv, int json)
{
	const char *sep = "";
	unsigned int i;

	if (vt && vt->per_vcpu && vt->nr_vcpus < nv)
		nv = (unsigned int)vt->nr_vcpus;
	else if (!vt || !vt->per_vcpu)
		nv = 0;
	if (!json) {
		fprintf(f, "phase      %s", ctl_phase_name(st->phase));
		for (i = 0; i < CTL_FLAGS; i++)
			if (st->flags & (1ULL << i))
				fprintf(f, ", %s", ctl_flag_names[i]);
		fprintf(f, "\nround      %llu (%llu done)\n", (unsigned long long)st->round,
			(unsigned long long)st->nr_rounds);
		fprintf(f, "pages      %llu total, %llu written, %llu zero, %llu dirty (left)\n",
			(unsigned long long)st->total_pages,
			(unsigned long long)st->pages_written,
			(unsigned long long)st->zero_pages, (unsigned long long)st->dirty_pages);
		fprintf(f, "written    %llu bytes in %.3f s; session memory %llu bytes\n",
			(unsigned long long)st->bytes_written, st->elapsed_ns / 1e9,
			(unsigned long long)st->mem_bytes);
		if (st->est_downtime_ns || st->throttle_pct || st->throttle_peak)
			fprintf(f, "switch     estimated %.1f ms; throttle %llu %% (peak %llu %%)\n",
				st->est_downtime_ns / 1e6, (unsigned long long)st->throttle_pct,
				(unsigned long long)st->throttle_peak);
		if (vt && vt->per_vcpu) {
			fprintf(f, "vcpus      throttle per vCPU (dirty ring):");
			for (i = 0; i < nv; i++)
				fprintf(f, "%s %llu: %llu %% (%llu pages last round)", i ? "," : "",
					(unsigned long long)vs[i].vcpu,
					(unsigned long long)vs[i].throttle_pct,
					(unsigned long long)vs[i].dirty_pages);
			fputc('\n', f);
		}
		if (st->io_retries)
			fprintf(f, "retries    %llu page-file writes repeated after a transient error\n",
				(unsigned long long)st->io_retries);
		if (st->error || st->message[0])
			fprintf(f, "error      %s (errno %llu)\n", (const char *)st->message,
				(unsigned long long)st->error);
		if (n)
			fprintf(f, "%6s %9s %9s %9s %12s %10s %10s %10s%s\n", "round", "dirty",
				"written", "zero", "bytes", "ms", "dirty/s", "MiB/s",
				pol ? "    est ms  throttle" : "");
		for (i = 0; i < n; i++) {
			fprintf(f, "%6llu %9llu %9llu %9llu %12llu %10.2f %10llu %10.1f",
				(unsigned long long)rounds[i].round,
				(unsigned long long)rounds[i].dirty_pages,
				(unsigned long long)rounds[i].written_pages,
				(unsigned long long)rounds[i].zero_pages,
				(unsigned long long)rounds[i].bytes,
				rounds[i].duration_ns / 1e6,
				(unsigned long long)rounds[i].dirty_rate,
				rounds[i].write_rate / 1048576.0);
			if (pol && pol[i].round == rounds[i].round &&
			    (pol[i].est_downtime_ns || pol[i].throttle_pct))
				fprintf(f, " %9.1f %8llu %%", pol[i].est_downtime_ns / 1e6,
					(unsigned long long)pol[i].throttle_pct);
			fputc('\n', f);
		}
		return;
	}

	fprintf(f, "{\"phase\":\"%s\",\"flags\":[", ctl_phase_name(st->phase));
	for (i = 0; i < CTL_FLAGS; i++)
		if (st->flags & (1ULL << i)) {
			fprintf(f, "%s\"%s\"", sep, ctl_flag_names[i]);
			sep = ",";
		}
	fprintf(f, "],\"round\":%llu,\"nr_rounds\":%llu,\"total_pages\":%llu,"
		"\"pages_written\":%llu,\"zero_pages\":%llu,\"dirty_pages\":%llu,"
		"\"bytes_written\":%llu,\"elapsed_ns\":%llu,\"mem_bytes\":%llu,"
		"\"io_retries\":%llu,\"est_downtime_ns\":%llu,\"throttle_pct\":%llu,"
		"\"throttle_peak\":%llu,\"error\":%llu,\"message\":",
		(unsigned long long)st->round, (unsigned long long)st->nr_rounds,
		(unsigned long long)st->total_pages, (unsigned long long)st->pages_written,
		(unsigned long long)st->zero_pages, (unsigned long long)st->dirty_pages,
		(unsigned long long)st->bytes_written, (unsigned long long)st->elapsed_ns,
		(unsigned long long)st->mem_bytes, (unsigned long long)st->io_retries,
		(unsigned long long)st->est_downtime_ns, (unsigned long long)st->throttle_pct,
		(unsigned long long)st->throttle_peak, (unsigned long long)st->error);
	ctl_json_string(f, (const char *)st->message);
	if (vt)
		fprintf(f, ",\"per_vcpu_throttle\":%s", vt->per_vcpu ? "true" : "false");
	if (nv) {
		fputs(",\"vcpus\":[", f);
		for (i = 0; i < nv; i++)
			fprintf(f, "%s{\"vcpu\":%llu,\"throttle_pct\":%llu,\"dirty_pages\":%llu,"
				"\"dirty_total\":%llu}", i ? "," : "",
				(unsigned long long)vs[i].vcpu,
				(unsigned long long)vs[i].throttle_pct,
				(unsigned long long)vs[i].dirty_pages,
				(unsigned long long)vs[i].dirty_total);
		fputc(']', f);
	}
	fputs(",\"rounds\":[", f);
	for (i = 0; i < n; i++) {
		fprintf(f, "%s{\"round\":%llu,\"dirty_pages\":%llu,\"written_pages\":%llu,"
			"\"zero_pages\":%llu,\"bytes\":%llu,\"duration_ns\":%llu,"
			"\"dirty_rate\":%llu,\"write_rate\":%llu", i ? "," : "",
			(unsigned long long)rounds[i].round,
			(unsigned long long)rounds[i].dirty_pages,
			(unsigned long long)rounds[i].written_pages,
			(unsigned long long)rounds[i].zero_pages,
			(unsigned long long)rounds[i].bytes,
			(unsigned long long)rounds[i].duration_ns,
			(unsigned long long)rounds[i].dirty_rate,
			(unsigned long long)rounds[i].write_rate);
		if (pol && pol[i].round == rounds[i].round)
			fprintf(f, ",\"est_downtime_ns\":%llu,\"throttle_pct\":%llu,"
				"\"ready\":%s,\"not_converging\":%s",
				(unsigned long long)pol[i].est_downtime_ns,
				(unsigned long long)pol[i].throttle_pct,
				pol[i].flags & VMPF_STATUS_READY ? "true" : "false",
				pol[i].flags & VMPF_STATUS_NOT_CONVERGING ? "true" : "false");
		fputc('}', f);
	}
	fputs("]}\n", f);
}

void ctl_print_restore_status(FILE *f, const struct vmpf_restore_status *st, int json)
{
	static const char *const phases[] = { "none", "running", "complete" };
	static const char *const leases[] = { "none", "reading", "restored", "revoked", "lost",
					      "expired" };
	static const char *const lease_text[] = {
		"none: this session took no ownership lease",
		"held: this host owns the image, and pages are read from the page file",
		"held: every page was read; the VM runs here",
		"revoked",
		"lost: a new migration went into the page file, or another session took the image over",
		"expired: not renewed for its period (the storage is away): another host may have taken the image over",
	};
	const char *phase = st->phase < 3 ? phases[st->phase] : "unknown";
	unsigned int lease = st->lease < 6 ? st->lease : 0;
	unsigned int i;

	if (json) {
		fprintf(f, "{\"phase\":\"%s\",\"prefetching\":%s,\"total_pages\":%llu,"
			"\"resident\":%llu,\"demand_pages\":%llu,\"prefetched\":%llu,"
			"\"zero_pages\":%llu,\"io_errors\":%llu,\"crc_errors\":%llu,"
			"\"bad_pages\":%llu,\"elapsed_ns\":%llu,\"complete_ns\":%llu,"
			"\"mem_bytes\":%llu,\"io_retries\":%llu,\"discarded\":%llu,"
			"\"prefetch_held\":%s,\"lease\":\"%s\",\"fault_hist_us_log2\":[", phase,
			st->prefetching ? "true" : "false",
			(unsigned long long)st->total_pages, (unsigned long long)st->resident,
			(unsigned long long)st->demand_pages, (unsigned long long)st->prefetched,
			(unsigned long long)st->zero_pages, (unsigned long long)st->io_errors,
			(unsigned long long)st->crc_errors, (unsigned long long)st->bad_pages,
			(unsigned long long)st->elapsed_ns, (unsigned long long)st->complete_ns,
			(unsigned long long)st->mem_bytes, (unsigned long long)st->io_retries,
			(unsigned long long)st->discarded, st->prefetch_held ? "true" : "false",
			leases[lease]);
		for (i = 0; i < VMPF_FAULT_HIST; i++)
			fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)st->fault_hist[i]);
		fputs("],\"message\":", f);
		ctl_json_string(f, (const char *)st->message);
		fputs("}\n", f);
		return;
	}
	fprintf(f, "restore    %s, prefetch %s\n", phase,
		st->prefetch_held ? "waiting: the memory cgroup is near its limit" :
		st->prefetching ? "running" : "not running");
	fprintf(f, "pages      %llu of %llu restored: %llu on demand, %llu prefetched, %llu zero, "
		"%llu discarded\n",
		(unsigned long long)st->resident, (unsigned long long)st->total_pages,
		(unsigned long long)st->demand_pages, (unsigned long long)st->prefetched,
		(unsigned long long)st->zero_pages, (unsigned long long)st->discarded);
	fprintf(f, "errors     %llu bad pages (%llu read errors, %llu crc mismatches), %llu reads retried\n",
		(unsigned long long)st->bad_pages, (unsigned long long)st->io_errors,
		(unsigned long long)st->crc_errors, (unsigned long long)st->io_retries);
	if (st->complete_ns)
		fprintf(f, "complete   after %.3f s\n", st->complete_ns / 1e9);
	fprintf(f, "lease      %s\n", lease_text[lease]);
	fputs("faults     waits by latency:", f);
	for (i = 0; i < VMPF_FAULT_HIST; i++)
		if (st->fault_hist[i])
			fprintf(f, " %s%lluus:%llu", i == VMPF_FAULT_HIST - 1 ? ">=" : "<",
				i == VMPF_FAULT_HIST - 1 ? 1ULL << i : 2ULL << i,
				(unsigned long long)st->fault_hist[i]);
	fputs("\n", f);
	if (st->message[0])
		fprintf(f, "error      %s\n", (const char *)st->message);
}
