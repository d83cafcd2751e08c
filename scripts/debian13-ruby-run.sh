#!/usr/bin/env bash
# Run Debian 13's ruby3.3 from the root scripts/debian13-ruby.sh made, in a
# mount namespace of its own (unshare -m, chroot), as a container image
# would run: /proc, /dev, /tmp and this repository are bind-mounted at the
# same paths, so scripts and files the caller names are found, and the
# probes see the same paths as on the host. The root has no shell: ruby's
# -C enters the caller's directory (or / if it is not bound).
#
#   scripts/debian13-ruby-run.sh ROOT RUBY-ARGS...
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$1
shift
[ -x "$ROOT/usr/bin/ruby3.3" ] || { echo "debian13-ruby-run: no $ROOT/usr/bin/ruby3.3: run scripts/debian13-ruby.sh first" >&2; exit 2; }
mkdir -p "$ROOT$REPO"
exec unshare -m --propagation private -- /bin/sh -c '
  root=$1 repo=$2 cwd=$3
  shift 3
  for d in /proc /dev /tmp "$repo"; do mount --rbind "$d" "$root$d"; done
  case "$cwd" in "$repo"*|/tmp*) ;; *) cwd=/ ;; esac
  exec chroot "$root" /usr/bin/ruby3.3 -C "$cwd" "$@"
' sh "$ROOT" "$REPO" "$PWD" "$@"
