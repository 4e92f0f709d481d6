// SPDX-License-Identifier: GPL-2.0
/*
 * The fault path of a restored VM: a guest page is read from the page file
 * in the kernel, straight into its page of the guest-memory object
 * (guestmem.c), the first time anything touches it: a vCPU through KVM,
 * or one of the VMM's own threads.
 *
 * vmpf_restore_fault() behaves like the page cache's filemap_fault():
 *  - a page already filled is the object's: tmpfs's own fault handler
 *    maps it (swapping it in if it was swapped out);
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
 *
 * Huge sessions (VMPF_RESTORE_HUGE; guestmem.c mounts their tmpfs with
 * huge=within_size) fill whole 2 MiB blocks: a fault on any page of a
 * block fills every page of it (vmpf_restore_fill_block()), and nothing
 * maps a page of the block before that (vmpf_mappable()), because tmpfs
 * may put the block in one huge page, which a PMD then maps whole.  Where
 * tmpfs gives a huge page, the block's data pages are read with one
 * request straight into it; otherwise in 4 KiB pages, runs of data pages
 * with one request each.  The in-flight bit of the block's first page
 * stands for the block, so the rules above hold for blocks.
 */
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/memcontrol.h>
#include <linux/sched/mm.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>

#include "restore.h"
#include "trace.h"

/* Page @idx now holds its data (or is a hole): publish it. */
static void vmpf_restore_set_filled(struct vmpf_restore *rst, u64 idx)
{
	/* The page's contents before the bit: a release. */
	smp_mb__before_atomic();
	set_bit(idx, rst->filled);
}

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

/*
 * Give up ownership of the fill that in-flight bit @idx stands for (a page,
 * or a huge session's block) and wake whoever waits for it.
 */
static void vmpf_restore_unlock(struct vmpf_restore *rst, u64 idx)
{
	clear_bit_unlock(idx, rst->inflight);
	/* Order the cleared bit before wake_up_var()'s waitqueue check. */
	smp_mb__after_atomic();
	wake_up_var(vmpf_inflight_key(rst, idx));
}

/* Every page is in: let go of the page file, tell poll(). */
static void vmpf_restore_complete(struct vmpf_restore *rst)
{
	down_write(&rst->store_sem);
	vmpf_store_put(&rst->store);
	up_write(&rst->store_sem);
	vmpf_lease_finish(rst->lease);
	spin_lock(&rst->lock);
	rst->complete_ns = ktime_get_ns() - rst->open_ns;
	spin_unlock(&rst->lock);
	vmpf_restore_wake(rst);
}

/*
 * Page @idx is done with: release its in-flight bit.  In a huge session
 * the block's bit stands for the page, and vmpf_restore_fill_block()
 * releases that one.
 */
static void vmpf_page_done(struct vmpf_restore *rst, u64 idx)
{
	if (!rst->huge)
		vmpf_restore_unlock(rst, idx);
}

/* Why a page whose fill failed with @err, not transient, is refused. */
static const char *vmpf_fill_why(struct vmpf_restore *rst, int err)
{
	switch (err) {
	case -EBUSY:
		return "mapped before it was restored";
	case -EOPNOTSUPP:
		return "tmpfs gave a huge page (shmem_enabled=force)";
	case -EBADMSG:
		return "its page-table block changed on storage";
	default:
		atomic64_inc(&rst->io_errors);
		return "reading the page table failed";
	}
}

/*
 * Page @idx was read into @page (or @ret says why not): check it against
 * @want, its crc32c, then publish it or mark it bad, and release its
 * in-flight bit.
 */
static void vmpf_restore_publish(struct vmpf_restore *rst, u64 idx,
				 struct page *page, int ret, bool demand, u32 want)
{
	if (!ret) {
		void *p = kmap_local_page(page);
		u32 crc = vmpf_crc32c(p, PAGE_SIZE);

		kunmap_local(p);
		if (crc != want) {
			atomic64_inc(&rst->crc_errors);
			ret = -EBADMSG;
			vmpf_restore_bad(rst, idx, ret, "crc32c mismatch");
		}
	} else if (ret && !vmpf_transient(ret) && !test_bit(idx, rst->bad)) {
		/* Interrupted reads leave the page to be tried again. */
		atomic64_inc(&rst->io_errors);
		vmpf_restore_bad(rst, idx, ret, "reading the page file failed");
	}

