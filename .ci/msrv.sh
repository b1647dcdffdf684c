#!/usr/bin/env bash
# MSRV lane: builds the workspace with the toolchain of the declared `rust-version`.
#
# The toolchain is used if rustup has it, installed (minimal profile, bounded time) if it can
# be; where neither works (no rustup, no network to static.rust-lang.org) the lane prints that
# it was skipped and why, and exits 0: a missing toolchain never fails the build. A toolchain
# that is there and fails to build the workspace does fail it.
#
#   .ci/msrv.sh                      # check at the declared rust-version
#   MSRV_INSTALL_TIMEOUT=300 .ci/msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  echo "MSRV lane SKIPPED: $*"
  echo "  (the build at the declared rust-version was not checked on this machine)"
  exit 0
}

msrv=$(sed -n 's/^rust-version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
[ -n "$msrv" ] || { echo "FAIL: no rust-version in the workspace Cargo.toml"; exit 1; }
echo "declared rust-version: $msrv"

mkdir -p target
command -v rustup >/dev/null 2>&1 || skip "rustup not found, so no way to select Rust $msrv"
toolchains=$(rustup toolchain list 2>/dev/null || true)
echo "installed toolchains:"; echo "$toolchains" | sed 's/^/  /'

if ! echo "$toolchains" | grep -Eq "^$msrv(\.0)?-"; then
  limit="${MSRV_INSTALL_TIMEOUT:-90}"
  echo "Rust $msrv is not installed; trying: rustup toolchain install $msrv --profile minimal (at most ${limit}s)"
  if ! timeout "$limit" rustup toolchain install "$msrv" --profile minimal --no-self-update \
    >target/msrv-install.log 2>&1; then
    reason=$(grep -m1 -iE 'error|could not|failed' target/msrv-install.log || tail -n 1 target/msrv-install.log)
    skip "Rust $msrv is not installed and could not be installed (${reason:-timed out after ${limit}s})"
  fi
fi

rustc "+$msrv" --version
# Its own target directory: artifacts of two compilers never invalidate each other.
CARGO_TARGET_DIR=target/msrv cargo "+$msrv" check --workspace --all-features --locked
echo "MSRV lane: the workspace builds with Rust $msrv"
