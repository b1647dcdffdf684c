#!/usr/bin/env bash
# A/B of two or more builds of the peers bench, interleaved, with medians per build.
#
#   benches/peers/scripts/ab.sh ROUNDS OUT BIN... [-- BENCH ARGS...]
#
# Runs every BIN once per round, in turn (BIN1 BIN2 ... BIN1 BIN2 ...), each with
# `--runs 1` and the BENCH ARGS (default: the 64 B and 1 KiB ping-pong rows), appends their
# RESULT lines to OUT prefixed with the binary's file name, then prints per build and row the
# median p50 (or rate) over the rounds whose own placement probe was near (probe ≤ NEAR ns,
# default 130; a floor row is its own probe; builds older than the probe's RESULT field count
# as near), with the count, and the same over all rounds.
#
# Build each variant with `cargo build --release --manifest-path benches/peers/Cargo.toml`
# and copy `benches/peers/target/release/myelon-peers-bench` aside under a distinct name.
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '2,14p' "$0"
    exit 2
fi
rounds=$1 out=$2
shift 2
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    bins+=("$1")
    shift
done
[ "${1:-}" = "--" ] && shift
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
    args=(--iters 100000 --warmup 10000 --only pingpong_64/ --only pingpong_1024/)
fi
near=${NEAR:-130}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
: >"$out"
for _ in $(seq 1 "$rounds"); do
    for b in "${bins[@]}"; do
        "$b" --runs 1 "${args[@]}" --name ab --out-dir "$dir" 2>/dev/null |
            grep '^RESULT' | sed "s|^|$(basename "$b") |" >>"$out" || true
    done
done
summary() { # $1: max probe
    awk -v max="$1" '
        {
            tag = $1; row = ""; c = ""; v = ""; probe = 0
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^row=/) row = substr($i, 5)
                else if ($i ~ /^contender=/) c = substr($i, 11)
                else if ($i ~ /^p50=/) { v = substr($i, 5); sub(/ns/, "", v) }
                else if ($i ~ /^probe=/) { probe = substr($i, 7); sub(/ns/, "", probe) }
                else if (($i == "M" || $i == "GB/s") && v == "") v = $(i - 1)
            }
            if (c == "floor" && probe == 0) probe = v  # the floor row is its own probe
            if (v == "" || probe + 0 > max) next
            key = row "/" c " " tag
            n[key]++; vals[key, n[key]] = v + 0
        }
        END {
            for (k in n) {
                m = n[k]
                for (i = 1; i <= m; i++) a[i] = vals[k, i]
                for (i = 2; i <= m; i++) { x = a[i]; j = i - 1; while (j > 0 && a[j] > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
                med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
                printf "%-40s %-28s median %8.1f  (n=%d)\n", substr(k, 1, index(k, " ") - 1), substr(k, index(k, " ") + 1), med, m
            }
        }' "$out" | sort
}
echo "## rows whose own probe was <= ${near} ns (near placement)"
summary "$near"
echo "## all rounds"
summary 1000000000
