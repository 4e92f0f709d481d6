// SPDX-License-Identifier: GPL-2.0
/*
 * Source sessions: the ioctls a VMM (and vmpf-ctl, through the VMM's
 * descriptor) uses to attach a VM and a page file, start pre-copy, watch
 * it, switch over, abort, and report its own writes to guest memory; and
 * the session's lifetime.  The work itself is done by precopy.c.
 */
#include <linux/bits.h>
#include <linux/file.h>
#include <linux/sizes.h>
#include <linux/kthread.h>
#include <linux/kvm_host.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "source.h"

#define VMPF_DEFAULT_STATE_MAX		SZ_1M
#define VMPF_LIMIT_STATE_MAX		SZ_1G
#define VMPF_DEFAULT_MAX_ROUNDS		30
#define VMPF_LIMIT_MAX_ROUNDS		10000
#define VMPF_DEFAULT_TARGET_PAGES	256
#define VMPF_DEFAULT_DOWNTIME_NS	(300 * NSEC_PER_MSEC)	/* as QEMU's */
#define VMPF_LIMIT_DOWNTIME_NS		(3600 * NSEC_PER_SEC)
#define VMPF_LIMIT_REGION_BYTES		BIT_ULL(42)	/* 4 TiB */

/*
 * The VMs that have a source session: one live session at a time per VM
 * (a second would fight the first over the memslots' flags and dirty
 * logs).  A session that ended (its worker has put the memslots back) no
 * longer counts: a VMM may try again while a tool still holds a copy of
 * the old descriptor.  An entry lives as long as its session holds the VM
 * file, so a struct kvm in the list cannot be freed and reused meanwhile.
 * Lock order: vmpf_source_vms_lock, then a session's @lock.
 */
static LIST_HEAD(vmpf_source_vms);
static DEFINE_SPINLOCK(vmpf_source_vms_lock);	/* protects vmpf_source_vms */

static int vmpf_source_claim_vm(struct vmpf_source *src, struct kvm *kvm)
{
	struct vmpf_source *other;
	int ret = 0;

	spin_lock(&vmpf_source_vms_lock);
	list_for_each_entry(other, &vmpf_source_vms, vm_node) {
		if (other->vm_file->private_data != kvm)
			continue;
		spin_lock(&other->lock);
		if (!vmpf_phase_done(other->phase))
			ret = -EBUSY;
		spin_unlock(&other->lock);
	}
	if (!ret)
		list_add(&src->vm_node, &vmpf_source_vms);
	spin_unlock(&vmpf_source_vms_lock);
	return ret;
}

static struct vmpf_source *vmpf_source_get(struct vmpf_file *vf)
{
	/* Pairs with the release in vmpf_source_attach(). */
	return smp_load_acquire(&vf->src);
}

/* Count @bytes held by @src, in the session's and the module's totals. */
void vmpf_src_account(struct vmpf_source *src, size_t bytes)
{
	src->mem_bytes += bytes;
	atomic64_add(bytes, &vmpf_counters.mem_bytes);
}

void *vmpf_src_zalloc(struct vmpf_source *src, size_t size)
{
	void *p = kvzalloc(size, GFP_KERNEL_ACCOUNT);

	if (p)
		vmpf_src_account(src, size);
	return p;
}

static void vmpf_source_free(struct vmpf_source *src)
{
	unsigned int i;

	if (!list_empty(&src->vm_node)) {
		spin_lock(&vmpf_source_vms_lock);
		list_del(&src->vm_node);
		spin_unlock(&vmpf_source_vms_lock);
	}
	for (i = 0; i < src->nr_regions; i++) {
		kvfree(src->regions[i].pending);
		kvfree(src->regions[i].marked);
	}
	kvfree(src->harvest);
	kvfree(src->vcpus);
	vmpf_src_table_free(src);
	for (i = 0; i < VMPF_IO_PAGES; i++)
		if (src->io_pages[i])
			__free_page(src->io_pages[i]);
	kvfree(src->state);
	vmpf_store_put(&src->store);
	if (src->vm_file)
		fput(src->vm_file);
	if (src->mm)
		mmdrop(src->mm);
	if (src->ctl_mm)
		mmdrop(src->ctl_mm);
	atomic64_sub(src->mem_bytes, &vmpf_counters.mem_bytes);
	kvfree(src);
}

/* Is @ms the memslot @r was registered as, with @flags? */
bool vmpf_slot_matches(const struct kvm_memory_slot *ms, const struct vmpf_sregion *r,
		       u32 flags)
{
	return ms && ms->base_gfn == r->gpa >> PAGE_SHIFT && ms->npages == r->npages &&
	       ms->userspace_addr == r->uaddr && ms->flags == flags;
}

