/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Everything that differs between the kernels vmpagefile supports lives
 * here, under the upstream (newest) name, so the .c files carry no version
 * checks.  Kbuild force-includes this header into every file.
 *
 * Supported and tested: the 6.1 LTS line and 6.12.
 */
#ifndef _VMPF_COMPAT_H
#define _VMPF_COMPAT_H

#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#error "vmpagefile needs Linux 6.1 or newer"
#endif

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0)
#include <linux/mm.h>

/* 6.3: VMA flags are changed through helpers. */
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_mod(struct vm_area_struct *vma, vm_flags_t set,
				vm_flags_t clear)
{
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
}

/* 6.4: faults may run under the per-VMA lock; before, always mmap_lock. */
static inline void release_fault_lock(struct vm_fault *vmf)
{
	mmap_read_unlock(vmf->vma->vm_mm);
}
#endif

/*
 * 6.8: address_space's private_data became i_private_data: reach it
 * through vmpf_mapping_private().
 */
#include <linux/fs.h>
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
#define vmpf_mapping_private(mapping)	((mapping)->private_data)
#else
#define vmpf_mapping_private(mapping)	((mapping)->i_private_data)
#endif

/*
 * 6.3: inode operations take the mount's idmapping, not a user namespace:
 * struct vmpf_idmap is whichever the kernel passes.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
#define vmpf_idmap	user_namespace
#else
#define vmpf_idmap	mnt_idmap
#endif

/*
 * 6.7: vfs_iocb_iter_write() takes freeze protection itself; before, the
 * caller did.  Call vmpf_iocb_iter_write() instead.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 7, 0)
#include <linux/fs.h>

static inline ssize_t vmpf_iocb_iter_write(struct file *file, struct kiocb *iocb,
					   struct iov_iter *iter)
{
	ssize_t ret;

	file_start_write(file);
	ret = vfs_iocb_iter_write(file, iocb, iter);
	file_end_write(file);
	return ret;
}

/*
 * The same for an asynchronous write: a queued one keeps the protection
 * until its ->ki_complete() calls kiocb_end_write(), as 6.7 does it.
 */
static inline ssize_t vmpf_iocb_iter_write_async(struct file *file, struct kiocb *iocb,
						 struct iov_iter *iter)
{
	ssize_t ret;

	kiocb_start_write(iocb);
	ret = vfs_iocb_iter_write(file, iocb, iter);
	if (ret != -EIOCBQUEUED)
		kiocb_end_write(iocb);
	return ret;
}
#else
#define vmpf_iocb_iter_write vfs_iocb_iter_write
#define vmpf_iocb_iter_write_async vfs_iocb_iter_write
#endif

/*
 * 6.8: KVM_ADDRESS_SPACE_NUM became KVM_MAX_NR_ADDRESS_SPACES, a VM's own
 * count came with private memory (guest_memfd: SEV-SNP VMs have one
 * address space only); before, no VM had private memory.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
#define KVM_MAX_NR_ADDRESS_SPACES		KVM_ADDRESS_SPACE_NUM
#define kvm_arch_nr_memslot_as_ids(kvm)		((void)(kvm), KVM_ADDRESS_SPACE_NUM)
#define kvm_arch_has_private_mem(kvm)		((void)(kvm), false)
#endif

/*
 * Page-file I/O from the module's kernel threads is charged to the VMM's
 * io cgroup (io.max, io.weight), as the loop driver charges its workers'
 * I/O to the issuer's: vmpf_charge_io() points the calling kthread's bios
 * at the io cgroup of @mm's owner.  Not a version difference but a config
 * one: without memcg (no mm->owner) or the io controller, nothing to do.
 */
#include <linux/cgroup.h>
#include <linux/kthread.h>
#include <linux/mm_types.h>

static inline void vmpf_charge_io(struct mm_struct *mm)
{
#if defined(CONFIG_MEMCG) && defined(CONFIG_BLK_CGROUP)
	struct cgroup_subsys_state *css = NULL;
	struct task_struct *owner;

	rcu_read_lock();
	owner = rcu_dereference(mm->owner);
	if (owner)
		css = task_get_css(owner, io_cgrp_id);
	rcu_read_unlock();
	kthread_associate_blkcg(css);	/* takes its own reference */
	if (css)
		css_put(css);
#endif
}

/*
 * A reference to @file unless its last one is gone (its release has
 * begun).  The caller must know the struct itself is still allocated.
 * 6.1 to 6.12 count with f_count; 6.13 moved to file_ref_t and
 * get_file_active().
 */
#include <linux/fs.h>

static inline bool vmpf_file_tryget(struct file *file)
{
	return atomic_long_inc_not_zero(&file->f_count);
}

#endif /* _VMPF_COMPAT_H */
