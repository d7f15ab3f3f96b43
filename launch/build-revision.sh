#!/usr/bin/env bash
# Builds git revision REV of this repository in its own folder (out/bench/rev-<REV>, a clone checked out at REV; kept
# and reused while its binary exists) and prints the path of its `knowtune` binary. The benchmarks that compare two
# revisions (bench-compare.sh, bench-recipe.sh) call it so that both builds are made the same way.
#   launch/build-revision.sh REV
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rev="$(git -C "$repo_root" rev-parse --short "$1")"
tree="$repo_root/out/bench/rev-$rev"
if [ ! -x "$tree/.build/release/knowtune" ]; then
    rm -rf "$tree"
    git clone -q "$repo_root" "$tree"
    git -C "$tree" checkout -q "$rev"
    (cd "$tree" && swift build -c release --product knowtune >&2)
fi
echo "$tree/.build/release/knowtune"
