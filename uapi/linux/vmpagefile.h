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

#include <linux/const.h>
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
 * Feature bits a caller may ask for in struct vmpf_api.features; the
 * handshake answers with every bit the loaded module has.  Asking for a bit
 * outside VMPF_FEATURES_ALL fails with EINVAL.
 *
 * VMPF_FEATURE_SOURCE: source-side sessions (VMPF_IOC_SOURCE_ATTACH and
 * the ioctls that drive pre-copy, switch-over and abort).
 * VMPF_FEATURE_RESTORE: restore sessions (VMPF_IOC_RESTORE_OPEN, mmap of
 * guest RAM served by in-kernel faults, prefetch).
 * VMPF_FEATURE_EXTERNAL: driving a VMM nobody adapted to the module (QEMU)
 * from another process: VMPF_IOC_VM_MEMSLOTS, attaching to a VM of another
 * process (CAP_SYS_PTRACE), regions no memslot maps (VMPF_SLOT_NONE), the
 * switch-over in two steps (VMPF_FINISH_PAGES, VMPF_FINISH_STATE) and a
 * device node per restore session (VMPF_IOC_RESTORE_NODE).
 * VMPF_FEATURE_LEASE: one owner of an image at a time.  A restore session
 * takes the image's ownership lease in the page file (struct
 * vmpf_pf_lease) and renews it while it reads from the file; a second
 * restore of the image, on any host, is refused while the lease is live,
 * and so is a new migration into the file (VMPF_RESTORE_NO_LEASE,
 * VMPF_RESTORE_FORCE, docs/pagefile-format.md).
 * VMPF_FEATURE_HUGE: restore sessions whose guest memory is backed by
 * 2 MiB transparent huge pages (VMPF_RESTORE_HUGE).  The handshake reports
 * it only where the kernel has them for tmpfs.
 */
#define VMPF_FEATURE_SOURCE	_BITULL(0)
#define VMPF_FEATURE_RESTORE	_BITULL(1)
#define VMPF_FEATURE_EXTERNAL	_BITULL(2)
#define VMPF_FEATURE_LEASE	_BITULL(3)
#define VMPF_FEATURE_HUGE	_BITULL(4)
#define VMPF_FEATURES_ALL	(VMPF_FEATURE_SOURCE | VMPF_FEATURE_RESTORE | \
				 VMPF_FEATURE_EXTERNAL | VMPF_FEATURE_LEASE | \
				 VMPF_FEATURE_HUGE)

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
 * descriptor (a failed handshake can be retried); EBADF features asked for
 * on a descriptor not opened for writing (a read-only one may only read
 * the module's counters).
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
 *		bytes (per-file state, session tables, bitmaps and buffers).
 * @sessions:	out: sessions alive.
 * @huge_fills: out: 2 MiB huge pages of restored guest memory filled, each
 *		with one read, since the module was loaded (VMPF_RESTORE_HUGE).
 * @table_reads: out: 4 KiB page-table blocks read again since the module
 *		was loaded: by restores to check a page (their cache's
 *		misses), by sources to change a block they had evicted.
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
	__u64 sessions;
	__u64 huge_fills;
	__u64 table_reads;
	__u64 reserved;
};

/*
 * Source side.  A VMM attaches its KVM VM and a page file to a file
 * descriptor of /dev/vmpagefile; that descriptor is then the session, and
 * closing it (or the VMM dying) ends the session at any phase: pre-copy is
 * stopped, the memslots get their original flags back, and a page file not
 * yet committed stays uncommitted.  Another process (vmpf-ctl) reaches a
 * session only through that descriptor, e.g. with pidfd_getfd(2).
 *
 * Phases: ATTACHED -> PRECOPY -> FINISHING -> COMMITTED, or ABORTED or
 * FAILED from any phase before COMMITTED.
 *
 * poll(2) on the session reports EPOLLIN when the VMM should switch over
 * (an operator called VMPF_IOC_REQUEST_FINISH, the estimated downtime is
 * under the target, or pre-copy converged or hit its round limit),
 * EPOLLPRI while the throttle (global or of a vCPU) changed since it was
 * last acknowledged with VMPF_STATUS_ACK_THROTTLE (the VMM should apply
 * the new one), and
 * EPOLLERR when the session failed or was aborted.  Rounds go on until
 * the switch-over, converged or at the round limit, keeping the dirty set
 * small; the status says how the estimate and the throttle evolve.
 */

/**
 * struct vmpf_region - one KVM memslot of guest RAM, as the VMM set it
 *
 * Or, with VMPF_FEATURE_EXTERNAL, @slot VMPF_SLOT_NONE and @gpa 0: memory
 * of the VMM's RAM that no memslot maps (QEMU's RAM block has such holes,
 * e.g. under the legacy VGA window).  The guest cannot write it, nothing
 * tracks it: it is copied whole in the first round and again in the final
 * round, with the guest paused.  The regions in the order given are the
 * page file's pages in order, and the destination's mapping: a VMM that
 * maps its RAM block from one file gives the regions in the block's order,
 * holes included.
 */
struct vmpf_region {
	__u64 slot;	/* KVM memslot id, address space 0; or VMPF_SLOT_NONE */
	__u64 gpa;	/* guest-physical start, page aligned */
	__u64 size;	/* bytes, page aligned */
	__u64 uaddr;	/* the VMM's address of the memory, page aligned */
};

#define VMPF_SLOT_NONE		(~0ULL)

#define VMPF_MAX_REGIONS	32

