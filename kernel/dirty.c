// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty tracking of the registered memslots through KVM's own dirty log.
 *
 * KVM exports no in-kernel interface to its dirty log, and its page-track
 * write notifier forces emulation of every tracked write.  So the worker
 * does what the VMM would: with the VMM's mm adopted (kthread_use_mm()),
 * it calls the VM file's ioctl handler with KVM_SET_USER_MEMORY_REGION to
 * turn KVM_MEM_LOG_DIRTY_PAGES on and off, and KVM_GET_DIRTY_LOG to
 * harvest (which also clears the log and write-protects the pages again).
 * KVM sees a caller whose mm is the VM's, exactly as for the VMM itself.
 * With KVM's manual dirty-log protection (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
 * which QEMU enables) KVM_GET_DIRTY_LOG only reads the log: the worker
 * then re-protects the pages in groups with KVM_CLEAR_DIRTY_LOG, each
 * group just before it copies it (vmpf_dirty_protect()), so that the guest
 * takes no write-protection fault on pages whose copy is still to come,
 * and KVM never write-protects all of guest RAM at once.  With the
 * initially-set flag, turning logging on protects nothing either: round 0
 * protects group by group as it copies.
 * The ioctls take user pointers, so the worker maps a small scratch
 * buffer into the VMM's address space with vm_mmap() and unmaps it when
 * the session's work is done.
 *
 * A VM whose VMM enabled KVM's dirty ring has no dirty bitmap: then the
 * worker reads the vCPUs' rings instead (vmpf_ring_harvest()).
 *
 * A real VMM changes memslots while the guest runs (firmware windows,
 * BARs, hotplug) and may read dirty logs for its own purposes.  Neither
 * may make the session commit stale pages: vmpf_dirty_check_slots()
 * watches the memslot generation at every harvest and before the commit
 * (a registered slot that changed fails the session; any other change
 * makes the regions count as wholly dirty), and the harvests check that
 * nobody else took dirty pages from the log or the rings.  The worker
 * leaves a memslot it no longer recognises alone rather than re-create it
 * with its old definition.  uapi/linux/vmpagefile.h lists the rules and
 * what breaking each one does.
 */
#include <linux/anon_inodes.h>
#include <linux/kvm.h>
#include <linux/delay.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/sched.h>
#include <linux/uaccess.h>

#include "source.h"

static size_t vmpf_bitmap_bytes(u64 npages)
{
	return BITS_TO_LONGS(npages) * sizeof(long);
}

static void vmpf_log_sign(struct vmpf_sregion *r, const void *buf, size_t len);

/*
 * KVM's ioctls take user pointers, so the worker passes their arguments
 * through memory in the VMM's address space, in two parts:
 *  - the arguments page: the argument struct, and the bitmap that
 *    KVM_CLEAR_DIRTY_LOG reads, at VMPF_SCRATCH_BITMAP.  KVM only reads
 *    it.  The VMM sees a page it can read but never write (no VM_WRITE,
 *    and no VM_MAYWRITE, so mprotect() cannot add it); the worker writes
 *    it through the kernel's own address of that page.  A VMM scribbling
 *    over it gets SIGSEGV instead of changing what the worker asks KVM.
 *  - the log area, which KVM_GET_DIRTY_LOG writes its copy of the log to,
 *    an ordinary anonymous mapping: the VMM could change it, so what it
 *    reads there is checked against KVM's own bitmap (vmpf_dirty_harvest()).
 * Before each use, and before unmapping, the worker checks that the
 * arguments mapping is still its own.  (A VMM that unmaps it and maps
 * something else there in the instant between that check and KVM's read
 * can still make the worker ask KVM what the VMM itself could ask: only
 * its own VM is at stake, and its migration is then its own to break.)
 */
#define VMPF_SCRATCH_BITMAP	256	/* CLEAR_DIRTY_LOG's bitmap in the page */

/*
 * The page lives as long as the file (each mapping holds the file), not
 * as the session: a mapping the VMM kept (it moved it, so the session no
 * longer knew it as its own) still maps a live page.
 */
static vm_fault_t vmpf_scratch_fault(struct vm_fault *vmf)
{
	struct page *page = vmf->vma->vm_file->private_data;

	if (vmf->pgoff)
		return VM_FAULT_SIGBUS;
	get_page(page);
	vmf->page = page;
	return 0;
}

/* Stays where the session put it. */
static int vmpf_scratch_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

