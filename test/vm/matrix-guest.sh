#!/usr/bin/env bash
# Inside the test VM (started by test/vm/matrix.sh through run.sh): run the
# groups of a matrix plan, one `node --test` per group, and leave the raw
# results in the plan's directory (on the host, through the repo's 9p share).
# All judging happens on the host (matrix.sh), so this stays small.
#
#   matrix-guest.sh OUTDIR ROOT
#
# ROOT: the checkout (or snapshot of bin/ dist/ build/ ...) to test; the
# plan's file names are relative to it.
#
# OUTDIR/plan: one group per line, tab-separated:
#   LABEL  ATTACH  BPF_DIR  NAME_PATTERN  TIMEOUT_S  FILE...
# ATTACH '-' = leave RBTRACE_ATTACH unset (each tool picks its own path);
# BPF_DIR '-' = the build's objects; NAME_PATTERN '-' = every test.
# Writes OUTDIR/doctor.json (+ .err), and per group LABEL.tap, LABEL.err,
# LABEL.status ("EXIT SECONDS"), LABEL.dmesg (the kernel log lines the group
# added), LABEL.checks (each check's start and end, where the test file
# writes them: RBTRACE_VM_CHECKLOG) and core dumps in OUTDIR/cores/, so that a
# test process killed by a signal says where and in which check.
set -uo pipefail
OUT=$1
cd "$2" || exit 125

echo "matrix: kernel $(uname -r), $(nproc) cpus" >&2
# A crash must say where: core dumps straight to the host (9p, not the
# guest's memory), and the kernel's register dump for every fatal signal
# besides its "segfault at ... ip ... in LIB[...]" line.
mkdir -p "$OUT/cores"
echo "$OUT/cores/core.%e.%p.%s" > /proc/sys/kernel/core_pattern
echo 1 > /proc/sys/kernel/print-fatal-signals
ulimit -c unlimited
dmesg -c > "$OUT/boot.dmesg"
./bin/rbtrace doctor --json > "$OUT/doctor.json" 2> "$OUT/doctor.err"
echo $? > "$OUT/doctor.status"

while IFS=$'\t' read -r label attach bpfdir pattern tmo files; do
  [ -n "$label" ] || continue
  read -r -a argv <<< "$files"
  opts=(--test --test-concurrency=1 --test-reporter=tap)
  [ "$pattern" = - ] || opts+=("--test-name-pattern=$pattern")
  echo "matrix: [$label] RBTRACE_ATTACH=$attach: ${argv[*]}" >&2
  start=$(date +%s)
  (
    unset RBTRACE_ATTACH RBTRACE_BPF_DIR
    [ "$attach" = - ] || export RBTRACE_ATTACH=$attach
    [ "$bpfdir" = - ] || export RBTRACE_BPF_DIR=$bpfdir
    export RBTRACE_VM_CHECKLOG=$OUT/$label.checks
    exec timeout -k 10 "$tmo" node "${opts[@]}" "${argv[@]}"
  ) > "$OUT/$label.tap" 2> "$OUT/$label.err"
  rc=$?
  end=$(date +%s)
  echo "$rc $((end - start))" > "$OUT/$label.status"
  dmesg -c > "$OUT/$label.dmesg"
  echo "matrix: [$label] exit $rc after $((end - start)) s" >&2
done < "$OUT/plan"
sync
