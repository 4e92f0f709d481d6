// SPDX-License-Identifier: GPL-2.0
/*
 * One owner of an image at a time: the ownership lease in the page file
 * (struct vmpf_pf_lease, docs/pagefile-format.md).
 *
 * The hosts that see one page file share no lock manager the module could
 * count on everywhere: a raw LUN has none, and the locks of NFS and OCFS2
 * follow their own rules (OCFS2 under o2cb has no cluster-wide POSIX
 * locks).  So the lease is a record in the file itself, a delta lease as
 * sanlock has them:
 *
 * - taking it: read the record; if another session holds it, watch it for
 *   its period (the owner's lease_ms, from the record) and a quarter: a
 *   renewal means the owner is alive (EBUSY), none that it is gone.  Then
 *   write ourselves as the owner, wait lease_confirm_ms and read it back:
 *   a host that took it at the same moment shows there (EBUSY), as long
 *   as every lease write reaches the storage within lease_confirm_ms;
 * - renewing: every period / 4 a worker bumps @beat, after checking that
 *   the record still names us and the file still holds the image, for as
 *   long as the session lives: READING while pages are still read from the
 *   file, RESTORED once every page was read (the VM runs on from memory;
 *   the lease keeps its own reference to the file for this);
 * - letting go: FREE when the session ends (the VM ended with it).
 *
 * A new migration into the file (source attach) waits only for a READING
 * lease: a RESTORED VM no longer needs the file, which is how a VM moves
 * on through the page file it came from.  Its owner's renewal then finds
 * another image in the file and stops (VMPF_LEASE_LOST in its status).
 *
 * The record has a sector of block 1 to itself, but the page file is read
 * and written by the page: each write reads block 1 and writes it back,
 * the commit record as read, after checking that it is still the image's.
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/moduleparam.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/utsname.h>
#include <linux/workqueue.h>

#include "vmpf.h"

static unsigned int lease_ms = 10000;
module_param(lease_ms, uint, 0644);
MODULE_PARM_DESC(lease_ms, "period of a restore's lease on its image, ms (default 10000, 1000 to 300000): renewed every quarter of it; another host takes a lease over after watching it this long without a renewal");

static unsigned int lease_confirm_ms = 100;
module_param(lease_confirm_ms, uint, 0644);
MODULE_PARM_DESC(lease_confirm_ms, "ms between writing a new lease and reading it back (default 100): longer than a lease read and write take to reach the storage");

#define VMPF_LEASE_MS_MIN	1000
#define VMPF_LEASE_MS_MAX	300000

static u32 vmpf_lease_period(u32 ms)
{
	return clamp_t(u32, ms, VMPF_LEASE_MS_MIN, VMPF_LEASE_MS_MAX);
}

/* The record in a page holding block 1. */
static struct vmpf_pf_lease *vmpf_lease_rec(struct page *page)
{
	return page_address(page) + (VMPF_PF_LEASE_OFF - VMPF_PF_BLOCK);
}

static bool vmpf_lease_valid(const struct vmpf_pf_lease *l, __le64 gen)
{
	struct vmpf_pf_lease copy = *l;

	if (memcmp(l->magic, VMPF_PF_LEASE_MAGIC, sizeof(l->magic)) || l->generation != gen)
		return false;
	copy.crc = 0;
	return vmpf_crc32c(&copy, sizeof(copy)) == le32_to_cpu(l->crc);
}

/* What the record says about image @gen: FREE when it is not the image's. */
static u32 vmpf_lease_rec_state(const struct vmpf_pf_lease *l, __le64 gen)
{
	return vmpf_lease_valid(l, gen) ? le32_to_cpu(l->state) : VMPF_LEASE_FREE;
}

/*
 * Read block 1 into @page (lowmem: alloc_page(GFP_KERNEL)).  -ESTALE when
 * it no longer holds image @gen's commit record: a new migration went
 * into the file since.
 */
static int vmpf_lease_read(struct vmpf_store *st, struct page *page, __le64 gen)
{
	const struct vmpf_pf_commit *c = page_address(page);
	int ret;

	ret = vmpf_store_read_page(st, page, VMPF_PF_BLOCK);
	if (ret)
		return ret;
	if (memcmp(c->magic, VMPF_PF_COMMIT_MAGIC, sizeof(c->magic)) || c->generation != gen)
		return -ESTALE;
	return 0;
}

