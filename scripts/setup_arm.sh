#!/usr/bin/env bash
# Installs what scripts/test_arm_kernels.sh needs to cross-build the
# ember-kernels tests for aarch64 and run them under qemu: Debian's Rust 1.96
# (whose std is packaged for arm64 too; rustup's toolchain has no arm64 std
# here), the aarch64 cross linker and libc, and qemu-user-static.
#
# Idempotent: does nothing when everything is already installed. Meant for a
# Debian 12 machine running as root (CI). Another apt process may hold the
# dpkg lock, hence the lock timeout.
set -euo pipefail

RUST_VER=1.96.0+dfsg1-1~deb12u2
PKGS=(
  "rustc-web=$RUST_VER"
  "cargo-web=$RUST_VER"
  "libstd-rust-web-dev:arm64=$RUST_VER"
  gcc-aarch64-linux-gnu
  libc6-dev-arm64-cross
  qemu-user-static
)

# Whether package spec NAME[=VERSION] is installed (at that version).
installed() {
  local spec="$1" name want
  name="${spec%%=*}"
  want=""
  [[ "$spec" == *=* ]] && want="${spec#*=}"
  local got
  got="$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$name" 2>/dev/null || true)"
  [[ "$got" == ii* ]] || return 1
  [[ -z "$want" || "${got#*|}" == "$want" ]]
}

missing=()
for p in "${PKGS[@]}"; do
  installed "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]] \
  && [[ -x /usr/bin/rustc ]] && command -v aarch64-linux-gnu-gcc >/dev/null \
  && command -v qemu-aarch64-static >/dev/null; then
  echo "setup_arm: aarch64 toolchain already installed"
  exit 0
fi

echo "setup_arm: installing ${missing[*]}"
SUDO=""
[[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
fi
$SUDO apt-get -o DPkg::Lock::Timeout=900 update
$SUDO apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=900 \
  "${PKGS[@]}"
echo "setup_arm: done"
