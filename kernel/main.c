// SPDX-License-Identifier: GPL-2.0
/*
 * vmpagefile module init and exit.
 */
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/workqueue.h>

#include "vmpf.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

struct vmpf_counters vmpf_counters;

static ushort dev_mode = 0600;
module_param(dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode,
		 "Permissions of /dev/vmpagefile, read/write bits only (default 0600: root only)");

static struct miscdevice vmpf_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "vmpagefile",
	.fops	= &vmpf_fops,
};

/*
 * Restore reads handed over by faults (fault.c) and the ownership leases'
 * renewals and last writes (lease.c): they can block for as long as the
 * storage's retries (seconds), so not on a queue the whole kernel shares.
 * Flushed and destroyed at unload, after every file: a lease's last write
 * is queued at once when its session ends.
 */
struct workqueue_struct *vmpf_wq;

static int __init vmpf_init(void)
{
	int ret;

	if (dev_mode & ~0666) {
		pr_err("dev_mode=%#o: only read/write permission bits (0666) are allowed\n",
		       dev_mode);
		return -EINVAL;
	}
	vmpf_misc.mode = dev_mode;
	vmpf_crc_select();

	ret = vmpf_guestmem_init();
	if (ret) {
		pr_err("cannot mount the tmpfs for restored guest memory: %d\n", ret);
		return ret;
	}
	vmpf_wq = alloc_workqueue("vmpagefile", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!vmpf_wq) {
		ret = -ENOMEM;
		goto err_guestmem;
	}
	ret = misc_register(&vmpf_misc);
	if (ret) {
		pr_err("cannot register /dev/vmpagefile: %d\n", ret);
		goto err_wq;
	}

	pr_info("version %s loaded, API %u, /dev/vmpagefile mode %#o\n",
		VMPF_VERSION_STR, VMPF_API, dev_mode);
	return 0;

err_wq:
	destroy_workqueue(vmpf_wq);
err_guestmem:
	vmpf_guestmem_exit();
	return ret;
}

static void __exit vmpf_exit(void)
{
	misc_deregister(&vmpf_misc);
	vmpf_lease_exit();
	destroy_workqueue(vmpf_wq);
	vmpf_guestmem_exit();
	pr_info("version %s unloaded\n", VMPF_VERSION_STR);
}

module_init(vmpf_init);
module_exit(vmpf_exit);

MODULE_DESCRIPTION("Live migration of KVM guests through a page file on shared storage");
MODULE_AUTHOR("The vmpagefile developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(VMPF_VERSION_STR);
