/* SPDX-License-Identifier: GPL-2.0 */
/* vmpf-ctl's commands for an unmodified QEMU: see ctl_qemu.c. */
#ifndef VMPF_CTL_QEMU_H
#define VMPF_CTL_QEMU_H
#include "ctl_util.h"

int ctl_migrate_qemu(const struct ctl_opts *o);	/* migrate --qmp */
int ctl_restore_qemu(const struct ctl_opts *o);	/* restore --qemu */
int ctl_qmp(const struct ctl_opts *o);		/* qmp */
#endif /* VMPF_CTL_QEMU_H */