/**
 * struct vmpf_source_attach - VMPF_IOC_SOURCE_ATTACH
 * @vm_fd:	in: the KVM VM file descriptor; the VM must belong to the
 *		calling process's address space, or, with
 *		VMPF_FEATURE_EXTERNAL, the caller must have CAP_SYS_PTRACE:
 *		the session reads and tracks the memory of the VM's process,
 *		which only who may ptrace it (or take its descriptors with
 *		pidfd_getfd(2)) may do.  The kernel's ptrace check is not
 *		available to modules, so the capability that passes it for
 *		every process is required.
 * @target_fd:	in: the page file, a block device or a regular file opened
 *		O_RDWR | O_DIRECT, at least @required_bytes long.
 * @regions:	in: pointer to @nr_regions struct vmpf_region; each must
 *		match a KVM memslot exactly; no overlap.
 * @nr_regions:	in: 1 to VMPF_MAX_REGIONS.
 * @state_max:	in: room for the device state, bytes; 0 means 1 MiB.
 * @max_rounds:	in: pre-copy stops after this many rounds; 0 means 30.
 * @target_pages: in: pre-copy has converged when a round leaves at most
 *		this many dirty pages; 0 means 256.
 * @flags:	in: none defined, must be zero.
 * @downtime_ns: in: the switch-over the VMM accepts (pause to commit);
 *		0 means 300 ms.  After each round the session estimates the
 *		final round from the dirty set and the measured write rate;
 *		under this target it reports VMPF_STATUS_READY.
 * @reserved:	in: must be zero.
 * @required_bytes: out: size the page file needs; also written when the
 *		ioctl fails with ENOSPC because the target is too small.
 * @total_pages: out: guest pages in the regions.
 *
 * Nothing is written and KVM is not touched until VMPF_IOC_START.
 * Errors: EINVAL a bad field, a region that is unaligned, oversized,
 * overlapping or not exactly a memslot of the VM, @vm_fd not a KVM VM, or
 * a target that is not a block device or regular file opened
 * O_RDWR | O_DIRECT without O_APPEND; EBADF a descriptor is not open; EPERM the VM belongs
 * to another process; ENOSPC the target is too small; EBUSY this
 * descriptor already has a session, the VM already has a source session
 * (on any descriptor), a memslot already logs dirty pages for someone
 * else, or the target holds an image a restore session (on any host)
 * still owns: its lease was renewed while the attach watched it for up to
 * the lease's period (VMPF_FEATURE_LEASE); EINTR a fatal signal during
 * that wait; EOPNOTSUPP the handshake did not ask for
 * VMPF_FEATURE_SOURCE; EXDEV the VM has memslots in another address space
 * (x86: SMM's SMRAM; writes there would not be tracked); ENOPROTOOPT the
 * VM uses KVM's dirty ring with KVM_DIRTY_LOG_INITIALLY_SET (KVM then
 * never write-protects, so the ring would miss writes); EMEDIUMTYPE the
 * VM's memory is private to the guest (SEV-SNP, TDX: guest_memfd).
 *
 * What the VMM must not do during a migration, and what happens if it does
 * (never a commit with stale pages):
 *  - change a registered memslot (delete, move, resize, change its flags):
 *    the session fails with ESTALE, naming the slot; re-created exactly as
 *    it was, dirty logging included, the slot's region is copied again whole;
 *    changes of other memslots also make the registered regions count as
 *    wholly dirty once (the session cannot tell what a change did);
 *  - add memslots in another address space (SMM): fails with EXDEV;
 *  - harvest the dirty rings itself (read and reset entries): fails with
 *    EBUSY, naming the vCPU;
 *  - harvest a registered memslot's dirty bitmap itself: KVM_GET_DIRTY_LOG
 *    without manual protection, or KVM_CLEAR_DIRTY_LOG: fails with EBUSY
 *    (KVM leaves a copy of what either took in memory the session checks
 *    before each of its own harvests and clears), unless the VMM cleared
 *    exactly the mask the session cleared last; with manual protection a
 *    foreign KVM_GET_DIRTY_LOG takes nothing.  Do not clear the log of a
 *    registered memslot during a migration;
 *  - turn on KVM_DIRTY_LOG_INITIALLY_SET with the dirty ring: fails with
 *    ENOPROTOOPT.
 *
 * The other session ioctls fail with ENOENT on a descriptor without a
 * session, EINVAL in a phase where they mean nothing, and EPERM for
 * FINISH and MARK_DIRTY called from outside the VM's process.
 */
struct vmpf_source_attach {
	__u64 vm_fd;
	__u64 target_fd;
	__u64 regions;
	__u64 nr_regions;
	__u64 state_max;
	__u64 max_rounds;
	__u64 target_pages;
	__u64 flags;
	__u64 downtime_ns;
	__u64 reserved[3];
	__u64 required_bytes;
	__u64 total_pages;
};

enum vmpf_phase {
	VMPF_PHASE_NONE = 0,		/* no session on this descriptor */
	VMPF_PHASE_ATTACHED = 1,	/* attached, pre-copy not started */
	VMPF_PHASE_PRECOPY = 2,		/* copying rounds while the guest runs */
	VMPF_PHASE_FINISHING = 3,	/* final round, device state, commit */
	VMPF_PHASE_COMMITTED = 4,	/* the page file is a complete image */
	VMPF_PHASE_ABORTED = 5,		/* stopped on request; not committed */
	VMPF_PHASE_FAILED = 6,		/* stopped by an error; not committed */
	VMPF_PHASE_STATE_WAIT = 7,	/* final round done, waits for the state */
};

/* struct vmpf_status.flags */
#define VMPF_STATUS_CONVERGED		_BITULL(0)	/* dirty set under target */
#define VMPF_STATUS_ROUND_LIMIT		_BITULL(1)	/* max_rounds reached */
#define VMPF_STATUS_FINISH_REQUESTED	_BITULL(2)	/* switch over now */
#define VMPF_STATUS_READY		_BITULL(3)	/* estimated downtime under target */
#define VMPF_STATUS_NOT_CONVERGING	_BITULL(4)	/* dirty set stopped shrinking */

/* struct vmpf_status.in_flags */
#define VMPF_STATUS_ACK_THROTTLE	_BITULL(0)	/* the caller applies throttle_pct */
#define VMPF_STATUS_IN_FLAGS_ALL	VMPF_STATUS_ACK_THROTTLE