/*
 * Memslots of KVM's other address spaces (x86: SMM's, where SMRAM is
 * mapped while a vCPU is in System Management Mode).  Their writes go to
 * their own dirty logs, which the session does not read: such a VM cannot
 * be migrated safely.  Called with @kvm->slots_lock held.
 */
int vmpf_smm_slots(struct kvm *kvm)
{
	int as, n = 0;

	for (as = 1; as < kvm_arch_nr_memslot_as_ids(kvm); as++)
		n += !kvm_memslots_empty(__kvm_memslots(kvm, as));
	return n;
}

/*
 * May the caller work on @kvm?  Its own VM; or, if the handshake asked for
 * VMPF_FEATURE_EXTERNAL, any VM when the caller has CAP_SYS_PTRACE: the
 * session reads and tracks the memory of the VM's process, which only who
 * may ptrace that process should do, and ptrace_may_access() is not
 * exported; the capability is what passes it for every process.
 */
static int vmpf_vm_access(struct vmpf_file *vf, struct kvm *kvm)
{
	if (kvm->mm == current->mm)
		return 0;
	if (!(vf->features & VMPF_FEATURE_EXTERNAL) || !capable(CAP_SYS_PTRACE))
		return -EPERM;
	return 0;
}

/* FINISH and MARK_DIRTY: the VM's process, or the one that attached it. */
static bool vmpf_source_caller_ok(struct vmpf_source *src)
{
	return current->mm == src->mm || (src->ctl_mm && current->mm == src->ctl_mm);
}

long vmpf_vm_memslots(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_vm_memslots m;
	struct vmpf_memslot *out;
	struct kvm_memory_slot *ms;
	struct kvm_memslots *slots;
	struct file *vm_file;
	struct kvm *kvm;
	u64 cap, n = 0;
	int as, bkt;
	long ret;

	if (copy_from_user(&m, uarg, sizeof(m)))
		return -EFAULT;
	if (m.flags || m.reserved[0] || m.reserved[1] || m.vm_fd > INT_MAX ||
	    (m.slots_cap && !m.slots))
		return -EINVAL;
	cap = min_t(u64, m.slots_cap, VMPF_MAX_MEMSLOTS);
	vm_file = fget(m.vm_fd);
	if (!vm_file)
		return -EBADF;
	ret = -EINVAL;
	if (!file_is_kvm(vm_file))
		goto out_file;
	kvm = vm_file->private_data;
	ret = vmpf_vm_access(vf, kvm);
	if (ret)
		goto out_file;
	out = kvcalloc(max_t(u64, cap, 1), sizeof(*out), GFP_KERNEL_ACCOUNT);
	ret = -ENOMEM;
	if (!out)
		goto out_file;

	mutex_lock(&kvm->slots_lock);
	for (as = 0; as < kvm_arch_nr_memslot_as_ids(kvm); as++) {
		slots = __kvm_memslots(kvm, as);
		if (!as)
			m.generation = slots->generation;
		kvm_for_each_memslot(ms, bkt, slots) {
			if (n < cap)
				out[n] = (struct vmpf_memslot){
					.slot = (u64)as << 16 | ms->id,
					.gpa = ms->base_gfn << PAGE_SHIFT,
					.size = ms->npages << PAGE_SHIFT,
					.uaddr = ms->userspace_addr,
					.flags = ms->flags,
				};
			n++;
		}
	}
	mutex_unlock(&kvm->slots_lock);

	m.nr_slots = n;
	ret = 0;
	if (copy_to_user(u64_to_user_ptr(m.slots), out, min(n, cap) * sizeof(*out)) ||
	    copy_to_user(uarg, &m, sizeof(m)))
		ret = -EFAULT;
	kvfree(out);
out_file:
	fput(vm_file);
	return ret;
}

/* The region must be exactly one of the VM's memslots, not yet logging. */
static int vmpf_match_memslot(struct kvm *kvm, struct vmpf_sregion *r)
{
	struct kvm_memory_slot *ms;
	int ret = -EINVAL;

	mutex_lock(&kvm->slots_lock);
	ms = id_to_memslot(__kvm_memslots(kvm, 0), r->slot);
	if (ms && vmpf_slot_matches(ms, r, ms->flags)) {
		/* Someone else reads this log: we would steal its bits. */
		if (ms->flags & KVM_MEM_LOG_DIRTY_PAGES) {
			ret = -EBUSY;
		} else {
			r->orig_flags = ms->flags;
			ret = 0;
		}
	}
	mutex_unlock(&kvm->slots_lock);
	return ret;
}

