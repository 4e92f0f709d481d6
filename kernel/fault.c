// SPDX-License-Identifier: GPL-2.0
/*
 * The fault path of a restored VM: a guest page is read from the page file
 * in the kernel, straight into a new page, the first time anything touches
 * it: a vCPU through KVM, or one of the VMM's own threads.
 *
 * vmpf_restore_fault() behaves like the page cache's filemap_fault():
 *  - a page already resident is mapped at once;
 *  - with FAULT_FLAG_RETRY_NOWAIT (KVM's async page fault) it starts the
 *    read in a worker and returns VM_FAULT_RETRY without waiting and with
 *    the lock still held: KVM lets the guest run other work and faults
 *    again later, without the flag, finding the read under way or done;
 *  - when it may retry, it takes a reference to the file, drops the mm
 *    lock, reads (or waits for the read another fault already started),
 *    and returns VM_FAULT_RETRY; the retried fault finds the page resident.
 *    Sleeping is safe there: no lock is held, and the file reference keeps
 *    the session alive even if the VMA goes away meanwhile;
 *  - when it may not retry, it waits with the mm lock held, as
 *    filemap_fault() does in that case: the read only needs the page file,
 *    never the faulting mm, so it cannot deadlock on it; a read failing
 *    for the moment (a storage outage) is tried again until the page
 *    comes, is refused, or the task is killed;
 *  - a fault never takes the page file's filesystem locks: when the page
 *    file is a regular file, a worker reads it (see vmpf_fill_work);
 *  - a fatal signal ends a wait;
 *  - a page that could not be read or failed its crc32c is never mapped:
 *    the access gets SIGBUS, and the status and the kernel log say which
 *    page and why.
 */
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/memcontrol.h>
#include <linux/sched/mm.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>

#include "restore.h"
#include "trace.h"

/* Transient failures leave the page to be tried again; others are final. */
static bool vmpf_transient(int err)
{
	return err == -ENOMEM || err == -EINTR || err == -ERESTARTSYS || err == -EAGAIN;
}

static void vmpf_restore_bad(struct vmpf_restore *rst, u64 idx, int err,
			     const char *why)
{
	atomic64_inc(&rst->bad_pages);
	spin_lock(&rst->lock);
	if (rst->first_bad == ~0ULL) {
		rst->first_bad = idx;
		snprintf(rst->message, sizeof(rst->message),
			 "page %llu: %s (error %d); accesses to it get SIGBUS",
			 idx, why, err);
	}
	spin_unlock(&rst->lock);
	pr_err_ratelimited("restore: page %llu: %s (error %d); not mapped\n",
			   idx, why, err);
	set_bit(idx, rst->bad);
	vmpf_restore_wake(rst);		/* poll: EPOLLERR */
}

/* Give up ownership of page @idx's read and wake whoever waits for it. */
static void vmpf_restore_unlock(struct vmpf_restore *rst, u64 idx)
{
	clear_bit_unlock(idx, rst->inflight);
	/* Order the cleared bit before wake_up_var()'s waitqueue check. */
	smp_mb__after_atomic();
	wake_up_var(&rst->pages[idx]);
}

/* Every page is in: let go of the page file, tell poll(). */
static void vmpf_restore_complete(struct vmpf_restore *rst)
{
	down_write(&rst->store_sem);
	vmpf_store_put(&rst->store);
	up_write(&rst->store_sem);
	spin_lock(&rst->lock);
	rst->complete_ns = ktime_get_ns() - rst->open_ns;
	spin_unlock(&rst->lock);
	vmpf_restore_wake(rst);
}

/*
 * Page @idx was read into @page (or @ret says why not): check it, then
 * publish it or mark it bad, and release its in-flight bit.
 */
static void vmpf_restore_publish(struct vmpf_restore *rst, u64 idx,
				 struct page *page, int ret, bool demand)
{
	const struct vmpf_pf_page *e = &rst->table[idx];

	if (!ret && e->state == VMPF_PAGE_DATA) {
		void *p = kmap_local_page(page);
		u32 crc = vmpf_crc32c(p, PAGE_SIZE);

		kunmap_local(p);
		if (crc != le32_to_cpu(e->crc)) {
			atomic64_inc(&rst->crc_errors);
			ret = -EBADMSG;
			vmpf_restore_bad(rst, idx, ret, "crc32c mismatch");
		}
	} else if (ret && !vmpf_transient(ret)) {
		/* Interrupted reads leave the page to be tried again. */
		atomic64_inc(&rst->io_errors);
		vmpf_restore_bad(rst, idx, ret, "reading the page file failed");
	}

	trace_vmpf_fill(idx, demand, e->state, ret);
	if (ret) {
		__free_page(page);
	} else {
		if (e->state == VMPF_PAGE_ZERO)
			atomic64_inc(&rst->zero_pages);
		atomic64_inc(demand ? &rst->demand_pages : &rst->prefetched);
		/* Pairs with the acquire in vmpf_restore_fault(). */
		smp_store_release(&rst->pages[idx], page);
	}
	vmpf_restore_unlock(rst, idx);
	if (!ret && atomic64_inc_return(&rst->resident) == rst->total_pages)
		vmpf_restore_complete(rst);
}

