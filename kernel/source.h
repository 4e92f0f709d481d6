/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The source session: what source.c, precopy.c, dirty.c and storage.c
 * share.
 *
 * Lifetime: a session is created by VMPF_IOC_SOURCE_ATTACH on a file
 * description of /dev/vmpagefile and freed by that description's release.
 * VMPF_IOC_START creates the worker thread (precopy.c), which does all
 * work touching KVM, guest memory and the page file, with the VMM's mm
 * adopted.  release() tells the worker to abort, kthread_stop()s it (the
 * worker parks once its job is over and only exits when stopped), and
 * frees the session.
 *
 * Locking: @lock (a spinlock) protects the fields under "status"; it is
 * never held across I/O, KVM calls or user copies.  Fields under "worker"
 * are touched only by the worker thread (and freed after it stopped).
 * Fields under "attach" are set before the session is published and
 * constant afterwards.  The only field the worker shares with ioctls
 * without @lock is each region's @marked bitmap, updated with atomic bit
 * operations by VMPF_IOC_MARK_DIRTY and drained with xchg() by the worker.
 */
#ifndef _VMPF_SOURCE_H
#define _VMPF_SOURCE_H

#include <linux/mm_types.h>
#include <linux/sched.h>
#include <linux/spinlock.h>

#include "vmpf.h"

struct kvm;
struct kvm_memory_slot;

/*
 * One registered memslot; or, @untracked, VMM memory no memslot maps
 * (@slot VMPF_PF_SLOT_NONE), copied whole in the first and final rounds.
 */
struct vmpf_sregion {
	u32 slot;
	u32 orig_flags;		/* the memslot's flags before logging */
	u64 gpa;
	u64 npages;
	u64 uaddr;
	u64 first_page;		/* index in the page file */
	bool untracked;		/* no memslot: never logged, harvested or checked */
	bool logging;		/* worker: dirty logging turned on by us */
	bool log_known;		/* worker: @log_crc holds for KVM's snapshot */
	u32 log_crc;		/* worker: crc32c of @log_len bytes of KVM's snapshot */
	size_t log_len;		/* worker: what our last harvest or clear left there */
	unsigned long *pending;	/* worker: pages still to copy */
	unsigned long *marked;	/* VMPF_IOC_MARK_DIRTY, atomic bit ops */
};

enum vmpf_cmd {
	VMPF_CMD_NONE,
	VMPF_CMD_FINISH,
	VMPF_CMD_ABORT,
	VMPF_CMD_STATE,		/* after VMPF_FINISH_PAGES: the state is there */
};

/*
 * Per-vCPU state of a VM using KVM's dirty ring.  @fetch and @round belong
 * to the worker; the rest is status, under the session's @lock.
 */
struct vmpf_vcpus {
	u32 fetch[VMPF_MAX_VCPUS];	/* worker: next ring entry to harvest */
	DECLARE_BITMAP(seen, VMPF_MAX_VCPUS);	/* worker: @fetch taken from KVM */
	u64 round[VMPF_MAX_VCPUS];	/* worker: pages dirtied since the last round */
	unsigned int nr;		/* status: vCPUs seen (highest index + 1) */
	u8 throttle[VMPF_MAX_VCPUS];	/* status: per cent, each vCPU's own */
	u64 dirty[VMPF_MAX_VCPUS];	/* status: pages dirtied in the last round */
	u64 total[VMPF_MAX_VCPUS];	/* status: pages dirtied in all rounds */
	u32 next[VMPF_MAX_VCPUS];	/* status: @fetch after the last harvest */
};

/*
 * The page table, as the source keeps it (source_table.c): a write-back
 * cache of 4 KiB table blocks.  The worker's alone; no lock.
 */
