// SPDX-License-Identifier: GPL-2.0
/*
 * The background prefetch of a restore session: a kernel thread at the
 * lowest priority reads the pages nothing has touched yet, so that the
 * restore completes without the guest touching every page.
 *
 * Order: hot first (pages the source copied in its latest rounds, the ones
 * the guest wrote last, before older ones) or sequential.  It yields to
 * demand faults: while any fault waits for a read it sleeps; and it keeps
 * to a rate limit if one is set.  Pages it brings in are charged to the
 * VMM's memory cgroup (vmpf_restore_fill() sees to that); it waits while
 * that cgroup is near its limit, and stops for good once the OOM killer
 * chose the VMM.
 * Whatever it does not reach, faults still bring in: pausing or never
 * starting it is always correct.
 */
#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/sched/coredump.h>
#include <linux/page_counter.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "restore.h"

/*
 * Room for prefetched pages in the VMM's memory cgroup and its parents:
 * usage below memory.max and memory.high by a margin (1/16 of the limit,
 * at least 1 MiB).  Prefetching into a full cgroup would only make it
 * reclaim (swap out) guest memory to make room for more guest memory;
 * pages the guest needs still come by its faults.
 */
static bool vmpf_prefetch_room(struct vmpf_restore *rst)
{
#ifdef CONFIG_MEMCG
	struct mem_cgroup *memcg;
	unsigned long limit;

	for (memcg = vmpf_restore_memcg(rst); memcg; memcg = parent_mem_cgroup(memcg)) {
		limit = min(READ_ONCE(memcg->memory.max), READ_ONCE(memcg->memory.high));
		if (limit == PAGE_COUNTER_MAX)
			continue;
		if (page_counter_read(&memcg->memory) + max(limit / 16, 256UL) >= limit)
			return false;
	}
#endif
	return true;
}

/*
 * The OOM killer chose the VMM that opened the session (its memory is
 * queued for the OOM reaper, or was reaped): the descriptor goes with it,
 * allocate nothing more meanwhile.  A VMM that merely exited is no sign:
 * it may have handed the session's descriptor to another (a handover).
 */
static bool vmpf_prefetch_vmm_gone(struct vmpf_restore *rst)
{
	struct mm_struct *mm = vmpf_restore_mm(rst);

	return test_bit(MMF_OOM_REAP_QUEUED, &mm->flags) ||
	       test_bit(MMF_OOM_SKIP, &mm->flags);
}

static void vmpf_prefetch_set_held(struct vmpf_restore *rst, bool held)
{
	bool first = false;

	spin_lock(&rst->lock);
	if (held && !rst->prefetch_held && !rst->held_logged) {
		first = true;
		rst->held_logged = true;
	}
	rst->prefetch_held = held;
	spin_unlock(&rst->lock);
	if (first)
		pr_info("restore: the VMM's memory cgroup is near its limit: the prefetch waits for room, faults go on\n");
}

/*
 * Sleep until the prefetch may go on; false when the thread must stop, or
 * the VMM is gone: its memory is not to grow any more.
 */
static bool vmpf_prefetch_wait(struct vmpf_restore *rst)
{
	for (;;) {
		/*
		 * Interruptible only to stay out of the hung-task detector's
		 * sight: a paused prefetch may sleep for long.  A kthread gets
		 * no signals.
		 */
		wait_event_interruptible(rst->wq, kthread_should_stop() ||
					 (READ_ONCE(rst->prefetch_run) &&
					  !atomic_read(&rst->demand_waiting)));
		if (kthread_should_stop() || vmpf_prefetch_vmm_gone(rst))
			return false;
		if (vmpf_prefetch_room(rst))
			break;
		vmpf_prefetch_set_held(rst, true);
		wait_event_interruptible_timeout(rst->wq, kthread_should_stop(), HZ / 5);
	}
	if (READ_ONCE(rst->prefetch_held))
		vmpf_prefetch_set_held(rst, false);
	return true;
}

static void vmpf_prefetch_pace(struct vmpf_restore *rst, u64 *start, u64 *done)
{
	u64 rate = READ_ONCE(rst->prefetch_rate), due, now;

	(*done)++;
	if (!rate)
		return;
	due = *start + div64_u64(*done * NSEC_PER_SEC, rate);
	now = ktime_get_ns();
	if (due > now + NSEC_PER_MSEC)
		schedule_timeout_interruptible(nsecs_to_jiffies(due - now));
	if (now > due + NSEC_PER_SEC) {
		/* Long paused: do not burst to catch up. */
		*start = now;
		*done = 0;
	}
}

/*
 * Page @idx is ours to read: take the following pages too while they are
 * data pages of the same class that nobody has, up to one request's worth,
 * so the prefetch reads 256 KiB at a time where it can.  Returns how many.
 */
