#!/usr/bin/env bash
# Runs one challenge: scripts/run-challenge.sh NAME BINARY [FLAG VALUE]...
#
# The flags are the challenge's official Maelstrom flags. Make variables
# (exported by the Makefile) override or add to them:
#   NEMESIS NEMESIS_INTERVAL LATENCY LATENCY_DIST TIME_LIMIT RATE NODE_COUNT
#   CONCURRENCY SEED, plus EXTRA_FLAGS (appended verbatim).
# RUNNER=maelstrom|glomers picks the runner; by default real Maelstrom is
# used when it is installed (see `make maelstrom`), our runner otherwise.
set -euo pipefail

name="$1"; binary="$2"; shift 2
root="$(cd "$(dirname "$0")/.." && pwd)"
maelstrom="${MAELSTROM:-$root/.maelstrom/maelstrom/maelstrom}"
glomers="$root/target/release/glomers"

# Collect the flags in order, letting later values replace earlier ones.
declare -a names=()
declare -A values=()
set_flag() {
    if [ -z "${values[$1]+set}" ]; then names+=("$1"); fi
    values[$1]="$2"
}
while [ $# -gt 0 ]; do
    case "$1" in
        --*) if [ $# -ge 2 ] && [[ "$2" != --* ]]; then set_flag "$1" "$2"; shift 2; else set_flag "$1" ""; shift; fi ;;
        *) echo "run-challenge: unexpected argument '$1'" >&2; exit 2 ;;
    esac
done
[ -n "${NEMESIS:-}" ] && set_flag --nemesis "$NEMESIS"
[ -n "${NEMESIS_INTERVAL:-}" ] && set_flag --nemesis-interval "$NEMESIS_INTERVAL"
[ -n "${LATENCY:-}" ] && set_flag --latency "$LATENCY"
[ -n "${LATENCY_DIST:-}" ] && set_flag --latency-dist "$LATENCY_DIST"
[ -n "${TIME_LIMIT:-}" ] && set_flag --time-limit "$TIME_LIMIT"
[ -n "${RATE:-}" ] && set_flag --rate "$RATE"
[ -n "${NODE_COUNT:-}" ] && set_flag --node-count "$NODE_COUNT"
[ -n "${CONCURRENCY:-}" ] && set_flag --concurrency "$CONCURRENCY"

flags=()
for flag in "${names[@]}"; do
    flags+=("$flag")
    [ -n "${values[$flag]}" ] && flags+=("${values[$flag]}")
done
# shellcheck disable=SC2206
extra=(${EXTRA_FLAGS:-})

runner="${RUNNER:-}"
why=""
if [ -z "$runner" ]; then
    if [ -x "$maelstrom" ] && command -v java >/dev/null 2>&1; then
        runner=maelstrom
    else
        runner=glomers
        if [ ! -x "$maelstrom" ]; then why="Maelstrom is not installed (make maelstrom)";
        else why="Java is not installed"; fi
    fi
fi

bin_path="$root/target/release/$binary"
case "$runner" in
    maelstrom)
        if [ ! -x "$maelstrom" ]; then
            echo "run-challenge: RUNNER=maelstrom but $maelstrom does not exist; run 'make maelstrom' first." >&2
            exit 2
        fi
        echo "==> challenge $name: runner MAELSTROM ($maelstrom)"
        [ -n "${SEED:-}" ] && echo "==> note: Maelstrom has no --seed; SEED=$SEED is ignored"
        cmd=("$maelstrom" test --bin "$bin_path" "${flags[@]}" "${extra[@]}")
        ;;
    glomers)
        echo "==> challenge $name: runner GLOMERS (our Maelstrom-compatible runner)${why:+; $why}"
        [ -n "${SEED:-}" ] && flags+=(--seed "$SEED")
        cmd=("$glomers" test --bin "$bin_path" "${flags[@]}" "${extra[@]}")
        ;;
    *)
        echo "run-challenge: RUNNER must be 'maelstrom' or 'glomers', not '$runner'" >&2
        exit 2
        ;;
esac
echo "==> ${cmd[*]}"
exec "${cmd[@]}"
