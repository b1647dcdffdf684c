#!/usr/bin/env bash
# Every feature combination that matters builds (`cargo check`, library targets).
#
# An explicit list, in the manner of crossbeam's ci/check-features.sh: no default features,
# each feature alone on top of no defaults, the defaults, and everything. `mmap` implies `shm`,
# so "mmap alone" is really "mmap + shm". The guard at the end fails when a crate of the
# workspace declares a feature this list does not know, so a new feature cannot slip past.
#
#   .ci/check-features.sh            # every combination
#   CHECK_FEATURES_KEEP_GOING=1 ...  # report every failing combination, not just the first
set -euo pipefail
cd "$(dirname "$0")/.."

# The features of `myelon` (transport/Cargo.toml), one per line in the order they are checked.
MYELON_FEATURES=(shm mmap bincode rkyv flatbuffers metrics dst tokio)
# Workspace crates that declare no features: checked once each with their defaults (their
# `--no-default-features` build is the same build).
FEATURELESS=(myelon-backend-shm myelon-backend-mmap myelon-backend-sim myelon-dst myelon-cli myelon-test-support myelon-async-pipeline)

mkdir -p target
log=target/check-features.log
failed=()
# A combination fails if it does not build or if it warns (dead code or an unused import under
# some features is a bug of that combination; registry dependencies' warnings are capped).
check() {
  local what="$1"; shift
  printf -- '--- %-45s cargo check %s\n' "$what" "$*"
  if ! cargo check --quiet "$@" >"$log" 2>&1 || grep -q '^warning' "$log"; then
    cat "$log"
    failed+=("$what")
    [ "${CHECK_FEATURES_KEEP_GOING:-0}" = 1 ] || { echo "FAIL: $what"; exit 1; }
  fi
}

check "myelon: no default features" -p myelon --no-default-features
for f in "${MYELON_FEATURES[@]}"; do
  check "myelon: only $f" -p myelon --no-default-features --features "$f"
done
check "myelon: default features" -p myelon
check "myelon: all features" -p myelon --all-features
for p in "${FEATURELESS[@]}"; do
  check "$p" -p "$p"
done

# Guard: the features each crate declares are exactly the ones listed above.
declared() { # the keys of the [features] table of a manifest, sorted, without `default`
  awk '/^\[/{ inside = ($0 == "[features]"); next }
       inside && /^[A-Za-z0-9_-]+[[:space:]]*=/ { sub(/[[:space:]]*=.*/, ""); print }' "$1" |
    { grep -vx default || true; } | sort
}
want=$(printf '%s\n' "${MYELON_FEATURES[@]}" | sort)
have=$(declared transport/Cargo.toml)
if [ "$want" != "$have" ]; then
  echo "FAIL: transport/Cargo.toml declares features [$(echo $have)], this script checks [$(echo $want)]"
  exit 1
fi
for manifest in backend-shm backend-mmap backend-sim dst cli test-support async-pipeline; do
  extra=$(declared "$manifest/Cargo.toml")
  if [ -n "$extra" ]; then
    echo "FAIL: $manifest/Cargo.toml declares features [$(echo $extra)]; add its combinations here"
    exit 1
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  printf 'FAIL: %s\n' "${failed[@]}"
  exit 1
fi
echo "feature combinations: all $((${#MYELON_FEATURES[@]} + 3 + ${#FEATURELESS[@]})) build"
