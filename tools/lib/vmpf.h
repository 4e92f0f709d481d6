/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libvmpf: the small userspace library shared by vmpf-ctl, the reference
 * VMM and the selftests: opening the device, ioctl wrappers, the handshake,
 * and sentences a person understands for every error.
 */
#ifndef VMPF_LIB_H
#define VMPF_LIB_H

#include <stddef.h>
#include <sys/types.h>
#include <linux/vmpagefile.h>

/* The device path: $VMPF_DEVICE if set, else VMPF_DEVICE_PATH. */
const char *vmpf_device_path(void);

/* 1 if the module is loaded (/sys/module/vmpagefile exists), else 0. */
int vmpf_module_loaded(void);

/*
 * The module parameter @name: its value (a line, newline kept) to @old
 * (@len bytes) if @old is not NULL, then @val written if @val is not NULL.
 * 0, or -errno.
 */
int vmpf_module_param(const char *name, const char *val, char *old, size_t len);

/* open() the control device read-write, close-on-exec; -errno on failure. */
int vmpf_open(const char *path);

/* ioctl() returning 0 or -errno; never asserts. */
int __vmpf_ioctl(int fd, unsigned long cmd, void *arg);

/* The handshake for API v1 asking for @features; -errno on failure. */
int vmpf_handshake(int fd, __u64 features, struct vmpf_api *out);

/* "VMPF_IOC_API" for a known command, "unknown ioctl" otherwise. */
const char *vmpf_ioctl_name(unsigned long cmd);

/* Short name of an ioctl bit of struct vmpf_api.ioctls, or NULL. */
const char *vmpf_ioctl_bit_name(unsigned int nr);

/* Short name of a feature bit, or NULL if this library does not know it. */
const char *vmpf_feature_name(unsigned int bit);

/* "1.2.3" from a VMPF_VERSION_CODE(). */
void vmpf_format_version(char *buf, size_t len, __u64 code);

/*
 * One sentence saying why opening @path failed with @err (a positive
 * errno), given whether the module is loaded.
 */
const char *vmpf_open_error(int err, int module_loaded, const char *path,
			    char *buf, size_t len);

/* One sentence saying why @cmd failed with @err (a positive errno). */
const char *vmpf_ioctl_error(unsigned long cmd, int err, char *buf, size_t len);

/*
 * mmap() @len bytes of @fd from @off, MAP_SHARED, at an address 2 MiB
 * aligned as @off is, so that a PMD can map a huge page of it (guest RAM
 * of a restore with VMPF_RESTORE_HUGE, a memfd on a huge tmpfs): KVM then
 * maps it with 2 MiB pages.  MAP_FAILED and errno as mmap().
 */
void *vmpf_map_huge_aligned(size_t len, int prot, int fd, off_t off);

#endif /* VMPF_LIB_H */
