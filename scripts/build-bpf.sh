#!/usr/bin/env bash
# Compile every src/bpf/*.bpf.c to a CO-RE object once per target
# architecture, build/bpf/x86/ and build/bpf/arm64/ (the package ships both;
# src/core/bpf/arch.ts picks one by process.arch), and generate its TypeScript
# bindings (struct layouts, .rodata offsets) from the object's BTF into
# src/generated/. Needs clang, bpftool and a kernel BTF per architecture (for
# its vmlinux.h) at build time only; the objects then load on any kernel of
# that architecture with BTF, thanks to CO-RE.
#
# The build machine's own architecture uses the running kernel's BTF
# (RBTRACE_BUILD_BTF overrides it); the other one the BTF of Debian 12's stock
# 6.1 kernel for it, from scripts/kernel-btf.sh (RBTRACE_BUILD_BTF_ARM64 /
# RBTRACE_BUILD_BTF_X86 override that). RBTRACE_BPF_ARCHES="x86" builds one.
#
# The bindings must be the same for every architecture (the tools' headers
# use fixed-size types only): they are generated from each object and
# compared, and the build fails if they differ.
set -euo pipefail
cd "$(dirname "$0")/.."

case "$(uname -m)" in
  x86_64) NATIVE=x86 ;;
  aarch64) NATIVE=arm64 ;;
  *) NATIVE=$(uname -m) ;;
esac
ARCHES=${RBTRACE_BPF_ARCHES:-x86 arm64}
mkdir -p build/tmp src/generated

# btf_for ARCH: the BTF file vmlinux.h is made from.
btf_for() {
  local arch=$1 var
  var=RBTRACE_BUILD_BTF_$(echo "$arch" | tr a-z A-Z)
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  if [ "$arch" = "$NATIVE" ]; then echo "${RBTRACE_BUILD_BTF:-/sys/kernel/btf/vmlinux}"; return; fi
  bash scripts/kernel-btf.sh "$arch" >&2
  echo "build/btf/$arch.btf"
}

node scripts/gen-names.mjs

first=
for arch in $ARCHES; do
  case "$arch" in x86|arm64) ;; *) echo "build-bpf: $arch: not x86 or arm64" >&2; exit 2 ;; esac
  btf=$(btf_for "$arch")
  inc=build/$arch
  mkdir -p "$inc" "build/bpf/$arch"
  if [ ! -s "$inc/vmlinux.h" ] || [ "$btf" -nt "$inc/vmlinux.h" ]; then
    echo "build-bpf: generating $inc/vmlinux.h from $btf"
    bpftool btf dump file "$btf" format c > "$inc/vmlinux.h.tmp"
    mv "$inc/vmlinux.h.tmp" "$inc/vmlinux.h"
  fi
  # build/vmlinux.h: the build machine's, for anything that includes it directly.
  [ "$arch" = "$NATIVE" ] && ln -sfn "$arch/vmlinux.h" build/vmlinux.h

  for src in src/bpf/*.bpf.c; do
    name=$(basename "$src" .bpf.c)
    obj=build/bpf/$arch/$name.bpf.o
    tmp=build/tmp/$arch-$name.o
    # Rebuild when the source, a header or vmlinux.h is newer than the object.
    if [ ! -f "$obj" ] || [ -n "$(find "$src" src/bpf/*.h src/bpf/include "$inc/vmlinux.h" -newer "$obj" 2>/dev/null | head -1)" ]; then
      echo "build-bpf: $src ($arch)"
      clang -O2 -g -target bpf -D__TARGET_ARCH_$arch -Wall -Werror -Wno-unused-function \
        -I"$inc" -Isrc/bpf/include -Isrc/bpf -c "$src" -o "$tmp"
      # bpftool's static linker finalises BTF (DATASEC offsets) and strips DWARF.
      bpftool gen object "$obj" "$tmp"
    fi
    header=src/bpf/$name.h
    [ -f "$header" ] || header=src/bpf/include/$name.bpf.h
    [ -f "$header" ] || header=-
    # The typed skeleton (src/core/skeleton/gen.ts): from the first
    # architecture's object, regenerated when the object or the generator
    # changed; every other architecture's must be identical.
    if [ -z "$first" ]; then
      gen=src/generated/$name.ts
    else
      gen=build/tmp/$arch-$name.ts
    fi
    if [ ! -f "$gen" ] || [ "$obj" -nt "$gen" ] || [ -n "$(find src/core/skeleton src/core/elf/elf.ts scripts/gen-bindings.mjs -newer "$gen" 2>/dev/null | head -1)" ]; then
      node scripts/gen-bindings.mjs "$obj" "$header" "$gen" 2>/dev/null
    fi
    if [ -n "$first" ] && ! cmp -s "$gen" "src/generated/$name.ts"; then
      echo "build-bpf: $name's skeleton differs between $first and $arch (a program only one architecture has, or a header type whose size depends on the architecture):" >&2
      diff "src/generated/$name.ts" "$gen" >&2 || true
      rm -f "$obj" "$gen"
      exit 1
    fi
  done
  first=${first:-$arch}
done
