// SPDX-License-Identifier: GPL-2.0
/*
 * The source session's worker: pre-copy rounds while the guest runs, then
 * the final round, the device state and the commit.
 *
 * Round 0 turns on KVM's dirty log and copies every page; each following
 * round harvests the log and copies what the guest dirtied meanwhile.
 * Harvest comes before copy, so a page written after its copy is caught by
 * the next harvest.  Rounds stop when the dirty set is at most
 * target_pages, after max_rounds, or when finish or abort is asked; the
 * VMM is told through poll.  Finish (vCPUs paused) harvests once more,
 * copies the rest and commits; abort and errors turn the log off again and
 * leave the page file uncommitted.  Guest memory is only ever read.
 *
 * Everything runs in this one kernel thread with the VMM's mm adopted: it
 * reads guest memory with copy_from_user() and calls KVM's ioctls (see
 * dirty.c).  It may sleep anywhere: it holds no lock while it does, and
 * release() waits for it with kthread_stop().
 */
#include <linux/crc32.h>
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "source.h"
#include "trace.h"

void vmpf_source_fail(struct vmpf_source *src, int err, const char *fmt, ...)
{
	va_list ap;

	spin_lock(&src->lock);
	if (!src->error) {
		src->error = err;
		va_start(ap, fmt);
		vsnprintf(src->message, sizeof(src->message), fmt, ap);
		va_end(ap);
	}
	spin_unlock(&src->lock);
}

static enum vmpf_cmd vmpf_cmd(struct vmpf_source *src)
{
	enum vmpf_cmd cmd;

	spin_lock(&src->lock);
	cmd = src->cmd;
	spin_unlock(&src->lock);
	if (kthread_should_stop())
		cmd = VMPF_CMD_ABORT;
	/*
	 * Only our own reference to the VMM's mm is left: the VMM is gone
	 * (another process may still hold a copy of the session descriptor).
	 */
	if (atomic_read(&src->mm->mm_users) <= 1)
		cmd = VMPF_CMD_ABORT;
	return cmd;
}

/* Per-round counters, folded into the session's under its lock. */
struct vmpf_round {
	u64 round;
	u64 start_ns;
	u64 dirty;
	u64 written;
	u64 zero;
	u64 bytes;
};

/*
 * The pre-copy's writes keep the device busy while the worker copies: the
 * I/O pages are two halves of VMPF_AWRITE_PAGES; a run is copied into one
 * while the other's write is in flight (vmpf_store_write_start()).  A
 * half is reused only after its write ended, and every write started is
 * waited for before vmpf_copy_all() returns, on every path: the next pass
 * (a round, the final round's second pass) may write the same pages
 * again, and two writes of one place in flight at once could land in
 * either order.  A write that failed is done again synchronously, with
 * the store's retries, from the same pages.
 */
static struct page **vmpf_half(struct vmpf_source *src, unsigned int h)
{
	return src->io_pages + h * VMPF_AWRITE_PAGES;
}

/* Wait for half @h's write, if one is in flight.  0 or -errno. */
static int vmpf_half_wait(struct vmpf_source *src, unsigned int h)
{
	struct vmpf_awrite *a = &src->awrite[h];
	unsigned int n = a->len >> PAGE_SHIFT;
	loff_t pos = src->awrite_pos[h];	/* the kiocb's moves as it writes */
	int ret;

	if (!src->awrite_busy[h])
		return 0;
	src->awrite_busy[h] = false;
	ret = vmpf_store_write_wait(a);
	if (!ret)
		return 0;
	/* Repeated like any request that failed: counted in io_retries. */
	atomic64_inc(&src->store.retries);
	pr_warn_ratelimited("writing %u pages at offset %lld of the page file failed (error %d); writing them again\n",
			    n, pos, ret);
	ret = vmpf_store_write_pages(&src->store, vmpf_half(src, h), n, pos);
	if (ret)
		vmpf_source_fail(src, -ret,
				 "writing %u pages at offset %lld of the page file failed (error %d)",
				 n, pos, ret);
	return ret;
}