/** struct vmpf_round_stats - one pre-copy round (round 0 copies all pages) */
struct vmpf_round_stats {
	__u64 round;
	__u64 dirty_pages;	/* pages this round had to copy */
	__u64 written_pages;	/* of those, pages written with data */
	__u64 zero_pages;	/* of those, pages found zero (not written) */
	__u64 bytes;		/* bytes written to the page file */
	__u64 duration_ns;
	__u64 dirty_rate;	/* pages the guest dirtied per second meanwhile */
	__u64 write_rate;	/* bytes per second written */
};

/**
 * struct vmpf_status - VMPF_IOC_STATUS
 * @rounds:	in: pointer to @rounds_cap struct vmpf_round_stats, or 0.
 * @rounds_cap:	in: entries at @rounds; the latest rounds are copied.
 * @in_flags:	in: VMPF_STATUS_ACK_THROTTLE: the caller (the VMM) applies
 *		the @throttle_pct returned; EPOLLPRI stays quiet until the
 *		throttle changes again.  Watchers (vmpf-ctl) leave it clear.
 * @reserved_in: in: must be zero.
 * @phase:	out: enum vmpf_phase.
 * @flags:	out: VMPF_STATUS_*.
 * @round:	out: the round in progress or last done.
 * @nr_rounds:	out: rounds done; min(@nr_rounds, @rounds_cap, 64) copied.
 * @total_pages: out: guest pages.
 * @pages_written: out: data pages written, all rounds.
 * @zero_pages:	out: pages found all zero (not written), all rounds.
 * @bytes_written: out: bytes written to the page file.
 * @dirty_pages: out: pages dirty at the last harvest: the work left.
 * @elapsed_ns:	out: time since VMPF_IOC_START.
 * @error:	out: positive errno of a failure, else 0.
 * @mem_bytes:	out: memory the session holds (bitmaps, tables, buffers).
 * @io_retries:	out: page-file requests repeated after a transient error
 *		(the module's io_retries parameter says how many times each).
 * @est_downtime_ns: out: the switch-over estimated after the last round:
 *		its dirty pages at the write rate measured so far, plus the
 *		commit's three small writes and two flushes (each as long as
 *		the header's took); 0 before a round has written.
 * @throttle_pct: out: share of each vCPU's time the VMM should take away
 *		(0 to 99) because the guest dirties memory faster than the
 *		page file takes it.  Raised in steps while pre-copy does not
 *		converge, lowered once the estimate is well under the target.
 *		A VMM applies it by sleeping its vCPU threads that share of each
 *		time slice (vmpf-vm --throttle), or an operator through the
 *		VMM's cgroup (vmpf-ctl throttle); the module does not enforce it.
 *		Changes wake EPOLLPRI.  VMPF_IOC_SET_THROTTLE sets where it
 *		starts and how high it may go.
 * @throttle_peak: out: the highest throttle asked so far.
 * @message:	out: NUL-terminated sentence about the failure, if any.
 */
struct vmpf_status {
	__u64 rounds;
	__u64 rounds_cap;
	__u64 in_flags;
	__u64 reserved_in[1];
	__u64 phase;
	__u64 flags;
	__u64 round;
	__u64 nr_rounds;
	__u64 total_pages;
	__u64 pages_written;
	__u64 zero_pages;
	__u64 bytes_written;
	__u64 dirty_pages;
	__u64 elapsed_ns;
	__u64 error;
	__u64 mem_bytes;
	__u64 io_retries;
	__u64 est_downtime_ns;
	__u64 throttle_pct;
	__u64 throttle_peak;
	__u8 message[128];
};

/**
 * struct vmpf_throttle - VMPF_IOC_SET_THROTTLE
 * @pct:	in: the throttle to ask of the vCPUs from now on, 0 to 99,
 *		e.g. the one a previous migration of the same VM needed (its
 *		page file's history, vmpf-ctl start --history).  The session
 *		goes on adjusting it after each round.
 * @max_pct:	in: the session never asks more than this (1 to 99); 0 keeps
 *		the maximum in force (99 unless set before).
 * @reserved:	in: must be zero.
 *
 * Allowed before VMPF_IOC_START and during pre-copy.  Errors: EINVAL a
 * value above 99, @pct above the maximum, reserved non-zero, or another
 * phase; ENOENT no source session.  VMPF_IOC_VCPU_THROTTLE reports the
 * maximum in force.
 */
struct vmpf_throttle {
	__u64 pct;
	__u64 max_pct;
	__u64 reserved[2];
};

/**
 * struct vmpf_round_policy - what the session decided after a round
 * @round:	the round, as in struct vmpf_round_stats.
 * @dirty_rate:	pages per second the guest dirtied during the round.
 * @write_rate:	bytes per second the estimate used (smoothed over rounds).
 * @est_downtime_ns: the switch-over estimated after the round.
 * @throttle_pct: the throttle asked from then on.
 * @flags:	VMPF_STATUS_READY and VMPF_STATUS_NOT_CONVERGING as decided
 *		after the round.
 * @reserved:	zero.
 *
 * All zero but @round for the final round (decided nothing).
 */
struct vmpf_round_policy {
	__u64 round;
	__u64 dirty_rate;
	__u64 write_rate;
	__u64 est_downtime_ns;
	__u64 throttle_pct;
	__u64 flags;
	__u64 reserved[2];
};

/**
 * struct vmpf_round_policies - VMPF_IOC_ROUND_POLICY
 * @rounds:	in: pointer to @rounds_cap struct vmpf_round_policy.
 * @rounds_cap:	in: entries there; the latest rounds are copied, as many
 *		as VMPF_IOC_STATUS copies statistics (at most 64).
 * @reserved_in: in: must be zero.
 * @nr_rounds:	out: rounds done; min(@nr_rounds, @rounds_cap, 64) copied.
 * @reserved:	out: zero.
 *
 * Errors: EINVAL reserved_in, or @rounds_cap without @rounds; ENOENT no
 * source session; EFAULT a bad pointer.
 */
struct vmpf_round_policies {
	__u64 rounds;
	__u64 rounds_cap;
	__u64 reserved_in[2];
	__u64 nr_rounds;
	__u64 reserved[3];
};

