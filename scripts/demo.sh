#!/usr/bin/env bash
# The demo: rbtrace execsnoop watching a short burst of commands that the demo
# itself starts (a shell loop running small programs, one of them failing).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "rbtrace execsnoop -x -T, watching a burst of commands:" >&2
exec ./bin/rbtrace execsnoop -x -T -- /bin/bash -c '
  for i in 1 2 3; do
    ls /proc/self >/dev/null
    date +%s >/dev/null
    /usr/bin/env printf "burst %s\n" "$i" >/dev/null
    /no/such/program 2>/dev/null || true
    sleep 0.2
  done'
