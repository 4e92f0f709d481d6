# SPDX-License-Identifier: GPL-2.0
# Shared by the guest's shell tests (busybox sh): TAP results and helpers.
# A test sets TAP_PREFIX, sources this file from its own directory, prints
# its plan, and ends with "[ $fails = 0 ]".
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n $TAP_PREFIX.$1"; }
skip() { n=$((n + 1)); echo "ok $n $TAP_PREFIX.$1 # SKIP $2"; }
# Details first, as kselftest does: the host reads them as the failure's.
notok() {
	name=$1
	shift
	for l in "$@"; do echo "$l" | sed 's/^/# /'; done
	n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n $TAP_PREFIX.$name"
}
# under_kasan: the debug lane's kernel, where the module's copy runs many
# times slower than the guest's stores: rates and timings mean nothing.
under_kasan() { dmesg | grep -q 'KernelAddressSanitizer initialized'; }
# has TEXT REGEX
has() { echo "$1" | grep -q "$2"; }
# num JSON KEY: the first number under "KEY"
num() { echo "$1" | sed -n "s/.*\"$2\":\([0-9-]*\).*/\1/p" | head -n 1; }
# wait_for FILE TEXT: until TEXT appears in FILE (10 s at most)
wait_for() {
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}
