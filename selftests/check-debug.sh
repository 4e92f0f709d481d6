#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make check-debug`: the debug-kernel lane.  Builds (or reuses) a 6.12
# kernel with KASAN, lockdep, DEBUG_ATOMIC_SLEEP and kmemleak
# (selftests/debug/build-kernel.sh), builds the module against it, boots it
# under QEMU/TCG with the module and the static selftests, and reports every
# test's TAP, the guest's checks (kmemleak's included: vmpf_kmemleak=1) and
# one result per detector found on the console.
# Ends with "N passed, N failed, N skipped".  Logs: build/debug/.  A
# detector's reports, with the test that was running, also go to
# build/debug-findings.txt.
# Environment: VMPF_GUEST_TIMEOUT (default 2400 s: KASAN and lockdep under
# TCG are slow), VMPF_GUEST_MEM (default 2048 MiB: KASAN's shadow,
# quarantine and kmemleak's metadata on top of the 2 x 256 MiB RAM disks),
# VMPF_DEBUG_CACHE (see build-kernel.sh), VMPF_DEBUG_SKIP (names of guest
# test programs to leave out, e.g. one known to hang: each is reported as
# skipped).
# No -e, as in check.sh: a failing step is a result, and the run goes on.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
OUT=$ROOT/build/debug
FINDINGS=$ROOT/build/debug-findings.txt
rm -rf "$OUT/logs" "$FINDINGS"
mkdir -p "$OUT/logs"
LOGS=$OUT/logs
export VMPF_RESULTS=$LOGS/results
: > "$VMPF_RESULTS"
# shellcheck source=selftests/lib.sh
. selftests/lib.sh

MOD_SOURCES="Kbuild Makefile dkms.conf kernel uapi"
GUEST_TIMEOUT=${VMPF_GUEST_TIMEOUT:-2400}
export VMPF_GUEST_MEM=${VMPF_GUEST_MEM:-2048}

finish() {
	finish_section
	summary
	exit
}

# --- kernel, module, selftests, initramfs ----------------------------------
section "debug kernel: build"
t0=$(date +%s)
if selftests/debug/build-kernel.sh > "$LOGS/kernel.env" 2> "$LOGS/build-kernel.log"; then
	result ok "debug kernel built ($(( $(date +%s) - t0 )) s)"
else
	result fail "debug kernel built" "$(tail -n 15 "$LOGS/build-kernel.log")"
	finish
fi
# KVER KDIR IMAGE MODULES_DIR
# shellcheck disable=SC1091
. "$LOGS/kernel.env"
echo "# kernel $KVER: $IMAGE"

# A private copy, as check.sh builds it: nothing lands in the work tree.
rm -rf "$OUT/mod"
mkdir -p "$OUT/mod"
# shellcheck disable=SC2086
cp -r $MOD_SOURCES "$OUT/mod/"
if make -C "$OUT/mod" KDIR="$KDIR" module > "$LOGS/module-build.log" 2>&1 &&
   [ -f "$OUT/mod/vmpagefile.ko" ]; then
	result ok "module builds against the debug kernel (KDIR=$KDIR)"
else
	result fail "module builds against the debug kernel (KDIR=$KDIR)" \
		"$(grep -E 'warning:|error:|Error' "$LOGS/module-build.log" | head -n 15)"
	finish
fi

if make -s tools selftests > "$LOGS/userspace-build.log" 2>&1; then
	result ok "build vmpf-ctl and the selftests (static)"
else
	result fail "build vmpf-ctl and the selftests (static)" \
		"$(tail -n 15 "$LOGS/userspace-build.log")"
	finish
fi

GUEST_BINS="tools/vmpf-ctl tools/vmpf-vm selftests/tap.sh"
for t in selftests/*_test.sh selftests/*_test; do
	case " ${VMPF_DEBUG_SKIP:-} " in
	*" ${t##*/} "*) result skip "${t##*/} left out" "VMPF_DEBUG_SKIP" ;;
	*) GUEST_BINS+=" $t" ;;
	esac
done
# shellcheck disable=SC2086
if VMPF_MODULES_DIR=$MODULES_DIR selftests/qemu/mkinitramfs.sh "$KVER" \
	"$OUT/mod/vmpagefile.ko" "$OUT/initrd.gz" $GUEST_BINS > "$LOGS/initramfs.log" 2>&1; then
	result ok "initramfs built"
else
	result fail "initramfs built" "$(tail -n 15 "$LOGS/initramfs.log")"
	finish
fi
finish_section