	trace_vmpf_fill(idx, demand, VMPF_PAGE_DATA, ret);
	if (!ret) {
		/*
		 * Dirty, so that reclaim writes it to swap rather than drop
		 * it as a clean tmpfs page; its lock, against truncation.
		 */
		set_page_dirty_lock(page);
		atomic64_inc(demand ? &rst->demand_pages : &rst->prefetched);
		vmpf_restore_set_filled(rst, idx);
	}
	put_page(page);
	/*
	 * A page not filled has no page in the object: whatever a failed
	 * read left in it goes (and a page refused for good takes no memory).
	 */
	if (ret)
		shmem_truncate_range(file_inode(rst->shm), idx << PAGE_SHIFT,
				     ((idx + 1) << PAGE_SHIFT) - 1);
	vmpf_page_done(rst, idx);
	if (!ret && atomic64_inc_return(&rst->resident) == rst->total_pages)
		vmpf_restore_complete(rst);
}

/*
 * Page @idx of guest memory, zeroed if new, with a reference: charged to
 * the VMM's memory cgroup whoever faults (a KVM async-fault worker too).
 * The prefetch does not insist (__GFP_NORETRY): under the VMM's memory
 * limit it leaves the page to a fault rather than push the VMM towards its
 * OOM.  NULL if no memory now.  In a huge session it may be a page of a
 * huge page (tmpfs falls back to 4 KiB pages by itself).
 */
static struct page *vmpf_restore_get(struct vmpf_restore *rst, u64 idx, bool demand)
{
	struct address_space *mapping = rst->shm->f_mapping;
	gfp_t gfp = mapping_gfp_mask(mapping);
	struct mem_cgroup *old;
	struct page *page;

	if (!demand)
		gfp |= __GFP_NORETRY | __GFP_NOWARN;
	old = set_active_memcg(vmpf_restore_memcg(rst));
	page = shmem_read_mapping_page_gfp(mapping, idx, gfp);
	set_active_memcg(old);
	return IS_ERR(page) ? NULL : page;
}

/*
 * vmpf_restore_get() for a fill in 4 KiB pages.  ERR_PTR(-EAGAIN): a huge
 * session got a huge page after all (a hole emptied the block meanwhile),
 * which vmpf_restore_fill_block() fills whole.
 */
static struct page *vmpf_restore_alloc(struct vmpf_restore *rst, u64 idx, bool demand)
{
	struct page *page = vmpf_restore_get(rst, idx, demand);