/*
 * Is @r still the memslot it was at attach, with @flags?  Before the worker
 * changes a memslot's flags: KVM_SET_USER_MEMORY_REGION would re-create a
 * slot the VMM deleted meanwhile.  (A VMM deleting it between this check
 * and the change still races; vmpf_dirty_check_slots() then fails the
 * session at the next harvest.)
 */
bool vmpf_source_slot_is(struct vmpf_source *src, struct vmpf_sregion *r, u32 flags)
{
	struct kvm *kvm = src->vm_file->private_data;
	bool ret;

	mutex_lock(&kvm->slots_lock);
	ret = vmpf_slot_matches(id_to_memslot(__kvm_memslots(kvm, 0), r->slot), r, flags);
	mutex_unlock(&kvm->slots_lock);
	return ret;
}

/*
 * Regions page aligned, not wrapping, no two with one slot or sharing
 * guest-physical pages.  Untracked ones (VMPF_SLOT_NONE, @external only)
 * have no guest-physical address; at least one region must be a memslot.
 */
static int vmpf_check_regions(const struct vmpf_region *regs, unsigned int n,
			      bool external)
{
	unsigned int i, j, slots = 0;

	for (i = 0; i < n; i++) {
		const struct vmpf_region *a = &regs[i];
		bool none = a->slot == VMPF_SLOT_NONE;

		if (!a->size || a->size > VMPF_LIMIT_REGION_BYTES ||
		    !PAGE_ALIGNED(a->gpa) || !PAGE_ALIGNED(a->size) ||
		    !PAGE_ALIGNED(a->uaddr) || (a->slot > SHRT_MAX && !none) ||
		    (none && (!external || a->gpa)) ||
		    a->gpa + a->size < a->gpa || a->uaddr + a->size < a->uaddr ||
		    a->uaddr + a->size > TASK_SIZE)
			return -EINVAL;
		if (none)
			continue;
		slots++;
		for (j = 0; j < i; j++) {
			const struct vmpf_region *b = &regs[j];

			if (b->slot == VMPF_SLOT_NONE)
				continue;
			if (a->slot == b->slot ||
			    (a->gpa < b->gpa + b->size && b->gpa < a->gpa + a->size))
				return -EINVAL;
		}
	}
	return slots ? 0 : -EINVAL;
}

static int vmpf_source_alloc(struct vmpf_source *src)
{
	unsigned int i;

	for (i = 0; i < src->nr_regions; i++) {
		struct vmpf_sregion *r = &src->regions[i];
		size_t bytes = BITS_TO_LONGS(r->npages) * sizeof(long);

		r->pending = vmpf_src_zalloc(src, bytes);
		r->marked = vmpf_src_zalloc(src, bytes);
		if (!r->pending || !r->marked)
			return -ENOMEM;
	}
	src->harvest = vmpf_src_zalloc(src, BITS_TO_LONGS(src->max_region_pages) *
				       sizeof(long));
	if (!src->harvest)
		return -ENOMEM;
	if (vmpf_src_table_alloc(src))
		return -ENOMEM;
	for (i = 0; i < VMPF_IO_PAGES; i++) {
		src->io_pages[i] = alloc_page(GFP_KERNEL_ACCOUNT);
		if (!src->io_pages[i])
			return -ENOMEM;
		vmpf_src_account(src, PAGE_SIZE);
	}
	return 0;
}