/* Wait for both halves' writes: 0, or the first error. */
static int vmpf_halves_wait(struct vmpf_source *src)
{
	int a = vmpf_half_wait(src, 0), b = vmpf_half_wait(src, 1);

	return a ?: b;
}

/*
 * Start writing the run of @n pages in the current half, and make the
 * other half, once its write ended, the current one.
 */
static int vmpf_flush_run(struct vmpf_source *src, struct vmpf_sregion *r,
			  u64 first, unsigned int n, struct vmpf_round *rs)
{
	loff_t pos = src->layout.data_off +
		     (r->first_page + first) * VMPF_PF_PAGE_SIZE;
	unsigned int h = src->awrite_cur;

	if (!n)
		return 0;
	src->awrite_pos[h] = pos;
	src->awrite_busy[h] = true;
	vmpf_store_write_start(&src->store, &src->awrite[h], vmpf_half(src, h), n, pos);
	rs->written += n;
	rs->bytes += (u64)n * VMPF_PF_PAGE_SIZE;
	src->awrite_cur = !h;
	return vmpf_half_wait(src, !h);
}

static long vmpf_harvest_all(struct vmpf_source *src);

/*
 * With the dirty ring, a vCPU whose ring is full waits for a harvest: the
 * rings are also harvested this often during a round and while waiting
 * for the switch-over.  A harvest only adds pages to copy.
 */
#define VMPF_RING_PERIOD_NS	(100 * NSEC_PER_MSEC)

/*
 * Copy @r's pending pages.  Runs of consecutive non-zero pages go out in
 * one write of up to VMPF_AWRITE_PAGES pages, while the next run is
 * copied (vmpf_flush_run()); zero pages are only recorded.
 * Returns 0, 1 if interrupted by a command (the pages not yet copied stay
 * pending), or -errno.
 */
static int vmpf_copy_region(struct vmpf_source *src, struct vmpf_sregion *r,
			    struct vmpf_round *rs, bool final)
{
	/* With the guest paused, nothing needs protecting. */
	u64 run_first = 0, i = 0;
	u64 protected = (src->manual_protect && !src->vcpus && !final && !r->untracked) ?
			0 : r->npages;
	unsigned int n = 0;
	int ret;

	for (;;) {
		void *buf;

		i = find_next_bit(r->pending, r->npages, i);
		/* Write the run when it cannot grow any further. */
		if (n && (i >= r->npages || i != run_first + n || n == VMPF_AWRITE_PAGES)) {
			ret = vmpf_flush_run(src, r, run_first, n, rs);
			if (ret)
				return ret;
			n = 0;
		}
		if (i >= r->npages)
			return 0;
		if (!n) {
			enum vmpf_cmd cmd = vmpf_cmd(src);

			if (cmd == VMPF_CMD_ABORT || (cmd == VMPF_CMD_FINISH && !final))
				return 1;
			cond_resched();
			if (src->vcpus && !final &&
			    ktime_get_ns() - src->ring_ns > VMPF_RING_PERIOD_NS) {
				long d = vmpf_harvest_all(src);

				if (d < 0)
					return d;
			}
			run_first = i;
		}
		if (i >= protected) {
			u64 first = round_down(i, VMPF_PROTECT_GROUP);

			protected = min(first + VMPF_PROTECT_GROUP, r->npages);
			ret = vmpf_dirty_protect(src, r, first, protected - first);
			if (ret) {
				vmpf_source_fail(src, -ret,
						 "KVM refused to re-protect memslot %u (error %d); did the VMM change it?",
						 r->slot, ret);
				return ret;
			}
		}

		buf = page_address(vmpf_half(src, src->awrite_cur)[n]);
		if (copy_from_user(buf, (void __user *)(r->uaddr + (i << PAGE_SHIFT)),
				   PAGE_SIZE)) {
			vmpf_source_fail(src, EFAULT,
					 "guest memory at gpa %#llx is not readable in the VMM",
					 r->gpa + (i << PAGE_SHIFT));
			return -EFAULT;
		}
		clear_bit(i, r->pending);
		rs->dirty++;
		if (!memchr_inv(buf, 0, PAGE_SIZE)) {
			ret = vmpf_src_table_set(src, r->first_page + i, VMPF_PAGE_ZERO, 0,
						 rs->round);
			if (ret)
				return ret;
			rs->zero++;
			/* The run ends before this page. */
			if (n) {
				ret = vmpf_flush_run(src, r, run_first, n, rs);
				if (ret)
					return ret;
				n = 0;
			}
			i++;
			continue;
		}
		ret = vmpf_src_table_set(src, r->first_page + i, VMPF_PAGE_DATA,
					 vmpf_crc32c(buf, PAGE_SIZE), rs->round);
		if (ret)
			return ret;
		n++;
		i++;
	}
}