static const struct vm_operations_struct vmpf_scratch_ops = {
	.fault = vmpf_scratch_fault,
	.mremap = vmpf_scratch_mremap,
};

static int vmpf_scratch_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (vma->vm_flags & VM_WRITE)
		return -EPERM;
	/* VM_IO: no fork copy (MADV_DOFORK refuses it), no get_user_pages(). */
	vm_flags_mod(vma, VM_IO | VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP, VM_MAYWRITE);
	vma->vm_ops = &vmpf_scratch_ops;
	return 0;
}

static int vmpf_scratch_release(struct inode *inode, struct file *file)
{
	put_page(file->private_data);
	return 0;
}

static const struct file_operations vmpf_scratch_fops = {
	.owner		= THIS_MODULE,
	.mmap		= vmpf_scratch_mmap,
	.release	= vmpf_scratch_release,
};

/* Is the arguments mapping at src->scratch still ours?  With the mm lock. */
static bool vmpf_scratch_ours(struct vmpf_source *src)
{
	struct vm_area_struct *vma;
	bool ours;

	mmap_read_lock(src->mm);
	vma = find_vma(src->mm, (unsigned long)src->scratch);
	ours = vma && vma->vm_start == (unsigned long)src->scratch &&
	       vma->vm_file == src->args_file;
	mmap_read_unlock(src->mm);
	return ours;
}

/* The arguments page, written through the kernel's address of it. */
static void *vmpf_args(struct vmpf_source *src)
{
	return page_address(src->args_page);
}

int vmpf_dirty_init(struct vmpf_source *src)
{
	struct file *file;
	unsigned long addr;
	size_t len;

	src->args_page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!src->args_page)
		return -ENOMEM;
	get_page(src->args_page);	/* the file's reference */
	file = anon_inode_getfile("[vmpagefile-args]", &vmpf_scratch_fops, src->args_page,
				  O_RDONLY);
	if (IS_ERR(file)) {
		put_page(src->args_page);
		return PTR_ERR(file);
	}
	src->args_file = file;
	addr = vm_mmap(file, 0, PAGE_SIZE, PROT_READ, MAP_SHARED, 0);
	if (IS_ERR_VALUE(addr))
		return (int)addr;
	src->scratch = (void __user *)addr;

	len = PAGE_ALIGN(vmpf_bitmap_bytes(src->max_region_pages));
	addr = vm_mmap(NULL, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
	if (IS_ERR_VALUE(addr))
		return (int)addr;
	src->log_area = (void __user *)addr;
	src->log_len = len;
	return 0;
}

/*
 * Unmap what is still ours; a mapping the VMM put there instead stays.
 * (The log area cannot be told from another anonymous mapping: a VMM
 * that replaced it loses its own mapping there.)
 */
void vmpf_dirty_exit(struct vmpf_source *src)
{
	if (src->scratch && vmpf_scratch_ours(src))
		vm_munmap((unsigned long)src->scratch, PAGE_SIZE);
	src->scratch = NULL;
	if (src->log_area)
		vm_munmap((unsigned long)src->log_area, src->log_len);
	src->log_area = NULL;
	if (src->args_file)
		fput(src->args_file);
	src->args_file = NULL;
	if (src->args_page)
		put_page(src->args_page);
	src->args_page = NULL;
}

/* KVM's ioctl @cmd on the VM, with the argument struct @len bytes at @arg. */
static long vmpf_kvm_ioctl(struct vmpf_source *src, unsigned int cmd,
			   const void *arg, size_t len)
{
	if (arg) {
		if (!vmpf_scratch_ours(src))
			return -EFAULT;
		memcpy(vmpf_args(src), arg, len);
	}
	return src->vm_file->f_op->unlocked_ioctl(src->vm_file, cmd,
						  arg ? (unsigned long)src->scratch : 0);
}

int vmpf_dirty_set_logging(struct vmpf_source *src, struct vmpf_sregion *r,
			   bool on)
{
	struct kvm_userspace_memory_region mr = {
		.slot = r->slot,
		.flags = r->orig_flags | (on ? KVM_MEM_LOG_DIRTY_PAGES : 0),
		.guest_phys_addr = r->gpa,
		.memory_size = r->npages << PAGE_SHIFT,
		.userspace_addr = r->uaddr,
	};
	long ret;

	/* The slot as we left it, or the VMM changed it: leave it alone. */
	if (!vmpf_source_slot_is(src, r, r->orig_flags | (on ? 0 : KVM_MEM_LOG_DIRTY_PAGES)))
		return -ENOENT;
	ret = vmpf_kvm_ioctl(src, KVM_SET_USER_MEMORY_REGION, &mr, sizeof(mr));
	if (!ret)
		r->logging = on;
	if (!ret && on) {
		/* KVM's snapshot of the log starts zeroed, as a new log. */
		memset(src->harvest, 0, vmpf_bitmap_bytes(r->npages));
		vmpf_log_sign(r, src->harvest, vmpf_bitmap_bytes(r->npages));
	}
	return ret;
}

