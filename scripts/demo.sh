#!/usr/bin/env bash
# The demo: rbtrace synqueue --demo reproduces the classic somaxconn
# experiment on loopback: two slow-accepting servers (listen backlog 500 and
# 4096, the latter capped by net.core.somaxconn), a built-in load generator
# bursting connections at both, and the live view of their SYN and accept
# queues: the small one fills and overflows, the large one holds. It ends by
# itself after 12 seconds (or on Ctrl-C) and leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./bin/rbtrace synqueue --demo "$@"