/* Fold round @rs into the session's statistics; returns its duration. */
static u64 vmpf_round_done(struct vmpf_source *src, struct vmpf_round *rs,
			   u64 dirty_after)
{
	u64 ns = max_t(u64, ktime_get_ns() - rs->start_ns, 1);
	struct vmpf_round_stats *st;

	spin_lock(&src->lock);
	st = &src->stats[src->nr_rounds % VMPF_STATS_KEPT];
	src->policy[src->nr_rounds % VMPF_STATS_KEPT] =
		(struct vmpf_round_policy){ .round = rs->round };
	st->round = rs->round;
	st->dirty_pages = rs->dirty;
	st->written_pages = rs->written;
	st->zero_pages = rs->zero;
	st->bytes = rs->bytes;
	st->duration_ns = ns;
	st->dirty_rate = mul_u64_u64_div_u64(dirty_after, NSEC_PER_SEC, ns);
	st->write_rate = mul_u64_u64_div_u64(rs->bytes, NSEC_PER_SEC, ns);
	trace_vmpf_round(rs->round, rs->dirty, rs->written, rs->zero, rs->bytes, ns);
	src->nr_rounds++;
	src->pages_written += rs->written;
	src->zero_pages += rs->zero;
	src->bytes_written += rs->bytes;
	src->dirty_pages = dirty_after;
	spin_unlock(&src->lock);
	return ns;
}

/* Copy every region's pending pages as round @rs->round. */
static int vmpf_copy_all(struct vmpf_source *src, struct vmpf_round *rs,
			 bool final)
{
	unsigned int i;
	int ret, err;

	ret = vmpf_src_table_prime(src);
	for (i = 0; !ret && i < src->nr_regions; i++)
		ret = vmpf_copy_region(src, &src->regions[i], rs, final);
	/* Every write started ends here, whatever stopped the pass. */
	err = vmpf_halves_wait(src);
	return err && ret >= 0 ? err : ret;
}

static long vmpf_harvest_all(struct vmpf_source *src)
{
	struct kvm *kvm = src->vm_file->private_data;
	long n, total = 0;
	unsigned int i;

	/* Memslots changed since the last harvest: fail, or copy all again. */
	n = vmpf_dirty_check_slots(src, false);
	if (n < 0)
		return n;
	if (src->vcpus) {
		n = vmpf_ring_harvest(src);
		if (n == -E2BIG)
			vmpf_source_fail(src, E2BIG,
					 "the VM has more than %d vCPUs: too many for the dirty ring",
					 VMPF_MAX_VCPUS);
		else if (n < 0)
			vmpf_source_fail(src, -n,
					 "KVM refused to reset the dirty rings (error %ld)", n);
		return n;
	}
	/*
	 * The VMM may turn manual protection on at any time: what counts is
	 * the mode of these harvests (either way, no dirty page is lost: a
	 * clear of a page about to be copied only drops a redundant bit).
	 */
	src->manual_protect = READ_ONCE(kvm->manual_dirty_log_protect);
	for (i = 0; i < src->nr_regions; i++) {
		if (src->regions[i].untracked)
			continue;
		n = vmpf_dirty_harvest(src, &src->regions[i]);
		if (n < 0) {
			/* The first reason wins: a foreign harvest already said why. */
			vmpf_source_fail(src, -n,
					 "KVM refused the dirty log of memslot %u (error %ld); did the VMM change it?",
					 src->regions[i].slot, n);
			return n;
		}
		total += n;
	}
	return total;
}