/* Write our record with @state into block 1 as last read into @ls->page. */
static int vmpf_lease_write(struct vmpf_lease *ls, struct vmpf_store *st, u32 state)
{
	struct vmpf_pf_lease *l = vmpf_lease_rec(ls->page);

	memset(l, 0, sizeof(*l));
	memcpy(l->magic, VMPF_PF_LEASE_MAGIC, sizeof(l->magic));
	l->generation = ls->generation;
	l->owner = cpu_to_le64(ls->owner);
	l->beat = cpu_to_le64(ls->beat);
	l->takeovers = cpu_to_le64(ls->takeovers);
	l->acquired_ns = cpu_to_le64(ls->acquired_ns);
	l->state = cpu_to_le32(state);
	l->lease_ms = cpu_to_le32(ls->period_ms);
	l->pid = cpu_to_le32(ls->pid);
	memcpy(l->host, ls->host, sizeof(l->host));
	l->crc = cpu_to_le32(vmpf_crc32c(l, sizeof(*l)));
	return vmpf_store_write_pages(st, &ls->page, 1, VMPF_PF_BLOCK);
}

/* Held by a session: READING or RESTORED. */
static bool vmpf_lease_held(u32 state)
{
	return state == VMPF_LEASE_READING || state == VMPF_LEASE_RESTORED;
}

static bool vmpf_lease_ours(struct vmpf_lease *ls)
{
	const struct vmpf_pf_lease *l = vmpf_lease_rec(ls->page);

	return vmpf_lease_held(vmpf_lease_rec_state(l, ls->generation)) &&
	       le64_to_cpu(l->owner) == ls->owner;
}

/*
 * Watch a lease another session holds (@seen, a copy) for its period and
 * a quarter, reading it into @page: 0 when it did not change (its owner
 * is gone) or was let go (FREE); -EBUSY when it was renewed or taken by
 * another session (@now then holds it); -EALREADY when it became REVOKED.
 * Sleeps killably: a process being killed gets -EINTR.
 */
static int vmpf_lease_watch(struct vmpf_store *st, struct page *page, __le64 gen,
			    const struct vmpf_pf_lease *seen)
{
	u32 period = vmpf_lease_period(le32_to_cpu(seen->lease_ms));
	unsigned long end = jiffies + msecs_to_jiffies(period + period / 4);
	unsigned long step = msecs_to_jiffies(clamp_t(u32, period / 20, 50, 500));
	const struct vmpf_pf_lease *now = vmpf_lease_rec(page);
	int ret;

	pr_info("the image in the page file is owned by a restore on host %.64s (pid %u): watching its lease for %u ms\n",
		seen->host, le32_to_cpu(seen->pid), period + period / 4);
	while (time_before(jiffies, end)) {
		schedule_timeout_killable(step);
		if (fatal_signal_pending(current))
			return -EINTR;
		ret = vmpf_lease_read(st, page, gen);
		if (ret)
			return ret;
		if (!memcmp(now, seen, sizeof(*now)))
			continue;
		switch (vmpf_lease_rec_state(now, gen)) {
		case VMPF_LEASE_FREE:
			return 0;
		case VMPF_LEASE_READING:
		case VMPF_LEASE_RESTORED:
			pr_info("the owner's lease was renewed: the image is in use on host %.64s\n",
				now->host);
			return -EBUSY;
		default:
			return -EALREADY;
		}
	}
	pr_warn("taking the image over from host %.64s (pid %u): its lease was not renewed for %u ms\n",
		seen->host, le32_to_cpu(seen->pid), period + period / 4);
	return 0;
}