/*
 * Check the memslots against what the session registered, under
 * slots_lock.  Every change of a memslot moves the generation of its
 * address space; when address space 0's moved since the last check, each
 * region must still be its memslot, logging dirty pages: a slot deleted,
 * moved or left without logging may have taken writes that were never
 * logged, and the session fails.  A slot that matches may still have been
 * deleted and re-created the same way meanwhile, losing its unharvested
 * log: every region then counts as wholly dirty again.  @first (logging
 * just went on): check and record, nothing counts as changed.  Memslots in
 * another address space (SMM) fail the session: their writes are logged
 * in logs the session does not read.
 * Returns 1 if the regions were marked dirty, 0 if nothing moved, or the
 * error the session failed with.
 */
int vmpf_dirty_check_slots(struct vmpf_source *src, bool first)
{
	struct kvm *kvm = src->vm_file->private_data;
	struct vmpf_sregion *bad = NULL;
	struct kvm_memslots *slots;
	bool moved = first;
	unsigned int i;
	int ret = 0;

	/* Turned on since: logging that goes on again protects nothing. */
	if (src->vcpus && (READ_ONCE(kvm->manual_dirty_log_protect) &
			   KVM_DIRTY_LOG_INITIALLY_SET)) {
		vmpf_source_fail(src, ENOPROTOOPT,
				 "the VMM turned on KVM_DIRTY_LOG_INITIALLY_SET with the dirty ring: writes would be missed");
		return -ENOPROTOOPT;
	}
	mutex_lock(&kvm->slots_lock);
	if (vmpf_smm_slots(kvm)) {
		ret = -EXDEV;
		goto out;
	}
	slots = __kvm_memslots(kvm, 0);
	moved |= slots->generation != src->slots_gen;
	for (i = 0; moved && i < src->nr_regions; i++) {
		struct vmpf_sregion *r = &src->regions[i];

		if (r->untracked)
			continue;
		if (!vmpf_slot_matches(id_to_memslot(slots, r->slot), r,
				       r->orig_flags | KVM_MEM_LOG_DIRTY_PAGES)) {
			bad = r;
			ret = -ESTALE;
			goto out;
		}
	}
	src->slots_gen = slots->generation;
out:
	mutex_unlock(&kvm->slots_lock);
	if (ret == -EXDEV) {
		vmpf_source_fail(src, EXDEV,
				 "the VMM added memslots in another address space (SMM) during the migration: their writes cannot be tracked");
		return ret;
	}
	if (bad) {
		vmpf_source_fail(src, ESTALE,
				 "the VMM changed memslot %u during the migration: writes through it may not have been logged",
				 bad->slot);
		return ret;
	}
	if (!moved || first)
		return 0;
	for (i = 0; i < src->nr_regions; i++) {
		bitmap_fill(src->regions[i].pending, src->regions[i].npages);
		src->regions[i].log_known = false;
	}
	src->slot_changes++;
	pr_info_ratelimited("%s: the VM's memslots changed under the migration (%llu times): copying all of its memory again\n",
			    current->comm, src->slot_changes);
	return 1;
}

/*
 * What KVM_GET_DIRTY_LOG wrote to the log area (in @src->harvest now) is
 * in memory the VMM can write: take it only as far as KVM's own bitmap
 * confirms it.  Without manual protection KVM's snapshot holds exactly
 * what it copied out: a difference means the copy was changed, or
 * somebody else harvested in between; either way pages may be lost.  With
 * manual protection the bits stay set in KVM's bitmap until cleared: what
 * it holds now is added, so a copy with bits taken away loses nothing.
 */
