#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# selftests/deps.sh's kernel choice against made-up archives: stub
# apt-cache, apt-get and dpkg-query on PATH, a made-up /boot and
# /lib/modules (VMPF_SYSROOT).  Each case checks the kernels chosen, the
# packages that would be installed and the line that says why.
# Prints TAP.  Needs no network, changes nothing on the machine.
set -u
cd "$(dirname "$0")/../.."
deps=$PWD/selftests/deps.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- the stubs --------------------------------------------------------------
# $STUB/archive: "NAME VERSION" per package name the lists know; VERSION
# "-" is a name with no candidate (virtual, or only a signed-image name).
# $STUB/installed: installed package names.  $STUB/broken: names whose
# download fails (the archive dropped them since the lists were made).
# $STUB/offline: apt-get update fails and the lists are empty.
# $STUB/log: every apt-get install, one line each.
mkdir -p "$work/bin"
cat > "$work/bin/apt-cache" <<'EOF'
#!/bin/bash
[ -e "$STUB/offline" ] && exit 0
case $1 in
search)
	re=$3
	awk '{print $1}' "$STUB/archive" | grep -E -- "$re" | sed 's/$/ - stub/'
	;;
policy)
	shift
	for p in "$@"; do
		v=$(awk -v p="$p" '$1 == p {print $2}' "$STUB/archive")
		[ -n "$v" ] || continue
		[ "$v" = - ] && v="(none)"
		printf '%s:\n  Installed: (none)\n  Candidate: %s\n  Version table:\n' "$p" "$v"
	done
	;;
show)
	# Like apt-cache show, a name without a candidate still "shows".
	awk -v p="$2" '$1 == p {f = 1} END {exit !f}' "$STUB/archive"
	;;
esac
EOF
cat > "$work/bin/apt-get" <<'EOF'
#!/bin/bash
case $1 in
update) [ -e "$STUB/offline" ] && exit 100; exit 0 ;;
install)
	shift
	pkgs=
	for a in "$@"; do case $a in -*) ;; *) pkgs="$pkgs $a" ;; esac; done
	echo "install$pkgs" >> "$STUB/log"
	for p in $pkgs; do
		if grep -qx "$p" "$STUB/broken" ||
		   ! awk -v p="$p" '$1 == p && $2 != "-" {f = 1} END {exit !f}' "$STUB/archive"; then
			echo "E: Unable to fetch $p" >&2
			exit 100
		fi
	done
	for p in $pkgs; do echo "$p" >> "$STUB/installed"; done
	;;
