// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side unit tests of vmpf-ctl's command line parsing, output
 * formatting and error sentences (no device needed).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "ctl_util.h"
#include "pagefile.h"
#include "vmpf.h"

static int parse(struct ctl_opts *o, char *err, const char *a0, ...)
{
	char *argv[16] = { "vmpf-ctl" };
	int argc = 1;
	va_list ap;
	const char *a;

	va_start(ap, a0);
	for (a = a0; a && argc < 15; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	err[0] = 0;
	return ctl_parse(argc, argv, o, err, 256);
}

TEST(parse_no_command)
{
	struct ctl_opts o;
	char err[256];

	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, NULL));
	EXPECT_NE(NULL, strstr(err, "no command"));
}

TEST(parse_unknown_command)
{
	struct ctl_opts o;
	char err[256];

	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "frobnicate", NULL));
	EXPECT_NE(NULL, strstr(err, "unknown command 'frobnicate'"));
}

TEST(parse_unknown_option)
{
	struct ctl_opts o;
	char err[256];

	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "version", "--frob", NULL));
	EXPECT_NE(NULL, strstr(err, "unknown option '--frob'"));
}

TEST(parse_device_needs_argument)
{
	struct ctl_opts o;
	char err[256];

	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "version", "--device", NULL));
	EXPECT_NE(NULL, strstr(err, "needs a device path"));
	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "version", "--device=", NULL));
}

TEST(parse_extra_argument)
{
	struct ctl_opts o;
	char err[256];

	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "version", "extra", NULL));
	EXPECT_NE(NULL, strstr(err, "unexpected argument 'extra'"));
}

TEST(parse_version_options_anywhere)
{
	struct ctl_opts o;
	char err[256];

	ASSERT_EQ(0, parse(&o, err, "--json", "version", "-d", "/dev/x", NULL));
	EXPECT_EQ(CTL_CMD_VERSION, o.cmd);
	EXPECT_TRUE(o.json);
	EXPECT_FALSE(o.help);
	EXPECT_STREQ("/dev/x", o.device);
	ASSERT_EQ(0, parse(&o, err, "version", "--device=/dev/y", "-j", NULL));
	EXPECT_STREQ("/dev/y", o.device);
	EXPECT_TRUE(o.json);
}

TEST(parse_help_forms)
{
	struct ctl_opts o;
	char err[256];

	ASSERT_EQ(0, parse(&o, err, "--help", NULL));
	EXPECT_TRUE(o.help);
	EXPECT_EQ(CTL_CMD_NONE, o.topic);
	ASSERT_EQ(0, parse(&o, err, "help", NULL));
	EXPECT_TRUE(o.help);
	EXPECT_EQ(CTL_CMD_NONE, o.topic);
	ASSERT_EQ(0, parse(&o, err, "help", "version", NULL));
	EXPECT_EQ(CTL_CMD_VERSION, o.topic);
	ASSERT_EQ(0, parse(&o, err, "version", "-h", NULL));
	EXPECT_TRUE(o.help);
	EXPECT_EQ(CTL_CMD_VERSION, o.topic);
	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "help", "nope", NULL));
}

static char *capture_help(enum ctl_cmd topic)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ctl_print_help(f, topic);
	fclose(f);
	return buf;
}

TEST(help_lists_commands)
{
	char *h = capture_help(CTL_CMD_NONE);

	EXPECT_NE(NULL, strstr(h, "Usage: vmpf-ctl"));
	EXPECT_NE(NULL, strstr(h, "  version "));
	EXPECT_NE(NULL, strstr(h, "  help "));
	EXPECT_NE(NULL, strstr(h, "--json"));
	free(h);
	h = capture_help(CTL_CMD_VERSION);
	EXPECT_NE(NULL, strstr(h, "Usage: vmpf-ctl version"));
	free(h);
}

static char *capture_version(const struct ctl_version *v, int json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ctl_print_version(f, v, json);
	fclose(f);
	return buf;
}

static struct ctl_version sample_version(void)
{
	struct ctl_version v = { .tool_version = "1.2.3", .have_module = 1 };

