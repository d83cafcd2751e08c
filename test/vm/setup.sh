#!/usr/bin/env bash
# Download one of Debian's stock kernels (kprobes, fentry, BTF) and build a
# busybox initramfs that mounts the host's filesystem over virtio-9p.
# Idempotent: re-running only redoes what is missing. Everything goes to
# test/vm/cache/ (gitignored), per kernel; run.sh reads cache/<kernel>.env.
#
#   test/vm/setup.sh                  # --kernel 6.1 (the default)
#   test/vm/setup.sh --kernel 5.10    # Debian 11's 5.10 LTS, from bullseye-security
#   test/vm/setup.sh --kernel 6.12    # Debian 12's 6.12, from bookworm-security
#   RBTRACE_VM_KPKG=linux-image-6.1.0-50-amd64 test/vm/setup.sh   # pin a package
#   test/vm/setup.sh --arch arm64     # Debian 12's 6.1 arm64 kernel (or --kernel 6.12) and
#                                     # an arm64 userland (arm64-root.sh); cache/arm64-<K>.env
#
# Packages: 6.1 linux-image-6.1.0-N-amd64 (bookworm), 6.12
# linux-image-6.12.N+deb12-amd64-unsigned (bookworm-security), 5.10
# linux-image-5.10.0-N-amd64 (bullseye-security: not in this host's apt
# sources, so it is looked up and downloaded with a private sources list and
# package lists under cache/apt-bullseye/; the host's apt state is not
# touched). The newest ABI apt knows is taken.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$HERE/cache
mkdir -p "$CACHE"

missing=
command -v qemu-system-x86_64 >/dev/null || missing+=" qemu-system-x86"
command -v cpio >/dev/null || missing+=" cpio"
command -v xz >/dev/null || missing+=" xz-utils"
command -v zstd >/dev/null || missing+=" zstd"
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=" busybox-static"
if [ -n "$missing" ]; then
  echo "setup.sh: installing:$missing" >&2
  apt-get install -y --no-install-recommends $missing >&2
fi
BUSYBOX=/bin/busybox   # from busybox-static: no shared libraries needed

KERNEL_SERIES=6.1
ARCH=x86
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) KERNEL_SERIES=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# 1. Pick the kernel package (vmlinuz and modules in one .deb); the highest
#    ABI number / version apt knows about.
APT_OPTS=()
ENVNAME=$KERNEL_SERIES
ROOTFS=/
if [ "$ARCH" = arm64 ]; then
  # issue 17: Debian's arm64 kernel with private arm64 apt state (the host's
  # apt and dpkg architectures are not touched), busybox and the guest's
  # whole userland from arm64-root.sh.
  command -v qemu-system-aarch64 >/dev/null || apt-get install -y --no-install-recommends qemu-system-arm >&2
  . "$HERE/../../scripts/debian-apt.sh"
  debian_apt_init arm64 "$CACHE/apt-arm64"
  APT_OPTS=("${DEBIAN_APT_OPTS[@]}")
  ROOTFS=$("$HERE/arm64-root.sh")
  BUSYBOX=$ROOTFS/usr/bin/busybox
  ENVNAME=arm64-$KERNEL_SERIES
  case "$KERNEL_SERIES" in
    6.1) PATTERN='^linux-image-6\.1\.0-[0-9]+-arm64$' ;;
    6.12) PATTERN='^linux-image-6\.12\.[0-9]+\+deb12-arm64$' ;;
    *) echo "setup.sh: --arch arm64 --kernel $KERNEL_SERIES: not one of 6.1, 6.12" >&2; exit 2 ;;
  esac
elif [ "$ARCH" != x86 ]; then
  echo "setup.sh: --arch $ARCH: not x86 or arm64" >&2; exit 2
else
case "$KERNEL_SERIES" in
  6.1) PATTERN='^linux-image-6\.1\.0-[0-9]+-amd64$' ;;
  6.12) PATTERN='^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
  5.10)
    PATTERN='^linux-image-5\.10\.0-[0-9]+-amd64$'
    # bullseye-security for this lookup and download only: own sources list,
    # package lists and cache (nothing under /etc/apt or /var/lib/apt changes).
    APTDIR=$CACHE/apt-bullseye
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
    echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bullseye-security main' > "$APTDIR/sources.list"
    APT_OPTS=(-o "Dir::Etc::sourcelist=$APTDIR/sources.list" -o Dir::Etc::sourceparts=- \
      -o "Dir::State::lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache" -o APT::Get::List-Cleanup=0)
    ;;
  *) echo "setup.sh: --kernel $KERNEL_SERIES: not one of 5.10, 6.1, 6.12" >&2; exit 2 ;;
esac
fi
KPKG=${RBTRACE_VM_KPKG:-}
find_kpkg() {
  apt-cache "${APT_OPTS[@]}" search --names-only "$PATTERN" | awk '{print $1}' | sort -V | tail -n1
}
if [ -z "$KPKG" ]; then
  KPKG=$(find_kpkg)
  # A fresh machine (or the private bullseye lists) may have no package lists yet.
  [ -n "$KPKG" ] || { apt-get "${APT_OPTS[@]}" update -qq >&2; KPKG=$(find_kpkg); }
fi
if [ -z "$KPKG" ]; then
  echo "setup.sh: no package matching $PATTERN in apt (run apt-get update?)" >&2
  exit 1
