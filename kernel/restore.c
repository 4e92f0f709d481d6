// SPDX-License-Identifier: GPL-2.0
/*
 * Restore sessions: open a committed page file, describe it, steer the
 * prefetch, report, and the session's lifetime.  Mapping guest RAM and the
 * fault path are in fault.c, guest memory in guestmem.c, the prefetch in
 * prefetch.c.
 */
#include <linux/file.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "restore.h"

/* Table and device state: vmalloc()ed (read page by page), zeroed. */
#define VMPF_RST_GFP	(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)

static struct vmpf_restore *vmpf_restore_get(struct vmpf_file *vf)
{
	/* Pairs with the release in vmpf_restore_open(). */
	return smp_load_acquire(&vf->rst);
}

static void vmpf_rst_account(struct vmpf_restore *rst, size_t bytes)
{
	rst->mem_bytes += bytes;
	atomic64_add(bytes, &vmpf_counters.mem_bytes);
}

static void vmpf_restore_free(struct vmpf_restore *rst)
{
	vmpf_lease_release(rst->lease);
	vmpf_guestmem_put(rst);
	kvfree(rst->filled);
	kvfree(rst->inflight);
	kvfree(rst->bad);
	kvfree(rst->block_done);
	vmpf_table_free(rst);
	vfree(rst->state);
	vmpf_store_put(&rst->store);
	if (rst->memcg)
		mem_cgroup_put(rst->memcg);
	if (rst->mm)
		mmdrop(rst->mm);
	if (rst->map_memcg)
		mem_cgroup_put(rst->map_memcg);
	if (rst->map_mm)
		mmdrop(rst->map_mm);
	atomic64_sub(rst->mem_bytes, &vmpf_counters.mem_bytes);
	kfree(rst);
}

/* Read and check superblock and commit record. */
static int vmpf_restore_load_header(struct vmpf_restore *rst, struct vmpf_pf_commit *commit)
{
	struct page *page;
	void *p;
	int ret;

	page = alloc_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	ret = vmpf_store_read_page(&rst->store, page, 0);
	if (!ret) {
		p = kmap_local_page(page);
		memcpy(&rst->sb, p, sizeof(rst->sb));
		kunmap_local(p);
		ret = vmpf_pf_check_super(&rst->sb, rst->store.size);
	}
	if (!ret)
		ret = vmpf_store_read_page(&rst->store, page, VMPF_PF_BLOCK);
	if (!ret) {
		p = kmap_local_page(page);
		memcpy(commit, p, sizeof(*commit));
		kunmap_local(p);
		ret = vmpf_pf_check_commit(commit, &rst->sb);
	}
	__free_page(page);
	return ret;
}

/* Read and check the page table and the device state. */
static int vmpf_restore_load(struct vmpf_restore *rst, const struct vmpf_pf_commit *commit)
{
	size_t table_len, bytes = 0;
	int ret;

	rst->total_pages = le64_to_cpu(rst->sb.total_pages);
	rst->data_off = le64_to_cpu(rst->sb.data_off);
	table_len = round_up(rst->total_pages * sizeof(struct vmpf_pf_page),
			     VMPF_PF_BLOCK);
	/* Sized by the file: charged to the caller. */
	ret = vmpf_table_load(rst, le64_to_cpu(rst->sb.table_off), table_len,
			      le32_to_cpu(commit->table_crc),
			      le64_to_cpu(commit->rounds), &bytes);
	vmpf_rst_account(rst, bytes);
	if (ret)
		return ret;

	rst->state_len = le64_to_cpu(commit->state_len);
	rst->state = __vmalloc(PAGE_ALIGN(max_t(size_t, rst->state_len, 1)), VMPF_RST_GFP);
	if (!rst->state)
		return -ENOMEM;
	vmpf_rst_account(rst, PAGE_ALIGN(max_t(size_t, rst->state_len, 1)));
	ret = vmpf_store_read_buf(&rst->store, rst->state,
				  PAGE_ALIGN(max_t(size_t, rst->state_len, 1)),
				  le64_to_cpu(rst->sb.state_off));
	if (ret)
		return ret;
	if (vmpf_crc32c(rst->state, rst->state_len) != le32_to_cpu(commit->state_crc))
		return -EBADMSG;
	return 0;
}

