/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmpagefile internal declarations shared by the module's files.
 *
 * Files:
 *   main.c      module init/exit, parameters, module-wide counters
 *   dev.c       /dev/vmpagefile: open, release, poll, ioctl dispatch, the
 *               API handshake
 *   source.c    source sessions: attach, start, status, finish, abort,
 *               mark-dirty, and their lifetime
 *   precopy.c   the source session's worker: pre-copy rounds, the final
 *               round and the commit
 *   dirty.c     KVM dirty tracking of the registered memslots
 *   pagefile.c  the page-file format: layout, superblock, commit record
 *   storage.c   direct I/O to the page file (block device or regular file)
 *   restore.c   restore sessions: open, info, status, prefetch control,
 *               and their lifetime
 *   fault.c     mapping guest RAM and the fault path: a guest page read
 *               from the page file, in the kernel, on first access
 *   prefetch.c  the background prefetch of the pages not yet touched
 *   node.c      a device node per restore session, for VMMs that open
 *               guest memory by path (QEMU)
 *   guestmem.c  the memory a restored guest lives in: a tmpfs object the
 *               VMM maps, swapped and moved like any shared memory
 *   lease.c     one owner of an image at a time: the ownership lease in
 *               the page file, taken, renewed and let go of
 */
#ifndef _VMPF_H
#define _VMPF_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/bvec.h>
#include <linux/completion.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/sched.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/vmpagefile.h>

#define VMPF_VERSION	VMPF_VERSION_NUM

/*
 * Guest pages a session handles: 2^27 pages, 512 GiB.  Per-page tables and
 * arrays stay below the 2 GiB a kvmalloc() may hand out.
 */
#define VMPF_MAX_PAGES	BIT_ULL(27)

/* Pages per page-file request: 256 KiB. */
#define VMPF_IO_PAGES	64

/* Module-wide counters, reported by VMPF_IOC_DEV_INFO. */
struct vmpf_counters {
	atomic64_t open_files;	/* file descriptions open on the device */
	atomic64_t mem_bytes;	/* bytes allocated on behalf of callers */
	atomic64_t sessions;	/* source sessions alive */
	atomic64_t huge_fills;	/* 2 MiB pages restored with one read */
	atomic64_t table_reads;	/* table blocks read again (table.c) */
};

extern struct vmpf_counters vmpf_counters;
extern const struct file_operations vmpf_fops;
extern struct workqueue_struct *vmpf_wq;	/* main.c: restore reads, leases */

struct vmpf_source;
struct vmpf_node;

/**
 * struct vmpf_file - state of one open file description of /dev/vmpagefile
 * @lock:	serialises the API handshake and session creation; protects
 *		@features and the transitions of @api_done and @src.
 * @api_done:	true once VMPF_IOC_API succeeded.  Written under @lock with
 *		release semantics, read locklessly with acquire semantics:
 *		once true it never changes, and @features is stable.
 * @features:	feature bits agreed in the handshake.
 * @writable:	opened for writing; constant.  Only such a descriptor may
 *		ask for features (sessions): a read-only one sees counters.
 * @src:	the source session, set once under @lock (release), read
 *		with acquire; freed only by release(), when no ioctl can run.
 * @rst:	the restore session, likewise.  A descriptor holds at most
 *		one session of either kind.
 * @file:	the file description this is the private data of; constant.
 * @node:	the restore session's device node, or NULL; set once under
 *		@lock, removed by release().
 * @wq:		poll() waits here, always: woken when a session is
 *		published and on every change of a session that poll reports.
 *		(A poll registers its queues only on its first pass, so it
 *		must not depend on queues a session creates later.)
 */
struct vmpf_file {
	struct mutex lock;	/* see above */
	bool api_done;
	bool writable;
	u64 features;
	struct vmpf_source *src;
	struct vmpf_restore *rst;
	struct file *file;
	struct vmpf_node *node;
	wait_queue_head_t wq;
};

/*
 * A session thread whose job is over waits here until release() stops it
 * with kthread_stop(): it never exits on its own, so kthread_stop() never
 * races its exit.  Interruptible, to stay out of the hung-task detector.
 */
