#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds (default 60) with cargo-fuzz,
# growing fuzz/corpus/<target>/. A crash is copied to
# fuzz/regressions/<target>/, where `make test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: needs cargo-fuzz (cargo install cargo-fuzz)" >&2
    exit 2
fi

status=0
for file in fuzz/fuzz_targets/*.rs; do
    target="$(basename "$file" .rs)"
    mkdir -p "fuzz/corpus/$target"
    echo "==> fuzzing $target for ${seconds}s"
    if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
            -max_total_time="$seconds" -max_len=4096 -timeout=10; then
        mkdir -p "fuzz/regressions/$target"
        for crash in fuzz/artifacts/"$target"/*; do
            [ -e "$crash" ] || continue
            cp "$crash" "fuzz/regressions/$target/"
            echo "fuzz: kept $crash as fuzz/regressions/$target/$(basename "$crash")"
        done
        status=1
    fi
done
exit "$status"