	v.api.version = VMPF_VERSION_CODE(4, 5, 6);
	v.api.ioctls = 1ULL << _IOC_NR(VMPF_IOC_DEV_INFO) | 1ULL << 40;
	v.info.open_files = 3;
	v.info.mem_bytes = 4096;
	return v;
}

TEST(version_text)
{
	struct ctl_version v = sample_version();
	char *out = capture_version(&v, 0);

	EXPECT_STREQ("vmpf-ctl 1.2.3 (API 1)\n"
		     "module   4.5.6 (API 1)\n"
		     "features none\n"
		     "ioctls   DEV_INFO bit40\n"
		     "open files 3, sessions 0, module memory 4096 bytes, huge pages filled 0, page-table blocks read again 0\n", out);
	free(out);
}

TEST(version_json)
{
	struct ctl_version v = sample_version();
	char *out = capture_version(&v, 1);

	EXPECT_STREQ("{\"tool\":{\"version\":\"1.2.3\",\"api\":1},"
		     "\"module\":{\"version\":\"4.5.6\",\"api\":1,\"features_mask\":0,"
		     "\"features\":[],\"ioctls_mask\":1099511627778,"
		     "\"ioctls\":[\"DEV_INFO\",\"bit40\"],\"huge_fills\":0,\"table_reads\":0,\"open_files\":3,"
		     "\"sessions\":0,\"mem_bytes\":4096}}\n", out);
	free(out);
}

TEST(version_without_module)
{
	struct ctl_version v = { .tool_version = "1.2.3" };
	char *out = capture_version(&v, 0);

	EXPECT_STREQ("vmpf-ctl 1.2.3 (API 1)\n", out);
	free(out);
	out = capture_version(&v, 1);
	EXPECT_STREQ("{\"tool\":{\"version\":\"1.2.3\",\"api\":1}}\n", out);
	free(out);
}

TEST(json_string_escapes)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ctl_json_string(f, "a\"b\\c\nd\te\x01");
	fclose(f);
	EXPECT_STREQ("\"a\\\"b\\\\c\\nd\\te\\u0001\"", buf);
	free(buf);
}

TEST(open_error_sentences)
{
	char buf[256];

	EXPECT_NE(NULL, strstr(vmpf_open_error(ENOENT, 0, "/dev/vmpagefile", buf, sizeof(buf)),
			       "module is not loaded"));
	EXPECT_NE(NULL, strstr(vmpf_open_error(ENOENT, 1, "/dev/vmpagefile", buf, sizeof(buf)),
			       "devtmpfs"));
	EXPECT_NE(NULL, strstr(vmpf_open_error(EACCES, 1, "/dev/vmpagefile", buf, sizeof(buf)),
			       "permission denied"));
	EXPECT_NE(NULL, strstr(vmpf_open_error(EIO, 1, "/dev/x", buf, sizeof(buf)),
			       "cannot open /dev/x"));
	/* One sentence: no newline inside. */
	EXPECT_EQ(NULL, strchr(buf, '\n'));
}

TEST(ioctl_error_sentences)
{
	char buf[256];

	EXPECT_NE(NULL, strstr(vmpf_ioctl_error(VMPF_IOC_API, ENOTTY, buf, sizeof(buf)),
			       "does not know this request"));
	EXPECT_NE(NULL, strstr(vmpf_ioctl_error(VMPF_IOC_DEV_INFO, EBADFD, buf, sizeof(buf)),
			       "handshake has not been done"));
	EXPECT_NE(NULL, strstr(vmpf_ioctl_error(VMPF_IOC_API, EEXIST, buf, sizeof(buf)),
			       "already done"));
	EXPECT_NE(NULL, strstr(vmpf_ioctl_error(VMPF_IOC_API, EINVAL, buf, sizeof(buf)),
			       "VMPF_IOC_API: the module refused the handshake"));
}

TEST(version_format)
{
	char buf[32];

	vmpf_format_version(buf, sizeof(buf), VMPF_VERSION_CODE(70000, 65535, 7));
	EXPECT_STREQ("70000.65535.7", buf);
}

