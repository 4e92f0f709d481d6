/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vmpagefile - live migration of KVM guests through a page file on shared
 * storage.  This header is the contract between the module and its users
 * (VMMs, vmpf-ctl, the selftests).
 *
 * Rules of this ABI (see Documentation/process/botching-up-ioctls.rst):
 *  - Every file descriptor opened on /dev/vmpagefile starts with the API
 *    handshake, VMPF_IOC_API.  Until it has succeeded, every other ioctl
 *    fails with EBADFD.
 *  - Every struct is made of __u64 fields (pointers are passed as __u64),
 *    its size is a multiple of 8 bytes and fixed forever.
 *  - Fields marked "in" are read by the kernel, fields marked "out" are
 *    written by it; out fields come last.  Reserved fields must be zero on
 *    input, otherwise the ioctl fails with EINVAL.  Unknown flag or feature
 *    bits fail with EINVAL.
 *  - The ABI grows by new ioctls and new feature bits, never by changing an
 *    existing struct.  Unknown ioctl numbers fail with ENOTTY.
 */
#ifndef _UAPI_LINUX_VMPAGEFILE_H
#define _UAPI_LINUX_VMPAGEFILE_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* The control device, created when the module is loaded. */
#define VMPF_DEVICE_PATH	"/dev/vmpagefile"

/* The only API version this header describes. */
#define VMPF_API		1

/*
 * Module versions are reported as one number:
 * bits 63..32 major, 31..16 minor, 15..0 patch.
 */
#define VMPF_VERSION_CODE(major, minor, patch) \
	(((__u64)(major) << 32) | ((__u64)(minor) << 16) | (__u64)(patch))
#define VMPF_VERSION_MAJOR(code)	((__u32)((code) >> 32))
#define VMPF_VERSION_MINOR(code)	((__u16)((code) >> 16))
#define VMPF_VERSION_PATCH(code)	((__u16)(code))

/*
 * Feature bits a caller may ask for in struct vmpf_api.features.
 *
 * API v1 of this release defines none yet: the source-side and restore-side
 * sessions will each add a bit when they land, and a caller finds out
 * whether the loaded module has them from the handshake's answer.  Asking
 * for a bit outside VMPF_FEATURES_ALL fails with EINVAL.
 */
#define VMPF_FEATURES_ALL	0ULL

/* ioctl numbers; 0xBA is not used by any other driver. */
#define VMPF_IOCTL_MAGIC	0xBA

/**
 * struct vmpf_api - VMPF_IOC_API, the handshake
 * @api:	in: the API version the caller speaks, VMPF_API.
 * @features:	in: feature bits the caller wants (subset of
 *		VMPF_FEATURES_ALL); out: every feature bit this module
 *		supports, so a caller can see what it could have asked for.
 * @reserved:	in: must be zero.
 * @ioctls:	out: bit (1 << _IOC_NR(cmd)) is set for every ioctl that
 *		this file descriptor accepts from now on.
 * @version:	out: the module's version, VMPF_VERSION_CODE().
 *
 * Errors: EINVAL for a wrong @api, an unknown feature bit or a non-zero
 * reserved field; EEXIST if the handshake was already done on this file
 * descriptor (a failed handshake can be retried).
 */
struct vmpf_api {
	__u64 api;
	__u64 features;
	__u64 reserved[2];
	__u64 ioctls;
	__u64 version;
};

/**
 * struct vmpf_dev_info - VMPF_IOC_DEV_INFO, module-wide counters
 * @version:	out: the module's version, VMPF_VERSION_CODE().
 * @features:	out: every feature bit this module supports.
 * @open_files:	out: file descriptions currently open on the device.
 * @mem_bytes:	out: memory the module currently holds for its callers, in
 *		bytes (per-file state and, later, session tables and bitmaps).
 * @reserved:	out: zero.
 *
 * Counters are module-wide and read without stopping other users: they are
 * a consistent snapshot of each counter, not of all of them together.
 */
struct vmpf_dev_info {
	__u64 version;
	__u64 features;
	__u64 open_files;
	__u64 mem_bytes;
	__u64 reserved[4];
};

#define VMPF_IOC_API		_IOWR(VMPF_IOCTL_MAGIC, 0x00, struct vmpf_api)
#define VMPF_IOC_DEV_INFO	_IOR(VMPF_IOCTL_MAGIC, 0x01, struct vmpf_dev_info)

#endif /* _UAPI_LINUX_VMPAGEFILE_H */