	if (!page)
		return NULL;
	if (PageTransCompound(page) && rst->huge) {
		put_page(page);
		return ERR_PTR(-EAGAIN);
	}
	/*
	 * guestmem.c: huge=never, unless shmem_enabled=force overrides it:
	 * the huge page must go (one of its pages mapped would map all).
	 * And a page not filled yet is mapped nowhere, unless something got
	 * past fault.c (guestmem.c closes the ways it knows): never fill a
	 * page someone may be using.
	 */
	if (PageTransCompound(page) || page_mapped(page)) {
		bool huge = PageTransCompound(page);
		loff_t start = (loff_t)(idx & ~(huge ? HPAGE_PMD_NR - 1 : 0)) << PAGE_SHIFT;

		put_page(page);
		if (huge)
			shmem_truncate_range(file_inode(rst->shm), start,
					     start + HPAGE_PMD_SIZE - 1);
		return ERR_PTR(huge ? -EOPNOTSUPP : -EBUSY);
	}
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
 * Page @idx, which the caller owns, is a zero page or was never written:
 * a zero page needs neither I/O nor memory, as a hole of the object reads
 * as zero (and no page is there: a failed fill leaves none); the other is
 * refused.
 */
static int vmpf_restore_fill_nodata(struct vmpf_restore *rst, u64 idx, bool demand)
{
	u8 state = vmpf_page_state(rst, idx);
	bool done = false;

	if (!vmpf_filled(rst, idx) && !test_bit(idx, rst->bad)) {
		if (state == VMPF_PAGE_ZERO) {
			trace_vmpf_fill(idx, demand, state, 0);
			atomic64_inc(&rst->zero_pages);
			atomic64_inc(demand ? &rst->demand_pages : &rst->prefetched);
			vmpf_restore_set_filled(rst, idx);
			done = atomic64_inc_return(&rst->resident) == rst->total_pages;
		} else {
			vmpf_restore_bad(rst, idx, -ENODATA, "never written by the source");
		}
	}
	vmpf_page_done(rst, idx);
	if (done)
		vmpf_restore_complete(rst);
	return 0;
}

/*
 * A demand fault's data page @idx, which the caller owns: its table block,
 * if not cached, is read while the page is (both requests in flight), so a
 * fault pays about one read's time, not two.  Returns as vmpf_fill_pages().
 */
static int vmpf_fill_one(struct vmpf_restore *rst, u64 idx)
{
	struct vmpf_table_read tr;
	struct page *page;
	int ret, table, err;
	u32 want;

	table = vmpf_table_crc_begin(rst, idx, &want, &tr);
	if (table < 0) {
		err = table;
		goto fail;
	}
	page = vmpf_restore_alloc(rst, idx, true);
	err = !page ? -ENOMEM : PTR_ERR_OR_ZERO(page);
	if (err) {
		if (table)
			vmpf_table_crc_end(rst, idx, &want, &tr);
		goto fail;
	}
	ret = vmpf_restore_read(rst, &page, idx, 1);
	if (table) {
		err = vmpf_table_crc_end(rst, idx, &want, &tr);
		if (err && !ret) {
			/* Refused here, or left for a later try: publish() sees it. */
			if (!vmpf_transient(err))
				vmpf_restore_bad(rst, idx, err, vmpf_fill_why(rst, err));
			ret = err;
		}
	}
	vmpf_restore_publish(rst, idx, page, ret, true, want);
	return 0;

fail:
	if (!vmpf_transient(err))
		vmpf_restore_bad(rst, idx, err, vmpf_fill_why(rst, err));
	vmpf_page_done(rst, idx);
	return err == -ENOMEM ? -ENOMEM : 0;
}

/*
 * Bring pages @idx .. @idx + @n - 1 in, in 4 KiB pages.  The caller owns
 * their in-flight bits; for @n > 1 they are all data pages, read in one
 * request.  Each is published or marked bad, and its bit released.  May
 * sleep; holds no lock of its own across the read.  -ENOMEM if not even
 * page @idx could be allocated (left for a later try), else 0.
 */
static int vmpf_fill_pages(struct vmpf_restore *rst, u64 idx, unsigned int n,
			   bool demand)
{
	struct page *pages[VMPF_IO_PAGES];
	u32 want[VMPF_IO_PAGES];
	unsigned int i, got = 0;
	int ret = 0, err = 0;

	if (!vmpf_page_data(rst, idx))
		return vmpf_restore_fill_nodata(rst, idx, demand);
	if (demand && n == 1 && !vmpf_filled(rst, idx) && !test_bit(idx, rst->bad))
		return vmpf_fill_one(rst, idx);
	for (i = 0; i < n; i++) {
		/*
		 * Whoever looked before taking the bit may be late: the page may
		 * have come in (or gone bad) meanwhile.  With the bit held it
		 * cannot change.
		 */
		if (vmpf_filled(rst, idx + i) || test_bit(idx + i, rst->bad) ||
		    !vmpf_page_data(rst, idx + i))
			break;
		/* Its crc32c first: a table read that fails costs no page. */
		err = vmpf_table_page_crc(rst, idx + i, &want[i]);
		if (!err) {
			pages[i] = vmpf_restore_alloc(rst, idx + i, demand);
			err = !pages[i] ? -ENOMEM : PTR_ERR_OR_ZERO(pages[i]);
		}
		if (err)
			break;
		got++;
	}
	/*
	 * A failure on the first page refuses it unless it is transient
	 * (-EAGAIN: a huge session got a huge page after all, which
	 * vmpf_restore_fill_block() fills whole); a later page's ends the
	 * run before it, for a later try.
	 */
	if (!got && err && !vmpf_transient(err))
		vmpf_restore_bad(rst, idx, err, vmpf_fill_why(rst, err));
	/* Release what we will not read now; not bad, a later try may do. */
	for (i = got; i < n; i++)
		vmpf_page_done(rst, idx + i);
	if (!got)
		return err == -ENOMEM ? -ENOMEM : 0;

	ret = vmpf_restore_read(rst, pages, idx, got);
	if (ret && got > 1 && !vmpf_transient(ret)) {
		/* One unreadable sector must not cost the whole run: page by page. */
		for (i = 0; i < got; i++)
			vmpf_restore_publish(rst, idx + i, pages[i],
					     vmpf_restore_read(rst, &pages[i], idx + i, 1),
					     demand, want[i]);
		return 0;
	}
	for (i = 0; i < got; i++)
		vmpf_restore_publish(rst, idx + i, pages[i], ret, demand, want[i]);
	return 0;
}

/*
 * Pages @first .. @end - 1 of a huge session's block could not go in as
 * the huge page they were to be: every page of it is refused (SIGBUS), as
 * a PMD would map them all.  Pages already restored too (zero pages and
 * holes, which have no memory): tmpfs would give any of them a huge page
 * over the whole block again, and no 4 KiB page can be had in an empty
 * block.  They stay counted as resident; a refused page keeps the restore
 * from completing anyway.  @idx is the page to blame, or ~0 when none is.
 */
static void vmpf_restore_bad_block(struct vmpf_restore *rst, u64 first, u64 end,
				   u64 idx, int err, const char *why)
{
	u64 i, n = 0;

	for (i = first; i < end; i++)
		if (!test_and_set_bit(i, rst->bad))
			n++;
	atomic64_add(n, &rst->bad_pages);
	if (idx == ~0ULL)
		idx = first;
	spin_lock(&rst->lock);
	if (rst->first_bad == ~0ULL) {
		rst->first_bad = idx;
		snprintf(rst->message, sizeof(rst->message),
			 "page %llu: %s (error %d); its huge page, pages %llu-%llu, gets SIGBUS",
			 idx, why, err, first, end - 1);
	}
	spin_unlock(&rst->lock);
	pr_err_ratelimited("restore: page %llu: %s (error %d); its huge page, pages %llu-%llu, not mapped\n",
			   idx, why, err, first, end - 1);
	vmpf_restore_wake(rst);
}

/*
 * Put @folio back and take it out of guest memory: a large page the fill
 * just got, with no page of it restored, or one that holds only zero pages
 * and holes of a refused block.
 */
static void vmpf_drop_folio(struct vmpf_restore *rst, struct folio *folio)
{
	loff_t start = folio_pos(folio), len = folio_size(folio);

	folio_put(folio);
	shmem_truncate_range(file_inode(rst->shm), start, start + len - 1);
}

/*
 * Fill the block @first .. @end - 1 of a huge session into @page's huge
 * page, which tmpfs just gave (so no other page of the block has memory:
 * the pages already filled are zero pages or holes).  The data pages are
 * read with one request, from the first to the last; the pages in between
 * that are not data are cleared after it.  Consumes the reference.
 */
static void vmpf_fill_huge(struct vmpf_restore *rst, u64 first, u64 end,
			   struct page *page, bool demand)
{
	struct folio *folio = page_folio(page);
	u64 idx, lo = end, hi = first, bad = ~0ULL, todo = 0;
	const char *why = NULL;
	int ret = 0;