static unsigned int vmpf_prefetch_run(struct vmpf_restore *rst, u64 idx, u64 hot)
{
	unsigned int n = 1;

	if (!vmpf_page_data(rst, idx))
		return 1;
	while (n < VMPF_IO_PAGES && idx + n < rst->total_pages) {
		if (!vmpf_page_data(rst, idx + n) ||
		    (hot != ~0ULL && vmpf_page_hot(rst, idx + n) != hot) ||
		    vmpf_filled(rst, idx + n) || test_bit(idx + n, rst->bad) ||
		    test_and_set_bit_lock(idx + n, rst->inflight))
			break;
		n++;
	}
	return n;
}

/* One pass over the pages of prefetch class @hot (or all, if ~0). */
static bool vmpf_prefetch_pass(struct vmpf_restore *rst, u64 hot, u64 *start,
			       u64 *done)
{
	unsigned int n, i;
	u64 idx;

	/* Its reads count against the VMM's io.max and io.weight. */
	vmpf_charge_io(vmpf_restore_mm(rst));
	for (idx = 0; idx < rst->total_pages; idx++) {
		if (!(idx % 4096))
			cond_resched();
		if (hot != ~0ULL && vmpf_page_hot(rst, idx) != hot)
			continue;
		if (vmpf_filled(rst, idx) || test_bit(idx, rst->bad))
			continue;
		if (!vmpf_prefetch_wait(rst))
			return false;
		if (rst->huge) {
			/* Its whole block, from the block's first page. */
			idx = vmpf_lock_idx(rst, idx);
			n = min_t(u64, VMPF_HUGE_NR, rst->total_pages - idx);
			if (test_and_set_bit_lock(idx, rst->inflight)) {
				idx += n - 1;
				continue;	/* a fault is reading it */
			}
		} else {
			if (test_and_set_bit_lock(idx, rst->inflight))
				continue;	/* a fault is reading it */
			n = vmpf_prefetch_run(rst, idx, hot);
		}
		vmpf_restore_fill(rst, idx, n, false);
		/*
		 * The storage is in an outage (see storage.c): the page was
		 * left, not refused.  Wait and try it again rather than skip
		 * every page of the outage: demand faults, still served,
		 * pause us meanwhile.
		 */
		if (!(rst->huge ? vmpf_mappable(rst, idx) :
		      vmpf_filled(rst, idx) || test_bit(idx, rst->bad)) &&
		    atomic_read(&rst->store.failing)) {
			schedule_timeout_interruptible(HZ / 5);
			idx--;
			continue;
		}
		for (i = 0; i < n; i++)
			vmpf_prefetch_pace(rst, start, done);
		idx += n - 1;
		cond_resched();
	}
	return true;
}

/* Pages neither resident nor refused: what a prefetch may still bring in. */
static u64 vmpf_prefetch_left(struct vmpf_restore *rst)
{
	return rst->total_pages - atomic64_read(&rst->resident) -
	       atomic64_read(&rst->bad_pages);
}

int vmpf_prefetch_thread(void *arg)
{
	struct vmpf_restore *rst = arg;
	u64 start = ktime_get_ns(), done = 0, filled;
	int hot;

	set_user_nice(current, MAX_NICE);

	/*
	 * The pages the guest wrote last first: by class (table.c), each in
	 * page order.
	 */
	if (READ_ONCE(rst->sequential)) {
		vmpf_prefetch_pass(rst, ~0ULL, &start, &done);
	} else {
		for (hot = 3; hot >= 0; hot--) {
			if (!rst->hot_pages[hot])
				continue;
			if (!vmpf_prefetch_pass(rst, hot, &start, &done))
				break;
		}
	}

	/*
	 * A pass leaves pages behind that it could not take then: no memory
	 * for them, or a fault was reading them and its task was killed.
	 * Sweep again until every page is in or refused, pausing between
	 * sweeps that brought nothing.
	 */
	while (!kthread_should_stop() && vmpf_prefetch_left(rst)) {
		filled = atomic64_read(&rst->prefetched);
		if (!vmpf_prefetch_pass(rst, ~0ULL, &start, &done))
			break;
		/* This sweep brought nothing in itself: not at once again. */
		if (atomic64_read(&rst->prefetched) == filled)
			wait_event_interruptible_timeout(rst->wq, kthread_should_stop(), HZ);
	}
	kthread_associate_blkcg(NULL);

	spin_lock(&rst->lock);
	rst->prefetch_run = false;
	rst->prefetch_done = true;
	spin_unlock(&rst->lock);

	vmpf_park();
	return 0;
}
