// SPDX-License-Identifier: GPL-2.0
/*
 * The memory a restored guest lives in: a shared-memory object, a file of
 * a tmpfs instance the module mounts for itself (kernel-internal, no size
 * limit, huge=never; see below), which the VMM maps instead of the
 * session's descriptor.  Its pages are shmem page cache like the RAM of a
 * guest booted with memory-backend-memfd: on the LRU, charged to the VMM's
 * memory cgroup, swapped, migrated and compacted by the kernel, returned
 * by MADV_REMOVE or a punched hole.  The module only decides when a page
 * is first filled from the page file (fault.c, prefetch.c); after that the
 * page belongs to the object.
 *
 * Why tmpfs and not a page array of our own (which struct vmpf_restore
 * held up to version 0.2.0): pages no address space owns cannot be
 * reclaimed, swapped, migrated or returned, and cost 8 bytes each.  Why
 * not hugetlbfs: it needs a pool reserved in advance and never swaps.
 *
 * Huge pages: transparent huge pages of tmpfs, which swap, move and split
 * like the rest.  Two instances: huge=never for sessions of 4 KiB pages,
 * where a huge page would be mapped whole by a PMD once one of its 512
 * pages is filled, exposing the others before they are (a global
 * shmem_enabled=force, a debugging switch, overrides it; the fault path
 * then refuses such a page); and huge=within_size for huge sessions
 * (VMPF_RESTORE_HUGE), whose fault path fills a whole 2 MiB block before
 * any page of it is mapped (fault.c).
 *
 * The object's file and inode operations are tmpfs's, copied at load with
 * ours in front of some.  These keep "filled once, never over newer data"
 * true:
 *  - mmap() (fault.c's vmpf_restore_mmap(), through vmpf_guestmem_mmap())
 *    switches the VMA's file to the object and its fault handler to
 *    fault.c's, which fills a page before handing the fault to tmpfs's own
 *    handler; tmpfs's fault-around only once every page is in, as it would
 *    map a page that is being filled.  The object's own mmap() does the
 *    same while the session lives (remap_file_pages() maps a VMA's file
 *    again);
 *  - the object's fallocate() (a copy of tmpfs's file operations with
 *    ours in it) learns about punched holes: MADV_REMOVE and
 *    fallocate(PUNCH_HOLE) end there.  A page in a hole counts as
 *    restored, so it is never read from the page file afterwards and
 *    reads as zero, as in any tmpfs hole.
 *
 * Lifetime: the session holds a reference to the object, every VMA of it
 * holds one too (its vm_file) and a reference to the session's descriptor
 * (fault.c), so the session outlives its mappings.  A hole can be punched
 * through a VMA's file after the VMA went (madvise() holds the file, not
 * the VMA): the object's address space's @private_data (tmpfs uses it
 * not) points to the session only while the session lives, under
 * vmpf_shm_sem, and a hook takes a reference to the session's descriptor
 * before it lets go of the semaphore (never held across a wait).  The
 * object's file operations name this module as owner, and the module is
 * pinned until the last object is gone (a module reference per object,
 * dropped by __fput()); when the session goes, the inode gets tmpfs's
 * operations back for any later open.
 *
 * The object can be opened again (VMPF_IOC_RESTORE_MEMFD gives a
 * descriptor, which QEMU reopens through /proc/self/fd/N; root can use
 * /proc/PID/map_files/): while the restore runs, such a file maps through
 * the fault handler and punches holes through the hook above, and its
 * read(), write(), splice and size changes are refused (EBUSY: they would
 * read a page before its fill, or write one the fill then overwrites).
 * Once every page is in, it is ordinary tmpfs.
 */
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/rwsem.h>
#include <linux/shmem_fs.h>
#include <linux/sizes.h>

#include "restore.h"

static struct vfsmount *vmpf_mnt;
static struct vfsmount *vmpf_mnt_huge;	/* NULL: no huge pages for tmpfs here */

/* tmpfs's file and inode operations, with ours in front: set at load. */
static struct file_operations vmpf_shm_fops;
static long (*vmpf_shmem_fallocate)(struct file *file, int mode, loff_t off,
				    loff_t len);

static struct inode_operations vmpf_shm_iops;
static const struct inode_operations *vmpf_shmem_iops;

/*
 * Protects the @private_data of the objects' address spaces: the session,
 * or NULL once it went.
 */
static DECLARE_RWSEM(vmpf_shm_sem);

static const struct file_operations *vmpf_shmem_fops;
static int (*vmpf_shmem_mmap)(struct file *file, struct vm_area_struct *vma);

