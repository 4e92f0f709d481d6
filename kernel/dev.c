// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/vmpagefile file operations: open, release and ioctl dispatch.
 *
 * Every open file description starts with the API handshake
 * (VMPF_IOC_API); the dispatcher refuses every other ioctl with EBADFD
 * until it has succeeded, and unknown ioctl numbers with ENOTTY in any
 * state.
 */
#include <linux/build_bug.h>
#include <linux/compat.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vmpf.h"

/* The sizes are ABI: a change here breaks every caller. */
static_assert(sizeof(struct vmpf_api) == 48);
static_assert(sizeof(struct vmpf_dev_info) == 64);

static_assert(sizeof(struct vmpf_source_attach) == 112);
static_assert(sizeof(struct vmpf_status) == 288);
static_assert(sizeof(struct vmpf_finish) == 80);
static_assert(sizeof(struct vmpf_mark_dirty) == 32);
static_assert(sizeof(struct vmpf_round_stats) == 64);
static_assert(sizeof(struct vmpf_pf_super) <= VMPF_PF_BLOCK);
static_assert(sizeof(struct vmpf_pf_commit) <= VMPF_PF_BLOCK);
static_assert(sizeof(struct vmpf_pf_page) == 8);
/* The lease has a sector of block 1 to itself, after the commit record's. */
static_assert(sizeof(struct vmpf_pf_commit) <= 512);
static_assert(sizeof(struct vmpf_pf_lease) == 176);
static_assert(VMPF_PF_LEASE_OFF % 512 == 0);
static_assert(sizeof(struct vmpf_restore_open) == 80);
static_assert(sizeof(struct vmpf_restore_info) == 64);
static_assert(sizeof(struct vmpf_restore_region) == 48);
static_assert(sizeof(struct vmpf_prefetch) == 32);
static_assert(sizeof(struct vmpf_restore_status) == 416);
static_assert(sizeof(struct vmpf_memslot) == 48);
static_assert(sizeof(struct vmpf_vm_memslots) == 64);
static_assert(sizeof(struct vmpf_restore_node) == 104);

typedef long (*vmpf_ioctl_fn)(struct vmpf_file *vf, void __user *uarg);

static long vmpf_ioctl_api(struct vmpf_file *vf, void __user *uarg);
static long vmpf_ioctl_dev_info(struct vmpf_file *vf, void __user *uarg);

/* @feature: the handshake must have asked for it, or EOPNOTSUPP. */
static const struct vmpf_ioctl_desc {
	unsigned int cmd;
	u64 feature;
	vmpf_ioctl_fn fn;
} vmpf_ioctls[] = {
	{ VMPF_IOC_API,			0, vmpf_ioctl_api },
	{ VMPF_IOC_DEV_INFO,		0, vmpf_ioctl_dev_info },
	{ VMPF_IOC_SOURCE_ATTACH,	VMPF_FEATURE_SOURCE, vmpf_source_attach },
	{ VMPF_IOC_START,		VMPF_FEATURE_SOURCE, vmpf_source_start },
	{ VMPF_IOC_STATUS,		0, vmpf_source_status },
	{ VMPF_IOC_REQUEST_FINISH,	VMPF_FEATURE_SOURCE, vmpf_source_request_finish },
	{ VMPF_IOC_FINISH,		VMPF_FEATURE_SOURCE, vmpf_source_finish },
	{ VMPF_IOC_ABORT,		VMPF_FEATURE_SOURCE, vmpf_source_abort },
	{ VMPF_IOC_MARK_DIRTY,		VMPF_FEATURE_SOURCE, vmpf_source_mark_dirty },
	{ VMPF_IOC_RESTORE_OPEN,	VMPF_FEATURE_RESTORE, vmpf_restore_open },
	{ VMPF_IOC_RESTORE_INFO,	VMPF_FEATURE_RESTORE, vmpf_restore_info },
	{ VMPF_IOC_PREFETCH,		VMPF_FEATURE_RESTORE, vmpf_restore_prefetch },
	{ VMPF_IOC_RESTORE_STATUS,	0, vmpf_restore_status },
	{ VMPF_IOC_SET_THROTTLE,	VMPF_FEATURE_SOURCE, vmpf_source_set_throttle },
	{ VMPF_IOC_VCPU_THROTTLE,	VMPF_FEATURE_SOURCE, vmpf_source_vcpu_throttle },
	{ VMPF_IOC_ROUND_POLICY,	VMPF_FEATURE_SOURCE, vmpf_source_round_policy },
	{ VMPF_IOC_VM_MEMSLOTS,		VMPF_FEATURE_EXTERNAL, vmpf_vm_memslots },
	{ VMPF_IOC_RESTORE_NODE,	VMPF_FEATURE_RESTORE | VMPF_FEATURE_EXTERNAL,
					vmpf_restore_node },
	{ VMPF_IOC_RESTORE_MEMFD,	VMPF_FEATURE_RESTORE, vmpf_restore_memfd },
};

/* The ioctls a descriptor accepts once the handshake agreed on @features. */
static u64 vmpf_ioctl_mask(u64 features)
{
	u64 mask = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(vmpf_ioctls); i++)
		if (vmpf_ioctls[i].cmd != VMPF_IOC_API &&
		    (vmpf_ioctls[i].feature & features) == vmpf_ioctls[i].feature)
			mask |= 1ULL << _IOC_NR(vmpf_ioctls[i].cmd);
	return mask;
}

