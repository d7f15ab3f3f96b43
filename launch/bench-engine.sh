#!/usr/bin/env bash
# Engine benchmark (issue "core engine"): training-step tokens/s, GFLOP/s and peak RSS for SmolLM2-135M,
# LoRA r=8 on q,v, batch 8 x 256, with 1 and 2 OpenBLAS threads, under OpenBLAS's own kernel choice and under
# OPENBLAS_CORETYPE=Haswell (the variable must be set before libopenblas loads, so each is its own process).
# Writes out/bench/engine-<core>.json and prints a summary. Run on an otherwise idle machine.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
"$repo_root/launch/fetch-model.sh"
swift build -c release --product knowtune-bench >&2
mkdir -p out/bench
steps="${STEPS:-3}"
env -u OPENBLAS_CORETYPE .build/release/knowtune-bench engine --steps "$steps" --output out/bench/engine-default.json >/dev/null
OPENBLAS_CORETYPE=Haswell .build/release/knowtune-bench engine --steps "$steps" --output out/bench/engine-haswell.json >/dev/null
python3 - <<'PY'
import json
for name in ("default", "haswell"):
    d = json.load(open(f"out/bench/engine-{name}.json"))
    for k in sorted(d["tokens_per_second"]):
        print(f"{name:8s} core={d['openblas_core']:10s} {k}: {d['tokens_per_second'][k]:7.1f} tok/s, "
              f"{d['model_gflops'][k]:6.1f} GFLOP/s ({100*d['fraction_of_sgemm_peak'][k]:.0f}% of sgemm "
              f"{d['sgemm_2048x576x576_gflops'][k]:.0f}), peak RSS {d['peak_rss_mib']:.0f} MiB")
PY
