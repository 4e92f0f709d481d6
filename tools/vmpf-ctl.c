// SPDX-License-Identifier: GPL-2.0
/*
 * vmpf-ctl - drive and watch vmpagefile from the command line.
 *
 * Every failure ends in one sentence on stderr and a non-zero exit status:
 * 1 when a command ran and failed, 2 for a wrong command line.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl_util.h"
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
	default:
		break;
	}
	ctl_print_help(stderr, CTL_CMD_NONE);
	return CTL_EXIT_USAGE;
}
