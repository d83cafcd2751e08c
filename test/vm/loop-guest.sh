#!/usr/bin/env bash
# Inside the test VM (started by test/vm/loop.sh through run.sh): run the
# same `node --test` again and again until a deadline, to catch a rare crash,
# and keep what a crash leaves: per iteration its TAP, stderr, exit status,
# the kernel log lines it added (dmesg), and any core dump.
#
#   loop-guest.sh OUTDIR ROOT SECONDS MAX_ITERATIONS STOP_ON_FAIL PATTERN FILE...
#
# ROOT: the snapshot to test (cwd); PATTERN '-' = every test.
# Writes OUTDIR/iter-N.{tap,err,status,dmesg}, OUTDIR/cores/, OUTDIR/summary.
set -uo pipefail
OUT=$1 ROOT=$2 SECS=$3 MAXN=$4 STOP=$5 PATTERN=$6
shift 6
cd "$ROOT" || exit 125

# Core dumps straight to the host (9p), and the kernel's register dump for
# every fatal signal ("potentially unexpected fatal signal"), besides its
# usual "segfault at ... ip ... in lib[...]" line (as matrix-guest.sh).
mkdir -p "$OUT/cores"
echo "$OUT/cores/core.%e.%p.%s" > /proc/sys/kernel/core_pattern
echo 1 > /proc/sys/kernel/print-fatal-signals
echo 1 > /proc/sys/debug/exception-trace 2>/dev/null || true
ulimit -c unlimited
dmesg -c > "$OUT/boot.dmesg"

opts=(--test --test-concurrency=1 --test-reporter=tap)
[ "$PATTERN" = - ] || opts+=("--test-name-pattern=$PATTERN")
deadline=$(( $(date +%s) + SECS ))
n=0 bad=0
while [ "$(date +%s)" -lt "$deadline" ] && [ "$n" -lt "$MAXN" ]; do
  n=$((n + 1))
  start=$(date +%s)
  RBTRACE_VM_CHECKLOG=$OUT/iter-$n.checks timeout -k 10 900 node "${opts[@]}" "$@" > "$OUT/iter-$n.tap" 2> "$OUT/iter-$n.err"
  rc=$?
  secs=$(( $(date +%s) - start ))
  dmesg -c > "$OUT/iter-$n.dmesg"
  cores=$(comm -13 <(sort <<< "${seen:-}") <(ls "$OUT/cores" | sort))
  seen=$(ls "$OUT/cores")
  sig=$(grep -a -m1 -o "signal: 'SIG[A-Z]*'" "$OUT/iter-$n.tap")
  fails=$(grep -a -m1 '^# fail ' "$OUT/iter-$n.tap" | awk '{print $3}')
  verdict=ok
  if [ "$rc" != 0 ] || [ -n "$sig" ] || [ -n "$cores" ] || [ "${fails:-1}" != 0 ]; then verdict=FAIL; bad=$((bad + 1)); fi
  line="iter $n: $verdict exit $rc ${secs}s fail=${fails:-?} ${sig} cores=[${cores//$'\n'/ }] dmesg=$(wc -l < "$OUT/iter-$n.dmesg")"
  echo "$line" >> "$OUT/summary"
  echo "loop: $line" >&2
  if [ "$verdict" = FAIL ] && [ "$STOP" = 1 ]; then break; fi
done
echo "done: $n iterations, $bad failed" >> "$OUT/summary"
sync
[ "$bad" = 0 ]