/** struct vmpf_vcpu_stat - one vCPU, in struct vmpf_vcpu_throttle */
struct vmpf_vcpu_stat {
	__u64 vcpu;		/* KVM's vCPU index */
	__u64 throttle_pct;	/* what this vCPU should be slowed down by */
	__u64 dirty_pages;	/* pages it dirtied during the last round */
	__u64 dirty_total;	/* pages it dirtied during the whole pre-copy */
	__u64 ring_next;	/* the next ring entry the session would read */
	__u64 reserved;
};

/* struct vmpf_vcpu_throttle.in_flags: as struct vmpf_status's */

/**
 * struct vmpf_vcpu_throttle - VMPF_IOC_VCPU_THROTTLE: the throttle per vCPU
 * @vcpus:	in: pointer to @vcpus_cap struct vmpf_vcpu_stat, or 0.
 * @vcpus_cap:	in: entries there.
 * @in_flags:	in: VMPF_STATUS_ACK_THROTTLE, as for VMPF_IOC_STATUS.  A VMM
 *		that applies per-vCPU throttles acknowledges here: an
 *		acknowledgment through VMPF_IOC_STATUS also covers per-vCPU
 *		changes that STATUS does not show.
 * @reserved_in: in: must be zero.
 * @per_vcpu:	out: 1 if the VM uses KVM's dirty ring, so that the session
 *		knows which vCPU dirtied which page: each vCPU then has its
 *		own throttle, and a vCPU that dirties (almost) nothing is not
 *		slowed down; 0 if every vCPU should get @throttle_pct.
 * @throttle_pct: out: the session's throttle, as in struct vmpf_status.
 * @nr_vcpus:	out: vCPUs known (min(@nr_vcpus, @vcpus_cap) copied); 0
 *		unless @per_vcpu.
 * @throttle_max: out: the most the session will ask (VMPF_IOC_SET_THROTTLE).
 *
 * With the dirty ring (KVM_CAP_DIRTY_LOG_RING, enabled by the VMM before
 * it creates its vCPUs), the session harvests the rings itself: the VMM
 * must not harvest them or call KVM_RESET_DIRTY_RINGS during a migration,
 * and a vCPU exiting with KVM_EXIT_DIRTY_RING_FULL should wait a moment
 * and run again (the session makes room at the end of each round).  The
 * session consumes entries the VMM never saw: a VMM that harvests the
 * rings itself after a session (e.g. after an abort) resumes each ring at
 * @ring_next of its vCPU (read once the session has ended), not at its
 * own old index.  Entries of memslots outside the session (a slot the VMM
 * logs itself, or address space 1, SMM's) are consumed and dropped; as
 * with the dirty bitmap, guest writes made in SMM are not tracked.
 * Once the session is over every throttle reads 0; a VMM drops its
 * throttle on EPOLLERR as well.
 * Errors: EINVAL in_flags or reserved_in; ENOENT no source session;
 * EFAULT a bad pointer.
 */
struct vmpf_vcpu_throttle {
	__u64 vcpus;
	__u64 vcpus_cap;
	__u64 in_flags;
	__u64 reserved_in;
	__u64 per_vcpu;
	__u64 throttle_pct;
	__u64 nr_vcpus;
	__u64 throttle_max;
};

/*
 * vCPUs with a throttle of their own: a migration of a VM with more vCPUs
 * and the dirty ring fails with E2BIG.
 */
#define VMPF_MAX_VCPUS		256

/**
 * struct vmpf_finish - VMPF_IOC_FINISH, the switch-over
 * @state:	in: pointer to the VMM's device-state blob.
 * @state_len:	in: its length, at most the attach's state_max.
 * @flags:	in: 0, VMPF_FINISH_PAGES or VMPF_FINISH_STATE.
 * @reserved:	in: must be zero.
 * @final_pages: out: pages copied in the final round.
 * @switchover_ns: out: from the (first) call until the commit record was
 *		durable, or with VMPF_FINISH_PAGES until the pages were.
 * @bytes_written: out: bytes written to the page file in all.
 * @rounds:	out: rounds including the final one.
 *
 * The caller (the VMM in the VM's process, or the process that attached
 * with VMPF_FEATURE_EXTERNAL) must have paused every vCPU and stopped
 * writing guest memory.  Returns once the page file is committed, or with
 * the error that stopped it (the session is then FAILED and the VM
 * untouched).  EBUSY: a vCPU is in KVM_RUN (FINISH refused, pre-copy goes
 * on).  ESTALE: a vCPU ran between FINISH and the commit record (KVM
 * counted its VM exits): nothing is committed.
 *
 * In two steps, for a VMM whose own device-state save touches the
 * memslots (QEMU's migration turns dirty logging on for all of them and
 * harvests it): VMPF_FINISH_PAGES (no state) does the final round, writes
 * the table, gives the memslots their flags back and returns, the session
 * in VMPF_PHASE_STATE_WAIT, no longer looking at KVM; then
 * VMPF_FINISH_STATE with the state commits.  VMPF_IOC_ABORT in between
 * leaves the file uncommitted.  Errors: EINVAL flags in the wrong phase.
 */
struct vmpf_finish {
	__u64 state;
	__u64 state_len;
	__u64 flags;
	__u64 reserved[3];
	__u64 final_pages;
	__u64 switchover_ns;
	__u64 bytes_written;
	__u64 rounds;
};

#define VMPF_FINISH_PAGES	_BITULL(0)	/* final round only, state later */
#define VMPF_FINISH_STATE	_BITULL(1)	/* the state, after VMPF_FINISH_PAGES */
#define VMPF_FINISH_FLAGS_ALL	(VMPF_FINISH_PAGES | VMPF_FINISH_STATE)

/**
 * struct vmpf_mark_dirty - VMPF_IOC_MARK_DIRTY
 * @gpa:	in: guest-physical start of memory the VMM wrote itself.
 * @len:	in: bytes; the range must lie in the regions.
 * @reserved:	in: must be zero.
 */
