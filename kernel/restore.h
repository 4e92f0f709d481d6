/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The restore session: what restore.c, fault.c and prefetch.c share.
 *
 * Lifetime: created by VMPF_IOC_RESTORE_OPEN on a descriptor of
 * /dev/vmpagefile, freed by that descriptor's release().  Every mapping of
 * guest RAM holds a reference to the descriptor's file, so the session
 * outlives every mapping and every fault in progress (a fault that drops
 * the mm lock takes its own file reference first).  release() stops the
 * prefetch thread and drops the session's reference to guest memory.
 *
 * Guest memory is @shm, a tmpfs object (guestmem.c); a VMA of it has the
 * session in @vm_private_data and holds a reference to @file.  Bit i of
 * @filled is set once, with release semantics, after page i of the object
 * was filled from the page file and checked, or a hole was punched over
 * it; it never clears.  From then on the page is the object's: faults go
 * to tmpfs, which may swap or move it.  Readers use acquire.  Whoever sets
 * bit i of @inflight (test_and_set_bit_lock) owns filling page i; it sets
 * bit i of @filled or of @bad, clears the in-flight bit and wakes waiters
 * (vmpf_inflight_key()).  So concurrent faults on one page issue one
 * read, and a punched hole waits for a fill under way before it counts
 * the page as restored.
 *
 * A huge session (VMPF_RESTORE_HUGE, @huge) fills 2 MiB blocks of
 * VMPF_HUGE_NR pages, not pages: the in-flight bit of a block's first page
 * (vmpf_lock_idx()) stands for the whole block, and bit b of @block_done
 * is set, with release semantics, once every page of block b is filled or
 * bad; only then may anything map a page of it (fault.c says why).
 *
 * Locking: @store_sem is taken for reading around each read of the page
 * file (a page-table block's too: table.c) and for writing when the
 * session lets go of the file at completion.  @tc_lock (spinlock) protects
 * the page-table cache, @tc_slots and @tc_lru: held only to look a crc up
 * or to copy a checked block in, never across a read.
 * @lock (spinlock) protects the prefetch controls, @message, @first_bad,
 * @complete_ns, @prefetch_held, @held_logged and the setting of @map_mm.  Counters are atomics.
 */
#ifndef _VMPF_RESTORE_H
#define _VMPF_RESTORE_H

#include <linux/bitops.h>
#include <linux/mm_types.h>
#include <linux/pgtable.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>

#include "vmpf.h"

struct mem_cgroup;
struct vmpf_tslot;

struct vmpf_restore {
	/* constant after open */
	struct vmpf_pf_super sb;
	u64 total_pages;
	u64 data_off;
	void *state;			/* vzalloc()ed device state */
	size_t state_len;
	struct mem_cgroup *memcg;	/* the opener's: see vmpf_restore_memcg() */
	struct mm_struct *mm;		/* the opener's, mmgrab()ed */
	/* the first other process to map guest RAM (QEMU after vmpf-ctl): */
	struct mm_struct *map_mm;	/* set once, under @lock, mmgrab()ed */
	struct mem_cgroup *map_memcg;	/* set before @map_mm is published */
	u64 open_ns;
	u64 mem_bytes;

	bool huge;			/* 2 MiB blocks: see above */
	bool read_in_worker;		/* a regular page file, or huge: see fault.c */
	struct rw_semaphore store_sem;	/* see above */
	struct vmpf_store store;	/* file NULL once complete */
	struct vmpf_lease *lease;	/* ownership of the image (lease.c), or NULL */

	struct file *file;		/* the session's descriptor: no reference */
	struct file *shm;		/* guest memory: see guestmem.c */
	vm_fault_t (*shm_fault)(struct vm_fault *vmf);	/* tmpfs's */
	unsigned long *filled;		/* see above */
	unsigned long *inflight;
	unsigned long *bad;
	unsigned long *block_done;	/* huge sessions only */

	/* The page table, kept small: table.c.  Constant after open: */
	unsigned long *data;		/* pages stored in the page file */
	unsigned long *zero;		/* zero pages; neither: never written */
	unsigned long *hot[2];		/* table blocks' prefetch class */
	u64 hot_pages[4];		/* pages in blocks of each class */
	u32 *block_crc;			/* crc32c of each 4 KiB table block */
	u64 table_off;
	unsigned int table_blocks;
	unsigned int tc_sets;
	/* the crcs of recently used table blocks: */
	spinlock_t tc_lock;		/* protects @tc_slots and @tc_lru */
	struct vmpf_tslot *tc_slots;
	unsigned long *tc_lru;

	wait_queue_head_t wq;		/* the prefetch thread sleeps here */
	wait_queue_head_t *poll_wq;	/* the descriptor's: poll() waits there */
	spinlock_t lock;		/* see above */
	struct task_struct *prefetcher;	/* under the descriptor's mutex */
	bool prefetch_run;
	bool prefetch_done;		/* the thread ended its work, under @lock */
	bool sequential;
	bool prefetch_held;		/* waiting for room in the memory cgroup */
	bool held_logged;
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
	atomic64_t discarded;		/* holes punched before the page was read */
	atomic64_t huge_fills;		/* 2 MiB pages filled with one read */
	atomic64_t fault_hist[VMPF_FAULT_HIST];
};

/* Wake the prefetch thread and poll(). */
static inline void vmpf_restore_wake(struct vmpf_restore *rst)
{
	wake_up_all(&rst->wq);
	wake_up_all(rst->poll_wq);
}

/* The wait-queue key of page @idx's in-flight bit. */
static inline void *vmpf_inflight_key(struct vmpf_restore *rst, u64 idx)
{
	return &rst->inflight[BIT_WORD(idx)];
}

/*
 * The VMM whose memory guest RAM is: the first process other than the
 * opener to map it (vmpf-ctl opens, QEMU maps), else the opener.  Restored
 * pages are charged to its memory cgroup, page-file reads to its io
 * cgroup, and the prefetch watches it for the OOM killer.
 */
static inline struct mm_struct *vmpf_restore_mm(struct vmpf_restore *rst)
{
	/* Pairs with the release in vmpf_restore_mmap(). */
	struct mm_struct *mm = smp_load_acquire(&rst->map_mm);

	return mm ? mm : rst->mm;
}

static inline struct mem_cgroup *vmpf_restore_memcg(struct vmpf_restore *rst)
{
	/* Pairs with the release in vmpf_restore_mmap(): @map_memcg first. */
	return smp_load_acquire(&rst->map_mm) ? rst->map_memcg : rst->memcg;
}

/* Page @idx is the object's: filled, or a hole was punched over it. */
static inline bool vmpf_filled(struct vmpf_restore *rst, u64 idx)
{
	/* Pairs with the release in vmpf_restore_set_filled(). */
	return test_bit_acquire(idx, rst->filled);
}

/* Page @idx's state in the page file: VMPF_PAGE_DATA, _ZERO or _NONE. */
static inline u8 vmpf_page_state(struct vmpf_restore *rst, u64 idx)
{
	return test_bit(idx, rst->data) ? VMPF_PAGE_DATA :
	       test_bit(idx, rst->zero) ? VMPF_PAGE_ZERO : VMPF_PAGE_NONE;
}

static inline bool vmpf_page_data(struct vmpf_restore *rst, u64 idx)
{
	return test_bit(idx, rst->data);
}

/*
 * Page @idx's prefetch class, its table block's (512 pages): 3 (a page of
 * it was copied in the final round) first, 0 last.
 */
static inline unsigned int vmpf_page_hot(struct vmpf_restore *rst, u64 idx)
{
	u64 blk = idx / (VMPF_PF_BLOCK / sizeof(struct vmpf_pf_page));

	return test_bit(blk, rst->hot[1]) << 1 | test_bit(blk, rst->hot[0]);
}

/* Pages in a block of a huge session: one PMD's worth. */
#define VMPF_HUGE_NR	(PMD_SIZE >> PAGE_SHIFT)

/* The page whose in-flight bit stands for page @idx's fill. */
static inline u64 vmpf_lock_idx(struct vmpf_restore *rst, u64 idx)
{
	return rst->huge ? round_down(idx, VMPF_HUGE_NR) : idx;
}

/*
 * Page @idx may be handed to tmpfs's fault handler: it is filled (a huge
 * session: every page of its block is filled or bad).
 */
static inline bool vmpf_mappable(struct vmpf_restore *rst, u64 idx)
{
	/* Pairs with the releases in fault.c. */
	return rst->huge ? test_bit_acquire(idx / VMPF_HUGE_NR, rst->block_done) :
	       vmpf_filled(rst, idx);
}

/* fault.c */
extern const struct vm_operations_struct vmpf_restore_vm_ops;
int vmpf_restore_fill(struct vmpf_restore *rst, u64 idx, unsigned int n,
		      bool demand);
int vmpf_restore_discard(struct vmpf_restore *rst, loff_t off, loff_t len);

/* guestmem.c */
int vmpf_guestmem_create(struct vmpf_restore *rst);
void vmpf_guestmem_put(struct vmpf_restore *rst);
int vmpf_guestmem_mmap(struct vmpf_restore *rst, struct vm_area_struct *vma);

/* prefetch.c */
int vmpf_prefetch_thread(void *arg);

/* table.c */
int vmpf_table_load(struct vmpf_restore *rst, u64 table_off, size_t table_len,
		    u32 table_crc, u64 rounds, size_t *bytes);
void vmpf_table_free(struct vmpf_restore *rst);
int vmpf_table_page_crc(struct vmpf_restore *rst, u64 idx, u32 *crc);

/* A page-table block read in flight: vmpf_table_crc_begin(). */
struct vmpf_table_read {
	struct vmpf_aio aio;
	struct page *page;
	unsigned int blk;
};

int vmpf_table_crc_begin(struct vmpf_restore *rst, u64 idx, u32 *crc,
			 struct vmpf_table_read *tr);
int vmpf_table_crc_end(struct vmpf_restore *rst, u64 idx, u32 *crc,
		       struct vmpf_table_read *tr);

#endif /* _VMPF_RESTORE_H */
