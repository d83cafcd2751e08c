# Sourced (bash): apt-get / apt-cache on Debian 12's archive for one
# architecture, with private sources, package lists and cache under a
# directory of ours, so the host's apt state (/etc/apt, /var/lib/apt, dpkg's
# architectures) is never changed. Used by scripts/kernel-btf.sh (a foreign
# architecture's kernel BTF for the BPF build) and test/vm/setup-arm64.sh
# (the arm64 VM's kernel and userland).
#
#   . scripts/debian-apt.sh
#   debian_apt_init arm64 build/debian-arm64     # sets DEBIAN_APT_OPTS
#   debian_apt_init amd64 DIR trixie             # another suite (default bookworm)
#   debian_apt_newest '^linux-image-6\.1\.0-[0-9]+-arm64$'   # newest matching package name
#   debian_apt_download DIR PKG...               # .debs into DIR (skips ones there)

debian_apt_init() {
  local arch=$1 dir=$2 suite=${3:-bookworm}
  DEBIAN_APT_DIR=$(mkdir -p "$dir" && cd "$dir" && pwd)
  mkdir -p "$DEBIAN_APT_DIR/lists/partial" "$DEBIAN_APT_DIR/cache/archives/partial"
  # The suite, its -updates and -security (where the newest kernel ABIs are).
  cat > "$DEBIAN_APT_DIR/sources.list" <<LIST
deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite-updates main
deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $suite-security main
LIST
  DEBIAN_APT_OPTS=(-o "Dir::Etc::sourcelist=$DEBIAN_APT_DIR/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::lists=$DEBIAN_APT_DIR/lists" -o "Dir::Cache=$DEBIAN_APT_DIR/cache"
    -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch" -o APT::Get::List-Cleanup=0)
  # Package lists once (re-run by deleting the directory or after a day).
  if [ -z "$(find "$DEBIAN_APT_DIR/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    echo "debian-apt: apt-get update for $arch (private lists in $DEBIAN_APT_DIR)" >&2
    apt-get "${DEBIAN_APT_OPTS[@]}" update -qq >&2
  fi
}

debian_apt_newest() {
  apt-cache "${DEBIAN_APT_OPTS[@]}" search --names-only "$1" | awk '{print $1}' | sort -V | tail -n1
}

debian_apt_download() {
  local dest=$1 p need=()
  shift
  mkdir -p "$dest"
  for p in "$@"; do
    ls "$dest/${p%%:*}"_*.deb >/dev/null 2>&1 || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  echo "debian-apt: downloading ${need[*]}" >&2
  (cd "$dest" && apt-get "${DEBIAN_APT_OPTS[@]}" download "${need[@]}" 2>&1 | grep -v 'unsandboxed' >&2 || true)
  for p in "${need[@]}"; do
    ls "$dest/${p%%:*}"_*.deb >/dev/null 2>&1 || { echo "debian-apt: apt-get download $p failed" >&2; return 1; }
  done
}
