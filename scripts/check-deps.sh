#!/usr/bin/env bash
# What `make test` needs before anything else: the pinned Rust toolchain
# (rust-toolchain.toml), a C compiler (for crates that build C), python3
# with venv (the S3 test server, the Tahoe-LAFS CLI), and root or sudo to
# install packages. Missing pieces are installed as the other steps do
# (apt-get), or the script fails at once with the exact command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
host=$(rustc +stable -vV 2>/dev/null | sed -n 's/^host: //p' || true)
fail() { echo "make test: $1" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || fail "not root and no sudo: run as root, or install sudo (apt-get install sudo)"
  SUDO=sudo
fi
apt_install() { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "$@" >/dev/null; }
if ! rustup run "$want" rustc --version >/dev/null 2>&1; then
  # The machine's stable toolchain may be that release under another name:
  # give it the pinned name, as rustup would find a downloaded one.
  if [ -n "$host" ] && rustc +stable --version | grep -q "^rustc $want "; then
    ln -s "stable-$host" "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$want-$host"
  else
    fail "Rust $want is not installed: rustup toolchain install $want --component rustfmt clippy"
  fi
fi
command -v cc >/dev/null || apt_install gcc || fail "no C compiler: apt-get install gcc"
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv \
  || fail "python3 has no venv: apt-get install python3-venv"
