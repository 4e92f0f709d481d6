// SPDX-License-Identifier: GPL-2.0
/*
 * Direct I/O to the page file.
 *
 * The page file is a block device or a regular file on any filesystem that
 * does direct I/O (local, NFS, OCFS2, GFS2), handed over as a descriptor
 * opened O_RDWR | O_DIRECT.  Writes go through the file's own ->write_iter
 * with a bvec iterator over kernel pages, so the page cache is bypassed and
 * the filesystem or block layer does the rest; vfs_fsync() makes them
 * durable (a cache flush on a block device).  Most requests are
 * synchronous and retried (vmpf_store_rw()); the pre-copy's data writes and
 * some page-table reads are started asynchronously (a kiocb with
 * ->ki_complete: bios in flight on a block device, the filesystem's own
 * asynchronous direct I/O on a file), tried once, and done again
 * synchronously with the retries when they fail.
 */
#include <linux/bvec.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/sched/signal.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>

#include "source.h"

/*
 * Shared storage fails transiently: a multipath or iSCSI session failing
 * over, an NFS server restarting, a flaky link.  A request that fails with
 * such an error is repeated up to io_retries times, 10 ms after the first
 * failure and four times longer after each next one (3.4 s in all by
 * default).  Once a request has failed after all its retries the store is
 * "failing" and later requests get one retry each until one succeeds, so
 * a long outage does not cost 3.4 s a request; such a shortened request
 * that fails returns -EAGAIN, which is not final: a restore leaves the page
 * to be read again (a fault is retried, the prefetch waits and tries the
 * same page again) instead of refusing it for good.  Only an error after
 * the full budget, or one that is not worth retrying, is final.
 * vfs_fsync() is never repeated: after a failed flush a second one may
 * report success for data that was lost, so its error stands.
 */
static unsigned int io_retries = 5;
module_param(io_retries, uint, 0644);
MODULE_PARM_DESC(io_retries, "times a page-file request is repeated after a transient error (default 5, at most 8)");

#define VMPF_RETRY_FIRST_MS	10
#define VMPF_RETRY_CAP_MS	2560
#define VMPF_RETRY_MAX		8

/* Errors that the storage may not give again: worth a new try. */
static bool vmpf_store_retriable(int err)
{
	return err == -EIO || err == -ETIMEDOUT || err == -ENOLINK ||
	       err == -EREMOTEIO || err == -ENXIO;
}

/* @write: the session writes (source) or only reads (restore). */
int vmpf_store_get(struct vmpf_store *st, int fd, bool write)
{
	fmode_t need = FMODE_READ | (write ? FMODE_WRITE : 0);
	struct file *file = fget(fd);
	umode_t mode;

	if (!file)
		return -EBADF;
	mode = file_inode(file)->i_mode;
	if (!S_ISBLK(mode) && !S_ISREG(mode))
		goto err_inval;
	if ((file->f_mode & need) != need)
		goto err_inval;
	if (!(file->f_flags & O_DIRECT))
		goto err_inval;
	/* O_APPEND would put every write at the end of the file. */
	if (write && (file->f_flags & O_APPEND))
		goto err_inval;
	st->file = file;
	atomic64_set(&st->retries, 0);
	atomic_set(&st->failing, 0);
	/* For a block device, the mapping's host is the device's inode. */
	st->size = i_size_read(file->f_mapping->host);
	return 0;

err_inval:
	fput(file);
	return -EINVAL;
}

void vmpf_store_put(struct vmpf_store *st)
{
	if (st->file)
		fput(st->file);
	st->file = NULL;
}

/* One synchronous direct request of @len bytes over @bv, in as many calls as it takes. */
static int vmpf_store_rw_once(struct vmpf_store *st, unsigned int dir,
			      struct bio_vec *bv, unsigned int n, size_t len, loff_t pos)
{
	struct iov_iter iter;
	struct kiocb kiocb;
	ssize_t ret;

