#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Same-host handover (vmpf-ctl handover): a new vmpf-vm process takes a
# running guest over from the old one, whose RAM is a memfd or a restore
# session's guest memory, without copying or reading a page.  The new VMM
# verifies RAM against checksums the old one wrote at its pause, then runs
# the guest, whose own pattern checks must hold; the module's counters
# show no page read or copied.  A new VMM that fails before resuming
# leaves the guest running in the old one.  Prints TAP (busybox sh).
TAP_PREFIX=handover
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..4"
t=$(mktemp -d)
PF=/dev/ram0

# old_vmm OUT ARGS...: start a vmpf-vm offering a handover; sets $old.
old_vmm() {
	out=$1
	shift
	vmpf-vm "$@" --handover --seconds 30 --checksums $t/at-pause --json > $out 2>&1 &
	old=$!
	wait_for $out "hands its guest over"
}

# done_within PID: the process ended within 10 s.
done_within() {
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	! kill -0 "$1" 2>/dev/null
}

# The module's open files, sessions and memory, as vmpf-ctl sees them.
# n JSON KEY: the number, or -1 if missing.
n() { v=$(num "$1" "$2"); echo "${v:--1}"; }
counters() { vmpf-ctl version --json 2>/dev/null | grep -o '"open_files":.*'; }

# 1: RAM in a memfd; the module takes no part.
c0=$(counters)
old_vmm $t/old1 --memfd --ram 64M --vcpus 2
if has "$(cat $t/old1)" 'cannot listen on.*\(not implemented\|not supported\)'; then
	wait $old
	for name in memfd_guest_taken_over restored_guest_taken_over_nothing_read \
		    session_gone_with_new_vmm failed_takeover_leaves_guest_running; do
		skip $name "no Unix sockets in this kernel"
	done
	rm -rf $t
	exit 0
fi
new=$(vmpf-ctl handover --pid $old -- vmpf-vm --verify $t/at-pause --seconds 1 --json 2>$t/err1)
rc=$?
wait $old
orc=$?
echo "# memfd: $(echo "$new" | grep -o '"handover_ns":[0-9]*'), old VMM rc=$orc"
if [ $rc = 0 ] && [ $orc = 0 ] && has "$(cat $t/old1)" '"handed_over":true' &&
   has "$new" '"taken_over":true' && has "$new" '"verified_pages_mismatched":0,"pattern_errors":0,' &&
   [ -n "$c0" ] && [ "$(counters)" = "$c0" ]; then
	ok memfd_guest_taken_over
else notok memfd_guest_taken_over "new rc=$rc, old rc=$orc" "$new" "$(cat $t/err1)" \
	"$(tail -n 3 $t/old1)" "counters before: $c0" "after: $(counters)"; fi

# 2: a restored guest: its session's memory changes hands, nothing is read.
m=$(vmpf-vm --ram 64M --vcpus 2 --seconds 0.3 --migrate-to $PF 2>&1) ||
	echo "# migration failed: $m"
old_vmm $t/old2 --restore $PF
i=0
while ! has "$(vmpf-ctl restore --pid $old --json 2>/dev/null)" '"phase":"complete"' && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
before=$(vmpf-ctl restore --pid $old --json 2>&1)
new=$(vmpf-ctl handover --pid $old -- vmpf-vm --verify $t/at-pause --seconds 1 --json 2>$t/err2)
rc=$?
wait $old
orc=$?
# The same session, now the new VMM's: pages brought in before = after.
read_before=$(($(n "$before" demand_pages) + $(n "$before" prefetched)))
read_after=$(($(n "$new" demand) + $(n "$new" prefetched)))
echo "# restored: $(echo "$new" | grep -o '"handover_ns":[0-9]*'), pages read before" \
	"$read_before, after $read_after, old VMM rc=$orc"
if [ $rc = 0 ] && [ $orc = 0 ] && has "$new" '"ram":"restore-session"' &&
   has "$new" '"verified_pages_mismatched":0,"pattern_errors":0,' &&
   has "$before" '"phase":"complete"' && [ "$read_before" = "$read_after" ]; then
	ok restored_guest_taken_over_nothing_read
else notok restored_guest_taken_over_nothing_read "new rc=$rc, old rc=$orc" "$before" \
	"$new" "$(cat $t/err2)" "$(tail -n 3 $t/old2)"; fi
i=0
while ! has "$(vmpf-ctl version --json 2>&1)" '"sessions":0,' && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
if has "$(vmpf-ctl version --json 2>&1)" '"sessions":0,'; then ok session_gone_with_new_vmm
else notok session_gone_with_new_vmm "$(vmpf-ctl version --json 2>&1)"; fi

# 4: the new VMM fails before it resumes: the old one runs on.
old_vmm $t/old4 --memfd --ram 16M
vmpf-ctl handover --pid $old -- vmpf-vm --verify $t/no-such-file --seconds 1 > $t/new4 2>&1
rc=$?
done_within $old
wait $old
orc=$?
if [ $rc != 0 ] && [ $orc = 0 ] && ! has "$(cat $t/old4)" handed_over &&
   has "$(cat $t/old4)" 'handover failed, the guest runs on here' &&
   has "$(cat $t/old4)" '"pattern_errors":0,'; then
	ok failed_takeover_leaves_guest_running
else notok failed_takeover_leaves_guest_running "new rc=$rc, old rc=$orc" \
	"$(tail -n 3 $t/new4)" "$(tail -n 4 $t/old4)"; fi
rm -rf $t
[ $fails = 0 ]