/*
 * The session of object @mapping, with a reference to its descriptor
 * (fput(rst->file) when done), or NULL once the session is going.
 */
static struct vmpf_restore *vmpf_shm_session(struct address_space *mapping)
{
	struct vmpf_restore *rst;

	down_read(&vmpf_shm_sem);
	rst = vmpf_mapping_private(mapping);
	if (rst && !vmpf_file_tryget(rst->file))
		rst = NULL;
	up_read(&vmpf_shm_sem);
	return rst;
}

static bool vmpf_shm_restoring(struct address_space *mapping);

static long vmpf_shm_fallocate(struct file *file, int mode, loff_t off, loff_t len)
{
	struct vmpf_restore *rst;
	long ret = 0;

	if (!vmpf_shmem_fallocate)
		return -EOPNOTSUPP;
	/*
	 * Nor may it grow under the fills (see vmpf_shm_setattr()): the last
	 * 2 MiB block of a huge session would become one huge page.
	 */
	if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > i_size_read(file_inode(file)) &&
	    vmpf_shm_restoring(file->f_mapping))
		return -EBUSY;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		rst = vmpf_shm_session(file->f_mapping);
		if (rst) {
			ret = vmpf_restore_discard(rst, off, len);
			fput(rst->file);
		}
		if (ret)
			return ret;
	}
	return vmpf_shmem_fallocate(file, mode, off, len);
}

/*
 * Any mapping of the object while the session lives gets fault.c's
 * handler: remap_file_pages() maps a VMA's file again, and map_files
 * opens after completion may map it too.
 */
static int vmpf_shm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vmpf_restore *rst = vmpf_shm_session(file->f_mapping);
	int ret;

	if (!rst)
		return vmpf_shmem_mmap(file, vma);
	ret = vmpf_restore_mmap(rst, vma);
	fput(rst->file);
	return ret;
}

/* The session of @mapping's object is still filling it. */
static bool vmpf_shm_restoring(struct address_space *mapping)
{
	struct vmpf_restore *rst;
	bool busy;

	down_read(&vmpf_shm_sem);
	rst = vmpf_mapping_private(mapping);
	busy = rst && atomic64_read(&rst->resident) < rst->total_pages;
	up_read(&vmpf_shm_sem);
	return busy;
}

/*
 * read(), write() and splice see or change pages behind the fault
 * handler's back: refused until every page is in (a page not restored
 * would read as zero; a write would be overwritten by its fill).
 */
static ssize_t vmpf_shm_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	if (vmpf_shm_restoring(iocb->ki_filp->f_mapping))
		return -EBUSY;
	return vmpf_shmem_fops->read_iter(iocb, to);
}

static ssize_t vmpf_shm_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	if (vmpf_shm_restoring(iocb->ki_filp->f_mapping))
		return -EBUSY;
	return vmpf_shmem_fops->write_iter(iocb, from);
}

static ssize_t vmpf_shm_splice_read(struct file *in, loff_t *ppos,
				    struct pipe_inode_info *pipe, size_t len,
				    unsigned int flags)
{
	if (vmpf_shm_restoring(in->f_mapping))
		return -EBUSY;
	return vmpf_shmem_fops->splice_read(in, ppos, pipe, len, flags);
}

static ssize_t vmpf_shm_splice_write(struct pipe_inode_info *pipe, struct file *out,
				     loff_t *ppos, size_t len, unsigned int flags)
{
	if (vmpf_shm_restoring(out->f_mapping))
		return -EBUSY;
	return vmpf_shmem_fops->splice_write(pipe, out, ppos, len, flags);
}

/* Nor may the object change size under the fills. */
static int vmpf_shm_setattr(struct vmpf_idmap *idmap, struct dentry *dentry,
			    struct iattr *attr)
{
	if ((attr->ia_valid & ATTR_SIZE) &&
	    vmpf_shm_restoring(d_inode(dentry)->i_mapping))
		return -EBUSY;
	return vmpf_shmem_iops->setattr(idmap, dentry, attr);
}

int vmpf_guestmem_create(struct vmpf_restore *rst)
{
	struct file *f;

	f = shmem_file_setup_with_mnt(rst->huge ? vmpf_mnt_huge : vmpf_mnt,
				      "vmpagefile-restore",
				      rst->total_pages << PAGE_SHIFT, VM_NORESERVE);
	if (IS_ERR(f))
		return PTR_ERR(f);
	/* Dropped by __fput()'s fops_put(): the object pins the module. */
	__module_get(THIS_MODULE);
	f->f_op = &vmpf_shm_fops;
	/* Later opens (/proc/self/fd/N, map_files) get ours too. */
	file_inode(f)->i_fop = &vmpf_shm_fops;
	file_inode(f)->i_op = &vmpf_shm_iops;
	vmpf_mapping_private(f->f_mapping) = rst;
	rst->shm = f;
	return 0;
}