/*
 * The VMM's memory, whoever faults: a KVM async-fault worker too.  The
 * prefetch does not insist (__GFP_NORETRY): under the VMM's memory limit it
 * leaves the page to a fault rather than push the VMM towards its OOM.
 */
static struct page *vmpf_restore_alloc(struct vmpf_restore *rst, bool demand)
{
	struct mem_cgroup *old = set_active_memcg(rst->memcg);
	struct page *page = alloc_page(GFP_HIGHUSER | __GFP_ACCOUNT | __GFP_ZERO |
				       (demand ? 0 : __GFP_NORETRY | __GFP_NOWARN));

	set_active_memcg(old);
	return page;
}

/* Read data pages @idx .. @idx + @n - 1 into @pages, in one request. */
static int vmpf_restore_read(struct vmpf_restore *rst, struct page **pages,
			     u64 idx, unsigned int n)
{
	loff_t pos = rst->data_off + idx * VMPF_PF_PAGE_SIZE;
	int ret;

	/* store_sem: the page file is not let go of during the read. */
	down_read(&rst->store_sem);
	ret = !rst->store.file ? -EIO : n == 1 ?
	      vmpf_store_read_page(&rst->store, pages[0], pos) :
	      vmpf_store_read_pages(&rst->store, pages, n, pos);
	up_read(&rst->store_sem);
	return ret;
}

/*
 * Bring pages @idx .. @idx + @n - 1 in.  The caller owns their in-flight
 * bits; for @n > 1 they are all data pages, read in one request.  Each is
 * published or marked bad, and its bit released.  May sleep; holds no lock
 * of its own across the read.  -ENOMEM if not even page @idx could be
 * allocated (left for a later try), else 0.
 */
int vmpf_restore_fill(struct vmpf_restore *rst, u64 idx, unsigned int n,
		      bool demand)
{
	struct page *pages[VMPF_IO_PAGES];
	unsigned int i, got = 0;
	bool nomem = false;
	int ret = 0;

	for (i = 0; i < n; i++) {
		/*
		 * Whoever looked before taking the bit may be late: the page may
		 * have come in (or gone bad) meanwhile.  With the bit held it
		 * cannot change.
		 */
		if (READ_ONCE(rst->pages[idx + i]) || test_bit(idx + i, rst->bad) ||
		    (n > 1 && rst->table[idx + i].state != VMPF_PAGE_DATA))
			break;
		pages[i] = vmpf_restore_alloc(rst, demand);
		if (!pages[i]) {
			nomem = true;
			break;
		}
		got++;
	}
	/* Release what we will not read now; not bad, a later try may do. */
	for (i = got; i < n; i++)
		vmpf_restore_unlock(rst, idx + i);
	if (!got)
		return nomem ? -ENOMEM : 0;

	switch (rst->table[idx].state) {
	case VMPF_PAGE_ZERO:
		break;
	case VMPF_PAGE_DATA:
		ret = vmpf_restore_read(rst, pages, idx, got);
		if (!ret || got == 1 || vmpf_transient(ret))
			break;
		/* One unreadable sector must not cost the whole run: page by page. */
		for (i = 0; i < got; i++)
			vmpf_restore_publish(rst, idx + i, pages[i],
					     vmpf_restore_read(rst, &pages[i], idx + i, 1),
					     demand);
		return 0;
	default:
		ret = -ENODATA;
		vmpf_restore_bad(rst, idx, ret, "never written by the source");
		/* Marked bad already: do not count it as a read error too. */
		__free_page(pages[0]);
		vmpf_restore_unlock(rst, idx);
		return 0;
	}
	for (i = 0; i < got; i++)
		vmpf_restore_publish(rst, idx + i, pages[i], ret, demand);
	return 0;
}

/*
 * Reads in a worker.  A filesystem's direct read takes the page file's
 * i_rwsem (ext4, XFS, NFS), and a fault may come from inside write() to
 * another file of that filesystem (holding its i_rwsem: the same lock
 * class) or hold the mm lock (a fault that may not retry: the reverse of
 * the i_rwsem -> mmap_lock order).  So a fault never reads a regular page
 * file itself: a work item does, holding no lock of the faulting task's,
 * and the fault waits for it.  A block device's direct read takes no
 * inode lock: there the fault reads itself, saving the hand-over.  Also
 * used to start the read of a fault that may not wait at all.
 *
 * The work owns the page's in-flight bit (taken before queueing, or by
 * the work itself for a fault that does not wait) and holds a reference
 * to the session's file, so the session outlives it.
 */
struct vmpf_fill_work {
	struct work_struct work;
	struct vmpf_restore *rst;
	struct file *file;
	u64 idx;
	bool owned;		/* the in-flight bit was taken for us */
};

