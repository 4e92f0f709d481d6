/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Same-host handover of a running vmpf-vm guest to a new vmpf-vm process
 * (upgrading the VMM binary under a running guest): guest RAM is a shared
 * object (a memfd, or a vmpagefile restore session's guest memory) that
 * the new process maps; only the device state and the descriptor cross a
 * Unix socket (SCM_RIGHTS).  No guest page is copied or read.
 *
 * The old VMM listens on a socket (handover_listen()); a new one connects
 * (handover_take()).  The old one pauses, sends its state and RAM
 * descriptor, and waits for the new one's word: 'R' (resumed: the old one
 * exits without touching the guest again) or anything else, or the
 * connection lost (the old one resumes: nothing is lost).
 */
#ifndef _VMPF_HANDOVER_H
#define _VMPF_HANDOVER_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

struct vm;

/* What crosses the socket besides the state blob and the descriptor. */
struct handover_msg {
	char magic[8];		/* "VMPFHO1" */
	uint64_t ram_bytes;
	uint64_t mem_off[2];	/* each slot's offset in the RAM object */
	uint64_t state_len;
	uint64_t pause_ns;	/* CLOCK_MONOTONIC when the old VMM paused */
	uint64_t session;	/* 1: the descriptor is a vmpagefile restore session */
};

#define HANDOVER_DIR	"/run/vmpf-vm"

/* The socket of vmpf-vm process @pid: /run/vmpf-vm/PID.sock. */
static inline void handover_path(int pid, char *buf, size_t len)
{
	snprintf(buf, len, HANDOVER_DIR "/%d.sock", pid);
}

/* Listen on @path (created; removed by handover_close()).  fd or -errno. */
int handover_listen(const char *path);
void handover_close(int lfd, const char *path);

/*
 * Wait up to @seconds for a new VMM.  0: none came; 1: the VM was handed
 * over and this process must exit without touching it; -1: a handover
 * failed and the VM runs on here (@err says why).  @checksums: write the
 * RAM's checksums there at the pause, for the new VMM to verify.
 */
int handover_serve(int lfd, struct vm *vm, int mem_fd, int session,
		   double seconds, const char *checksums, char *err, size_t errlen);

/*
 * Connect to @path and receive the VM: @msg, the state blob (malloc()ed)
 * and the RAM descriptor.  The socket, or -errno with @err set.
 */
int handover_take(const char *path, struct handover_msg *msg, void **state,
		  int *mem_fd, char *err, size_t errlen);

/* Tell the old VMM: 'R' resumed here, 'F' failed (it resumes). */
int handover_reply(int sock, char what);

#endif