TEST(parse_session_commands)
{
	struct ctl_opts o;
	char err[256];

	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "status", NULL));
	EXPECT_NE(NULL, strstr(err, "needs --pid"));
	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "finish", "--pid", "x1", NULL));
	EXPECT_NE(NULL, strstr(err, "not a valid process id"));
	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "abort", "--pid", "0", NULL));
	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "start", "--pid", "7", "--watch", NULL));
	EXPECT_NE(NULL, strstr(err, "--watch is for status only"));
	ASSERT_EQ(0, parse(&o, err, "status", "-p", "42", "--fd", "5", "-w", "--json", NULL));
	EXPECT_EQ(CTL_CMD_STATUS, o.cmd);
	EXPECT_EQ(42, o.pid);
	EXPECT_EQ(5, o.fd);
	EXPECT_TRUE(o.watch);
	ASSERT_EQ(0, parse(&o, err, "finish", "--pid", "9", NULL));
	EXPECT_EQ(-1, o.fd);
}

TEST(parse_pagefile_commands)
{
	struct ctl_opts o;
	char err[256];

	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "info", NULL));
	EXPECT_NE(NULL, strstr(err, "info needs a PAGEFILE"));
	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "verify", "a", "b", NULL));
	ASSERT_EQ(0, parse(&o, err, "verify", "/dev/sdb", "--json", NULL));
	EXPECT_EQ(CTL_CMD_VERIFY, o.cmd);
	EXPECT_STREQ("/dev/sdb", o.path);
}

TEST(status_text_and_json)
{
	struct vmpf_status st = {
		.phase = VMPF_PHASE_FAILED, .flags = VMPF_STATUS_CONVERGED, .round = 2,
		.nr_rounds = 3, .total_pages = 100, .pages_written = 90, .zero_pages = 10,
		.bytes_written = 368640, .error = 5,
	};
	struct vmpf_round_stats r = { .round = 2, .dirty_pages = 4, .written_pages = 3,
				      .zero_pages = 1, .bytes = 12288 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	strcpy((char *)st.message, "disk \"gone\"");
	f = open_memstream(&buf, &len);
	ctl_print_status(f, &st, &r, 1, 1);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "{\"phase\":\"failed\",\"flags\":[\"converged\"],\"round\":2,"));
	EXPECT_NE(NULL, strstr(buf, "\"message\":\"disk \\\"gone\\\"\""));
	EXPECT_NE(NULL, strstr(buf, "\"rounds\":[{\"round\":2,\"dirty_pages\":4,"));
	free(buf);
	f = open_memstream(&buf, &len);
	ctl_print_status(f, &st, &r, 1, 0);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "phase      failed, converged\n"));
	EXPECT_NE(NULL, strstr(buf, "error      disk \"gone\" (errno 5)\n"));
	free(buf);
}

TEST(status_round_policy)
{
	struct vmpf_status st = { .phase = VMPF_PHASE_PRECOPY, .nr_rounds = 2 };
	struct vmpf_round_stats r[2] = { { .round = 0, .dirty_pages = 10 },
					 { .round = 1, .dirty_pages = 5 } };
	struct vmpf_round_policy p[2] = {
		{ .round = 0, .est_downtime_ns = 512000000, .throttle_pct = 20 },
		{ .round = 1, .est_downtime_ns = 250000000, .throttle_pct = 40,
		  .flags = VMPF_STATUS_READY },
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	ctl_print_status_full(f, &st, r, p, 2, NULL, NULL, 0, 0);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "    est ms  throttle\n"));
	EXPECT_NE(NULL, strstr(buf, "     512.0       20 %\n"));
	EXPECT_NE(NULL, strstr(buf, "     250.0       40 %\n"));
	free(buf);
	f = open_memstream(&buf, &len);
	ctl_print_status_full(f, &st, r, p, 2, NULL, NULL, 0, 1);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "\"write_rate\":0,\"est_downtime_ns\":250000000,"
				    "\"throttle_pct\":40,\"ready\":true,\"not_converging\":false}]}"));
	free(buf);
}