static inline void vmpf_park(void)
{
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop())
			break;
		schedule();
	}
	__set_current_state(TASK_RUNNING);
}

/* source.c */
long vmpf_source_attach(struct vmpf_file *vf, void __user *uarg);
long vmpf_source_start(struct vmpf_file *vf, void __user *uarg);
long vmpf_source_status(struct vmpf_file *vf, void __user *uarg);
long vmpf_source_request_finish(struct vmpf_file *vf, void __user *uarg);
long vmpf_source_finish(struct vmpf_file *vf, void __user *uarg);
long vmpf_source_abort(struct vmpf_file *vf, void __user *uarg);
long vmpf_source_mark_dirty(struct vmpf_file *vf, void __user *uarg);
long vmpf_source_set_throttle(struct vmpf_file *vf, void __user *uarg);
long vmpf_source_vcpu_throttle(struct vmpf_file *vf, void __user *uarg);
long vmpf_source_round_policy(struct vmpf_file *vf, void __user *uarg);
long vmpf_vm_memslots(struct vmpf_file *vf, void __user *uarg);
/* What poll() reports; vmpf_poll() waits on the descriptor's queue. */
__poll_t vmpf_source_poll(struct vmpf_source *src);
void vmpf_source_release(struct vmpf_source *src);

/*
 * The page file, taken from the caller as a file descriptor.  @retries and
 * @failing are updated by whoever does I/O (several fault handlers and the
 * prefetch at once on the restore side): atomics, no lock.
 */
struct vmpf_store {
	struct file *file;
	loff_t size;
	atomic64_t retries;	/* requests repeated after a transient error */
	atomic_t failing;	/* a request failed after all its retries, none succeeded since */
	bool once;		/* writes tried once: the lease's (a retry acts on a stale read) */
};

int vmpf_store_get(struct vmpf_store *st, int fd, bool write);
void vmpf_store_put(struct vmpf_store *st);
int vmpf_store_write_pages(struct vmpf_store *st, struct page **pages,
			   unsigned int n, loff_t pos);
int vmpf_store_write_buf(struct vmpf_store *st, const void *buf, size_t len,
			 loff_t pos);
int vmpf_store_write_part(struct vmpf_store *st, struct page *page, unsigned int off,
			  unsigned int len, loff_t pos);
int vmpf_store_sync(struct vmpf_store *st);
int vmpf_store_read_page(struct vmpf_store *st, struct page *page, loff_t pos);
int vmpf_store_read_span(struct vmpf_store *st, struct page *page, unsigned int n,
			 loff_t pos);
int vmpf_store_read_pages(struct vmpf_store *st, struct page **pages,
			  unsigned int n, loff_t pos);
int vmpf_store_read_buf(struct vmpf_store *st, void *buf, size_t len, loff_t pos);

/* One page read in flight while its starter does other I/O (storage.c). */
struct vmpf_aio {
	struct kiocb kiocb;
	struct bio_vec bv;
	struct iov_iter iter;
	struct file *file;	/* a reference of the read's own */
	struct completion done;
	long ret;
};

void vmpf_store_read_start(struct vmpf_store *st, struct vmpf_aio *a,
			   struct page *page, loff_t pos);
int vmpf_store_read_wait(struct vmpf_aio *a);

/*
 * An asynchronous direct write of up to VMPF_AWRITE_PAGES whole pages
 * (storage.c), for the pre-copy's requests in flight.
 */
#define VMPF_AWRITE_PAGES	(VMPF_IO_PAGES / 2)

struct vmpf_awrite {
	struct kiocb kiocb;
	struct bio_vec bv[VMPF_AWRITE_PAGES];
	struct iov_iter iter;
	struct file *file;	/* a reference of the write's own */
	struct completion done;
	long ret;
	size_t len;
};

void vmpf_store_write_start(struct vmpf_store *st, struct vmpf_awrite *a,
			    struct page **pages, unsigned int n, loff_t pos);
