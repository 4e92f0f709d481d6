// SPDX-License-Identifier: GPL-2.0
/*
 * vmpf-vm - the reference VMM of vmpagefile and the workload of its tests.
 *
 * Runs a KVM guest whose built-in code stores a checkable pattern over a
 * working set at a chosen rate (or stays idle), pauses it, and saves or
 * restores its device state and RAM: as plain files, or through vmpagefile.
 *
 * With --migrate-to it is the reference user of the source-side UAPI: it
 * attaches its VM and a page file to /dev/vmpagefile, starts pre-copy,
 * waits on poll() for the session to want a switch-over, pauses its vCPUs,
 * writes a page itself (as device emulation would) and reports it with
 * VMPF_IOC_MARK_DIRTY, and hands its device state to VMPF_IOC_FINISH.
 * With --load-pagefile it restores a committed page file eagerly, from
 * userspace, and checks it.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "handover.h"
#include "pagefile.h"
#include "vm.h"
#include "vmpf.h"

#define EXIT_FAIL	1
#define EXIT_USAGE	2

static const char usage[] =
"Usage: vmpf-vm [OPTIONS]\n"
"\n"
"Run a KVM guest that writes a checkable pattern, then pause it.\n"
"\n"
"Guest:\n"
"  --ram SIZE          guest RAM, split over two memslots (default 64M;\n"
"                      suffixes K, M, G)\n"
"  --vcpus N           1 to 4 vCPUs (default 1)\n"
"  --working-set SIZE  how much RAM the guest writes (default: all of it)\n"
"  --rate N            pages stored per second over all vCPUs, 0 = as fast\n"
"                      as it can (default 0)\n"
"  --idle              the guest touches no memory\n"
"  --seconds S         run this long, then pause (default 1, may be 0.5)\n"
"\n"
"After the pause:\n"
"  --checksums FILE    write one \"gpa checksum\" line per guest page (- = stdout)\n"
"  --save-state FILE   write the device state (vCPU registers) blob\n"
"  --save-ram FILE     write guest RAM as a plain image\n"
"\n"
"Restore instead of boot:\n"
"  --load-state FILE   load vCPU registers; RAM size and vCPUs come from it\n"
"  --load-ram FILE     load guest RAM from a plain image (needs --load-state)\n"
"  --verify FILE       before resuming, compare RAM with a checksum file\n"
"\n"
"Migration through vmpagefile:\n"
"  --migrate-to PATH   after --seconds, migrate into the page file PATH (a\n"
"                      block device or file, opened O_DIRECT); switch over\n"
"                      when the session asks, then exit\n"
"  --wait-request      switch over only when asked (vmpf-ctl finish), not\n"
"                      when pre-copy converges\n"
"  --max-rounds N      pre-copy round limit (default: the module's)\n"
"  --target-pages N    converged below this many dirty pages (default: the module's)\n"
"  --downtime MS       the switch-over this VMM accepts (default: the module's, 300)\n"
"  --passes N          each vCPU stops after N passes over the working set\n"
"                      (guest memory then ends the same in every run)\n"
"  --compute-vcpus N   the last N vCPUs compute without touching memory\n"
"  --dirty-ring N      use KVM's dirty ring (N entries per vCPU) instead of\n"
"                      the dirty bitmap: the migration then throttles only\n"
"                      the vCPUs that dirty memory\n"
"  --throttle          slow the vCPUs down as the session asks when the guest\n"
"                      dirties memory faster than the page file takes it\n"
"  --history PATH      start with the throttle the migration committed in\n"
"                      PATH needed (an earlier migration of this guest)\n"
"  --max-throttle PCT  the session never asks more than PCT per cent\n"
"  --no-start          attach, but let vmpf-ctl start pre-copy\n"
"  --attempts N        migrate again after a failed or aborted migration, N\n"
"                      attempts in all (default 1)\n"
"  --no-mark-dirty     do not report the VMM's own write (a test of the test)\n"
"  --misbehave WHAT[:S]  break a rule of migrations S seconds (default 0.3)\n"
"                      into pre-copy, or before attach if S is 0, as a careless\n"
"                      VMM would: slot-toggle, slot-unlog, slot-recreate (memslot\n"
"                      changes), harvest, ring-harvest (take the dirty log or\n"
"                      rings), ring-spin (keep marking ring entries dirty for\n"
"                      a second), smm (a memslot in SMM's address space),\n"
"                      scribble (try to write the session's arguments page),\n"
"                      finish-running (the vCPUs run again, storing, when\n"
"                      FINISH is called: after the checksums and state)\n"
"  --manual-protect    enable KVM's manual dirty-log protection, as QEMU does\n"
"  --initially-set     the same, with KVM_DIRTY_LOG_INITIALLY_SET (logging starts\n"
"                      with every page dirty and none write-protected)\n"
"  --load-pagefile PATH  restore eagerly, from userspace, from a committed page file\n"
"  --restore PATH      restore lazily through vmpagefile: guest RAM is mapped\n"
"                      from the page file and faulted in by the kernel\n"
"  --no-prefetch       with --restore: faults only, no background prefetch\n"
"  --force             with --restore: restore the image whatever its ownership\n"
"                      lease says (its owner is known to be gone)\n"
"  --no-lease          with --restore: take no ownership lease (the page file\n"
"                      may be read-only): no other host may run this VM\n"
"  --sequential        with --restore: prefetch in page order, not hot-first\n"
"  --huge              with --restore: guest RAM in 2 MiB huge pages where the\n"
"                      host has them: a fault reads a whole 2 MiB page\n"
"  --prefetch-rate N   with --restore: at most N pages per second\n"
"  --wait-complete     with --restore: run until every page is resident\n"
"\n"
"Same-host handover (a new VMM process takes the running guest over; no\n"
"guest page is copied or read):\n"
"  --memfd             guest RAM in a memfd, which another process can map\n"
"  --handover          while running (--seconds), hand the guest to a new\n"
"                      vmpf-vm that connects to /run/vmpf-vm/PID.sock; needs\n"
"                      --memfd or --restore; with --checksums, written at\n"
"                      the pause; exits once the new one has resumed\n"
"  --take-over PATH    take the guest of the vmpf-vm listening on PATH over\n"
"                      (vmpf-ctl handover --pid PID -- vmpf-vm ... adds it)\n"
"\n"
"  --json              print the report as JSON\n"
"  -h, --help          this help\n"
"\n"
"Exit status: 0 success, 1 failure (KVM error, verification or pattern\n"
"mismatch), 2 usage error.\n";

struct opts {
	struct vm_config cfg;
	double seconds;
	int json;
	const char *checksums, *save_state, *save_ram;
	const char *load_state, *load_ram, *verify;
	const char *migrate_to, *load_pagefile, *restore;
	uint64_t prefetch_rate;
	int no_prefetch, sequential, wait_complete, force, no_lease, huge;
	int memfd, handover;		/* --memfd, --handover */
	const char *take_over;		/* --take-over PATH */
	uint64_t handover_ns;		/* the new VMM: pause to resume */
	double open_t;			/* --restore: when RESTORE_OPEN was issued */
	uint64_t resume_ns;		/* --restore: from RESTORE_OPEN to the vCPUs running */
	int session;			/* taken over: RAM is a restore session's */
	struct vmpf_restore_status rst;	/* the restore's outcome */
	uint64_t max_rounds, target_pages, downtime_ms;
	int throttle;		/* apply the session's throttle to the vCPUs */
	const char *history;	/* --history: the page file of the last migration */
	uint64_t max_throttle;	/* --max-throttle, 0 = the module's */
	uint64_t attempts;	/* --attempts */
	int wait_request, no_start, no_mark_dirty;
	int ram_given, vcpus_given;
	char misbehave[32];	/* --misbehave WHAT */
	int finish_running;	/* --misbehave finish-running */
	double misbehave_at;	/* seconds into pre-copy; 0: before attach */
};

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'G': case 'g': v <<= 30; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'K': case 'k': v <<= 10; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' ? (end[1] == 'B' ? 2 : 1) : 1;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "vmpf-vm: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; see 'vmpf-vm --help'\n");
	return EXIT_USAGE;
}

