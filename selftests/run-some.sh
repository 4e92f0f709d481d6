#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# For developers: boot one kernel with the module and only some of the
# guest tests, with environment for them, and print what they printed.
#   selftests/run-some.sh KVER TEST... [VAR=VALUE...]
# e.g.  selftests/run-some.sh 6.12.117+deb12-amd64 lifetime_test.sh \
#           VMPF_LIFETIME_SCENARIOS=2 VMPF_LIFETIME_ITERS=300
# KVER "debug": the debug-kernel lane's kernel (make check-debug builds and
# caches it), with its memory and kmemleak scan.
# VAR=VALUE words go on the kernel command line, which hands them to the
# guest's /init, and so to the tests, as environment.  Logs and the boot's
# files: build/some-KVER/.  Exit status: 0 if every test passed.
# The tests with QEMU as the VMM want a one-CPU test machine, as make
# check's qemu lane gives them (docs/testing.md):
#   VMPF_GUEST_SMP=1 selftests/run-some.sh KVER qemu_migrate_test.sh
# One run-some per KVER at a time: they share build/some-KVER.
set -uo pipefail
cd "$(dirname "$0")/.."
k=${1:?usage: run-some.sh KVER TEST... [VAR=VALUE...]}
shift
out=build/some-$k
tests=() env=
for a in "$@"; do
	case $a in
	*=*) env="$env $a" ;;
	*) tests+=("selftests/$a") ;;
	esac
done
mkdir -p "$out"
mod_args=(KERNELRELEASE="$k")
if [ "$k" = debug ]; then
	# shellcheck disable=SC1091
	. "${VMPF_DEBUG_CACHE:-/var/cache/vmpagefile/debug-kernel}/kernel.env" || exit 1
	k=$KVER
	mod_args=(KDIR="$KDIR")
	export VMPF_KERNEL_IMAGE=$IMAGE VMPF_MODULES_DIR=$MODULES_DIR
	export VMPF_GUEST_MEM=${VMPF_GUEST_MEM:-2048}
	env="vmpf_kmemleak=1 $env"
fi
make -s tools selftests >/dev/null || exit 1
rm -rf "$out/mod" && mkdir -p "$out/mod" && cp -r Kbuild Makefile dkms.conf kernel uapi "$out/mod/"
make -s -C "$out/mod" "${mod_args[@]}" module > "$out/build.log" 2>&1 ||
	{ tail -n 20 "$out/build.log"; exit 1; }
selftests/qemu/mkinitramfs.sh "$k" "$out/mod/vmpagefile.ko" "$out/initrd.gz" \
	tools/vmpf-ctl tools/vmpf-vm selftests/tap.sh "${tests[@]}" > "$out/initramfs.log" 2>&1 ||
	{ tail -n 20 "$out/initramfs.log"; exit 1; }
VMPF_APPEND="$env" selftests/qemu/run-guest.sh "$k" "$out/initrd.gz" "$out" \
	"${VMPF_GUEST_TIMEOUT:-3600}"
rc=$?
tr -d '\r' < "$out/result.log"
bad='WARNING:|BUG:|Oops|possible circular locking|inconsistent lock state|'
bad+='possible recursive locking|KASAN:|UBSAN:|new suspected memory leaks|blocked for more than|soft lockup'
grep -aE -A20 "$bad" "$out/console.log" | head -n 80
[ $rc = 0 ] && ! grep -aq '^not ok\|VMPF-CHECK fail\|VMPF-END .* [1-9]' "$out/result.log" &&
	grep -aq VMPF-DONE "$out/result.log" && ! grep -aqE "$bad" "$out/console.log"
