#!/usr/bin/env bash
# After the BPF and TypeScript builds: a BTF of this kernel cut down to the
# types the objects' CO-RE relocations use (a few KiB instead of the kernel's
# ~5 MiB). libbpf parses the kernel's BTF on every load, in two copies; with
# this file (given as btf_custom_path, and only when the running kernel is the
# one it was made from: same release, build id and BTF size, see
# src/core/bpf/btf.ts) a tool that needs no other kernel BTF starts faster and
# ~11 MiB smaller.
#
# Only for the build machine's own architecture (build/bpf/x86/ or
# build/bpf/arm64/): the trick applies only on the very kernel the BTF came
# from, and the other architecture's objects are built against a Debian
# kernel's BTF that no machine of ours runs (docs/ARCH.md).
set -euo pipefail
cd "$(dirname "$0")/.."
case "$(uname -m)" in
  x86_64) ARCH=x86 ;;
  aarch64) ARCH=arm64 ;;
  *) exit 0 ;;
esac
DIR=build/bpf/$ARCH
BTF=${RBTRACE_BUILD_BTF:-/sys/kernel/btf/vmlinux}
if [ -n "$(find "$DIR" -name '*.bpf.o' -newer "$DIR/vmlinux.min.btf" 2>/dev/null | head -1)" ] || [ ! -f "$DIR/vmlinux.min.btf" ] || [ "$BTF" -nt "$DIR/vmlinux.min.btf" ]; then
  bpftool gen min_core_btf "$BTF" "$DIR/vmlinux.min.btf" "$DIR"/*.bpf.o
  node scripts/btf-fingerprint.mjs "$BTF" > "$DIR/vmlinux.min.json"
  echo "build-bpf: $DIR/vmlinux.min.btf ($(stat -c %s "$DIR/vmlinux.min.btf") bytes)"
fi
