// SPDX-License-Identifier: GPL-2.0
/*
 * Disk mirroring for a QEMU migration through a share, with QEMU's own
 * block layer (no home-made copier): drive-mirror, sync=full, one job
 * per writable disk, the target created by QEMU in the image's format.
 *
 * A mirror copies the whole image in the background, then is "ready":
 * every new guest write goes to both images.  On the source, with the
 * guest paused for the switch-over, block-job-cancel of a ready mirror
 * ends it with the target an exact copy of that moment, and QEMU stays on
 * its own images: a migration that fails after that still leaves the VM
 * running, untouched, on its own disks.  On the destination
 * block-job-complete instead moves QEMU onto the target (the pivot).
 *
 * Jobs are started with auto-dismiss off, so that a job that failed stays
 * visible with its error (query-block-jobs) until we dismiss it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_disks.h"

#define DISK_END_MS	120000	/* a ready mirror's last writes, at most */

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Past the JSON value at @p (object, array, string or scalar). */
static const char *json_skip(const char *p)
{
	int depth = 0, in_str = 0;

	for (; *p; p++) {
		if (in_str) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				in_str = 0;
			if (!in_str && !depth)
				return p + 1;
			continue;
		}
		if (*p == '"') {
			in_str = 1;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (!depth)
				return p;
			if (!--depth)
				return p + 1;
		} else if (!depth && (*p == ',' || *p == ' ')) {
			return p;
		}
	}
	return p;
}

/* The object value of member @key in @json, copied to @out; 0 or -1. */
static int json_obj(const char *json, const char *key, char *out, size_t len)
{
	char pat[80];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (*p != '{')
		return -1;
	e = json_skip(p);
	if ((size_t)(e - p) >= len)
		return -1;
	memcpy(out, p, e - p);
	out[e - p] = 0;
	return 0;
}

/*
 * The elements of the array in @q->reply's "return", one at a time: call
 * with *@at NULL first; copies the next object to @out.  1, or 0 at the end.
 */
static int json_next(const char *reply, const char **at, char *out, size_t len)
{
	const char *p = *at, *e;

	if (!p) {
		p = strstr(reply, "\"return\":");
		if (!p)
			return 0;
		p += 9;
		while (*p == ' ')
			p++;
		if (*p != '[')
			return 0;
		p++;
	}
	while (*p == ' ' || *p == ',')
		p++;
	if (*p != '{')
		return 0;
	e = json_skip(p);
	if ((size_t)(e - p) >= len) {
		*at = e;
		out[0] = 0;
		return 1;
	}
	memcpy(out, p, e - p);
	out[e - p] = 0;
	*at = e;
	return 1;
}

/*
 * Paths go into QMP's JSON as they are, and come back decoded by a client
 * that does not decode \\uXXXX: only plain printable ASCII without quotes
 * and backslashes is taken.
 */