struct vmpf_src_table {
	u64 blocks;			/* 4 KiB blocks in the table */
	unsigned int nr_slots;		/* blocks the cache holds */
	unsigned int hand;		/* the clock's next slot */
	struct page **slot_page;	/* each slot's block */
	u64 *slot_block;		/* which block a slot holds; U64_MAX: none */
	unsigned long *slot_ref;	/* slots used since the hand passed */
	u32 *block_slot;		/* per block: its slot + 1; 0: not cached */
	u32 *block_crc;			/* per block: crc32c as written, seed 0 */
	unsigned long *dirty;		/* per block: changed since written (so cached) */
	unsigned long *written;		/* per block: written in this session */
	unsigned long *want;		/* per block: a round's pending pages change it */
	struct vmpf_aio *aio;		/* the reads vmpf_src_table_prime() starts */
};

#define VMPF_STATS_KEPT	64	/* per-round statistics kept, latest ones */
#define VMPF_THROTTLE_MAX	99	/* per cent: a vCPU always gets some time */
#define VMPF_MSG_LEN	128

struct vmpf_source {
	/* attach */
	struct file *vm_file;		/* holds the VM alive */
	struct list_head vm_node;	/* in source.c's list of VMs with a session */
	struct mm_struct *mm;		/* the VMM's, mmgrab()ed */
	struct mm_struct *ctl_mm;	/* an external attacher's, mmgrab()ed, or NULL */
	struct vmpf_store store;
	struct vmpf_layout layout;
	struct vmpf_sregion regions[VMPF_MAX_REGIONS];
	unsigned int nr_regions;
	u64 max_rounds;
	u64 target_pages;
	u64 downtime_ns;		/* the switch-over the VMM accepts */
	u64 max_region_pages;
	u64 mem_bytes;			/* allocated for this session */
	bool manual_protect;		/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 on */
	struct vmpf_vcpus *vcpus;	/* the VM uses KVM's dirty ring, else NULL */

	/* worker */
	struct task_struct *worker;	/* set by START under @lock */
	struct vmpf_src_table tbl;	/* the page table's cache (source_table.c) */
	u64 nr_data, nr_zero;		/* table entries in each state */
	unsigned long *harvest;		/* one region's dirty log */
	struct page *io_pages[VMPF_IO_PAGES];
	struct vmpf_awrite awrite[2];	/* each half of @io_pages's write (precopy.c) */
	loff_t awrite_pos[2];		/* where it goes */
	bool awrite_busy[2];		/* in flight, or ended and not waited for */
	unsigned int awrite_cur;	/* the half the next run is copied into */
	void __user *scratch;		/* KVM ioctls' arguments, read-only to the VMM */
	struct page *args_page;		/* the page mapped there (our reference) */
	struct file *args_file;		/* whose mappings hold the page */
	void __user *log_area;		/* KVM_GET_DIRTY_LOG's output, in the VMM */
	size_t log_len;
	u64 generation;
	u64 slots_gen;			/* memslot generation of address space 0 we checked */
	u64 slot_changes;		/* times the memslots moved and regions were re-copied */
	u64 flush_ns;			/* the header's flush took this long */
	u64 request_ns;			/* and its write (one small request) this long */
	u64 ring_ns;			/* when the dirty rings were last harvested */
	u64 write_bps;			/* bytes/s of the rounds' writes, smoothed */
	u64 min_dirty;			/* smallest dirty set after a round */
	unsigned int stalled;		/* rounds since the dirty set last shrank */
	u64 dirty_rate;			/* pages/s dirtied in the last pre-copy round */
	u64 final_pages;		/* pages the final round copied */

