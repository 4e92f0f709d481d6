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
echo "1..37"
t help 0 'Usage: vmpf-ctl \[OPTIONS\]' '^$' -- --help
t help_version 0 'Usage: vmpf-ctl version' '^$' -- help version
t version_dash_help 0 'Usage: vmpf-ctl version' '^$' -- version --help
t no_command 2 '^$' "^vmpf-ctl: no command given; see 'vmpf-ctl --help'$" --
t unknown_command 2 '^$' "unknown command 'start-the-thing'" -- start-the-thing
t when_ready_not_finish 2 '^$' 'when-ready is for finish only' -- status --when-ready --pid 1
t help_finish_when_ready 0 'finish --pid PID \[--fd N\] \[--when-ready\]' '^$' -- help finish
t history_not_start 2 '^$' 'history is for start only' -- status --history /dev/null --pid 1
t history_without_path 2 '^$' "option '--history' needs a PAGEFILE" -- start --pid 1 --history
t revoke_without_path 2 '^$' 'revoke needs a PAGEFILE' -- revoke
t revoke_not_a_page_file 1 '^$' 'holds no committed image: nothing to revoke' -- revoke /dev/null
t force_not_for_status 2 '^$' 'force for it and revoke' -- status --force --pid 1
t no_lease_not_for_revoke 2 '^$' 'no-lease are for restore --qemu only' -- revoke --no-lease /dev/null
t huge_not_plain_restore 2 '^$' 'huge and --no-lease are for restore --qemu only' -- restore --pid 1 --huge
t help_restore_huge 0 'restore --qemu PAGEFILE .*\[--huge\]' '^$' -- help restore
t disks_to_not_status 2 '^$' 'disks-to is for migrate and restore --qemu only' -- status --pid 1 --disks-to /tmp
t disks_to_not_plain_restore 2 '^$' 'disks-to is for migrate and restore --qemu only' -- restore --pid 1 --disks-to /tmp
t disks_to_without_dir 2 '^$' "option '--disks-to' needs a directory" -- migrate --qmp /x /y --disks-to
t help_migrate_disks 0 'migrate --qmp SOCKET PAGEFILE .*\[--disks-to DIR\]' '^$' -- help migrate
t cgroup_throttle_not_finish 2 '^$' 'cgroup-throttle is for start, status and migrate only' -- finish --cgroup-throttle --pid 1
t migrate_without_qmp 2 '^$' 'migrate needs --qmp SOCKET and a PAGEFILE' -- migrate /tmp/pf
t migrate_without_pagefile 2 '^$' 'migrate needs --qmp SOCKET and a PAGEFILE' -- migrate --qmp /tmp/s
t migrate_bad_downtime 2 '^$' "'0' is not a valid downtime" -- migrate --qmp /tmp/s /tmp/pf --downtime 0
t downtime_not_status 2 '^$' 'downtime and --manual are for migrate only' -- status --pid 1 --downtime 5
t migrate_no_qemu 1 '^$' "cannot connect to QEMU's QMP socket /nonexistent/q.sock" -- migrate --qmp /nonexistent/q.sock /tmp/pf
t qmp_without_command 2 '^$' 'qmp needs --qmp SOCKET and a COMMAND' -- qmp --qmp /tmp/s
t restore_qemu_without_cmdline 2 '^$' "restore --qemu needs the QEMU command line after '--'" -- restore --qemu /tmp/pf
t restore_qemu_and_pid 2 '^$' 'restore takes --pid \(a running restore\) or --qemu' -- restore --qemu /tmp/pf --pid 1 -- qemu
t restore_qemu_no_backend 1 '^$' 'must name its RAM backend' -- restore --qemu /tmp/pf -- qemu-system-x86_64 -m 128
t restore_qemu_backend_missing 1 '^$' "names RAM backend 'ram0' but no -object" -- restore --qemu /tmp/pf -- qemu-system-x86_64 -machine memory-backend=ram0
t help_migrate 0 'vmpf-ctl migrate --qmp SOCKET PAGEFILE' '^$' -- help migrate
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
