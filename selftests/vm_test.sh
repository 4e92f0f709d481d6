#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vmpf-vm, the reference VMM, inside the test guest: it runs its guest code,
# pauses, saves and restores, and catches corrupted RAM.  Prints TAP.
TAP_PREFIX=vm
. "$(dirname "$0")/tap.sh"
t=$(mktemp -d)

echo "TAP version 13"
echo "1..7"

out=$(vmpf-vm --ram 16M --vcpus 2 --working-set 1M --seconds 0.5 --json \
	--checksums $t/sums 2>&1); rc=$?
stores=$(num "$out" stores)
if [ $rc = 0 ] && [ "${stores:-0}" -gt 0 ] && [ "$(num "$out" pattern_errors)" = 0 ] &&
   [ "$(num "$out" working_set_pages)" = 256 ]; then ok dirty_guest_runs
else notok dirty_guest_runs "rc=$rc" "$out"; fi

# 16 MiB = 4096 pages; the 256-page working set and the boot area differ from zero.
zsum=$(vmpf-vm --ram 1M --idle --seconds 0 --checksums - 2>/dev/null |
	grep '^0x100000000 ' | cut -d' ' -f2)
zero=$(grep -c " $zsum\$" $t/sums)
if [ "$(wc -l < $t/sums)" = 4096 ] && [ "$zero" -ge 3700 ] && [ "$zero" -le 3840 ]; then
	ok checksums_cover_all_pages
else notok checksums_cover_all_pages "lines=$(wc -l < $t/sums) zero=$zero"; fi

out=$(vmpf-vm --ram 8M --idle --seconds 0.3 --json 2>&1); rc=$?
if [ $rc = 0 ] && [ "$(num "$out" stores)" = 0 ]; then ok idle_guest_stores_nothing
else notok idle_guest_stores_nothing "rc=$rc" "$out"; fi

out=$(vmpf-vm --ram 8M --vcpus 2 --rate 2000 --seconds 0.5 --save-state $t/st \
	--save-ram $t/ram --checksums $t/sums2 --json 2>&1); rc=$?
if [ $rc = 0 ] && [ -s $t/st ] && [ "$(stat -c %s $t/ram)" = 8388608 ]; then ok save
else notok save "rc=$rc" "$out"; fi

out=$(vmpf-vm --load-state $t/st --load-ram $t/ram --verify $t/sums2 --seconds 0.5 --json 2>&1); rc=$?
if [ $rc = 0 ] && [ "$(num "$out" stores)" -gt 0 ] &&
   [ "$(num "$out" verified_pages_mismatched)" = 0 ] &&
   [ "$(num "$out" vcpus)" = 2 ] && [ "$(num "$out" pattern_errors)" = 0 ]; then
	ok restore_verifies_and_resumes
else notok restore_verifies_and_resumes "rc=$rc" "$out"; fi

# Flip one byte of a working-set page (page 0x40, right after the boot area).
printf '\377' | dd of=$t/ram bs=1 seek=$((0x40 * 4096 + 100)) conv=notrunc 2>/dev/null
out=$(vmpf-vm --load-state $t/st --load-ram $t/ram --verify $t/sums2 --seconds 0 2>&1); rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q "1 pages differ.*first: page 0x40000"; then
	ok corrupted_ram_detected
else notok corrupted_ram_detected "rc=$rc" "$out"; fi

out=$(vmpf-vm --vcpus 9 2>&1); rc=$?
if [ $rc = 2 ] && echo "$out" | grep -q "vcpus takes 1 to 4"; then ok bad_arguments
else notok bad_arguments "rc=$rc" "$out"; fi

rm -rf $t
[ $fails = 0 ]
