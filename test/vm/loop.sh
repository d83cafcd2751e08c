#!/usr/bin/env bash
# Hunt a rare failure in the kernel matrix: one VM boot runs the same
# `node --test` again and again until a time budget is spent (or N
# iterations), with core dumps on and the kernel log captured after each
# iteration (test/vm/loop-guest.sh). Builds nothing: run `npm run build` first.
#
#   test/vm/loop.sh [--kernel 6.1] [--arch arm64] [--minutes 30] [--iterations N]
#                   [--pattern REGEX] [--files "dist/test/vm/guest/paths.check.js"]
#                   [--keep-going]
#
# Default: paths.check.js, every check, in CI's order, stopping at the first
# failing iteration (--keep-going: run on). Results in
# test/vm/cache/loop/<time>/: summary (one line per iteration), iter-N.tap,
# .err, .dmesg (the kernel lines that iteration added), .checks (each check's
# start and end, from paths.check), cores/ (core.COMM.PID.SIGNAL).
# Exit 0 only if every iteration passed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO"

KERNEL=${RBTRACE_VM_KERNEL:-6.1}
ARCH_OPTS=()
MINUTES=30
MAXN=1000000
PATTERN=-
FILES=dist/test/vm/guest/paths.check.js
STOP=1
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) KERNEL=$2; shift 2 ;;
    --arch) ARCH_OPTS=(--arch "$2"); shift 2 ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --iterations) MAXN=$2; shift 2 ;;
    --pattern) PATTERN=$2; shift 2 ;;
    --files) FILES=$2; shift 2 ;;
    --keep-going) STOP=0; shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "loop.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for f in bin/rbtrace $FILES; do
  [ -e "$f" ] || { echo "loop.sh: $f missing (run npm run build first)" >&2; exit 2; }
done

OUT=$HERE/cache/loop/$(date +%Y%m%d-%H%M%S)-$KERNEL${ARCH_OPTS[1]:+-${ARCH_OPTS[1]}}
# A snapshot, as matrix.sh does: the working tree may be rebuilt mid-run.
SNAP=$OUT/snap
mkdir -p "$SNAP/build"
cp -rp bin dist man package.json "$SNAP/"
cp -rp build/bpf "$SNAP/build/"
ln -s "$REPO/node_modules" "$SNAP/node_modules"
echo "loop.sh: kernel $KERNEL, $MINUTES min, results in ${OUT#"$REPO"/}" >&2
START=$(date +%s)
set +e
# shellcheck disable=SC2086
"$HERE/run.sh" "${ARCH_OPTS[@]}" --kernel "$KERNEL" --timeout $((MINUTES * 60 + 1200)) -- \
  bash "$HERE/loop-guest.sh" "$OUT" "$SNAP" $((MINUTES * 60)) "$MAXN" "$STOP" "$PATTERN" $FILES
rc=$?
set -e
echo "loop.sh: vm exit $rc after $(( $(date +%s) - START )) s" >&2
cat "$OUT/summary" 2>/dev/null || echo "loop.sh: no summary (the VM died?)"
exit "$rc"
