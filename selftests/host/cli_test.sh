#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The vmpf-ctl binary on the host, where the module is not loaded: help,
# usage errors and the missing-module sentence, with their exit codes.
# Usage: cli_test.sh PATH/TO/vmpf-ctl      (prints TAP)
ctl=${1:?usage: cli_test.sh VMPF_CTL}
n=0
t() { # t NAME EXPECTED_RC STDOUT_REGEX STDERR_REGEX -- ARGS...
	local name=$1 want=$2 outre=$3 errre=$4 rc out err
	shift 5
	n=$((n + 1))
	out=$("$ctl" "$@" 2>/tmp/cli_test.err); rc=$?
	err=$(cat /tmp/cli_test.err)
	if [ "$rc" = "$want" ] && echo "$out" | grep -Eq -- "$outre" &&
	   echo "$err" | grep -Eq -- "$errre" &&
	   [ "$(echo "$err" | grep -c .)" -le 1 ]; then
		echo "ok $n cli.$name"
	else
		echo "# rc=$rc (want $want)"
		echo "$out" | sed 's/^/# stdout: /'
		echo "$err" | sed 's/^/# stderr: /'
		echo "not ok $n cli.$name"
	fi
}
echo "TAP version 13"
echo "1..16"
t help 0 'Usage: vmpf-ctl \[OPTIONS\]' '^$' -- --help
t help_version 0 'Usage: vmpf-ctl version' '^$' -- help version
t version_dash_help 0 'Usage: vmpf-ctl version' '^$' -- version --help
t no_command 2 '^$' "^vmpf-ctl: no command given; see 'vmpf-ctl --help'$" --
t unknown_command 2 '^$' "unknown command 'start-the-thing'" -- start-the-thing
t when_ready_not_finish 2 '^$' 'when-ready is for finish only' -- status --when-ready --pid 1
t help_finish_when_ready 0 'finish --pid PID \[--fd N\] \[--when-ready\]' '^$' -- help finish
t history_not_start 2 '^$' 'history is for start only' -- status --history /dev/null --pid 1
t history_without_path 2 '^$' "option '--history' needs a PAGEFILE" -- start --pid 1 --history
t cgroup_throttle_not_finish 2 '^$' 'cgroup-throttle is for start and status only' -- finish --cgroup-throttle --pid 1
t help_start_history 0 'start --pid PID \[--fd N\] \[--history PAGEFILE\] \[--cgroup-throttle\]' '^$' -- help start
t unknown_option 2 '^$' "unknown option '--bogus'" -- version --bogus
t device_without_path 2 '^$' 'needs a device path' -- version --device
if [ -e /sys/module/vmpagefile ]; then
	n=$((n + 1))
	echo "ok $n cli.version_module_missing # SKIP the module is loaded on this host"
else
	t version_module_missing 1 '^vmpf-ctl [0-9.]+ \(API 1\)$' \
		'^vmpf-ctl: the vmpagefile kernel module is not loaded' -- version
fi
# /dev/null opens but is not our device: the ioctl is refused with ENOTTY.
t version_not_our_device 1 '^vmpf-ctl ' 'does not know this request' -- version -d /dev/null
t version_json_no_module 1 '^\{"tool":\{"version":"[0-9.]+","api":1\}\}$' '.' -- version --json -d /nonexistent/vmpagefile
rm -f /tmp/cli_test.err