static void vmpf_fill_work_fn(struct work_struct *work)
{
	struct vmpf_fill_work *fw = container_of(work, struct vmpf_fill_work, work);

	/* The read counts against the VMM's io.max, as its own would. */
	vmpf_charge_io(fw->rst->mm);
	if (fw->owned || !test_and_set_bit_lock(fw->idx, fw->rst->inflight))
		vmpf_restore_fill(fw->rst, fw->idx, 1, true);
	kthread_associate_blkcg(NULL);
	fput(fw->file);
	kfree(fw);
}

static bool vmpf_queue_fill(struct vmpf_restore *rst, struct file *file, u64 idx,
			    bool owned, gfp_t gfp)
{
	struct vmpf_fill_work *fw = kmalloc(sizeof(*fw), gfp | __GFP_NOWARN);

	if (!fw)
		return false;
	INIT_WORK(&fw->work, vmpf_fill_work_fn);
	fw->rst = rst;
	fw->file = get_file(file);
	fw->idx = idx;
	fw->owned = owned;
	queue_work(vmpf_wq, &fw->work);
	return true;
}

/*
 * Read page @idx, or wait for the read someone else started.  0, -EINTR
 * (a fatal signal ended the wait) or -ENOMEM (no page to read into).
 */
static int vmpf_restore_demand(struct vmpf_restore *rst, struct file *file, u64 idx)
{
	u64 start = ktime_get_ns(), ns, us;
	int ret = 0;

	atomic_inc(&rst->demand_waiting);
	if (test_and_set_bit_lock(idx, rst->inflight) ||
	    (rst->read_in_worker && vmpf_queue_fill(rst, file, idx, true, GFP_KERNEL))) {
		ret = wait_var_event_killable(&rst->pages[idx],
					      !test_bit_acquire(idx, rst->inflight));
	} else if (rst->read_in_worker) {
		/* No work item: not the filesystem's locks in here either. */
		vmpf_restore_unlock(rst, idx);
		ret = -ENOMEM;
	} else {
		ret = vmpf_restore_fill(rst, idx, 1, true);
	}
	ns = ktime_get_ns() - start;
	trace_vmpf_fault(idx, ns, ret);
	us = div_u64(ns, NSEC_PER_USEC);
	us = us ? min_t(u64, ilog2(us), VMPF_FAULT_HIST - 1) : 0;
	atomic64_inc(&rst->fault_hist[us]);
	/* The prefetch yields while faults wait. */
	if (atomic_dec_and_test(&rst->demand_waiting))
		vmpf_restore_wake(rst);
	return ret;
}

static vm_fault_t vmpf_restore_fault(struct vm_fault *vmf)
{
	struct vmpf_restore *rst = vmf->vma->vm_private_data;
	u64 idx = vmf->pgoff;
	struct page *page;
	struct file *file;
	int ret;

	if (idx >= rst->total_pages)
		return VM_FAULT_SIGBUS;
	/* Pairs with the release in vmpf_restore_fill(). */
	page = smp_load_acquire(&rst->pages[idx]);
	if (page)
		goto map;
	if (test_bit(idx, rst->bad))
		return VM_FAULT_SIGBUS;

	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT) {
		/* Under way already, or the retried fault reads it. */
		if (!test_bit(idx, rst->inflight))
			vmpf_queue_fill(rst, vmf->vma->vm_file, idx, false, GFP_NOWAIT);
		return VM_FAULT_RETRY;
	}

	/*
	 * Sleeping for the read is safe here: the mm lock (or the VMA lock)
	 * is dropped first and the fault retried, as filemap_fault() does,
	 * and the file reference keeps the session alive meanwhile.
	 */
	if (vmf->flags & FAULT_FLAG_ALLOW_RETRY) {
		file = get_file(vmf->vma->vm_file);
		release_fault_lock(vmf);
		vmpf_restore_demand(rst, file, idx);
		fput(file);
		return VM_FAULT_RETRY;
	}

	/*
	 * A fault that may not retry (get_user_pages() without a way to
	 * unlock: ptrace, /proc/PID/mem) sleeps with the mm lock held, as
	 * filemap_fault() then does; it takes no lock for the read (a worker
	 * reads a regular page file, a block device's read takes none).  A
	 * read that failed for the moment (the storage in an outage, see
	 * storage.c; another task's read interrupted) is tried again until
	 * the page comes in, is refused for good (SIGBUS), or the task is
	 * killed.
	 */
	for (;;) {
		ret = vmpf_restore_demand(rst, vmf->vma->vm_file, idx);
		/* Pairs with the release in vmpf_restore_publish(). */
		page = smp_load_acquire(&rst->pages[idx]);
		if (page)
			goto map;
		if (test_bit(idx, rst->bad) || ret == -EINTR || fatal_signal_pending(current))
			return VM_FAULT_SIGBUS;
		if (ret == -ENOMEM)
			return VM_FAULT_OOM;
		/* Not too hot a loop when io_retries is 0: storage.c sleeps not. */
		schedule_timeout_killable(msecs_to_jiffies(10));
	}
map:
	get_page(page);
	vmf->page = page;
	return 0;
}

const struct vm_operations_struct vmpf_restore_vm_ops = {
	.fault = vmpf_restore_fault,
};
