#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Crash consistency of the page file, proven on the write stream
# (docs/hardening.md), inside the test machine (busybox sh):
#   replay    a migration (vmpf-vm, a dirtying guest, several rounds,
#             switch-over) onto a dm-log-writes device; crash_tool replays
#             the log onto a second device to every flush point and to
#             random points between flushes (the writes after the last
#             flush partly applied, some torn); at each, vmpf-ctl verify and
#             a lazy restore through the kernel (RESTORE_OPEN, every page
#             read by a fault and compared with the guest's checksums at its
#             pause) must agree: refused, or the previous image, or the new
#             one, page for page.  Once into an empty device, once into one
#             that holds a committed image;
#   corrupt   single-byte corruptions of a committed page file, by area: each
#             refused, or exactly the changed page refused and every other
#             one right, or (bytes no reader uses) nothing changed;
#   outage    the storage down longer than the retry budget under a lazy
#             restore, then back: every page right or refused and named;
#   cycles    unload and load the module with a source and a restore session
#             each time: counters idle, unreclaimable slab not growing.
# VMPF_CRASH_POINTS (random points per replay, default 20),
# VMPF_CRASH_CORRUPT (default 100), VMPF_CRASH_CYCLES (default 10),
# VMPF_CRASH_SEED (default: the time; printed).  make check-crash runs
# 100, 1000 and 100.
if [ "${1:-}" = --check ]; then
	# crash_tool replay's check of one point: one line, its first word
	# the class (refused, old, new; bad... fails).
	v=$(vmpf-ctl verify "$2" 2>&1); vrc=$?
	g=$(vmpf-ctl info "$2" --json 2>/dev/null | sed -n 's/.*"generation":\([0-9]*\).*/\1/p')
	label=unknown sums=$CRASH_NEW_S
	if [ -n "$g" ] && [ "$g" = "${CRASH_OLD_G:-}" ]; then label=old sums=$CRASH_OLD_S; fi
	if [ -n "$g" ] && [ "$g" = "$CRASH_NEW_G" ]; then label=new; fi
	k=$(crash_tool lazycheck "$2" "$sums" 2>&1)
	v=$(echo "$v" | tail -n 1)
	if [ $vrc = 1 ]; then
		case $k in
		"refused No data available:"*|"refused Bad message:"*|"refused Invalid argument:"*)
			echo "refused: vmpf-ctl: ${v#vmpf-ctl: }; kernel: ${k#refused }" ;;
		refused*) echo "bad: the kernel refused it with an unexpected error: $k" ;;
		*) echo "bad: vmpf-ctl refused it ($v), the kernel opened it: $k" ;;
		esac
	elif [ $vrc != 0 ]; then
		echo "bad: vmpf-ctl verify failed (exit $vrc): $v"
	elif [ $label = unknown ]; then
		echo "bad: a generation ($g) that no migration committed: $v; $k"
	else
		case $k in
		"opened generation $g: 4096 pages, refused 0, mismatched 0")
			echo "$label generation, every page verified" ;;
		*) echo "bad: vmpf-ctl verified it, the kernel: $k" ;;
		esac
	fi
	exit 0
fi

TAP_PREFIX=crash
. "$(dirname "$0")/tap.sh"
POINTS=${VMPF_CRASH_POINTS:-20}
CORRUPT=${VMPF_CRASH_CORRUPT:-100}
CYCLES=${VMPF_CRASH_CYCLES:-10}
SEED=${VMPF_CRASH_SEED:-$(date +%s)}
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
tests="replay_empty_device replay_over_committed_image replayer_reproduces_the_device corrupt_bytes_caught storage_down_past_budget load_unload_cycles"

echo "TAP version 13"
echo "1..6"
echo "# seed $SEED: VMPF_CRASH_SEED=$SEED reproduces the random points and corruptions"
if ! command -v dmsetup >/dev/null || ! dmsetup version >/dev/null 2>&1 ||
   ! command -v crash_tool >/dev/null; then
	for x in $tests; do skip $x "no dmsetup, device-mapper or crash_tool here"; done
	exit 0
fi
# Every case builds on the logged migrations (the debug lane's kernel has
# no dm-log-writes).
if ! dmsetup targets | grep -q '^log-writes'; then
	for x in $tests; do skip $x "no dm-log-writes target in this kernel"; done
	exit 0
fi

