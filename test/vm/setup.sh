#!/usr/bin/env bash
# Download Debian's stock 6.1 kernel (kprobes, fentry, BTF) and build a busybox
# initramfs that mounts the host's filesystem over virtio-9p. Idempotent:
# re-running only redoes what is missing. Everything goes to test/vm/cache/
# (gitignored).
#
#   test/vm/setup.sh            # newest linux-image-6.1.0-N-amd64 from apt
#   RBTRACE_VM_KPKG=linux-image-6.1.0-50-amd64 test/vm/setup.sh   # pin one
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$HERE/cache
mkdir -p "$CACHE"

missing=
command -v qemu-system-x86_64 >/dev/null || missing+=" qemu-system-x86"
command -v cpio >/dev/null || missing+=" cpio"
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=" busybox-static"
if [ -n "$missing" ]; then
  echo "setup.sh: installing:$missing" >&2
  apt-get install -y --no-install-recommends $missing >&2
fi
BUSYBOX=/bin/busybox   # from busybox-static: no shared libraries needed

# 1. Pick the kernel package: the signed flavour (plain name) ships vmlinuz
#    and modules; choose the highest ABI number apt knows about.
KPKG=${RBTRACE_VM_KPKG:-}
find_kpkg() {
  apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -t- -k5,5n | tail -n1
}
if [ -z "$KPKG" ]; then
  KPKG=$(find_kpkg)
  # A fresh machine may have no package lists yet.
  [ -n "$KPKG" ] || { apt-get update -qq >&2; KPKG=$(find_kpkg); }
fi
if [ -z "$KPKG" ]; then
  echo "setup.sh: no linux-image-6.1.0-*-amd64 package in apt (run apt-get update?)" >&2
  exit 1
fi
KVER=${KPKG#linux-image-}            # e.g. 6.1.0-56-amd64
PKGVER=$(apt-cache policy "$KPKG" | awk '/Candidate:/ {print $2}')

DEB=$(ls "$CACHE"/"${KPKG}"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$DEB" ]; then
  echo "setup.sh: downloading $KPKG $PKGVER" >&2
  (cd "$CACHE" && apt-get download "$KPKG" 2>&1 | grep -v 'unsandboxed' >&2 || true)
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
  case "$f" in *.ko) ;; *) echo "setup.sh: compressed module $f not supported" >&2; exit 1;; esac
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
  for app in $("$BUSYBOX" --list); do
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

# 4. Tell run.sh what to boot.
cat > "$CACHE/current.env.tmp" <<EOF
KPKG=$KPKG
PKGVER=$PKGVER
KVER=$KVER
KERNEL=$KROOT/boot/vmlinuz-$KVER
INITRD=$INITRD
MODDIR=$MODDIR
EOF
mv "$CACHE/current.env.tmp" "$CACHE/current.env"
echo "setup.sh: ready: $KPKG $PKGVER (modules: $(printf '%s ' "${ORDER[@]##*/}"))" >&2
