# SPDX-License-Identifier: GPL-2.0
# QEMU as the VMM under test, inside the test machine (busybox sh): the
# host's own /usr/bin/qemu-system-x86_64, run from the host's root (shared
# read-only by run-guest.sh, mounted at /host by guest-init.sh) through the
# host's dynamic loader, boots the running kernel with a small initramfs
# whose /init runs the dirtier (selftests/qemu/dirtier.c, mkinner.sh).
# mkinitramfs.sh puts this file in /bin; a test sources it:
#   . "$(dirname "$0")/qemu_vmm_lib.sh"
#   vq_usable || { skip ... "$VQ_WHY"; ...; }
#   eval "vq_qemu $(vq_guest_args 128 dirtier_mb=32) -serial file:$d/serial.log ..." &
#   vq_wait_for "$d/serial.log" vmpf-ready 60
# or, with another program starting QEMU:
#   eval "vmpf-ctl restore --qemu F -- $VQ_QEMU $(vq_guest_args 128) ..."
# (the environment variable QEMU_MODULE_DIR that this file exports is
# inherited).
#
# VQ_QEMU	the command prefix (loader, library path, QEMU, -L firmware
#		directories): words without spaces, for word splitting.
# VQ_KERNEL	the inner guest's kernel (default: the host's newest 6.12,
#		else the kernel running here; see below).
# VQ_INITRD	the inner guest's initramfs (default /lib/vmpf-inner.cpio.gz).
# VQ_APPEND	more kernel arguments for every inner guest (loglevel=7
#		undoes quiet: slow, every console byte is a nested exit).
# VQ_CPU	the inner guest's -cpu (default host,pmu=off).
#
# Paths on the share are resolved here, on the host's terms: an absolute
# symlink there (e.g. /lib64/ld-linux-x86-64.so.2) would resolve inside
# the test machine if the kernel followed it.

VQ_HOST=${VQ_HOST:-/host}