	iov_iter_bvec(&iter, dir, bv, n, len);
	while (iov_iter_count(&iter)) {
		init_sync_kiocb(&kiocb, st->file);
		kiocb.ki_pos = pos;
		ret = dir == ITER_SOURCE ?
		      vmpf_iocb_iter_write(st->file, &kiocb, &iter) :
		      vfs_iocb_iter_read(st->file, &kiocb, &iter);
		if (ret < 0)
			return ret;
		if (!ret)
			return -EIO;
		pos += ret;
	}
	return 0;
}

/*
 * Wait @ms before a retry; false if the caller is being killed.  A kthread
 * being stopped waits it out (3.4 s at most in all): kthread_should_stop()
 * would also hold for kthreads that are not ours (a vhost worker faulting
 * on restored memory), whose -EINTR a fault would retry for ever.
 */
static bool vmpf_store_backoff(unsigned int ms)
{
	long left = msecs_to_jiffies(ms);

	while (left > 0) {
		if (fatal_signal_pending(current))
			return false;
		left = schedule_timeout_killable(left);
	}
	return true;
}

/*
 * The request, repeated after transient errors (see io_retries).  Sleeps
 * between tries: callers hold no spinlock; a fault handler may hold the
 * mmap lock (a fault without FAULT_FLAG_ALLOW_RETRY), which only delays
 * that mm's other faults, and a fatal signal ends the wait.
 */
static int vmpf_store_rw(struct vmpf_store *st, unsigned int dir,
			 struct bio_vec *bv, unsigned int n, size_t len, loff_t pos)
{
	bool failing = atomic_read(&st->failing);
	unsigned int tries, i;
	int ret;

	if (pos < 0 || pos + (loff_t)len > st->size)
		return dir == ITER_SOURCE ? -ENOSPC : -EINVAL;
	tries = st->once && dir == ITER_SOURCE ? 0 : failing ? min(READ_ONCE(io_retries), 1U) :
		min(READ_ONCE(io_retries), VMPF_RETRY_MAX);
	for (i = 0;; i++) {
		ret = vmpf_store_rw_once(st, dir, bv, n, len, pos);
		/*
		 * Checked against the size at attach above: a device that now
		 * says the request is past its end (a write's ENOSPC, a read's
		 * end of file) has shrunk or gone away, as a deleted disk does.
		 * Not "too small" and not worth retrying: gone.
		 */
		if ((ret == -ENOSPC || ret == -EIO) &&
		    i_size_read(st->file->f_mapping->host) < pos + (loff_t)len)
			ret = -ENODEV;
		if (!ret) {
			if (atomic_read(&st->failing))
				atomic_set(&st->failing, 0);
			return 0;
		}
		if (!vmpf_store_retriable(ret))
			return ret;
		if (i == tries)
			break;
		atomic64_inc(&st->retries);
		pr_warn_ratelimited("%s %u pages at offset %lld of the page file failed (error %d); retry %u of %u\n",
				    dir == ITER_SOURCE ? "writing" : "reading", n, pos, ret,
				    i + 1, tries);
		if (!vmpf_store_backoff(min(VMPF_RETRY_FIRST_MS << (2 * i), VMPF_RETRY_CAP_MS)))
			return -EINTR;
	}
	atomic_set(&st->failing, 1);
	return failing ? -EAGAIN : ret;
}

/* Fill @bv with @n whole pages. */
static void vmpf_store_bvec(struct bio_vec *bv, struct page **pages, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		bv[i].bv_page = pages[i];
		bv[i].bv_len = PAGE_SIZE;
		bv[i].bv_offset = 0;
	}
}

/* Write @n whole pages to @pos, which is page aligned. */
int vmpf_store_write_pages(struct vmpf_store *st, struct page **pages,
			   unsigned int n, loff_t pos)
{
	struct bio_vec bv[VMPF_IO_PAGES];

	if (n > VMPF_IO_PAGES)
		return -EINVAL;
	vmpf_store_bvec(bv, pages, n);
	return vmpf_store_rw(st, ITER_SOURCE, bv, n, (size_t)n * PAGE_SIZE, pos);
}

/*
 * Write @len bytes at @off of @page to @pos: less than a page, for the
 * lease's sector, which shares its block with the commit record.  @pos
 * and @len must suit the file's direct I/O (EINVAL otherwise).
 */