static int vmpf_check_log_copy(struct vmpf_source *src, struct vmpf_sregion *r)
{
	struct kvm *kvm = src->vm_file->private_data;
	size_t bytes = vmpf_bitmap_bytes(r->npages);
	struct kvm_memory_slot *ms;
	unsigned long i;
	int ret = 0;

	mutex_lock(&kvm->slots_lock);
	ms = id_to_memslot(__kvm_memslots(kvm, 0), r->slot);
	if (!ms || !ms->dirty_bitmap || kvm_dirty_bitmap_bytes(ms) != bytes) {
		ret = -ESTALE;	/* changed since: the slot check says how */
	} else if (!src->manual_protect) {
		if (memcmp(kvm_second_dirty_bitmap(ms), src->harvest, bytes))
			ret = -EBUSY;
	} else {
		for (i = 0; i < BITS_TO_LONGS(r->npages); i++)
			src->harvest[i] |= READ_ONCE(ms->dirty_bitmap[i]);
	}
	mutex_unlock(&kvm->slots_lock);
	if (ret == -EBUSY)
		vmpf_source_fail(src, EBUSY,
				 "the dirty log of memslot %u was changed or harvested by somebody else during the migration",
				 r->slot);
	return ret == -ESTALE ? 0 : ret;
}

/*
 * KVM keeps a copy of what a harvest took in the second half of the
 * memslot's bitmap: KVM_GET_DIRTY_LOG without manual protection leaves
 * its snapshot of the whole log there, and KVM_CLEAR_DIRTY_LOG copies its
 * mask to the start of it; nothing else writes there.  After each of its
 * own, the session notes what is there (@r->log_len bytes, their crc32c);
 * before the next, it checks: different contents mean somebody else
 * harvested or cleared this log meanwhile, taking pages the session will
 * never see.  (Unseen: somebody else clearing exactly the mask the
 * session cleared last.)
 */
static void vmpf_log_sign(struct vmpf_sregion *r, const void *buf, size_t len)
{
	r->log_len = len;
	r->log_crc = vmpf_crc32c(buf, len);
	r->log_known = true;
}

static int vmpf_check_foreign_harvest(struct vmpf_source *src, struct vmpf_sregion *r)
{
	struct kvm *kvm = src->vm_file->private_data;
	struct kvm_memory_slot *ms;
	int ret = 0;

	if (!r->log_known)
		return 0;
	mutex_lock(&kvm->slots_lock);
	ms = id_to_memslot(__kvm_memslots(kvm, 0), r->slot);
	if (ms && ms->dirty_bitmap && kvm_dirty_bitmap_bytes(ms) == vmpf_bitmap_bytes(r->npages) &&
	    vmpf_crc32c(kvm_second_dirty_bitmap(ms), r->log_len) != r->log_crc)
		ret = -EBUSY;
	mutex_unlock(&kvm->slots_lock);
	if (ret)
		vmpf_source_fail(src, EBUSY,
				 "somebody else harvested or cleared the dirty log of memslot %u during the migration: its pages cannot be trusted",
				 r->slot);
	return ret;
}

/*
 * Add the pages KVM logged as dirty in @r since the last harvest, and the
 * ones the VMM marked, to @r->pending.  Returns how many pages are pending.
 */
long vmpf_dirty_harvest(struct vmpf_source *src, struct vmpf_sregion *r)
{
	size_t bytes = vmpf_bitmap_bytes(r->npages);
	unsigned long words = BITS_TO_LONGS(r->npages), i;
	struct kvm_dirty_log log = {
		.slot = r->slot,
		.dirty_bitmap = src->log_area,
	};
	long ret;

	ret = vmpf_check_foreign_harvest(src, r);
	if (ret)
		return ret;
	ret = vmpf_kvm_ioctl(src, KVM_GET_DIRTY_LOG, &log, sizeof(log));
	if (ret)
		return ret;
	if (copy_from_user(src->harvest, src->log_area, bytes))
		return -EFAULT;
	ret = vmpf_check_log_copy(src, r);
	if (ret)
		return ret;
	/* What KVM's snapshot must still hold at the next harvest. */
	if (!src->manual_protect)
		vmpf_log_sign(r, src->harvest, bytes);
	/*
	 * With manual protection the log stays set and the pages writable
	 * until vmpf_dirty_protect() clears them, group by group.
	 */
	for (i = 0; i < words; i++)
		r->pending[i] |= src->harvest[i] | xchg(&r->marked[i], 0);
	return bitmap_weight(r->pending, r->npages);
}

/*
 * Manual protection: clear the log of @r's pending pages among @n pages
 * from @first (a multiple of 64, and @n too unless it reaches the end of
 * the memslot, as KVM requires) and write-protect them again, just before
 * they are copied.  A write after this is logged and copied next round.
 */