/* Start the prefetch thread; the descriptor's mutex is held. */
static int vmpf_restore_start_prefetch(struct vmpf_restore *rst)
{
	struct task_struct *t;

	if (rst->prefetcher)
		return 0;
	t = kthread_create(vmpf_prefetch_thread, rst, "vmpf-pf/%d",
			   task_tgid_nr(current));
	if (IS_ERR(t))
		return PTR_ERR(t);
	get_task_struct(t);
	/* Read locklessly by the status ioctl. */
	WRITE_ONCE(rst->prefetcher, t);
	wake_up_process(t);
	return 0;
}

long vmpf_restore_open(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_pf_commit commit;
	struct vmpf_restore_open o;
	struct vmpf_restore *rst;
	long ret;

	if (copy_from_user(&o, uarg, sizeof(o)))
		return -EFAULT;
	if ((o.flags & ~VMPF_RESTORE_FLAGS_ALL) || o.reserved[0] || o.reserved[1] ||
	    o.reserved[2] || o.target_fd > INT_MAX)
		return -EINVAL;
	if ((o.flags & VMPF_RESTORE_HUGE) && !vmpf_guestmem_huge())
		return -EOPNOTSUPP;
	/* Pairs with the release in vmpf_source_attach(). */
	if (smp_load_acquire(&vf->src) || vmpf_restore_get(vf))
		return -EBUSY;

	rst = kzalloc(sizeof(*rst), GFP_KERNEL_ACCOUNT);
	if (!rst)
		return -ENOMEM;
	vmpf_rst_account(rst, sizeof(*rst));
	init_rwsem(&rst->store_sem);
	init_waitqueue_head(&rst->wq);
	rst->poll_wq = &vf->wq;
	spin_lock_init(&rst->lock);
	rst->first_bad = ~0ULL;
	rst->open_ns = ktime_get_ns();
	rst->sequential = o.flags & VMPF_RESTORE_SEQUENTIAL;
	rst->prefetch_rate = o.prefetch_rate;
	rst->prefetch_run = !(o.flags & VMPF_RESTORE_NO_PREFETCH);
	rst->huge = o.flags & VMPF_RESTORE_HUGE;

	ret = vmpf_store_get(&rst->store, o.target_fd, false);
	if (ret)
		goto err;
	ret = vmpf_restore_load_header(rst, &commit);
	if (ret)
		goto err;
	/*
	 * The lease (lease.c) may watch another owner's for its period:
	 * before allocating.  Its confirmation waits a little: the table
	 * loads meanwhile.
	 */
	if (!(o.flags & VMPF_RESTORE_NO_LEASE))
		ret = vmpf_lease_take(&rst->lease, &rst->store, &rst->sb,
				      o.flags & VMPF_RESTORE_FORCE);
	else if (!(o.flags & VMPF_RESTORE_FORCE))
		ret = vmpf_lease_check_target(&rst->store, false);
	if (!ret)
		ret = vmpf_restore_load(rst, &commit);
	if (!ret)
		ret = vmpf_lease_confirm(rst->lease);
	if (ret)
		goto err;

	/* kvcalloc: 2^27 pages need 16 MiB of bitmap, past kmalloc's limit. */
	rst->filled = kvcalloc(BITS_TO_LONGS(rst->total_pages), sizeof(long),
			       GFP_KERNEL_ACCOUNT);
	rst->inflight = kvcalloc(BITS_TO_LONGS(rst->total_pages), sizeof(long),
				 GFP_KERNEL_ACCOUNT);
	rst->bad = kvcalloc(BITS_TO_LONGS(rst->total_pages), sizeof(long), GFP_KERNEL_ACCOUNT);
	if (!rst->filled || !rst->inflight || !rst->bad) {
		ret = -ENOMEM;
		goto err;
	}
	vmpf_rst_account(rst, 3 * BITS_TO_LONGS(rst->total_pages) * sizeof(long));
	if (rst->huge) {
		u64 blocks = DIV_ROUND_UP(rst->total_pages, VMPF_HUGE_NR);

		rst->block_done = kvcalloc(BITS_TO_LONGS(blocks), sizeof(long),
					   GFP_KERNEL_ACCOUNT);
		if (!rst->block_done) {
			ret = -ENOMEM;
			goto err;
		}
		vmpf_rst_account(rst, BITS_TO_LONGS(blocks) * sizeof(long));
	}
	ret = vmpf_guestmem_create(rst);
	if (ret)
		goto err;
	rst->file = vf->file;
	/*
	 * A huge session's fault may fill a block in 4 KiB runs, whose
	 * request arrays do not belong on a fault's stack: a worker reads.
	 */
	rst->read_in_worker = S_ISREG(file_inode(rst->store.file)->i_mode) || rst->huge;
	rst->memcg = get_mem_cgroup_from_mm(current->mm);
	mmgrab(current->mm);
	rst->mm = current->mm;

	o.total_pages = rst->total_pages;
	o.nr_regions = le32_to_cpu(rst->sb.nr_regions);
	o.state_len = rst->state_len;
	o.generation = le64_to_cpu(rst->sb.generation);
	if (copy_to_user(uarg, &o, sizeof(o))) {
		ret = -EFAULT;
		goto err;
	}

	mutex_lock(&vf->lock);
	if (vf->src || vf->rst) {
		mutex_unlock(&vf->lock);
		ret = -EBUSY;
		goto err;
	}
	if (rst->prefetch_run) {
		ret = vmpf_restore_start_prefetch(rst);
		if (ret) {
			mutex_unlock(&vf->lock);
			goto err;
		}
	}
	/* Pairs with the acquire in vmpf_restore_get(). */
	smp_store_release(&vf->rst, rst);
	mutex_unlock(&vf->lock);
	wake_up_all(&vf->wq);
	atomic64_inc(&vmpf_counters.sessions);
	return 0;

err:
	vmpf_restore_free(rst);
	return ret;
}

