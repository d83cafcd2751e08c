#!/usr/bin/env bash
# Compile every src/bpf/*.bpf.c to a CO-RE object in build/bpf/, and generate
# its TypeScript bindings (struct layouts, .rodata offsets) from the object's
# BTF into src/generated/. Needs clang, bpftool and the running kernel's BTF
# (for vmlinux.h) at build time only; the objects then load on any kernel
# with BTF, thanks to CO-RE.
set -euo pipefail
cd "$(dirname "$0")/.."

BTF=${RBTRACE_BUILD_BTF:-/sys/kernel/btf/vmlinux}
mkdir -p build/bpf build/tmp src/generated

case "$(uname -m)" in
  x86_64) ARCH=x86 ;;
  aarch64) ARCH=arm64 ;;
  s390x) ARCH=s390 ;;
  riscv64) ARCH=riscv ;;
  *) ARCH=$(uname -m) ;;
esac

if [ ! -s build/vmlinux.h ] || [ "$BTF" -nt build/vmlinux.h ]; then
  echo "build-bpf: generating build/vmlinux.h from $BTF"
  bpftool btf dump file "$BTF" format c > build/vmlinux.h.tmp
  mv build/vmlinux.h.tmp build/vmlinux.h
fi

node scripts/gen-names.mjs

for src in src/bpf/*.bpf.c; do
  name=$(basename "$src" .bpf.c)
  obj=build/bpf/$name.bpf.o
  tmp=build/tmp/$name.o
  # Rebuild when the source, a header or vmlinux.h is newer than the object.
  if [ ! -f "$obj" ] || [ -n "$(find "$src" src/bpf/*.h src/bpf/include build/vmlinux.h -newer "$obj" 2>/dev/null | head -1)" ]; then
    echo "build-bpf: $src"
    clang -O2 -g -target bpf -D__TARGET_ARCH_$ARCH -Wall -Werror -Wno-unused-function \
      -Ibuild -Isrc/bpf/include -Isrc/bpf -c "$src" -o "$tmp"
    # bpftool's static linker finalises BTF (DATASEC offsets) and strips DWARF.
    bpftool gen object "$obj" "$tmp"
  fi
  # The typed skeleton: regenerated when the object or the generator changed.
  gen=src/generated/$name.ts
  if [ ! -f "$gen" ] || [ "$obj" -nt "$gen" ] || [ -n "$(find src/core/skeleton scripts/gen-bindings.mjs -newer "$gen" 2>/dev/null | head -1)" ]; then
    header=src/bpf/$name.h
    [ -f "$header" ] || header=src/bpf/include/$name.bpf.h
    [ -f "$header" ] || header=-
    node scripts/gen-bindings.mjs "$obj" "$header" "$gen"
  fi
done

