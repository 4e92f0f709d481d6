/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading a vmpagefile page file from userspace: vmpf-ctl info/verify and
 * vmpf-vm's eager restore.  The format is in uapi/linux/vmpagefile.h.
 */
#ifndef VMPF_PAGEFILE_H
#define VMPF_PAGEFILE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/vmpagefile.h>

struct pf {
	int fd;
	struct vmpf_pf_super sb;
	struct vmpf_pf_commit commit;
	int committed;			/* the commit record is valid */
	struct vmpf_pf_lease lease;	/* the image's ownership lease, */
	int lease_valid;		/* if one was ever taken */
	struct vmpf_pf_page *table;	/* loaded by pf_load_table() */
	char why[160];			/* why it is not (fully) valid */
};

uint32_t pf_crc32c(const void *p, size_t len);

/*
 * Open and check superblock and commit record.  0 with @pf filled (look at
 * pf->committed), or -errno with pf->why saying what is wrong.
 */
int pf_open(struct pf *pf, const char *path);
void pf_close(struct pf *pf);

/* "free", "reading", "restored", "revoked" (VMPF_LEASE_*). */
const char *pf_lease_state_name(uint32_t state);

/* Read the page table; -EBADMSG if its crc differs from the commit's. */
int pf_load_table(struct pf *pf);

/* Read the device state (malloc'ed) and check its crc. */
int pf_read_state(struct pf *pf, void **state, size_t *len);

/* Read page @idx into @buf (zero-filled for zero pages); check its crc. */
int pf_read_page(struct pf *pf, uint64_t idx, void *buf);

/*
 * The history of the migration committed in @path (its commit record, with
 * VMPF_PF_COMMIT_HISTORY set and a throttle of at most 99).  0, or -errno
 * with a sentence in @msg.
 */
int pf_history(const char *path, struct vmpf_pf_commit *c, char *msg, size_t len);

/*
 * Revoke the image committed in @path: the source takes the VM back, and
 * restores refuse the image (VMPF_LEASE_REVOKED).  Refused (-EBUSY) while
 * a destination renews a lease on it, and (-EALREADY) if one restored it
 * before, unless @force.  0 with a sentence in @msg, or -errno with why.
 */
int pf_revoke(const char *path, int force, char *msg, size_t len);

#endif /* VMPF_PAGEFILE_H */
