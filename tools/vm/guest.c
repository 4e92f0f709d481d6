// SPDX-License-Identifier: GPL-2.0
/*
 * The guest code of vmpf-vm: freestanding, 64-bit, identity-mapped.  The VMM
 * enters guest_main() with rdi = vCPU index and rsi = its struct vm_params.
 * The loop state lives in registers and on the vCPU's stack, both saved in
 * the VMM's device state, so a migrated guest carries on where it stopped.
 */
#include "vm_abi.h"

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

__attribute__((section(".text.entry"), noreturn, used))
void guest_main(uint64_t cpu, const volatile struct vm_params *p)
{
	uint64_t seq = 0, total = 0, n = 0, i, r, idx;

	if (p->mode == VM_MODE_COMPUTE) {
		/* Work that dirties nothing: the progress is the exits. */
		uint64_t x = cpu + 1;

		for (;;) {
			for (i = 0; i < p->batch * 64; i++)
				x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			outb(VM_PORT_WORK, (uint8_t)x);
		}
	}
	if (p->mode != VM_MODE_DIRTY)
		for (;;)
			outb(VM_PORT_IDLE, 0);

	for (r = 0; r < p->nranges; r++)
		total += p->ranges[r].count;

	for (;;) {
		seq++;
		for (i = 0; i < total; i++) {
			uint64_t gpn;

			idx = (p->start + i) % total;
			for (r = 0; idx >= p->ranges[r].count; r++)
				idx -= p->ranges[r].count;
			gpn = p->ranges[r].gpn + idx;
			*(volatile uint64_t *)(gpn * VM_PAGE_SIZE + cpu * 8) =
				VM_PATTERN(seq, gpn);
			if (++n == p->batch) {
				outb(VM_PORT_BATCH, 0);
				n = 0;
			}
		}
		outb(VM_PORT_PASS, 0);
	}
}
