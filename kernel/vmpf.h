/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmpagefile internal declarations shared by the module's files.
 *
 * Files:
 *   main.c  module init/exit, parameters, module-wide counters
 *   dev.c   the /dev/vmpagefile file operations: open, release and the
 *           ioctl dispatch, including the API handshake
 */
#ifndef _VMPF_H
#define _VMPF_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/vmpagefile.h>

#define VMPF_VERSION	VMPF_VERSION_NUM

/* Module-wide counters, reported by VMPF_IOC_DEV_INFO. */
struct vmpf_counters {
	atomic64_t open_files;	/* file descriptions open on the device */
	atomic64_t mem_bytes;	/* bytes allocated on behalf of callers */
};

extern struct vmpf_counters vmpf_counters;
extern const struct file_operations vmpf_fops;

/**
 * struct vmpf_file - state of one open file description of /dev/vmpagefile
 * @lock:	serialises the API handshake; protects @features and the
 *		transition of @api_done from false to true.
 * @api_done:	true once VMPF_IOC_API succeeded.  Written under @lock with
 *		release semantics, read locklessly with acquire semantics:
 *		once true it never changes, and @features is stable.
 * @features:	feature bits agreed in the handshake.
 */
struct vmpf_file {
	struct mutex lock;	/* serialises the handshake, see above */
	bool api_done;
	u64 features;
};

#endif /* _VMPF_H */
