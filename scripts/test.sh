#!/usr/bin/env bash
# Run the test suite with Node's test runner: unit tests first, then the
# end-to-end tests one file at a time (they load real BPF programs and check
# system-wide state such as `bpftool prog list`, so they must not overlap).
# Extra arguments select files by substring, e.g. scripts/test.sh execsnoop
set -euo pipefail
cd "$(dirname "$0")/.."
# The full run (CI) starts with the linter and the type checker: an error in
# either fails it before any test runs.
if [ $# -eq 0 ]; then
  npm run --silent lint
  npm run --silent typecheck
fi
mapfile -t files < <(find dist/test -name '*.test.js' | sort | { if [ $# -gt 0 ]; then grep -E "$(IFS='|'; echo "$*")"; else cat; fi; })
if [ ${#files[@]} -eq 0 ]; then echo "test.sh: no test files (did the build run?)" >&2; exit 1; fi
# One test run at a time per machine: e2e tests assert on system-wide BPF
# state (no program of ours left loaded), so two runs side by side (several
# checkouts, several engineers) would see each other's programs.
exec 9>/tmp/rbtrace-tests.lock
flock 9
# The lock's fd is not passed on: a traced command must see only its own fds.
node --test --test-concurrency=1 "${files[@]}" 9>&-
