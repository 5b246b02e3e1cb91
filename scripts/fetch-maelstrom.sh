#!/usr/bin/env bash
# Downloads the Maelstrom release into $MAELSTROM_DIR and checks for Java.
# No internet is a normal case: say so clearly and exit non-zero.
set -euo pipefail

version="${MAELSTROM_VERSION:-0.2.4}"
dir="${MAELSTROM_DIR:-.maelstrom}"
url="https://github.com/jepsen-io/maelstrom/releases/download/v${version}/maelstrom.tar.bz2"
launcher="$dir/maelstrom/maelstrom"

if ! command -v java >/dev/null 2>&1; then
    echo "maelstrom: Java is not installed; Maelstrom needs a JDK 11 or newer." >&2
    echo "maelstrom: install one (e.g. 'apt-get install default-jdk') or use our runner (RUNNER=glomers)." >&2
    exit 1
fi

if [ -x "$launcher" ]; then
    echo "maelstrom: $version already present at $launcher"
    exit 0
fi

mkdir -p "$dir"
echo "maelstrom: downloading $url"
if ! curl -fsSL --connect-timeout 10 --max-time 300 -o "$dir/maelstrom.tar.bz2.part" "$url"; then
    rm -f "$dir/maelstrom.tar.bz2.part"
    echo "maelstrom: could not download Maelstrom $version from GitHub (no internet access?)." >&2
    echo "maelstrom: the challenge targets will use our runner instead (RUNNER=glomers)." >&2
    exit 1
fi
mv "$dir/maelstrom.tar.bz2.part" "$dir/maelstrom.tar.bz2"
tar -xjf "$dir/maelstrom.tar.bz2" -C "$dir"
# The release does not record its version; run summaries quote this file.
echo "$version" > "$dir/maelstrom/VERSION"
echo "maelstrom: ready at $launcher"