TEST(status_per_vcpu_throttle)
{
	struct vmpf_status st = { .phase = VMPF_PHASE_PRECOPY, .throttle_pct = 60,
				  .throttle_peak = 80 };
	struct vmpf_vcpu_throttle vt = { .per_vcpu = 1, .throttle_pct = 60, .nr_vcpus = 2 };
	struct vmpf_vcpu_stat vs[2] = {
		{ .vcpu = 0, .throttle_pct = 60, .dirty_pages = 2000, .dirty_total = 9000 },
		{ .vcpu = 1, .throttle_pct = 0, .dirty_pages = 3, .dirty_total = 7 },
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	ctl_print_status_full(f, &st, NULL, NULL, 0, &vt, vs, 8, 0);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "throttle 60 % (peak 80 %)\n"));
	EXPECT_NE(NULL, strstr(buf, "vcpus      throttle per vCPU (dirty ring): 0: 60 % (2000 pages last round), 1: 0 % (3 pages last round)\n"));
	free(buf);
	/* Only nr_vcpus entries are read, whatever the capacity says. */
	f = open_memstream(&buf, &len);
	ctl_print_status_full(f, &st, NULL, NULL, 0, &vt, vs, 8, 1);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "\"per_vcpu_throttle\":true,\"vcpus\":[{\"vcpu\":0,\"throttle_pct\":60,"
				    "\"dirty_pages\":2000,\"dirty_total\":9000},{\"vcpu\":1,"));
	EXPECT_EQ(NULL, strstr(buf, "{\"vcpu\":2,"));
	free(buf);
	vt.per_vcpu = 0;
	f = open_memstream(&buf, &len);
	ctl_print_status_full(f, &st, NULL, NULL, 0, &vt, vs, 2, 1);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "\"per_vcpu_throttle\":false,\"rounds\":[]"));
	free(buf);
}

TEST(parse_restore)
{
	struct ctl_opts o;
	char err[256];

	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "restore", NULL));
	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "status", "--pid", "3", "--pause", NULL));
	EXPECT_NE(NULL, strstr(err, "for restore only"));
	EXPECT_EQ(CTL_EXIT_USAGE, parse(&o, err, "restore", "--pid", "3", "--rate", "-5", NULL));
	ASSERT_EQ(0, parse(&o, err, "restore", "--pid", "3", "--pause", "--rate", "100", NULL));
	EXPECT_EQ(VMPF_PREFETCH_PAUSE, o.prefetch_op);
	EXPECT_EQ(100, o.rate);
	ASSERT_EQ(0, parse(&o, err, "restore", "--pid", "3", NULL));
	EXPECT_EQ(0, o.prefetch_op);
	EXPECT_EQ(-1, o.rate);
}

TEST(restore_status_text)
{
	struct vmpf_restore_status st = {
		.phase = VMPF_RESTORE_COMPLETE, .total_pages = 10, .resident = 10,
		.demand_pages = 4, .prefetched = 6, .zero_pages = 2, .complete_ns = 1500000000,
		.fault_hist = { [0] = 1, [3] = 2, [15] = 1 },
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ctl_print_restore_status(f, &st, 0);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "restore    complete, prefetch not running\n"));
	EXPECT_NE(NULL, strstr(buf, "pages      10 of 10 restored: 4 on demand, 6 prefetched, 2 zero, "
				    "0 discarded\n"));
	EXPECT_NE(NULL, strstr(buf, "complete   after 1.500 s\n"));
	EXPECT_NE(NULL, strstr(buf, "waits by latency: <2us:1 <16us:2 >=32768us:1\n"));
	free(buf);

	/* The prefetch waiting for memory says so; JSON carries both. */
	st.phase = VMPF_RESTORE_RUNNING;
	st.prefetching = 1;
	st.prefetch_held = 1;
	st.discarded = 3;
	buf = NULL;
	f = open_memstream(&buf, &len);
	ctl_print_restore_status(f, &st, 0);
	ctl_print_restore_status(f, &st, 1);
	fclose(f);
	EXPECT_NE(NULL, strstr(buf, "prefetch waiting: the memory cgroup is near its limit\n"));
	EXPECT_NE(NULL, strstr(buf, "3 discarded\n"));
	EXPECT_NE(NULL, strstr(buf, "\"discarded\":3,\"prefetch_held\":true,"));
	free(buf);
}

TEST(crc32c_known_vector)
{
	/* The Castagnoli check value (RFC 3720, and every crc32c library). */
	EXPECT_EQ(0xe3069283, pf_crc32c("123456789", 9));
	EXPECT_EQ(0, pf_crc32c("", 0));
}

TEST_HARNESS_MAIN
