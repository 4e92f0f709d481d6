#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: everything a fresh Debian 12 machine needs to test
# vmpagefile, then
#   host:   unit tests of the userspace code, vmpf-ctl's command line,
#           checkpatch, and per kernel a W=1 build, sparse and DKMS;
#   kernel: per kernel, an initramfs with the module, kvm/kvm-amd and the
#           static selftests, booted under QEMU/TCG; every test's TAP, the
#           guest's own checks and a scan of the kernel log.
# Prints TAP per section and ends with "N passed, N failed, N skipped".
# Logs: build/logs/.  VMPF_KERNELS="k1 k2" overrides the kernel choice.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build
LOGS=$BUILD/logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
export VMPF_RESULTS=$LOGS/results
: > "$VMPF_RESULTS"
# shellcheck source=selftests/lib.sh
. selftests/lib.sh

VERSION=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
MOD_SOURCES="Kbuild Makefile dkms.conf kernel uapi"
GUEST_TIMEOUT=${VMPF_GUEST_TIMEOUT:-1500}

# --- dependencies and kernels ----------------------------------------------
if ! KERNELS=$(selftests/deps.sh 2> >(tee "$LOGS/deps.log" >&2)); then
	section "setup"
	result fail "install dependencies" "$(tail -n 15 "$LOGS/deps.log")"
	finish_section
	summary
	exit 1
fi
echo "# kernels under test: $KERNELS"

# --- host ------------------------------------------------------------------
section "host: userspace, style, builds, DKMS"

if make -s tools selftests host-tests > "$LOGS/userspace-build.log" 2>&1; then
	result ok "host: build vmpf-ctl and the selftests (static)"
else
	result fail "host: build vmpf-ctl and the selftests (static)" \
		"$(tail -n 15 "$LOGS/userspace-build.log")"
fi

for t in selftests/host/*_test; do
	[ -x "$t" ] || continue
	"$t" > "$LOGS/${t##*/}.log" 2>&1
	ingest_tap "host: " < "$LOGS/${t##*/}.log" ||
		result fail "host: ${t##*/} printed no result"
done
selftests/host/cli_test.sh tools/vmpf-ctl > "$LOGS/cli_test.log" 2>&1
ingest_tap "host: " < "$LOGS/cli_test.log" || result fail "host: cli_test printed no result"
selftests/host/deps_test.sh > "$LOGS/deps_test.log" 2>&1
ingest_tap "host: " < "$LOGS/deps_test.log" || result fail "host: deps_test printed no result"