	/*
	 * A PMD-sized page at the block's start (the partial last block too,
	 * with shmem_enabled=force: pages past the object's end are never
	 * mapped).  Another size (a later kernel's large pages) is refused.
	 */
	if (folio_nr_pages(folio) != VMPF_HUGE_NR || folio->index != first) {
		why = "tmpfs gave a large page of another size";
		ret = -EOPNOTSUPP;
		goto refuse;
	}
	if (folio_mapped(folio)) {
		/* Someone got past fault.c: never fill what may be in use. */
		folio_put(folio);
		vmpf_restore_bad_block(rst, first, end, ~0ULL, -EBUSY,
				       "mapped before it was restored");
		return;
	}
	for (idx = first; idx < end; idx++) {
		if (vmpf_filled(rst, idx) || test_bit(idx, rst->bad) ||
		    !vmpf_page_data(rst, idx))
			continue;
		lo = min(lo, idx);
		hi = idx;
	}
	if (lo < end) {
		u32 want;

		/*
		 * The block's crcs first (one table block: the cache keeps
		 * them for the checks below): a table read that fails costs
		 * no 2 MiB read.
		 */
		ret = vmpf_table_page_crc(rst, lo, &want);
		if (vmpf_transient(ret)) {
			vmpf_drop_folio(rst, folio);
			return;
		}
		if (ret) {
			bad = lo;
			why = vmpf_fill_why(rst, ret);
			goto refuse;
		}
		/* store_sem: the page file is not let go of during the read. */
		down_read(&rst->store_sem);
		ret = !rst->store.file ? -EIO :
		      vmpf_store_read_span(&rst->store, folio_page(folio, lo - first),
					   hi - lo + 1, rst->data_off + lo * VMPF_PF_PAGE_SIZE);
		up_read(&rst->store_sem);
		if (vmpf_transient(ret)) {
			/* Left for a later try, without its memory. */
			vmpf_drop_folio(rst, folio);
			return;
		}
		if (ret) {
			atomic64_inc(&rst->io_errors);
			why = "reading the page file failed";
			goto refuse;
		}
	}
	for (idx = first; idx < end; idx++) {
		struct page *sub = folio_page(folio, idx - first);
		u8 state = vmpf_page_state(rst, idx);
		u32 crc, want;
		void *p;

		if (test_bit(idx, rst->bad)) {
			bad = idx;
			ret = -EIO;
			why = "it holds a page refused before";
			break;
		}
		if (vmpf_filled(rst, idx) || state == VMPF_PAGE_ZERO) {
			/* The read went over it: zero, as a hole or zero page is. */
			if (idx >= lo && idx <= hi)
				clear_highpage(sub);
			continue;
		}
		if (state != VMPF_PAGE_DATA) {
			bad = idx;
			ret = -ENODATA;
			why = "never written by the source";
			break;
		}
		ret = vmpf_table_page_crc(rst, idx, &want);
		if (vmpf_transient(ret)) {
			/* Left for a later try, without its memory. */
			vmpf_drop_folio(rst, folio);
			return;
		}
		if (ret) {
			bad = idx;
			why = vmpf_fill_why(rst, ret);
			break;
		}
		p = kmap_local_page(sub);
		crc = vmpf_crc32c(p, PAGE_SIZE);
		kunmap_local(p);
		if (crc != want) {
			atomic64_inc(&rst->crc_errors);
			bad = idx;
			ret = -EBADMSG;
			why = "crc32c mismatch";
			break;
		}
	}
	if (why)
		goto refuse;

