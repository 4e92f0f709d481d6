#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Lifetime and concurrency of sessions (busybox sh, in the test guest):
# a seeded loop of migrations and restores whose VMM, or a vmpf-ctl holding
# a copy of the session descriptor, is SIGKILLed at a random moment, with
# start/finish/abort/status from vmpf-ctl running at the same time; after
# each iteration the module's counters must come back to idle.  Then two
# sessions at once, and rmmod refused while a session lives.  Prints TAP.
#   VMPF_LIFETIME_SEED   seed of the loop (default: the time; it is printed)
#   VMPF_LIFETIME_ITERS  iterations (default 70: ten of each scenario)
#   VMPF_LIFETIME_SCENARIOS  the scenarios to take in turn (default
#                        "0 1 2 3 4 5 6"; commas do too), e.g. "2" to run
#                        one of them only
TAP_PREFIX=lifetime
. "$(dirname "$0")/tap.sh"
t=$(mktemp -d)
SRC=/dev/ram0	# the page file of the loop's migrations
IMG=/dev/ram1	# a committed image, only ever read: the loop's restores
SEED=${VMPF_LIFETIME_SEED:-$(date +%s)}
ITERS=${VMPF_LIFETIME_ITERS:-70}
SCENARIOS=$(echo "${VMPF_LIFETIME_SCENARIOS:-0 1 2 3 4 5 6}" | tr , " ")
set -- $SCENARIOS
NSC=$#
RANDOM=$SEED	# busybox ash: assigning RANDOM seeds it

echo "TAP version 13"
echo "1..8"
echo "# seed $SEED, $ITERS iterations of scenarios $SCENARIOS (VMPF_LIFETIME_SEED=$SEED to repeat the choices;"
echo "# the timing of the kills cannot be repeated exactly)"

