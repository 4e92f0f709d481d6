#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# /init of the test initramfs.  Loads kvm, kvm-amd and the module under test,
# runs every /bin/*_test program, and reports on the second serial port
# (/dev/ttyS1), which the host reads:
#   VMPF-CHECK ok|fail NAME      one check made by this script
#   VMPF-BEGIN NAME ... VMPF-END NAME RC   a test program's TAP output
#   # time NAME N s              how long (seconds) a test program took
#   VMPF-DONE                    the run completed
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /bin
export PATH=/bin
# No udev in here: let libdevmapper make its /dev/mapper nodes itself.
export DM_DISABLE_UDEV=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

R=/dev/ttyS1
stty -F $R raw -echo 2>/dev/null
say() { echo "$*" > $R; }
check() {
	name=$1
	shift
	if "$@" > /tmp/check.out 2>&1; then
		say "VMPF-CHECK ok $name"
	else
		say "VMPF-CHECK fail $name"
		sed 's/^/# /' /tmp/check.out > $R
	fi
}

say "# guest kernel $(uname -r)"
for m in $(cat /lib/modules/load.order); do
	case $m in
	brd) params="rd_nr=2 rd_size=262144" ;;	# /dev/ram0, /dev/ram1: 256 MiB each
	kvm) params=${VMPF_KVM_PARAMS:-} ;;		# e.g. VMPF_KVM_PARAMS=tdp_mmu=0
	kvm-amd) params=${VMPF_KVM_AMD_PARAMS:-} ;;
	*) params= ;;
	esac
	check "insmod $m" insmod /lib/modules/$m.ko $params
done
check "/dev/kvm present" test -c /dev/kvm
# The host's root, read-only, when run-guest.sh shares it and the kernel
# has 9p (qemu_vmm_lib.sh runs the host's QEMU from there).  Optional.
mkdir -p /host
if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host 2>/tmp/host.err; then
	say "# /host: the host's root, read-only"
else
	say "# /host: not mounted $(cat /tmp/host.err 2>/dev/null)"
	rmdir /host
fi
check "insmod vmpagefile" insmod /lib/modules/vmpagefile.ko
check "load message logged" sh -c 'dmesg | grep -q "vmpagefile: version .* loaded"'

export VMPF_MODULE=/lib/modules/vmpagefile.ko
# make bench: vmpf_bench=MIB,REPS,FAULTS,SWMAX,AMIB on the kernel command line.
bench=$(sed -n 's/.*vmpf_bench=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$bench" ]; then
	/bin/bench-guest.sh $(echo "$bench" | tr ',' ' ') > $R 2>&1
	say "VMPF-DONE"
	sync
	poweroff -f
fi
# The two-host demo: vmpf_demo=ROLE,RAM,STORAGE on the kernel command line.
demo=$(sed -n 's/.*vmpf_demo=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$demo" ]; then
	# shellcheck disable=SC2046
	/bin/demo-role.sh $(echo "$demo" | tr , ' ')
	say "VMPF-DONE"
	sync
	poweroff -f
fi
# vmpf_only=A,B runs only those tests, vmpf_except=A,B all but those
# (check.sh's two lanes: QEMU as the VMM in a one-CPU test machine).
# vmpf_test_timeout=N: a test still running after N seconds (default 900;
# 0: no limit) is stopped: first what every process waits on goes to the
# result log (wchan, kernel stack), then the VMMs it started and the test
# are killed, and the run goes on with the next test.
tmo=$(sed -n 's/.*vmpf_test_timeout=\([0-9]*\).*/\1/p' /proc/cmdline)
tmo=${tmo:-900}
watchdog() {
	sleep "$1"
	say "# $2: still running after $1 s; the processes, then what each waits on:"
	ps -o pid,stat,args 2>&1 | grep -v ' \[' | sed 's/^/#   /' > $R
	# User processes only: a hung kernel thread would have panicked.
	for p in $(ps -o pid,args | awk 'NR > 1 && $2 !~ /^\[/ { print $1 }'); do
		say "#   $p $(cat /proc/$p/comm 2>/dev/null) waits in $(cat /proc/$p/wchan 2>/dev/null):"
		sed 's/^/#     /' /proc/$p/stack 2>/dev/null | head -n 10 > $R
	done
	pkill -9 -f qemu-system-x86_64
	pkill -9 vmpf-ctl
	pkill -9 vmpf-vm
	kill -9 "$3"
}
only=$(sed -n 's/.*vmpf_only=\([^ ]*\).*/\1/p' /proc/cmdline)
except=$(sed -n 's/.*vmpf_except=\([^ ]*\).*/\1/p' /proc/cmdline)
for t in /bin/*_test /bin/*_test.sh; do
	[ -x "$t" ] || continue
	name=${t##*/}
	[ -n "$only" ] && ! echo ",$only," | grep -q ",$name,"  && continue
	[ -n "$except" ] && echo ",$except," | grep -q ",$name," && continue
	say "VMPF-BEGIN $name"
	t0=$(cut -d' ' -f1 /proc/uptime)
	# In the background for the watchdog: a non-interactive shell starts
	# it with SIGINT and SIGQUIT ignored, and so its children, unless they
	# set handlers of their own (vmpf-ctl and vmpf-vm do): a test that
	# means to stop a program with SIGINT must know that.
	"$t" > $R 2>&1 &
	tpid=$!
	wd=
	if [ "$tmo" -gt 0 ]; then
		watchdog "$tmo" "$name" "$tpid" &
		wd=$!
	fi
	wait "$tpid"
	rc=$?
	[ -n "$wd" ] && kill "$wd" 2>/dev/null
	say "VMPF-END $name $rc"
	say "# time $name $(echo "$t0 $(cut -d' ' -f1 /proc/uptime)" | awk '{ printf "%.0f", $2 - $1 }') s"
done

# Bits W (warning), D (oops), B (bad page), L (soft lockup).
check "kernel not tainted by a warning or oops" \
	sh -c '[ $(( $(cat /proc/sys/kernel/tainted) & (512 | 128 | 32 | 16384) )) -eq 0 ]'
check "rmmod vmpagefile at the end" rmmod vmpagefile
check "no /dev/vmpagefile after rmmod" sh -c '! test -e /dev/vmpagefile'
# vmpf_kmemleak=1 (the debug-kernel lane): kmemleak's verdict, after rmmod so
# that what only the module's data pointed to counts.  Two scans apart, as
# the kmemleak docs advise: young objects are not reported.  A scan fails
# (EPERM) if kmemleak turned itself off: that fails the check too.
if grep -q 'vmpf_kmemleak=1' /proc/cmdline; then
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	check "kmemleak: no unreferenced objects" sh -c 'K=/sys/kernel/debug/kmemleak
		echo scan > $K && sleep 6 && echo scan > $K && cat $K > /tmp/leaks &&
		head -n 300 /tmp/leaks && ! test -s /tmp/leaks'
fi
say "VMPF-DONE"
sync
poweroff -f
