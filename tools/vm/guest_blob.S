/* SPDX-License-Identifier: GPL-2.0 */
/* The guest code as bytes inside vmpf-vm; VMPF_GUEST_BIN is its path. */
	.section .rodata
	.balign 16
	.global vm_guest_code
vm_guest_code:
	.incbin VMPF_GUEST_BIN
	.global vm_guest_code_end
vm_guest_code_end:
	.section .note.GNU-stack,"",@progbits