int vmpf_dirty_protect(struct vmpf_source *src, struct vmpf_sregion *r,
		       u64 first, u64 n)
{
	struct kvm_clear_dirty_log clear = {
		.slot = r->slot,
		.num_pages = n,
		.first_page = first,
		.dirty_bitmap = src->scratch + VMPF_SCRATCH_BITMAP,
	};

	size_t bytes = BITS_TO_LONGS(n) * sizeof(long);
	void *mask = vmpf_args(src) + VMPF_SCRATCH_BITMAP;
	int ret;

	/* The mask KVM reads, in the page the VMM cannot write. */
	if (bytes > PAGE_SIZE - VMPF_SCRATCH_BITMAP)
		return -EINVAL;
	ret = vmpf_check_foreign_harvest(src, r);
	if (ret)
		return ret;
	memcpy(mask, r->pending + first / BITS_PER_LONG, bytes);
	ret = vmpf_kvm_ioctl(src, KVM_CLEAR_DIRTY_LOG, &clear, sizeof(clear));
	/* KVM copied the mask to the start of its snapshot. */
	if (!ret)
		vmpf_log_sign(r, mask, bytes);
	return ret;
}

/* The region holding memslot @slot (address space 0), or NULL. */
static struct vmpf_sregion *vmpf_slot_region(struct vmpf_source *src, u32 slot)
{
	unsigned int i;

	for (i = 0; i < src->nr_regions; i++)
		if (src->regions[i].slot == slot)
			return &src->regions[i];
	return NULL;
}

/*
 * KVM's dirty ring: each vCPU pushes the pages it dirties into a ring of
 * its own, which the session reads here instead of the bitmap.  This is
 * the protocol the VMM would follow (Documentation/virt/kvm/api.rst,
 * KVM_CAP_DIRTY_LOG_RING), on the rings' kernel memory: an entry is ours
 * once its flags say DIRTY (acquire, pairing with KVM's publication); we
 * hand it back by setting RESET (release), and KVM_RESET_DIRTY_RINGS then
 * write-protects the pages again.  The pages are copied after that reset,
 * so a write between this harvest and the reset is in the copy.
 *
 * A ring is read from where KVM stands, not from 0: the first time the
 * session sees a vCPU, it resets the rings (entries the VMM harvested but
 * did not reset go back to KVM) and starts at the ring's reset index.
 *
 * Each vCPU's count is its share of the dirtying, which the policy uses to
 * throttle only the vCPUs that dirty memory.  Adds to the regions' pending
 * bitmaps, with the pages the VMM marked; returns the pending pages.
 */
