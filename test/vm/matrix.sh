#!/usr/bin/env bash
# Kernel matrix (issues 7, 13): run rbtrace's end-to-end tests on Debian's
# stock kernels (5.10, 6.1, 6.12: kprobes, fentry, BTF) under qemu, and
# report per group. One VM boot per kernel runs every group. Builds nothing:
# run `npm run build` first.
#
#   test/vm/matrix.sh --ci --kernel 5.10,6.1,6.12   # what CI runs (ci.sh): per kernel, one
#                                     # exact check per tool x attach path (test/vm/guest/paths.check.ts)
#   test/vm/matrix.sh                 # subset: execsnoop + synqueue e2e, forced to fentry, kprobe, tracepoint
#   test/vm/matrix.sh --full          # every e2e file (see below), per path
#   test/vm/matrix.sh --self-test     # proves a broken fentry program is caught
#   options: --kernel 5.10|6.1|6.12[,...] (default 6.1; a list runs each in turn)
#            --arch arm64 (issue 17: Debian's arm64 kernel under qemu-system-aarch64
#              with an arm64 userland, run.sh --arch arm64; kernels 6.1, 6.12)
#            --paths fentry,kprobe,tracepoint   --group-timeout SECS
#            --files "dist/test/e2e/a.test.js ..." (instead of the subset)
#
# Also checks `rbtrace doctor --json` in the guest: fentry and kprobe must be
# available there (and with --ci, every tool). Exit status 0 only if every
# group passed (and doctor). The last line is always "N passed, N failed"
# (doctor counts as one check; with several kernels, the sum).
#
# --full: a file runs under forced path P only if its tool offers P (asked
# from `rbtrace TOOL` itself: a forced unknown path lists the tool's paths);
# files whose tool offers none of the matrix paths (uprobe/usdt tools) run
# once more without RBTRACE_ATTACH, in group "auto", so the whole suite still
# runs on 6.1.
#
# Raw results (TAP per group, doctor.json) stay in test/vm/cache/matrix/<time>/,
# with the snapshot of bin/ dist/ build/bpf/ man/ the guest ran (snap/).
set -euo pipefail

