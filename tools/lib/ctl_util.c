// SPDX-License-Identifier: GPL-2.0
/*
 * vmpf-ctl command line parsing and output formatting, see ctl_util.h.
 */
#include <stdio.h>
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
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
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
		fprintf(f, "\nopen files %llu, module memory %llu bytes\n",
			(unsigned long long)v->info.open_files,
			(unsigned long long)v->info.mem_bytes);
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
		fprintf(f, "],\"open_files\":%llu,\"mem_bytes\":%llu}",
			(unsigned long long)v->info.open_files,
			(unsigned long long)v->info.mem_bytes);
	}
	fputs("}\n", f);
}
