#!/usr/bin/env bash
# CI entry for the kernel matrix (issues 7, 13): set up the 5.10, 6.1 and
# 6.12 VMs (downloads each kernel package once, builds the initramfs; needs
# apt), then run the CI subset on each, one boot per kernel: `rbtrace doctor`
# (every tool available) and test/vm/guest/paths.check.ts (one exact check per
# tool x attach path the kernel offers). Expects a build (`npm run build`).
# Last line: "N passed, N failed" (all kernels); exit 0 only if none failed.
#   RBTRACE_VM_KERNELS=6.1 test/vm/ci.sh     # fewer kernels
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KERNELS=${RBTRACE_VM_KERNELS:-5.10,6.1,6.12}
for k in ${KERNELS//,/ }; do "$HERE/setup.sh" --kernel "$k"; done
exec "$HERE/matrix.sh" --ci --kernel "$KERNELS" "$@"