struct vmpf_mark_dirty {
	__u64 gpa;
	__u64 len;
	__u64 reserved[2];
};

/*
 * Restore side.  A VMM opens a committed page file through a descriptor of
 * /dev/vmpagefile (VMPF_IOC_RESTORE_OPEN), reads the region table and the
 * device state (VMPF_IOC_RESTORE_INFO), and mmap()s each region from that
 * descriptor (MAP_SHARED, offset = the region's offset) to use as a KVM
 * memslot.  A first access to a page faults into the module, which reads
 * that page from the page file in the kernel, checks its crc32c and maps
 * it; zero pages need no I/O.  A page that cannot be read or fails its
 * check is never mapped: the access gets SIGBUS.  A background prefetch
 * fills the pages not yet touched, hottest first, yielding to faults.
 * When every page is resident, poll() reports EPOLLIN and the module lets
 * go of the page file; EPOLLERR means a page was refused (see the status).
 * Pages are charged to the VMM's memory cgroup.  Closing the descriptor
 * and unmapping everything ends the session.
 */

/* struct vmpf_restore_open.flags */
#define VMPF_RESTORE_NO_PREFETCH	_BITULL(0)	/* faults only */
#define VMPF_RESTORE_SEQUENTIAL		_BITULL(1)	/* prefetch in page order, not hot-first */
/*
 * Take no ownership lease: the caller guarantees by other means that no
 * other host runs this image (or only inspects it).  A live lease of
 * another session still refuses the open.
 */
#define VMPF_RESTORE_NO_LEASE		_BITULL(2)
/*
 * Take the lease without waiting for the owner's to expire, and restore
 * an image whose source revoked it: the operator says that the VM
 * recorded as its owner is gone.
 */
#define VMPF_RESTORE_FORCE		_BITULL(3)
/*
 * Back guest memory with 2 MiB transparent huge pages where the kernel can
 * get them (VMPF_FEATURE_HUGE): the first touch of any page of a 2 MiB
 * block fills the whole block with one read, and a mapping aligned to
 * 2 MiB maps it with one PMD (KVM then with one 2 MiB NPT/EPT entry).
 * Where no huge page is free the block is filled in 4 KiB pages, still as
 * a whole.  A page refused (crc32c, read error) in a block that was to be
 * a huge page costs the block: every page of it gets SIGBUS (in a block of
 * 4 KiB pages only the page itself).  EOPNOTSUPP where the kernel has no
 * huge pages for tmpfs.
 */
#define VMPF_RESTORE_HUGE		_BITULL(4)
#define VMPF_RESTORE_FLAGS_ALL		(VMPF_RESTORE_NO_PREFETCH | VMPF_RESTORE_SEQUENTIAL | \
					 VMPF_RESTORE_NO_LEASE | VMPF_RESTORE_FORCE | \
					 VMPF_RESTORE_HUGE)

/**
 * struct vmpf_restore_open - VMPF_IOC_RESTORE_OPEN
 * @target_fd:	in: the page file, opened O_RDWR | O_DIRECT (O_RDONLY with
 *		VMPF_RESTORE_NO_LEASE).
 * @flags:	in: VMPF_RESTORE_*.
 * @prefetch_rate: in: prefetch at most this many pages per second; 0 means
 *		as fast as the storage allows.
 * @reserved:	in: must be zero.
 * @total_pages: out: guest pages in the image.
 * @nr_regions:	out: regions to map.
 * @state_len:	out: bytes of device state.
 * @generation:	out: the image's generation (as vmpf-ctl info shows it).
 *
 * Errors: EINVAL bad field or target (a region table that could not be
 * memslots included); EBADF @target_fd is not open; ENODATA the file holds
 * no committed image (never committed, or a migration into it was started
 * since); EBADMSG a crc mismatch in superblock, commit record, page table
 * or device state; EPROTONOSUPPORT another format version; EBUSY the
 * descriptor already has a session, or another session (on this host or
 * another) holds the image's ownership lease and renewed it while this
 * open watched it; EALREADY the image's source took the VM back after the
 * commit (VMPF_LEASE_REVOKED): VMPF_RESTORE_FORCE restores it all the same;
 * EROFS @target_fd is open read-only, or its device refuses writes, and
 * VMPF_RESTORE_NO_LEASE was not given; EINTR a fatal signal while waiting for an owner's lease;
 * EOPNOTSUPP the handshake did not ask for VMPF_FEATURE_RESTORE; ENOMEM
 * the page table does not fit (it is charged to the caller's memory
 * cgroup); EIO the page file could not be read.  The open watches another
 * owner's lease for up to its period (10 s by default, module parameter
 * lease_ms) before it takes an expired one over.  mmap() of a descriptor
 * without a restore session fails with ENODEV.
 */
struct vmpf_restore_open {
	__u64 target_fd;
	__u64 flags;
	__u64 prefetch_rate;
	__u64 reserved[3];
	__u64 total_pages;
	__u64 nr_regions;
	__u64 state_len;
	__u64 generation;
};

/** struct vmpf_restore_region - one region of guest RAM to map */
struct vmpf_restore_region {
	__u64 slot;	/* the KVM memslot id it had on the source, or VMPF_SLOT_NONE */
	__u64 gpa;	/* 0 with VMPF_SLOT_NONE */
	__u64 size;	/* bytes */
	__u64 offset;	/* mmap() offset of this region on the descriptor */
	__u64 flags;	/* the memslot's KVM flags on the source */
	__u64 reserved;
};

/**
 * struct vmpf_restore_info - VMPF_IOC_RESTORE_INFO
 * @regions:	in: pointer to @regions_cap struct vmpf_restore_region, or 0.
 * @regions_cap: in: entries there.
 * @state:	in: buffer for the device state, or 0.
 * @state_cap:	in: its size; EINVAL if smaller than the state.
 * @reserved:	in: must be zero.
 * @nr_regions:	out: regions (min(nr_regions, regions_cap) copied).
 * @state_len:	out: bytes of device state.
 */