int vmpf_store_write_part(struct vmpf_store *st, struct page *page, unsigned int off,
			  unsigned int len, loff_t pos)
{
	struct bio_vec bv = { .bv_page = page, .bv_len = len, .bv_offset = off };

	return vmpf_store_rw(st, ITER_SOURCE, &bv, 1, len, pos);
}

/*
 * A page-aligned vmalloc() buffer whose length is a multiple of PAGE_SIZE,
 * written or read VMPF_IO_PAGES pages (256 KiB) a request.
 */
static int vmpf_store_buf(struct vmpf_store *st, unsigned int dir, void *buf,
			  size_t len, loff_t pos)
{
	struct bio_vec bv[VMPF_IO_PAGES];
	size_t done = 0;
	int ret;

	if (!PAGE_ALIGNED(buf) || !PAGE_ALIGNED(len) || !is_vmalloc_addr(buf))
		return -EINVAL;
	while (done < len) {
		unsigned int n = min_t(size_t, (len - done) >> PAGE_SHIFT, VMPF_IO_PAGES);
		unsigned int i;

		for (i = 0; i < n; i++)
			bvec_set_page(&bv[i], vmalloc_to_page(buf + done + i * PAGE_SIZE),
				      PAGE_SIZE, 0);
		ret = vmpf_store_rw(st, dir, bv, n, (size_t)n << PAGE_SHIFT, pos + done);
		if (ret)
			return ret;
		done += (size_t)n << PAGE_SHIFT;
	}
	return 0;
}

int vmpf_store_write_buf(struct vmpf_store *st, const void *buf, size_t len,
			 loff_t pos)
{
	return vmpf_store_buf(st, ITER_SOURCE, (void *)buf, len, pos);
}

/* Read one page from @pos, page aligned, straight into @page. */
int vmpf_store_read_page(struct vmpf_store *st, struct page *page, loff_t pos)
{
	struct bio_vec bv = { .bv_page = page, .bv_len = PAGE_SIZE, .bv_offset = 0 };

	return vmpf_store_rw(st, ITER_DEST, &bv, 1, PAGE_SIZE, pos);
}

/* Read @n whole pages in one request (the prefetch: not on a fault's stack). */
int vmpf_store_read_pages(struct vmpf_store *st, struct page **pages,
			  unsigned int n, loff_t pos)
{
	struct bio_vec bv[VMPF_IO_PAGES];

	if (n > VMPF_IO_PAGES)
		return -EINVAL;
	vmpf_store_bvec(bv, pages, n);
	return vmpf_store_rw(st, ITER_DEST, bv, n, (size_t)n * PAGE_SIZE, pos);
}

/*
 * Read @n pages into @page and the pages after it, which are one
 * physically contiguous run (part of a huge page): one request.
 */
int vmpf_store_read_span(struct vmpf_store *st, struct page *page, unsigned int n,
			 loff_t pos)
{
	struct bio_vec bv = {
		.bv_page = page,
		.bv_len = n * PAGE_SIZE,
		.bv_offset = 0,
	};

	return vmpf_store_rw(st, ITER_DEST, &bv, 1, bv.bv_len, pos);
}

/* Read into a page-aligned vmalloc() buffer, a multiple of PAGE_SIZE long. */
int vmpf_store_read_buf(struct vmpf_store *st, void *buf, size_t len, loff_t pos)
{
	return vmpf_store_buf(st, ITER_DEST, buf, len, pos);
}

/* ->ki_complete(): in any context, an interrupt's too. */
static void vmpf_store_aio_done(struct kiocb *kiocb, long ret)
{
	struct vmpf_aio *a = container_of(kiocb, struct vmpf_aio, kiocb);

	a->ret = ret;
	complete(&a->done);
}

/*
 * Start reading the page at @pos (page aligned) into @page, without waiting:
 * an asynchronous direct read (a bio on a block device, the filesystem's
 * own on a file; one that does not queue completes it at once).  The read
 * holds its own reference to the file, so the caller may let go of @st's
 * lock meanwhile.  Tried once: vmpf_store_read_wait() says how it went,
 * and a caller that wants the retries of vmpf_store_rw() reads again.
 * @a lives until vmpf_store_read_wait() returns.
 */
