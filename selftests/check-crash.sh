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
GUEST_TIMEOUT=${VMPF_GUEST_TIMEOUT:-5400}
for k in $KERNELS; do
	# Nothing of an earlier run may be read as this one's.
	rm -f "build/some-$k/result.log" "build/some-$k/console.log"
	(VMPF_GUEST_TIMEOUT=$GUEST_TIMEOUT selftests/run-some.sh "$k" crash_test.sh \
		"VMPF_CRASH_POINTS=${VMPF_CRASH_POINTS:-100}" \
		"VMPF_CRASH_CORRUPT=${VMPF_CRASH_CORRUPT:-1000}" \
		"VMPF_CRASH_CYCLES=${VMPF_CRASH_CYCLES:-100}" "VMPF_CRASH_SEED=$seed" \
		> "$LOGS/$k.log" 2>&1
	 echo $? > "$LOGS/$k.rc") &
done
wait
for k in $KERNELS; do
	section "kernel $k: crash_test.sh"
	dir=build/some-$k
	tr -d '\r' < "$dir/result.log" > "$LOGS/result-$k.log" 2>/dev/null
	grep '^# ' "$LOGS/result-$k.log" | grep -v '^#   '
	if [ ! -s "$dir/result.log" ]; then
		result fail "$k: booted" "$(tail -n 15 "$LOGS/$k.log")"
	else
		# run-some.sh's status is QEMU's only when it got as far.
		ingest_guest "$k: " "$dir" 0
		[ "$(cat "$LOGS/$k.rc" 2>/dev/null)" = 0 ] ||
			result fail "$k: run-some.sh" "$(tail -n 15 "$LOGS/$k.log")"
	fi
	finish_section
done
echo "# took $(( $(date +%s) - t0 )) s"
summary
