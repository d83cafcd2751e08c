#!/usr/bin/env bash
# Install everything rbtrace needs to build and test, on Debian 12 as root,
# then build it. Safe to run again: apt and npm skip what is already there,
# and the BPF build only recompiles what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # build: BPF objects, vmlinux.h, uapi headers for the syscall/errno tables
  clang llvm libbpf-dev libbpf1 bpftool linux-libc-dev make gcc libc6-dev
  # tests and benchmarks: workloads and oracles
  bpftrace strace ltrace ruby ruby-dev ruby-webrick ruby-sinatra apache2-utils
  systemtap-sdt-dev python3 procps iproute2 kmod cargo
  # tcpretrans test: packet loss where sch_netem is missing
  nftables
  # stacks: libc debuginfo by build id (test/unit/stacks), c++filt as the demangling oracle
  libc6-dbg binutils
  # oracle suite (test/oracle): real programs to compare against strace, a shim, GC.stat
  git sqlite3 perl tar gzip
  # rbtrace exporter: a real Prometheus scrapes it in test/e2e/prometheus.test.ts
  prometheus
  # kernel matrix (test/vm): a stock kernel under qemu
  qemu-system-x86 busybox-static cpio
  # arm64 cell of the kernel matrix (issue 17): Debian's arm64 kernel under TCG
  qemu-system-arm
  # man pages
  man-db groff-base time
  # rbtrace completion zsh is tested in a real zsh (test/e2e/completion.test.ts)
  zsh
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

npm run --silent build

# Ruby 3.3 from Debian 13 in a root of its own (test/ruby-root.ts): cached
# outside the repository, made once.
bash scripts/debian13-ruby.sh >/dev/null
