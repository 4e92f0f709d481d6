#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make check-crash`: crash_test.sh at full size on each supported kernel
# (booted at the same time, as in make check): every flush point and 100
# random points of two logged migrations, 1,000 single-byte corruptions, the
# storage down past the retry budget, 100 unload/load cycles.  make check
# runs the same test smaller (20 random points, 100 corruptions, 10 cycles).
# Prints each kernel's TAP and figures; ends with "N passed, N failed,
# N skipped".  Logs: build/crash/.  Environment: VMPF_CRASH_POINTS,
# VMPF_CRASH_CORRUPT, VMPF_CRASH_CYCLES, VMPF_CRASH_SEED (crash_test.sh),
# VMPF_KERNELS (as make check).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
LOGS=build/crash
rm -rf "$LOGS"
mkdir -p "$LOGS"
export VMPF_RESULTS=$LOGS/results
: > "$VMPF_RESULTS"
# shellcheck source=selftests/lib.sh
. selftests/lib.sh

section "setup"
if ! KERNELS=$(selftests/deps.sh 2> "$LOGS/deps.log"); then
	result fail "install dependencies" "$(tail -n 15 "$LOGS/deps.log")"
	finish_section
	summary
	exit 1
fi
if make -s tools selftests > "$LOGS/build.log" 2>&1; then
	result ok "build the tools and selftests"
else
	result fail "build the tools and selftests" "$(tail -n 15 "$LOGS/build.log")"
fi
finish_section
seed=${VMPF_CRASH_SEED:-$(date +%s)}
t0=$(date +%s)
for k in $KERNELS; do
	VMPF_GUEST_TIMEOUT=${VMPF_GUEST_TIMEOUT:-5400} selftests/run-some.sh "$k" crash_test.sh \
		"VMPF_CRASH_POINTS=${VMPF_CRASH_POINTS:-100}" \
		"VMPF_CRASH_CORRUPT=${VMPF_CRASH_CORRUPT:-1000}" \
		"VMPF_CRASH_CYCLES=${VMPF_CRASH_CYCLES:-100}" "VMPF_CRASH_SEED=$seed" \
		> "$LOGS/$k.log" 2>&1 &
done
wait
for k in $KERNELS; do
	section "kernel $k: crash_test.sh"
	tr -d '\r' < "build/some-$k/result.log" > "$LOGS/result-$k.log" 2>/dev/null
	sed -n '/^VMPF-BEGIN crash_test.sh/,/^VMPF-END/p' "$LOGS/result-$k.log" |
		grep -v '^VMPF-' > "$LOGS/crash-$k.tap"
	grep '^# ' "$LOGS/crash-$k.tap"
	ingest_tap "$k: " < "$LOGS/crash-$k.tap" || result fail "$k: crash_test.sh printed no result" \
		"$(tail -n 15 "$LOGS/$k.log")"
	if grep -q '^VMPF-DONE' "$LOGS/result-$k.log" &&
	   ! grep -q '^VMPF-CHECK fail' "$LOGS/result-$k.log"; then
		result ok "$k: guest ran to the end, its checks passed (untainted, rmmod)"
	else
		result fail "$k: guest ran to the end, its checks passed (untainted, rmmod)" \
			"$(grep 'VMPF-CHECK fail' "$LOGS/result-$k.log"; tail -n 5 "build/some-$k/console.log")"
	fi
	bad='WARNING:|BUG:|Oops|general protection fault|Kernel panic|Call Trace:|'
	bad+='possible circular locking|inconsistent lock state|UBSAN:|KASAN:|blocked for more than|soft lockup'
	if grep -aEq "$bad" "build/some-$k/console.log"; then
		result fail "$k: kernel log free of warnings, oopses and splats" \
			"$(grep -aE -A3 "$bad" "build/some-$k/console.log" | tr -d '\r' | head -n 15)"
	else
		result ok "$k: kernel log free of warnings, oopses and splats"
	fi
	finish_section
done
echo "# took $(( $(date +%s) - t0 )) s"
summary