long vmpf_ring_harvest(struct vmpf_source *src)
{
	struct vmpf_vcpus *vc = src->vcpus;
	struct kvm *kvm = src->vm_file->private_data;
	struct kvm_vcpu *vcpu;
	unsigned long idx, i, foreign = 0;
	unsigned int nr = 0;
	long ret = 0, total = 0;
	bool fresh = false;
	u32 avail, k;

	src->ring_ns = ktime_get_ns();
	/* Before touching any ring: a vCPU too many leaves them all as they are. */
	kvm_for_each_vcpu(idx, vcpu, kvm) {
		if (idx >= VMPF_MAX_VCPUS)
			return -E2BIG;
		fresh |= !test_bit(idx, vc->seen);
	}
	if (fresh) {
		ret = vmpf_kvm_ioctl(src, KVM_RESET_DIRTY_RINGS, NULL, 0);
		if (ret < 0)
			return ret;
		ret = 0;
		kvm_for_each_vcpu(idx, vcpu, kvm)
			if (idx < VMPF_MAX_VCPUS && !__test_and_set_bit(idx, vc->seen))
				vc->fetch[idx] = READ_ONCE(vcpu->dirty_ring.reset_index);
	}

	kvm_for_each_vcpu(idx, vcpu, kvm) {
		struct kvm_dirty_ring *ring = &vcpu->dirty_ring;

		/* Created since the check (or never seen): next time, or E2BIG. */
		if (idx >= VMPF_MAX_VCPUS || !test_bit(idx, vc->seen)) {
			ret = idx >= VMPF_MAX_VCPUS ? -E2BIG : ret;
			continue;
		}
		nr = idx + 1;
		if (!ring->dirty_gfns || !ring->size)
			continue;
		/*
		 * The ring's entries are mapped writable in the VMM, which may
		 * keep setting DIRTY flags: bound the walk by what KVM itself
		 * says it pushed (dirty_index, kernel memory), at most a ring.
		 */
		avail = min_t(u32, READ_ONCE(ring->dirty_index) - vc->fetch[idx], ring->size);
		for (k = 0; k < avail; k++) {
			struct kvm_dirty_gfn *e =
				&ring->dirty_gfns[vc->fetch[idx] & (ring->size - 1)];
			struct vmpf_sregion *r;
			u32 slot;
			u64 off;

			/* Pairs with KVM's smp_wmb() before it publishes the entry. */
			if (!(smp_load_acquire(&e->flags) & KVM_DIRTY_GFN_F_DIRTY))
				break;
			slot = READ_ONCE(e->slot);
			off = READ_ONCE(e->offset);
			r = slot >> 16 ? NULL : vmpf_slot_region(src, slot);
			if (r && off < r->npages)
				set_bit(off, r->pending);
			/* Pairs with the acquire in KVM's kvm_dirty_gfn_harvested(). */
			smp_store_release(&e->flags, KVM_DIRTY_GFN_F_RESET);
			vc->fetch[idx]++;
			vc->round[idx]++;
			if (!(k & 1023))
				cond_resched();
		}
		/* Entries pushed but not DIRTY: somebody else took them. */
		if (k < avail && !foreign)
			foreign = idx + 1;
	}
	spin_lock(&src->lock);
	memcpy(vc->next, vc->fetch, sizeof(vc->next));
	vc->nr = max(vc->nr, nr);
	spin_unlock(&src->lock);
	/* What was harvested goes back to KVM, even on the way to E2BIG. */
	total = vmpf_kvm_ioctl(src, KVM_RESET_DIRTY_RINGS, NULL, 0);
	if (total < 0)
		return total;
	if (ret)
		return ret;
	/*
	 * KVM resets entries in order while they are marked RESET: after our
	 * reset, each ring's reset index is where we stopped reading, unless
	 * somebody else harvested (and reset) entries we never saw.
	 */
	kvm_for_each_vcpu(idx, vcpu, kvm)
		if (!foreign && idx < VMPF_MAX_VCPUS && test_bit(idx, vc->seen) &&
		    vcpu->dirty_ring.dirty_gfns &&
		    READ_ONCE(vcpu->dirty_ring.reset_index) != vc->fetch[idx])
			foreign = idx + 1;
	if (foreign) {
		vmpf_source_fail(src, EBUSY,
				 "somebody else harvested vCPU %u's dirty ring during the migration: its pages cannot be trusted",
				 (unsigned int)(foreign - 1));
		return -EBUSY;
	}
	total = 0;

	for (i = 0; i < src->nr_regions; i++) {
		struct vmpf_sregion *r = &src->regions[i];
		unsigned long w;

		for (w = 0; w < BITS_TO_LONGS(r->npages); w++)
			r->pending[w] |= xchg(&r->marked[w], 0);
		total += bitmap_weight(r->pending, r->npages);
	}
	return total;
}

/*
 * VM exits of all the VM's vCPUs so far, each read with its vCPU's mutex
 * held.  KVM holds that mutex across KVM_RUN (and every vCPU ioctl): taking
 * it orders the read after the accounting of the vCPU's last run (and the
 * dirty-page flush of its last exit), and a vCPU whose mutex stays taken is
 * running.  From FINISH to the commit record the count must not move, or
 * the guest ran and may have written what the final round did not see.
 * -EBUSY, with *busy the vCPU's index, when one stays taken for 100 ms.
 * Sleeps; holds no lock of ours.  KVM adds vCPUs but removes none while
 * the VM lives (we hold it); one added later only adds exits.
 */
int vmpf_vcpu_exits(struct vmpf_source *src, u64 *exits, unsigned long *busy)
{
	struct kvm *kvm = src->vm_file->private_data;
	struct kvm_vcpu *vcpu;
	unsigned long i;
	int tries;

	*exits = 0;
	kvm_for_each_vcpu(i, vcpu, kvm) {
		for (tries = 0; !mutex_trylock(&vcpu->mutex); tries++) {
			if (tries == 100) {
				*busy = i;
				return -EBUSY;
			}
			usleep_range(1000, 2000);
		}
		*exits += vcpu->stat.exits;
		mutex_unlock(&vcpu->mutex);
	}
	return 0;
}
