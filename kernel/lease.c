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
 * The record has a sector of block 1 to itself: a write reads block 1,
 * checks that it still holds the image's commit record and our lease, and
 * writes the lease's sector alone, never the commit record's (a migration
 * into the file rewrites block 1 meanwhile).  Where direct I/O cannot
 * write a sector alone (a device with 4 KiB logical blocks), the whole
 * block goes back after the superblock was checked too: a narrow window
 * remains there (docs/pagefile-format.md).  Lease writes are tried once,
 * never retried: a retried write would act on a read that is seconds old.
 *
 * Lifetime: the lease is allocated by vmpf_lease_take() and belongs to
 * the restore session; vmpf_lease_release() hands it to its worker, which
 * writes FREE (as a kworker: a VMM killed with SIGKILL would have its own
 * I/O cut short), lets go of the file and frees it.  The work runs on
 * vmpf_wq, which the module drains at unload.
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
MODULE_PARM_DESC(lease_confirm_ms, "ms between writing a new lease and reading it back (default 100, 10 to 5000): longer than a lease read and write take to reach the storage");

#define VMPF_LEASE_MS_MIN	1000
#define VMPF_LEASE_MS_MAX	300000
#define VMPF_CONFIRM_MS_MIN	10
#define VMPF_CONFIRM_MS_MAX	5000

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

