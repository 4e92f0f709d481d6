# SPDX-License-Identifier: GPL-2.0
#
# make                 module for the running kernel (or KERNELRELEASE= / KDIR=),
#                      plus vmpf-ctl and the selftests
# make check           the test suite: host tests, then each supported kernel
#                      booted under QEMU with the module and the selftests
# make demo            a live migration between two QEMU hosts sharing a disk
# make bench           benchmarks against userfaultfd and the raw device
# make check-debug     the debug-kernel lane: a KASAN/lockdep/kmemleak 6.12 kernel
#                      built from linux-source-6.12 (cached), the selftests on it
# make check-crash     crash consistency at full size: every flush point and
#                      100 random points of two logged migrations, 1,000
#                      corruptions, 100 module reload cycles, on each kernel
#
# Kbuild reads ./Kbuild, never this file.

KERNELRELEASE ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KERNELRELEASE)/build
W ?=

CC ?= cc
CFLAGS ?= -O2 -g
VMPF_CFLAGS = -Wall -Wextra -Werror=implicit-function-declaration -std=gnu11 \
	-D_GNU_SOURCE -Iuapi -Itools/lib \
	-DVMPF_TOOL_VERSION='"$(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)"'
LDFLAGS ?=
# kselftest_harness.h's macros trip these under -Wextra.
TEST_CFLAGS = -Wno-sign-compare -Wno-unused-parameter -Wno-clobbered
# Selftests and tools run inside a busybox initramfs: link them statically.
STATIC ?= -static
HARNESS_DIR ?= build/harness

TOOLS = tools/vmpf-ctl tools/vmpf-vm
VM_SRC = tools/vm/vm.c tools/vm/handover.c tools/build/guest_blob.o
VM_HDR = tools/vm/vm.h tools/vm/vm_abi.h tools/vm/handover.h
# The guest code: freestanding 64-bit, linked to a flat binary at VM_CODE_GPA.
GUEST_CFLAGS = -O2 -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	-mno-red-zone -mgeneral-regs-only -fno-asynchronous-unwind-tables \
	-fcf-protection=none -nostdlib -static -no-pie -Wall -Wextra
LIB_SRC = tools/lib/vmpf.c tools/lib/ctl_util.c tools/lib/pagefile.c tools/lib/cgroup.c tools/lib/qmp.c
LIB_HDR = tools/lib/vmpf.h tools/lib/ctl_util.h tools/lib/pagefile.h tools/lib/cgroup.h tools/lib/qmp.h uapi/linux/vmpagefile.h
TESTS = $(patsubst %.c,%,$(wildcard selftests/*_test.c))
HOST_TESTS = $(patsubst %.c,%,$(wildcard selftests/host/*_test.c))

.PHONY: all module clean-module tools selftests host-tests bench-tools check check-debug check-crash demo bench clean

all: module tools selftests

module:
	@if [ ! -d "$(KDIR)" ]; then \
		echo "No kernel headers at $(KDIR): install linux-headers-$(KERNELRELEASE)" \
		     "or pass KDIR=/path/to/kernel/build" >&2; exit 1; fi
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=$(W) modules

clean-module:
	@if [ -d "$(KDIR)" ]; then $(MAKE) -C $(KDIR) M=$(CURDIR) clean; fi

tools: $(TOOLS)

tools/vmpf-ctl: tools/vmpf-ctl.c tools/ctl_qemu.c tools/ctl_qemu.h tools/ctl_disks.c tools/ctl_disks.h tools/vm/handover.h $(LIB_SRC) $(LIB_HDR)
	$(CC) $(CFLAGS) $(VMPF_CFLAGS) -Itools $(STATIC) -o $@ tools/vmpf-ctl.c tools/ctl_qemu.c tools/ctl_disks.c $(LIB_SRC) $(LDFLAGS)

tools/vmpf-vm: tools/vmpf-vm.c $(VM_SRC) $(VM_HDR) $(LIB_SRC) $(LIB_HDR)
	$(CC) $(CFLAGS) $(VMPF_CFLAGS) -Itools/vm $(STATIC) -pthread -o $@ tools/vmpf-vm.c $(VM_SRC) $(LIB_SRC) $(LDFLAGS)

tools/build/guest.bin: tools/vm/guest.c tools/vm/vm_abi.h tools/vm/guest.lds
	@mkdir -p tools/build
	$(CC) $(GUEST_CFLAGS) -Wl,-T,tools/vm/guest.lds -Wl,--oformat=binary \
		-Wl,--build-id=none -o $@ tools/vm/guest.c

tools/build/guest_blob.o: tools/vm/guest_blob.S tools/build/guest.bin
	$(CC) -c -DVMPF_GUEST_BIN='"tools/build/guest.bin"' -o $@ tools/vm/guest_blob.S

$(HARNESS_DIR)/kselftest_harness.h:
	selftests/get-harness.sh $(HARNESS_DIR)

selftests: $(TESTS) selftests/crash_tool

selftests/crash_tool: selftests/crash_tool.c tools/vm/vm.h $(LIB_SRC) $(LIB_HDR)
	$(CC) $(CFLAGS) $(VMPF_CFLAGS) -Itools/vm $(STATIC) -o $@ $< $(LIB_SRC) $(LDFLAGS)

selftests/%_test: selftests/%_test.c $(LIB_SRC) $(LIB_HDR) $(HARNESS_DIR)/kselftest_harness.h
	$(CC) $(CFLAGS) $(VMPF_CFLAGS) $(TEST_CFLAGS) -I$(HARNESS_DIR) $(STATIC) -pthread -o $@ $< $(LIB_SRC) $(LDFLAGS)

bench-tools: selftests/bench/vmpf-bench

selftests/bench/vmpf-bench: selftests/bench/vmpf_bench.c $(LIB_SRC) $(LIB_HDR)
	$(CC) $(CFLAGS) $(VMPF_CFLAGS) $(STATIC) -pthread -o $@ $< $(LIB_SRC) $(LDFLAGS)

host-tests: $(HOST_TESTS) $(TOOLS)

# vmpf-ctl's disk mirroring against a fake QMP monitor.
selftests/host/disks_test: selftests/host/disks_test.c tools/ctl_disks.c tools/ctl_disks.h $(LIB_SRC) $(LIB_HDR) $(HARNESS_DIR)/kselftest_harness.h
	$(CC) $(CFLAGS) $(VMPF_CFLAGS) $(TEST_CFLAGS) -I$(HARNESS_DIR) -Itools -pthread -o $@ $< tools/ctl_disks.c $(LIB_SRC) $(LDFLAGS)

selftests/host/%_test: selftests/host/%_test.c $(LIB_SRC) $(LIB_HDR) $(HARNESS_DIR)/kselftest_harness.h
	$(CC) $(CFLAGS) $(VMPF_CFLAGS) $(TEST_CFLAGS) -I$(HARNESS_DIR) -o $@ $< $(LIB_SRC) $(LDFLAGS)

check:
	@selftests/check.sh

check-debug:
	@selftests/check-debug.sh

check-crash:
	@selftests/check-crash.sh

demo:
	@selftests/demo.sh

bench:
	@selftests/bench.sh

clean: clean-module
	rm -f $(TOOLS) $(TESTS) $(HOST_TESTS) selftests/bench/vmpf-bench
	rm -rf build tools/build
