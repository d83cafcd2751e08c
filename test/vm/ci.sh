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
#
# Two lanes, side by side, each guest with one vCPU (RBTRACE_VM_SMP, default 1
# here): a guest's checks run one at a time, but with two vCPUs a guest kept
# both host cores busy (node's compiler and GC threads under TCG), so two
# guests side by side each ran at half speed (x86 6.1: 511 s alone, 1007 s
# beside arm64). With one vCPU each, side by side: x86 6.1 619 s, arm64
# 826 s (2026-12-07). rbtrace's SIGSEGV in the arm64 guest (README.md,
# "Kernel facts") was seen with two vCPUs only.
# Lane 1 takes the 1st, 3rd, ... x86 kernel; lane 2 the arm64 cells, then
# the 2nd, 4th, ... x86 kernel: 5.10 + 6.12 beside arm64 + 6.1, 5.10 being
# the slowest guest (its fork and exec cost twice 6.1's). Measured in the
# fresh-clone CI run: lane 1 32 min, lane 2 about 23. Lane 1's report comes
# as it runs (a cell at a time); lane 2's is kept and printed after it,
# whole, so the two never interleave. The last line is the sum.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KERNELS=${RBTRACE_VM_KERNELS:-5.10,6.1,6.12}
ARM64_KERNELS=${RBTRACE_VM_KERNELS_ARM64-6.1}
for k in ${KERNELS//,/ }; do "$HERE/setup.sh" --kernel "$k"; done
for k in ${ARM64_KERNELS//,/ }; do "$HERE/setup.sh" --arch arm64 --kernel "$k"; done

export RBTRACE_VM_SMP=${RBTRACE_VM_SMP:-1}
lane1=() lane2=() i=0
for k in ${KERNELS//,/ }; do
  if ((i % 2 == 0)); then lane1+=("$k"); else lane2+=("$k"); fi
  i=$((i + 1))
done

# run_lane LOG ARM64_KERNELS X86_KERNELS... : each cell's matrix.sh in turn;
# a failing cell does not stop the ones after it. Its last line is the lane's sum.
run_lane() {
  local log=$1 arm=$2 cell p=0 f=0 rc=0
  shift 2
  local cells=()
  [ -z "$arm" ] || cells+=("--arch arm64 --kernel $arm")
  for k in "$@"; do cells+=("--kernel $k"); done
  for cell in "${cells[@]}"; do
    # shellcheck disable=SC2086
    "$HERE/matrix.sh" --ci $cell "${EXTRA[@]}" >> "$log" 2>&1 || rc=1
    if [[ "$(tail -n1 "$log")" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
      p=$((p + BASH_REMATCH[1])); f=$((f + BASH_REMATCH[2]))
    else
      f=$((f + 1)); echo "  ($cell: no result line)" >> "$log"
    fi
  done
  echo "$p passed, $f failed" >> "$log"
  return "$rc"
}
EXTRA=("$@")
lane1_log=$(mktemp) lane2_log=$(mktemp)
trap 'rm -f "$lane1_log" "$lane2_log"' EXIT
rc=0
run_lane "$lane2_log" "$ARM64_KERNELS" "${lane2[@]}" &
lane2_pid=$!
# Lane 1 as it runs: tail follows its log until the lane ends.
run_lane "$lane1_log" "" "${lane1[@]}" &
lane1_pid=$!
tail -n +1 -f --pid="$lane1_pid" "$lane1_log" || true
wait "$lane1_pid" || rc=1
wait "$lane2_pid" || rc=1
cat "$lane2_log"
all_p=0 all_f=0
for log in "$lane1_log" "$lane2_log"; do
  if [[ "$(tail -n1 "$log")" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    all_p=$((all_p + BASH_REMATCH[1])); all_f=$((all_f + BASH_REMATCH[2]))
  else
    all_f=$((all_f + 1)); echo "  ($log: no result line)"
  fi
done
echo "$all_p passed, $all_f failed"
[ "$rc" = 0 ] && [ "$all_f" = 0 ]