t=$(mktemp -d)
cleanup() {
	exec 7<&-
	for d in crash-lw crash-base crash-replay; do
		dmsetup resume $d 2>/dev/null
		dmsetup remove $d 2>/dev/null
	done
}
trap cleanup EXIT
S=49152					# 24 MiB: a 16 MiB guest's page file
BASE=/dev/mapper/crash-base REPLAY=/dev/mapper/crash-replay LW=/dev/mapper/crash-lw
LOG=/dev/ram1
dmsetup create crash-base --table "0 $S linear /dev/ram0 0"
dmsetup create crash-replay --table "0 $S linear /dev/ram0 $S"
dd if=/dev/zero of=$BASE bs=1M count=24 2>/dev/null
dd if=/dev/zero of=$REPLAY bs=1M count=24 2>/dev/null
# Another process keeps BASE open (as a second host's multipathd or VMM
# would a shared LUN), so its page cache lives on: what it read now (the
# zeros) is still cached after the migration wrote underneath.  vmpf-ctl
# must read the new image all the same.
exec 7< $BASE
dd if=$BASE of=/dev/null bs=4096 count=16 2>/dev/null
gen() { vmpf-ctl info "$1" --json 2>/dev/null | sed -n 's/.*"generation":\([0-9]*\).*/\1/p'; }

# logged_migration SUMS VMPF-VM-ARGS...: a migration onto BASE through
# dm-log-writes, the log on LOG; a mark at the end makes the log's
# superblock count every write.
logged_migration() {
	sums=$1
	shift
	dd if=/dev/zero of=$LOG bs=4096 count=1 2>/dev/null
	dmsetup create crash-lw --table "0 $S log-writes $BASE $LOG" || return 1
	vmpf-vm --ram 16M --vcpus 2 --migrate-to $LW --checksums "$sums" --json "$@" \
		> $t/mig.out 2>&1
	rc=$?
	sync
	dmsetup message crash-lw 0 mark end
	dmsetup remove crash-lw
	echo "# migration: rc=$rc, $(grep -o '"committed":[a-z]*\|"rounds":[0-9]*\|"nr_rounds":[0-9]*' $t/mig.out | tr '\n' ' ')"
	[ $rc = 0 ] && has "$(cat $t/mig.out)" '"committed":true'
}

# replay LABEL: every flush point and POINTS random points onto REPLAY.
replay() {
	crash_tool replay $LOG $REPLAY --points "$POINTS" --seed "$SEED" \
		--run "$SELF --check $REPLAY" > $t/$1.replay 2>&1
	rc=$?
	echo "# $1: $(grep '^log:' $t/$1.replay)"
	echo "# $1: $(grep '^replay:' $t/$1.replay)"
	[ -n "${VMPF_CRASH_VERBOSE:-}" ] && sed 's/^/#   /' $t/$1.replay
	return $rc
}
# class_at PATTERN FILE: the classes of the points whose description matches
class_at() { grep "$1" "$2" | sed -n 's/.* => \([a-z]*\).*/\1/p' | sort -u | tr '\n' ' '; }

# 1. Into an empty device: refused until the commit record is durable,
# the new image (every page verified) after it, nothing else.
if logged_migration $t/s1 --working-set 8M --seconds 0.2 --max-rounds 4 --downtime 1 \
	--target-pages 1; then
	export CRASH_NEW_G CRASH_NEW_S=$t/s1
	CRASH_NEW_G=$(gen $BASE)
	replay empty; rc=$?
	if [ $rc = 0 ] && [ "$(class_at '^start' $t/empty.replay)" = "refused " ] &&
	   [ "$(class_at '^end' $t/empty.replay)" = "new " ] &&
	   [ -z "$(class_at '^[a-z]' $t/empty.replay | sed 's/refused //; s/new //')" ]; then
		ok replay_empty_device
	else notok replay_empty_device "rc=$rc" "$(grep 'bad' $t/empty.replay | head -n 5)" \
		"$(tail -n 3 $t/empty.replay)"; fi
	# The whole log replayed is the device the migration wrote.  (The
	# page cache still holds the zeros read above; vmpf-ctl, which drops
	# it itself, read the migration's generation.)
	blockdev --flushbufs $BASE
	if cmp $BASE $REPLAY > $t/cmp 2>&1; then ok replayer_reproduces_the_device
	else notok replayer_reproduces_the_device "$(cat $t/cmp)"; fi
else
	notok replay_empty_device "the logged migration failed" "$(tail -n 5 $t/mig.out)"
	skip replayer_reproduces_the_device "no log"
fi