static void vmpf_lease_renew(struct work_struct *work)
{
	struct vmpf_lease *ls = container_of(to_delayed_work(work), struct vmpf_lease, work);
	u32 state = READ_ONCE(ls->finishing) ? VMPF_LEASE_RESTORED : VMPF_LEASE_READING;
	int ret;

	mutex_lock(&ls->lock);
	if (!vmpf_lease_held(ls->state))
		goto out;
	ret = vmpf_lease_read(&ls->store, ls->page, ls->generation);
	if (ret == -ESTALE || (!ret && !vmpf_lease_ours(ls))) {
		if (ls->state == VMPF_LEASE_RESTORED)
			pr_info("a restored VM's page file now holds %s: its lease ends\n",
				ret ? "a new migration" : "another owner's lease");
		else
			pr_warn("a restore session lost its lease on the image: %s; pages not read yet may fail\n",
				ret ? "a new migration went into the page file" :
				"another session took the image over");
		ls->state = VMPF_LEASE_LOST;
		vmpf_store_put(&ls->store);
		goto out;
	}
	if (!ret) {
		ls->beat++;
		ret = vmpf_lease_write(ls, &ls->store, state);
	}
	if (ret) {
		/* Keep trying: the owner is alive, the storage may come back. */
		if (!ls->logged)
			pr_warn("renewing the lease on the image failed (error %d): after %u ms without a renewal another host may take the image over\n",
				ret, ls->period_ms);
		ls->logged = true;
	} else {
		ls->logged = false;
		ls->renewed_ns = ktime_get_ns();
		ls->state = state;
	}
	queue_delayed_work(system_unbound_wq, &ls->work, msecs_to_jiffies(ls->period_ms / 4));
out:
	mutex_unlock(&ls->lock);
}

/*
 * Take the lease on the image @sb describes in @st, for a restore session
 * (VMPF_IOC_RESTORE_OPEN, which may sleep for the owner's lease period):
 * watch the owner's, write ours.  vmpf_lease_confirm() then reads it back,
 * at least lease_confirm_ms later: the caller loads the page table
 * meanwhile.  @force: take it without watching the owner, whatever it
 * says.  On failure nothing is held.
 */
int vmpf_lease_take(struct vmpf_lease *ls, struct vmpf_store *st,
		    const struct vmpf_pf_super *sb, bool force)
{
	struct vmpf_pf_lease seen;
	int ret;

	mutex_init(&ls->lock);
	INIT_DELAYED_WORK(&ls->work, vmpf_lease_renew);
	if (!(st->file->f_mode & FMODE_WRITE))
		return -EROFS;
	ls->page = alloc_page(GFP_KERNEL);
	if (!ls->page)
		return -ENOMEM;
	ls->generation = sb->generation;
	ret = vmpf_lease_read(st, ls->page, ls->generation);
	if (ret)
		goto err;
	seen = *vmpf_lease_rec(ls->page);
	switch (vmpf_lease_rec_state(&seen, ls->generation)) {
	case VMPF_LEASE_FREE:
		break;
	case VMPF_LEASE_READING:
	case VMPF_LEASE_RESTORED:
		if (!force)
			ret = vmpf_lease_watch(st, ls->page, ls->generation, &seen);
		break;
	default:
		if (!force)
			ret = -EALREADY;
		break;
	}
	if (ret)
		goto err;
	if (force && vmpf_lease_rec_state(&seen, ls->generation) != VMPF_LEASE_FREE)
		pr_warn("taking the image over from host %.64s (pid %u) by force\n",
			seen.host, le32_to_cpu(seen.pid));

	ls->owner = get_random_u64() ?: 1;
	ls->takeovers = vmpf_lease_valid(&seen, ls->generation) ?
			le64_to_cpu(seen.takeovers) + 1 : 1;
	ls->acquired_ns = ktime_get_real_ns();
	ls->period_ms = vmpf_lease_period(READ_ONCE(lease_ms));
	ls->pid = task_tgid_nr(current);
	strscpy_pad(ls->host, utsname()->nodename, sizeof(ls->host));
	ret = vmpf_lease_write(ls, st, VMPF_LEASE_READING);
	if (ret)
		goto err;
	ls->renewed_ns = ktime_get_ns();
	/* Held from here: vmpf_lease_release() lets go if the open fails. */
	ls->store.file = get_file(st->file);
	ls->store.size = st->size;
	ls->state = VMPF_LEASE_READING;
	return 0;

err:
	__free_page(ls->page);
	ls->page = NULL;
	/* The image went away under us: the file holds no committed image now. */
	return ret == -ESTALE ? -ENODATA : ret;
}

/*
 * Read the lease back, lease_confirm_ms after it was written: still ours,
 * the renewal starts; another session's (it took the image in the same
 * moment), -EBUSY and it is left to that one.
 */