/* Held by a session: READING or RESTORED. */
static bool vmpf_lease_held(u32 state)
{
	return state == VMPF_LEASE_READING || state == VMPF_LEASE_RESTORED;
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

/*
 * A device that cannot write the lease's sector alone: the whole block goes
 * back, so first make sure the superblock is still the image's (a new
 * migration writes it before block 1).
 */
static int vmpf_lease_write_block(struct vmpf_lease *ls)
{
	struct page *sb_page = alloc_page(GFP_KERNEL);
	const struct vmpf_pf_super *sb;
	int ret;

	if (!sb_page)
		return -ENOMEM;
	ret = vmpf_store_read_page(&ls->store, sb_page, 0);
	sb = page_address(sb_page);
	if (!ret && (memcmp(sb->magic, VMPF_PF_MAGIC, sizeof(sb->magic)) ||
		     sb->generation != ls->generation))
		ret = -ESTALE;
	if (!ret)
		ret = vmpf_store_write_pages(&ls->store, &ls->page, 1, VMPF_PF_BLOCK);
	__free_page(sb_page);
	return ret;
}

/* Write our record with @state into block 1 as last read into @ls->page. */
static int vmpf_lease_write(struct vmpf_lease *ls, u32 state)
{
	struct vmpf_pf_lease *l = vmpf_lease_rec(ls->page);
	int ret;

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
	if (ls->whole_block)
		return vmpf_lease_write_block(ls);
	/* The record's 512-byte sector alone. */
	ret = vmpf_store_write_part(&ls->store, ls->page, VMPF_PF_LEASE_OFF - VMPF_PF_BLOCK,
				    512, VMPF_PF_LEASE_OFF);
	if (ret == -EINVAL) {
		ls->whole_block = true;
		ret = vmpf_lease_write_block(ls);
	}
	return ret;
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
 * another session; -EALREADY when it became REVOKED.  A record that reads
 * invalid meanwhile (torn) changes nothing: the watch goes on.  Sleeps
 * killably: a process being killed gets -EINTR.
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
		if (!memcmp(now, seen, sizeof(*now)) || !vmpf_lease_valid(now, gen))
			continue;
		switch (le32_to_cpu(now->state)) {
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

/* Every lease allocated, for the module's unload (vmpf_lease_exit()). */
static LIST_HEAD(vmpf_leases);
static DEFINE_SPINLOCK(vmpf_leases_lock);	/* protects vmpf_leases */

/* Let go for good: the worker's last step; frees @ls. */
static void vmpf_lease_free(struct vmpf_lease *ls)
{
	spin_lock(&vmpf_leases_lock);
	list_del(&ls->node);
	spin_unlock(&vmpf_leases_lock);
	vmpf_store_put(&ls->store);
	__free_page(ls->page);
	kfree(ls);
}

static void vmpf_lease_renew(struct work_struct *work)
{
	struct vmpf_lease *ls = container_of(to_delayed_work(work), struct vmpf_lease, work);
	bool releasing = READ_ONCE(ls->releasing);
	u32 state = releasing ? VMPF_LEASE_FREE :
		    READ_ONCE(ls->finishing) ? VMPF_LEASE_RESTORED : VMPF_LEASE_READING;
	int ret;

	mutex_lock(&ls->lock);
	if (!vmpf_lease_held(ls->state))
		goto out;
	ret = vmpf_lease_read(&ls->store, ls->page, ls->generation);
	if (ret == -ESTALE || (!ret && !vmpf_lease_ours(ls))) {
		if (releasing)
			;	/* nothing of ours to let go of */
		else if (ls->state == VMPF_LEASE_RESTORED)
			pr_info("a restored VM's page file now holds %s: its lease ends\n",
				ret ? "a new migration" : "another owner's lease");
		else
			pr_warn("a restore session lost its lease on the image: %s; pages not read yet may fail\n",
				ret ? "a new migration went into the page file" :
				"another session took the image over");
		WRITE_ONCE(ls->state, VMPF_LEASE_LOST);
		goto out;
	}
	if (!ret) {
		ls->beat++;
		ret = vmpf_lease_write(ls, state);
	}
	if (ret && releasing) {
		pr_warn("letting go of the lease on the image failed (error %d): another host may take it over after %u ms\n",
			ret, ls->period_ms);
	} else if (ret) {
		/* Keep trying: the owner is alive, the storage may come back. */
		if (!ls->logged)
			pr_warn("renewing the lease on the image failed (error %d): after %u ms without a renewal another host may take the image over\n",
				ret, ls->period_ms);
		ls->logged = true;
	} else {
		ls->logged = false;
		ls->renewed_ns = ktime_get_ns();
		WRITE_ONCE(ls->state, state);
	}
out:
	if (releasing) {
		mutex_unlock(&ls->lock);
		vmpf_lease_free(ls);
		return;
	}
	if (vmpf_lease_held(ls->state))
		queue_delayed_work(vmpf_wq, &ls->work, msecs_to_jiffies(ls->period_ms / 4));
	mutex_unlock(&ls->lock);
}

/*
 * Take the lease on the image @sb describes in @st, for a restore session
 * (VMPF_IOC_RESTORE_OPEN, which may sleep for the owner's lease period):
 * watch the owner's, write ours, start renewing.  vmpf_lease_confirm()
 * then reads it back, at least lease_confirm_ms later: the caller loads
 * the page table meanwhile.  @force: take it without watching the owner,
 * whatever it says.  *@out is the lease (NULL on failure).
 */
int vmpf_lease_take(struct vmpf_lease **out, struct vmpf_store *st,
		    const struct vmpf_pf_super *sb, bool force)
{
	struct vmpf_pf_lease seen;
	struct vmpf_lease *ls;
	int ret;

	*out = NULL;
	if (!(st->file->f_mode & FMODE_WRITE))
		return -EROFS;
	/* O_APPEND would put the record at the end of the file. */
	if (st->file->f_flags & O_APPEND)
		return -EINVAL;
	ls = kzalloc(sizeof(*ls), GFP_KERNEL_ACCOUNT);
	if (!ls)
		return -ENOMEM;
	ls->page = alloc_page(GFP_KERNEL);
	if (!ls->page) {
		kfree(ls);
		return -ENOMEM;
	}
	mutex_init(&ls->lock);
	INIT_DELAYED_WORK(&ls->work, vmpf_lease_renew);
	spin_lock(&vmpf_leases_lock);
	list_add(&ls->node, &vmpf_leases);
	spin_unlock(&vmpf_leases_lock);
	ls->store.file = get_file(st->file);
	ls->store.size = st->size;
	ls->store.once = true;
	ls->generation = sb->generation;

	ret = vmpf_lease_read(&ls->store, ls->page, ls->generation);
	if (ret)
		goto err;
	seen = *vmpf_lease_rec(ls->page);
	switch (vmpf_lease_rec_state(&seen, ls->generation)) {
	case VMPF_LEASE_FREE:
		break;
	case VMPF_LEASE_READING:
	case VMPF_LEASE_RESTORED:
		if (!force)
			ret = vmpf_lease_watch(&ls->store, ls->page, ls->generation, &seen);
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
	ret = vmpf_lease_write(ls, VMPF_LEASE_READING);
	/* A read-only device (blockdev --setro) refuses the write itself. */
	if (ret == -EPERM || ret == -EACCES)
		ret = -EROFS;
	if (ret)
		goto err;
	ls->renewed_ns = ktime_get_ns();
	ls->written_ns = ls->renewed_ns;
	ls->state = VMPF_LEASE_READING;
	/* Renewed from now on, while the open goes on loading. */
	queue_delayed_work(vmpf_wq, &ls->work, msecs_to_jiffies(ls->period_ms / 4));
	*out = ls;
	return 0;

err:
	vmpf_lease_free(ls);
	/* The image went away under us: the file holds no committed image now. */
	return ret == -ESTALE ? -ENODATA : ret;
}

/*
 * Read the lease back, lease_confirm_ms after it was first written: still
 * ours, 0; another session's (it took the image in the same moment),
 * -EBUSY, and it is left to that one.
 */
int vmpf_lease_confirm(struct vmpf_lease *ls)
{
	u64 wait, end;
	int ret;

	if (!ls)
		return 0;
	wait = clamp_t(u32, READ_ONCE(lease_confirm_ms), VMPF_CONFIRM_MS_MIN,
		       VMPF_CONFIRM_MS_MAX) * NSEC_PER_MSEC;
	end = ls->written_ns + wait;
	while (ktime_get_ns() < end) {
		schedule_timeout_killable(nsecs_to_jiffies(end - ktime_get_ns()) + 1);
		if (fatal_signal_pending(current))
			return -EINTR;	/* vmpf_lease_release() lets go */
	}
	mutex_lock(&ls->lock);
	ret = vmpf_lease_read(&ls->store, ls->page, ls->generation);
	if (!ret && !vmpf_lease_ours(ls)) {
		pr_info("another session took the image at the same moment (host %.64s)\n",
			vmpf_lease_rec(ls->page)->host);
		WRITE_ONCE(ls->state, VMPF_LEASE_LOST);
		ret = -EBUSY;
	}
	mutex_unlock(&ls->lock);
	return ret == -ESTALE ? -ENODATA : ret;
}

/*
 * Every page of the image was read: say RESTORED now (from the worker: the
 * caller may be a fault handler).
 */
void vmpf_lease_finish(struct vmpf_lease *ls)
{
	if (!ls)
		return;
	WRITE_ONCE(ls->finishing, true);
	mod_delayed_work(vmpf_wq, &ls->work, 0);
}

/*
 * The session ends: its worker writes FREE, lets go of the file and frees
 * the lease.  Does not wait for the storage.
 */
void vmpf_lease_release(struct vmpf_lease *ls)
{
	if (!ls)
		return;
	WRITE_ONCE(ls->releasing, true);
	mod_delayed_work(vmpf_wq, &ls->work, 0);
}

/*
 * Unload, after every file is gone: every session has let go of its lease
 * and each lease's last write is queued, so vmpf_wq's drain frees them
 * all.  A lease whose session never let go would renew itself for ever
 * and the drain would never end: say so, and let go of it.
 */
void vmpf_lease_exit(void)
{
	struct vmpf_lease *ls;

	spin_lock(&vmpf_leases_lock);
	list_for_each_entry(ls, &vmpf_leases, node) {
		if (READ_ONCE(ls->releasing)) {
			/* Its storage may be away (a hard NFS mount waits). */
			pr_info("unload waits for the last write of a lease on an image (host %.64s, pid %u)\n",
				ls->host, ls->pid);
			continue;
		}
		pr_err("unload: a lease on an image outlived its restore session (host %.64s, pid %u): letting go of it\n",
		       ls->host, ls->pid);
		WRITE_ONCE(ls->releasing, true);
		mod_delayed_work(vmpf_wq, &ls->work, 0);
	}
	spin_unlock(&vmpf_leases_lock);
}

/* The status's view, VMPF_LEASE_*: LOST also when not renewed for a period. */
u32 vmpf_lease_state(struct vmpf_lease *ls)
{
	u32 state;

	if (!ls)
		return VMPF_LEASE_FREE;
	state = READ_ONCE(ls->state);
	if (vmpf_lease_held(state) &&
	    ktime_get_ns() - READ_ONCE(ls->renewed_ns) > (u64)ls->period_ms * NSEC_PER_MSEC)
		return VMPF_LEASE_EXPIRED;
	return state;
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
