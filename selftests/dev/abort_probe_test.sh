#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Developer probe, not part of make check (issue 14's investigation,
# session 6): does an aborted vmpf-ctl migrate make the source guest lock
# up more than plain QMP stop/cont cycles?  Modes: abort, stopcont.  Run:
#   selftests/run-some.sh 6.1.0-57-amd64 dev/abort_probe_test.sh \
#       PROBE_MODES=abort,stopcont,abort,stopcont
TAP_PREFIX=probe
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/qemu_vmm_lib.sh"
RAM=128 GUEST="dirtier_mb=32 no-steal-acc" PF=/dev/ram1 t=/tmp/ap
mkdir -p $t
qmp() { vmpf-ctl qmp --qmp "$1/qmp.sock" "$2" ${3:+"$3"} 2>&1; }
last_count() { tr -d '\r' < "$1/serial.log" | sed -n 's/^vmpf-count \([0-9]*\)$/\1/p' | tail -n 1; }
boot() {
	for _try in 1 2 3; do
		VQ_APPEND="$GUEST" vq_start "$1" "$RAM" -qmp "unix:$1/ctl.sock,server=on,wait=off"
		vq_wait_for "$1/serial.log" "^vmpf-count 5" 90 "$VQ_PID" && return 0
		echo "# boot hung: $(vq_where $1/qmp.sock)"; vq_stop "$1"
	done
	return 1
}
counts_on() {	# DIR: 0 if the count moves within 30 s
	c0=$(last_count $1); i=0
	while [ "$(last_count $1)" = "$c0" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
	[ "$(last_count $1)" != "$c0" ]
}
echo "TAP version 13"
for mode in $(echo "${PROBE_MODES:-abort,stopcont,abort,stopcont,abort,stopcont}" | tr , ' '); do
	A=$t/$mode; boot $A || { echo "# $mode: no boot"; continue; }
	pid=$VQ_PID; res=
	for k in 1 2 3; do
		case $mode in
		abort) vmpf-ctl migrate --qmp $A/ctl.sock $PF --manual > $t/out 2>&1 & m=$!
			sleep 3; kill -INT $m; wait $m ;;
		stopcont) for j in 1 2 3; do qmp $A stop >/dev/null; sleep 0.1; qmp $A cont >/dev/null; sleep 0.9; done ;;
		esac
		if counts_on $A; then res="$res ok"; else res="$res STUCK($(vq_where $A/qmp.sock))"; break; fi
	done
	echo "# RESULT $mode:$res"
	qmp $A quit >/dev/null; wait $pid
done
echo "1..1"
ok probe
