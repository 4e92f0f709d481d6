# SPDX-License-Identifier: GPL-2.0
# Shared by the host-side test scripts: TAP results and the summary.
#
# result STATUS NAME [DETAIL]   STATUS is ok, fail or skip
# section NAME                  starts a TAP block (plan printed at its end)
# finish_section                prints the block's plan
# summary                       the closing "N passed, N failed, N skipped"

: "${VMPF_RESULTS:=$(mktemp)}"
export VMPF_RESULTS
_vmpf_n=0

section() {
	_vmpf_n=0
	echo "TAP version 13"
	echo "# $*"
}

finish_section() {
	echo "1..$_vmpf_n"
}

result() {
	local status=$1 name=$2 detail=${3:-}
	_vmpf_n=$((_vmpf_n + 1))
	case $status in
	ok)	echo "ok $_vmpf_n $name" ;;
	skip)	echo "ok $_vmpf_n $name # SKIP ${detail:-no reason given}" ;;
	*)	status=fail
		echo "not ok $_vmpf_n $name"
		[ -n "$detail" ] && echo "$detail" | sed 's/^/#   /' ;;
	esac
	echo "$status" >> "$VMPF_RESULTS"
}

summary() {
	local p f s
	p=$(grep -c '^ok$' "$VMPF_RESULTS" || true)
	f=$(grep -c '^fail$' "$VMPF_RESULTS" || true)
	s=$(grep -c '^skip$' "$VMPF_RESULTS" || true)
	echo "$p passed, $f failed, $s skipped"
	[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
}