static int plain_path(const char *p)
{
	for (; *p; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

/* The raw (undecoded) text of string member @key holds a backslash. */
static int escaped(const char *json, const char *key)
{
	char pat[80];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	p = strstr(json, pat);
	if (!p)
		return 0;
	for (p += strlen(pat); *p && *p != '"'; p++)
		if (*p == '\\')
			return 1;
	return 0;
}

int disks_plan(struct qmp *q, const char *dir, struct ctl_disks *ds, char *why, size_t len)
{
	static char obj[1 << 15], ins[1 << 14];
	const char *at = NULL, *base;
	struct stat sb;
	unsigned int i;

	memset(ds, 0, sizeof(*ds));
	ds->dir = dir;
	if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
		snprintf(why, len, "%s is not a directory: the disks' copies go there", dir);
		return -1;
	}
	if (!plain_path(dir)) {
		snprintf(why, len, "vmpf-ctl takes only paths of printable ASCII without quotes or backslashes: give --disks-to another directory");
		return -1;
	}
	if (qmp_exec(q, "query-block", NULL, -1, why, len))
		return -1;
	while (json_next(q->reply, &at, obj, sizeof(obj))) {
		struct ctl_disk *d = &ds->d[ds->n];
		char dev[64], node[64];

		if (!obj[0]) {
			snprintf(why, len, "QEMU describes a disk at more length than vmpf-ctl reads (%zu bytes)",
				 sizeof(obj));
			return -1;
		}
		if (!strstr(obj, "\"inserted\":"))
			continue;	/* no medium */
		if (json_obj(obj, "inserted", ins, sizeof(ins))) {
			snprintf(why, len, "QEMU describes a disk in a way vmpf-ctl does not understand: %.200s",
				 obj);
			return -1;
		}
		if (qmp_json_bool(ins, "ro") == 1) {
			ds->skipped_ro++;
			continue;
		}
		if (ds->n == CTL_MAX_DISKS) {
			snprintf(why, len, "QEMU has more than %d writable disks", CTL_MAX_DISKS);
			return -1;
		}
		if (qmp_json_str(obj, "device", dev, sizeof(dev)))
			dev[0] = 0;
		if (qmp_json_str(ins, "node-name", node, sizeof(node)))
			node[0] = 0;
		/* A -drive has a name; a -blockdev only its node's. */
		snprintf(d->device, sizeof(d->device), "%s", dev[0] ? dev : node);
		if (!d->device[0] || qmp_json_str(ins, "file", d->src, sizeof(d->src)) ||
		    qmp_json_str(ins, "drv", d->fmt, sizeof(d->fmt))) {
			snprintf(why, len, "QEMU describes a disk in a way vmpf-ctl does not understand: %.200s",
				 obj);
			return -1;
		}
		if (d->src[0] != '/' || escaped(ins, "file") || !plain_path(d->src)) {
			snprintf(why, len, "disk %s is not an image file that vmpf-ctl can name (%.200s): only files given by an absolute path of printable ASCII without quotes or backslashes can be mirrored",
				 d->device, d->src);
			return -1;
		}
		base = strrchr(d->src, '/') + 1;
		snprintf(d->target, sizeof(d->target), "%s/%s", dir, base);
		snprintf(d->job, sizeof(d->job), "vmpf-mirror-%s", dev[0] ? dev : node);
		if (!strcmp(d->target, d->src)) {
			snprintf(why, len, "disk %s is in %s already: give --disks-to another directory",
				 d->device, dir);
			return -1;
		}
		for (i = 0; i < ds->n; i++)
			if (!strcmp(ds->d[i].target, d->target)) {
				snprintf(why, len, "disks %s and %s would both be copied to %s: their images need different names",
					 ds->d[i].device, d->device, d->target);
				return -1;
			}
		if (!access(d->target, F_OK)) {
			snprintf(why, len, "%s exists already: vmpf-ctl does not overwrite it (remove it, or give --disks-to another directory)",
				 d->target);
			return -1;
		}
		ds->n++;
	}
	return 0;
}

int disks_start(struct qmp *q, struct ctl_disks *ds, char *why, size_t len)
{
	char args[PATH_MAX + 400];
	unsigned int i;

	for (i = 0; i < ds->n; i++) {
		struct ctl_disk *d = &ds->d[i];

		snprintf(args, sizeof(args),
			 "{\"job-id\": \"%s\", \"device\": \"%s\", \"target\": \"%s\", \"format\": \"%s\", \"sync\": \"full\", \"mode\": \"absolute-paths\", \"auto-dismiss\": false}",
			 d->job, d->device, d->target, d->fmt);
		/* QEMU creates the image before the job: ours from here on. */
		d->created = 1;
		if (qmp_exec(q, "drive-mirror", args, -1, why, len))
			return -1;
		d->started = 1;
	}
	return 0;
}

/* Refresh every started job from query-block-jobs; -1 with @why if one failed. */
static int disks_refresh(struct qmp *q, struct ctl_disks *ds, char *why, size_t len)
{
	static char obj[1 << 13];
	unsigned int i;

	if (qmp_exec(q, "query-block-jobs", NULL, -1, why, len))
		return -1;
	for (i = 0; i < ds->n; i++) {
		struct ctl_disk *d = &ds->d[i];
		const char *at = NULL;
		char id[80], status[32], err[300];
		int found = 0;

		if (!d->started || d->done)
			continue;
		while (json_next(q->reply, &at, obj, sizeof(obj))) {
			if (qmp_json_str(obj, "device", id, sizeof(id)) || strcmp(id, d->job))
				continue;
			found = 1;
			d->len = qmp_json_num(obj, "len");
			d->offset = qmp_json_num(obj, "offset");
			/* Ready stays ready: a concluded job no longer says so. */
			if (qmp_json_bool(obj, "ready") == 1)
				d->ready = 1;
			if (!qmp_json_str(obj, "error", err, sizeof(err))) {
				d->pivoting = 0;	/* a failed pivot leaves QEMU where it was */
				snprintf(why, len, "the mirror of disk %s to %s failed: %s", d->device,
					 d->target, err);
				return -1;
			}
			if (!qmp_json_str(obj, "status", status, sizeof(status)) &&
			    !strcmp(status, "concluded")) {
				d->done = 1;
				d->moved = d->pivoting;
				d->pivoting = 0;
			}
			break;
		}
		if (!found) {
			snprintf(why, len, "the mirror of disk %s to %s ended on its own (cancelled from outside?)",
				 d->device, d->target);
			return -1;
		}
	}
	return 0;
}

int disks_poll(struct qmp *q, struct ctl_disks *ds, char *why, size_t len)
{
	unsigned int i;

	if (disks_refresh(q, ds, why, len))
		return -1;
	for (i = 0; i < ds->n; i++)
		if (!ds->d[i].ready)
			return 0;
	return 1;
}

static void disks_dismiss(struct qmp *q, struct ctl_disk *d)
{
	char args[128], m[300];

	snprintf(args, sizeof(args), "{\"id\": \"%s\"}", d->job);
	qmp_exec(q, "job-dismiss", args, -1, m, sizeof(m));
	d->started = 0;
}

int disks_finish(struct qmp *q, struct ctl_disks *ds, int pivot, char *why, size_t len)
{
	char args[128];
	unsigned int i, waited;

	for (i = 0; i < ds->n; i++) {
		struct ctl_disk *d = &ds->d[i];

		if (!d->ready) {
			snprintf(why, len, "the mirror of disk %s is not ready", d->device);
			return -1;
		}
		snprintf(args, sizeof(args), "{\"device\": \"%s\"}", d->job);
		if (qmp_exec(q, pivot ? "block-job-complete" : "block-job-cancel", args, -1, why,
			     len))
			return -1;
		/* From here QEMU may write to the target alone: it is the disk. */
		if (pivot)
			d->pivoting = 1;
	}
	for (waited = 0;; waited += 10) {
		int left = 0;

		if (disks_refresh(q, ds, why, len))
			return -1;
		for (i = 0; i < ds->n; i++)
			left += !ds->d[i].done;
		if (!left)
			break;
		if (waited >= DISK_END_MS) {
			snprintf(why, len, "the disk mirrors did not end within %d s", DISK_END_MS / 1000);
			return -1;
		}
		nap_ms(10);
	}
	for (i = 0; i < ds->n; i++)
		disks_dismiss(q, &ds->d[i]);
	return 0;
}

void disks_abort(struct qmp *q, struct ctl_disks *ds)
{
	char args[128], m[300];
	unsigned int i, waited;

	static char obj[1 << 13];

	/* A disk QEMU moves onto is left to finish: it may run on it already. */
	for (i = 0; i < ds->n; i++) {
		if (!ds->d[i].started || ds->d[i].done || ds->d[i].pivoting)
			continue;
		snprintf(args, sizeof(args), "{\"device\": \"%s\", \"force\": true}", ds->d[i].job);
		qmp_exec(q, "block-job-cancel", args, -1, m, sizeof(m));
	}
	/* Until each job is over (concluded, or gone), then dismiss it. */
	for (waited = 0; waited < DISK_END_MS; waited += 10) {
		int left = 0;

		if (qmp_exec(q, "query-block-jobs", NULL, -1, m, sizeof(m)))
			break;
		for (i = 0; i < ds->n; i++) {
			const char *at = NULL;
			char id[80], status[32];

			if (!ds->d[i].started)
				continue;
			while (json_next(q->reply, &at, obj, sizeof(obj))) {
				if (qmp_json_str(obj, "device", id, sizeof(id)) ||
				    strcmp(id, ds->d[i].job))
					continue;
				if (qmp_json_str(obj, "status", status, sizeof(status)) ||
				    strcmp(status, "concluded")) {
					left++;
				} else if (ds->d[i].pivoting) {
					/* Moved, unless its pivot failed (QEMU stayed). */
					ds->d[i].moved = qmp_json_str(obj, "error", m, sizeof(m)) != 0;
					ds->d[i].pivoting = 0;
				}
				break;
			}
		}
		if (!left)
			break;
		nap_ms(10);
	}
	for (i = 0; i < ds->n; i++) {
		struct ctl_disk *d = &ds->d[i];

		if (d->started)
			disks_dismiss(q, d);
		if (d->pivoting || d->moved)
			continue;	/* QEMU runs on it (or may: never removed) */
		if (d->created && unlink(d->target) && errno != ENOENT)
			fprintf(stderr, "vmpf-ctl: could not remove the partial copy %s: %s\n",
				d->target, strerror(errno));
		d->created = 0;
	}
}

void disks_progress(const struct ctl_disks *ds, long long *copied, long long *left)
{
	unsigned int i;

	*copied = 0;
	*left = 0;
	for (i = 0; i < ds->n; i++) {
		if (ds->d[i].offset > 0)
			*copied += ds->d[i].offset;
		if (ds->d[i].len > ds->d[i].offset)
			*left += ds->d[i].len - ds->d[i].offset;
	}
}

void disks_print(FILE *f, const struct ctl_disks *ds, int json)
{
	unsigned int i;

	if (json)
		fputc('[', f);
	for (i = 0; i < ds->n; i++) {
		const struct ctl_disk *d = &ds->d[i];
		long long left = d->len > d->offset ? d->len - d->offset : 0;

		if (json)
			fprintf(f, "%s{\"device\":\"%s\",\"format\":\"%s\",\"source\":\"%s\",\"target\":\"%s\",\"copied\":%lld,\"left\":%lld,\"ready\":%s,\"done\":%s}",
				i ? "," : "", d->device, d->fmt, d->src, d->target,
				d->offset > 0 ? d->offset : 0, left, d->ready ? "true" : "false",
				d->done ? "true" : "false");
		else
			fprintf(f, "disk       %s (%s) → %s: %lld MiB copied, %lld KiB left%s\n",
				d->device, d->fmt, d->target, (d->offset > 0 ? d->offset : 0) >> 20,
				left >> 10, d->done ? ", done" : d->ready ? ", in sync" : "");
	}
	if (json)
		fputc(']', f);
}

static void disks_publish_one(const struct ctl_disks *ds, long pid, int json)
{
	char path[128], tmp[140];
	FILE *f;

	snprintf(path, sizeof(path), CTL_DISKS_DIR "/disks-%ld.%s", pid, json ? "json" : "txt");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	disks_print(f, ds, json);
	if (fclose(f) || rename(tmp, path))
		unlink(tmp);
}

void disks_publish(const struct ctl_disks *ds, long pid)
{
	mkdir("/run", 0755);	/* a bare initramfs may have none */
	mkdir(CTL_DISKS_DIR, 0755);
	disks_publish_one(ds, pid, 0);
	disks_publish_one(ds, pid, 1);
}

void disks_unpublish(long pid)
{
	char path[128];

	snprintf(path, sizeof(path), CTL_DISKS_DIR "/disks-%ld.txt", pid);
	unlink(path);
	snprintf(path, sizeof(path), CTL_DISKS_DIR "/disks-%ld.json", pid);
	unlink(path);
}
