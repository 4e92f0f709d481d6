// SPDX-License-Identifier: GPL-2.0
/*
 * vmpf-vm - the reference VMM of vmpagefile and the workload of its tests.
 *
 * Runs a KVM guest whose built-in code stores a checkable pattern over a
 * working set at a chosen rate (or stays idle), pauses it, and saves or
 * restores its device state and RAM.  Today it saves and restores RAM as a
 * plain image, which tests the pause/save/load/resume path of the VMM
 * itself; the migration through /dev/vmpagefile builds on the same path.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vm.h"

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
	int ram_given, vcpus_given;
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
		} else if (!strcmp(a, "--verify")) {
			o->verify = val;
		} else {
			return usage_error("unknown option '%s'", a);
		}
		i += takes;
	}
	if ((o->load_ram || o->verify) && !o->load_state)
		return usage_error("%s needs --load-state", o->load_ram ? "--load-ram" : "--verify");
	if (o->load_state && !o->load_ram)
		return usage_error("%s needs --load-ram (RAM to go with the registers)",
				   "--load-state");
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

int main(int argc, char **argv)
{
	char bad[160] = "", pattern_bad[160] = "";
	long mismatches = -1, pattern_errors;
	const struct vm_params *gp;
	uint64_t ws, r;
	void *state = NULL;
	size_t state_len = 0;
	struct opts o;
	struct timespec ts;
	struct vm vm;
	int ret;

	ret = parse(argc, argv, &o);
	if (ret)
		return ret;

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
			return EXIT_FAIL;
		}
	}
	o.cfg.batch = 64;
	if (o.cfg.rate && o.cfg.rate / o.cfg.vcpus < 6400)
		o.cfg.batch = o.cfg.rate / o.cfg.vcpus / 100 + 1;	/* ~10 ms per exit */

	if (vm_create(&vm, &o.cfg)) {
		ret = fail(&vm, "cannot create the VM");
		goto out;
	}
	if (o.load_state) {
		if (vm_load_ram(&vm, o.load_ram) || vm_load_state(&vm, state, state_len)) {
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
	} else if (vm_boot_setup(&vm)) {
		ret = fail(&vm, "cannot set up the guest");
		goto out;
	}

	if (vm_start_threads(&vm)) {
		ret = fail(&vm, "cannot start");
		goto out;
	}
	vm_resume(&vm);
	ts.tv_sec = (time_t)o.seconds;
	ts.tv_nsec = (long)((o.seconds - ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	vm_pause(&vm);
	if (vm.quit) {
		ret = fail(&vm, "the guest stopped");
		goto out;
	}

	/* What the guest was told to do lives in its memory (vm_abi.h). */
	gp = (const struct vm_params *)vm_gpa_to_hva(&vm, VM_PARAMS_GPA);
	for (ws = 0, r = 0; r < gp->nranges && r < VM_MAX_RANGES; r++)
		ws += gp->ranges[r].count;
	pattern_errors = vm_check_pattern(&vm, pattern_bad, sizeof(pattern_bad));
	if (o.checksums && vm_write_checksums(&vm, o.checksums)) {
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

	if (o.json)
		printf("{\"ram_bytes\":%" PRIu64 ",\"vcpus\":%d,\"mode\":\"%s\","
		       "\"working_set_pages\":%" PRIu64 ",\"stores\":%" PRIu64 ","
		       "\"restored\":%s,\"verified_pages_mismatched\":%ld,"
		       "\"pattern_errors\":%ld}\n",
		       o.cfg.ram_bytes, o.cfg.vcpus,
		       gp->mode == VM_MODE_IDLE ? "idle" : "dirty",
		       ws, vm_total_stores(&vm),
		       o.load_state ? "true" : "false", mismatches, pattern_errors);
	else
		printf("guest RAM %" PRIu64 " MiB in 2 slots, %d vCPUs, %s%s: %" PRIu64
		       " stores in %.2f s%s\n",
		       o.cfg.ram_bytes >> 20, o.cfg.vcpus,
		       o.load_state ? "restored, " : "",
		       gp->mode == VM_MODE_IDLE ? "idle" : "dirtying",
		       vm_total_stores(&vm), o.seconds,
		       o.verify ? ", RAM verified before resume" : "");
	if (pattern_errors) {
		fprintf(stderr, "vmpf-vm: guest memory breaks the pattern in %ld words; first: %s\n",
			pattern_errors, pattern_bad);
		ret = EXIT_FAIL;
	}
out:
	vm_destroy(&vm);
	free(state);
	return ret;
}
