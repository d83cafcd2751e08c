#!/usr/bin/env bash
# Debian 13 (trixie)'s Ruby 3.3 unpacked into a root of its own, to be run
# in its own mount namespace as a container image would be (test/ruby-root.ts):
# ruby3.3, libruby3.3 and the closure of their Depends/Pre-Depends, from
# trixie, through a private apt directory (scripts/debian-apt.sh: the host's
# apt state is not touched), each .deb unpacked with dpkg-deb -x (no
# maintainer scripts run). Idempotent: a root already made for the same
# package set is kept.
#
#   bash scripts/debian13-ruby.sh        # prints the root's path
#   RBTRACE_RUBY33_CACHE=DIR to cache elsewhere (default /var/cache/rbtrace/debian13-ruby)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${RBTRACE_RUBY33_CACHE:-/var/cache/rbtrace/debian13-ruby}
ROOT=$CACHE/root
if [ -x "$ROOT/usr/bin/ruby3.3" ] && [ -f "$ROOT/.rbtrace-done" ]; then
  echo "$ROOT"
  exit 0
fi
ARCH=$(dpkg --print-architecture)
. "$HERE/debian-apt.sh"
debian_apt_init "$ARCH" "$CACHE/apt" trixie
# Depends and Pre-Depends, recursively (no Recommends): virtual packages
# (<name>) are left out, what provides them is listed too.
mapfile -t PKGS < <(apt-cache "${DEBIAN_APT_OPTS[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances ruby3.3 libruby3.3 | grep -v '^ ' | grep -v '^<' | sort -u)
[ ${#PKGS[@]} -gt 3 ] || { echo "debian13-ruby: no dependency closure for ruby3.3 in trixie" >&2; exit 1; }
debian_apt_download "$CACHE/debs" "${PKGS[@]}"
rm -rf "$ROOT.new"
mkdir -p "$ROOT.new"
for p in "${PKGS[@]}"; do
  for deb in "$CACHE/debs/${p}"_*.deb; do dpkg-deb -x "$deb" "$ROOT.new"; done
done
# Debian's merged /usr: the ELF interpreter is /lib64/ld-linux-x86-64.so.2.
for d in bin sbin lib lib64; do
  [ -e "$ROOT.new/$d" ] || [ ! -d "$ROOT.new/usr/$d" ] || ln -s "usr/$d" "$ROOT.new/$d"
done
# Mount points for the namespace's bind mounts (scripts/debian13-ruby-run.sh).
mkdir -p "$ROOT.new/proc" "$ROOT.new/dev" "$ROOT.new/tmp"
touch "$ROOT.new/.rbtrace-done"
rm -rf "$ROOT"
mv "$ROOT.new" "$ROOT"
"$HERE/debian13-ruby-run.sh" "$ROOT" -e 'print RUBY_VERSION' >/dev/null
echo "$ROOT"