long vmpf_restore_info(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_restore *rst = vmpf_restore_get(vf);
	struct vmpf_restore_info in;
	u64 i, n;

	if (copy_from_user(&in, uarg, sizeof(in)))
		return -EFAULT;
	if (in.reserved[0] || in.reserved[1] || (in.regions_cap && !in.regions))
		return -EINVAL;
	if (!rst)
		return -ENOENT;
	if (in.state && in.state_cap < rst->state_len)
		return -EINVAL;

	n = min_t(u64, in.regions_cap, le32_to_cpu(rst->sb.nr_regions));
	for (i = 0; i < n; i++) {
		const struct vmpf_pf_region *r = &rst->sb.regions[i];
		struct vmpf_restore_region out = {
			.slot = le32_to_cpu(r->slot) == VMPF_PF_SLOT_NONE ?
				VMPF_SLOT_NONE : le32_to_cpu(r->slot),
			.gpa = le64_to_cpu(r->gpa),
			.size = le64_to_cpu(r->pages) * VMPF_PF_PAGE_SIZE,
			.offset = le64_to_cpu(r->first_page) * VMPF_PF_PAGE_SIZE,
			.flags = le32_to_cpu(r->flags),
		};

		if (copy_to_user(u64_to_user_ptr(in.regions) + i * sizeof(out), &out,
				 sizeof(out)))
			return -EFAULT;
	}
	if (in.state && copy_to_user(u64_to_user_ptr(in.state), rst->state,
				     rst->state_len))
		return -EFAULT;
	in.nr_regions = le32_to_cpu(rst->sb.nr_regions);
	in.state_len = rst->state_len;
	if (copy_to_user(uarg, &in, sizeof(in)))
		return -EFAULT;
	return 0;
}

