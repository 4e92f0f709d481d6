/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The contract between vmpf-vm (the reference VMM) and its built-in guest
 * code: the guest-physical memory layout, the I/O ports the guest uses to
 * report progress, and the parameter block the VMM fills in.
 *
 * Guest-physical layout (slot 0 starts at 0, slot 1 at VM_SLOT1_GPA, the
 * gap between them stands for the PCI hole real VMMs leave below 4 GiB):
 *   0x00000  unused
 *   0x02000  guest code (VM_CODE_GPA), at most 48 KiB
 *   0x10000  page tables: PML4, PDPT, then 8 page directories of 2 MiB
 *            pages identity-mapping 0..8 GiB
 *   0x20000  stacks, one 4 KiB page per vCPU
 *   0x30000  struct vm_params, one per vCPU
 *   0x40000  first page the workload may write (VM_RESERVED_PAGES)
 */
#ifndef VMPF_VM_ABI_H
#define VMPF_VM_ABI_H

#include <stdint.h>

#define VM_PAGE_SIZE		4096ULL
#define VM_CODE_GPA		0x2000ULL
#define VM_CODE_MAX		(0x10000ULL - VM_CODE_GPA)
#define VM_PML4_GPA		0x10000ULL
#define VM_PDPT_GPA		0x11000ULL
#define VM_PD_GPA		0x12000ULL	/* 8 pages */
#define VM_PD_COUNT		8
#define VM_STACKS_GPA		0x20000ULL
#define VM_PARAMS_GPA		0x30000ULL
#define VM_RESERVED_PAGES	0x40ULL
#define VM_SLOT1_GPA		0x100000000ULL	/* 4 GiB */
#define VM_MAX_VCPUS		4
#define VM_MAX_RANGES		2

/* Ports the guest writes to with "out"; each one is a VM exit. */
#define VM_PORT_BATCH	0x10	/* a batch of vm_params.batch stores is done */
#define VM_PORT_PASS	0x11	/* a pass over the working set is done */
#define VM_PORT_IDLE	0x12	/* idle: nothing to do, the VMM may sleep */
#define VM_PORT_WORK	0x13	/* a batch of computation is done (VM_MODE_COMPUTE) */

#define VM_MODE_DIRTY	1	/* store the pattern over the working set */
#define VM_MODE_IDLE	2	/* touch nothing */
#define VM_MODE_COMPUTE	3	/* compute in registers, touch no memory */

/* A run of guest pages, by guest page number (gpa >> 12). */
struct vm_range {
	uint64_t gpn;
	uint64_t count;
};

/*
 * One vCPU's orders.  Each store of vCPU c to page gpn writes the 64-bit
 * word ((uint64_t)seq << 32 | gpn) at offset c * 8 of that page, where seq
 * is the vCPU's pass counter (starting at 1).  Each vCPU sweeps the whole
 * working set, starting at a different page.
 */
struct vm_params {
	uint64_t mode;
	uint64_t batch;		/* stores between two VM_PORT_BATCH exits */
	uint64_t start;		/* index of the first page of the sweep */
	uint64_t nranges;
	struct vm_range ranges[VM_MAX_RANGES];
};

#define VM_PATTERN(seq, gpn)	((uint64_t)(seq) << 32 | (uint32_t)(gpn))

#endif /* VMPF_VM_ABI_H */