# --- the guest run ---------------------------------------------------------
section "debug kernel $KVER (QEMU, TCG, -cpu max, KASAN/lockdep/kmemleak)"
p="debug $KVER: "
dir=$OUT/guest
mkdir -p "$dir"
res=$dir/result.log con=$dir/console.log
rm -f "$res" "$con"
# A timeline, once a second: console size and the test then running, so
# that a splat on the console can be laid at a test's door.
(
	while sleep 1; do
		echo "$(stat -c %s "$con" 2>/dev/null || echo 0)" \
			"$(grep -a '^VMPF-\(BEGIN\|END\)' "$res" 2>/dev/null | tail -n 1 | tr -d '\r')"
	done
) > "$dir/timeline" &
watcher=$!
t0=$(date +%s)
VMPF_KERNEL_IMAGE=$IMAGE VMPF_APPEND="vmpf_kmemleak=1 vmpf_test_timeout=0 ${VMPF_APPEND:-}" \
	selftests/qemu/run-guest.sh "$KVER" "$OUT/initrd.gz" "$dir" "$GUEST_TIMEOUT"
rc=$?
took=$(( $(date +%s) - t0 ))
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
echo "# guest run: ${took} s, QEMU exit $rc"
touch "$res" "$con"
cp "$con" "$LOGS/console.log"
cp "$res" "$LOGS/result.log"

# The guest's results, as check.sh reads them (selftests/lib.sh).
ingest_results "$p" "$dir" "$rc"

# test_at OFFSET: the test running when the console had OFFSET bytes.
test_at() {
	awk -v off="$1" '{ size = $1; sub(/^[0-9]+ ?/, ""); last = $0 }
		size >= off { print; found = 1; exit }
		END { if (!found) print last }' "$dir/timeline" |
		sed -e 's/^$/(before the first test)/' -e 's/^VMPF-BEGIN //' \
		    -e 's/^VMPF-END \([^ ]*\) .*/(guest-init.sh, after \1)/'
}

# detector NAME REGEX [END]: one result per detector; each report, with the
# test that was running and up to 120 lines of it (up to a line matching
# END), goes to the findings file.
detector() {
	local name=$1 re=$2 end=${3:-'end trace [0-9a-f]+ \]---'} hits off
	hits=$(grep -abE "$re" "$con" | cut -d: -f1)
	if [ -z "$hits" ]; then
		result ok "${p}no $name"
		return
	fi
	for off in $hits; do
		{
			echo "=== $name, while running: $(test_at "$off")"
			tail -c +"$((off + 1))" "$con" | head -n 120 | tr -d '\r' |
				END_RE=$end awk 'NR > 1 && $0 ~ ENVIRON["END_RE"] { print; exit } { print }'
			echo
		} >> "$FINDINGS"
	done
	result fail "${p}no $name" \
		"$(grep -aE -A3 "$re" "$con" | tr -d '\r' | head -n 12); see $FINDINGS"
}
detector "KASAN report" 'BUG: KASAN' '^(\[[ 0-9.]+\] )?=====+$'
detector "lockdep splat" 'WARNING: possible circular locking|inconsistent lock state|possible recursive locking|WARNING: suspicious RCU usage|WARNING: bad unlock balance|WARNING: held lock freed|WARNING: lock held when returning'
detector "sleep in atomic context" 'BUG: sleeping function called from invalid context|BUG: scheduling while atomic'
# kmemleak's report comes over the result channel (guest-init.sh's check
# prints it there as "# " lines); the console has only its one-line count.
if grep -aq '^# unreferenced object' "$res"; then
	{
		echo "=== kmemleak, scanned after rmmod vmpagefile"
		sed -n 's/^# //p' "$res" | tr -d '\r' | awk '/unreferenced object/ { on = 1 } on'
		echo
	} >> "$FINDINGS"
fi

# Everything check.sh's scan catches, less kmemleak's start-up line (and
# "kmemleak" only with a colon: vmpf_kmemleak=1 is on the command line).
bad='WARNING:|BUG:|Oops|general protection fault|Kernel panic|Call Trace:|'
bad+='possible circular locking|inconsistent lock state|possible recursive locking|'
bad+='UBSAN:|KASAN:|KFENCE:|kmemleak:|blocked for more than|soft lockup|hard LOCKUP|'
bad+='rcu_sched self-detected stall|RCU stall|segfault at|unreferenced object'
benign='kmemleak: Kernel memory leak detector initialized'
# (Into a variable first: grep -q ending a pipeline early would be a
# SIGPIPE, and a pipefail, for the grep before it.)
console_unexpected "$con" > "$con.unexpected"
found=$(grep -aE "$bad" "$con.unexpected" | grep -avE "$benign")
if [ -n "$found" ]; then
	result fail "${p}kernel log free of warnings, oopses and splats" \
		"$(grep -aE -A3 "$bad" "$con.unexpected" | grep -avE "$benign" | head -n 15)"
else
	result ok "${p}kernel log free of warnings, oopses and splats"
fi
[ -f "$FINDINGS" ] && echo "# findings: $FINDINGS"
finish_section
summary