int vmpf_lease_confirm(struct vmpf_lease *ls)
{
	u64 since = ktime_get_ns() - ls->renewed_ns;
	u64 wait = (u64)READ_ONCE(lease_confirm_ms) * NSEC_PER_MSEC;
	int ret;

	if (!ls->page)
		return 0;
	if (since < wait)
		schedule_timeout_killable(nsecs_to_jiffies(wait - since) + 1);
	if (fatal_signal_pending(current))
		return -EINTR;	/* vmpf_lease_release() lets go */
	mutex_lock(&ls->lock);
	ret = vmpf_lease_read(&ls->store, ls->page, ls->generation);
	if (!ret && !vmpf_lease_ours(ls)) {
		pr_info("another session took the image at the same moment (host %.64s)\n",
			vmpf_lease_rec(ls->page)->host);
		ls->state = VMPF_LEASE_LOST;
		ret = -EBUSY;
	}
	if (!ret)
		queue_delayed_work(system_unbound_wq, &ls->work,
				   msecs_to_jiffies(ls->period_ms / 4));
	mutex_unlock(&ls->lock);
	return ret == -ESTALE ? -ENODATA : ret;
}

/*
 * Every page of the image was read: say RESTORED now (from the worker: the
 * caller may be a fault handler).
 */
void vmpf_lease_finish(struct vmpf_lease *ls)
{
	if (!ls->page)
		return;
	WRITE_ONCE(ls->finishing, true);
	mod_delayed_work(system_unbound_wq, &ls->work, 0);
}

/* The session ends: write FREE, let go of the file. */
void vmpf_lease_release(struct vmpf_lease *ls)
{
	if (!ls->page)
		return;
	cancel_delayed_work_sync(&ls->work);
	mutex_lock(&ls->lock);
	if (vmpf_lease_held(ls->state)) {
		if (!vmpf_lease_read(&ls->store, ls->page, ls->generation) && vmpf_lease_ours(ls)) {
			ls->beat++;
			if (vmpf_lease_write(ls, &ls->store, VMPF_LEASE_FREE))
				pr_warn("letting go of the lease on the image failed: another host may take it over after %u ms\n",
					ls->period_ms);
		}
		ls->state = VMPF_LEASE_FREE;
	}
	vmpf_store_put(&ls->store);
	mutex_unlock(&ls->lock);
	__free_page(ls->page);
	ls->page = NULL;
}

u32 vmpf_lease_state(struct vmpf_lease *ls)
{
	return ls->page ? READ_ONCE(ls->state) : VMPF_LEASE_FREE;
}

/*
 * Before a migration into @st, or a restore that takes no lease: refuse
 * while a restore session renews a lease on the image the file holds
 * (-EBUSY, after watching it as vmpf_lease_take() does).  @reading:
 * only a READING lease counts (a migration: a RESTORED VM no longer
 * reads the file).  0 when the file holds no image, or nobody owns it.
 */
int vmpf_lease_check_target(struct vmpf_store *st, bool reading)
{
	struct page *page = alloc_page(GFP_KERNEL);
	struct vmpf_pf_lease seen;
	__le64 gen;
	int ret = 0;

	if (!page)
		return -ENOMEM;
	if (st->size < 2 * VMPF_PF_BLOCK)
		goto out;		/* too small for an image */
	ret = vmpf_store_read_page(st, page, 0);
	if (ret)
		goto out;
	if (vmpf_pf_check_super(page_address(page), st->size))
		goto out;		/* no image: nothing to own */
	gen = ((struct vmpf_pf_super *)page_address(page))->generation;
	ret = vmpf_lease_read(st, page, gen);
	if (ret)
		goto out;
	seen = *vmpf_lease_rec(page);
	switch (vmpf_lease_rec_state(&seen, gen)) {
	case VMPF_LEASE_RESTORED:
		if (reading)
			break;
		fallthrough;
	case VMPF_LEASE_READING:
		ret = vmpf_lease_watch(st, page, gen, &seen);
		/* Renewed, but now as RESTORED: a migration may go on. */
		if (ret == -EBUSY && reading &&
		    vmpf_lease_rec_state(vmpf_lease_rec(page), gen) == VMPF_LEASE_RESTORED)
			ret = 0;
		break;
	}
out:
	__free_page(page);
	/* Not committed, or changed meanwhile: no image anybody could own. */
	if (ret == -ESTALE || ret == -EALREADY)
		ret = 0;
	return ret;
}