/* Superblock with a new generation, commit block zeroed, both durable. */
static int vmpf_write_header(struct vmpf_source *src)
{
	void *sb = page_address(src->io_pages[0]);
	u64 t;
	int ret;

	BUILD_BUG_ON(sizeof(struct vmpf_pf_super) > VMPF_PF_BLOCK);
	get_random_bytes(&src->generation, sizeof(src->generation));
	memset(sb, 0, PAGE_SIZE);
	vmpf_pf_fill_super(src, sb);
	clear_page(page_address(src->io_pages[1]));
	t = ktime_get_ns();
	ret = vmpf_store_write_pages(&src->store, src->io_pages, 2, 0);
	if (!ret) {
		/* The commit writes three small requests and flushes twice. */
		src->request_ns = ktime_get_ns() - t;
		t = ktime_get_ns();
		ret = vmpf_store_sync(&src->store);
		src->flush_ns = ktime_get_ns() - t;
	}
	if (ret)
		vmpf_source_fail(src, -ret,
				 "writing the page file's header failed (error %d)", ret);
	return ret;
}

/* The table's last changes, device state, flush, commit record, flush. */
static int vmpf_commit(struct vmpf_source *src)
{
	u32 table_crc, state_crc;
	unsigned long busy;
	u64 exits;
	void *state_buf = NULL;
	size_t state_room;
	int ret;

	ret = vmpf_src_table_write(src);
	if (ret)
		return ret;
	table_crc = vmpf_src_table_crc(src);

	state_room = PAGE_ALIGN(max_t(size_t, src->state_len, 1));
	state_buf = __vmalloc(state_room, GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!state_buf) {
		ret = -ENOMEM;
		goto fail;
	}
	memcpy(state_buf, src->state, src->state_len);
	state_crc = vmpf_crc32c(state_buf, src->state_len);
	ret = vmpf_store_write_buf(&src->store, state_buf, state_room,
				   src->layout.state_off);
	vfree(state_buf);
	if (ret)
		goto fail;

	ret = vmpf_store_sync(&src->store);
	if (ret)
		goto fail;

	/* The last moment a vCPU that ran can still be caught. */
	ret = vmpf_vcpu_exits(src, &exits, &busy);
	if (ret) {
		vmpf_source_fail(src, ESTALE,
				 "vCPU %lu was running at the commit: the VMM must keep every vCPU paused from FINISH to the commit",
				 busy);
		return -ESTALE;
	}
	if (exits != src->finish_exits) {
		vmpf_source_fail(src, ESTALE,
				 "the guest ran during the switch-over (%lld VM exits): the VMM must keep every vCPU paused from FINISH to the commit",
				 (long long)(exits - src->finish_exits));
		return -ESTALE;
	}

	clear_page(page_address(src->io_pages[0]));
	vmpf_pf_fill_commit(src, page_address(src->io_pages[0]), table_crc,
			    state_crc, src->nr_data, src->nr_zero);
	ret = vmpf_store_write_pages(&src->store, src->io_pages, 1, VMPF_PF_BLOCK);
	if (!ret)
		ret = vmpf_store_sync(&src->store);
	if (ret)
		goto fail;
	return 0;

fail:
	vmpf_source_fail(src, -ret,
			 "writing the device state or commit record failed (error %d)", ret);
	return ret;
}

#define VMPF_STALL_ROUNDS	5	/* rounds without a smaller dirty set: not converging */

/* Steps of the throttle, in per cent of each vCPU's time taken away. */
static const u8 vmpf_throttle_steps[] = { 0, 20, 40, 60, 80, 90, 95, 99 };

/*
 * The next step up (@dir 1) or down (-1) from @pct, at most @max.  A
 * throttle set by the VMM between steps moves to the neighbouring step.
 */