struct vmpf_restore_info {
	__u64 regions;
	__u64 regions_cap;
	__u64 state;
	__u64 state_cap;
	__u64 reserved[2];
	__u64 nr_regions;
	__u64 state_len;
};

/* struct vmpf_prefetch.op */
#define VMPF_PREFETCH_RUN	1	/* start or resume */
#define VMPF_PREFETCH_PAUSE	2

/**
 * struct vmpf_prefetch - VMPF_IOC_PREFETCH: steer the background prefetch
 * @op:		in: VMPF_PREFETCH_RUN or VMPF_PREFETCH_PAUSE.
 * @rate:	in: pages per second, 0 = unlimited.
 * @reserved:	in: must be zero.
 *
 * Errors: EINVAL unknown @op or reserved non-zero; ENOENT no restore
 * session; ENOMEM the prefetch thread could not be started.
 */
struct vmpf_prefetch {
	__u64 op;
	__u64 rate;
	__u64 reserved[2];
};

enum vmpf_restore_phase {
	VMPF_RESTORE_NONE = 0,		/* no restore session */
	VMPF_RESTORE_RUNNING = 1,	/* pages arrive on demand and by prefetch */
	VMPF_RESTORE_COMPLETE = 2,	/* every page resident; page file released */
};

#define VMPF_FAULT_HIST	16

/**
 * struct vmpf_restore_status - VMPF_IOC_RESTORE_STATUS
 * @reserved_in: in: must be zero.
 * @phase:	out: enum vmpf_restore_phase.
 * @prefetching: out: 1 while the prefetch runs, 0 when paused, off or done.
 * @total_pages: out.
 * @resident:	out: pages restored: read, zero, or discarded.  A restored
 *		page belongs to the guest's memory, which the kernel may
 *		swap or move like any shared memory.
 * @demand_pages: out: pages brought in by a fault.
 * @prefetched:	out: pages brought in by the prefetch.
 * @zero_pages:	out: pages that needed no I/O.
 * @io_errors:	out: reads that failed.
 * @crc_errors:	out: pages whose crc32c did not match.
 * @bad_pages:	out: pages refused for good (SIGBUS).
 * @elapsed_ns:	out: since VMPF_IOC_RESTORE_OPEN.
 * @complete_ns: out: from open until every page was resident, or 0.
 * @mem_bytes:	out: memory the session holds besides guest pages.
 * @fault_hist:	out: demand faults that waited for I/O, by latency:
 *		bucket i counts latencies in [2^i, 2^(i+1)) microseconds, the
 *		last bucket everything longer.
 * @first_bad:	out: index of the first bad page, or ~0.
 * @io_retries:	out: reads repeated after a transient error.
 * @discarded:	out: pages the VMM returned (MADV_REMOVE, a punched hole)
 *		before they were read: never read from the page file, zero.
 *		Counted in @resident.
 * @prefetch_held: out: 1 while the prefetch waits for room in the VMM's
 *		memory cgroup (usage near memory.max or memory.high); faults
 *		go on, and may reclaim (swap) as any guest's do.
 * @lease:	out: the session's ownership lease, VMPF_LEASE_*.
 * @message:	out: a sentence about the first bad page, if any.
 */
struct vmpf_restore_status {
	__u64 reserved_in[2];
	__u64 phase;
	__u64 prefetching;
	__u64 total_pages;
	__u64 resident;
	__u64 demand_pages;
	__u64 prefetched;
	__u64 zero_pages;
	__u64 io_errors;
	__u64 crc_errors;
	__u64 bad_pages;
	__u64 elapsed_ns;
	__u64 complete_ns;
	__u64 mem_bytes;
	__u64 fault_hist[VMPF_FAULT_HIST];
	__u64 first_bad;
	__u64 io_retries;
	__u64 discarded;
	__u64 prefetch_held;
	__u64 lease;		/* VMPF_LEASE_* */
	__u8 message[128];
};

/**
 * struct vmpf_memslot - one KVM memslot, as VMPF_IOC_VM_MEMSLOTS reports it
 * @slot:	KVM's id: address space << 16 | slot, as in
 *		KVM_SET_USER_MEMORY_REGION.
 * @gpa:	guest-physical start.
 * @size:	bytes.
 * @uaddr:	the VMM's address of the memory.
 * @flags:	KVM_MEM_* as the VMM set them (KVM_MEM_LOG_DIRTY_PAGES: someone
 *		logs its dirty pages now).
 */
struct vmpf_memslot {
	__u64 slot;
	__u64 gpa;
	__u64 size;
	__u64 uaddr;
	__u64 flags;
	__u64 reserved;
};

/**
 * struct vmpf_vm_memslots - VMPF_IOC_VM_MEMSLOTS: a VM's memslots
 * @vm_fd:	in: the KVM VM file descriptor (its own VM, or any with
 *		CAP_SYS_PTRACE as for VMPF_IOC_SOURCE_ATTACH).
 * @slots:	in: pointer to @slots_cap struct vmpf_memslot.
 * @slots_cap:	in: room there; at most VMPF_MAX_MEMSLOTS are reported.
 * @flags:	in: must be zero.
 * @reserved:	in: must be zero.
 * @nr_slots:	out: memslots the VM has, in all address spaces; those
 *		that fit in @slots_cap were written, in no particular order.
 * @generation:	out: KVM's memslot generation of address space 0; it
 *		moves with every change.
 *
 * Needs VMPF_FEATURE_EXTERNAL.  Errors: EBADF, EINVAL not a KVM VM or bad
 * fields; EPERM another process's VM without CAP_SYS_PTRACE.
 */
struct vmpf_vm_memslots {
	__u64 vm_fd;
	__u64 slots;
	__u64 slots_cap;
	__u64 flags;
	__u64 reserved[2];
	__u64 nr_slots;
	__u64 generation;
};

#define VMPF_MAX_MEMSLOTS	4096