static int parse(int argc, char **argv, struct opts *o)
{
	uint64_t v;
	int i;

	memset(o, 0, sizeof(*o));
	o->cfg.ram_bytes = 64 << 20;
	o->cfg.vcpus = 1;
	o->cfg.mode = VM_MODE_DIRTY;
	o->seconds = 1;
	o->attempts = 1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			exit(0);
		} else if (!strcmp(a, "--idle")) {
			o->cfg.mode = VM_MODE_IDLE;
			takes = 0;
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
			takes = 0;
		} else if (!strcmp(a, "--wait-request")) {
			o->wait_request = 1;
			takes = 0;
		} else if (!strcmp(a, "--no-start")) {
			o->no_start = 1;
			takes = 0;
		} else if (!strcmp(a, "--no-mark-dirty")) {
			o->no_mark_dirty = 1;
			takes = 0;
		} else if (!strcmp(a, "--manual-protect")) {
			o->cfg.manual_protect = 1;
			takes = 0;
		} else if (!strcmp(a, "--initially-set")) {
			o->cfg.manual_protect = 2;
			takes = 0;
		} else if (!strcmp(a, "--no-prefetch")) {
			o->no_prefetch = 1;
			takes = 0;
		} else if (!strcmp(a, "--force")) {
			o->force = 1;
			takes = 0;
		} else if (!strcmp(a, "--no-lease")) {
			o->no_lease = 1;
			takes = 0;
		} else if (!strcmp(a, "--sequential")) {
			o->sequential = 1;
			takes = 0;
		} else if (!strcmp(a, "--huge")) {
			o->huge = 1;
			takes = 0;
		} else if (!strcmp(a, "--wait-complete")) {
			o->wait_complete = 1;
			takes = 0;
		} else if (!strcmp(a, "--memfd")) {
			o->memfd = 1;
			takes = 0;
		} else if (!strcmp(a, "--handover")) {
			o->handover = 1;
			takes = 0;
		} else if (a[0] == '-' && !val) {
			return usage_error("option '%s' needs a value", a);
		} else if (!strcmp(a, "--ram")) {
			if (parse_size(val, &o->cfg.ram_bytes))
				return usage_error("bad size '%s' for --ram", val);
			o->ram_given = 1;
		} else if (!strcmp(a, "--vcpus")) {
			if (parse_size(val, &v) || v < 1 || v > VM_MAX_VCPUS)
				return usage_error("--vcpus takes 1 to 4, not '%s'", val);
			o->cfg.vcpus = v;
			o->vcpus_given = 1;
		} else if (!strcmp(a, "--working-set")) {
			if (parse_size(val, &v) || !v)
				return usage_error("bad size '%s' for --working-set", val);
			o->cfg.ws_pages = (v + VM_PAGE_SIZE - 1) / VM_PAGE_SIZE;
		} else if (!strcmp(a, "--rate")) {
			if (parse_size(val, &o->cfg.rate))
				return usage_error("bad rate '%s' (pages per second)", val);
		} else if (!strcmp(a, "--seconds")) {
			char *end;

			o->seconds = strtod(val, &end);
			if (*end || end == val || o->seconds < 0 || o->seconds > 86400)
				return usage_error("bad duration '%s' for --seconds", val);
		} else if (!strcmp(a, "--checksums")) {
			o->checksums = val;
		} else if (!strcmp(a, "--save-state")) {
			o->save_state = val;
		} else if (!strcmp(a, "--save-ram")) {
			o->save_ram = val;
		} else if (!strcmp(a, "--load-state")) {
			o->load_state = val;
		} else if (!strcmp(a, "--load-ram")) {
			o->load_ram = val;
		} else if (!strcmp(a, "--take-over")) {
			o->take_over = val;
		} else if (!strcmp(a, "--verify")) {
			o->verify = val;
		} else if (!strcmp(a, "--migrate-to")) {
			o->migrate_to = val;
		} else if (!strcmp(a, "--load-pagefile")) {
			o->load_pagefile = val;
		} else if (!strcmp(a, "--restore")) {
			o->restore = val;
		} else if (!strcmp(a, "--prefetch-rate")) {
			if (parse_size(val, &o->prefetch_rate))
				return usage_error("bad rate '%s' for --prefetch-rate", val);
		} else if (!strcmp(a, "--max-rounds")) {
			if (parse_size(val, &o->max_rounds))
				return usage_error("bad number '%s' for --max-rounds", val);
		} else if (!strcmp(a, "--downtime")) {
			if (parse_size(val, &o->downtime_ms) || !o->downtime_ms)
				return usage_error("bad milliseconds '%s' for --downtime", val);
		} else if (!strcmp(a, "--throttle")) {
			o->throttle = 1;
			takes = 0;
		} else if (!strcmp(a, "--compute-vcpus")) {
			if (parse_size(val, &v) || v < 1 || v >= VM_MAX_VCPUS)
				return usage_error("bad number '%s' for --compute-vcpus", val);
			o->cfg.compute_vcpus = (int)v;
		} else if (!strcmp(a, "--dirty-ring")) {
			if (parse_size(val, &o->cfg.dirty_ring) || o->cfg.dirty_ring < 256 ||
			    (o->cfg.dirty_ring & (o->cfg.dirty_ring - 1)))
				return usage_error("bad number '%s' for --dirty-ring (a power of 2, at least 256)",
						   val);
		} else if (!strcmp(a, "--attempts")) {
			if (parse_size(val, &o->attempts) || !o->attempts || o->attempts > 100)
				return usage_error("bad number '%s' for --attempts (1-100)", val);
		} else if (!strcmp(a, "--passes")) {
			if (parse_size(val, &o->cfg.max_passes) || !o->cfg.max_passes)
				return usage_error("bad number '%s' for --passes", val);
		} else if (!strcmp(a, "--history")) {
			o->history = val;
		} else if (!strcmp(a, "--misbehave")) {
			const char *colon = strchr(val, ':');
			size_t n = colon ? (size_t)(colon - val) : strlen(val);

			o->misbehave_at = 0.3;
			if (!n || n >= sizeof(o->misbehave) ||
			    (colon && sscanf(colon + 1, "%lf", &o->misbehave_at) != 1))
				return usage_error("bad --misbehave '%s'", val);
			memcpy(o->misbehave, val, n);
			/* Not mid-pre-copy: at the switch-over. */
			if (!strcmp(o->misbehave, "finish-running")) {
				o->finish_running = 1;
				o->misbehave[0] = 0;
			}
		} else if (!strcmp(a, "--max-throttle")) {
			if (parse_size(val, &o->max_throttle) || !o->max_throttle ||
			    o->max_throttle > 99)
				return usage_error("bad per cent '%s' for --max-throttle (1-99)", val);
		} else if (!strcmp(a, "--target-pages")) {
			if (parse_size(val, &o->target_pages))
				return usage_error("bad number '%s' for --target-pages", val);
		} else {
			return usage_error("unknown option '%s'", a);
		}
		i += takes;
	}
	if (o->load_pagefile && (o->load_state || o->load_ram))
		return usage_error("%s cannot be combined with --load-state/--load-ram",
				   "--load-pagefile");
	if (o->restore && (o->load_state || o->load_ram || o->load_pagefile || o->migrate_to))
		return usage_error("%s cannot be combined with other restore or migrate options",
				   "--restore");
	if (o->verify && !o->load_state && !o->load_pagefile && !o->restore && !o->take_over)
		return usage_error("%s needs --load-state, --load-pagefile, --restore or --take-over",
				   "--verify");
	if (o->take_over && (o->restore || o->load_state || o->load_pagefile || o->memfd ||
			     o->ram_given || o->vcpus_given))
		return usage_error("%s takes RAM, vCPUs and state from the old VMM: no other "
				   "restore, --memfd, --ram or --vcpus", "--take-over");
	if (o->huge && !o->restore)
		return usage_error("%s is for --restore", "--huge");
	if (o->memfd && (o->restore || o->load_pagefile))
		return usage_error("%s: a restore's RAM is the session's already", "--memfd");
	if (o->handover && !o->memfd && !o->restore && !o->take_over)
		return usage_error("%s needs guest RAM another process can map: --memfd or --restore",
				   "--handover");
	if (o->handover && o->migrate_to)
		return usage_error("%s cannot be combined with --migrate-to", "--handover");
	if (o->load_ram && !o->load_state)
		return usage_error("%s needs --load-state", "--load-ram");
	if (o->load_state && !o->load_ram)
		return usage_error("%s needs --load-ram (RAM to go with the registers)",
				   "--load-state");
	if (o->cfg.compute_vcpus >= o->cfg.vcpus)
		return usage_error("%s leaves no vCPU to write memory", "--compute-vcpus");
	return 0;
}