	/* Dirty, so that reclaim swaps it rather than drop it: see above. */
	set_page_dirty_lock(page);
	folio_put(folio);
	for (idx = first; idx < end; idx++) {
		if (vmpf_filled(rst, idx))
			continue;
		if (vmpf_page_state(rst, idx) == VMPF_PAGE_ZERO)
			atomic64_inc(&rst->zero_pages);
		atomic64_inc(demand ? &rst->demand_pages : &rst->prefetched);
		vmpf_restore_set_filled(rst, idx);
		todo++;
	}
	trace_vmpf_fill(first, demand, VMPF_PAGE_DATA, 0);
	atomic64_inc(&rst->huge_fills);
	atomic64_inc(&vmpf_counters.huge_fills);
	if (atomic64_add_return(todo, &rst->resident) == rst->total_pages)
		vmpf_restore_complete(rst);
	return;

refuse:
	vmpf_drop_folio(rst, folio);
	vmpf_restore_bad_block(rst, first, end, bad, ret, why);
}

/*
 * Fill the 2 MiB block of a huge session that starts at page @first: every
 * page of it ends filled or bad (unless memory or the storage fails for
 * the moment), then the block may be mapped.  The caller owns the
 * in-flight bit of @first; it is released here.  -ENOMEM as for
 * vmpf_fill_pages().
 */
static int vmpf_restore_fill_block(struct vmpf_restore *rst, u64 first, bool demand)
{
	u64 end = min_t(u64, first + VMPF_HUGE_NR, rst->total_pages), idx;
	unsigned int n;
	struct page *page;
	int ret = 0;

	for (idx = first; idx < end; idx += n) {
		n = 1;
		if (vmpf_filled(rst, idx) || test_bit(idx, rst->bad))
			continue;
		if (!vmpf_page_data(rst, idx)) {
			vmpf_restore_fill_nodata(rst, idx, demand);
			continue;
		}
		page = vmpf_restore_get(rst, idx, demand);
		if (!page) {
			ret = -ENOMEM;
			break;
		}
		if (PageTransCompound(page)) {
			vmpf_fill_huge(rst, first, end, page, demand);
			break;
		}
		put_page(page);
		while (n < VMPF_IO_PAGES && idx + n < end &&
		       vmpf_page_data(rst, idx + n) &&
		       !vmpf_filled(rst, idx + n) && !test_bit(idx + n, rst->bad))
			n++;
		ret = vmpf_fill_pages(rst, idx, n, demand);
		if (ret)
			break;
	}

	/* Settled: every page filled or bad.  Then the block may be mapped. */
	for (idx = first; idx < end; idx++)
		if (!vmpf_filled(rst, idx) && !test_bit(idx, rst->bad))
			break;
	if (idx == end) {
		/* The pages' contents and bits before the block's: a release. */
		smp_mb__before_atomic();
		set_bit(first / VMPF_HUGE_NR, rst->block_done);
	}
	vmpf_restore_unlock(rst, first);
	return ret;
}

/*
 * Bring in what in-flight bit @idx stands for, which the caller owns: pages
 * @idx .. @idx + @n - 1 (see vmpf_fill_pages()), or in a huge session the
 * block that starts at @idx (@n is ignored).  Releases the bit.
 */
int vmpf_restore_fill(struct vmpf_restore *rst, u64 idx, unsigned int n,
		      bool demand)
{
	if (rst->huge)
		return vmpf_restore_fill_block(rst, idx, demand);
	return vmpf_fill_pages(rst, idx, n, demand);
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
	vmpf_charge_io(vmpf_restore_mm(fw->rst));
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
 * Read page @idx (a huge session: its block), or wait for the read someone
 * else started.  0, -EINTR (a fatal signal ended the wait) or -ENOMEM (no
 * page to read into).
 */
static int vmpf_restore_demand(struct vmpf_restore *rst, struct file *file, u64 idx)
{
	u64 start = ktime_get_ns(), ns, us, l = vmpf_lock_idx(rst, idx);
	int ret = 0;

	atomic_inc(&rst->demand_waiting);
	if (test_and_set_bit_lock(l, rst->inflight) ||
	    (rst->read_in_worker && vmpf_queue_fill(rst, file, l, true, GFP_KERNEL))) {
		ret = wait_var_event_killable(vmpf_inflight_key(rst, l),
					      !test_bit_acquire(l, rst->inflight));
	} else if (rst->read_in_worker) {
		/* No work item: not the filesystem's locks in here either. */
		vmpf_restore_unlock(rst, l);
		ret = -ENOMEM;
	} else {
		ret = vmpf_restore_fill(rst, l, 1, true);
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

/* A page of page @idx's block is bad (a huge session). */
static bool vmpf_block_bad(struct vmpf_restore *rst, u64 idx)
{
	u64 first = vmpf_lock_idx(rst, idx);
	u64 end = min_t(u64, first + VMPF_HUGE_NR, rst->total_pages);

	return find_next_bit(rst->bad, end, first) < end;
}

static vm_fault_t vmpf_restore_fault(struct vm_fault *vmf)
{
	struct vmpf_restore *rst = vmf->vma->vm_private_data;
	u64 idx = vmf->pgoff;
	vm_fault_t vr;
	int ret;

	if (idx >= rst->total_pages)
		return VM_FAULT_SIGBUS;
	if (test_bit(idx, rst->bad))
		return VM_FAULT_SIGBUS;
	if (vmpf_mappable(rst, idx))
		goto map;

	if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT) {
		u64 l = vmpf_lock_idx(rst, idx);

		/* Under way already, or the retried fault reads it. */
		if (!test_bit(l, rst->inflight))
			vmpf_queue_fill(rst, rst->file, l, false, GFP_NOWAIT);
		return VM_FAULT_RETRY;
	}

	/*
	 * A retried fault that still finds no page tries once with the lock
	 * held, so that a page that cannot get memory (a memory cgroup at
	 * its limit, tmpfs's commit limit) ends in VM_FAULT_OOM instead of
	 * retries for ever; a read failing for the moment (a storage outage)
	 * goes on below, without the lock.
	 */
	if ((vmf->flags & FAULT_FLAG_ALLOW_RETRY) && (vmf->flags & FAULT_FLAG_TRIED)) {
		ret = vmpf_restore_demand(rst, rst->file, idx);
		if (test_bit(idx, rst->bad))
			return VM_FAULT_SIGBUS;
		if (vmpf_mappable(rst, idx))
			goto map;
		if (ret == -ENOMEM)
			return VM_FAULT_OOM;
	}

	/*
	 * Sleeping for the read is safe here: the mm lock (or the VMA lock)
	 * is dropped first and the fault retried, as filemap_fault() does,
	 * and the file reference keeps the session alive meanwhile.
	 */
	if (vmf->flags & FAULT_FLAG_ALLOW_RETRY) {
		struct file *file = get_file(rst->file);

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
	 * killed.  The VMA holds a reference to the session's file.
	 */
	for (;;) {
		ret = vmpf_restore_demand(rst, rst->file, idx);
		if (test_bit(idx, rst->bad))
			return VM_FAULT_SIGBUS;
		if (vmpf_mappable(rst, idx))
			goto map;
		if (ret == -EINTR || fatal_signal_pending(current))
			return VM_FAULT_SIGBUS;
		if (ret == -ENOMEM)
			return VM_FAULT_OOM;
		/* Not too hot a loop when io_retries is 0: storage.c sleeps not. */
		schedule_timeout_killable(msecs_to_jiffies(10));
	}
map:
	/* The object's page now: tmpfs maps it, swaps it in if need be. */
	vr = rst->shm_fault(vmf);
	/*
	 * A huge page (shmem_enabled=force switched on during the restore)
	 * would be mapped whole, pages not restored yet with it: refused.  In
	 * a huge session every page of the block is restored or bad by now;
	 * one that is bad must not be mapped with the others.
	 */
	if (!(vr & VM_FAULT_ERROR) && vmf->page && PageTransCompound(vmf->page) &&
	    (rst->huge ? vmpf_block_bad(rst, idx) :
	     atomic64_read(&rst->resident) < rst->total_pages)) {
		pr_warn_once("restore: tmpfs gave a huge page over pages not restored: refused\n");
		if (vr & VM_FAULT_LOCKED)
			unlock_page(vmf->page);
		/*
		 * A huge session's block with a refused page, in 4 KiB pages
		 * until holes emptied it: this huge page holds only zeros
		 * (holes, zero pages), and must not stay charged.
		 */
		if (rst->huge)
			vmpf_drop_folio(rst, page_folio(vmf->page));
		else
			put_page(vmf->page);
		return VM_FAULT_SIGBUS;
	}
	return vr;
}

/*
 * Fault-around, once every page is restored: then every page of the
 * object is the object's, and tmpfs's own does it.  Before, a page being
 * filled is in the page cache and must not be mapped: nothing is.
 */
static vm_fault_t vmpf_restore_map_pages(struct vm_fault *vmf, pgoff_t start,
					 pgoff_t end)
{
	struct vmpf_restore *rst = vmf->vma->vm_private_data;

	if (atomic64_read(&rst->resident) < rst->total_pages)
		return 0;
	return filemap_map_pages(vmf, start, end);
}

/* A VMA holds a reference to the session's descriptor: see restore.h. */
static void vmpf_restore_vm_open(struct vm_area_struct *vma)
{
	struct vmpf_restore *rst = vma->vm_private_data;

	get_file(rst->file);
}

static void vmpf_restore_vm_close(struct vm_area_struct *vma)
{
	struct vmpf_restore *rst = vma->vm_private_data;

	fput(rst->file);
}

/* Every first touch of a page comes to vmpf_restore_fault(). */
const struct vm_operations_struct vmpf_restore_vm_ops = {
	.open = vmpf_restore_vm_open,
	.close = vmpf_restore_vm_close,
	.fault = vmpf_restore_fault,
	.map_pages = vmpf_restore_map_pages,
};

/*
 * Map guest RAM: the session's guest-memory object (guestmem.c), with
 * this file's fault handler in front of tmpfs's.  Whoever maps it (the
 * session's descriptor, its node, the object itself through map_files).
 */
int vmpf_restore_mmap(struct vmpf_restore *rst, struct vm_area_struct *vma)
{
	u64 pages = vma_pages(vma);
	int ret;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= rst->total_pages || pages > rst->total_pages - vma->vm_pgoff)
		return -EINVAL;
	/*
	 * Guest RAM is fixed in size; a child process gets no copy of it, and
	 * a core dump of the VMM does not read the whole image.  No huge
	 * mapping while pages are filled one by one (a huge session fills
	 * blocks whole: a PMD may map them, and 6.12 maps none in a
	 * VM_NOHUGEPAGE mapping).  VM_DONTEXPAND (a
	 * VM_SPECIAL flag) also keeps khugepaged and MADV_COLLAPSE away: a
	 * collapse fills holes not restored yet with zeros, and
	 * MADV_COLLAPSE ignores the mount's huge=never and, after QEMU's
	 * MADV_HUGEPAGE, VM_NOHUGEPAGE too.  It makes mlock() skip the
	 * mapping (QEMU's mem-lock=on does not lock restored memory).
	 */
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTCOPY | VM_DONTDUMP |
		     (rst->huge ? 0 : VM_NOHUGEPAGE));
	ret = vmpf_guestmem_mmap(rst, vma);
	if (ret)
		return ret;
	vma->vm_ops = &vmpf_restore_vm_ops;
	vma->vm_private_data = rst;
	/* The VMA's reference to the session (vmpf_restore_vm_close()). */
	get_file(rst->file);

	/* The first other process to map guest RAM is the VMM (restore.h). */
	if (vma->vm_mm != rst->mm && !READ_ONCE(rst->map_mm)) {
		spin_lock(&rst->lock);
		if (!rst->map_mm) {
			rst->map_memcg = get_mem_cgroup_from_mm(vma->vm_mm);
			mmgrab(vma->vm_mm);
			/* Pairs with the acquire in vmpf_restore_mm(). */
			smp_store_release(&rst->map_mm, vma->vm_mm);
		}
		spin_unlock(&rst->lock);
	}
	return 0;
}

/*
 * A hole is being punched over bytes @off .. @off + @len - 1 of guest
 * memory (MADV_REMOVE, fallocate(); guestmem.c forwards it to tmpfs after
 * us): each whole page in it counts as restored from now on and is never
 * read from the page file, so it reads as zero, as the hole says.  A fill
 * under way is waited for first (its page then goes with the hole).  A
 * hole that cuts a page not yet restored is refused: tmpfs would zero part
 * of a page that the fill then overwrites whole.  Called under
 * vmpf_shm_sem (read): the session lives.
 */
int vmpf_restore_discard(struct vmpf_restore *rst, loff_t off, loff_t len)
{
	u64 first, end, idx, size = rst->total_pages << PAGE_SHIFT;
	int ret;

	if (off < 0 || len <= 0 || off >= size)
		return 0;
	len = min_t(u64, len, size - off);
	first = off >> PAGE_SHIFT;
	end = (off + len + PAGE_SIZE - 1) >> PAGE_SHIFT;
	if (((off & ~PAGE_MASK) && !vmpf_filled(rst, first)) ||
	    (((off + len) & ~PAGE_MASK) && !vmpf_filled(rst, end - 1)))
		return -EINVAL;

	for (idx = first; idx < end; idx++) {
		u64 l = vmpf_lock_idx(rst, idx);

		if (!(idx % 4096))
			cond_resched();
		if (vmpf_filled(rst, idx))
			continue;
		ret = wait_var_event_killable(vmpf_inflight_key(rst, l),
					      !test_and_set_bit_lock(l, rst->inflight));
		if (ret)
			return ret;
		if (!vmpf_filled(rst, idx)) {
			if (test_and_clear_bit(idx, rst->bad))
				atomic64_dec(&rst->bad_pages);
			atomic64_inc(&rst->discarded);
			vmpf_restore_set_filled(rst, idx);
			trace_vmpf_fill(idx, false, VMPF_PAGE_ZERO, -ENOENT);
			if (atomic64_inc_return(&rst->resident) == rst->total_pages)
				vmpf_restore_complete(rst);
		}
		vmpf_restore_unlock(rst, l);
	}
	return 0;
}
