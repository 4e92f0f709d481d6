#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the debug-kernel lane's kernel (KASAN, lockdep, kmemleak, ...) from
# Debian's linux-source-6.12 package:
#   build-kernel.sh            prints KEY=VALUE lines on stdout at the end
# Cache: $VMPF_DEBUG_CACHE (default /var/cache/vmpagefile/debug-kernel):
#   linux-source-6.12*/        the extracted tree, configured and built;
#                              usable as KDIR for out-of-tree modules
#   staging/lib/modules/KVER/  `make modules_install` output
#   kernel.env                 KVER, KDIR, IMAGE, MODULES_DIR (shell syntax)
#   stamp                      what was built: hash of the fragment + the
#                              source package's version
# A run whose stamp matches does nothing but print kernel.env.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/config-debug
cache=${VMPF_DEBUG_CACHE:-/var/cache/vmpagefile/debug-kernel}
log() { echo "build-kernel: $*" >&2; }
start=$(date +%s)

# linux-source-6.12, QEMU and the rest, and the kernel build's own
# dependencies missing from a fresh Debian 12 (flex/bison for kconfig,
# libelf for objtool, bc for timeconst): installed where every other
# package of the project is.
"$here/../deps.sh" --no-kernels flex bison bc libelf-dev libssl-dev

# The newest installed linux-source-6.12* tarball; its package version (or,
# for a tarball no package owns, its size and mtime) names the source.
tarball=$(ls -1 /usr/src/linux-source-6.12*.tar.* 2>/dev/null | sort -V | tail -n 1)
[ -n "$tarball" ] || { log "no /usr/src/linux-source-6.12*.tar.*: apt-get install linux-source-6.12"; exit 1; }
if pkg=$(dpkg -S "$tarball" 2>/dev/null | cut -d: -f1) && [ -n "$pkg" ]; then
	srcver="$pkg $(dpkg-query -W -f '${Version}' "$pkg")"
else
	srcver="$tarball $(stat -c '%s %Y' "$tarball")"
fi
stamp="$(sha256sum < "$fragment" | cut -d' ' -f1) $srcver"

mkdir -p "$cache"
if [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$stamp" ] && [ -f "$cache/kernel.env" ]; then
	log "cached build matches ($srcver): nothing to do ($(( $(date +%s) - start )) s)"
	cat "$cache/kernel.env"
	exit 0
fi
rm -f "$cache/stamp"

# Re-extract only when the source changed; a fragment change rebuilds
# incrementally in the same tree.
base=$(basename "$tarball")
base=${base%.tar.*}
src=$cache/$base
if [ ! -f "$cache/source-version" ] || [ "$(cat "$cache/source-version")" != "$srcver" ] ||
   [ ! -f "$src/Makefile" ]; then
	log "extracting $tarball"
	rm -rf "$src" "$cache/source-version"
	nice -n 19 tar -xf "$tarball" -C "$cache"
	echo "$srcver" > "$cache/source-version"
fi

# tinyconfig + the fragment, then defaults for whatever it newly exposes.
make_k() { nice -n 19 make -C "$src" -s "$@"; }
make_k tinyconfig >&2
(cd "$src" && scripts/kconfig/merge_config.sh -m .config "$fragment") >&2
make_k olddefconfig >&2
# Every fragment line must have survived Kconfig.
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)	want=$line; sym=${line%%=*} ;;
	"# CONFIG_"*" is not set")
		sym=${line#\# }; sym=${sym%% *}; want="# $sym is not set" ;;
	*)	continue ;;
	esac
	got=$(grep -E "^$sym=|^# $sym is not set" "$src/.config" || echo "# $sym is not set")
	if [ "$got" != "$want" ]; then
		log "config: wanted '$want', got '$got'"
		bad=1
	fi
done < "$fragment"
[ $bad = 0 ] || { log "the fragment does not apply to this source"; exit 1; }

log "building bzImage and modules (nice -n 19 make -j$(nproc))"
nice -n 19 make -C "$src" -j"$(nproc)" bzImage modules >&2
kver=$(make_k kernelrelease)
rm -rf "$cache/staging"
# modules.builtin and modules.dep come along: mkinitramfs.sh needs both.
make_k INSTALL_MOD_PATH="$cache/staging" modules_install >&2
# So that KDIR=MODULES_DIR/build works as it does for Debian's kernels.
ln -sfn "$src" "$cache/staging/lib/modules/$kver/build"

cat > "$cache/kernel.env" <<EOF
KVER=$kver
KDIR=$src
IMAGE=$src/arch/x86/boot/bzImage
MODULES_DIR=$cache/staging/lib/modules/$kver
EOF
echo "$stamp" > "$cache/stamp"
log "built $kver in $(( $(date +%s) - start )) s (extraction, config, build, modules_install)"
cat "$cache/kernel.env"
