#!/usr/bin/env bash
# Optional fuzzing lane: runs every fuzz target in fuzz/ (reassembler, decode_bincode,
# decode_rkyv, decode_flatbuffers) for a bounded time.
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Where either is
# missing, it prints that it skipped and exits 0: a missing toolchain never fails the build.
# With FUZZ_DIRECT=1 and a nightly toolchain but no cargo-fuzz, it builds the targets itself
# with the same coverage instrumentation (no sanitizer) and runs libFuzzer directly.
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh reassembler     # one target
#   FUZZ_SECONDS=300 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  echo "fuzz lane skipped: $*"
  exit 0
}

all_targets=(reassembler decode_bincode decode_rkyv decode_flatbuffers)
seconds="${FUZZ_SECONDS:-30}"
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

command -v rustup >/dev/null 2>&1 || skip "rustup not found (a nightly toolchain is needed)"
rustup toolchain list 2>/dev/null | grep -q '^nightly' || skip "no nightly toolchain installed (rustup toolchain install nightly)"

if cargo +nightly fuzz --version >/dev/null 2>&1; then
  for t in "${targets[@]}"; do
    echo "=== fuzz target $t (${seconds}s, cargo-fuzz) ==="
    cargo +nightly fuzz run --fuzz-dir fuzz "$t" -- -max_total_time="$seconds" -rss_limit_mb=2048
  done
elif [ "${FUZZ_DIRECT:-0}" = 1 ]; then
  host=$(rustc +nightly -vV | sed -n 's/^host: //p')
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-fuzz/target}"
  export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
  cargo +nightly build --manifest-path fuzz/Cargo.toml --release --bins --target "$host"
  for t in "${targets[@]}"; do
    echo "=== fuzz target $t (${seconds}s, direct) ==="
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" fuzz/artifacts
    "$CARGO_TARGET_DIR/$host/release/$t" "$corpus" -artifact_prefix=fuzz/artifacts/ \
      -max_total_time="$seconds" -rss_limit_mb=2048
  done
else
  skip "cargo-fuzz not installed (cargo install cargo-fuzz; or FUZZ_DIRECT=1 to run libFuzzer without it)"
fi
echo "fuzz lane: ${#targets[@]} target(s) ran clean"
