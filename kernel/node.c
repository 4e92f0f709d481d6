// SPDX-License-Identifier: GPL-2.0
/*
 * A device node per restore session (VMPF_IOC_RESTORE_NODE), for VMMs that
 * map guest RAM from a path they open themselves: QEMU's
 * memory-backend-file,mem-path=/dev/vmpagefile-restore-N,share=on.
 *
 * Opening the node gives a descriptor that stands for the session's own:
 * it holds a reference to the session's file, and its mmap() is the
 * session's, which switches the mapping's file to the session's guest
 * memory (guestmem.c), so faults, lifetime and accounting are exactly
 * those of a mapping of the session descriptor.
 *
 * Lifetime: the node is registered by the ioctl and deregistered by the
 * session descriptor's release(), before the session is freed.  The node
 * holds no reference to that descriptor (it would then never be
 * released); an open racing with the release is excluded by misc_mtx,
 * which misc_open() holds around our open and misc_deregister() takes:
 * while our open runs, the descriptor's struct file is still allocated,
 * and a count of zero means its release has begun: the open fails.
 */
#include <linux/atomic.h>
#include <linux/file.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vmpf.h"

struct vmpf_node {
	struct miscdevice misc;
	struct file *session;	/* no reference: see above */
	char name[40];
};

static atomic64_t vmpf_node_ids = ATOMIC64_INIT(0);

static int vmpf_node_open(struct inode *inode, struct file *file)
{
	struct vmpf_node *node = container_of(file->private_data, struct vmpf_node, misc);

	if (!vmpf_file_tryget(node->session))
		return -ENXIO;
	file->private_data = node->session;
	return nonseekable_open(inode, file);
}

static int vmpf_node_release(struct inode *inode, struct file *file)
{
	fput(file->private_data);
	return 0;
}

static int vmpf_node_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct file *session = file->private_data;

	/* The session's mmap() maps its guest memory, whichever file asks. */
	return session->f_op->mmap(session, vma);
}

static const struct file_operations vmpf_node_fops = {
	.owner		= THIS_MODULE,
	.open		= vmpf_node_open,
	.release	= vmpf_node_release,
	.mmap		= vmpf_node_mmap,
};

long vmpf_restore_node(struct vmpf_file *vf, void __user *uarg)
{
	struct vmpf_restore_node n;
	struct vmpf_node *node;
	long ret;

	if (copy_from_user(&n, uarg, sizeof(n)))
		return -EFAULT;
	if (n.flags || n.reserved[0] || n.reserved[1] || n.reserved[2])
		return -EINVAL;
	/* Pairs with the release in vmpf_restore_open(). */
	if (!smp_load_acquire(&vf->rst))
		return -ENOENT;

	node = kzalloc(sizeof(*node), GFP_KERNEL_ACCOUNT);
	if (!node)
		return -ENOMEM;
	snprintf(node->name, sizeof(node->name), "vmpagefile-restore-%lld",
		 atomic64_inc_return(&vmpf_node_ids));
	node->session = vf->file;
	node->misc.minor = MISC_DYNAMIC_MINOR;
	node->misc.name = node->name;
	node->misc.fops = &vmpf_node_fops;
	node->misc.mode = 0600;

	mutex_lock(&vf->lock);
	ret = -EEXIST;
	if (vf->node)
		goto err_unlock;
	ret = misc_register(&node->misc);
	if (ret)
		goto err_unlock;
	vf->node = node;
	mutex_unlock(&vf->lock);
	atomic64_add(sizeof(*node), &vmpf_counters.mem_bytes);

	memset(n.name, 0, sizeof(n.name));
	strscpy(n.name, node->name, sizeof(n.name));
	n.dev = (u64)MISC_MAJOR << 32 | node->misc.minor;
	/* The node stays with the session even if the caller cannot learn it. */
	if (copy_to_user(uarg, &n, sizeof(n)))
		return -EFAULT;
	return 0;

err_unlock:
	mutex_unlock(&vf->lock);
	kfree(node);
	return ret;
}

/* From the session descriptor's release(): no open can follow. */
void vmpf_node_remove(struct vmpf_node *node)
{
	misc_deregister(&node->misc);
	atomic64_sub(sizeof(*node), &vmpf_counters.mem_bytes);
	kfree(node);
}
