#!/usr/bin/env bash
# CI entry for the kernel matrix (issue 7): set up the 6.1 VM (downloads the
# kernel package once, builds the initramfs; needs apt), then run the subset
# matrix: execsnoop + synqueue e2e tests with RBTRACE_ATTACH forced to fentry,
# kprobe and tracepoint, plus `rbtrace doctor` in the guest. Expects a build
# (`npm run build`). Last line: "N passed, N failed"; exit 0 only if none failed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/setup.sh"
exec "$HERE/matrix.sh" "$@"
