#!/usr/bin/env bash
# CI entry for the kernel matrix (issues 7, 13, 17): set up the 5.10, 6.1 and
# 6.12 VMs and the arm64 6.1 VM (downloads each kernel package once, builds
# the initramfs and, for arm64, its userland; needs apt and npm), then run the
# CI subset on each, one boot per kernel: `rbtrace doctor` (every tool
# available) and every test/vm/guest/*.check.ts (one exact check per tool x
# attach path the kernel offers). Expects a build (`npm run build`).
# Last line: "N passed, N failed" (all kernels); exit 0 only if none failed.
#   RBTRACE_VM_KERNELS=6.1 test/vm/ci.sh     # fewer x86 kernels
#   RBTRACE_VM_KERNELS_ARM64= test/vm/ci.sh  # no arm64 cell (default: 6.1)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KERNELS=${RBTRACE_VM_KERNELS:-5.10,6.1,6.12}
ARM64_KERNELS=${RBTRACE_VM_KERNELS_ARM64-6.1}
for k in ${KERNELS//,/ }; do "$HERE/setup.sh" --kernel "$k"; done
[ -z "$ARM64_KERNELS" ] && exec "$HERE/matrix.sh" --ci --kernel "$KERNELS" "$@"

for k in ${ARM64_KERNELS//,/ }; do "$HERE/setup.sh" --arch arm64 --kernel "$k"; done
# Both cells in turn; each prints its report, the last line is the sum.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0 all_p=0 all_f=0
for cell in "--kernel $KERNELS" "--arch arm64 --kernel $ARM64_KERNELS"; do
  # shellcheck disable=SC2086
  "$HERE/matrix.sh" --ci $cell "$@" 2>&1 | tee "$log" || rc=1
  if [[ "$(tail -n1 "$log")" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    all_p=$((all_p + BASH_REMATCH[1])); all_f=$((all_f + BASH_REMATCH[2]))
  else
    all_f=$((all_f + 1)); echo "  ($cell: no result line)"
  fi
done
echo "$all_p passed, $all_f failed"
[ "$rc" = 0 ] && [ "$all_f" = 0 ]
