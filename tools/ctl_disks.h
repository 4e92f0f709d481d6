/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A QEMU VM's local disks, mirrored to another directory with QEMU's own
 * block layer (drive-mirror): to the share on the source before the
 * switch-over (vmpf-ctl migrate --disks-to), from the share to local
 * storage on the destination once the guest runs (restore --qemu
 * --disks-to).  See ctl_disks.c.
 */
#ifndef VMPF_CTL_DISKS_H
#define VMPF_CTL_DISKS_H
#include <limits.h>
#include <stdio.h>

#include "qmp.h"

#define CTL_MAX_DISKS	16

struct ctl_disk {
	char device[64];	/* QEMU's name for it: the drive id or node name */
	char fmt[32];		/* its image format: raw, qcow2, ... */
	char src[PATH_MAX];	/* its image now */
	char target[PATH_MAX];	/* the mirror's image */
	char job[80];		/* the mirror's job id */
	long long len;		/* bytes the job has to copy, as last seen */
	long long offset;	/* bytes it copied */
	int started;		/* the job exists (and must be ended) */
	int created;		/* we created @target (removed on failure) */
	int ready;		/* source and target in sync, new writes to both */
	int done;		/* the job ended without error */
	int pivoting;		/* block-job-complete accepted: QEMU moves onto @target */
	int moved;		/* QEMU runs on @target now (never removed) */
};

struct ctl_disks {
	const char *dir;
	unsigned int n;
	struct ctl_disk d[CTL_MAX_DISKS];
	unsigned int skipped_ro;	/* read-only disks, not mirrored */
};

/*
 * The writable disks of the QEMU at @q, each to be mirrored to a file of
 * the same name in @dir.  0, or -1 with a sentence in @why (no such
 * directory, a target that exists already, two disks of one name).
 */
int disks_plan(struct qmp *q, const char *dir, struct ctl_disks *ds, char *why, size_t len);
/* Start a full mirror of every disk (drive-mirror, sync=full): 0 or -1. */
int disks_start(struct qmp *q, struct ctl_disks *ds, char *why, size_t len);
/* Look at the jobs: 1 all ready, 0 not yet, -1 a job failed (@why). */
int disks_poll(struct qmp *q, struct ctl_disks *ds, char *why, size_t len);
/*
 * End every ready mirror with the targets in sync: @pivot 0 leaves QEMU
 * on its images and the targets a copy of this moment (block-job-cancel
 * of a ready mirror, the guest paused), @pivot 1 moves QEMU onto the
 * targets (block-job-complete).  Waits for the jobs to end: 0, or -1.
 */
int disks_finish(struct qmp *q, struct ctl_disks *ds, int pivot, char *why, size_t len);
/*
 * Cancel whatever is left and remove the targets we created, but for
 * those QEMU moved onto (or is moving onto): those it runs on, kept.
 */
void disks_abort(struct qmp *q, struct ctl_disks *ds);
/* Bytes copied and left over all disks. */
void disks_progress(const struct ctl_disks *ds, long long *copied, long long *left);
/* One line per disk ("disk ..."), or a JSON array. */
void disks_print(FILE *f, const struct ctl_disks *ds, int json);
/*
 * For 'vmpf-ctl status --pid PID' (PID: the migrating vmpf-ctl, which
 * holds the session): the disks' progress in CTL_DISKS_DIR/disks-PID.txt
 * (disks_print's lines) and .json (its array), replaced atomically.
 */
#define CTL_DISKS_DIR	"/run/vmpagefile"
void disks_publish(const struct ctl_disks *ds, long pid);
void disks_unpublish(long pid);
#endif /* VMPF_CTL_DISKS_H */
