#!/usr/bin/env bash
# Run one command as root inside one of Debian's stock kernels (5.10, 6.1 or
# 6.12: kprobes, fentry, BTF) under qemu/TCG, with the host's / shared read-only and the repo shared
# read-write. The command's stdout/stderr come out on ours, its exit status is
# ours.
#
#   test/vm/run.sh [--kernel 5.10|6.1|6.12] [--timeout SECS] [--env NAME]...
#                  [--rw PATH]... [--mem SIZE] [--smp N] [--keep-log] -- CMD ARGS...
#   test/vm/run.sh --arch arm64 [--kernel 6.1|6.12] ... -- CMD ARGS...
#
# --arch arm64 (issue 17; or RBTRACE_VM_ARCH): Debian 12's arm64 kernel under
# qemu-system-aarch64 (virt, TCG), with an arm64 userland (arm64-root.sh:
# Debian's arm64 packages and Node.js 20 for arm64) as / instead of the
# host's; the checkout and --rw paths are shared in the same way.
#
# --kernel: default 6.1 (or RBTRACE_VM_KERNEL); setup.sh downloads and caches
# each on first use.
# Inside the guest: cwd = the directory run.sh was called from; env = PATH,
# HOME=/root, LANG, TERM, every RBTRACE_* and CI variable, plus --env NAMEs.
# Writable: the repo checkout (and --rw paths; 9p, so changes land on the
# host), tmpfs on /tmp /var/tmp /run /root /dev/shm. Everything else is the
# host's / read-only. tracefs, debugfs, bpffs and cgroup2 are mounted.
#
# Exit status: CMD's; 124 on timeout; 125 if the VM failed before reporting
# one (its console log is printed to stderr).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TIMEOUT=${RBTRACE_VM_TIMEOUT:-1800}
MEM=${RBTRACE_VM_MEM:-4G}
SMP=${RBTRACE_VM_SMP:-2}
KEEP_LOG=
KERNEL_SERIES=${RBTRACE_VM_KERNEL:-6.1}
ARCH=${RBTRACE_VM_ARCH:-x86}
ENV_NAMES=()
RW_PATHS=("$REPO")

usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) KERNEL_SERIES=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --env) ENV_NAMES+=("$2"); shift 2 ;;
    --rw) RW_PATHS+=("$(cd "$2" && pwd)"); shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    --keep-log) KEEP_LOG=1; shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || usage

case "$ARCH" in
  x86)
    case "$KERNEL_SERIES" in 5.10|6.1|6.12) ;; *) echo "run.sh: --kernel $KERNEL_SERIES: not one of 5.10, 6.1, 6.12" >&2; exit 2 ;; esac
    ENVNAME=$KERNEL_SERIES ;;
  arm64)
    case "$KERNEL_SERIES" in 6.1|6.12) ;; *) echo "run.sh: --arch arm64 --kernel $KERNEL_SERIES: not one of 6.1, 6.12" >&2; exit 2 ;; esac
    ENVNAME=arm64-$KERNEL_SERIES ;;
  *) echo "run.sh: --arch $ARCH: not x86 or arm64" >&2; exit 2 ;;
esac
if [ ! -f "$HERE/cache/$ENVNAME.env" ]; then
  "$HERE/setup.sh" --arch "$ARCH" --kernel "$KERNEL_SERIES"
fi
ROOTFS=/
# shellcheck disable=SC1091
. "$HERE/cache/$ENVNAME.env"
if [ "$ARCH" = arm64 ]; then
  # -cpu max with the cheap pointer-authentication algorithm: QARMA (the
  # default) costs TCG dearly on every function return.
  QEMU=(qemu-system-aarch64 -M virt -accel tcg -cpu "${RBTRACE_VM_CPU:-max,pauth-impdef=on}")
  APPEND="console=ttyAMA0 quiet loglevel=2 panic=-1 rdinit=/init mitigations=off"
else
  QEMU=(qemu-system-x86_64 -accel tcg -cpu "${RBTRACE_VM_CPU:-max}")
  APPEND="console=ttyS0 quiet loglevel=2 panic=-1 rdinit=/init tsc=reliable mitigations=off"