long vmpf_source_attach(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source_attach a;
	struct vmpf_region *regs;
	struct vmpf_source *src;
	struct kvm *kvm;
	unsigned int i;
	u64 pages = 0;
	long ret;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved[0] || a.reserved[1] || a.reserved[2] ||
	    a.downtime_ns > VMPF_LIMIT_DOWNTIME_NS ||
	    !a.nr_regions || a.nr_regions > VMPF_MAX_REGIONS ||
	    a.vm_fd > INT_MAX || a.target_fd > INT_MAX ||
	    a.state_max > VMPF_LIMIT_STATE_MAX || a.max_rounds > VMPF_LIMIT_MAX_ROUNDS)
		return -EINVAL;
	/* Pairs with the release in vmpf_restore_open(). */
	if (vmpf_source_get(vf) || smp_load_acquire(&vf->rst))
		return -EBUSY;

	regs = kmalloc_array(a.nr_regions, sizeof(*regs), GFP_KERNEL);
	if (!regs)
		return -ENOMEM;
	if (copy_from_user(regs, u64_to_user_ptr(a.regions),
			   a.nr_regions * sizeof(*regs))) {
		ret = -EFAULT;
		goto err_regs;
	}
	ret = vmpf_check_regions(regs, a.nr_regions,
				 vf->features & VMPF_FEATURE_EXTERNAL);
	if (ret)
		goto err_regs;

	src = kvzalloc(sizeof(*src), GFP_KERNEL_ACCOUNT);
	if (!src) {
		ret = -ENOMEM;
		goto err_regs;
	}
	vmpf_src_account(src, sizeof(*src));
	INIT_LIST_HEAD(&src->vm_node);
	spin_lock_init(&src->lock);
	init_waitqueue_head(&src->wq);
	src->poll_wq = &vf->wq;
	src->phase = VMPF_PHASE_ATTACHED;
	src->max_rounds = a.max_rounds ?: VMPF_DEFAULT_MAX_ROUNDS;
	src->target_pages = a.target_pages ?: VMPF_DEFAULT_TARGET_PAGES;
	src->downtime_ns = a.downtime_ns ?: VMPF_DEFAULT_DOWNTIME_NS;
	src->throttle_max = VMPF_THROTTLE_MAX;

	src->vm_file = fget(a.vm_fd);
	if (!src->vm_file) {
		ret = -EBADF;
		goto err_src;
	}
	if (!file_is_kvm(src->vm_file)) {
		ret = -EINVAL;
		goto err_src;
	}
	kvm = src->vm_file->private_data;
	ret = vmpf_vm_access(vf, kvm);
	if (ret)
		goto err_src;
	/* Memory private to the guest (guest_memfd) cannot be read from here. */
	if (kvm_arch_has_private_mem(kvm)) {
		ret = -EMEDIUMTYPE;
		goto err_src;
	}
	ret = vmpf_source_claim_vm(src, kvm);
	if (ret)
		goto err_src;

	src->nr_regions = a.nr_regions;
	for (i = 0; i < a.nr_regions; i++) {
		struct vmpf_sregion *r = &src->regions[i];

		r->untracked = regs[i].slot == VMPF_SLOT_NONE;
		r->slot = r->untracked ? VMPF_PF_SLOT_NONE : regs[i].slot;
		r->gpa = regs[i].gpa;
		r->npages = regs[i].size >> PAGE_SHIFT;
		r->uaddr = regs[i].uaddr;
		r->first_page = pages;
		pages += r->npages;
		src->max_region_pages = max(src->max_region_pages, r->npages);
		ret = r->untracked ? 0 : vmpf_match_memslot(kvm, r);
		if (ret)
			goto err_src;
	}
	if (pages > VMPF_MAX_PAGES) {
		ret = -EINVAL;
		goto err_src;
	}
	/* SMRAM's writes would not be seen: refuse (the VMM can turn SMM off). */
	mutex_lock(&kvm->slots_lock);
	ret = vmpf_smm_slots(kvm) ? -EXDEV : 0;
	mutex_unlock(&kvm->slots_lock);
	if (ret)
		goto err_src;
	/* Harvests must then also clear the log: see dirty.c. */
	src->manual_protect = READ_ONCE(kvm->manual_dirty_log_protect);
	/* The dirty ring replaces the log (KVM_GET_DIRTY_LOG fails with it). */
	if (READ_ONCE(kvm->dirty_ring_size)) {
		/*
		 * With initially-set, KVM write-protects nothing when logging
		 * goes on, and ring mode never clears a log that would: writes
		 * through already-writable mappings would never be pushed.
		 */
		if (READ_ONCE(kvm->manual_dirty_log_protect) & KVM_DIRTY_LOG_INITIALLY_SET) {
			ret = -ENOPROTOOPT;
			goto err_src;
		}
		src->vcpus = vmpf_src_zalloc(src, sizeof(*src->vcpus));
		if (!src->vcpus) {
			ret = -ENOMEM;
			goto err_src;
		}
	}

	ret = vmpf_store_get(&src->store, a.target_fd, true);
	if (ret)
		goto err_src;
	vmpf_pf_layout(&src->layout, pages, a.state_max ?: VMPF_DEFAULT_STATE_MAX);
	a.required_bytes = src->layout.file_size;
	a.total_pages = pages;
	if (copy_to_user(uarg, &a, sizeof(a))) {
		ret = -EFAULT;
		goto err_src;
	}
	if (src->store.size < src->layout.file_size) {
		ret = -ENOSPC;
		goto err_src;
	}
	/* Never write over an image a restore still reads (lease.c). */
	ret = vmpf_lease_check_target(&src->store, true);
	if (ret)
		goto err_src;

	ret = vmpf_source_alloc(src);
	if (ret)
		goto err_src;
	/* The VM's process, which the worker works in; and who attached. */
	mmgrab(kvm->mm);
	src->mm = kvm->mm;
	if (kvm->mm != current->mm) {
		mmgrab(current->mm);
		src->ctl_mm = current->mm;
	}

	mutex_lock(&vf->lock);
	if (vf->src || vf->rst) {
		mutex_unlock(&vf->lock);
		ret = -EBUSY;
		goto err_src;
	}
	/* Pairs with the acquire in vmpf_source_get(). */
	smp_store_release(&vf->src, src);
	mutex_unlock(&vf->lock);
	wake_up_all(&vf->wq);
	atomic64_inc(&vmpf_counters.sessions);
	kfree(regs);
	return 0;

