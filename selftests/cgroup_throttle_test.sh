#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vmpf-ctl --cgroup-throttle: a VMM that does not apply the session's
# throttle (vmpf-vm without --throttle) gets it through the cpu.max of its
# cgroup v2, which vmpf-ctl sets while the guest out-dirties the page file
# and puts back afterwards: after a commit, after an abort and after
# vmpf-ctl itself is killed with SIGKILL (its guardian process does it).
# A VMM in the root cgroup or sharing its cgroup is refused, untouched.
# Prints TAP (busybox sh).
TAP_PREFIX=cgroup
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..4"
CG=/sys/fs/cgroup
skip_all() {
	for i in 1 2 3 4; do echo "ok $i cgroup.case$i # SKIP $1"; done
	exit 0
}
if ! command -v dmsetup >/dev/null || ! dmsetup version >/dev/null 2>&1; then
	skip_all "no dmsetup or device-mapper here"
fi
grep -q " $CG cgroup2 " /proc/mounts || mount -t cgroup2 none $CG 2>/dev/null ||
	skip_all "no cgroup v2"
echo +cpu > $CG/cgroup.subtree_control 2>/dev/null || skip_all "no cpu controller"

t=$(mktemp -d)
# The same slow storage and fast guest as converge_test.sh.
echo "0 196608 delay /dev/ram0 0 20" | dmsetup create vmpf-slow
PF=/dev/mapper/vmpf-slow
GUEST="--ram 16M --vcpus 2 --working-set 8M --rate 8000 --seconds 0.3 --target-pages 1 --max-rounds 10000"
VCG=$CG/vmpf-vmm
mkdir $VCG
ORIG="150000 100000"	# the VMM's own limit, 1.5 CPUs: it must come back exactly

# start_vmm N: a VMM attached (not started) in its own cgroup; sets $pid.
start_vmm() {
	echo "$ORIG" > $VCG/cpu.max
	vmpf-vm $GUEST --no-start --wait-request --migrate-to $PF --checksums $t/s$1 \
		--json > $t/o$1 2>&1 &
	pid=$!
	wait_for $t/o$1 attached
	echo $pid > $VCG/cgroup.procs
}

# wait_throttled: until cpu.max is not $ORIG (30 s at most); sets $seen.
wait_throttled() {
	i=0
	seen=$(cat $VCG/cpu.max)
	while [ "$seen" = "$ORIG" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
		seen=$(cat $VCG/cpu.max)
	done
}

# A throttled cpu.max is a smaller quota over the same period.
throttled() {
	q=${1% *}
	[ "${1#* }" = 100000 ] && [ "$q" -ge 1000 ] 2>/dev/null && [ "$q" -lt 150000 ]
}

# 1. Commit: set while the guest out-dirties the storage, put back after.
# A second enforcer on the same cgroup is refused (it would take the
# throttled value for the original).
start_vmm 1
vmpf-ctl start --pid $pid --cgroup-throttle > $t/c1 2>&1 &
cpid=$!
wait_throttled
second=$(vmpf-ctl status --pid $pid --cgroup-throttle 2>&1); src2=$?
vmpf-ctl finish --pid $pid > $t/f1 2>&1
wait $cpid; crc=$?
wait $pid; rc=$?
after=$(cat $VCG/cpu.max)
out=$(cat $t/o1); c1=$(cat $t/c1)
r=$(vmpf-vm --load-pagefile $PF --verify $t/s1 --seconds 0.1 --json 2>&1); vrc=$?
if throttled "$seen" && [ "$after" = "$ORIG" ] && [ $crc = 0 ] &&
   [ $src2 = 1 ] && has "$second" "another vmpf-ctl already enforces" &&
   has "$c1" "cpu.max    '$seen'" && has "$c1" "put back" && [ $rc = 0 ] &&
   has "$out" '"committed":true' && has "$out" '"throttle_max":0' && [ $vrc = 0 ] &&
   has "$r" '"verified_pages_mismatched":0'; then
	ok set_then_restored_after_commit
else notok set_then_restored_after_commit "seen '$seen' after '$after'" "ctl rc=$crc: $c1" \
	"second rc=$src2: $second" \
	"rc=$rc" "$out" "verify rc=$vrc" "$r"; fi
echo "# cpu.max '$ORIG' -> '$seen' during pre-copy -> '$after'"

# 2. Abort: put back, vmpf-ctl says the migration did not commit.
start_vmm 2
vmpf-ctl start --pid $pid --cgroup-throttle > $t/c2 2>&1 &
cpid=$!
wait_throttled
vmpf-ctl abort --pid $pid > /dev/null 2>&1
wait $cpid; crc=$?
wait $pid; rc=$?
after=$(cat $VCG/cpu.max)
c2=$(cat $t/c2)
if throttled "$seen" && [ "$after" = "$ORIG" ] && [ $crc = 1 ] &&
   has "$c2" "did not commit" && [ $rc = 1 ]; then
	ok restored_after_abort
else notok restored_after_abort "seen '$seen' after '$after'" "ctl rc=$crc: $c2" "rc=$rc"; fi

# 3. SIGKILL of vmpf-ctl: its guardian puts cpu.max back; the migration
# itself goes on (vmpf-ctl was only watching).
start_vmm 3
vmpf-ctl start --pid $pid --cgroup-throttle > $t/c3 2>&1 &
cpid=$!
wait_throttled
kill -9 $cpid
wait $cpid 2>/dev/null
i=0
while [ "$(cat $VCG/cpu.max)" != "$ORIG" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
after=$(cat $VCG/cpu.max)
st=$(vmpf-ctl status --pid $pid --json 2>&1)
vmpf-ctl abort --pid $pid > /dev/null 2>&1
wait $pid
if throttled "$seen" && [ "$after" = "$ORIG" ] && has "$st" '"phase":"precopy"'; then
	ok restored_after_sigkill
else notok restored_after_sigkill "seen '$seen' after '$after'" "$st"; fi

# 4. Refused, with nothing started or changed: a VMM in the root cgroup,
# and one sharing its cgroup with another process.
vmpf-vm $GUEST --no-start --wait-request --migrate-to $PF --json > $t/o4 2>&1 &
pid=$!
wait_for $t/o4 attached
root=$(vmpf-ctl start --pid $pid --cgroup-throttle 2>&1); rrc=$?
echo "$ORIG" > $VCG/cpu.max
echo $pid > $VCG/cgroup.procs
sleep 100 &
other=$!
echo $other > $VCG/cgroup.procs
shared=$(vmpf-ctl start --pid $pid --cgroup-throttle 2>&1); src=$?
st=$(vmpf-ctl status --pid $pid --json 2>&1)
kill $other
vmpf-ctl abort --pid $pid > /dev/null 2>&1
wait $pid
if [ $rrc = 1 ] && has "$root" "root cgroup" && [ $src = 1 ] &&
   has "$shared" "also holds process $other" && has "$st" '"phase":"attached"' &&
   [ "$(cat $VCG/cpu.max)" = "$ORIG" ]; then
	ok refuses_root_and_shared_cgroup
else notok refuses_root_and_shared_cgroup "rc=$rrc: $root" "rc=$src: $shared" "$st"; fi
wait $other 2>/dev/null

rmdir $VCG
dmsetup remove vmpf-slow
rm -rf $t
[ $fails = 0 ]
