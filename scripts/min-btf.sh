#!/usr/bin/env bash
# After the BPF and TypeScript builds: a BTF of this kernel cut down to the
# types the objects' CO-RE relocations use (a few KiB instead of the kernel's
# ~5 MiB). libbpf parses the kernel's BTF on every load, in two copies; with
# this file (given as btf_custom_path, and only when the running kernel is the
# one it was made from: same release, build id and BTF size, see
# src/core/btf.ts) a tool that needs no other kernel BTF starts faster and
# ~11 MiB smaller.
set -euo pipefail
cd "$(dirname "$0")/.."
BTF=${RBTRACE_BUILD_BTF:-/sys/kernel/btf/vmlinux}
if [ -n "$(find build/bpf -name '*.bpf.o' -newer build/bpf/vmlinux.min.btf 2>/dev/null | head -1)" ] || [ ! -f build/bpf/vmlinux.min.btf ] || [ "$BTF" -nt build/bpf/vmlinux.min.btf ]; then
  bpftool gen min_core_btf "$BTF" build/bpf/vmlinux.min.btf build/bpf/*.bpf.o
  node scripts/btf-fingerprint.mjs "$BTF" > build/bpf/vmlinux.min.json
  echo "build-bpf: build/bpf/vmlinux.min.btf ($(stat -c %s build/bpf/vmlinux.min.btf) bytes)"
fi