# 2. Into a device holding that committed image: the old image until the
# new migration's first flush (which makes the file uncommitted: a VM
# that ran on must never be restored from its older image), then
# refused, then the new image.
export CRASH_OLD_G=$CRASH_NEW_G CRASH_OLD_S=$t/s1
# The replay starts from what BASE holds now, whatever the first replay did.
blockdev --flushbufs $BASE
dd if=$BASE of=$REPLAY bs=1M 2>/dev/null
if [ -n "$CRASH_OLD_G" ] && logged_migration $t/s2 --working-set 4M --rate 20000 --seconds 0.3 \
	--max-rounds 3 --target-pages 1; then
	CRASH_NEW_G=$(gen $BASE) CRASH_NEW_S=$t/s2
	replay second; rc=$?
	# "old" only before the first flush; never after it.
	late_old=$(sed -n '/^flush 1 of/,$p' $t/second.replay | grep -c ' => old')
	if [ $rc = 0 ] && [ "$(class_at '^start' $t/second.replay)" = "old " ] &&
	   [ "$(class_at '^end' $t/second.replay)" = "new " ] && [ "$late_old" = 0 ] &&
	   [ -z "$(class_at '^[a-z]' $t/second.replay | sed 's/refused //; s/new //; s/old //')" ]; then
		ok replay_over_committed_image
	else notok replay_over_committed_image "rc=$rc, old after the first flush: $late_old" \
		"$(grep 'bad' $t/second.replay | head -n 5)" "$(tail -n 3 $t/second.replay)"; fi
else
	notok replay_over_committed_image "no first image, or the logged migration failed" \
		"$(tail -n 5 $t/mig.out)"
fi

# 3. Single-byte corruptions of the committed image on BASE.
if [ -s $t/s2 ] && crash_tool corrupt $BASE $t/s2 --count "$CORRUPT" --seed "$SEED" > $t/corrupt 2>&1; then
	echo "# $(grep '^corruptions:' $t/corrupt)"
	ok corrupt_bytes_caught
else notok corrupt_bytes_caught "$(grep -v '^corruptions' $t/corrupt | head -n 5)" \
	"$(grep '^corruptions:' $t/corrupt)"; fi

# 4. The storage fails for longer than the retry budget (3.4 s) while a
# lazy restore reads: the page whose read ran out of retries is refused
# and named; later reads leave their page to be read again ("failing",
# -EAGAIN), and once the storage is back every other page arrives, right.
dmesg -c > /dev/null
crash_tool lazycheck $BASE $t/s2 --hold > $t/outage 2>&1 &
pid=$!
wait_for $t/outage mapped
# swap TABLE: crash-base's table now; it is resumed whatever happens.
swap() {
	dmsetup suspend crash-base && echo "$1" | dmsetup reload crash-base
	dmsetup resume crash-base
}
swap "0 $S error"
kill -USR1 $pid
sleep 6
swap "0 $S linear /dev/ram0 0"
wait $pid
o=$(tail -n 1 $t/outage)
refused=$(echo "$o" | sed -n 's/.*refused \([0-9]*\).*/\1/p')
first=$(echo "$o" | sed -n 's/.*refused [0-9]* (first \([0-9]*\)).*/\1/p')
if has "$o" "^opened generation .*, mismatched 0$" && [ "${refused:-0}" -ge 1 ] &&
   [ "$refused" -le 16 ] &&
   dmesg | grep -q "restore: page $first: reading the page file failed (error -5); not mapped" &&
   dmesg | grep -q "retry 1 of 5"; then
	echo "# outage: $o"
	ok storage_down_past_budget
else notok storage_down_past_budget "$o" "$(dmesg | grep vmpagefile | tail -n 4)"; fi

# 5. Unload and load, a source and a restore session each time.
slab() { echo 3 > /proc/sys/vm/drop_caches; sed -n 's/^SUnreclaim: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
s0=$(slab)
i=0 bad=
while [ $i -lt "$CYCLES" ]; do
	rmmod vmpagefile && insmod "$VMPF_MODULE" || { bad="reload failed in cycle $i"; break; }
	vmpf-vm --ram 4M --seconds 0.05 --migrate-to $BASE --checksums $t/sc > $t/cyc 2>&1 ||
		{ bad="migration in cycle $i: $(tail -n 2 $t/cyc)"; break; }
	k=$(crash_tool lazycheck $BASE $t/sc 2>&1)
	has "$k" "refused 0, mismatched 0$" || { bad="restore in cycle $i: $k"; break; }
	v=$(vmpf-ctl version --json 2>&1)
	has "$v" '"open_files":1,"sessions":0,' || { bad="counters in cycle $i: $v"; break; }
	i=$((i + 1))
done
s1=$(slab)
grow=$((s1 - s0))
echo "# cycles: $i, unreclaimable slab $s0 -> $s1 kB"
# Noise: other work in the machine moves it by some hundred kB.
if [ -z "$bad" ] && [ $grow -lt $((1024 + CYCLES * 16)) ]; then ok load_unload_cycles
else notok load_unload_cycles "${bad:-slab grew by $grow kB over $CYCLES cycles}"; fi

cleanup
trap - EXIT
dd if=/dev/zero of=$LOG bs=4096 count=1 2>/dev/null
rm -rf $t
[ $fails = 0 ]
