// SPDX-License-Identifier: GPL-2.0
/*
 * libvmpf: device access and error sentences, see vmpf.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmpf.h"

const char *vmpf_device_path(void)
{
	const char *p = getenv("VMPF_DEVICE");

	return p && *p ? p : VMPF_DEVICE_PATH;
}

int vmpf_module_loaded(void)
{
	struct stat st;

	return stat("/sys/module/vmpagefile", &st) == 0;
}

int vmpf_module_param(const char *name, const char *val, char *old, size_t len)
{
	char path[128];
	ssize_t n;
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/module/vmpagefile/parameters/%s", name);
	fd = open(path, val ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return -errno;
	if (old) {
		n = read(fd, old, len - 1);
		if (n < 0)
			ret = -errno;
		else
			old[n] = 0;
	}
	if (!ret && val) {
		n = pwrite(fd, val, strlen(val), 0);
		if (n != (ssize_t)strlen(val))
			ret = n < 0 ? -errno : -EIO;
	}
	close(fd);
	return ret;
}

int vmpf_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int __vmpf_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

int vmpf_handshake(int fd, __u64 features, struct vmpf_api *out)
{
	memset(out, 0, sizeof(*out));
	out->api = VMPF_API;
	out->features = features;
	return __vmpf_ioctl(fd, VMPF_IOC_API, out);
}

static const struct {
	unsigned long cmd;
	const char *name;
} vmpf_ioctl_names[] = {
	{ VMPF_IOC_API,		"VMPF_IOC_API" },
	{ VMPF_IOC_DEV_INFO,	"VMPF_IOC_DEV_INFO" },
	{ VMPF_IOC_SOURCE_ATTACH, "VMPF_IOC_SOURCE_ATTACH" },
	{ VMPF_IOC_START,	"VMPF_IOC_START" },
	{ VMPF_IOC_STATUS,	"VMPF_IOC_STATUS" },
	{ VMPF_IOC_REQUEST_FINISH, "VMPF_IOC_REQUEST_FINISH" },
	{ VMPF_IOC_FINISH,	"VMPF_IOC_FINISH" },
	{ VMPF_IOC_ABORT,	"VMPF_IOC_ABORT" },
	{ VMPF_IOC_MARK_DIRTY,	"VMPF_IOC_MARK_DIRTY" },
	{ VMPF_IOC_RESTORE_OPEN, "VMPF_IOC_RESTORE_OPEN" },
	{ VMPF_IOC_RESTORE_INFO, "VMPF_IOC_RESTORE_INFO" },
	{ VMPF_IOC_PREFETCH,	"VMPF_IOC_PREFETCH" },
	{ VMPF_IOC_RESTORE_STATUS, "VMPF_IOC_RESTORE_STATUS" },
	{ VMPF_IOC_SET_THROTTLE, "VMPF_IOC_SET_THROTTLE" },
	{ VMPF_IOC_VCPU_THROTTLE, "VMPF_IOC_VCPU_THROTTLE" },
	{ VMPF_IOC_ROUND_POLICY, "VMPF_IOC_ROUND_POLICY" },
	{ VMPF_IOC_VM_MEMSLOTS, "VMPF_IOC_VM_MEMSLOTS" },
	{ VMPF_IOC_RESTORE_NODE, "VMPF_IOC_RESTORE_NODE" },
	{ VMPF_IOC_RESTORE_MEMFD, "VMPF_IOC_RESTORE_MEMFD" },
};

const char *vmpf_ioctl_name(unsigned long cmd)
{
	size_t i;

	for (i = 0; i < sizeof(vmpf_ioctl_names) / sizeof(vmpf_ioctl_names[0]); i++)
		if (vmpf_ioctl_names[i].cmd == cmd)
			return vmpf_ioctl_names[i].name;
	return "unknown ioctl";
}

const char *vmpf_ioctl_bit_name(unsigned int nr)
{
	size_t i;

	for (i = 0; i < sizeof(vmpf_ioctl_names) / sizeof(vmpf_ioctl_names[0]); i++)
		if (_IOC_NR(vmpf_ioctl_names[i].cmd) == nr)
			return vmpf_ioctl_names[i].name + strlen("VMPF_IOC_");
	return NULL;
}

const char *vmpf_feature_name(unsigned int bit)
{
	switch (1ULL << bit) {
	case VMPF_FEATURE_SOURCE:
		return "source";
	case VMPF_FEATURE_RESTORE:
		return "restore";
	case VMPF_FEATURE_EXTERNAL:
		return "external";
	case VMPF_FEATURE_LEASE:
		return "lease";
	case VMPF_FEATURE_HUGE:
		return "huge";
	default:
		return NULL;
	}
}

void vmpf_format_version(char *buf, size_t len, __u64 code)
{
	snprintf(buf, len, "%u.%u.%u", VMPF_VERSION_MAJOR(code),
		 VMPF_VERSION_MINOR(code), VMPF_VERSION_PATCH(code));
}

const char *vmpf_open_error(int err, int module_loaded, const char *path,
			    char *buf, size_t len)
{
	switch (err) {
	case ENOENT:
		if (!module_loaded)
			snprintf(buf, len,
				 "the vmpagefile kernel module is not loaded (load it with 'modprobe vmpagefile' or 'insmod vmpagefile.ko')");
		else
			snprintf(buf, len,
				 "%s does not exist although the vmpagefile module is loaded; is devtmpfs mounted on /dev?",
				 path);
		break;
	case EACCES:
	case EPERM:
		snprintf(buf, len,
			 "permission denied opening %s: run as root, or load the module with dev_mode=0660 and give the device a group",
			 path);
		break;
	case ENXIO:
	case ENODEV:
		snprintf(buf, len,
			 "%s is not a working vmpagefile device (the module may be unloading)",
			 path);
		break;
	default:
		snprintf(buf, len, "cannot open %s: %s", path, strerror(err));
		break;
	}
	return buf;
}

const char *vmpf_ioctl_error(unsigned long cmd, int err, char *buf, size_t len)
{
	const char *name = vmpf_ioctl_name(cmd);

	switch (err) {
	case ENOTTY:
		snprintf(buf, len,
			 "%s: the loaded vmpagefile module does not know this request; it is older than this tool",
			 name);
		break;
	case EBADFD:
		snprintf(buf, len,
			 "%s: the API handshake has not been done on this file descriptor",
			 name);
		break;
	case EEXIST:
		snprintf(buf, len,
			 "%s: the API handshake was already done on this file descriptor",
			 name);
		break;
	case EINVAL:
		if (cmd == VMPF_IOC_API)
			snprintf(buf, len,
				 "%s: the module refused the handshake: it does not speak API %d with the requested features",
				 name, VMPF_API);
		else if (cmd == VMPF_IOC_SET_THROTTLE)
			snprintf(buf, len,
				 "%s: a throttle is 0 to 99 %% and at most its maximum, and can be set only before or during pre-copy",
				 name);
		else
			snprintf(buf, len,
				 "%s: the module refused the request: an invalid argument, or not possible in the session's phase",
				 name);
		break;
	case EFAULT:
		snprintf(buf, len, "%s: bad address passed to the module", name);
		break;
	case ENOENT:
		snprintf(buf, len, "%s: there is no migration session on this descriptor",
			 name);
		break;
	case EOPNOTSUPP:
		if (cmd == VMPF_IOC_RESTORE_OPEN)
			snprintf(buf, len,
				 "%s: the handshake did not ask for restore sessions, or huge pages were asked for and this kernel has none for tmpfs (CONFIG_TRANSPARENT_HUGEPAGE)",
				 name);
		else
			snprintf(buf, len,
				 "%s: the handshake on this descriptor did not ask for the feature this needs",
				 name);
		break;
	case ENOSPC:
		if (cmd == VMPF_IOC_SOURCE_ATTACH)
			snprintf(buf, len, "%s: the page file is too small for this VM", name);
		else
			snprintf(buf, len,
				 "%s: no space left where the page file lives (a full filesystem?)",
				 name);
		break;
	case ENODEV:
		snprintf(buf, len,
			 "%s: the page file's device is gone (removed, or it shrank)", name);
		break;
	case EPERM:
		snprintf(buf, len,
			 "%s: only the VM's own process may do this (attach, finish, mark dirty)",
			 name);
		break;
	case EBUSY:
		if (cmd == VMPF_IOC_FINISH)
			snprintf(buf, len,
				 "%s: a vCPU is running (inside KVM_RUN): pause every vCPU before the switch-over",
				 name);
		else if (cmd == VMPF_IOC_RESTORE_OPEN)
			snprintf(buf, len,
				 "%s: the image is in use: a restore of it (on this host or another) holds its lease and renews it; one VM runs from one image at a time",
				 name);
		else if (cmd == VMPF_IOC_SOURCE_ATTACH)
			snprintf(buf, len,
				 "%s: busy: the descriptor already has a session, a memslot already logs dirty pages, or the page file holds an image a restore (on this host or another) still reads: it would be overwritten",
				 name);
		else
			snprintf(buf, len,
				 "%s: busy: the descriptor already has a session, a memslot already logs dirty pages, or the migration already committed",
				 name);
		break;
	case EALREADY:
		snprintf(buf, len,
			 "%s: the image's source took the VM back after the commit (vmpf-ctl revoke): restoring it would run the VM twice; force it only if the source VM is gone",
			 name);
		break;
	case EROFS:
		snprintf(buf, len,
			 "%s: the page file is read-only (opened so, or a read-only device or export), but a restore writes its ownership lease into it: make it writable, or take no lease (--no-lease)",
			 name);
		break;
	case ECANCELED:
		snprintf(buf, len, "%s: the migration was aborted", name);
		break;
	case ENODATA:
		snprintf(buf, len,
			 "%s: the page file holds no committed image (the migration into it did not finish, or a new one started)",
			 name);
		break;
	case EBADMSG:
		snprintf(buf, len, "%s: the page file is corrupt (a crc32c does not match)",
			 name);
		break;
	case EPROTONOSUPPORT:
		snprintf(buf, len, "%s: the page file has a format version this module does not read",
			 name);
		break;
	case EBADF:
		if (cmd == VMPF_IOC_API)
			snprintf(buf, len,
				 "%s: sessions need /dev/vmpagefile opened for writing", name);
		else
			snprintf(buf, len, "%s: a file descriptor passed to the module is not open",
				 name);
		break;
	case EXDEV:
		snprintf(buf, len,
			 "%s: the VM uses SMM (memslots in address space 1), whose writes the module cannot track; turn SMM off (QEMU: -machine smm=off)",
			 name);
		break;
	case ENOPROTOOPT:
		snprintf(buf, len,
			 "%s: the VM uses KVM's dirty ring with KVM_DIRTY_LOG_INITIALLY_SET, which would miss writes; use one or the other",
			 name);
		break;
	case EMEDIUMTYPE:
		snprintf(buf, len,
			 "%s: the VM's memory is private to the guest (SEV-SNP or TDX): it cannot be copied",
			 name);
		break;
	case ESTALE:
		snprintf(buf, len,
			 "%s: the memslots changed under the migration", name);
		break;
	default:
		snprintf(buf, len, "%s failed: %s", name, strerror(err));
		break;
	}
	return buf;
}

void *vmpf_map_huge_aligned(size_t len, int prot, int fd, off_t off)
{
	const size_t huge = 2 << 20;
	unsigned char *area, *want, *p;
	int err;

	area = mmap(NULL, len + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (area == MAP_FAILED)
		return MAP_FAILED;
	want = area + (((size_t)off - (size_t)area) & (huge - 1));
	p = mmap(want, len, prot, MAP_SHARED | MAP_FIXED, fd, off);
	if (p == MAP_FAILED) {
		err = errno;
		munmap(area, len + huge);
		errno = err;
		return MAP_FAILED;
	}
	if (want > area)
		munmap(area, want - area);
	munmap(want + len, area + len + huge - (want + len));
	return p;
}