checkpatch="perl $BUILD/harness/scripts/checkpatch.pl --no-tree --terse --strict"
if [ -f "$BUILD/harness/scripts/checkpatch.pl" ]; then
	# compat.h is the one file whose job is to compare kernel versions;
	# trace.h is TRACE_EVENT() macros, laid out as the kernel's own are;
	# guestmem.c's file_operations is tmpfs's, copied at load with two
	# entries replaced: it cannot be const.
	# shellcheck disable=SC2086
	out=$($checkpatch -f $(ls kernel/*.[ch] uapi/linux/*.h | grep -v 'compat.h\|trace.h\|guestmem.c') 2>&1;
	      $checkpatch --ignore CONST_STRUCT -f kernel/guestmem.c 2>&1;
	      $checkpatch --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON -f kernel/compat.h 2>&1;
	      ${checkpatch% --strict} -f kernel/trace.h 2>&1)
	if echo "$out" | grep -qE '(ERROR|WARNING|CHECK):'; then
		result fail "host: checkpatch --strict clean" "$(echo "$out" | grep -E '(ERROR|WARNING|CHECK):')"
	else
		result ok "host: checkpatch --strict clean"
	fi
else
	result fail "host: checkpatch --strict clean" "no checkpatch.pl in $BUILD/harness"
fi

# build_module KVER DIR LOG [make args]: a private copy per kernel and mode.
build_module() {
	local k=$1 dir=$2 log=$3
	shift 3
	rm -rf "$dir"
	mkdir -p "$dir"
	# shellcheck disable=SC2086
	cp -r $MOD_SOURCES "$dir/"
	make -C "$dir" KERNELRELEASE="$k" module "$@" > "$log" 2>&1
}

for k in $KERNELS; do
	if build_module "$k" "$BUILD/$k/mod" "$LOGS/build-$k.log" W=1 &&
	   ! grep -qE 'warning:|error:' "$LOGS/build-$k.log"; then
		result ok "host: $k: module builds with W=1 and no warning"
	else
		result fail "host: $k: module builds with W=1 and no warning" \
			"$(grep -E 'warning:|error:|Error' "$LOGS/build-$k.log" | head -n 15)"
	fi
	if build_module "$k" "$BUILD/$k/sparse" "$LOGS/sparse-$k.log" C=2 CHECK=sparse &&
	   ! grep -qE 'warning:|error:' "$LOGS/sparse-$k.log"; then
		result ok "host: $k: sparse clean"
	else
		result fail "host: $k: sparse clean" \
			"$(grep -E 'warning:|error:|Error' "$LOGS/sparse-$k.log" | head -n 15)"
	fi
done

# shellcheck disable=SC2086
selftests/host/dkms_test.sh "$VERSION" $KERNELS > "$LOGS/dkms.log" 2>&1
ingest_tap "host: " < "$LOGS/dkms.log" || result fail "host: dkms_test printed no result"
finish_section
elapsed

# --- kernels ---------------------------------------------------------------
GUEST_BINS="tools/vmpf-ctl tools/vmpf-vm selftests/tap.sh $(ls selftests/*_test.sh selftests/*_test)"
# Each kernel boots twice: the main lane (two CPUs) runs every test but
# QEMU's, the qemu lane runs the tests with QEMU as the VMM in a test
# machine with one CPU.  Inner QEMU guests in a two-CPU test machine lock
# up in most boots (an interrupt delivered with interrupts off, nested
# emulation: docs/testing.md); with one CPU they were not seen to.  Two
# boots at a time, each QEMU (TCG, thread=single) on one of the machine's
# cores: lane i runs kernel i's main boot, then the next kernel's qemu
# boot, which balances the two.  VMPF_CHECK_SERIAL=1 boots one at a time.
# Results are read afterwards, in the order of $KERNELS.
QEMU_TESTS="qemu_migrate_test.sh,disk_mirror_test.sh"
declare -A booted
# boot KVER LANE: one test machine, results in $BUILD/KVER/guest[-qemu]
boot() {
	local k=$1 lane=$2 dir=$BUILD/$1/guest smp=2 sel="vmpf_except=$QEMU_TESTS" quiet=0 rc
	if [ "$lane" = qemu ]; then
		dir=$BUILD/$k/guest-qemu smp=1 sel="vmpf_only=$QEMU_TESTS"
		quiet=${VMPF_QEMU_LANE_QUIET:-480}
	fi
	mkdir -p "$dir"
	rm -f "$dir/rc" "$dir/frozen-cpus.txt" "$dir/result-frozen.log" "$dir/console-frozen.log"
	[ -n "${booted[$k]:-}" ] || return 0
	echo "# booting $k ($lane lane)"
	VMPF_GUEST_QUIET=$quiet VMPF_GUEST_SMP=$smp VMPF_APPEND="$sel" \
		selftests/qemu/run-guest.sh "$k" "$BUILD/$k/guest/initrd.gz" "$dir" "$GUEST_TIMEOUT"
	rc=$?
	if [ $rc = 125 ]; then
		refreeze "$k" "$dir"
		rc=$?
	fi
	echo $rc > "$dir/rc"
}

# refreeze KVER DIR: the qemu lane's test machine froze (run-guest.sh's
# VMPF_GUEST_QUIET): boot it once more for the test it froze in and the
# ones it did not reach; the results are the first boot's up to that test,
# then the second boot's.  Said in the results, with the frozen CPU state
# kept in the logs.  Returns the second boot's status.
refreeze() {
	local k=$1 dir=$2 cur rest= t r at
	cur=$(tr -d '\r' < "$dir/result.log" | sed -n 's/^VMPF-BEGIN //p' | tail -n 1)
	for t in disk_mirror_test.sh qemu_migrate_test.sh; do
		if [ "$t" = "$cur" ] || ! grep -q "^VMPF-BEGIN $t" "$dir/result.log"; then
			rest=$rest${rest:+,}$t
		fi
	done
	mv "$dir/result.log" "$dir/result-frozen.log"
	mv "$dir/console.log" "$dir/console-frozen.log"
	mv "$dir/frozen.txt" "$dir/frozen-cpus.txt"
	# The last check the frozen test passed: it may leave out what froze
	# (qemu_migrate_test.sh: the reset part, after abort_runs_on).
	at=$(tr -d '\r' < "$dir/result-frozen.log" | sed -n "/^VMPF-BEGIN $cur\$/,\$p" |
		sed -n 's/^\(not \)*ok [0-9]* [a-z]*\.\([a-z0-9_]*\).*/\2/p' | tail -n 1)
	echo "# $k qemu lane: the test machine froze in ${cur:-its boot}${at:+ after $at} ($(head -n 1 "$dir/frozen-cpus.txt")); booting it again for $rest"
	VMPF_GUEST_QUIET=$quiet VMPF_GUEST_SMP=1 VMPF_APPEND="vmpf_only=$rest${at:+ VMPF_QEMU_FROZE_AT=$at}" \
		selftests/qemu/run-guest.sh "$k" "$BUILD/$k/guest/initrd.gz" "$dir" "$GUEST_TIMEOUT"
	r=$?
	mv "$dir/result.log" "$dir/result-again.log"
	{
		if [ -n "$cur" ]; then
			tr -d '\r' < "$dir/result-frozen.log" | sed "/^VMPF-BEGIN $cur\$/,\$d"
		fi
		echo "# the test machine froze in ${cur:-its boot} and was booted again (docs/testing.md)"
		tr -d '\r' < "$dir/result-again.log" | sed -n '/^VMPF-BEGIN /,$p'
	} > "$dir/result.log"
	return $r
}
for k in $KERNELS; do
	dir=$BUILD/$k/guest
	mkdir -p "$dir"
	ko=$BUILD/$k/mod/vmpagefile.ko
	[ -f "$ko" ] || continue
	# shellcheck disable=SC2086
	selftests/qemu/mkinitramfs.sh "$k" "$ko" "$dir/initrd.gz" $GUEST_BINS \
		> "$LOGS/initramfs-$k.log" 2>&1 || continue
	booted[$k]=1
done
# shellcheck disable=SC2206
kl=($KERNELS)
for i in "${!kl[@]}"; do
	next=${kl[$(( (i + 1) % ${#kl[@]} ))]}
	(boot "${kl[$i]}" main; elapsed; boot "$next" qemu; elapsed) &
	[ "${VMPF_CHECK_SERIAL:-0}" = 1 ] && wait
done
wait
elapsed
for k in $KERNELS; do
	section "kernel $k (QEMU, TCG, -cpu max)"
	if [ ! -f "$BUILD/$k/mod/vmpagefile.ko" ]; then
		result fail "$k: module built" "see $LOGS/build-$k.log"
	elif [ -z "${booted[$k]:-}" ]; then
		result fail "$k: initramfs built" "$(tail -n 15 "$LOGS/initramfs-$k.log")"
	else
		for lane in main qemu; do
			dir=$BUILD/$k/guest p="$k: "
			[ $lane = qemu ] && dir=$BUILD/$k/guest-qemu p="$k qemu lane: "
			cp "$dir/console.log" "$LOGS/console-$k-$lane.log" 2>/dev/null
			cp "$dir/result.log" "$LOGS/result-$k-$lane.log" 2>/dev/null
			for f in frozen-cpus.txt frozen.txt result-frozen.log console-frozen.log; do
				[ -f "$dir/$f" ] && cp "$dir/$f" "$LOGS/${f%.*}-$k-$lane.${f##*.}"
			done
			ingest_guest "$p" "$dir" "$(cat "$dir/rc" 2>/dev/null || echo 1)"
		done
		cat "$BUILD/$k/guest/result.log" "$BUILD/$k/guest-qemu/result.log" 2>/dev/null |
			grep -a '^# time ' | tr -d '\r' | sort -k4 -n -r | head -n 5 |
			sed "s/^# time /# slowest in $k: /"
	fi
	finish_section
done

# --- the benchmark program, short: it runs, its figures come out, and
# both the module and the userfaultfd baseline served the right data ---------
section "bench: short run"
if VMPF_BENCH="32 1 200 64" selftests/bench.sh > "$LOGS/bench.log" 2>&1 &&
   grep -q '"precopy_mbs":[0-9]' build/bench/bench.json &&
   grep -q '"uffd_fault_us_1t":[0-9]' build/bench/bench.json &&
   grep -q '"prefetch_mbs":[0-9]' build/bench/bench.json &&
   grep -q '"switchover_ns":[1-9]' build/bench/bench.json &&
   grep -q '"rate_ratio":0*[.1-9]' build/bench/bench.json &&
   grep -q '"initset":{"rate_ratio":0*[.1-9]' build/bench/bench.json &&
   grep -q '"kvm_pf_per_s":[1-9]' build/bench/bench.json &&
   grep -q '"history":{"rounds":[1-9]' build/bench/bench.json &&
   grep -q '"precopy_cpu_ms_per_gib":[1-9]' build/bench/bench.json &&
   grep -q '"prefetch_busy_ms_per_gib":[1-9]' build/bench/bench.json &&
   [ "$(grep -o '"bad_pages":0}' build/bench/bench.json | wc -l)" = 2 ]; then
	result ok "bench: figures produced, every page right in both the module and the baseline"
else
	result fail "bench: figures produced, every page right in both the module and the baseline" \
		"$(tail -n 15 "$LOGS/bench.log")"
fi
finish_section

# --- the two-host demo, small --------------------------------------------
elapsed
section "demo: two QEMU hosts sharing one disk"
if VMPF_DEMO_RAM=64M selftests/demo.sh > "$LOGS/demo.log" 2>&1; then
	result ok "demo: migration between two hosts through a shared disk, verified"
else
	result fail "demo: migration between two hosts through a shared disk, verified" \
		"$(tail -n 15 "$LOGS/demo.log")"
fi
finish_section

# --- the two-host demo with the page file on NFS and on OCFS2 ----------------
# (kernel 6.12, as make demo: each costs about two minutes)
for fs in nfs ocfs2; do
	elapsed
	section "demo: two QEMU hosts, the page file on $fs"
	if VMPF_DEMO_RAM=64M VMPF_DEMO_STORAGE=$fs selftests/demo.sh > "$LOGS/demo-$fs.log" 2>&1; then
		result ok "demo: migration between two hosts through a page file on $fs, verified"
	else
		result fail "demo: migration between two hosts through a page file on $fs, verified" \
			"$(tail -n 15 "$LOGS/demo-$fs.log")"
	fi
	finish_section
done

elapsed
summary