long vmpf_restore_prefetch(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_restore *rst = vmpf_restore_get(vf);
	struct vmpf_prefetch p;
	long ret = 0;

	if (copy_from_user(&p, uarg, sizeof(p)))
		return -EFAULT;
	if (p.reserved[0] || p.reserved[1] ||
	    (p.op != VMPF_PREFETCH_RUN && p.op != VMPF_PREFETCH_PAUSE))
		return -EINVAL;
	if (!rst)
		return -ENOENT;

	mutex_lock(&vf->lock);
	spin_lock(&rst->lock);
	rst->prefetch_rate = p.rate;
	/*
	 * A thread that ended its work (every page in or refused) does not
	 * run again: nothing would, and the status must not say it does.
	 */
	rst->prefetch_run = p.op == VMPF_PREFETCH_RUN &&
			    !(rst->prefetcher && rst->prefetch_done);
	spin_unlock(&rst->lock);
	if (p.op == VMPF_PREFETCH_RUN)
		ret = vmpf_restore_start_prefetch(rst);
	mutex_unlock(&vf->lock);
	vmpf_restore_wake(rst);
	return ret;
}

long vmpf_restore_status(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_restore *rst = vmpf_restore_get(vf);
	struct vmpf_restore_status st = { 0 };
	int i;

	if (copy_from_user(&st.reserved_in, uarg, sizeof(st.reserved_in)))
		return -EFAULT;
	if (st.reserved_in[0] || st.reserved_in[1])
		return -EINVAL;
	st.first_bad = ~0ULL;
	if (rst) {
		st.total_pages = rst->total_pages;
		st.resident = atomic64_read(&rst->resident);
		st.demand_pages = atomic64_read(&rst->demand_pages);
		st.prefetched = atomic64_read(&rst->prefetched);
		st.zero_pages = atomic64_read(&rst->zero_pages);
		st.io_errors = atomic64_read(&rst->io_errors);
		st.crc_errors = atomic64_read(&rst->crc_errors);
		st.bad_pages = atomic64_read(&rst->bad_pages);
		st.elapsed_ns = ktime_get_ns() - rst->open_ns;
		st.mem_bytes = rst->mem_bytes;
		st.io_retries = atomic64_read(&rst->store.retries);
		st.discarded = atomic64_read(&rst->discarded);
		for (i = 0; i < VMPF_FAULT_HIST; i++)
			st.fault_hist[i] = atomic64_read(&rst->fault_hist[i]);
		spin_lock(&rst->lock);
		st.phase = rst->complete_ns ? VMPF_RESTORE_COMPLETE : VMPF_RESTORE_RUNNING;
		st.prefetching = rst->prefetch_run && READ_ONCE(rst->prefetcher) &&
				 !rst->complete_ns;
		st.complete_ns = rst->complete_ns;
		st.first_bad = rst->first_bad;
		st.prefetch_held = rst->prefetch_held;
		st.lease = vmpf_lease_state(rst->lease);
		strscpy(st.message, rst->message, sizeof(st.message));
		spin_unlock(&rst->lock);
	}
	if (copy_to_user(uarg, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

long vmpf_restore_memfd(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_restore *rst = vmpf_restore_get(vf);
	struct vmpf_restore_memfd m;
	int fd;

	if (copy_from_user(&m, uarg, sizeof(m)))
		return -EFAULT;
	if (m.flags || m.reserved[0] || m.reserved[1] || m.reserved[2])
		return -EINVAL;
	if (!rst)
		return -ENOENT;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	m.fd = fd;
	if (copy_to_user(uarg, &m, sizeof(m))) {
		put_unused_fd(fd);
		return -EFAULT;
	}
	/* The session's own file of the object: guestmem.c's operations. */
	fd_install(fd, get_file(rst->shm));
	return 0;
}

__poll_t vmpf_restore_poll(struct vmpf_restore *rst)
{
	__poll_t mask = 0;

	spin_lock(&rst->lock);
	if (rst->complete_ns)
		mask |= EPOLLIN | EPOLLRDNORM;
	spin_unlock(&rst->lock);
	if (atomic64_read(&rst->bad_pages))
		mask |= EPOLLERR;
	return mask;
}

void vmpf_restore_release(struct vmpf_restore *rst)
{
	if (rst->prefetcher) {
		kthread_stop(rst->prefetcher);
		put_task_struct(rst->prefetcher);
	}
	atomic64_dec(&vmpf_counters.sessions);
	vmpf_restore_free(rst);
}
