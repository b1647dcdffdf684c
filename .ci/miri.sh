#!/usr/bin/env bash
# Miri lane: the ring over the simulated backend (`SimBackend`) under Miri, which reports
# undefined behaviour — an out-of-bounds or misaligned access, a reference to memory the
# simulated region does not own, a data race between threads, a use of uninitialised bytes —
# in the code that turns a region's bytes into typed references and atomics.
#
# What runs (everything that needs no real process, shared-memory object or file):
#   * the library's unit tests with no default features (`--lib`): the layout, framing,
#     liveness and session tables, and `ring/hostile_tests.rs` (garbage in every field of a
#     sim-backed segment, crashed consumers and producers);
#   * the conformance suites instantiated for the simulator (`conformance`, `framed_conformance`,
#     filtered to `sim::`).
# The shm and mmap backends call `shm_open`, `flock` and futexes, which Miri does not execute;
# the real-process tests need `fork`/`exec`.
#
# Miri needs a nightly toolchain with the `miri` component. If there is none, the lane tries
# to add it (bounded time); where that cannot work (no rustup, no network to the rustup dist
# server, a nightly without Miri) it prints "Miri lane skipped: <why>" and exits 0. A Miri that
# runs and finds undefined behaviour, or a failing test, fails the lane.
#
#   .ci/miri.sh                        # the whole lane (about 8 minutes on two shared cores)
#   MIRI_TOOLCHAIN=nightly-2026-05-01 .ci/miri.sh
#   MIRI_ONLY=conformance .ci/miri.sh  # one part: lib, conformance or framed
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

toolchain="${MIRI_TOOLCHAIN:-nightly}"
limit="${MIRI_INSTALL_TIMEOUT:-300}"

skip() {
  echo "Miri lane skipped: $*"
  echo "  (nothing was checked under Miri on this machine)"
  exit 0
}

command -v rustup >/dev/null 2>&1 || skip "rustup not found, so no way to get a $toolchain toolchain with Miri"

if ! cargo "+$toolchain" miri --version >/dev/null 2>&1; then
  if rustup toolchain list 2>/dev/null | grep -q "^$toolchain-"; then
    cmd=(rustup component add --toolchain "$toolchain" miri rust-src)
  else
    cmd=(rustup toolchain install "$toolchain" --profile minimal --component miri --component rust-src --no-self-update)
  fi
  echo "no $toolchain toolchain with Miri; trying: ${cmd[*]} (at most ${limit}s)"
  if ! timeout "$limit" "${cmd[@]}" >target/miri-install.log 2>&1; then
    reason=$(grep -m1 -iE 'error|could not|failed|unavailable' target/miri-install.log || tail -n 1 target/miri-install.log)
    skip "${cmd[*]} failed (${reason:-timed out after ${limit}s})"
  fi
fi
cargo "+$toolchain" miri --version

# Miri runs on a standard library it builds itself (once per toolchain, cached in ~/.cache/miri).
if ! timeout "$limit" cargo "+$toolchain" miri setup >target/miri-setup.log 2>&1; then
  reason=$(grep -m1 -iE 'error|could not|failed' target/miri-setup.log || tail -n 1 target/miri-setup.log)
  skip "cargo miri setup could not build Miri's standard library (${reason:-timed out after ${limit}s})"
fi

# Isolation off: ring epochs come from the wall clock (SystemTime) and the suites' deadlines
# from the monotonic clock, which an isolated Miri refuses to read. Leaks ignored: a simulated
# SIGKILL (`myelon::dst::crash`, the hostile tests' crashed consumers and producers) forgets the
# dead process's state without `Drop`, on purpose, and that heap memory is never freed.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation -Zmiri-ignore-leaks}"
echo "MIRIFLAGS=$MIRIFLAGS"

# Each part runs even if an earlier one failed (Miri stops a test binary at its first finding,
# so one finding hides nothing of the other parts); the lane fails at the end if any did.
failed=()
part() {
  local name=$1; shift
  if [ -n "${MIRI_ONLY:-}" ] && [ "$MIRI_ONLY" != "$name" ]; then return; fi
  printf -- '--- miri: %s (at %ss)\n' "$name" "$SECONDS"
  cargo "+$toolchain" miri test "$@" || failed+=("$name")
}

part lib -p myelon --no-default-features --lib
part conformance -p myelon --test conformance -- sim::
part framed -p myelon --test framed_conformance -- sim::
if [ ${#failed[@]} -gt 0 ]; then
  echo "Miri lane FAILED: ${failed[*]} (undefined behaviour or a failing test, above)"
  exit 1
fi
echo "Miri lane: no undefined behaviour found (${SECONDS}s)"