void vmpf_store_read_start(struct vmpf_store *st, struct vmpf_aio *a,
			   struct page *page, loff_t pos)
{
	ssize_t ret = -EINVAL;

	init_completion(&a->done);
	a->file = get_file(st->file);
	bvec_set_page(&a->bv, page, PAGE_SIZE, 0);
	iov_iter_bvec(&a->iter, ITER_DEST, &a->bv, 1, PAGE_SIZE);
	init_sync_kiocb(&a->kiocb, a->file);
	a->kiocb.ki_pos = pos;
	a->kiocb.ki_complete = vmpf_store_aio_done;	/* not a sync kiocb now */
	if (pos >= 0 && pos + PAGE_SIZE <= st->size)
		ret = vfs_iocb_iter_read(a->file, &a->kiocb, &a->iter);
	if (ret != -EIOCBQUEUED)
		vmpf_store_aio_done(&a->kiocb, ret);
}

/*
 * Wait for the read vmpf_store_read_start() started: 0, or why not.  Not
 * interruptible: the read uses @a, and a direct read ends (the block
 * layer's timeouts bound it).
 */
int vmpf_store_read_wait(struct vmpf_aio *a)
{
	wait_for_completion(&a->done);
	fput(a->file);
	return a->ret == PAGE_SIZE ? 0 : a->ret < 0 ? (int)a->ret : -EIO;
}

/* A write's end: @a->ret says how it went. */
static void vmpf_store_awrite_end(struct vmpf_awrite *a, long ret)
{
	a->ret = ret;
	complete(&a->done);
}

/*
 * ->ki_complete() of a queued write: in any context, an interrupt's too.
 * The write held the file system's freeze protection since it was queued
 * (vmpf_iocb_iter_write_async()); it ends here, as aio's do.
 */
static void vmpf_store_awrite_done(struct kiocb *kiocb, long ret)
{
	struct vmpf_awrite *a = container_of(kiocb, struct vmpf_awrite, kiocb);

	kiocb_end_write(kiocb);
	vmpf_store_awrite_end(a, ret);
}

/*
 * Start writing @n (at most VMPF_AWRITE_PAGES) whole pages to @pos (page
 * aligned), without waiting: an asynchronous direct write (bios on a block
 * device, the file system's own on a file; one that does not queue ends
 * at once).  It holds its own file reference.  Tried once:
 * vmpf_store_write_wait() says how it went; a caller that wants the store's
 * retries writes the same pages again with vmpf_store_write_pages().  The
 * pages and @a must stay untouched until vmpf_store_write_wait() returns.
 */
void vmpf_store_write_start(struct vmpf_store *st, struct vmpf_awrite *a,
			    struct page **pages, unsigned int n, loff_t pos)
{
	ssize_t ret = -EINVAL;

	init_completion(&a->done);
	a->file = get_file(st->file);
	a->len = (size_t)n * PAGE_SIZE;
	if (n > VMPF_AWRITE_PAGES || pos < 0 || pos + (loff_t)a->len > st->size) {
		vmpf_store_awrite_end(a, -ENOSPC);
		return;
	}
	vmpf_store_bvec(a->bv, pages, n);
	iov_iter_bvec(&a->iter, ITER_SOURCE, a->bv, n, a->len);
	init_sync_kiocb(&a->kiocb, a->file);
	a->kiocb.ki_pos = pos;
	a->kiocb.ki_complete = vmpf_store_awrite_done;	/* not a sync kiocb now */
	ret = vmpf_iocb_iter_write_async(a->file, &a->kiocb, &a->iter);
	if (ret != -EIOCBQUEUED)
		vmpf_store_awrite_end(a, ret);
}

/*
 * Wait for the write vmpf_store_write_start() started: 0 if all of it was
 * written, else why not.  Not interruptible: the write uses the pages, and
 * a direct write ends (the block layer's timeouts bound it).
 */
int vmpf_store_write_wait(struct vmpf_awrite *a)
{
	wait_for_completion(&a->done);
	fput(a->file);
	return a->ret == (long)a->len ? 0 : a->ret < 0 ? (int)a->ret : -EIO;
}

int vmpf_store_sync(struct vmpf_store *st)
{
	return vfs_fsync(st->file, 0);
}
