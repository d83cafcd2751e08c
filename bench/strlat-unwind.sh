#!/usr/bin/env bash
# bench/strlat-unwind: what --unwind dwarf adds per call to `strlat --stack`,
# against --unwind fp in the same run. A -O2 -fomit-frame-pointer program
# calls work() N times from 3 frames down, spinning SPIN iterations between
# calls so that rbtrace keeps up (every call's stack copy is sent and unwound,
# none dropped: a dropped record skips the copy and would flatter dwarf).
# The loop (bench/call-loop.c) times itself in CPU time: the probes' BPF
# programs run in the traced thread and count there, and a loaded machine
# (other processes, rbtrace's own start-up) changes the figures less than it
# would wall time.
# Prints, best of ROUNDS interleaved runs: the loop's CPU ns per call plain,
# under --stack (fp) and under --stack --unwind dwarf, the added cost of
# each, the calls whose stack reached a report, and rbtrace's own unwinding
# time per call (-v).
# Usage: flock /tmp/rbtrace-tests.lock bash bench/strlat-unwind.sh [N] [SPIN] [ROUNDS]
#        (default 100000 calls, 20000 spins, 3 rounds; needs root, cc)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
SPIN=${2:-20000}
ROUNDS=${3:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O2 -fomit-frame-pointer -o "$dir/loop" bench/call-loop.c
prog=$dir/loop

# One traced run: "ns/call calls-in-stack-rows unwind-us-per-call" (the JSON report on stdout with -o -,
# the loop's own line too; -v's note on stderr).
traced() {
  ./bin/rbtrace strlat -v -o - --json --stack --unwind "$1" --lib "$prog" --func work -- "$prog" "$N" "$SPIN" cpu \
    >"$dir/out" 2>"$dir/err"
  local ns rows us
  ns=$(grep -E '^[0-9.]+$' "$dir/out" | tail -1)
  rows=$(grep '^{' "$dir/out" | tail -1 | jq '[.stacks[].count] | add // 0')
  us=$(sed -n 's/.* and \([0-9]*\) us of unwinding per call.*/\1/p' "$dir/err")
  echo "$ns $rows ${us:--}"
}

best() { sort -n | head -1; }
: >"$dir/plain"; : >"$dir/fp"; : >"$dir/dwarf"
for _ in $(seq "$ROUNDS"); do
  "$prog" "$N" "$SPIN" cpu >>"$dir/plain"
  traced fp >>"$dir/fp"
  traced dwarf >>"$dir/dwarf"
done
plain=$(best <"$dir/plain")
read -r fp fprows _ < <(sort -n "$dir/fp" | head -1)
read -r dw dwrows dwus < <(sort -n "$dir/dwarf" | head -1)
awk -v p="$plain" -v f="$fp" -v d="$dw" -v n="$N" -v fr="$fprows" -v dr="$dwrows" -v du="$dwus" 'BEGIN {
  printf "calls per run:                 %d (best of rounds)\n", n
  printf "plain:                         %8.0f ns/call\n", p
  printf "--stack (fp):                  %8.0f ns/call  (+%.0f ns; %d calls in stack rows)\n", f, f - p, fr
  printf "--stack --unwind dwarf:        %8.0f ns/call  (+%.0f ns; %d calls in stack rows)\n", d, d - p, dr
  printf "dwarf - fp, in the target:     %8.0f ns/call\n", d - f
  printf "rbtrace unwinding (-v):        %8s us/call\n", du
}'