# vq_resolve PATH: the host's PATH as a path under $VQ_HOST with no symlink
# left to follow (every symlink resolved as the host would).
vq_resolve() {
	_vq_todo=$1 _vq_done= _vq_hops=0
	while :; do
		while [ "${_vq_todo#/}" != "$_vq_todo" ]; do
			_vq_todo=${_vq_todo#/}
		done
		[ -z "$_vq_todo" ] && break
		_vq_comp=${_vq_todo%%/*}
		if [ "$_vq_comp" = "$_vq_todo" ]; then
			_vq_todo=
		else
			_vq_todo=${_vq_todo#*/}
		fi
		case $_vq_comp in
		.)	continue ;;
		..)	_vq_done=${_vq_done%/*}; continue ;;
		esac
		if [ -L "$VQ_HOST$_vq_done/$_vq_comp" ]; then
			_vq_hops=$((_vq_hops + 1))
			[ $_vq_hops -gt 40 ] && return 1
			_vq_link=$(readlink "$VQ_HOST$_vq_done/$_vq_comp")
			case $_vq_link in
			/*) _vq_done= ;;
			esac
			_vq_todo=$_vq_link/$_vq_todo
		else
			_vq_done=$_vq_done/$_vq_comp
		fi
	done
	echo "$VQ_HOST${_vq_done:-/}"
}

# vq_usable: 0 if an inner QEMU guest can run here, else 1 with the reason
# in VQ_WHY.
vq_usable() {
	VQ_WHY=
	if [ ! -d "$VQ_HOST/usr/bin" ]; then
		VQ_WHY="no host root at $VQ_HOST (run-guest.sh's -virtfs, 9p modules)"
	elif [ ! -c /dev/kvm ]; then
		VQ_WHY="no /dev/kvm"
	elif [ ! -x "$VQ_HOST/usr/bin/qemu-system-x86_64" ]; then
		VQ_WHY="no qemu-system-x86_64 on the host"
	elif [ ! -f "$VQ_KERNEL" ]; then
		VQ_WHY="no inner kernel $VQ_KERNEL"
	elif [ ! -f "$VQ_INITRD" ]; then
		VQ_WHY="no inner initramfs $VQ_INITRD"
	fi
	[ -z "$VQ_WHY" ]
}

# The command prefix.  The loader and libraries are the host's, found by
# --library-path (the test machine's own /lib holds other copies).
_vq_lib=$(vq_resolve /usr/lib/x86_64-linux-gnu)
_vq_lib2=$(vq_resolve /lib/x86_64-linux-gnu)
[ "$_vq_lib2" = "$_vq_lib" ] || _vq_lib=$_vq_lib2:$_vq_lib
VQ_QEMU="$(vq_resolve /lib64/ld-linux-x86-64.so.2) --library-path $_vq_lib"
VQ_QEMU="$VQ_QEMU $(vq_resolve /usr/bin/qemu-system-x86_64)"
VQ_QEMU="$VQ_QEMU -L $(vq_resolve /usr/share/qemu) -L $(vq_resolve /usr/share/seabios)"
export VQ_QEMU
# QEMU's loadable modules (display, audio, ...), should an option want one.
QEMU_MODULE_DIR=$(vq_resolve /usr/lib/x86_64-linux-gnu/qemu)
export QEMU_MODULE_DIR
# The inner guest's kernel: the host's newest 6.12 if it has one, else the
# kernel running here.  Its version does not matter to what the tests check
# (the module runs here, not in there), and inner 6.1 guests in a 6.1 test
# machine were seen to hang now and then in a spinlock with interrupts off.
_vq_k=$(ls -1 "$VQ_HOST"/boot/vmlinuz-6.12.*-amd64 2>/dev/null | tail -n 1)
[ -n "$_vq_k" ] && _vq_k=$(vq_resolve "${_vq_k#"$VQ_HOST"}")
VQ_KERNEL=${VQ_KERNEL:-${_vq_k:-$(vq_resolve "/boot/vmlinuz-$(uname -r)")}}
VQ_INITRD=${VQ_INITRD:-/lib/vmpf-inner.cpio.gz}
VQ_APPEND=${VQ_APPEND:-}
# No PMU for the inner guest: with a 6.1 test machine, a guest that sees
# one stalls or crashes (seen: a stack guard page hit in the entry code).
VQ_CPU=${VQ_CPU:-host,pmu=off}

# vq_qemu ARGS...: run the host's QEMU.
vq_qemu() {
	# shellcheck disable=SC2086
	$VQ_QEMU "$@"
}

# _vq_quote WORD: WORD in single quotes, for eval.
_vq_quote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# vq_guest_args RAM_MB [KERNEL_ARG...]: the inner guest's standard options,
# quoted for eval (the kernel command line has spaces): a KVM VM (no PMU), no SMM
# (the module refuses VMs with SMM memslots), no default devices, RAM as a
# shared memfd (x-ignore-shared migrates without it), the running kernel
# with the inner initramfs, the console on the first serial port.  The
# caller adds -serial and -qmp.  Kernel arguments: dirtier_mb=N (default
# 32), dirtier_pps=N (pages per second, default 0: no limit), VQ_APPEND.
vq_guest_args() {
	_vq_ram=$1
	shift
	printf '%s ' -accel kvm -cpu "$VQ_CPU" -M pc,smm=off -nodefaults -display none \
		-no-reboot -m "${_vq_ram}M" -machine memory-backend=ram0 \
		-object "memory-backend-memfd,id=ram0,share=on,size=${_vq_ram}M" \
		-kernel "$VQ_KERNEL" -initrd "$VQ_INITRD" -append
	_vq_quote "console=ttyS0 rdinit=/init panic=-1 quiet nokaslr${VQ_APPEND:+ $VQ_APPEND}${*:+ $*}"
	echo
}

# vq_where SOCK: where the inner guest's vCPU is, for a guest that hangs:
# its RIP three times a second apart (QMP on SOCK), each with the symbol
# when the inner kernel is the running kernel's build (nokaslr: its
# addresses are this kernel's /proc/kallsyms less the KASLR offset).
vq_where() {
	_vq_text=$(grep ' _text$' /proc/kallsyms | cut -d' ' -f1)
	_vq_same=0
	case $VQ_KERNEL in *"/vmlinuz-$(uname -r)") _vq_same=1 ;; esac
	for _vq_i in 1 2 3; do
		_vq_rip=$(vmpf-ctl qmp --qmp "$1" human-monitor-command \
			'{"command-line": "info registers"}' 2>/dev/null |
			grep -o 'RIP=[0-9a-f]*' | head -n 1 | cut -d= -f2)
		[ -n "$_vq_rip" ] || { printf 'RIP unknown '; break; }
		printf 'RIP %s' "$_vq_rip"
		if [ $_vq_same = 1 ] && [ -n "$_vq_text" ]; then
			_vq_x=$(printf '%016x' $((0x$_vq_text + 0x$_vq_rip - 0xffffffff81000000)))
			sort /proc/kallsyms | awk -v x="$_vq_x" '$1 <= x { s = $3; a = $1 }
				END { printf " (%s)", s }'
		fi
		printf ' '
		sleep 1
	done
	echo
}

# vq_locked_up WHERE: 0 if vq_where's report is the nested test machines'
# lockup (docs/testing.md): the vCPU at one address in all samples, and
# that address, where it could be named, in a spinlock's slow path or the
# timekeeping seqcount loop.
vq_locked_up() {
	_vq_rips=$(echo "$1" | grep -o 'RIP [0-9a-f][0-9a-f]*' | sort -u | wc -l)
	[ "$_vq_rips" = 1 ] || return 1
	echo "$1" | grep -q '(' || return 0
	echo "$1" | grep -q 'native_queued_spin_lock_slowpath\|ktime_get_update_offsets_now'
}

# vq_alive PID: the process runs (a zombie does not count).
vq_alive() {
	kill -0 "$1" 2>/dev/null && ! grep -q ') Z ' "/proc/$1/stat" 2>/dev/null
}

# vq_wait_for FILE PATTERN TIMEOUT_S [PID]: until a line of FILE matches
# PATTERN (grep's basic regex).  1 after TIMEOUT_S seconds, 2 as soon as
# process PID (e.g. QEMU) is gone.
vq_wait_for() {
	_vq_end=$(($(cut -d. -f1 /proc/uptime) + $3))
	while ! grep -q -e "$2" "$1" 2>/dev/null; do
		[ -n "${4:-}" ] && ! vq_alive "$4" && return 2
		[ "$(cut -d. -f1 /proc/uptime)" -ge $_vq_end ] && return 1
		sleep 0.1
	done
}

# vq_wait_boot FILE PATTERN TIMEOUT_S PID SOCK: vq_wait_for, for a guest
# that is booting; 3, with the samples in VQ_WHERE, as soon as FILE has not
# grown for 20 s and the vCPU (QMP on SOCK) is in the nested test machines'
# lockup (vq_locked_up): such a boot never goes on, and waiting out
# TIMEOUT_S for it only makes the test slower.
vq_wait_boot() {
	_vb_end=$(($(cut -d. -f1 /proc/uptime) + $3))
	_vb_size=-1
	VQ_WHERE=
	while :; do
		vq_wait_for "$1" "$2" 20 "$4"
		_vb_rc=$?
		[ $_vb_rc = 1 ] || return $_vb_rc
		[ "$(cut -d. -f1 /proc/uptime)" -ge $_vb_end ] && return 1
		_vb_now=$(wc -c < "$1" 2>/dev/null || echo 0)
		if [ "$_vb_now" = "$_vb_size" ]; then
			VQ_WHERE=$(vq_where "$5")
			vq_locked_up "$VQ_WHERE" && return 3
		fi
		_vb_size=$_vb_now
	done
}

# vq_boot DIR RAM_MB [QEMU_ARG...]: vq_start, then wait until the guest
# counts (its 5th line), at most three boots: in these test machines an
# inner guest locks up now and then while it boots, before vmpagefile has
# anything to do with it (its vCPU spinning in a spinlock's slow path,
# docs/testing.md); such a boot is stopped as soon as vq_wait_boot sees it
# and tried again, each retry reported as a TAP comment.  0 once one runs.
vq_boot() {
	for _vb_try in 1 2 3; do
		vq_start "$@"
		vq_wait_boot "$1/serial.log" "^vmpf-count 5" 90 "$VQ_PID" "$1/qmp.sock"
		case $? in
		0) return 0 ;;
		3) echo "# boot $_vb_try of the guest in $1 locked up: $(tr -d '\r' < "$1/serial.log" | tail -n 2 | tr '\n' ' ')" ;;
		*) echo "# boot $_vb_try of the guest in $1 hung: $(tr -d '\r' < "$1/serial.log" | tail -n 2 | tr '\n' ' ')"
		   VQ_WHERE=$(vq_where "$1/qmp.sock") ;;
		esac
		echo "# its vCPU: $VQ_WHERE"
		vq_stop "$1"
	done
	return 1
}

# vq_start DIR RAM_MB [QEMU_ARG...]: start an inner guest in the background
# (kernel arguments from VQ_APPEND), with DIR/serial.log (its console),
# DIR/qmp.sock (QMP, UNIX socket), DIR/qemu.log (QEMU's own output) and
# DIR/pid (QEMU's process id, also in VQ_PID).
vq_start() {
	_vq_dir=$1 _vq_ram=$2
	shift 2
	mkdir -p "$_vq_dir"
	rm -f "$_vq_dir/serial.log" "$_vq_dir/qmp.sock" "$_vq_dir/qemu.log"
	eval "set -- $(vq_guest_args "$_vq_ram") \"\$@\""
	# shellcheck disable=SC2086
	(exec $VQ_QEMU "$@" -serial "file:$_vq_dir/serial.log" \
		-qmp "unix:$_vq_dir/qmp.sock,server=on,wait=off" \
		> "$_vq_dir/qemu.log" 2>&1 < /dev/null) &
	VQ_PID=$!
	echo $VQ_PID > "$_vq_dir/pid"
}

# vq_stop DIR: end the guest vq_start started there (TERM, then KILL).
vq_stop() {
	_vq_pid=$(cat "$1/pid" 2>/dev/null) || return 0
	kill "$_vq_pid" 2>/dev/null
	for _vq_i in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$_vq_pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -9 "$_vq_pid" 2>/dev/null
	wait "$_vq_pid" 2>/dev/null
	rm -f "$1/pid"
	return 0
}

# vq_same_ram A B: two dumps of guest RAM (QMP pmemsave) are equal but for
# KVM's paravirtual clock records: struct pvclock_vcpu_time_info, 32 bytes
# at the start of 64-byte slots, version first, which KVM rewrites on a
# destination when it loads the vCPUs (by design: the guest reads them as
# the host's clock).  A difference is accepted only inside such a record
# whose version moved from even to even; anything else fails.  Prints how
# many records it accepted.
vq_same_ram() {
	[ -s "$1" ] && [ -s "$2" ] || return 1
	cmp -l "$1" "$2" | awk '
		{ off = $1 - 1; rec = int(off / 64); at = off % 64
		  if (at >= 32) bad++
		  recs[rec] = 1
		  if (at == 0) { v1[rec] = $2; v2[rec] = $3 } }
		END {
			# cmp -l prints bytes in octal: the last digit keeps the parity
			for (r in recs) {
				a = v1[r] + 0; b = v2[r] + 0
				if (!(r in v1) || a % 2 || b % 2) bad++
				else n++
			}
			if (n) printf "# accepted: %d clock record(s) KVM updated\n", n
			exit bad ? 1 : 0
		}'
}
