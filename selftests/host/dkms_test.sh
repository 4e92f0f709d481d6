#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# DKMS on the host: dkms add, then build and install for each kernel, check
# the installed module, and remove everything again.  Prints TAP.
# Usage: dkms_test.sh VERSION KVER...
# A vmpagefile already registered with DKMS on this machine is left alone
# (the tests are skipped, saying so).
set -u
ver=$1
shift
cd "$(dirname "$0")/../.."
n=0
tap() { # tap ok|fail|skip NAME [DETAIL]
	n=$((n + 1))
	case $1 in
	ok) echo "ok $n $2" ;;
	skip) echo "ok $n $2 # SKIP $3" ;;
	*) [ -n "${3:-}" ] && echo "$3" | tail -n 15 | sed 's/^/# /'
	   echo "not ok $n $2" ;;
	esac
}
echo "TAP version 13"
echo "1..$((1 + 3 * $# + 1))"

if ! command -v dkms >/dev/null; then
	for i in $(seq $((2 + 3 * $#))); do tap skip "dkms.step$i" "dkms not installed"; done
	exit 0
fi
if [ -n "$(dkms status vmpagefile 2>/dev/null)" ] || [ -e "/usr/src/vmpagefile-$ver" ]; then
	for i in $(seq $((2 + 3 * $#))); do
		tap skip "dkms.step$i" "vmpagefile is already registered with DKMS here; not touching it"
	done
	exit 0
fi

# The README's steps.
trap 'dkms remove "vmpagefile/$ver" --all >/dev/null 2>&1; rm -rf "/usr/src/vmpagefile-$ver"' EXIT
mkdir "/usr/src/vmpagefile-$ver"
cp -r Kbuild Makefile dkms.conf kernel uapi "/usr/src/vmpagefile-$ver/"

if out=$(dkms add "vmpagefile/$ver" 2>&1); then
	tap ok "dkms.add"
else
	tap fail "dkms.add" "$out"
fi
for k in "$@"; do
	if out=$(dkms build -k "$k" "vmpagefile/$ver" 2>&1); then
		tap ok "dkms.$k.build"
	else
		tap fail "dkms.$k.build" "$out$(cat /var/lib/dkms/vmpagefile/$ver/build/make.log 2>/dev/null)"
	fi
	if out=$(dkms install -k "$k" "vmpagefile/$ver" 2>&1); then
		tap ok "dkms.$k.install"
	else
		tap fail "dkms.$k.install" "$out"
	fi
	got=$(modinfo -k "$k" -F version vmpagefile 2>&1)
	if [ "$got" = "$ver" ]; then
		tap ok "dkms.$k.modinfo_finds_installed_module"
	else
		tap fail "dkms.$k.modinfo_finds_installed_module" "modinfo -k $k: '$got', want '$ver'"
	fi
done
if out=$(dkms remove "vmpagefile/$ver" --all 2>&1) &&
   ! ls /lib/modules/*/updates/dkms/vmpagefile.ko* >/dev/null 2>&1; then
	tap ok "dkms.remove"
else
	tap fail "dkms.remove" "$out"
fi