static u64 vmpf_throttle_step(u64 pct, int dir, u64 max)
{
	int i, n = ARRAY_SIZE(vmpf_throttle_steps);

	for (i = 0; i < n - 1 && vmpf_throttle_steps[i] < pct; i++)
		;
	if (dir < 0 || vmpf_throttle_steps[i] == pct)
		i += dir;
	i = clamp(i, 0, n - 1);
	return min_t(u64, vmpf_throttle_steps[i], max);
}

/*
 * With the dirty ring, each vCPU's share of the last round's dirtying:
 * a vCPU that dirtied less than an eighth of an even share is not slowed
 * down, the others get @throttle.  Under @lock; true if any changed.
 */
static bool vmpf_policy_vcpus(struct vmpf_source *src, u64 throttle)
{
	struct vmpf_vcpus *vc = src->vcpus;
	u64 sum = 0, t;
	bool changed = false;
	unsigned int i;

	for (i = 0; i < vc->nr; i++)
		sum += vc->round[i];
	for (i = 0; i < vc->nr; i++) {
		t = sum && vc->round[i] * vc->nr * 8 < sum ? 0 : throttle;
		changed |= vc->throttle[i] != t;
		vc->throttle[i] = t;
		vc->dirty[i] = vc->round[i];
		vc->total[i] += vc->round[i];
		vc->round[i] = 0;
	}
	return changed;
}

/*
 * After pre-copy round @rs, which took @ns and left @dirty pages: estimate
 * the switch-over (those pages at the write rate measured so far, plus the
 * commit's three small writes and two flushes, as long as the header's
 * took), say whether it fits the downtime target, whether
 * the dirty set still shrinks, and what throttle the vCPUs need.
 */
static void vmpf_policy(struct vmpf_source *src, const struct vmpf_round *rs,
			u64 dirty, u64 ns)
{
	u64 est = 0, dirty_bps, throttle, prev, old_flags;
	bool ready, stuck, changed;

	/* Rounds that wrote a little say little about the rate. */
	if (rs->bytes >= VMPF_IO_PAGES * VMPF_PF_PAGE_SIZE) {
		u64 bps = mul_u64_u64_div_u64(rs->bytes, NSEC_PER_SEC, ns);

		src->write_bps = src->write_bps ? (src->write_bps + bps) / 2 : bps;
	}
	/* At least a page a second: the quotient then fits 64 bits. */
	if (src->write_bps)
		est = mul_u64_u64_div_u64(dirty * VMPF_PF_PAGE_SIZE, NSEC_PER_SEC,
					  max_t(u64, src->write_bps, VMPF_PF_PAGE_SIZE)) +
		      3 * src->request_ns + 2 * src->flush_ns;
	ready = src->write_bps && est <= src->downtime_ns;

	/*
	 * Round 0 copies everything: the dirty sets to compare start after it.
	 * Progress is a dirty set an eighth smaller than the smallest yet;
	 * noise of a few pages either way is not.
	 */
	if (rs->round == 0 || dirty < src->min_dirty - src->min_dirty / 8) {
		src->min_dirty = dirty;
		src->stalled = 0;
	} else {
		src->min_dirty = min(src->min_dirty, dirty);
		src->stalled++;
	}
	stuck = !ready && src->stalled >= VMPF_STALL_ROUNDS;

	spin_lock(&src->lock);
	dirty_bps = mul_u64_u64_div_u64(dirty, VMPF_PF_PAGE_SIZE * NSEC_PER_SEC, ns);
	throttle = src->throttle_pct;
	prev = throttle;
	if (!ready && rs->round && src->write_bps && (stuck || dirty_bps > src->write_bps))
		throttle = vmpf_throttle_step(throttle, 1, src->throttle_max);
	else if (ready && est < src->downtime_ns / 2)
		throttle = vmpf_throttle_step(throttle, -1, src->throttle_max);
	changed = throttle != src->throttle_pct;
	if (src->vcpus)
		changed |= vmpf_policy_vcpus(src, throttle);
	if (changed)
		src->throttle_gen++;
	src->throttle_pct = throttle;
	src->throttle_peak = max(src->throttle_peak, throttle);
	src->dirty_rate = div64_u64(dirty_bps, VMPF_PF_PAGE_SIZE);
	src->est_downtime_ns = est;
	old_flags = src->flags;
	src->flags &= ~(VMPF_STATUS_READY | VMPF_STATUS_NOT_CONVERGING);
	if (ready)
		src->flags |= VMPF_STATUS_READY;
	/* What made it ready is what the next migration should start with. */
	if (ready && !src->throttle_ready)
		src->throttle_ready = prev + 1;
	if (stuck)
		src->flags |= VMPF_STATUS_NOT_CONVERGING;
	/* vmpf_round_done() just filled this round's slot. */
	src->policy[(src->nr_rounds - 1) % VMPF_STATS_KEPT] = (struct vmpf_round_policy){
		.round = rs->round,
		.dirty_rate = src->dirty_rate,
		.write_rate = src->write_bps,
		.est_downtime_ns = est,
		.throttle_pct = throttle,
		.flags = src->flags & (VMPF_STATUS_READY | VMPF_STATUS_NOT_CONVERGING),
	};
	spin_unlock(&src->lock);

	trace_vmpf_policy(rs->round, dirty, est, throttle, ready, stuck);
	if (changed || (ready && !(old_flags & VMPF_STATUS_READY)))
		vmpf_source_wake(src);
}