fi
[ -f "$KERNEL" ] && [ -f "$INITRD" ] || { echo "run.sh: run test/vm/setup.sh first" >&2; exit 125; }

J=$(mktemp -d /tmp/rbtrace-vm.XXXXXX)
QPID=
cleanup() {
  [ -n "$QPID" ] && kill "$QPID" 2>/dev/null || true
  if [ -n "$KEEP_LOG" ]; then echo "run.sh: console log kept in $J/console.log" >&2
  else rm -rf "$J"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir "$J/share"

# The job: environment, cwd and argv, as bash source (run by the host's bash
# inside the chroot).
{
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  echo 'export HOME=/root'
  while IFS= read -r name; do
    printf 'export %s=%q\n' "$name" "${!name}"
  done < <(compgen -e | grep -E '^(RBTRACE_|CI$|LANG$|LC_ALL$|TERM$)' || true)
  for name in "${ENV_NAMES[@]}"; do
    [ -n "${!name+x}" ] && printf 'export %s=%q\n' "$name" "${!name}"
  done
  printf 'export RBTRACE_VM=%q\n' "$KVER"
  printf 'cd %q || exit 125\n' "$PWD"
  printf 'exec'; printf ' %q' "$@"; echo
} > "$J/share/job.sh"

# read-write 9p shares (tag path), mounted over the read-only root
VIRTFS=()
: > "$J/share/mounts"
i=0
for p in "${RW_PATHS[@]}"; do
  case "$p" in *' '*) echo "run.sh: --rw path with spaces not supported: $p" >&2; exit 2 ;; esac
  VIRTFS+=(-virtfs "local,path=$p,mount_tag=rw$i,security_model=passthrough,multidevs=remap")
  # A guest root of our own (arm64) is read-only inside: its mount points are made here.
  [ "$ROOTFS" = / ] || mkdir -p "$ROOTFS$p"
  echo "rw$i $p" >> "$J/share/mounts"
  i=$((i + 1))
done

# stdout/stderr of CMD: virtio-serial ports -> fifos -> our stdout/stderr
mkfifo "$J/out" "$J/err"
cat "$J/out" &
COUT=$!
cat "$J/err" >&2 &
CERR=$!

START=$(date +%s.%N)
set +e
timeout --foreground -k 10 "$TIMEOUT" \
"${QEMU[@]}" -m "$MEM" -smp "$SMP" \
  -nodefaults -no-user-config -display none -monitor none -no-reboot \
  -serial "file:$J/console.log" \
  -kernel "$KERNEL" -initrd "$INITRD" \
  -append "$APPEND" \
  -virtfs "local,path=$ROOTFS,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap" \
  -virtfs "local,path=$J/share,mount_tag=job,security_model=passthrough" \
  "${VIRTFS[@]}" \
  -device virtio-serial-pci \
  -chardev "file,id=vout,path=$J/out" -device virtserialport,chardev=vout,name=rbtrace.stdout \
  -chardev "file,id=verr,path=$J/err" -device virtserialport,chardev=verr,name=rbtrace.stderr \
  </dev/null &
QPID=$!
wait "$QPID"
QRC=$?
QPID=
set -e
wait "$COUT" "$CERR" 2>/dev/null || true
END=$(date +%s.%N)

if [ -n "${RBTRACE_VM_VERBOSE:-}" ]; then
  awk -v s="$START" -v e="$END" 'BEGIN { printf "run.sh: vm wall time %.1fs\n", e - s }' >&2
  grep -a 'RBTRACE_VM_' "$J/console.log" | sed 's/^/run.sh: guest /' >&2 || true
fi

if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
  echo "run.sh: timed out after ${TIMEOUT}s; guest console tail:" >&2
  tail -n 40 "$J/console.log" >&2 || true
  exit 124
fi
if [ ! -s "$J/share/status" ]; then
  echo "run.sh: VM ended (qemu status $QRC) without reporting the command's status; guest console:" >&2
  tail -n 60 "$J/console.log" >&2 || true
  exit 125
fi
exit "$(cat "$J/share/status")"
