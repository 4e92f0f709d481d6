#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Developer probe, not part of make check (issue 14's investigation,
# session 6): does a restored inner guest stall or crash after cont more
# often through vmpagefile than through QEMU's own migration?  Modes
# (PROBE_MODES, commas): vmpf, vmpf_dump, plain, plain_dump, plainsc,
# plainsc_dump (_dump: QMP pmemsave before cont; plainsc: ten short QMP
# stop/cont pauses a second apart before a plain migration, as vmpf-ctl's
# soft-dirty scans make; live, live_dump: QEMU's own live migration, its
# pre-copy under KVM dirty logging as vmpagefile's).  A hung guest's vCPU is sampled (RIP, symbol) and
# sent an NMI (unknown_nmi_panic) for a backtrace.  Run:
#   selftests/run-some.sh 6.12.117+deb12-amd64 dev/stall_probe_test.sh \
#       PROBE_MODES=vmpf,plain,vmpf_dump [VMPF_KVM_AMD_PARAMS=vls=0]
TAP_PREFIX=probe
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/qemu_vmm_lib.sh"
RAM=128
GUEST="dirtier_mb=32 no-steal-acc unknown_nmi_panic=1"
PF=/dev/ram1
t=/tmp/probe
mkdir -p $t
now() { cut -d' ' -f1 /proc/uptime; }
qmp() { vmpf-ctl qmp --qmp "$1/qmp.sock" "$2" ${3:+"$3"} 2>&1; }
last_count() { tr -d '\r' < "$1/serial.log" | sed -n 's/^vmpf-count \([0-9]*\)$/\1/p' | tail -n 1; }
src_start() {
	for _try in 1 2 3; do
		VQ_APPEND="$GUEST" vq_start "$1" "$RAM" -qmp "unix:$1/ctl.sock,server=on,wait=off"
		sleep 0.5
		vq_wait_for "$1/serial.log" "^vmpf-count 5" 90 "$VQ_PID" && return 0
		echo "# boot hung: $(tr -d '\r' < "$1/serial.log" | tail -n 3 | tr '\n' '|') loadavg $(cat /proc/loadavg)"
		for _r in 1 2 3; do
			rip=$(qmp "$1" human-monitor-command '{"command-line": "info registers"}' | grep -o 'RIP=[0-9a-f]*' | head -n 1 | cut -d= -f2)
			echo "# RIP $rip $(sym $rip)"; sleep 1; done
		qmp "$1" query-status
		qmp "$1" inject-nmi; sleep 5
		echo "# serial after NMI:"; tr -d '\r' < "$1/serial.log" | tail -n 45 | sed 's/^/#   /'
		vq_stop "$1"
	done
	return 1
}
# sym RIP: the inner kernel's symbol (nokaslr; the same kernel build runs here)
sym() {
	_t=$(grep ' _text$' /proc/kallsyms | cut -d' ' -f1)
	_x=$(printf '%016x' $(( 0x$_t + 0x$1 - 0xffffffff81000000 )))
	sort /proc/kallsyms | awk -v x=$_x '$1 <= x { s = $3; a = $1 } END { print s, a }'
}
S=$t/src D=$t/dst
echo "TAP version 13"
trial() {
	mode=$1
	src_start $S || { echo "# $mode: no boot"; return; }
	spid=$VQ_PID
	mkdir -p $D; rm -f $D/serial.log $D/qmp.sock
	eval "set -- $(VQ_APPEND="$GUEST" vq_guest_args "$RAM")"
	t0=$(now)
	case $mode in
	plainsc*)
		# What vmpf-ctl migrate's soft-dirty scans do to QEMU: a short
		# pause about once a second, ten times, then a plain migration.
		for _c in 1 2 3 4 5 6 7 8 9 10; do
			qmp $S stop >/dev/null; sleep 0.06; qmp $S cont >/dev/null; sleep 1
		done ;;
	esac
	case $mode in
	plain*|live*)
		# live: QEMU's own live migration, pre-copy with KVM's dirty
		# logging while the guest runs, as vmpagefile's.
		case $mode in plain*) qmp $S stop >/dev/null ;; esac
		qmp $S migrate '{"uri": "exec:cat > /tmp/probe/state"}' > /dev/null
		while ! qmp $S query-migrate | grep -q '"completed"\|"failed"'; do sleep 0.2; done
		stopped=$(last_count $S)
		$VQ_QEMU "$@" -S -incoming "exec:cat /tmp/probe/state" -serial file:$D/serial.log \
			-qmp unix:$D/qmp.sock,server=on,wait=off > $D/restore.out 2>&1 &
		rpid=$!
		i=0; while [ ! -S $D/qmp.sock ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
		while ! qmp $D query-migrate | grep -q '"completed"\|"failed"'; do sleep 0.2; done
		;;
	vmpf*)
		vmpf-ctl migrate --qmp $S/ctl.sock $PF > $t/mig.out 2>&1
		stopped=$(last_count $S)
		vmpf-ctl restore --qemu $PF -- $VQ_QEMU "$@" -S -serial file:$D/serial.log \
			-qmp unix:$D/qmp.sock,server=on,wait=off > $D/restore.out 2>&1 &
		rpid=$!
		vq_wait_for $D/restore.out "^resumed\|vmpf-ctl:" 60 $rpid
		;;
	esac
	case $mode in *dump) rm -f $t/d.mem; qmp $D pmemsave "{\"val\": 0, \"size\": $((RAM << 20)), \"filename\": \"$t/d.mem\"}" >/dev/null; rm -f $t/d.mem ;; esac
	case $mode in *wait) sleep 20 ;; esac
	t1=$(now)
	qmp $D cont > /dev/null
	vq_wait_for $D/serial.log "^vmpf-count" 60
	t2=$(now)
	sleep 15
	n=$(grep -c '^vmpf-count' $D/serial.log)
	first=$(tr -d '\r' < $D/serial.log | sed -n 's/^vmpf-count \([0-9]*\)$/\1/p' | head -n 1)
	echo "# RESULT $mode stopped=$stopped first=${first:-none} lines15s=$n gap=$(echo "$t0 $t1" | awk '{print $2-$1}') tofirst=$(echo "$t1 $t2" | awk '{print $2-$1}') $(tr -d '\r' < $D/serial.log | grep -a -c 'BUG\|Oops\|panic') oops"
	tr -d '\r' < $D/serial.log | grep -a -B3 -A25 'BUG\|Oops\|panic' | head -n 60 | sed 's/^/#   /'
	[ -z "$first" ] && { echo "# dst serial:"; tr -d '\r' < $D/serial.log | tail -n 5; qmp $D query-status; for _r in 1 2 3; do
			rip=$(qmp $D human-monitor-command '{"command-line": "info registers"}' | grep -o 'RIP=[0-9a-f]*' | head -n 1 | cut -d= -f2)
			echo "# RIP $rip $(sym $rip)"; sleep 1; done
		qmp $D inject-nmi; sleep 5
		echo "# serial after NMI:"; tr -d '\r' < $D/serial.log | tail -n 45 | sed 's/^/#   /'; }
	qmp $D quit >/dev/null; wait $rpid
	qmp $S quit >/dev/null; wait $spid
}
for m in $(echo "${PROBE_MODES:-plain vmpf vmpf_dump plain_dump}" | tr , " "); do trial $m; done
echo "1..1"
ok probe