static void vmpf_set_phase(struct vmpf_source *src, enum vmpf_phase phase)
{
	spin_lock(&src->lock);
	src->phase = phase;
	/* A session that is over asks nothing of the vCPUs any more. */
	if (vmpf_phase_done(phase)) {
		src->throttle_pct = 0;
		if (src->vcpus)
			memset(src->vcpus->throttle, 0, sizeof(src->vcpus->throttle));
		src->throttle_gen++;
	}
	spin_unlock(&src->lock);
	vmpf_source_wake(src);
}

/* Pre-copy rounds until a command.  0, or -errno. */
static int vmpf_precopy_rounds(struct vmpf_source *src)
{
	struct vmpf_round rs = { 0 };
	unsigned int i;
	long dirty;
	int ret, err;
	u64 ns;

	for (i = 0; i < src->nr_regions; i++)
		bitmap_fill(src->regions[i].pending, src->regions[i].npages);

	for (;;) {
		rs.start_ns = ktime_get_ns();
		spin_lock(&src->lock);
		src->round = rs.round;
		spin_unlock(&src->lock);

		ret = vmpf_copy_all(src, &rs, false);
		if (ret < 0)
			return ret;
		err = vmpf_src_table_write(src);
		if (err)
			return err;
		dirty = ret ? 0 : vmpf_harvest_all(src);
		if (dirty < 0)
			return dirty;
		ns = vmpf_round_done(src, &rs, dirty);
		if (ret)
			return 0;	/* a command came; its pages stay pending */
		vmpf_policy(src, &rs, dirty, ns);

		spin_lock(&src->lock);
		if (dirty <= src->target_pages)
			src->flags |= VMPF_STATUS_CONVERGED;
		if (rs.round + 1 >= src->max_rounds)
			src->flags |= VMPF_STATUS_ROUND_LIMIT;
		ret = !!(src->flags & (VMPF_STATUS_CONVERGED | VMPF_STATUS_ROUND_LIMIT));
		spin_unlock(&src->lock);
		if (ret) {
			/* Done: tell the VMM, then wait for finish or abort. */
			vmpf_source_wake(src);
			/*
			 * Interruptible only to stay out of the hung-task
			 * detector's sight: this may last as long as the
			 * VMM takes to switch over.  A kthread gets no
			 * signals, so the result needs no check.
			 */
			while (!wait_event_interruptible_timeout(src->wq,
								 vmpf_cmd(src) != VMPF_CMD_NONE,
								 src->vcpus ? HZ / 10 : HZ)) {
				/* Keep the vCPUs' dirty rings from filling up. */
				dirty = src->vcpus ? vmpf_harvest_all(src) : 0;
				if (dirty < 0)
					return dirty;
			}
			return 0;
		}
		rs = (struct vmpf_round){ .round = rs.round + 1 };
		/* The VMM may have moved to another cgroup meanwhile. */
		vmpf_charge_io(src->mm);
	}
}