fi
KVER=${KPKG#linux-image-}            # e.g. 6.1.0-56-amd64
KVER=${KVER%-unsigned}               # 6.12.117+deb12-amd64
PKGVER=$(apt-cache "${APT_OPTS[@]}" policy "$KPKG" | awk '/Candidate:/ {print $2}')

DEB=$(ls "$CACHE"/"${KPKG}"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$DEB" ]; then
  echo "setup.sh: downloading $KPKG $PKGVER" >&2
  (cd "$CACHE" && apt-get "${APT_OPTS[@]}" download "$KPKG" 2>&1 | grep -v 'unsandboxed' >&2 || true)
  DEB=$(ls "$CACHE"/"${KPKG}"_*.deb 2>/dev/null | head -n1 || true)
  [ -n "$DEB" ] || { echo "setup.sh: apt-get download $KPKG failed" >&2; exit 1; }
fi

KROOT=$CACHE/kernel-$KVER
if [ ! -f "$KROOT/boot/vmlinuz-$KVER" ]; then
  rm -rf "$KROOT.tmp"
  dpkg -x "$DEB" "$KROOT.tmp"
  rm -rf "$KROOT"
  mv "$KROOT.tmp" "$KROOT"
fi
MODDIR=$KROOT/lib/modules/$KVER
[ -f "$KROOT/boot/vmlinuz-$KVER" ] && [ -d "$MODDIR" ] || {
  echo "setup.sh: $DEB has no vmlinuz/modules" >&2; exit 1; }

# 2. Resolve the modules for a 9p root over virtio-pci plus virtio-console
#    ports (used for the command's stdout/stderr), in load order. Anything
#    listed in modules.builtin is skipped. Dependencies come from each .ko's
#    modinfo "depends=" (no kmod needed on the host).
declare -A done_mod=()
ORDER=()
modfile() { find "$MODDIR/kernel" \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" \) | head -n1; }
is_builtin() { grep -qE "/$1\.ko$" "$MODDIR/modules.builtin"; }
resolve() {
  local m=${1//-/_} f deps d
  [ -n "${done_mod[$m]:-}" ] && return 0
  done_mod[$m]=1
  if is_builtin "$m"; then return 0; fi
  f=$(modfile "$m")
  [ -n "$f" ] || { echo "setup.sh: module $m not found in $KPKG" >&2; exit 1; }
  # Compressed modules (6.12's are .ko.xz): decompressed once next to the
  # kernel, since the initramfs's busybox insmod takes plain .ko files.
  case "$f" in
    *.ko) ;;
    *.ko.xz|*.ko.zst)
      local plain=$KROOT/plain-modules/$m.ko
      if [ ! -s "$plain" ]; then
        mkdir -p "$KROOT/plain-modules"
        case "$f" in *.xz) xz -dc "$f" ;; *) zstd -qdc "$f" ;; esac > "$plain.tmp"
        mv "$plain.tmp" "$plain"
      fi
      f=$plain ;;
  esac
  deps=$(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' ')
  for d in $deps; do resolve "$d"; done
  ORDER+=("$f")
}
for m in virtio_pci 9pnet_virtio 9p virtio_console; do resolve "$m"; done

# 3. Build the initramfs when the kernel, init or module set changed.
INITRD=$CACHE/initramfs-$KVER.cpio.gz
STAMP=$( { echo "$KVER"; printf '%s\n' "${ORDER[@]}"; sha256sum "$HERE/init" "$BUSYBOX"; } | sha256sum | cut -c1-16)
if [ ! -f "$INITRD" ] || [ "$(cat "$INITRD.stamp" 2>/dev/null)" != "$STAMP" ]; then
  W=$(mktemp -d)
  trap 'rm -rf "$W"' EXIT
  mkdir -p "$W"/{bin,sbin,dev,proc,sys,newroot,modules,etc}
  cp "$BUSYBOX" "$W/bin/busybox"
  # The applet list from the host's busybox (the same Debian version: an
  # arm64 busybox cannot run here).
  for app in $(/bin/busybox --list); do
    [ "$app" = busybox ] || ln -sf busybox "$W/bin/$app"
  done
  : > "$W/modules/load.list"
  for f in "${ORDER[@]}"; do
    cp "$f" "$W/modules/"
    basename "$f" >> "$W/modules/load.list"
  done
  cp "$HERE/init" "$W/init"
  chmod 755 "$W/init"
  echo "$KVER" > "$W/etc/kver"
  (cd "$W" && find . -print0 | cpio --null -o -H newc --quiet | gzip -6) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  echo "$STAMP" > "$INITRD.stamp"
fi

# 4. Tell run.sh what to boot (cache/<series>.env; current.env = the last set up).
cat > "$CACHE/$ENVNAME.env.tmp" <<EOF
KERNEL_SERIES=$KERNEL_SERIES
ARCH=$ARCH
ROOTFS=$ROOTFS
KPKG=$KPKG
PKGVER=$PKGVER
KVER=$KVER
KERNEL=$KROOT/boot/vmlinuz-$KVER
INITRD=$INITRD
MODDIR=$MODDIR
EOF
[ "$ARCH" = arm64 ] || cp "$CACHE/$ENVNAME.env.tmp" "$CACHE/current.env"
mv "$CACHE/$ENVNAME.env.tmp" "$CACHE/$ENVNAME.env"
echo "setup.sh: ready: $KPKG $PKGVER (modules: $(printf '%s ' "${ORDER[@]##*/}"))" >&2