esac
EOF
cat > "$work/bin/dpkg-query" <<'EOF'
#!/bin/bash
p=${!#}
grep -qx "$p" "$STUB/installed" && echo "install ok installed" && exit 0
exit 1
EOF
chmod +x "$work/bin/"*

TOOLS="build-essential qemu-system-x86 busybox-static dkms sparse cpio gzip
xz-utils zstd kmod linux-source-6.12 perl dmsetup"

# setup: a fresh stub world with the tools installed and every 6.12 ABI
# below installable, for the cases that look at 6.1.
setup() {
	export STUB=$work/case$n
	rm -rf "$STUB"
	mkdir -p "$STUB/root/boot" "$STUB/root/lib/modules"
	: > "$STUB/archive"
	: > "$STUB/broken"
	: > "$STUB/log"
	printf '%s\n' $TOOLS > "$STUB/installed"
}
pkg() { # pkg NAME [VERSION|-]...
	local p
	for p in "$@"; do echo "$p" >> "$STUB/archive"; done
}
abi612() { # abi612 ABI: a complete 6.12 ABI, signed image
	pkg "linux-headers-$1 1" "linux-image-$1 1" "linux-image-$1-unsigned 1"
}
installed_kernel() { # installed_kernel K: image and headers on disk
	mkdir -p "$STUB/root/lib/modules/$1/kernel" "$STUB/root/lib/modules/$1/build"
	touch "$STUB/root/boot/vmlinuz-$1" "$STUB/root/lib/modules/$1/build/Makefile"
}

n=0
run() { # run: deps.sh in the stub world; $out, $err, $rc
	out=$(PATH=$work/bin:$PATH VMPF_SYSROOT=$STUB/root "$deps" 2> "$STUB/err")
	rc=$?
	err=$(cat "$STUB/err")
}
check() { # check NAME WANT_RC WANT_KERNELS WANT_INSTALLS_REGEX WANT_STDERR_REGEX
	local name=$1 wrc=$2 wk=$3 wlog=$4 werr=$5 log
	log=$(grep -v "^install build-essential" "$STUB/log" | tr '\n' '|')
	if [ "$rc" = "$wrc" ] && [ "$out" = "$wk" ] &&
	   echo "$log" | grep -Eq -- "$wlog" && echo "$err" | grep -Eq -- "$werr"; then
		echo "ok $n deps.$name"
	else
		echo "# rc=$rc (want $wrc), kernels '$out' (want '$wk')"
		echo "# installs: $log"
		echo "#   wanted: $wlog"
		echo "$err" | sed 's/^/# stderr: /'
		echo "not ok $n deps.$name"
	fi
}

echo "TAP version 13"
echo "1..10"

# 1. Everything published: the newest of each line, signed image.
n=1; setup
pkg "linux-headers-6.1.0-56-amd64 1" "linux-image-6.1.0-56-amd64 1" \
    "linux-headers-6.1.0-57-amd64 1" "linux-image-6.1.0-57-amd64 1"
abi612 6.12.115+deb12-amd64; abi612 6.12.117+deb12-amd64
run
check newest_signed 0 "6.1.0-57-amd64 6.12.117+deb12-amd64" \
	'^install linux-headers-6.1.0-57-amd64 linux-image-6.1.0-57-amd64\|install linux-headers-6.12.117\+deb12-amd64 linux-image-6.12.117\+deb12-amd64\|$' \
	'kernel 6.1: 6.1.0-57-amd64'

# 2. Headers published, no image of any flavour yet: the older ABI, and
# the line says why the newer one was skipped.
n=2; setup
pkg "linux-headers-6.1.0-56-amd64 1" "linux-image-6.1.0-56-amd64 1" \
    "linux-headers-6.1.0-57-amd64 1"
abi612 6.12.117+deb12-amd64
run
check headers_without_image 0 "6.1.0-56-amd64 6.12.117+deb12-amd64" \
	'^install linux-headers-6.1.0-56-amd64 linux-image-6.1.0-56-amd64\|' \
	'kernel 6.1: 6.1.0-56-amd64 .*skipped 6.1.0-57-amd64: neither linux-image-6.1.0-57-amd64 nor linux-image-6.1.0-57-amd64-unsigned has an installation candidate'

# 3. The image only as -unsigned (the signed one not built yet): taken.
n=3; setup
pkg "linux-headers-6.1.0-56-amd64 1" "linux-image-6.1.0-56-amd64 1" \
    "linux-headers-6.1.0-57-amd64 1" "linux-image-6.1.0-57-amd64-unsigned 1"
abi612 6.12.117+deb12-amd64
run
check unsigned_only 0 "6.1.0-57-amd64 6.12.117+deb12-amd64" \
	'^install linux-headers-6.1.0-57-amd64 linux-image-6.1.0-57-amd64-unsigned\|' \
	'kernel 6.1: 6.1.0-57-amd64 \(installed .*-unsigned\)'

# 4. The day of the report: the signed name exists only as a name
# ("Candidate: (none)", yet `apt-cache show` succeeds), and there is no
# -unsigned either: skipped, never handed to apt-get.
n=4; setup
pkg "linux-headers-6.1.0-56-amd64 1" "linux-image-6.1.0-56-amd64 1" \
    "linux-headers-6.1.0-57-amd64 1" "linux-image-6.1.0-57-amd64 -"
abi612 6.12.117+deb12-amd64
run
check virtual_name_only 0 "6.1.0-56-amd64 6.12.117+deb12-amd64" \
	'^install linux-headers-6.1.0-56-amd64 linux-image-6.1.0-56-amd64\|install linux-headers-6.12' \
	'skipped 6.1.0-57-amd64: neither'

# 5. Image published before the headers (can happen the other way round
# too): skipped for want of headers.
n=5; setup
pkg "linux-headers-6.1.0-56-amd64 1" "linux-image-6.1.0-56-amd64 1" \
    "linux-headers-6.1.0-57-amd64 -" "linux-image-6.1.0-57-amd64 1"
abi612 6.12.117+deb12-amd64
run
check image_without_headers 0 "6.1.0-56-amd64 6.12.117+deb12-amd64" \
	'^install linux-headers-6.1.0-56-amd64 ' \
	'skipped 6.1.0-57-amd64: linux-headers-6.1.0-57-amd64 has no installation candidate'

# 6. Stale lists (apt-get update failed): they name ABI 58, which the
# archive has retired; installing it fails, 57 is installed instead.
n=6; setup
pkg "linux-headers-6.1.0-57-amd64 1" "linux-image-6.1.0-57-amd64 1" \
    "linux-headers-6.1.0-58-amd64 1" "linux-image-6.1.0-58-amd64 1"
echo linux-headers-6.1.0-58-amd64 >> "$STUB/broken"
abi612 6.12.117+deb12-amd64
run
check stale_lists 0 "6.1.0-57-amd64 6.12.117+deb12-amd64" \
	'^install linux-headers-6.1.0-58-amd64 linux-image-6.1.0-58-amd64\|install linux-headers-6.1.0-57-amd64 linux-image-6.1.0-57-amd64\|' \
	'skipped 6.1.0-58-amd64: installing .* failed'

# 7. Offline, no package lists at all: the kernels already installed, and
# nothing is installed.
n=7; setup
touch "$STUB/offline"
installed_kernel 6.1.0-50-amd64; installed_kernel 6.1.0-53-amd64
installed_kernel 6.12.111+deb12-amd64
run
check offline_installed 0 "6.1.0-53-amd64 6.12.111+deb12-amd64" '^$' \
	'kernel 6.1: 6.1.0-53-amd64 \(already installed\)'

# 8. Offline with nothing installed: fails, saying so.
n=8; setup
touch "$STUB/offline"
installed_kernel 6.12.111+deb12-amd64
run
check offline_nothing 1 "" '^$' 'kernel 6.1: no kernel matching .* can be installed or is installed'

# 9. Installed but older than the archive's newest: the newest installable
# one is installed (a machine kept from an earlier run moves on).
n=9; setup
installed_kernel 6.1.0-50-amd64
pkg "linux-headers-6.1.0-50-amd64 1" "linux-image-6.1.0-50-amd64 1" \
    "linux-headers-6.1.0-57-amd64 1" "linux-image-6.1.0-57-amd64-unsigned 1"
installed_kernel 6.12.117+deb12-amd64
abi612 6.12.117+deb12-amd64
run
check installed_older 0 "6.1.0-57-amd64 6.12.117+deb12-amd64" \
	'^install linux-headers-6.1.0-57-amd64 linux-image-6.1.0-57-amd64-unsigned\|$' \
	'kernel 6.12: 6.12.117\+deb12-amd64 \(already installed\)'

# 10. VMPF_KERNELS: exactly those, installed (image as -unsigned when that
# is the one with a candidate), no choice made.
n=10; setup
pkg "linux-headers-6.1.0-50-amd64 1" "linux-image-6.1.0-50-amd64 -" \
    "linux-image-6.1.0-50-amd64-unsigned 1" \
    "linux-headers-6.1.0-57-amd64 1" "linux-image-6.1.0-57-amd64 1"
installed_kernel 6.12.111+deb12-amd64
out=$(PATH=$work/bin:$PATH VMPF_SYSROOT=$STUB/root \
	VMPF_KERNELS="6.1.0-50-amd64 6.12.111+deb12-amd64" "$deps" 2> "$STUB/err")
rc=$?
err=$(cat "$STUB/err")
check vmpf_kernels 0 "6.1.0-50-amd64 6.12.111+deb12-amd64" \
	'^install linux-headers-6.1.0-50-amd64 linux-image-6.1.0-50-amd64-unsigned\|$' \
	'kernel 6.12.111\+deb12-amd64: from VMPF_KERNELS'
