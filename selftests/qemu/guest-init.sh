#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# /init of the test initramfs.  Loads kvm, kvm-amd and the module under test,
# runs every /bin/*_test program, and reports on the second serial port
# (/dev/ttyS1), which the host reads:
#   VMPF-CHECK ok|fail NAME      one check made by this script
#   VMPF-BEGIN NAME ... VMPF-END NAME RC   a test program's TAP output
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
	*) params= ;;
	esac
	check "insmod $m" insmod /lib/modules/$m.ko $params
done
check "/dev/kvm present" test -c /dev/kvm
check "insmod vmpagefile" insmod /lib/modules/vmpagefile.ko
check "load message logged" sh -c 'dmesg | grep -q "vmpagefile: version .* loaded"'

export VMPF_MODULE=/lib/modules/vmpagefile.ko
# make bench: vmpf_bench=MIB,REPS,FAULTS on the kernel command line.
bench=$(sed -n 's/.*vmpf_bench=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$bench" ]; then
	set -- $(echo "$bench" | tr ',' ' ')
	vmpf-bench /dev/vda "$1" "$2" "$3" > $R 2>&1
	rc=$?
	# Switch-over against guest size: the same dirtying working set in a
	# 64 MiB guest and a 4x larger one; pause-to-commit should not grow.
	# (Guests up to the page file's size: none in the short run.)
	for mib in 64 256; do
		[ "$mib" -le "$1" ] || continue
		out=$(vmpf-vm --ram ${mib}M --vcpus 2 --working-set 4M --rate 4000 --seconds 0.5 \
			--migrate-to /dev/vda --json 2>&1)
		if ! echo "$out" | grep -q '"committed":true'; then
			echo "$out" | sed 's/^/# /' > $R
			rc=1
			continue
		fi
		sw=$(echo "$out" | sed -n 's/.*"switchover_ns":\([0-9]*\).*/\1/p')
		fin=$(echo "$out" | sed -n 's/.*"final_pages":\([0-9]*\).*/\1/p')
		say "BENCH-SWITCHOVER mib=$mib switchover_ns=$sw final_pages=$fin"
	done
	# A guest that is 90 % zero pages: what pre-copy writes.
	if [ "$1" -ge 64 ]; then
		out=$(vmpf-vm --ram 64M --working-set 6553K --rate 4000 --seconds 0.3 \
			--migrate-to /dev/vda --json 2>&1)
		r0=$(echo "$out" | sed -n 's/.*{"round":0,"dirty":\([0-9]*\),"written":\([0-9]*\),"zero":\([0-9]*\)}.*/\1 \2 \3/p')
		say "BENCH-ZERO round0=${r0:-none} bytes_written=$(echo "$out" | sed -n 's/.*"bytes_written":\([0-9]*\).*/\1/p') ram_bytes=67108864"
	fi
	say "VMPF-BENCH-END $rc"
	say "VMPF-DONE"
	sync
	poweroff -f
fi
# The two-host demo: vmpf_demo=source|dest,RAM on the kernel command line.
demo=$(sed -n 's/.*vmpf_demo=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$demo" ]; then
	/bin/demo-role.sh "${demo%,*}" "${demo#*,}"
	say "VMPF-DONE"
	sync
	poweroff -f
fi
for t in /bin/*_test /bin/*_test.sh; do
	[ -x "$t" ] || continue
	name=${t##*/}
	say "VMPF-BEGIN $name"
	"$t" > $R 2>&1
	say "VMPF-END $name $?"
done

# Bits W (warning), D (oops), B (bad page), L (soft lockup).
check "kernel not tainted by a warning or oops" \
	sh -c '[ $(( $(cat /proc/sys/kernel/tainted) & (512 | 128 | 32 | 16384) )) -eq 0 ]'
check "rmmod vmpagefile at the end" rmmod vmpagefile
check "no /dev/vmpagefile after rmmod" sh -c '! test -e /dev/vmpagefile'
say "VMPF-DONE"
sync
poweroff -f