# rnd N: r = 0..N-1; pick WORD...: w = one of them.  Not in $(...): a
# subshell's RANDOM does not advance ours.
rnd() { r=$((RANDOM % $1)); }
pick() { rnd $#; shift $r; w=$1; }
# phase PID: ph = the phase of the migration PID holds, empty if none
phase() {
	ph=$(vmpf-ctl status --pid $1 --json 2>/dev/null | sed -n 's/^{"phase":"\([a-z]*\)".*/\1/p')
}
# The module's counters when idle: vmpf-ctl's own descriptor only.
idle=$(vmpf-ctl version --json 2>&1)
mem0=$(num "$idle" mem_bytes)
# idle_again: back to that within 5 s (the session ends when its last
# descriptor and mapping go; the worker may still be stopping)
idle_again() {
	i=0
	while [ $i -lt 50 ]; do
		v=$(vmpf-ctl version --json 2>&1)
		has "$v" "\"open_files\":1,\"sessions\":0,\"mem_bytes\":$mem0}" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# gone PID SECONDS: PID exits within SECONDS (reaped by the caller's wait)
gone() {
	i=0
	while kill -0 $1 2>/dev/null && [ $i -lt $(($2 * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	! kill -0 $1 2>/dev/null
}
# The out-of-tree, unsigned module taints the kernel (O, E) when it loads;
# only a new bit counts, and W, D, B, L (warning, oops, bad page, lockup)
# must never be set.
taint0=$(cat /proc/sys/kernel/tainted)
taint_ok() {
	tn=$(cat /proc/sys/kernel/tainted)
	[ "$tn" = "$taint0" ] && [ $((tn & (512 | 128 | 32 | 16384))) = 0 ]
}
dmesg0=$(dmesg | wc -l)
# Unreclaimable slab, with the reclaimable caches dropped first: what a
# leaked session (its bitmaps, a pinned struct kvm, a page-file request)
# would leave behind.
sunreclaim() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
	sleep 1
	cat /proc/slabinfo > $t/slab$1 2>/dev/null
	sed -n 's/^SUnreclaim: *\([0-9]*\) kB/\1/p' /proc/meminfo
}
# slab_growth: the caches whose active objects grew most, as comments
slab_growth() {
	awk 'FNR == NR { a[$1] = $2; next } $2 - a[$1] > 0 { print $2 - a[$1], $1, $4 }' \
		$t/slab0 $t/slab1 2>/dev/null | sort -n -r | head -n 6 |
		sed 's/^\([0-9]*\) \([^ ]*\) \([0-9]*\)/#   \2: +\1 objects of \3 bytes/'
}

# 1. The committed image the restores use; a restore of it verifies.
out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 4M --rate 4000 --seconds 0.3 \
	--migrate-to $IMG --checksums $t/img --json 2>&1); rc=$?
r=$(vmpf-vm --restore $IMG --verify $t/img --seconds 0.1 --wait-complete --json 2>&1); rrc=$?
if [ $rc = 0 ] && has "$out" '"committed":true' && [ $rrc = 0 ] &&
   has "$r" '"verified_pages_mismatched":0' && idle_again; then
	ok committed_image
else notok committed_image "rc=$rc" "$out" "restore rc=$rrc" "$r" "$v"; fi

# One iteration: start a VMM (and vmpf-ctl helpers), kill one process
# holding the session after a random delay, note the session's phase just
# before the kill, then end everything and see the module go idle.
# Scenarios, in turn (so that each is tried; the delays and flags vary):
#   0 source attached without start (every other time vmpf-ctl start races
#     the kill); VMM killed
#   1 source --wait-request, finish/abort/status racing; VMM killed
#   2 source --wait-request with a status --watch; the watcher killed
#   3 the watcher stopped (SIGSTOP) while finish or abort completes and the
#     VMM exits, so that it alone holds the ended session; then killed
#   4 source asked to finish by vmpf-ctl; VMM killed 0-300 ms later, or
#     (every other time) as soon as its phase is no longer precopy: in the
#     switch-over (the finishing phase is short), or just after the commit
#   5 lazy restore, vmpf-ctl restore --pause/--run racing; VMM killed
#     mid-fault or mid-prefetch
#   6 lazy restore; a vmpf-ctl restore --pause/--run killed mid-call
: > $t/kills
fail_it=
relooks=0
s0=$(sunreclaim 0)
start=$(date +%s)
it=0
while [ $it -lt $ITERS ]; do
	set -- $SCENARIOS
	shift $((it % NSC))
	sc=$1
	vmm= wp= op= victim=
	rnd 1500; delay=$((r * 1000))		# up to 1.5 s, in microseconds
	if [ $sc -le 4 ]; then
		flags=--wait-request
		[ $sc = 0 ] && flags="--no-start --wait-request"
		rnd 4; ws=$((1 + r * 2))M		# 1, 3, 5 or 7 MiB dirtied
		vmpf-vm --ram 16M --vcpus 2 --working-set $ws --seconds 0.1 $flags \
			--migrate-to $SRC > $t/vmm 2>&1 &
		vmm=$!
		wait_for $t/vmm attached
		if [ $sc = 2 ] || [ $sc = 3 ]; then
			vmpf-ctl status --pid $vmm --watch --json > $t/w 2>&1 &
			wp=$!
		fi
		pick start finish abort status; cmd=$w
		# scenario 0: started from vmpf-ctl every other time, else killed attached
		[ $sc = 0 ] && { [ $((it / NSC % 2)) = 1 ] && cmd=start || cmd=status; }
		rnd 1000; opdelay=$((r * 1000))
		if [ $sc = 4 ]; then
			cmd=finish
			rnd 300; delay=$((opdelay + r * 1000))
			[ $((it / NSC % 2)) = 1 ] && delay=$opdelay	# then poll, below
		fi
		(usleep $opdelay; exec vmpf-ctl $cmd --pid $vmm) > $t/op 2>&1 &
		op=$!
		usleep $delay
		case $sc in
		2) victim=$wp ;;
		3)	# abort now and then: an aborted session held by the stopped watcher
			kill -STOP $wp 2>/dev/null
			pick abort finish finish; cmd=$w
			timeout 30 vmpf-ctl $cmd --pid $vmm > /dev/null 2>&1
			gone $vmm 10
			victim=$wp ;;
		*) victim=$vmm ;;
		esac
		phase $victim
		# scenario 4, every other time: kill as soon as the switch-over began
		if [ $sc = 4 ] && [ $((it / NSC % 2)) = 1 ]; then
			i=0
			while [ "$ph" = precopy ] && [ $i -lt 100 ]; do
				phase $vmm
				i=$((i + 1))
			done
		fi
	else
		pick --no-prefetch --sequential "--prefetch-rate 300" "--prefetch-rate 3000"; pf=$w
		vmpf-vm --restore $IMG $pf --seconds 3 > $t/vmm 2>&1 &
		vmm=$!
		wait_for $t/vmm restoring
		pick --pause "--run --rate 0"; cmd=$w
		rnd 1000
		if [ $sc = 5 ]; then
			(usleep $((r * 1000)); exec vmpf-ctl restore --pid $vmm $cmd) > $t/op 2>&1 &
			op=$!
			usleep $delay
			victim=$vmm
		else
			usleep $delay
			vmpf-ctl restore --pid $vmm $cmd > $t/op 2>&1 &
			op=$!
			usleep $((r * 100))		# vmpf-ctl takes 10-100 ms here
			victim=$op
		fi
		ph=$(vmpf-ctl restore --pid $vmm --json 2>/dev/null |
		     sed -n 's/^{"phase":"\([a-z]*\)","prefetching":\([a-z]*\).*/\1-prefetch-\2/p')
	fi
	kill -9 $victim 2>/dev/null
	wait $victim 2>/dev/null
	[ $victim = "$vmm" ] && who=vmm || who=ctl
	[ $sc -ge 5 ] && kind=restore || kind=migration
	echo "$kind $who ${ph:-gone}" >> $t/kills
	# Whatever else runs must end: a VMM that lost its helper by abort (it
	# keeps running after that), the helpers when the session is gone.
	if kill -0 $vmm 2>/dev/null; then
		[ $sc -le 4 ] && timeout 30 vmpf-ctl abort --pid $vmm > $t/abort 2>&1
		grep -q "found the session on look" $t/abort 2>/dev/null && relooks=$((relooks + 1))
		[ $sc -ge 5 ] && kill -9 $vmm 2>/dev/null
		gone $vmm 10 || {
			# What the abort said, and where the session is now.
			fail_it="VMM $vmm still running after abort: $(tail -n 3 $t/abort 2>/dev/null); now: $(vmpf-ctl status --pid $vmm 2>&1 | head -n 3)"
			kill -9 $vmm
		}
	fi
	for p in $wp $op; do
		gone $p 10 || { fail_it="vmpf-ctl $p still running after the VMM ended"; kill -9 $p; }
	done
	wait
	idle_again || fail_it="counters not back to idle: $v"
	taint_ok || fail_it="tainted $(cat /proc/sys/kernel/tainted)"
	it=$((it + 1))
	if [ -n "$fail_it" ]; then
		fail_it="iteration $it (scenario $sc, seed $SEED): $fail_it"
		break
	fi