/* What this module can do here: huge pages only where tmpfs has them. */
static u64 vmpf_features(void)
{
	return VMPF_FEATURES_ALL & (vmpf_guestmem_huge() ? ~0ULL : ~VMPF_FEATURE_HUGE);
}

static long vmpf_ioctl_api(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_api api;
	u64 wanted;
	long ret;

	if (copy_from_user(&api, uarg, sizeof(api)))
		return -EFAULT;
	if (api.api != VMPF_API)
		return -EINVAL;
	if (api.features & ~VMPF_FEATURES_ALL)
		return -EINVAL;
	if (api.reserved[0] || api.reserved[1])
		return -EINVAL;
	/* Sessions are for descriptors opened for writing, as with write(2). */
	if (api.features && !vf->writable)
		return -EBADF;

	mutex_lock(&vf->lock);
	if (vf->api_done) {
		ret = -EEXIST;
		goto out_unlock;
	}

	wanted = api.features;
	api.ioctls = vmpf_ioctl_mask(wanted);
	api.version = VMPF_VERSION;
	api.features = vmpf_features();
	/* The handshake only counts once the caller has seen the answer. */
	if (copy_to_user(uarg, &api, sizeof(api))) {
		ret = -EFAULT;
		goto out_unlock;
	}

	vf->features = wanted;
	/* Pairs with the acquire in vmpf_ioctl(): publishes @features. */
	smp_store_release(&vf->api_done, true);
	ret = 0;
out_unlock:
	mutex_unlock(&vf->lock);
	return ret;
}

static long vmpf_ioctl_dev_info(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_dev_info info = {
		.version	= VMPF_VERSION,
		.features	= vmpf_features(),
		.open_files	= atomic64_read(&vmpf_counters.open_files),
		.mem_bytes	= atomic64_read(&vmpf_counters.mem_bytes),
		.sessions	= atomic64_read(&vmpf_counters.sessions),
		.huge_fills	= atomic64_read(&vmpf_counters.huge_fills),
		.table_reads	= atomic64_read(&vmpf_counters.table_reads),
	};

	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long vmpf_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vmpf_file *vf = file->private_data;
	int i;

	for (i = 0; i < ARRAY_SIZE(vmpf_ioctls); i++) {
		if (vmpf_ioctls[i].cmd != cmd)
			continue;
		/* Pairs with the release in vmpf_ioctl_api(). */
		if (cmd != VMPF_IOC_API && !smp_load_acquire(&vf->api_done))
			return -EBADFD;
		if ((vf->features & vmpf_ioctls[i].feature) != vmpf_ioctls[i].feature)
			return -EOPNOTSUPP;
		return vmpf_ioctls[i].fn(vf, (void __user *)arg);
	}
	return -ENOTTY;
}

static int vmpf_open(struct inode *inode, struct file *file)
{
	struct vmpf_file *vf;

	vf = kzalloc(sizeof(*vf), GFP_KERNEL_ACCOUNT);
	if (!vf)
		return -ENOMEM;
	mutex_init(&vf->lock);
	init_waitqueue_head(&vf->wq);
	vf->writable = file->f_mode & FMODE_WRITE;
	vf->file = file;

	file->private_data = vf;
	atomic64_inc(&vmpf_counters.open_files);
	atomic64_add(sizeof(*vf), &vmpf_counters.mem_bytes);
	return nonseekable_open(inode, file);
}

static __poll_t vmpf_poll(struct file *file, struct poll_table_struct *wait)
{
	struct vmpf_file *vf = file->private_data;
	/* Pairs with the release in vmpf_source_attach(). */
	struct vmpf_source *src = smp_load_acquire(&vf->src);
	/* Pairs with the release in vmpf_restore_open(). */
	struct vmpf_restore *rst = smp_load_acquire(&vf->rst);

	/* A poll from before the session began learns when it does. */
	poll_wait(file, &vf->wq, wait);
	if (src)
		return vmpf_source_poll(src);
	return rst ? vmpf_restore_poll(rst) : 0;
}

/* Guest RAM of a restore session; nothing else can be mapped. */
static int vmpf_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vmpf_file *vf = file->private_data;
	/* Pairs with the release in vmpf_restore_open(). */
	struct vmpf_restore *rst = smp_load_acquire(&vf->rst);

	return rst ? vmpf_restore_mmap(rst, vma) : -ENODEV;
}

static int vmpf_release(struct inode *inode, struct file *file)
{
	struct vmpf_file *vf = file->private_data;

	/* No ioctl can run any more: the session goes with the descriptor. */
	if (vf->node)
		vmpf_node_remove(vf->node);
	if (vf->src)
		vmpf_source_release(vf->src);
	if (vf->rst)
		vmpf_restore_release(vf->rst);
	atomic64_sub(sizeof(*vf), &vmpf_counters.mem_bytes);
	atomic64_dec(&vmpf_counters.open_files);
	mutex_destroy(&vf->lock);
	kfree(vf);
	return 0;
}

const struct file_operations vmpf_fops = {
	.owner		= THIS_MODULE,
	.open		= vmpf_open,
	.release	= vmpf_release,
	.poll		= vmpf_poll,
	.mmap		= vmpf_mmap,
	.unlocked_ioctl	= vmpf_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};
