#!/usr/bin/env bash
# What a tool costs while nothing happens, and while events stream: the
# steady CPU (utime+stime of its process from WARM s after start, over WINDOW
# seconds, so node's start-up is not counted) of this build, of a baseline
# build (--baseline OTHER/bin/rbtrace, e.g. the previous stop's) and of a bare
# idle node, all in the same window, in % of one core.
#   idle:    profile -p and profile --unwind dwarf -p of a sleeping process,
#            execsnoop, opensnoop -p of a sleeping process
#   busy:    profile --unwind dwarf and --unwind fp -F 49 of a busy ruby; execsnoop under
#            ~200 execs a second (the stream is read in batches, not per record)
# --warm: seconds before the window opens (default 4; 20 leaves V8's
# optimizing compiler out, which is most of a 49 Hz profile's first 20 s).
# Usage: bench/idle.sh [--baseline OTHER/bin/rbtrace] [--warm SECONDS] [--window SECONDS]   (root; from the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE= WINDOW=12 WARM=4
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline) BASE=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --warm) WARM=$2; shift 2 ;;
    *) echo "idle.sh: unknown option $1 (usage: bench/idle.sh [--baseline OTHER/bin/rbtrace] [--warm SECONDS] [--window SECONDS])" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# measure LABEL -- CMD...: runs CMD (this build, the baseline, a bare node) side by side; prints % of one core.
measure() {
  local label=$1; shift 2
  local runs=("bin/rbtrace") names=("this build") p a b i
  [ -z "$BASE" ] || { runs+=("$BASE"); names+=("baseline"); }
  local started=() cpu=()
  for bin in "${runs[@]}"; do
    node "$bin" "$@" -d $((WARM + WINDOW + 2)) > /dev/null 2>&1 &
    started+=($!)
  done
  node -e 'setInterval(() => {}, 1 << 30)' & started+=($!)
  names+=("bare node")
  sleep "$WARM"
  for p in "${started[@]}"; do a[$p]=$(ticks "$p"); done
  sleep "$WINDOW"
  for p in "${started[@]}"; do b=$(ticks "$p"); cpu+=("$(echo "scale=2; ($b - ${a[$p]}) * 100 / $hz / $WINDOW" | bc)"); done
  kill "${started[-1]}"
  for p in "${started[@]::${#started[@]}-1}"; do wait "$p" || true; done
  printf '%-58s' "$label"
  for i in "${!cpu[@]}"; do printf '  %s %5s %%' "${names[$i]}" "${cpu[$i]}"; done
  echo
}

sleep 100000 & sleeper=$!; pids+=($sleeper)
echo "steady CPU, % of one core, over ${WINDOW} s from ${WARM} s after start"
measure "idle: profile -F 49 -p SLEEPING" -- profile -F 49 -p "$sleeper"
measure "idle: profile --unwind dwarf -F 49 -p SLEEPING" -- profile --unwind dwarf -F 49 -p "$sleeper"
measure "idle: opensnoop -p SLEEPING" -- opensnoop -p "$sleeper"
measure "idle: execsnoop (whatever the host execs)" -- execsnoop

ruby -e 'loop { [1, 2, 3].map { |x| x * 2 }.sum; 100.times { } }' & rb=$!; pids+=($rb)
measure "busy: profile --unwind dwarf -F 49 -p RUBY" -- profile --unwind dwarf -F 49 -p "$rb"
measure "busy: profile --unwind fp -F 49 -p RUBY" -- profile --unwind fp -F 49 -p "$rb"
kill "$rb"
bash -c 'while :; do for i in $(seq 20); do /bin/true; done; sleep 0.1; done' & storm=$!; pids+=($storm)
measure "busy: execsnoop, ~200 execs/s" -- execsnoop
kill "$storm"