int vmpf_store_write_wait(struct vmpf_awrite *a);

/*
 * lease.c: the image's ownership lease (struct vmpf_pf_lease), allocated
 * by vmpf_lease_take() for a restore session and freed by its worker
 * after vmpf_lease_release().  @lock protects @state's changes, @beat,
 * @page, @whole_block, @logged, @renewed_ns and the lease's I/O; the
 * renewal is @work, on vmpf_wq.  The lease has its own reference to the
 * page file (@store, whose writes are tried once): it is renewed for as
 * long as the session lives, also after the restore let go of its own
 * file at completion.  @state is read locklessly by the status
 * (READ_ONCE); the other fields are constant once taken.
 */
struct vmpf_lease {
	struct list_head node;		/* on lease.c's list of leases */
	struct mutex lock;		/* see above */
	struct delayed_work work;
	struct vmpf_store store;
	struct page *page;		/* block 1, as last read */
	__le64 generation;		/* the image's */
	u64 owner;
	u64 beat;
	u64 takeovers;
	u64 acquired_ns;		/* CLOCK_REALTIME, for the record */
	u64 written_ns;			/* first written, for the confirmation */
	u64 renewed_ns;			/* last renewal that reached the file */
	u32 period_ms;
	u32 pid;
	u32 state;			/* VMPF_LEASE_* */
	bool finishing;			/* every page was read: say RESTORED */
	bool releasing;			/* the session ended: FREE, then free */
	bool whole_block;		/* the sector cannot be written alone */
	bool logged;			/* a renewal failure was logged */
	char host[64];
};

int vmpf_lease_take(struct vmpf_lease **out, struct vmpf_store *st,
		    const struct vmpf_pf_super *sb, bool force);
int vmpf_lease_confirm(struct vmpf_lease *ls);
void vmpf_lease_finish(struct vmpf_lease *ls);
void vmpf_lease_release(struct vmpf_lease *ls);
u32 vmpf_lease_state(struct vmpf_lease *ls);
int vmpf_lease_check_target(struct vmpf_store *st, bool reading);
void vmpf_lease_exit(void);

/* pagefile.c: on-disk layout of a page file for a set of regions */
struct vmpf_layout {
	u64 total_pages;
	u64 table_off;
	u64 table_len;		/* bytes, multiple of VMPF_PF_BLOCK */
	u64 state_off;
	u64 state_max;		/* multiple of VMPF_PF_BLOCK */
	u64 data_off;
	u64 file_size;
};

void vmpf_pf_layout(struct vmpf_layout *l, u64 total_pages, u64 state_max);
u32 vmpf_crc32c(const void *p, size_t len);
u32 vmpf_raw_crc32c(u32 seed, const void *p, size_t len);	/* no inversions */
void vmpf_crc_select(void);
int vmpf_pf_check_super(const struct vmpf_pf_super *sb, loff_t size);
int vmpf_pf_check_commit(const struct vmpf_pf_commit *c,
			 const struct vmpf_pf_super *sb);

/* guestmem.c */
int vmpf_guestmem_init(void);
void vmpf_guestmem_exit(void);
bool vmpf_guestmem_huge(void);

/* restore.c */
struct vmpf_restore;
long vmpf_restore_open(struct vmpf_file *vf, void __user *uarg);
long vmpf_restore_info(struct vmpf_file *vf, void __user *uarg);
long vmpf_restore_prefetch(struct vmpf_file *vf, void __user *uarg);
long vmpf_restore_status(struct vmpf_file *vf, void __user *uarg);
long vmpf_restore_memfd(struct vmpf_file *vf, void __user *uarg);
int vmpf_restore_mmap(struct vmpf_restore *rst, struct vm_area_struct *vma);	/* fault.c */
__poll_t vmpf_restore_poll(struct vmpf_restore *rst);
void vmpf_restore_release(struct vmpf_restore *rst);

/* node.c */
long vmpf_restore_node(struct vmpf_file *vf, void __user *uarg);
void vmpf_node_remove(struct vmpf_node *node);

#endif /* _VMPF_H */
