#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vmpf-ctl against the loaded module, inside the test guest (busybox sh).
# Prints TAP.  Leaves the module loaded.
mod=${VMPF_MODULE:-/lib/modules/vmpagefile.ko}
TAP_PREFIX=ctl
. "$(dirname "$0")/tap.sh"

echo "TAP version 13"
echo "1..4"
want=$(cat /sys/module/vmpagefile/version)

out=$(vmpf-ctl version 2>&1); rc=$?
if [ $rc = 0 ] && echo "$out" | grep -q "^module   $want (API 1)$"; then ok version_shows_module
else notok version_shows_module "rc=$rc" "$out"; fi

out=$(vmpf-ctl version --json 2>&1); rc=$?
if [ $rc = 0 ] && echo "$out" | grep -q "\"module\":{\"version\":\"$want\",\"api\":1,"; then ok version_json
else notok version_json "rc=$rc" "$out"; fi

# Module loaded, node missing (e.g. no devtmpfs): say so, do not guess.
rm -f /dev/vmpagefile
out=$(vmpf-ctl version 2>&1 >/dev/null); rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q "does not exist although the vmpagefile module is loaded"; then
	ok node_missing_sentence
else notok node_missing_sentence "rc=$rc" "$out"; fi

# Reloading the module brings the node back.
rmmod vmpagefile
out=$(vmpf-ctl version 2>&1 >/dev/null); rc=$?
insmod "$mod"
if [ $rc = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "module is not loaded"; then
	ok module_unloaded_sentence
else notok module_unloaded_sentence "rc=$rc" "$out"; fi

[ $fails = 0 ]