void vmpf_guestmem_put(struct vmpf_restore *rst)
{
	if (!rst->shm)
		return;
	/*
	 * A hole punched or a mapping made from now on is tmpfs's business
	 * alone; later opens get tmpfs's operations (the module may go).
	 */
	down_write(&vmpf_shm_sem);
	vmpf_mapping_private(rst->shm->f_mapping) = NULL;
	file_inode(rst->shm)->i_fop = vmpf_shmem_fops;
	file_inode(rst->shm)->i_op = vmpf_shmem_iops;
	up_write(&vmpf_shm_sem);
	fput(rst->shm);
}

/*
 * Map the object instead of the descriptor: the VMA's file becomes the
 * object (as for a MAP_SHARED|MAP_ANONYMOUS mapping), so reclaim and
 * migration find the VMA through the object's address space.
 */
int vmpf_guestmem_mmap(struct vmpf_restore *rst, struct vm_area_struct *vma)
{
	int ret;

	if (vma->vm_file != rst->shm)
		vma_set_file(vma, rst->shm);
	ret = vmpf_shmem_mmap(rst->shm, vma);
	if (ret)
		return ret;
	/* tmpfs's handler, the same for every object. */
	WRITE_ONCE(rst->shm_fault, vma->vm_ops->fault);
	return 0;
}

/* Huge sessions: where tmpfs has huge pages, and they are 2 MiB (x86). */
bool vmpf_guestmem_huge(void)
{
	return vmpf_mnt_huge && PMD_SIZE == SZ_2M;
}

int __init vmpf_guestmem_init(void)
{
	/* Parsed in place: must be writable. */
	char opts[] = "huge=never", huge_opts[] = "huge=within_size";
	struct file_system_type *type;
	struct vfsmount *mnt;
	struct file *f;

	type = get_fs_type("tmpfs");
	if (!type)
		return -ENODEV;
	/* SB_KERNMOUNT: no size or inode limit, as for memfd's mount. */
	vmpf_mnt = vfs_kern_mount(type, SB_KERNMOUNT, type->name, opts);
	if (IS_ERR(vmpf_mnt))
		return PTR_ERR(vmpf_mnt);
	/* Fails without CONFIG_TRANSPARENT_HUGEPAGE: no huge sessions then. */
	mnt = vfs_kern_mount(type, SB_KERNMOUNT, type->name, huge_opts);
	if (!IS_ERR(mnt))
		vmpf_mnt_huge = mnt;
	f = shmem_file_setup_with_mnt(vmpf_mnt, "vmpagefile-probe", 0, VM_NORESERVE);
	if (IS_ERR(f)) {
		vmpf_guestmem_exit();
		return PTR_ERR(f);
	}
	vmpf_shmem_fops = f->f_op;
	vmpf_shmem_iops = file_inode(f)->i_op;
	vmpf_shm_fops = *f->f_op;
	vmpf_shm_iops = *vmpf_shmem_iops;
	fput(f);
	vmpf_shmem_fallocate = vmpf_shm_fops.fallocate;
	vmpf_shmem_mmap = vmpf_shm_fops.mmap;
	vmpf_shm_fops.owner = THIS_MODULE;
	vmpf_shm_fops.fallocate = vmpf_shm_fallocate;
	vmpf_shm_fops.mmap = vmpf_shm_mmap;
	/* Wrapped where tmpfs has them (it does, with CONFIG_TMPFS). */
	if (vmpf_shm_fops.read_iter)
		vmpf_shm_fops.read_iter = vmpf_shm_read_iter;
	if (vmpf_shm_fops.write_iter)
		vmpf_shm_fops.write_iter = vmpf_shm_write_iter;
	if (vmpf_shm_fops.splice_read)
		vmpf_shm_fops.splice_read = vmpf_shm_splice_read;
	if (vmpf_shm_fops.splice_write)
		vmpf_shm_fops.splice_write = vmpf_shm_splice_write;
	if (vmpf_shm_iops.setattr)
		vmpf_shm_iops.setattr = vmpf_shm_setattr;
	return 0;
}

void vmpf_guestmem_exit(void)
{
	/* Every object is gone: each held a module reference. */
	if (vmpf_mnt_huge)
		kern_unmount(vmpf_mnt_huge);
	kern_unmount(vmpf_mnt);
}