/*
 * Give every memslot we log its own flags back; say which we could not.
 * Returns the first such region, or NULL.
 */
static struct vmpf_sregion *vmpf_logging_off(struct vmpf_source *src)
{
	struct vmpf_sregion *bad = NULL;
	unsigned int i;

	for (i = 0; i < src->nr_regions; i++) {
		struct vmpf_sregion *r = &src->regions[i];

		if (r->logging && vmpf_dirty_set_logging(src, r, false)) {
			pr_warn("memslot %u changed under the migration or KVM refused it: left as it is\n",
				r->slot);
			bad = bad ?: r;
		}
	}
	return bad;
}

/*
 * VMPF_FINISH_PAGES: the pages and the table are written, the VMM saves
 * its device state next, and may then change memslots and harvest logs
 * as it likes (QEMU's migration does both): give the memslots back and
 * look at KVM no more; then wait, in STATE_WAIT, for VMPF_FINISH_STATE or
 * an abort.  The caller keeps the vCPUs paused throughout.
 */
static int vmpf_state_wait(struct vmpf_source *src, struct vmpf_round *rs)
{
	struct vmpf_sregion *bad;
	enum vmpf_cmd cmd;
	int ret;

	/*
	 * A memslot we cannot give back changed after the final check: fail
	 * rather than leave it to the VMM's save half logged (and rather than
	 * turn off, at the end, logging the VMM turned on itself).
	 */
	bad = vmpf_logging_off(src);
	if (bad) {
		bad->logging = false;
		vmpf_source_fail(src, ESTALE,
				 "memslot %u changed during the switch-over", bad->slot);
		return -ESTALE;
	}
	ret = vmpf_src_table_write(src);
	if (ret)
		return ret;
	spin_lock(&src->lock);
	src->result.final_pages = rs->dirty;
	src->result.switchover_ns = ktime_get_ns() - src->finish_ns;
	src->result.bytes_written = src->bytes_written;
	src->result.rounds = src->nr_rounds;
	spin_unlock(&src->lock);
	vmpf_set_phase(src, VMPF_PHASE_STATE_WAIT);
	/* Interruptible for the hung-task detector only, as in pre-copy. */
	for (;;) {
		cmd = vmpf_cmd(src);
		if (cmd != VMPF_CMD_FINISH)
			break;
		wait_event_interruptible_timeout(src->wq, vmpf_cmd(src) != VMPF_CMD_FINISH, HZ);
	}
	return cmd == VMPF_CMD_STATE ? 0 : -ECANCELED;
}

/* The switch-over: the guest is paused, copy the rest and commit. */
static int vmpf_final_round(struct vmpf_source *src)
{
	struct vmpf_round rs = { 0 };
	unsigned int i;
	long dirty;
	int ret;

	spin_lock(&src->lock);
	rs.round = src->nr_rounds;
	src->round = rs.round;
	spin_unlock(&src->lock);
	rs.start_ns = ktime_get_ns();

	dirty = vmpf_harvest_all(src);
	if (dirty < 0)
		return dirty;
	/* Nothing tracks what no memslot maps: copy it again, paused. */
	for (i = 0; i < src->nr_regions; i++)
		if (src->regions[i].untracked)
			bitmap_fill(src->regions[i].pending, src->regions[i].npages);
	ret = vmpf_copy_all(src, &rs, true);
	if (ret)
		return ret < 0 ? ret : -ECANCELED;	/* 1: aborted */
	/*
	 * Just before the commit: a memslot change since the final harvest
	 * fails the session, or (slots as registered) copies everything
	 * once more; a second change means the VMM keeps changing them.
	 */
	ret = vmpf_dirty_check_slots(src, false);
	if (ret > 0) {
		ret = vmpf_copy_all(src, &rs, true);
		if (ret)
			return ret < 0 ? ret : -ECANCELED;
		ret = vmpf_dirty_check_slots(src, false);
		if (ret > 0) {
			vmpf_source_fail(src, ESTALE,
					 "the VMM kept changing memslots during the switch-over");
			ret = -ESTALE;
		}
	}
	if (ret)
		return ret;
	vmpf_round_done(src, &rs, 0);
	src->final_pages = rs.dirty;

	if (src->state_later) {
		ret = vmpf_state_wait(src, &rs);
		if (ret)
			return ret;
	}
	ret = vmpf_commit(src);
	if (ret)
		return ret;

	spin_lock(&src->lock);
	src->result.final_pages = rs.dirty;
	src->result.switchover_ns = ktime_get_ns() - src->finish_ns;
	src->result.bytes_written = src->bytes_written;
	src->result.rounds = src->nr_rounds;
	spin_unlock(&src->lock);
	return 0;
}