err_src:
	vmpf_source_free(src);
err_regs:
	kfree(regs);
	return ret;
}

long vmpf_source_start(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source *src = vmpf_source_get(vf);
	struct task_struct *t;
	long ret = 0;

	if (uarg)
		return -EINVAL;
	if (!src)
		return -ENOENT;

	/* @vf->lock serialises concurrent starts. */
	mutex_lock(&vf->lock);
	if (READ_ONCE(src->phase) != VMPF_PHASE_ATTACHED || src->worker) {
		ret = -EINVAL;
		goto out;
	}
	t = kthread_create(vmpf_precopy_thread, src, "vmpf-src/%d",
			   task_tgid_nr(current));
	if (IS_ERR(t)) {
		ret = PTR_ERR(t);
		goto out;
	}
	spin_lock(&src->lock);
	if (src->phase != VMPF_PHASE_ATTACHED) {
		/* Aborted meanwhile; the thread never ran. */
		spin_unlock(&src->lock);
		kthread_stop(t);
		ret = -EINVAL;
		goto out;
	}
	get_task_struct(t);
	src->worker = t;
	src->phase = VMPF_PHASE_PRECOPY;
	src->start_ns = ktime_get_ns();
	spin_unlock(&src->lock);
	wake_up_process(t);
out:
	mutex_unlock(&vf->lock);
	return ret;
}

