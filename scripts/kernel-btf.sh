#!/usr/bin/env bash
# The BTF of Debian 12's stock 6.12 kernel for a BPF target architecture
# (x86 or arm64), for building that architecture's objects on a machine of
# another one (docs/ARCH.md says why this and not a committed vmlinux.h):
#
#   scripts/kernel-btf.sh arm64     # -> build/btf/arm64.btf, build/btf/arm64.json (fingerprint)
#
# Downloads linux-image-6.12.N+deb12-<debian arch> (bookworm-security; the
# newest apt knows; pin with RBTRACE_BTF_KPKG=linux-image-6.12.117+deb12-arm64).
# 6.12, not 6.1: the objects use types newer than 6.1 (kfree_skb's rx_sk,
# sk_data_ready's tracepoint, SKB_DROP_REASON_TCP_LISTEN_OVERFLOW) and read
# them only where the running kernel has them (CO-RE); 6.1's vmlinux.h does
# not declare them.
# with private apt state under build/debian-<arch>/ and reads the .BTF blob
# out of its vmlinuz (scripts/kernel-btf.mjs). Idempotent: does nothing when
# build/btf/<arch>.btf exists and no package is pinned; copies it from
# ~/.cache/rbtrace/btf/ (RBTRACE_CACHE_DIR) when another checkout made it.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:?usage: kernel-btf.sh x86|arm64}
case "$ARCH" in
  x86) DEBARCH=amd64 ;;
  arm64) DEBARCH=arm64 ;;
  *) echo "kernel-btf: $ARCH: not x86 or arm64" >&2; exit 2 ;;
esac
OUT=build/btf/$ARCH
mkdir -p build/btf
# have FILE.btf FILE.json: both there, and of the pinned package if one is.
have() { [ -s "$1.btf" ] && [ -s "$1.json" ] && { [ -z "${RBTRACE_BTF_KPKG:-}" ] || grep -q "\"${RBTRACE_BTF_KPKG#linux-image-}\"" "$1.json"; }; }
have "$OUT" && exit 0
# Once per machine, not per checkout: the BTF (a few MB) is kept in the
# user's cache, the 93 MB package is not kept at all.
CACHE=${RBTRACE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rbtrace}/btf
if have "$CACHE/$ARCH"; then
  cp "$CACHE/$ARCH.btf" "$OUT.btf.tmp" && cp "$CACHE/$ARCH.json" "$OUT.json.tmp"
  mv "$OUT.btf.tmp" "$OUT.btf" && mv "$OUT.json.tmp" "$OUT.json"
  echo "kernel-btf: build/btf/$ARCH.btf from $CACHE (downloaded once per machine)" >&2
  exit 0
fi
. scripts/debian-apt.sh
debian_apt_init "$DEBARCH" "build/debian-$DEBARCH"
KPKG=${RBTRACE_BTF_KPKG:-$(debian_apt_newest "^linux-image-6\\.12\\.[0-9]+\\+deb12-$DEBARCH\$")}
[ -n "$KPKG" ] || { echo "kernel-btf: no linux-image-6.12.N+deb12-$DEBARCH in Debian 12's lists" >&2; exit 1; }
KVER=${KPKG#linux-image-}
debian_apt_download "build/debian-$DEBARCH/debs" "$KPKG"
DEB=$(ls "build/debian-$DEBARCH/debs/${KPKG}"_*.deb | head -n1)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$TMP" "./boot/vmlinuz-$KVER"
node scripts/kernel-btf.mjs "$TMP/boot/vmlinuz-$KVER" "$KVER" "$OUT.btf.tmp" > "$OUT.json.tmp"
mv "$OUT.btf.tmp" "$OUT.btf"
mv "$OUT.json.tmp" "$OUT.json"
echo "kernel-btf: build/btf/$ARCH.btf from $(basename "$DEB") ($(stat -c %s "$OUT.btf") bytes)" >&2
if mkdir -p "$CACHE" 2>/dev/null && cp "$OUT.btf" "$CACHE/$ARCH.btf.$$" && cp "$OUT.json" "$CACHE/$ARCH.json.$$"; then
  mv "$CACHE/$ARCH.btf.$$" "$CACHE/$ARCH.btf" && mv "$CACHE/$ARCH.json.$$" "$CACHE/$ARCH.json"
fi
rm -f "$DEB"