/**
 * struct vmpf_restore_node - VMPF_IOC_RESTORE_NODE
 * @flags:	in: must be zero.
 * @reserved:	in: must be zero.
 * @dev:	out: the node's device number, major << 32 | minor.
 * @name:	out: its name under /dev (devtmpfs creates it), NUL-terminated.
 *
 * Gives the restore session a character device node of its own, for a
 * VMM that maps guest RAM from a path it opens itself (QEMU's
 * memory-backend-file,mem-path=,share=on).  Opening the node gives a
 * descriptor whose mmap() is that of the session's (offset 0 is the first
 * region's first page); the mapping keeps the session alive as one of the
 * session's descriptor would.  The node is mode 0600, root's (chown it
 * for a VMM running as another user) and disappears with the session.
 * Needs VMPF_FEATURE_RESTORE and VMPF_FEATURE_EXTERNAL.  Errors: ENOENT no
 * restore session; EEXIST the session has a node; EINVAL bad fields.
 */
struct vmpf_restore_node {
	__u64 flags;
	__u64 reserved[3];
	__u64 dev;
	__u8 name[64];
};

/**
 * struct vmpf_restore_memfd - VMPF_IOC_RESTORE_MEMFD
 * @flags:	in: must be zero.
 * @reserved:	in: must be zero.
 * @fd:		out: a new descriptor (O_RDWR, O_CLOEXEC) of the session's
 *		guest memory.
 *
 * Guest RAM of a restore session is a shared-memory object (a tmpfs file
 * the module keeps): offset 0 is the first region's first page, its size
 * the page file's pages.  This gives a descriptor of it, for a VMM that
 * maps guest RAM from a file and returns memory with fallocate(2) (QEMU's
 * memory-backend-file,mem-path=/proc/self/fd/N,share=on: its balloon and
 * discards punch holes through that descriptor; a device node's cannot).
 * While the restore runs: mmap() goes through the restore's fault
 * handler; a punched hole counts its pages as restored (they read as zero,
 * never from the page file) and must cover whole pages of those not yet
 * restored (EINVAL); read(), write(), splice and a size change fail with
 * EBUSY.  Once the restore is complete the object is ordinary tmpfs.  The
 * descriptor, and each reopening of it (/proc/self/fd/N), keeps guest
 * memory alive after the session ends.  Needs VMPF_FEATURE_RESTORE.
 * Errors: ENOENT no restore session; EINVAL bad fields; EMFILE.
 */
struct vmpf_restore_memfd {
	__u64 flags;
	__u64 reserved[3];
	__u64 fd;
};

#define VMPF_IOC_API		_IOWR(VMPF_IOCTL_MAGIC, 0x00, struct vmpf_api)
#define VMPF_IOC_DEV_INFO	_IOR(VMPF_IOCTL_MAGIC, 0x01, struct vmpf_dev_info)
#define VMPF_IOC_SOURCE_ATTACH	_IOWR(VMPF_IOCTL_MAGIC, 0x02, struct vmpf_source_attach)
/* Start pre-copy; the argument must be 0. */
#define VMPF_IOC_START		_IO(VMPF_IOCTL_MAGIC, 0x03)
#define VMPF_IOC_STATUS		_IOWR(VMPF_IOCTL_MAGIC, 0x04, struct vmpf_status)
/* Ask the VMM to switch over (wakes its poll); the argument must be 0. */
#define VMPF_IOC_REQUEST_FINISH	_IO(VMPF_IOCTL_MAGIC, 0x05)
#define VMPF_IOC_FINISH		_IOWR(VMPF_IOCTL_MAGIC, 0x06, struct vmpf_finish)
/* Stop and leave the page file uncommitted; the argument must be 0. */
#define VMPF_IOC_ABORT		_IO(VMPF_IOCTL_MAGIC, 0x07)
#define VMPF_IOC_MARK_DIRTY	_IOW(VMPF_IOCTL_MAGIC, 0x08, struct vmpf_mark_dirty)
#define VMPF_IOC_RESTORE_OPEN	_IOWR(VMPF_IOCTL_MAGIC, 0x09, struct vmpf_restore_open)
#define VMPF_IOC_RESTORE_INFO	_IOWR(VMPF_IOCTL_MAGIC, 0x0a, struct vmpf_restore_info)
#define VMPF_IOC_PREFETCH	_IOW(VMPF_IOCTL_MAGIC, 0x0b, struct vmpf_prefetch)
#define VMPF_IOC_RESTORE_STATUS	_IOWR(VMPF_IOCTL_MAGIC, 0x0c, struct vmpf_restore_status)
#define VMPF_IOC_SET_THROTTLE	_IOW(VMPF_IOCTL_MAGIC, 0x0d, struct vmpf_throttle)
#define VMPF_IOC_VCPU_THROTTLE	_IOWR(VMPF_IOCTL_MAGIC, 0x0e, struct vmpf_vcpu_throttle)
#define VMPF_IOC_ROUND_POLICY	_IOWR(VMPF_IOCTL_MAGIC, 0x0f, struct vmpf_round_policies)
#define VMPF_IOC_VM_MEMSLOTS	_IOWR(VMPF_IOCTL_MAGIC, 0x10, struct vmpf_vm_memslots)
#define VMPF_IOC_RESTORE_NODE	_IOWR(VMPF_IOCTL_MAGIC, 0x11, struct vmpf_restore_node)
#define VMPF_IOC_RESTORE_MEMFD	_IOWR(VMPF_IOCTL_MAGIC, 0x12, struct vmpf_restore_memfd)

/*
 * Page file format, version 2 (version 1 is version 2 without regions
 * that no memslot maps: a writer uses 1 when it has none, so that older
 * readers still read it).  All fields little-endian; every structure
 * starts on a VMPF_PF_BLOCK boundary.  docs/pagefile-format.md explains it.
 *
 *   block 0            struct vmpf_pf_super
 *   block 1            struct vmpf_pf_commit (all zero while uncommitted)
 *   table_off          struct vmpf_pf_page[total_pages]
 *   state_off          the device-state blob, state_max bytes of room
 *   data_off           page i at data_off + i * page_size
 *
 * A reader accepts the file only if the superblock's and the commit
 * record's crc32c are right, both carry the same generation, and the
 * table's and device state's crc32c match the commit record.
 */