long vmpf_source_status(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source *src = vmpf_source_get(vf);
	struct vmpf_round_stats *rounds = NULL;
	struct vmpf_status in, st = { 0 };
	u64 n = 0, k, first;
	long ret = 0;

	if (copy_from_user(&in, uarg, sizeof(in)))
		return -EFAULT;
	if ((in.in_flags & ~VMPF_STATUS_IN_FLAGS_ALL) || in.reserved_in[0])
		return -EINVAL;
	if (in.rounds_cap && !in.rounds)
		return -EINVAL;

	st.rounds = in.rounds;
	st.rounds_cap = in.rounds_cap;
	if (!src)
		goto out;
	if (st.rounds_cap) {
		rounds = kmalloc_array(VMPF_STATS_KEPT, sizeof(*rounds), GFP_KERNEL);
		if (!rounds)
			return -ENOMEM;
	}

	spin_lock(&src->lock);
	st.phase = src->phase;
	st.flags = src->flags;
	st.round = src->round;
	st.nr_rounds = src->nr_rounds;
	st.total_pages = src->layout.total_pages;
	st.pages_written = src->pages_written;
	st.zero_pages = src->zero_pages;
	st.bytes_written = src->bytes_written;
	st.dirty_pages = src->dirty_pages;
	st.elapsed_ns = src->start_ns ? ktime_get_ns() - src->start_ns : 0;
	st.error = src->error;
	st.mem_bytes = src->mem_bytes;
	st.io_retries = atomic64_read(&src->store.retries);
	st.est_downtime_ns = src->est_downtime_ns;
	st.throttle_pct = src->throttle_pct;
	st.throttle_peak = src->throttle_peak;
	if (in.in_flags & VMPF_STATUS_ACK_THROTTLE)
		src->throttle_acked = src->throttle_gen;
	strscpy(st.message, src->message, sizeof(st.message));
	if (rounds) {
		n = min3(st.nr_rounds, st.rounds_cap, (u64)VMPF_STATS_KEPT);
		first = st.nr_rounds - n;
		for (k = 0; k < n; k++)
			rounds[k] = src->stats[(first + k) % VMPF_STATS_KEPT];
	}
	spin_unlock(&src->lock);

	if (n && copy_to_user(u64_to_user_ptr(st.rounds), rounds, n * sizeof(*rounds)))
		ret = -EFAULT;
	kfree(rounds);
	if (ret)
		return ret;
out:
	if (copy_to_user(uarg, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

long vmpf_source_set_throttle(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source *src = vmpf_source_get(vf);
	struct vmpf_throttle t;
	long ret = 0;

	if (copy_from_user(&t, uarg, sizeof(t)))
		return -EFAULT;
	if (t.reserved[0] || t.reserved[1])
		return -EINVAL;
	if (t.max_pct > VMPF_THROTTLE_MAX || t.pct > VMPF_THROTTLE_MAX)
		return -EINVAL;
	if (!src)
		return -ENOENT;
	spin_lock(&src->lock);
	/* 0: the maximum in force stays. */
	t.max_pct = t.max_pct ?: src->throttle_max;
	if (t.pct > t.max_pct) {
		ret = -EINVAL;
	} else if (src->phase == VMPF_PHASE_ATTACHED || src->phase == VMPF_PHASE_PRECOPY) {
		src->throttle_pct = t.pct;
		src->throttle_max = t.max_pct;
		src->throttle_peak = max(src->throttle_peak, t.pct);
		if (src->vcpus)
			memset(src->vcpus->throttle, t.pct, sizeof(src->vcpus->throttle));
		src->throttle_gen++;
	} else {
		ret = -EINVAL;
	}
	spin_unlock(&src->lock);
	if (!ret)
		vmpf_source_wake(src);
	return ret;
}

long vmpf_source_round_policy(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source *src = vmpf_source_get(vf);
	struct vmpf_round_policies in, out = { 0 };
	struct vmpf_round_policy *pol = NULL;
	u64 n = 0, k, first;
	long ret = 0;

	if (copy_from_user(&in, uarg, sizeof(in)))
		return -EFAULT;
	if (in.reserved_in[0] || in.reserved_in[1] || (in.rounds_cap && !in.rounds))
		return -EINVAL;
	if (!src)
		return -ENOENT;
	if (in.rounds_cap) {
		pol = kmalloc_array(VMPF_STATS_KEPT, sizeof(*pol), GFP_KERNEL);
		if (!pol)
			return -ENOMEM;
	}
	out.rounds = in.rounds;
	out.rounds_cap = in.rounds_cap;
	spin_lock(&src->lock);
	out.nr_rounds = src->nr_rounds;
	if (pol) {
		n = min3(out.nr_rounds, in.rounds_cap, (u64)VMPF_STATS_KEPT);
		first = out.nr_rounds - n;
		for (k = 0; k < n; k++)
			pol[k] = src->policy[(first + k) % VMPF_STATS_KEPT];
	}
	spin_unlock(&src->lock);

	if (n && copy_to_user(u64_to_user_ptr(in.rounds), pol, n * sizeof(*pol)))
		ret = -EFAULT;
	kfree(pol);
	if (!ret && copy_to_user(uarg, &out, sizeof(out)))
		ret = -EFAULT;
	return ret;
}

long vmpf_source_vcpu_throttle(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source *src = vmpf_source_get(vf);
	struct vmpf_vcpu_throttle in, vt = { 0 };
	struct vmpf_vcpu_stat *stats = NULL;
	u64 n = 0, i;
	long ret = 0;

	if (copy_from_user(&in, uarg, sizeof(in)))
		return -EFAULT;
	if ((in.in_flags & ~VMPF_STATUS_IN_FLAGS_ALL) || in.reserved_in ||
	    (in.vcpus_cap && !in.vcpus))
		return -EINVAL;
	if (!src)
		return -ENOENT;
	vt.vcpus = in.vcpus;
	vt.vcpus_cap = in.vcpus_cap;
	vt.in_flags = in.in_flags;
	if (src->vcpus && in.vcpus_cap) {
		stats = kmalloc_array(VMPF_MAX_VCPUS, sizeof(*stats), GFP_KERNEL);
		if (!stats)
			return -ENOMEM;
	}

	spin_lock(&src->lock);
	vt.throttle_pct = src->throttle_pct;
	vt.throttle_max = src->throttle_max;
	if (src->vcpus) {
		vt.per_vcpu = 1;
		vt.nr_vcpus = src->vcpus->nr;
		n = stats ? min(vt.nr_vcpus, in.vcpus_cap) : 0;
		for (i = 0; i < n; i++)
			stats[i] = (struct vmpf_vcpu_stat){
				.vcpu = i,
				.throttle_pct = src->vcpus->throttle[i],
				.dirty_pages = src->vcpus->dirty[i],
				.dirty_total = src->vcpus->total[i],
				.ring_next = src->vcpus->next[i],
			};
	}
	if (in.in_flags & VMPF_STATUS_ACK_THROTTLE)
		src->throttle_acked = src->throttle_gen;
	spin_unlock(&src->lock);

	if (n && copy_to_user(u64_to_user_ptr(in.vcpus), stats, n * sizeof(*stats)))
		ret = -EFAULT;
	kfree(stats);
	if (!ret && copy_to_user(uarg, &vt, sizeof(vt)))
		ret = -EFAULT;
	return ret;
}

long vmpf_source_request_finish(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source *src = vmpf_source_get(vf);
	long ret = 0;

	if (uarg)
		return -EINVAL;
	if (!src)
		return -ENOENT;
	spin_lock(&src->lock);
	if (src->phase == VMPF_PHASE_PRECOPY)
		src->flags |= VMPF_STATUS_FINISH_REQUESTED;
	else
		ret = -EINVAL;
	spin_unlock(&src->lock);
	if (!ret)
		vmpf_source_wake(src);
	return ret;
}

long vmpf_source_finish(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source *src = vmpf_source_get(vf);
	enum vmpf_phase from = VMPF_PHASE_PRECOPY;
	enum vmpf_cmd cmd_from = VMPF_CMD_NONE;
	enum vmpf_cmd cmd = VMPF_CMD_FINISH;
	struct vmpf_finish f;
	void *state = NULL;
	unsigned long busy;
	u64 exits = 0;
	long ret;

	if (copy_from_user(&f, uarg, sizeof(f)))
		return -EFAULT;
	if ((f.flags & ~VMPF_FINISH_FLAGS_ALL) ||
	    f.flags == VMPF_FINISH_FLAGS_ALL ||
	    (f.flags && !(vf->features & VMPF_FEATURE_EXTERNAL)) ||
	    ((f.flags & VMPF_FINISH_PAGES) && (f.state || f.state_len)) ||
	    f.reserved[0] || f.reserved[1] || f.reserved[2])
		return -EINVAL;
	if (!src)
		return -ENOENT;
	if (!vmpf_source_caller_ok(src))
		return -EPERM;
	if (f.state_len > src->layout.state_max || (f.state_len && !f.state))
		return -EINVAL;
	if (f.flags & VMPF_FINISH_STATE) {
		/* The second step: the worker waits in STATE_WAIT for it. */
		from = VMPF_PHASE_STATE_WAIT;
		cmd_from = VMPF_CMD_FINISH;
		cmd = VMPF_CMD_STATE;
	}

	if (cmd == VMPF_CMD_FINISH) {
		/*
		 * Every vCPU out of KVM_RUN, and their VM exits so far: from
		 * here to the commit record the guest must not run (dirty.c).
		 * A running vCPU refuses FINISH; the migration goes on.
		 */
		ret = vmpf_vcpu_exits(src, &exits, &busy);
		if (ret) {
			pr_info_ratelimited("FINISH refused: vCPU %lu is running (in KVM_RUN); pause every vCPU first\n",
					    busy);
			return ret;
		}
	}

	if (!(f.flags & VMPF_FINISH_PAGES)) {
		state = kvmalloc(max_t(u64, f.state_len, 1), GFP_KERNEL_ACCOUNT);
		if (!state)
			return -ENOMEM;
		if (copy_from_user(state, u64_to_user_ptr(f.state), f.state_len)) {
			kvfree(state);
			return -EFAULT;
		}
	}

	spin_lock(&src->lock);
	if (src->phase != from || src->cmd != cmd_from) {
		spin_unlock(&src->lock);
		kvfree(state);
		return -EINVAL;
	}
	src->state = state;
	src->state_len = state ? f.state_len : 0;
	src->cmd = cmd;
	src->phase = VMPF_PHASE_FINISHING;
	if (cmd == VMPF_CMD_FINISH) {
		src->state_later = f.flags & VMPF_FINISH_PAGES;
		src->finish_ns = ktime_get_ns();
		src->finish_exits = exits;
	}
	spin_unlock(&src->lock);
	vmpf_source_wake(src);

	ret = wait_event_killable(src->wq, vmpf_phase_done(READ_ONCE(src->phase)) ||
				  READ_ONCE(src->phase) == VMPF_PHASE_STATE_WAIT);
	if (ret)
		return ret;

	spin_lock(&src->lock);
	/* After the pages step, a concurrent state step may have moved on. */
	if (src->phase == VMPF_PHASE_COMMITTED || src->phase == VMPF_PHASE_STATE_WAIT ||
	    (cmd == VMPF_CMD_FINISH && src->state_later && src->phase == VMPF_PHASE_FINISHING &&
	     src->cmd == VMPF_CMD_STATE)) {
		f.final_pages = src->result.final_pages;
		f.switchover_ns = src->result.switchover_ns;
		f.bytes_written = src->result.bytes_written;
		f.rounds = src->result.rounds;
		ret = 0;
	} else {
		ret = -(src->error ?: EIO);
	}
	spin_unlock(&src->lock);
	if (!ret && copy_to_user(uarg, &f, sizeof(f)))
		ret = -EFAULT;
	return ret;
}

long vmpf_source_abort(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source *src = vmpf_source_get(vf);
	enum vmpf_phase phase;
	long ret;

	if (uarg)
		return -EINVAL;
	if (!src)
		return -ENOENT;

	spin_lock(&src->lock);
	phase = src->phase;
	if (phase == VMPF_PHASE_ATTACHED) {
		/* No worker yet; under the lock, so START cannot race. */
		src->phase = VMPF_PHASE_ABORTED;
		src->error = ECANCELED;
		strscpy(src->message, "aborted", sizeof(src->message));
	} else if (!vmpf_phase_done(phase)) {
		src->cmd = VMPF_CMD_ABORT;
	}
	spin_unlock(&src->lock);
	if (vmpf_phase_done(phase))
		return -EINVAL;
	vmpf_source_wake(src);

	ret = wait_event_killable(src->wq, vmpf_phase_done(READ_ONCE(src->phase)));
	if (ret)
		return ret;
	/* Finish may have committed before the abort was seen. */
	return READ_ONCE(src->phase) == VMPF_PHASE_COMMITTED ? -EBUSY : 0;
}

long vmpf_source_mark_dirty(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_source *src = vmpf_source_get(vf);
	struct vmpf_mark_dirty m;
	struct vmpf_sregion *r = NULL;
	unsigned int i;
	u64 p, last, end;
	long ret = 0;

	if (copy_from_user(&m, uarg, sizeof(m)))
		return -EFAULT;
	if (m.reserved[0] || m.reserved[1] || !m.len || m.gpa + m.len < m.gpa)
		return -EINVAL;
	if (!src)
		return -ENOENT;
	if (!vmpf_source_caller_ok(src))
		return -EPERM;

	for (i = 0; i < src->nr_regions; i++) {
		if (src->regions[i].untracked)
			continue;
		end = src->regions[i].gpa + (src->regions[i].npages << PAGE_SHIFT);
		if (m.gpa >= src->regions[i].gpa && m.gpa + m.len <= end) {
			r = &src->regions[i];
			break;
		}
	}
	if (!r)
		return -EINVAL;

	/*
	 * Under @lock and before a finish: a mark that returns 0 is seen by
	 * the final harvest, which only starts after finish took the lock.
	 * In chunks, so the lock is never held for long.
	 */
	p = (m.gpa - r->gpa) >> PAGE_SHIFT;
	last = (m.gpa + m.len - 1 - r->gpa) >> PAGE_SHIFT;
	while (p <= last && !ret) {
		u64 stop = min(last, p + 4095);

		spin_lock(&src->lock);
		if ((src->phase != VMPF_PHASE_ATTACHED && src->phase != VMPF_PHASE_PRECOPY) ||
		    src->cmd != VMPF_CMD_NONE)
			ret = -EINVAL;
		for (; !ret && p <= stop; p++)
			set_bit(p, r->marked);
		spin_unlock(&src->lock);
		cond_resched();
	}
	return ret;
}

__poll_t vmpf_source_poll(struct vmpf_source *src)
{
	__poll_t mask = 0;

	spin_lock(&src->lock);
	if (src->phase == VMPF_PHASE_PRECOPY &&
	    (src->flags & (VMPF_STATUS_CONVERGED | VMPF_STATUS_ROUND_LIMIT |
			   VMPF_STATUS_FINISH_REQUESTED | VMPF_STATUS_READY)))
		mask |= EPOLLIN | EPOLLRDNORM;
	if ((src->phase == VMPF_PHASE_ATTACHED || src->phase == VMPF_PHASE_PRECOPY) &&
	    src->throttle_gen != src->throttle_acked)
		mask |= EPOLLPRI;
	if (src->phase == VMPF_PHASE_FAILED || src->phase == VMPF_PHASE_ABORTED)
		mask |= EPOLLERR;
	spin_unlock(&src->lock);
	return mask;
}

void vmpf_source_release(struct vmpf_source *src)
{
	spin_lock(&src->lock);
	src->cmd = VMPF_CMD_ABORT;
	spin_unlock(&src->lock);
	vmpf_source_wake(src);
	if (src->worker) {
		kthread_stop(src->worker);
		put_task_struct(src->worker);
	}
	atomic64_dec(&vmpf_counters.sessions);
	vmpf_source_free(src);
}
