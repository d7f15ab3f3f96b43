#!/usr/bin/env bash
# SFT benchmark (issue "distributed SFT"): real (unpadded) tokens/s and peak RSS of LoRA SFT on the first 256
# dolly_train records (alpaca template, cutoff 1024), global batch 8, on this machine's cores: 1 rank x 2 threads
# (mpirun --bind-to none) and 2 ranks x 1 thread. Writes out/bench/sft.json. Run on an otherwise idle machine.
source "$(dirname "${BASH_SOURCE[0]}")/bench-sft-common.sh"
common=("${sft_recipe[@]}" --logging_steps 8)
OPENBLAS_NUM_THREADS=2 mpirun -np 1 --bind-to none "${root[@]}" "$knowtune" "${common[@]}" \
    --per_device_train_batch_size 8 --output_dir out/bench/sft-1x2 >&2
OPENBLAS_NUM_THREADS=1 mpirun -np 2 --bind-to core "${root[@]}" "$knowtune" "${common[@]}" \
    --per_device_train_batch_size 4 --output_dir out/bench/sft-2x1 >&2
python3 - <<'PY'
import json
result = {}
for name in ("1x2", "2x1"):
    r = json.load(open(f"out/bench/sft-{name}/train_results.json"))
    result[name] = {k: r[k] for k in ("train_tokens_per_second", "train_peak_rss_mib", "train_runtime", "train_loss")}
result["2x1_over_1x2"] = result["2x1"]["train_tokens_per_second"] / result["1x2"]["train_tokens_per_second"]
json.dump(result, open("out/bench/sft.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
