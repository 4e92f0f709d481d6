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

#endif /* _VMPF_COMPAT_H */
