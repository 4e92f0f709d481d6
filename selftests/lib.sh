# SPDX-License-Identifier: GPL-2.0
# Shared by the host-side test scripts: TAP results and the summary.
#
# result STATUS NAME [DETAIL]   STATUS is ok, fail or skip
# section NAME                  starts a TAP block (plan printed at its end)
# finish_section                prints the block's plan
# summary                       the closing "N passed, N failed, N skipped"
# ingest_tap PREFIX < TAP       TAP results into result()s
# ingest_results PREFIX DIR RC  a test guest's result.log into result()s

: "${VMPF_RESULTS:=$(mktemp)}"
export VMPF_RESULTS
_vmpf_n=0

section() {
	_vmpf_n=0
	echo "TAP version 13"
	echo "# $*"
}

# elapsed: minutes and seconds since this shell started (where the time goes).
elapsed() {
	printf '# at %d:%02d\n' $((SECONDS / 60)) $((SECONDS % 60))
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

# ingest_tap PREFIX < TAP: turn each top-level TAP result into a result();
# the comment lines before a failure become its detail.
ingest_tap() {
	local prefix=$1 line status name detail= seen=0
	while IFS= read -r line; do
		line=${line%$'\r'}
		if [[ $line =~ ^(not\ )?ok\ [0-9]+\ (.*)$ ]]; then
			seen=$((seen + 1))
			name=${BASH_REMATCH[2]}
			if [ -n "${BASH_REMATCH[1]}" ]; then
				status=fail
			elif [[ $name == *"# SKIP"* ]]; then
				status=skip
				detail=${name#*# SKIP}
				name=${name%% # SKIP*}
			else
				status=ok
			fi
			result "$status" "$prefix$name" "$(echo "$detail" | tail -n 15)"
			detail=
		elif [[ $line == \#* ]]; then
			detail+="${line}"$'\n'
		fi
	done
	return $((seen == 0))
}

# ingest_results PREFIX DIR RC: the results of one boot (DIR/result.log):
# each test program's TAP, the guest's own checks, whether it ran to the
# end (RC: QEMU's exit status, 124 a timeout after GUEST_TIMEOUT).
ingest_results() {
	local p=$1 dir=$2 rc=$3 line name status cur= endrc
	local res=$dir/result.log con=$dir/console.log
	touch "$res" "$con"
	while IFS= read -r line; do
		line=${line%$'\r'}
		case $line in
		"VMPF-CHECK "*)
			line=${line#VMPF-CHECK }
			status=${line%% *}
			result "$status" "$p${line#* }"
			;;
		"VMPF-BEGIN "*)
			cur=${line#VMPF-BEGIN }
			: > "$dir/$cur.tap"
			;;
		"VMPF-END "*)
			line=${line#VMPF-END }
			name=${line% *}
			endrc=${line##* }
			ingest_tap "$p$name: " < "$dir/$name.tap" ||
				result fail "$p$name printed no result"
			# 4 is KSFT_SKIP: a whole program skipped, said in its TAP.
			if [ "$endrc" != 0 ] && [ "$endrc" != 4 ] &&
			   ! grep -q '^not ok' "$dir/$name.tap"; then
				result fail "$p$name exit status" "exited $endrc"
			fi
			cur=
			;;
		"# time $cur "*)
			# The program's end, whose VMPF-END line the serial
			# port lost (seen once, 6.12): its TAP still counts.
			if [ -n "$cur" ]; then
				ingest_tap "$p$cur: " < "$dir/$cur.tap" ||
					result fail "$p$cur printed no result"
				echo "# $p$cur: its end marker was lost; exit status unknown"
				cur=
			fi
			;;
		*)
			[ -n "$cur" ] && echo "$line" >> "$dir/$cur.tap"
			;;
		esac
	done < "$res"
	if [ -n "$cur" ]; then
		result fail "$p$cur completed" "$(tail -n 15 "$dir/$cur.tap")"
	fi

	if grep -q '^VMPF-DONE' "$res"; then
		result ok "${p}guest ran to the end"
	elif [ "$rc" = 124 ]; then
		result fail "${p}guest ran to the end" "timeout after ${GUEST_TIMEOUT}s; $(tail -n 10 "$con")"
	else
		result fail "${p}guest ran to the end" "QEMU exit $rc; $(tail -n 10 "$con")"
	fi
}

# console_unexpected CONSOLE: the console less what a test announced it
# provokes on purpose (a memory cgroup's OOM kill, whose report has a call
# trace), between its two kernel-log markers.
console_unexpected() {
	tr -d '\r' < "$1" |
		sed '/vmpf-test: an OOM kill is expected from here/,/vmpf-test: no OOM kill is expected from here/d'
}

# ingest_guest PREFIX DIR RC: results of one boot, then its console.
ingest_guest() {
	local p=$1 dir=$2 rc=$3 con=$2/console.unexpected
	ingest_results "$p" "$dir" "$rc"
	console_unexpected "$dir/console.log" > "$con"
	local bad='WARNING:|BUG:|Oops|general protection fault|Kernel panic|Call Trace:|'
	bad+='possible circular locking|inconsistent lock state|possible recursive locking|'
	bad+='UBSAN:|KASAN:|KFENCE:|kmemleak|blocked for more than|soft lockup|hard LOCKUP|'
	bad+='rcu_sched self-detected stall|RCU stall|segfault at|outlived its restore session'
	if grep -aEq "$bad" "$con"; then
		result fail "${p}kernel log free of warnings, oopses and splats" \
			"$(grep -aE -A3 "$bad" "$con" | tr -d '\r' | head -n 15)"
	else
		result ok "${p}kernel log free of warnings, oopses and splats"
	fi
}