done
secs=$(($(date +%s) - start))
s1=$(sunreclaim 1)
echo "# $it iterations in $secs s; vmpf-ctl abort found the session only on a second look $relooks times"
echo "# kills (what ran, who was killed, session phase just before):"
sort $t/kills | uniq -c | sed 's/^ */#   /'

# 2. Every iteration ended with the module idle and the kernel untainted.
if [ -z "$fail_it" ] && [ $it = $ITERS ]; then
	ok killed_sessions_go_away
else notok killed_sessions_go_away "$fail_it" "$(cat $t/vmm)" "$(cat $t/op 2>/dev/null)"; fi

# 3. Each kind of kill happened, in the phases the scenarios make sure of.
# (A kill in the finishing phase is counted above but not required: that
# window is tens of milliseconds, so it is hit most of the time, not always.)
if [ $ITERS -lt 14 ] || [ "$SCENARIOS" != "0 1 2 3 4 5 6" ]; then
	skip all_kinds_tried "fewer than 14 iterations, or not every scenario"
elif grep -q '^migration vmm attached' $t/kills && grep -q '^migration vmm precopy' $t/kills &&
     grep -q '^migration ctl committed\|^migration ctl aborted' $t/kills &&
     grep -q '^restore vmm running' $t/kills && grep -q '^restore ctl' $t/kills; then
	ok all_kinds_tried
else notok all_kinds_tried "a kind of kill is missing from the counts above"; fi

# 4. No slab growth beyond noise.  Measured here, SUnreclaim grows by 200-400
# KiB over the loop whether it runs 7 or 70 iterations: per-CPU slabs,
# lazily freed vmalloc areas (vmap_area), pids and /proc inodes.  2 MiB is
# five times that, and over 70 iterations it is ~30 KiB a kill: what a
# session that kept its VM alive (struct kvm's vCPUs, MMU pages) would
# leave.  Smaller leaks are for the module's counters above and kmemleak.
# Under KASAN (the debug-kernel lane) freed objects wait in its quarantine
# (measured: 2.2 MiB over the loop); kmemleak judges leaks there.
limit=2048
dmesg | grep -q KernelAddressSanitizer && limit=8192
echo "# SUnreclaim before the loop $s0 kB, after $s1 kB (limit $limit kB); grown most:"
slab_growth
if [ $((s1 - s0)) -lt $limit ]; then
	ok no_slab_growth
else notok no_slab_growth "SUnreclaim grew by $((s1 - s0)) kB over $it iterations"; fi

# 5. Two VMMs at once: a migration into $SRC while another VM restores
# lazily from $IMG; both sessions live together, both end verified.
vmpf-vm --ram 16M --vcpus 2 --working-set 2M --rate 3000 --seconds 0.1 --wait-request \
	--migrate-to $SRC --checksums $t/two > $t/o5a 2>&1 &
