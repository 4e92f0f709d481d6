/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The restore session: what restore.c, fault.c and prefetch.c share.
 *
 * Lifetime: created by VMPF_IOC_RESTORE_OPEN on a descriptor of
 * /dev/vmpagefile, freed by that descriptor's release().  Every mapping of
 * guest RAM holds a reference to the descriptor's file, so the session
 * outlives every mapping and every fault in progress (a fault that drops
 * the mm lock takes its own file reference first).  release() stops the
 * prefetch thread and drops the session's reference to each page; a page
 * still referenced elsewhere (KVM, say) lives on until that reference goes.
 *
 * Pages: @pages[i] is set once, with release semantics, after page i was
 * read and checked, and never changes until release(); readers use
 * acquire.  Whoever sets bit i of @inflight (test_and_set_bit_lock) owns
 * reading page i; it publishes the page or sets bit i of @bad, clears the
 * in-flight bit and wakes waiters with wake_up_var(&@pages[i]).  So
 * concurrent faults on one page issue one read.
 *
 * Locking: @store_sem is taken for reading around each read of the page
 * file and for writing when the session lets go of the file at completion.
 * @lock (spinlock) protects the prefetch controls, @message, @first_bad and
 * @complete_ns.  Counters are atomics.
 */
#ifndef _VMPF_RESTORE_H
#define _VMPF_RESTORE_H

#include <linux/rwsem.h>
#include <linux/spinlock.h>

#include "vmpf.h"

struct mem_cgroup;

struct vmpf_restore {
	/* constant after open */
	struct vmpf_pf_super sb;
	struct vmpf_pf_page *table;	/* vzalloc()ed, checked against the commit */
	u64 total_pages;
	u64 data_off;
	void *state;			/* vzalloc()ed device state */
	size_t state_len;
	struct mem_cgroup *memcg;	/* the VMM's: prefetched pages are its */
	struct mm_struct *mm;		/* the VMM's, mmgrab()ed: its io cgroup */
	u64 open_ns;
	u64 mem_bytes;

	bool read_in_worker;		/* the page file is a regular file: see fault.c */
	struct rw_semaphore store_sem;	/* see above */
	struct vmpf_store store;	/* file NULL once complete */

	struct page **pages;		/* see above */
	unsigned long *inflight;
	unsigned long *bad;

	wait_queue_head_t wq;		/* the prefetch thread sleeps here */
	wait_queue_head_t *poll_wq;	/* the descriptor's: poll() waits there */
	spinlock_t lock;		/* see above */
	struct task_struct *prefetcher;	/* under the descriptor's mutex */
	bool prefetch_run;
	bool prefetch_done;		/* the thread ended its work, under @lock */
	bool sequential;
	u64 prefetch_rate;		/* pages per second, 0 = unlimited */
	u64 first_bad;
	u64 complete_ns;
	char message[128];

	atomic_t demand_waiting;	/* faults waiting for a read */
	atomic64_t resident;
	atomic64_t demand_pages;
	atomic64_t prefetched;
	atomic64_t zero_pages;
	atomic64_t io_errors;
	atomic64_t crc_errors;
	atomic64_t bad_pages;
	atomic64_t fault_hist[VMPF_FAULT_HIST];
};

/* Wake the prefetch thread and poll(). */
static inline void vmpf_restore_wake(struct vmpf_restore *rst)
{
	wake_up_all(&rst->wq);
	wake_up_all(rst->poll_wq);
}

/* fault.c */
extern const struct vm_operations_struct vmpf_restore_vm_ops;
int vmpf_restore_fill(struct vmpf_restore *rst, u64 idx, unsigned int n,
		      bool demand);

/* prefetch.c */
int vmpf_prefetch_thread(void *arg);

#endif /* _VMPF_RESTORE_H */