static void *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && n < (1 << 24) &&
	    !fseek(f, 0, SEEK_SET)) {
		buf = malloc(n ? n : 1);
		if (buf && fread(buf, 1, n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = n;
	}
	fclose(f);
	return buf;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ret = 0;

	if (!f)
		return -errno;
	if (fwrite(buf, 1, len, f) != len)
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -EIO;
	return ret;
}

static int fail(struct vm *vm, const char *what)
{
	fprintf(stderr, "vmpf-vm: %s%s%s\n", what, vm && vm->error[0] ? ": " : "",
		vm ? vm->error : "");
	return EXIT_FAIL;
}

static double mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_seconds(double sec)
{
	struct timespec ts = {
		.tv_sec = (time_t)sec,
		.tv_nsec = (long)((sec - (time_t)sec) * 1e9),
	};

	nanosleep(&ts, NULL);
}

/* Restore RAM and device state eagerly from a committed page file. */
static int load_pagefile(struct vm *vm, struct opts *o, void **state,
			 size_t *state_len)
{
	struct pf pf;
	uint64_t p;
	int i, ret;

	ret = pf_open(&pf, o->load_pagefile);
	if (!ret && !pf.committed)
		ret = -EINVAL;
	if (!ret)
		ret = pf_read_state(&pf, state, state_len);
	if (!ret && vm_state_peek(*state, *state_len, &o->cfg.vcpus, &o->cfg.ram_bytes)) {
		snprintf(pf.why, sizeof(pf.why), "its device state is not vmpf-vm's");
		ret = -EINVAL;
	}
	if (!ret && vm_create(vm, &o->cfg)) {
		fprintf(stderr, "vmpf-vm: cannot create the VM: %s\n", vm->error);
		pf_close(&pf);
		return -1;
	}
	if (!ret && le32toh(pf.sb.nr_regions) != (uint32_t)vm->nslots)
		ret = -EINVAL, snprintf(pf.why, sizeof(pf.why), "its regions are not this VM's");
	for (i = 0; !ret && i < vm->nslots; i++)
		if (le64toh(pf.sb.regions[i].gpa) != vm->slots[i].gpa ||
		    le64toh(pf.sb.regions[i].pages) != vm->slots[i].size / VM_PAGE_SIZE)
			ret = -EINVAL, snprintf(pf.why, sizeof(pf.why), "its regions are not this VM's");
	if (!ret)
		ret = pf_load_table(&pf);
	for (i = 0; !ret && i < vm->nslots; i++) {
		uint64_t first = le64toh(pf.sb.regions[i].first_page);

		for (p = 0; !ret && p < vm->slots[i].size / VM_PAGE_SIZE; p++)
			ret = pf_read_page(&pf, first + p, vm->slots[i].hva + p * VM_PAGE_SIZE);
	}
	if (ret)
		fprintf(stderr, "vmpf-vm: cannot restore from %s: %s\n", o->load_pagefile,
			pf.why);
	pf_close(&pf);
	return ret;
}

/*
 * Restore lazily: open the page file through vmpagefile and map guest RAM
 * from it.  Returns the session descriptor (kept open while the VM runs:
 * the status comes from it), or -1.
 */
static int restore_open(struct vm *vm, struct opts *o, void **state, size_t *state_len)
{
	struct vmpf_restore_region regs[4];
	struct vmpf_restore_open ro = { 0 };
	struct vmpf_restore_info ri = { 0 };
	struct vmpf_api api;
	char msg[256];
	int fd, target, ret, i;

	fd = vmpf_open(vmpf_device_path());
	if (fd < 0) {
		fprintf(stderr, "vmpf-vm: %s\n",
			vmpf_open_error(-fd, vmpf_module_loaded(), vmpf_device_path(), msg,
					sizeof(msg)));
		return -1;
	}
	ret = vmpf_handshake(fd, VMPF_FEATURE_RESTORE, &api);
	if (ret) {
		fprintf(stderr, "vmpf-vm: %s\n", vmpf_ioctl_error(VMPF_IOC_API, -ret, msg, sizeof(msg)));
		goto err;
	}
	/* Read-write: the restore writes its ownership lease into the file. */
	target = open(o->restore, (o->no_lease ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
	if (target < 0) {
		fprintf(stderr, "vmpf-vm: cannot open the page file %s with O_DIRECT: %s\n",
			o->restore, strerror(errno));
		goto err;
	}
	ro.target_fd = target;
	ro.flags = (o->no_prefetch ? VMPF_RESTORE_NO_PREFETCH : 0) |
		   (o->sequential ? VMPF_RESTORE_SEQUENTIAL : 0) |
		   (o->huge ? VMPF_RESTORE_HUGE : 0) |
		   (o->force ? VMPF_RESTORE_FORCE : 0) |
		   (o->no_lease ? VMPF_RESTORE_NO_LEASE : 0);
	ro.prefetch_rate = o->prefetch_rate;
	o->open_t = mono_seconds();
	ret = __vmpf_ioctl(fd, VMPF_IOC_RESTORE_OPEN, &ro);
	close(target);
	if (ret) {
		fprintf(stderr, "vmpf-vm: cannot restore from %s: %s\n", o->restore,
			vmpf_ioctl_error(VMPF_IOC_RESTORE_OPEN, -ret, msg, sizeof(msg)));
		goto err;
	}
	*state = malloc(ro.state_len ? ro.state_len : 1);
	ri.regions = (uintptr_t)regs;
	ri.regions_cap = 4;
	ri.state = (uintptr_t)*state;
	ri.state_cap = ro.state_len;
	ret = *state ? __vmpf_ioctl(fd, VMPF_IOC_RESTORE_INFO, &ri) : -ENOMEM;
	if (ret) {
		fprintf(stderr, "vmpf-vm: %s\n",
			vmpf_ioctl_error(VMPF_IOC_RESTORE_INFO, -ret, msg, sizeof(msg)));
		goto err;
	}
	*state_len = ri.state_len;
	if (vm_state_peek(*state, *state_len, &o->cfg.vcpus, &o->cfg.ram_bytes)) {
		fprintf(stderr, "vmpf-vm: %s: its device state is not vmpf-vm's\n", o->restore);
		goto err;
	}
	if (ri.nr_regions != 2) {
		fprintf(stderr, "vmpf-vm: %s: its regions are not this VMM's\n", o->restore);
		goto err;
	}
	o->cfg.mem_fd = fd;
	for (i = 0; i < 2; i++)
		o->cfg.mem_off[i] = regs[i].offset;
	if (vm_create(vm, &o->cfg)) {
		fprintf(stderr, "vmpf-vm: cannot create the VM: %s\n", vm->error);
		goto err;
	}
	for (i = 0; i < 2; i++)
		if (regs[i].gpa != vm->slots[i].gpa || regs[i].size != vm->slots[i].size) {
			fprintf(stderr, "vmpf-vm: %s: its regions are not this VMM's\n",
				o->restore);
			goto err;
		}
	printf("vmpf-vm: restoring from %s, pid %d, session fd %d, %llu pages\n", o->restore,
	       getpid(), fd, (unsigned long long)ro.total_pages);
	fflush(stdout);
	return fd;
err:
	close(fd);
	return -1;
}

/* Run until the restore is complete (every page resident), or 120 s. */
static int restore_wait(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int ret = poll(&p, 1, 120000);

	if (ret == 1 && (p.revents & POLLIN))
		return 0;
	fprintf(stderr, "vmpf-vm: the restore did not complete%s\n",
		p.revents & POLLERR ? ": a page was refused" : " in 120 s");
	return -1;
}

/* What a migration through vmpagefile reports. */
struct migration {
	struct vmpf_finish fin;
	struct vmpf_status st;
	struct vmpf_round_stats rounds[64];
	int committed;
	/* The guest's own store rate: while it ran alone, during pre-copy. */
	double run_rate, precopy_rate;
	uint64_t throttle_max;		/* the largest throttle applied */
	uint64_t throttle_start;	/* set before pre-copy (--history) */
	uint64_t pf_taken, pf_fast;	/* KVM MMU faults during pre-copy, all and fast-path */
	int per_vcpu;			/* the session throttles vCPUs one by one */
	long ring_stale;		/* dirty ring entries a VMM resuming at ring_next would miss */
	long ring_left;			/* and those it would find */
	uint64_t attempts;		/* this was migration attempt number ... */
	uint64_t vcpu_throttle_max[VM_MAX_VCPUS];
	/* Each vCPU's progress (stores or computation) per second, alone and during pre-copy. */
	double vcpu_rate[VM_MAX_VCPUS], vcpu_precopy_rate[VM_MAX_VCPUS];
	int ready_seen, not_converging_seen;
};

static const char *phase_name(uint64_t phase)
{
	static const char *const names[] = {
		"none", "attached", "precopy", "finishing", "committed", "aborted", "failed",
		"state-wait",
	};

	return phase < sizeof(names) / sizeof(names[0]) ? names[phase] : "unknown";
}

/* What a vCPU has done: stores, or batches of computation. */
static uint64_t vcpu_progress(struct vm *vm, int i)
{
	struct vm_vcpu *v = &vm->vcpu[i];

	return __atomic_load_n(v->compute ? &v->work : &v->stores, __ATOMIC_RELAXED);
}

/*
 * Apply the session's throttle: each vCPU's own when the session can tell
 * them apart (KVM's dirty ring), else the same for all; acknowledge it.
 */
static void apply_throttle(int fd, struct vm *vm, struct migration *m)
{
	struct vmpf_vcpu_stat vs[VM_MAX_VCPUS];
	struct vmpf_vcpu_throttle vt = {
		.vcpus = (uintptr_t)vs, .vcpus_cap = VM_MAX_VCPUS,
		.in_flags = VMPF_STATUS_ACK_THROTTLE,
	};
	uint64_t pct;
	int i;

	if (__vmpf_ioctl(fd, VMPF_IOC_VCPU_THROTTLE, &vt)) {
		/* A module before 0.2: the status's throttle, for every vCPU. */
		vt = (struct vmpf_vcpu_throttle){ .throttle_pct = m->st.throttle_pct };
	}
	m->per_vcpu = !!vt.per_vcpu;
	for (i = 0; i < vm->cfg.vcpus; i++) {
		pct = vt.per_vcpu && (uint64_t)i < vt.nr_vcpus ? vs[i].throttle_pct :
								  vt.throttle_pct;
		vm_set_throttle(vm, i, (unsigned int)pct);
		if (pct > m->vcpu_throttle_max[i])
			m->vcpu_throttle_max[i] = pct;
		if (pct > m->throttle_max)
			m->throttle_max = pct;
	}
}

/*
 * After the session: where a VMM would resume harvesting its rings
 * (ring_next), and whether that finds every entry left (ring_stale 0).
 */
static void ring_check(int fd, struct vm *vm, struct migration *m)
{
	struct vmpf_vcpu_stat vs[VM_MAX_VCPUS];
	struct vmpf_vcpu_throttle vt = { .vcpus = (uintptr_t)vs, .vcpus_cap = VM_MAX_VCPUS };
	long stale;
	int i;

	m->ring_stale = -1;
	if (__vmpf_ioctl(fd, VMPF_IOC_VCPU_THROTTLE, &vt) || !vt.per_vcpu)
		return;
	m->ring_stale = 0;
	for (i = 0; i < vm->cfg.vcpus && (uint64_t)i < vt.nr_vcpus; i++) {
		stale = vm_ring_stale(vm, i, vs[i].ring_next);
		m->ring_stale = stale < 0 ? stale : m->ring_stale + stale;
		if (stale < 0)
			return;
	}
	m->ring_left = vm_ring_dirty(vm) - m->ring_stale;
	fprintf(stderr, "vmpf-vm: rings after the session: %ld entries at ring_next, %ld elsewhere\n",
		m->ring_left, m->ring_stale);
}

static int session_status(int fd, struct migration *m, int ack)
{
	memset(&m->st, 0, sizeof(m->st));
	m->st.in_flags = ack ? VMPF_STATUS_ACK_THROTTLE : 0;
	m->st.rounds = (uintptr_t)m->rounds;
	m->st.rounds_cap = 64;
	return __vmpf_ioctl(fd, VMPF_IOC_STATUS, &m->st);
}

/* --misbehave: the forbidden thing, once; what it was goes to stdout. */
static int misbehave(struct vm *vm, struct opts *o)
{
	int ret = vm_misbehave(vm, o->misbehave);

	if (ret)
		fprintf(stderr, "vmpf-vm: --misbehave %s failed: %s\n", o->misbehave,
			strerror(-ret));
	else
		printf("vmpf-vm: misbehaved: %s\n", o->misbehave);
	fflush(stdout);
	return ret;
}

/*
 * Migrate into @o->migrate_to.  Returns 0 once committed (the vCPUs stay
 * paused: the VM now lives in the page file), 1 if the migration failed or
 * was aborted (the VM runs on), -1 if it could not start.
 */
static int migrate(struct vm *vm, struct opts *o, struct migration *m)
{
	struct vmpf_region regs[2];
	struct vmpf_source_attach at = { 0 };
	struct vmpf_api api;
	char msg[256];
	int fd, target, i, ret = -1;
	uint64_t marker, stores0 = 0;
	int passes_told = 0;
	uint64_t progress0[VM_MAX_VCPUS];
	double t0 = 0;

	fd = vmpf_open(vmpf_device_path());
	if (fd < 0) {
		fprintf(stderr, "vmpf-vm: %s\n",
			vmpf_open_error(-fd, vmpf_module_loaded(), vmpf_device_path(), msg,
					sizeof(msg)));
		return -1;
	}
	ret = vmpf_handshake(fd, VMPF_FEATURE_SOURCE, &api);
	if (ret) {
		fprintf(stderr, "vmpf-vm: %s\n",
			vmpf_ioctl_error(VMPF_IOC_API, -ret, msg, sizeof(msg)));
		close(fd);
		return -1;
	}
	target = open(o->migrate_to, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (target < 0) {
		fprintf(stderr, "vmpf-vm: cannot open the page file %s with O_DIRECT: %s\n",
			o->migrate_to, strerror(errno));
		close(fd);
		return -1;
	}
	for (i = 0; i < vm->nslots; i++)
		regs[i] = (struct vmpf_region){
			.slot = vm->slots[i].id, .gpa = vm->slots[i].gpa,
			.size = vm->slots[i].size, .uaddr = (uintptr_t)vm->slots[i].hva,
		};
	if (o->misbehave[0] && !o->misbehave_at && misbehave(vm, o)) {
		ret = -1;
		goto out_close;
	}
	at.vm_fd = vm->fd;
	at.target_fd = target;
	at.regions = (uintptr_t)regs;
	at.nr_regions = vm->nslots;
	at.max_rounds = o->max_rounds;
	at.target_pages = o->target_pages;
	at.downtime_ns = o->downtime_ms * 1000000;
	ret = __vmpf_ioctl(fd, VMPF_IOC_SOURCE_ATTACH, &at);
	close(target);
	if (ret == -ENOSPC) {
		fprintf(stderr, "vmpf-vm: the page file %s is too small: it needs %llu bytes\n",
			o->migrate_to, (unsigned long long)at.required_bytes);
		goto out_close;
	}
	if (ret) {
		fprintf(stderr, "vmpf-vm: %s\n",
			vmpf_ioctl_error(VMPF_IOC_SOURCE_ATTACH, -ret, msg, sizeof(msg)));
		goto out_close;
	}
	if (o->history || o->max_throttle) {
		struct vmpf_throttle t = { .max_pct = o->max_throttle };
		struct vmpf_pf_commit c;

		if (o->history) {
			/* Read before START: the target may be this very file. */
			if (pf_history(o->history, &c, msg, sizeof(msg))) {
				fprintf(stderr, "vmpf-vm: %s\n", msg);
				goto out_close;
			}
			t.pct = le32toh(c.throttle_pct);
			if (t.max_pct && t.pct > t.max_pct)
				t.pct = t.max_pct;
		}
		ret = __vmpf_ioctl(fd, VMPF_IOC_SET_THROTTLE, &t);
		if (ret) {
			fprintf(stderr, "vmpf-vm: %s\n",
				vmpf_ioctl_error(VMPF_IOC_SET_THROTTLE, -ret, msg, sizeof(msg)));
			goto out_close;
		}
		m->throttle_start = t.pct;
	}
	printf("vmpf-vm: attached, pid %d, session fd %d, %llu pages\n", getpid(), fd,
	       (unsigned long long)at.total_pages);
	fflush(stdout);
	t0 = mono_seconds();
	stores0 = vm_total_stores(vm);
	for (i = 0; i < vm->cfg.vcpus; i++)
		progress0[i] = vcpu_progress(vm, i);
	m->pf_taken = vm_vcpu_stat(vm, "pf_taken");
	m->pf_fast = vm_vcpu_stat(vm, "pf_fast");
	if (!o->no_start) {
		ret = __vmpf_ioctl(fd, VMPF_IOC_START, NULL);
		if (ret) {
			fprintf(stderr, "vmpf-vm: %s\n",
				vmpf_ioctl_error(VMPF_IOC_START, -ret, msg, sizeof(msg)));
			goto out_close;
		}
	}

	for (;;) {
		/* EPOLLPRI: a new throttle to apply (and acknowledge). */
		struct pollfd pfd = { .fd = fd, .events = POLLIN | (o->throttle ? POLLPRI : 0) };

		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			break;
		if (session_status(fd, m, 0))
			break;
		if (o->throttle)
			apply_throttle(fd, vm, m);
		if (o->misbehave[0] && o->misbehave_at && mono_seconds() - t0 >= o->misbehave_at) {
			misbehave(vm, o);
			o->misbehave[0] = 0;
		}
		m->ready_seen |= !!(m->st.flags & VMPF_STATUS_READY);
		m->not_converging_seen |= !!(m->st.flags & VMPF_STATUS_NOT_CONVERGING);
		if (vm->quit) {
			fprintf(stderr, "vmpf-vm: the guest stopped: %s\n", vm->error);
			break;
		}
		if (!passes_told && vm_passes_done(vm)) {
			printf("vmpf-vm: the guest made its passes\n");
			fflush(stdout);
			passes_told = 1;
		}
		if (pfd.revents & POLLERR) {
			fprintf(stderr, "vmpf-vm: migration %s: %s; the VM keeps running\n",
				phase_name(m->st.phase), m->st.message);
			ret = 1;
			goto out_close;
		}
		if (!(pfd.revents & POLLIN))
			continue;
		if (o->wait_request && !(m->st.flags & VMPF_STATUS_FINISH_REQUESTED)) {
			usleep(50000);
			continue;
		}
		break;
	}

	/* Switch-over: pause, write like device emulation would, finish. */
	vm_pause(vm);
	vm_set_throttle(vm, -1, 0);
	m->precopy_rate = (vm_total_stores(vm) - stores0) / (mono_seconds() - t0);
	for (i = 0; i < vm->cfg.vcpus; i++)
		m->vcpu_precopy_rate[i] = (vcpu_progress(vm, i) - progress0[i]) /
					  (mono_seconds() - t0);
	/* KVM's MMU faults during pre-copy: mostly write-protection faults. */
	m->pf_taken = vm_vcpu_stat(vm, "pf_taken") - m->pf_taken;
	m->pf_fast = vm_vcpu_stat(vm, "pf_fast") - m->pf_fast;
	marker = VM_PATTERN(0xd0d0, vm_total_stores(vm));
	memcpy(vm_gpa_to_hva(vm, (VM_RESERVED_PAGES - 1) * VM_PAGE_SIZE), &marker,
	       sizeof(marker));
	if (!o->no_mark_dirty) {
		struct vmpf_mark_dirty md = {
			.gpa = (VM_RESERVED_PAGES - 1) * VM_PAGE_SIZE, .len = sizeof(marker),
		};

		ret = __vmpf_ioctl(fd, VMPF_IOC_MARK_DIRTY, &md);
		if (ret)
			fprintf(stderr, "vmpf-vm: %s\n",
				vmpf_ioctl_error(VMPF_IOC_MARK_DIRTY, -ret, msg, sizeof(msg)));
	}
	if (o->checksums && vm_write_checksums(vm, o->checksums)) {
		fprintf(stderr, "vmpf-vm: %s\n", vm->error);
		ret = -1;
		goto out_resume;
	}
	{
		void *blob;
		size_t len;

		if (vm_save_state(vm, &blob, &len)) {
			fprintf(stderr, "vmpf-vm: %s\n", vm->error);
			ret = -1;
			goto out_resume;
		}
		m->fin.state = (uintptr_t)blob;
		m->fin.state_len = len;
		if (o->finish_running) {
			/* The careless VMM: its guest runs on through FINISH. */
			uint64_t s0 = vm_total_stores(vm);
			int n;

			vm_resume(vm);
			for (n = 0; n < 2000 && vm_total_stores(vm) == s0; n++)
				usleep(1000);
			printf("vmpf-vm: misbehaved: finish-running\n");
		}
		ret = __vmpf_ioctl(fd, VMPF_IOC_FINISH, &m->fin);
		free(blob);
	}
	session_status(fd, m, 0);
	if (!ret) {
		m->committed = 1;
		goto out_close;
	}
	fprintf(stderr, "vmpf-vm: switch-over failed: %s%s%s; the VM resumes\n",
		vmpf_ioctl_error(VMPF_IOC_FINISH, -ret, msg, sizeof(msg)),
		m->st.message[0] ? ": " : "", m->st.message);
	ret = 1;
	if (o->finish_running)
		goto out_close;		/* running already */
out_resume:
	vm_resume(vm);
out_close:
	if (vm->cfg.dirty_ring)
		ring_check(fd, vm, m);
	/* Whatever happened, the session asks nothing of the vCPUs any more. */
	vm_set_throttle(vm, -1, 0);
	close(fd);
	return ret;
}

/* After a failed migration: KVM must no longer log the VM's memslots. */
static int logging_off(struct vm *vm)
{
	static unsigned long bitmap[1 << 14];
	long before;
	int i;

	/*
	 * With the dirty ring there is no log to ask about: logging is off
	 * if the running guest's writes add nothing to the rings.
	 */
	if (vm->cfg.dirty_ring) {
		before = vm_ring_dirty(vm);
		usleep(100000);
		return before >= 0 && vm_ring_dirty(vm) == before;
	}
	for (i = 0; i < vm->nslots; i++) {
		struct kvm_dirty_log log = { .slot = vm->slots[i].id, .dirty_bitmap = bitmap };

		if (vm->slots[i].size / VM_PAGE_SIZE > sizeof(bitmap) * 8)
			continue;
		if (!ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log) || errno != ENOENT)
			return 0;
	}
	return 1;
}

static void print_report(struct vm *vm, struct opts *o, struct migration *m,
			 long mismatches, long pattern_errors)
{
	const struct vm_params *gp = (const struct vm_params *)vm_gpa_to_hva(vm, VM_PARAMS_GPA);
	uint64_t ws = 0, r, n;

	for (r = 0; r < gp->nranges && r < VM_MAX_RANGES; r++)
		ws += gp->ranges[r].count;
	if (o->json) {
		printf("{\"ram_bytes\":%" PRIu64 ",\"vcpus\":%d,\"mode\":\"%s\","
		       "\"working_set_pages\":%" PRIu64 ",\"stores\":%" PRIu64 ","
		       "\"restored\":%s,\"verified_pages_mismatched\":%ld,"
		       "\"pattern_errors\":%ld,\"stores_per_s\":%.0f",
		       o->cfg.ram_bytes, o->cfg.vcpus,
		       gp->mode == VM_MODE_IDLE ? "idle" : "dirty", ws, vm_total_stores(vm),
		       o->load_state || o->load_pagefile || o->restore || o->take_over ?
	       "true" : "false",
		       mismatches, pattern_errors, m->run_rate);
		if (o->take_over)
			printf(",\"taken_over\":true,\"handover_ns\":%" PRIu64 ",\"ram\":\"%s\"",
			       o->handover_ns, o->session ? "restore-session" : "memfd");
		if (o->restore || o->session) {
			const struct vmpf_restore_status *r = &o->rst;

			printf(",\"restore\":{\"resume_ns\":%" PRIu64 ",\"complete\":%s,"
			       "\"total\":%llu,\"resident\":%llu,"
			       "\"demand\":%llu,\"prefetched\":%llu,\"zero\":%llu,\"bad\":%llu,"
			       "\"io_errors\":%llu,\"crc_errors\":%llu,\"complete_ns\":%llu,"
			       "\"mem_bytes\":%llu,\"io_retries\":%llu,\"discarded\":%llu}",
			       o->resume_ns, r->phase == VMPF_RESTORE_COMPLETE ? "true" : "false",
			       (unsigned long long)r->total_pages, (unsigned long long)r->resident,
			       (unsigned long long)r->demand_pages, (unsigned long long)r->prefetched,
			       (unsigned long long)r->zero_pages, (unsigned long long)r->bad_pages,
			       (unsigned long long)r->io_errors, (unsigned long long)r->crc_errors,
			       (unsigned long long)r->complete_ns, (unsigned long long)r->mem_bytes,
			       (unsigned long long)r->io_retries, (unsigned long long)r->discarded);
		}
		if (o->migrate_to) {
			printf(",\"migration\":{\"phase\":\"%s\",\"committed\":%s,"
			       "\"rounds\":%" PRIu64 ",\"final_pages\":%" PRIu64 ","
			       "\"switchover_ns\":%" PRIu64 ",\"bytes_written\":%" PRIu64 ","
			       "\"zero_pages\":%" PRIu64 ",\"flags\":%" PRIu64 ","
			       "\"logging_off\":%s,\"precopy_stores_per_s\":%.0f,\"io_retries\":%" PRIu64 ","
			       "\"est_downtime_ns\":%" PRIu64 ",\"throttle_pct\":%" PRIu64 ","
			       "\"throttle_max\":%" PRIu64 ",\"throttle_start\":%" PRIu64 ","
			       "\"throttle_peak\":%" PRIu64 ",\"ready_seen\":%s,\"not_converging_seen\":%s,"
			       "\"kvm_pf_taken\":%" PRIu64 ",\"kvm_pf_fast\":%" PRIu64 ","
			       "\"round_stats\":[",
			       phase_name(m->st.phase), m->committed ? "true" : "false",
			       (uint64_t)m->st.nr_rounds, (uint64_t)m->fin.final_pages,
			       (uint64_t)m->fin.switchover_ns, (uint64_t)m->st.bytes_written,
			       (uint64_t)m->st.zero_pages, (uint64_t)m->st.flags,
			       logging_off(vm) ? "true" : "false", m->precopy_rate,
			       (uint64_t)m->st.io_retries, (uint64_t)m->st.est_downtime_ns,
			       (uint64_t)m->st.throttle_pct, m->throttle_max, m->throttle_start,
			       (uint64_t)m->st.throttle_peak, m->ready_seen ? "true" : "false",
			       m->not_converging_seen ? "true" : "false", m->pf_taken, m->pf_fast);
			n = m->st.nr_rounds < 64 ? m->st.nr_rounds : 64;
			for (r = 0; r < n; r++)
				printf("%s{\"round\":%llu,\"dirty\":%llu,\"written\":%llu,\"zero\":%llu,"
				       "\"ns\":%llu}",
				       r ? "," : "", (unsigned long long)m->rounds[r].round,
				       (unsigned long long)m->rounds[r].dirty_pages,
				       (unsigned long long)m->rounds[r].written_pages,
				       (unsigned long long)m->rounds[r].zero_pages,
				       (unsigned long long)m->rounds[r].duration_ns);
			printf("],\"per_vcpu_throttle\":%s,\"ring_stale\":%ld,\"ring_left\":%ld,"
			       "\"attempts\":%" PRIu64 ",\"vcpu\":[", m->per_vcpu ? "true" : "false",
			       m->ring_stale, m->ring_left, m->attempts);
			for (r = 0; r < (uint64_t)vm->cfg.vcpus; r++)
				printf("%s{\"compute\":%s,\"throttle_max\":%" PRIu64 ","
				       "\"progress_per_s\":%.0f,\"precopy_progress_per_s\":%.0f,"
				       "\"ring_full\":%" PRIu64 "}", r ? "," : "",
				       vm->vcpu[r].compute ? "true" : "false", m->vcpu_throttle_max[r],
				       m->vcpu_rate[r], m->vcpu_precopy_rate[r], vm->vcpu[r].ring_full);
			printf("]}");
		}
		printf("}\n");
		return;
	}
	printf("guest RAM %" PRIu64 " MiB in 2 slots, %d vCPUs, %s%s: %" PRIu64 " stores\n",
	       o->cfg.ram_bytes >> 20, o->cfg.vcpus,
	       o->load_state || o->load_pagefile || o->restore ? "restored, " :
	       o->take_over ? "taken over, " : "",
	       gp->mode == VM_MODE_IDLE ? "idle" : "dirtying", vm_total_stores(vm));
	if (o->restore)
		printf("restored lazily from %s: %llu of %llu pages resident (%llu on demand, "
		       "%llu prefetched, %llu zero), %s\n", o->restore,
		       (unsigned long long)o->rst.resident, (unsigned long long)o->rst.total_pages,
		       (unsigned long long)o->rst.demand_pages, (unsigned long long)o->rst.prefetched,
		       (unsigned long long)o->rst.zero_pages,
		       o->rst.phase == VMPF_RESTORE_COMPLETE ? "complete" : "not complete");
	if (o->take_over)
		printf("taken over from %s (RAM: %s): pause to resume %.3f ms\n", o->take_over,
		       o->session ? "a vmpagefile restore session" : "a memfd",
		       o->handover_ns / 1e6);
	if (o->migrate_to && m->committed)
		printf("migrated into %s: %llu rounds, %llu pages in the final round, "
		       "switch-over %.3f ms, %llu bytes written\n", o->migrate_to,
		       (unsigned long long)m->fin.rounds,
		       (unsigned long long)m->fin.final_pages, m->fin.switchover_ns / 1e6,
		       (unsigned long long)m->fin.bytes_written);
}

/* Run --seconds; the store rate over the second half (the first has first touches). */
static void measure_rates(struct vm *vm, const struct opts *o, struct migration *m)
{
	uint64_t s0, p0[VM_MAX_VCPUS];
	double t0;
	int i;

	sleep_seconds(o->seconds / 2);
	s0 = vm_total_stores(vm);
	t0 = mono_seconds();
	for (i = 0; i < vm->cfg.vcpus; i++)
		p0[i] = vcpu_progress(vm, i);
	sleep_seconds(o->seconds / 2);
	m->run_rate = (vm_total_stores(vm) - s0) / (mono_seconds() - t0);
	for (i = 0; i < vm->cfg.vcpus; i++)
		m->vcpu_rate[i] = (vcpu_progress(vm, i) - p0[i]) / (mono_seconds() - t0);
}

/* Guest RAM in a memfd, the two slots one after the other in it. */
static int ram_memfd(struct opts *o)
{
	uint64_t half = o->cfg.ram_bytes / 2 / VM_PAGE_SIZE * VM_PAGE_SIZE;
	int fd = memfd_create("vmpf-vm-ram", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, o->cfg.ram_bytes)) {
		fprintf(stderr, "vmpf-vm: cannot make a %" PRIu64 "-byte memfd for guest RAM: %s\n",
			o->cfg.ram_bytes, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	o->cfg.mem_fd = fd;
	o->cfg.mem_off[0] = 0;
	o->cfg.mem_off[1] = half;
	return fd;
}

/*
 * Take the guest of the vmpf-vm listening on --take-over over: its RAM
 * object and device state.  The socket (answer with handover_reply()
 * once resumed), or -1; *session: the RAM is a vmpagefile restore
 * session's, whose descriptor is then *mem_fd.
 */
static int take_over(struct vm *vm, struct opts *o, void **state, size_t *state_len,
		     int *mem_fd, int *session, uint64_t *pause_ns)
{
	struct handover_msg msg;
	char err[200];
	int sock, i;

	sock = handover_take(o->take_over, &msg, state, mem_fd, err, sizeof(err));
	if (sock < 0) {
		fprintf(stderr, "vmpf-vm: %s\n", err);
		return -1;
	}
	*state_len = msg.state_len;
	*session = msg.session;
	*pause_ns = msg.pause_ns;
	if (vm_state_peek(*state, *state_len, &o->cfg.vcpus, &o->cfg.ram_bytes) ||
	    o->cfg.ram_bytes != msg.ram_bytes) {
		fprintf(stderr, "vmpf-vm: %s: its device state is not vmpf-vm's\n", o->take_over);
		goto err;
	}
	o->cfg.mem_fd = *mem_fd;
	for (i = 0; i < 2; i++)
		o->cfg.mem_off[i] = msg.mem_off[i];
	if (vm_create(vm, &o->cfg) || vm_load_state(vm, *state, *state_len)) {
		fprintf(stderr, "vmpf-vm: cannot take the VM over: %s\n", vm->error);
		goto err;
	}
	return sock;
err:
	handover_reply(sock, 'F');
	close(sock);
	return -1;
}

int main(int argc, char **argv)
{
	char bad[160] = "", pattern_bad[160] = "";
	long mismatches = -1, pattern_errors;
	struct migration m = { 0 };
	void *state = NULL;
	size_t state_len = 0;
	struct opts o;
	struct vm vm;
	int ret, migrated = -1, rfd = -1, ram_fd = -1, ho_sock = -1, ho_lfd = -1;
	int session = 0;
	uint64_t pause_ns = 0;
	char ho_path[64] = "";

	ret = parse(argc, argv, &o);
	if (ret)
		return ret;
	memset(&vm, 0, sizeof(vm));
	vm.fd = vm.kvm_fd = -1;

	if (o.load_state) {
		state = read_file(o.load_state, &state_len);
		if (!state) {
			fprintf(stderr, "vmpf-vm: cannot read %s: %s\n", o.load_state,
				strerror(errno ? errno : EIO));
			return EXIT_FAIL;
		}
		if (vm_state_peek(state, state_len, &o.cfg.vcpus, &o.cfg.ram_bytes)) {
			fprintf(stderr, "vmpf-vm: %s is not a vmpf-vm device state\n",
				o.load_state);
			free(state);
			return EXIT_FAIL;
		}
	}
	o.cfg.batch = 64;
	if (o.cfg.rate && o.cfg.rate / o.cfg.vcpus < 6400)
		o.cfg.batch = o.cfg.rate / o.cfg.vcpus / 100 + 1;	/* ~10 ms per exit */

	if (o.take_over) {
		ho_sock = take_over(&vm, &o, &state, &state_len, &ram_fd, &session, &pause_ns);
		if (ho_sock < 0) {
			ret = EXIT_FAIL;
			goto out;
		}
		if (session) {
			rfd = ram_fd;	/* a restore session's: its status is ours to read */
			o.session = 1;
		}
	} else if (o.restore) {
		rfd = restore_open(&vm, &o, &state, &state_len);
		if (rfd < 0) {
			ret = EXIT_FAIL;
			goto out;
		}
	} else if (o.memfd && ram_memfd(&o) < 0) {
		ret = EXIT_FAIL;
		goto out;
	} else if (o.load_pagefile) {
		if (load_pagefile(&vm, &o, &state, &state_len)) {
			ret = EXIT_FAIL;
			goto out;
		}
	} else if (vm_create(&vm, &o.cfg)) {
		ret = fail(&vm, "cannot create the VM");
		goto out;
	}
	if (o.memfd)
		ram_fd = o.cfg.mem_fd;
	if (o.load_state && (vm_load_ram(&vm, o.load_ram) ||
			     vm_load_state(&vm, state, state_len))) {
		ret = fail(&vm, "cannot restore");
		goto out;
	}
	if ((o.load_pagefile || o.restore) && vm_load_state(&vm, state, state_len)) {
		ret = fail(&vm, "cannot restore");
		goto out;
	}
	if (o.verify) {
		mismatches = vm_verify_checksums(&vm, o.verify, bad, sizeof(bad));
		if (mismatches < 0) {
			ret = fail(&vm, "cannot verify");
			goto out;
		}
		if (mismatches) {
			fprintf(stderr, "vmpf-vm: %ld pages differ from %s; first: %s\n",
				mismatches, o.verify, bad);
			ret = EXIT_FAIL;
			goto out;
		}
	}
	if (!o.load_state && !o.load_pagefile && !o.restore && !o.take_over &&
	    vm_boot_setup(&vm)) {
		ret = fail(&vm, "cannot set up the guest");
		goto out;
	}

	if (vm_start_threads(&vm)) {
		ret = fail(&vm, "cannot start");
		goto out;
	}
	vm_resume(&vm);
	if (o.restore)
		o.resume_ns = (mono_seconds() - o.open_t) * 1e9;
	if (ho_sock >= 0) {
		/* Resumed: the old VMM may go.  Pause to resume, on one clock. */
		o.handover_ns = mono_seconds() * 1e9 - pause_ns;
		handover_reply(ho_sock, 'R');
		close(ho_sock);
		ho_sock = -1;
	}
	if (o.handover) {
		char err[200];

		handover_path(getpid(), ho_path, sizeof(ho_path));
		ho_lfd = handover_listen(ho_path);
		if (ho_lfd < 0)
			fprintf(stderr, "vmpf-vm: cannot listen on %s: %s\n", ho_path,
				strerror(-ho_lfd));
		printf("vmpf-vm: pid %d hands its guest over through %s\n", getpid(), ho_path);
		fflush(stdout);
		/* RAM's descriptor: the restore session's, or the memfd. */
		ret = ho_lfd < 0 ? 0 : handover_serve(ho_lfd, &vm, rfd >= 0 ? rfd : ram_fd,
						      rfd >= 0, o.seconds, o.checksums,
						      err, sizeof(err));
		handover_close(ho_lfd, ho_path);
		if (ret == 1) {
			/* The guest is the new VMM's: touch nothing, report, go. */
			printf(o.json ? "{\"handed_over\":true}\n" :
			       "vmpf-vm: guest handed over; exiting\n");
			ret = 0;
			goto out;
		}
		if (ret < 0)
			fprintf(stderr, "vmpf-vm: handover failed, the guest runs on here: %s\n",
				err);
	} else {
		measure_rates(&vm, &o, &m);
	}
	if (rfd >= 0 && o.wait_complete && restore_wait(rfd)) {
		vm_pause(&vm);
		ret = EXIT_FAIL;
		goto out;
	}
	if (o.migrate_to) {
		struct migration m0 = m;	/* the rates measured alone */
		uint64_t a;

		for (a = 1; a <= o.attempts; a++) {
			m = m0;
			m.attempts = a;
			migrated = migrate(&vm, &o, &m);
			/* A failed migration leaves the VM running: show that it does. */
			if (migrated)
				sleep_seconds(0.2);
			if (migrated != 1 || a == o.attempts)
				break;
			fprintf(stderr, "vmpf-vm: migration attempt %llu failed; trying again\n",
				(unsigned long long)a);
		}
	}
	vm_pause(&vm);
	if (vm.quit) {
		ret = fail(&vm, "the guest stopped");
		goto out;
	}

	if (rfd >= 0 && __vmpf_ioctl(rfd, VMPF_IOC_RESTORE_STATUS, &o.rst))
		fprintf(stderr, "vmpf-vm: cannot read the restore status\n");
	pattern_errors = vm_check_pattern(&vm, pattern_bad, sizeof(pattern_bad));
	if (o.checksums && !o.migrate_to && vm_write_checksums(&vm, o.checksums)) {
		ret = fail(&vm, "cannot write checksums");
		goto out;
	}
	if (o.save_ram && vm_save_ram(&vm, o.save_ram)) {
		ret = fail(&vm, "cannot save RAM");
		goto out;
	}
	if (o.save_state) {
		void *blob;
		size_t len;

		if (vm_save_state(&vm, &blob, &len)) {
			ret = fail(&vm, "cannot save the device state");
			goto out;
		}
		ret = write_file(o.save_state, blob, len);
		free(blob);
		if (ret) {
			fprintf(stderr, "vmpf-vm: cannot write %s: %s\n", o.save_state,
				strerror(-ret));
			ret = EXIT_FAIL;
			goto out;
		}
	}

	print_report(&vm, &o, &m, mismatches, pattern_errors);
	ret = 0;
	if (pattern_errors) {
		fprintf(stderr, "vmpf-vm: guest memory breaks the pattern in %ld words; first: %s\n",
			pattern_errors, pattern_bad);
		ret = EXIT_FAIL;
	}
	if (o.migrate_to && migrated)
		ret = EXIT_FAIL;
out:
	if (ho_sock >= 0) {
		/* Taken over but not resumed: the old VMM resumes its guest. */
		handover_reply(ho_sock, 'F');
		close(ho_sock);
	}
	vm_destroy(&vm);
	if (rfd >= 0)
		close(rfd);
	else if (ram_fd >= 0)
		close(ram_fd);
	free(state);
	return ret;
}