	/* status */
	spinlock_t lock;		/* see the comment at the top */
	wait_queue_head_t wq;		/* finish, abort and the worker wait here */
	wait_queue_head_t *poll_wq;	/* the descriptor's: poll() waits there */
	enum vmpf_phase phase;
	u64 flags;			/* VMPF_STATUS_* */
	enum vmpf_cmd cmd;
	u64 round;
	u64 nr_rounds;
	u64 pages_written;
	u64 zero_pages;
	u64 bytes_written;
	u64 dirty_pages;
	u64 start_ns;
	u64 finish_ns;			/* when VMPF_IOC_FINISH was called */
	u64 finish_exits;		/* the vCPUs' VM exits when FINISH was called */
	u64 est_downtime_ns;		/* the final round, estimated after the last */
	u64 throttle_pct;		/* asked of the VMM's vCPUs, 0-99 */
	u64 throttle_max;		/* @throttle_pct never goes above */
	u64 throttle_peak;		/* highest @throttle_pct so far */
	u64 throttle_ready;		/* @throttle_pct when first ready, +1; 0 never */
	u64 throttle_gen;		/* bumped when any throttle changes */
	u64 throttle_acked;		/* the @throttle_gen the VMM applied: else EPOLLPRI */
	int error;			/* positive errno */
	char message[VMPF_MSG_LEN];
	struct vmpf_round_stats stats[VMPF_STATS_KEPT];
	struct vmpf_round_policy policy[VMPF_STATS_KEPT];	/* same slots as @stats */
	bool state_later;		/* VMPF_FINISH_PAGES: the state comes with CMD_STATE */
	void *state;			/* device state handed over by finish */
	size_t state_len;
	struct vmpf_finish result;	/* out fields of a successful finish */
};

/* Wake everyone waiting on a change of the session: threads and poll(). */
static inline void vmpf_source_wake(struct vmpf_source *src)
{
	wake_up_all(&src->wq);
	wake_up_all(src->poll_wq);
}

static inline bool vmpf_phase_done(enum vmpf_phase phase)
{
	return phase == VMPF_PHASE_COMMITTED || phase == VMPF_PHASE_ABORTED ||
	       phase == VMPF_PHASE_FAILED;
}

/* precopy.c */
int vmpf_precopy_thread(void *arg);
void vmpf_source_fail(struct vmpf_source *src, int err, const char *fmt, ...)
	__printf(3, 4);

/* source_table.c */
int vmpf_src_table_alloc(struct vmpf_source *src);
void vmpf_src_table_free(struct vmpf_source *src);
int vmpf_src_table_set(struct vmpf_source *src, u64 idx, u8 state, u32 crc, u64 round);
int vmpf_src_table_write(struct vmpf_source *src);
int vmpf_src_table_prime(struct vmpf_source *src);
u32 vmpf_src_table_crc(struct vmpf_source *src);

/* source.c */
void vmpf_src_account(struct vmpf_source *src, size_t bytes);
void *vmpf_src_zalloc(struct vmpf_source *src, size_t size);

/* dirty.c: worker context, with the VMM's mm adopted */
int vmpf_dirty_init(struct vmpf_source *src);
void vmpf_dirty_exit(struct vmpf_source *src);
bool vmpf_source_slot_is(struct vmpf_source *src, struct vmpf_sregion *r, u32 flags);
bool vmpf_slot_matches(const struct kvm_memory_slot *ms, const struct vmpf_sregion *r,
		       u32 flags);
int vmpf_smm_slots(struct kvm *kvm);
int vmpf_vcpu_exits(struct vmpf_source *src, u64 *exits, unsigned long *busy);
int vmpf_dirty_check_slots(struct vmpf_source *src, bool first);
int vmpf_dirty_set_logging(struct vmpf_source *src, struct vmpf_sregion *r,
			   bool on);
long vmpf_dirty_harvest(struct vmpf_source *src, struct vmpf_sregion *r);
long vmpf_ring_harvest(struct vmpf_source *src);
int vmpf_dirty_protect(struct vmpf_source *src, struct vmpf_sregion *r,
		       u64 first, u64 n);

/* Manual protection re-protects this many pages at a time (2 MiB). */
#define VMPF_PROTECT_GROUP	512

/* pagefile.c */
void vmpf_pf_fill_super(struct vmpf_source *src, struct vmpf_pf_super *sb);
void vmpf_pf_fill_commit(struct vmpf_source *src, struct vmpf_pf_commit *c,
			 u32 table_crc, u32 state_crc, u64 data_pages,
			 u64 zero_pages);

#endif /* _VMPF_SOURCE_H */