#define VMPF_PF_MAGIC		"VMPFPAGE"
#define VMPF_PF_COMMIT_MAGIC	"VMPFCMIT"
#define VMPF_PF_VERSION		2
#define VMPF_PF_VERSION_MIN	1
#define VMPF_PF_BLOCK		4096
#define VMPF_PF_PAGE_SIZE	4096

struct vmpf_pf_region {
	__le64 gpa;
	__le64 pages;
	__le64 first_page;	/* its first page's index in table and data */
	__le32 slot;		/* or VMPF_PF_SLOT_NONE (version 2) */
	__le32 flags;		/* the memslot's KVM flags */
};

/* A region no memslot mapped on the source (struct vmpf_region's VMPF_SLOT_NONE). */
#define VMPF_PF_SLOT_NONE	0xffffffffU

struct vmpf_pf_super {
	__u8 magic[8];
	__le32 version;
	__le32 page_size;
	__u8 uuid[16];		/* new for every migration */
	__le64 generation;	/* random, new for every migration */
	__le64 flags;		/* none defined */
	__le64 total_pages;
	__le64 table_off;
	__le64 state_off;
	__le64 state_max;
	__le64 data_off;
	__le64 file_size;	/* bytes the page file needs */
	__le32 nr_regions;
	__le32 crc;		/* crc32c of this struct with crc = 0 */
	struct vmpf_pf_region regions[VMPF_MAX_REGIONS];
};

struct vmpf_pf_commit {
	__u8 magic[8];
	__le64 generation;	/* equals the superblock's */
	__le64 state_len;
	__le32 state_crc;	/* crc32c of the device state */
	__le32 table_crc;	/* crc32c of the whole page table */
	__le64 rounds;
	__le64 data_pages;
	__le64 zero_pages;
	__le64 commit_time_ns;	/* CLOCK_REALTIME */
	/*
	 * The migration's history, for the next migration of the same VM
	 * (VMPF_PF_COMMIT_HISTORY; zero in files written by module 0.1).
	 */
	__le64 flags;		/* VMPF_PF_COMMIT_* */
	__le64 precopy_ns;	/* from start to the switch-over */
	__le64 final_pages;	/* pages copied with the guest paused */
	__le64 dirty_rate;	/* pages/s dirtied in the last pre-copy round */
	__le64 write_rate;	/* bytes/s the page file took, smoothed */
	__le32 throttle_pct;	/* throttle that made pre-copy ready, else the last */
	__le32 throttle_peak;	/* the highest throttle asked */
	__le64 reserved[3];
	__le32 reserved32;
	__le32 crc;		/* crc32c of this struct with crc = 0 */
};

/*
 * The ownership lease of the image (VMPF_FEATURE_LEASE): 512 bytes at
 * VMPF_PF_LEASE_OFF, in block 1 after the commit record, whose sector it
 * does not share.  All zero, or of another generation, or with a wrong
 * crc: nobody owns the image.  A restore session writes it READING with
 * a new @owner, RESTORED once every page was read (the VM runs on from
 * its host's memory), and renews it (@beat) every @lease_ms / 4 for as
 * long as the session lives, that is as long as the VM runs; FREE when
 * the session ends.  Another restore takes over a READING or RESTORED
 * lease only after watching it for @lease_ms without a renewal (its owner
 * is gone); a new migration into the file waits for the same, but only
 * for a READING lease: a RESTORED VM no longer reads the file.  REVOKED:
 * the source took the VM back after the commit; restores refuse it.
 */
#define VMPF_PF_LEASE_MAGIC	"VMPFOWNR"
#define VMPF_PF_LEASE_OFF	(VMPF_PF_BLOCK + 2048)

/* struct vmpf_pf_lease.state, and struct vmpf_restore_status.lease */
#define VMPF_LEASE_FREE		0	/* nobody owns the image (status: no lease) */
#define VMPF_LEASE_READING	1	/* a restore reads pages from the file */
#define VMPF_LEASE_RESTORED	2	/* every page read: the VM runs on @host */
#define VMPF_LEASE_REVOKED	3	/* the source runs the VM again */
/* status only: a new migration went into the file, or another took over */
#define VMPF_LEASE_LOST		4
/* status only: not renewed for its period: another host may have taken over */
#define VMPF_LEASE_EXPIRED	5

struct vmpf_pf_lease {
	__u8 magic[8];
	__le64 generation;	/* the image's: the superblock's */
	__le64 owner;		/* random, new for every owner */
	__le64 beat;		/* bumped by every renewal */
	__le64 takeovers;	/* owners the image had, this one included */
	__le64 acquired_ns;	/* CLOCK_REALTIME when taken, for people */
	__le32 state;		/* VMPF_LEASE_* */
	__le32 lease_ms;	/* the owner renews every lease_ms / 4 */
	__le32 pid;		/* the owner's process, for people */
	__le32 reserved32;
	__u8 host[64];		/* the owner's host name, NUL-padded */
	__le64 reserved[5];
	__le32 reserved2;
	__le32 crc;		/* crc32c of this struct with crc = 0 */
};

/* struct vmpf_pf_commit.flags */
#define VMPF_PF_COMMIT_HISTORY	1	/* the history fields are filled */

/* struct vmpf_pf_page.state */
#define VMPF_PAGE_NONE	0	/* never written: not part of any image */
#define VMPF_PAGE_ZERO	1	/* all zero: nothing stored */
#define VMPF_PAGE_DATA	2	/* stored at its data slot, crc valid */

struct vmpf_pf_page {
	__le32 crc;		/* crc32c of the page, VMPF_PAGE_DATA only */
	__le16 round;		/* last round that copied it (saturates) */
	__u8 state;
	__u8 reserved;
};

/*
 * crc32c here is the usual Castagnoli CRC: initial value ~0, result
 * inverted (the kernel's crc32c(~0, p, n) ^ ~0).
 */

#endif /* _UAPI_LINUX_VMPAGEFILE_H */