static enum vmpf_phase vmpf_precopy_run(struct vmpf_source *src)
{
	struct kvm *kvm = src->vm_file->private_data;
	enum vmpf_phase done = VMPF_PHASE_FAILED;
	unsigned int i;
	int ret;

	ret = vmpf_dirty_init(src);
	if (ret) {
		vmpf_source_fail(src, -ret, "cannot map a scratch buffer in the VMM (error %d)",
				 ret);
		vmpf_dirty_exit(src);
		return VMPF_PHASE_FAILED;
	}
	ret = vmpf_write_header(src);
	if (ret)
		goto out;

	/* As at attach: the VMM may have turned initially-set on since. */
	if (src->vcpus && (READ_ONCE(kvm->manual_dirty_log_protect) &
			   KVM_DIRTY_LOG_INITIALLY_SET)) {
		vmpf_source_fail(src, ENOPROTOOPT,
				 "KVM's dirty ring with KVM_DIRTY_LOG_INITIALLY_SET would miss writes");
		ret = -ENOPROTOOPT;
		goto out;
	}
	for (i = 0; i < src->nr_regions; i++) {
		if (src->regions[i].untracked)
			continue;
		ret = vmpf_dirty_set_logging(src, &src->regions[i], true);
		if (ret) {
			vmpf_source_fail(src, -ret,
					 "KVM refused to log dirty pages of memslot %u (error %d)",
					 src->regions[i].slot, ret);
			goto out;
		}
	}
	/* From here on, every memslot change is seen (dirty.c). */
	ret = vmpf_dirty_check_slots(src, true);
	if (ret)
		goto out;

	ret = vmpf_precopy_rounds(src);
	if (ret)
		goto out;
	if (vmpf_cmd(src) == VMPF_CMD_ABORT) {
		done = VMPF_PHASE_ABORTED;
		goto out;
	}
	ret = vmpf_final_round(src);
	if (ret == -ECANCELED)
		done = VMPF_PHASE_ABORTED;
	else if (!ret)
		done = VMPF_PHASE_COMMITTED;

out:
	/* Leave the memslots as the VMM set them, whatever happened. */
	vmpf_logging_off(src);
	vmpf_dirty_exit(src);
	return done;
}

int vmpf_precopy_thread(void *arg)
{
	struct vmpf_source *src = arg;
	enum vmpf_phase done = VMPF_PHASE_FAILED;

	if (mmget_not_zero(src->mm)) {
		kthread_use_mm(src->mm);
		vmpf_charge_io(src->mm);
		done = vmpf_precopy_run(src);
		kthread_associate_blkcg(NULL);
		kthread_unuse_mm(src->mm);
		mmput(src->mm);
	} else {
		vmpf_source_fail(src, ESRCH, "the VMM's address space is gone");
	}
	if (done == VMPF_PHASE_ABORTED)
		vmpf_source_fail(src, ECANCELED, "aborted");
	vmpf_set_phase(src, done);

	vmpf_park();
	return 0;
}