# Everything runs from main(), so that bash has read the whole file before a
# long run starts (editing a running script otherwise changes what it does).
main() {
  local ALL_ARGS=("$@")

  HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  REPO=$(cd "$HERE/../.." && pwd)
  cd "$REPO"

  MODE=subset
  KERNELS=${RBTRACE_VM_KERNEL:-6.1}
  ARCH=${RBTRACE_VM_ARCH:-x86}
  PATHS=fentry,kprobe,tracepoint
  GROUP_TIMEOUT=
  FILES=
  REPORT=
  while [ $# -gt 0 ]; do
    case "$1" in
      --full) MODE=full; shift ;;
      --ci) MODE=ci; shift ;;
      --kernel) KERNELS=$2; shift 2 ;;
      --arch) ARCH=$2; shift 2 ;;
      --self-test) MODE=selftest; shift ;;
      --paths) PATHS=$2; shift 2 ;;
      --group-timeout) GROUP_TIMEOUT=$2; shift 2 ;;
      --files) FILES=$2; shift 2 ;;
      --report) REPORT=$(cd "$2" && pwd); shift 2 ;;
      -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) echo "matrix.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
  done
  IFS=, read -r -a PATH_LIST <<< "$PATHS"

  # Several kernels: run this script once per kernel, one after the other, and
  # add up. Each prints its own report; the last line is the total.
  if [[ "$KERNELS" == *,* ]] && [ -z "$REPORT" ]; then
    local k all_p=0 all_f=0 rc=0 line args=("${ALL_ARGS[@]}") log
    log=$(mktemp)
    for k in ${KERNELS//,/ }; do
      # the last --kernel wins; its report goes to stdout as it comes
      # Not under set -e: a failing kernel must not hide the ones after it.
      set +e
      bash "${BASH_SOURCE[0]}" "${args[@]}" --kernel "$k" 2>&1 | tee "$log"
      [ "${PIPESTATUS[0]}" = 0 ] || rc=1
      set -e
      line=$(tail -n1 "$log")
      if [[ "$line" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        all_p=$((all_p + BASH_REMATCH[1])); all_f=$((all_f + BASH_REMATCH[2]))
      else
        all_f=$((all_f + 1)); echo "  kernel $k: no result line"
      fi
    done
    rm -f "$log"
    echo "$all_p passed, $all_f failed"
    [ "$rc" = 0 ] && [ "$all_f" = 0 ]
    return
  fi
  SERIES=$KERNELS
  # The cache's env file and run.sh's options for this cell (x86: as before).
  ENVNAME=$SERIES
  ARCH_OPTS=()
  if [ "$ARCH" = arm64 ]; then ENVNAME=arm64-$SERIES; ARCH_OPTS=(--arch arm64); fi

  if [ -n "$REPORT" ]; then
    OUT=$REPORT
    MODE=$(cat "$OUT/mode")
    SERIES=$(cat "$OUT/kernel" 2>/dev/null || echo 6.1)
    ARCH=$(cat "$OUT/arch" 2>/dev/null || echo x86)
    ENVNAME=$SERIES
    [ "$ARCH" = x86 ] || ENVNAME=$ARCH-$SERIES
    read -r VMRC WALL < "$OUT/vm.status" || { VMRC=?; WALL=?; }
    . "$HERE/cache/$ENVNAME.env"
  else
    for f in bin/rbtrace dist/src/cli.js build/bpf/x86/execsnoop.bpf.o dist/test/e2e/execsnoop.test.js; do
      [ -e "$f" ] || { echo "matrix.sh: $f missing (run npm run build first)" >&2; exit 2; }
    done

    OUT=$HERE/cache/matrix/$(date +%Y%m%d-%H%M%S)-$SERIES$([ "$ARCH" = x86 ] || echo "-$ARCH")
    mkdir -p "$OUT"
    echo "$MODE" > "$OUT/mode"
    echo "$SERIES" > "$OUT/kernel"
    echo "$ARCH" > "$OUT/arch"

    # The guest reads the files live over 9p, and this working tree is shared:
    # a rebuild on the host mid-run (new bundle chunk names) would break tests
    # that have nothing to do with the kernel. So the guest runs a snapshot of
    # what a run needs (node_modules, which builds do not touch, is linked).
    SNAP=$OUT/snap
    mkdir -p "$SNAP/build"
    cp -rp bin dist man package.json "$SNAP/"   # -p: bin/rbtrace picks dist/bundle or dist/src by mtime
    cp -rp build/bpf "$SNAP/build/"
    ln -s "$REPO/node_modules" "$SNAP/node_modules"
    : > "$OUT/plan"
    TOTAL_TIMEOUT=300   # boot, doctor, margin

    # add_group LABEL ATTACH BPF_DIR PATTERN TIMEOUT FILE...
    add_group() {
      local label=$1 attach=$2 bpfdir=$3 pattern=$4 tmo=$5
      shift 5
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$attach" "$bpfdir" "$pattern" "$tmo" "$*" >> "$OUT/plan"
      TOTAL_TIMEOUT=$((TOTAL_TIMEOUT + tmo + 15))
    }

    # The attach paths a tool offers, from its own usage error.
    tool_paths() {
      RBTRACE_ATTACH=__matrix_list__ timeout 60 ./bin/rbtrace "$1" -- /bin/true 2>&1 \
        | sed -n "s/.*is not one of this tool's (\([^)]*\)).*/\1/p" | tr -d ' '
    }

    # ---- self-test: broken copies of execsnoop's object ------------------------
    # build_broken NAME PERL_SUBSTITUTION: copy build/bpf/ to cache/selftest/NAME,
    # apply the substitution to a copy of execsnoop.bpf.c (it must change the
    # file), compile it exactly as scripts/build-bpf.sh does, and print the dir.
    build_broken() {
      local name=$1 subst=$2 dir=$HERE/cache/selftest/$1 arch
      rm -rf "$dir"
      mkdir -p "$dir/src"
      case "$(uname -m)" in x86_64) arch=x86 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
      cp "$SNAP"/build/bpf/$arch/*.bpf.o "$dir/"   # this architecture's objects (build-bpf.sh)
      cp src/bpf/execsnoop.bpf.c "$dir/src/execsnoop.bpf.c"
      perl -0pi -e "$subst" "$dir/src/execsnoop.bpf.c"
      if cmp -s src/bpf/execsnoop.bpf.c "$dir/src/execsnoop.bpf.c"; then
        echo "matrix.sh: self-test: the '$name' edit no longer applies to src/bpf/execsnoop.bpf.c (update build_broken)" >&2
        exit 2
      fi
      clang -O2 -g -target bpf -D__TARGET_ARCH_$arch -Wall -Werror -Wno-unused-function \
        -Ibuild -Isrc/bpf/include -Isrc/bpf -c "$dir/src/execsnoop.bpf.c" -o "$dir/src/execsnoop.o"
      bpftool gen object "$dir/execsnoop.bpf.o" "$dir/src/execsnoop.o"
      echo "$dir/"   # rbtrace appends the object's name to RBTRACE_BPF_DIR as is
    }

    case "$MODE" in
      ci)
        : "${GROUP_TIMEOUT:=2400}"
        # Every guest check file: paths.check.js (the first tools) and one per later tool family.
        [ -n "$FILES" ] || FILES=$(ls dist/test/vm/guest/*.check.js | tr '\n' ' ')
        add_group "paths-$ENVNAME" - - - "$GROUP_TIMEOUT" $FILES
        ;;
      subset)
        : "${GROUP_TIMEOUT:=1500}"
        [ -n "$FILES" ] || FILES="dist/test/e2e/execsnoop.test.js dist/test/e2e/synqueue.test.js"
        for p in "${PATH_LIST[@]}"; do add_group "$p" "$p" - - "$GROUP_TIMEOUT" $FILES; done
        ;;
      full)
        : "${GROUP_TIMEOUT:=5400}"
        [ -n "$FILES" ] || FILES=$(ls dist/test/e2e/*.test.js | tr '\n' ' ')
        declare -A in_some=()
        declare -A per_path=()
        for f in $FILES; do
          tool=$(basename "$f" .test.js)
          offered=$(tool_paths "$tool" || true)
          echo "matrix.sh: $tool offers: ${offered:-?}" >&2
          for p in "${PATH_LIST[@]}"; do
            if [[ ",$offered," == *",$p,"* ]]; then
              per_path[$p]+=" $f"
              in_some[$f]=1
            fi
          done
        done
        for p in "${PATH_LIST[@]}"; do
          [ -n "${per_path[$p]:-}" ] && add_group "$p" "$p" - - "$GROUP_TIMEOUT" ${per_path[$p]}
        done
        rest=
        for f in $FILES; do [ -n "${in_some[$f]:-}" ] || rest+=" $f"; done
        [ -n "$rest" ] && add_group auto - - - "$GROUP_TIMEOUT" $rest
        ;;
      selftest)
        : "${GROUP_TIMEOUT:=900}"
        # 1. The verifier rejects it: fe_enter_execve reads above the stack frame.
        V=$(build_broken verifier 's/(int BPF_PROG\(fe_enter_execve, struct pt_regs \*regs\)\n\{\n)/$1\tasm volatile("r0 = *(u64 *)(r10 + 8)" ::: "r0");\n/')
        # 2. It loads and attaches but reads the wrong register: argv from envp.
        A=$(build_broken argv 's/(int BPF_PROG\(fe_enter_execve, .*?PT_REGS_PARM)2(_CORE_SYSCALL)/${1}3$2/s')
        T=dist/test/e2e/execsnoop.test.js
        # Only the per-path tests ("[path] ..."): they are the ones that check
        # what the path records. Intact runs are the baseline on this kernel.
        add_group st-fentry-intact fentry - '^\[' "$GROUP_TIMEOUT" $T
        add_group st-fentry-verifier fentry "$V" '^\[' "$GROUP_TIMEOUT" $T
        add_group st-fentry-argv fentry "$A" '^\[' "$GROUP_TIMEOUT" $T
        add_group st-tracepoint-intact tracepoint - '^\[' "$GROUP_TIMEOUT" $T
        add_group st-tracepoint-verifier tracepoint "$V" '^\[' "$GROUP_TIMEOUT" $T
        ;;
    esac

    # shellcheck disable=SC1091
    [ -f "$HERE/cache/$ENVNAME.env" ] || "$HERE/setup.sh" "${ARCH_OPTS[@]}" --kernel "$SERIES"
    . "$HERE/cache/$ENVNAME.env"
    echo "matrix.sh: $MODE on $KVER ($PKGVER), $(wc -l < "$OUT/plan") groups, results in ${OUT#"$REPO"/}" >&2
    START=$(date +%s)
    set +e
    for attempt in 1 2; do
      "$HERE/run.sh" "${ARCH_OPTS[@]}" --kernel "$SERIES" --timeout "$TOTAL_TIMEOUT" -- bash "$HERE/matrix-guest.sh" "$OUT" "$SNAP" 2>&1 | sed 's/^/  vm: /' >&2
      VMRC=${PIPESTATUS[0]}
      # 125: the guest never reported a status: the VM itself ended (a guest
      # kernel panic, with panic=-1 and -no-reboot, or the emulator), before
      # any check could be judged. Seen once in 6.12's doctor, not again in
      # the next runs. Once more, said on the log with the console above it
      # (loglevel=2 puts a panic or an oops there): a crash rbtrace causes
      # comes back, and then fails.
      if [ "$VMRC" != 125 ] || [ "$attempt" = 2 ]; then break; fi
      echo "matrix.sh: the VM on $KVER ended before reporting a status (its console is above): running it once more" >&2
      echo "$KVER" >> "$OUT/retried"
    done
    set -e
    WALL=$(( $(date +%s) - START ))
    echo "$VMRC $WALL" > "$OUT/vm.status"

  fi

  # ---- report ----------------------------------------------------------------
  PASSED=0
  FAILED=0
  declare -A FAILS=()   # label -> newline-separated failing test names

  # crash_report LABEL RC: when a group's test process died by a signal (the
  # runner's TAP says so, or node itself did), say which check was running
  # (LABEL.checks), what the kernel logged meanwhile (LABEL.dmesg: the
  # "segfault at ... ip ... in LIB" line and the fatal-signal register dump)
  # and, where gdb is at hand, the backtrace of each core dump. It only
  # explains: the group has failed already.
  crash_report() {
    local label=$1 rc=$2 sig running core exe
    sig=$(grep -a -o "signal: 'SIG[A-Z0-9]*'" "$OUT/$label.tap" 2>/dev/null | head -n1 | cut -d"'" -f2 || true)
    [ -z "$sig" ] && [[ "$rc" =~ ^[0-9]+$ ]] && [ "$rc" -gt 128 ] && [ "$rc" != 137 ] && sig="signal $((rc - 128)) (exit $rc)"
    [ -n "$sig" ] || return 0
    running=$(awk '$2 == "start" { n = $0; sub(/^[^ ]+ start /, "", n); open[n] = $1 } $2 == "end" { n = $0; sub(/^[^ ]+ end /, "", n); delete open[n] }
      END { for (n in open) print n " (from " open[n] " s of guest uptime)" }' "$OUT/$label.checks" 2>/dev/null || true)
    echo "      died by $sig while running: ${running:-? (no check log: $label.checks)}"
    if [ -s "$OUT/$label.dmesg" ]; then
      echo "      kernel log of the group (tail, $label.dmesg):"
      grep -a -E 'segfault|traps:|fatal signal|general protection|uprobe|Code:|RIP:|RSP:|BUG|WARNING|Oops|invalid opcode' "$OUT/$label.dmesg" \
        | tail -n 16 | cut -c1-200 | sed 's/^/        /' || true
    else
      echo "      (no kernel log lines in $label.dmesg)"
    fi
    for core in "$OUT"/cores/core.*; do
      [ -f "$core" ] || continue
      echo "      core dump: ${core#"$REPO"/} ($(du -h "$core" | cut -f1))"
      exe=$(file -b "$core" 2>/dev/null | sed -n "s/.*execfn: '\([^']*\)'.*/\1/p" || true)
      if [ "$ARCH" = x86 ] && [ -n "$exe" ] && command -v gdb > /dev/null; then
        timeout 120 gdb -batch -nx -ex 'info registers rip rsp' -ex 'bt 12' -ex 'x/3i $pc' "$exe" "$core" 2>/dev/null \
          | grep -a -E '^(#|rip|rsp|=>|   0x)' | cut -c1-200 | sed 's/^/        /' || true
      fi
    done
  }

  # summarize LABEL: prints one line, adds to the totals, fills FAILS[LABEL].
  summarize() {
    local label=$1 tap=$OUT/$1.tap st=$OUT/$1.status rc=- secs=- p f s c names note=
    [ -f "$st" ] && read -r rc secs < "$st"
    p=$(grep -a -m1 '^# pass ' "$tap" 2>/dev/null | awk '{print $3}')
    f=$(grep -a -m1 '^# fail ' "$tap" 2>/dev/null | awk '{print $3}')
    c=$(grep -a -m1 '^# cancelled ' "$tap" 2>/dev/null | awk '{print $3}')
    s=$(grep -a -m1 '^# skipped ' "$tap" 2>/dev/null | awk '{print $3}')
    names=$(grep -a '^not ok ' "$tap" 2>/dev/null | sed 's/^not ok [0-9]* - //' || true)
    if [ -z "$p" ]; then
      # no summary: the run died or timed out; count what finished, fail the group
      p=$(grep -ac '^ok ' "$tap" 2>/dev/null || true)
      f=$(( $(grep -ac '^not ok ' "$tap" 2>/dev/null || true) + 1 ))
      names+=$'\n'"(incomplete: exit $rc$([ "$rc" = 124 ] && echo ', timed out'))"
      note=" INCOMPLETE"
    else
      f=$(( ${f:-0} + ${c:-0} ))
      if [ "$f" = 0 ] && [ "$rc" != 0 ]; then f=1; names+=$'\n'"(node exited $rc with no failing test)"; fi
    fi
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    FAILS[$label]=$(sed '/^$/d' <<< "$names")
    printf '  %-24s %3d passed, %3d failed%s  (%s s)%s\n' "$label" "$p" "$f" "${s:+, $s skipped}" "$secs" "$note"
    crash_report "$label" "$rc"
    if [ -n "${FAILS[$label]}" ]; then
      while IFS= read -r n; do
        printf '      not ok: %s\n' "$n"
        # the first line of the assertion / error message, for a quick look
        if [[ "$n" != \(* ]]; then
          awk -v n="not ok [0-9]+ - $(printf '%s' "$n" | sed 's/[][\.*^$/()+?{}|]/\\&/g')" '
          $0 ~ "^" n "$" { on = 1; next }
          !on { next }
          /^(not )?ok / || /^  (code|stack):/ { exit }
          /^  error: / { sub(/^  error: /, ""); if ($0 !~ /^[|>]-?$/) { print "        " substr($0, 1, 160); shown++ }; inerr = 1; next }
          inerr && shown < 2 && /^    ./ { sub(/^ +/, ""); if (shown == 0 || /^stderr: |^rbtrace /) { print "        " substr($0, 1, 200); shown++ } }
        ' "$tap"
        fi
      done <<< "${FAILS[$label]}"
    fi
  }

  echo
  echo "kernel matrix ($MODE) on $KVER ($PKGVER), wall ${WALL}s, vm exit $VMRC; raw results: ${OUT#"$REPO"/}"
  # doctor: fentry and kprobe must be available on this kernel (--ci: and every tool).
  # arm64 attaches fentry to kernel functions only with ftrace direct calls
  # (6.4+; not in Debian's 6.1 arm64 kernel): decided from the kernel's config.
  NEED=fentry,kprobe
  if [ "$ARCH" = arm64 ] && ! grep -q '^CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y' "${KERNEL%/vmlinuz-*}/config-$KVER"; then
    NEED=kprobe
    echo "  ($KVER has no ftrace direct calls: fentry is expected to be unavailable)"
  fi
  if [ -s "$OUT/doctor.json" ] && node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const a = Object.fromEntries(r.attach.map((x) => [x.name, x]));
    const bad = process.argv[4].split(",").filter((n) => !a[n] || !a[n].available);
    if (process.argv[2] === "ci") bad.push(...r.tools.filter((t) => !t.available).map((t) => t.name));
    console.log(`  doctor (${process.argv[3]}): ` + r.attach.map((x) => `${x.name} ${x.available ? "yes" : "NO"}`).join(", "));
    for (const t of r.tools) console.log(`    ${t.name}: ${t.available ? t.path : "UNAVAILABLE: " + t.detail}`);
    process.exit(bad.length ? 1 : 0);' "$OUT/doctor.json" "$MODE" "$ENVNAME" "$NEED"; then
    PASSED=$((PASSED + 1))
  else
    echo "  doctor ($ENVNAME): FAILED: ${NEED/,/ and } not all available$([ "$MODE" = ci ] && echo ', or a tool unavailable') (see $OUT/doctor.json, doctor.err)"
    FAILED=$((FAILED + 1))
  fi

  while IFS=$'\t' read -r label _; do summarize "$label"; done < "$OUT/plan"

  if [ "$MODE" = selftest ]; then
    # The matrix notices a broken fentry program if, with the broken object,
    # the fentry run fails tests that pass with the intact one; and the break
    # stays confined: the tracepoint run gives the intact results.
    ST_OK=1
    for v in verifier argv; do
      newly=$(comm -13 <(sort <<< "${FAILS[st-fentry-intact]}") <(sort <<< "${FAILS[st-fentry-$v]}") | sed '/^$/d')
      # ... and for the planted reason, not e.g. a missing object
      tap=$OUT/st-fentry-$v.tap
      if [ "$v" = verifier ]; then
        why=$(grep -a -m1 -o "invalid read from stack[^']*" "$tap" || true)
        grep -aq "prog 'fe_enter_execve': BPF program load failed" "$tap" || why=
      else
        why=$(grep -aq 'is missing\|cannot load' "$tap" || grep -a -m1 -o 'Expected values to be strictly deep-equal' "$tap" || true)
      fi
      if [ -n "$newly" ] && [ -n "$why" ]; then
        echo "  self-test: broken fentry ($v) caught: $(wc -l <<< "$newly") test(s) fail that pass with the intact object ($why)"
      elif [ -n "$newly" ]; then
        echo "  self-test: FAILED: broken fentry ($v): tests fail, but not for the planted reason (see $tap)"; ST_OK=
      else
        echo "  self-test: FAILED: broken fentry ($v) NOT caught"; ST_OK=
      fi
    done
    if [ "${FAILS[st-tracepoint-verifier]}" = "${FAILS[st-tracepoint-intact]}" ] && [ -f "$OUT/st-tracepoint-verifier.status" ]; then
      echo "  self-test: tracepoint path with the broken object: same results as intact (the break is fentry-only)"
    else
      echo "  self-test: FAILED: the broken object changed the tracepoint path's results"; ST_OK=
    fi
    echo "($PASSED passed, $FAILED failed: the broken runs are meant to fail)"
    if [ -n "$ST_OK" ]; then echo "self-test passed"; else echo "self-test FAILED"; fi
    [ -n "$ST_OK" ]
    exit
  fi

  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" = 0 ] && [ "$VMRC" = 0 ]
}

main "$@"; exit $?   # one line: bash has read it all before main runs
