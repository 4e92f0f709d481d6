/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the vmpagefile kselftests, on top of kselftest_harness.h.
 *
 * Ioctl wrappers come in pairs: __vmpf_ioctl() (libvmpf) returns 0 or
 * -errno and never asserts; vmpf_ioctl() asserts success and names the
 * command and the errno when it fails.  Both check at compile time that the
 * argument is the size the command encodes.
 */
#ifndef VMPF_TEST_UTIL_H
#define VMPF_TEST_UTIL_H

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "vmpf.h"

#define vmpf_ioctl_checked(fd, cmd, arg) ({				\
	_Static_assert(sizeof(*(arg)) == _IOC_SIZE(cmd),		\
		       "argument of " #cmd " has the wrong size");	\
	__vmpf_ioctl(fd, cmd, arg);					\
})

/* Asserting wrapper: only inside a TEST()/TEST_F() body. */
#define vmpf_ioctl(fd, cmd, arg) do {					\
	int __r = vmpf_ioctl_checked(fd, cmd, arg);			\
	ASSERT_EQ(0, __r) TH_LOG(#cmd " failed: %s", strerror(-__r));	\
} while (0)

/* Open the device or skip the test saying why. */
#define vmpf_open_or_skip(fdp) do {					\
	*(fdp) = vmpf_open(vmpf_device_path());				\
	if (*(fdp) == -ENOENT)						\
		SKIP(return, "%s missing: module not loaded",		\
		     vmpf_device_path());				\
	ASSERT_LE(0, *(fdp)) TH_LOG("open %s: %s", vmpf_device_path(),	\
				    strerror(-*(fdp)));			\
} while (0)

#endif /* VMPF_TEST_UTIL_H */