p1=$!
wait_for $t/o5a attached
vmpf-vm --restore $IMG --verify $t/img --seconds 1 --wait-complete --json > $t/o5b 2>&1 &
p2=$!
wait_for $t/o5b restoring
both=$(vmpf-ctl version --json 2>&1)
f=$(vmpf-ctl finish --pid $p1 2>&1); frc=$?
wait $p1; r1=$?
wait $p2; r2=$?
r=$(vmpf-vm --load-pagefile $SRC --verify $t/two --seconds 0.1 --json 2>&1); rrc=$?
if has "$both" '"sessions":2,' && [ $frc = 0 ] && [ $r1 = 0 ] && [ $r2 = 0 ] &&
   has "$(cat $t/o5b)" '"verified_pages_mismatched":0' && [ $rrc = 0 ] &&
   has "$r" '"verified_pages_mismatched":0' && idle_again; then
	ok two_sessions_at_once
else notok two_sessions_at_once "$both" "finish rc=$frc: $f" "source rc=$r1: $(cat $t/o5a)" \
	"restore rc=$r2: $(cat $t/o5b)" "eager restore rc=$rrc: $r" "$v"; fi

# 6. rmmod is refused while a source session or a restore lives, and
# changes nothing: both then end normally.
vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.1 --wait-request \
	--migrate-to $SRC --checksums $t/rm > $t/o6a 2>&1 &
p1=$!
wait_for $t/o6a attached
rmmod vmpagefile > $t/rm1 2>&1; rm1=$?
vmpf-ctl finish --pid $p1 > /dev/null 2>&1
wait $p1; r1=$?
vmpf-vm --restore $IMG --verify $t/img --seconds 1 --wait-complete --json > $t/o6b 2>&1 &
p2=$!
wait_for $t/o6b restoring
rmmod vmpagefile > $t/rm2 2>&1; rm2=$?
wait $p2; r2=$?
r=$(vmpf-vm --load-pagefile $SRC --verify $t/rm --seconds 0.1 2>&1); rrc=$?
if [ $rm1 != 0 ] && [ $rm2 != 0 ] && [ $r1 = 0 ] && [ $r2 = 0 ] && [ $rrc = 0 ] &&
   has "$(cat $t/o6b)" '"verified_pages_mismatched":0' && idle_again; then
	ok rmmod_refused_while_in_use
else notok rmmod_refused_while_in_use "rmmod rc=$rm1: $(cat $t/rm1)" "rmmod rc=$rm2: $(cat $t/rm2)" \
	"source rc=$r1: $(cat $t/o6a)" "restore rc=$r2: $(cat $t/o6b)" "eager restore rc=$rrc: $r" "$v"; fi

# 7. With every session gone, the module unloads and loads again cleanly,
# and works: a migration right after the reload restores verified.
if [ -z "$VMPF_MODULE" ]; then
	skip unload_reload "VMPF_MODULE not set"
else
	rmmod vmpagefile > $t/rm3 2>&1; rm3=$?
	nodev=0
	[ -e /dev/vmpagefile ] || nodev=1
	insmod $VMPF_MODULE > $t/ins 2>&1; ins=$?
	idle=$(vmpf-ctl version --json 2>&1)
	out=$(vmpf-vm --ram 16M --working-set 1M --rate 2000 --seconds 0.1 \
		--migrate-to $SRC --checksums $t/re 2>&1); rc=$?
	r=$(vmpf-vm --load-pagefile $SRC --verify $t/re --seconds 0.1 2>&1); rrc=$?
	if [ $rm3 = 0 ] && [ $nodev = 1 ] && [ $ins = 0 ] &&
	   has "$idle" "\"open_files\":1,\"sessions\":0,\"mem_bytes\":$mem0}" &&
	   [ $rc = 0 ] && [ $rrc = 0 ] && idle_again; then
		ok unload_reload
	else notok unload_reload "rmmod rc=$rm3: $(cat $t/rm3)" "node gone: $nodev" \
		"insmod rc=$ins: $(cat $t/ins)" "$idle" "migration rc=$rc: $out" "restore rc=$rrc: $r"; fi
fi

# 8. Nothing in the kernel log (a warning would have panicked the guest
# already: panic_on_warn; this catches BUG-less reports and lockdep).
new=$(dmesg | tail -n +$((dmesg0 + 1)) | grep -E 'BUG|WARNING|Call Trace|circular|refcount')
if [ -z "$new" ] && taint_ok; then
	ok kernel_log_clean
else notok kernel_log_clean "tainted $(cat /proc/sys/kernel/tainted)" "$new"; fi

rm -rf $t
[ $fails = 0 ]
