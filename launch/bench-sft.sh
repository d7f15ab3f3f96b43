#!/usr/bin/env bash
# SFT benchmark (issue "distributed SFT"): real (unpadded) tokens/s and peak RSS of LoRA SFT on the first 256
# dolly_train records (alpaca template, cutoff 1024), global batch 8, on this machine's cores: 1 rank x 2 threads
# (mpirun --bind-to none) and 2 ranks x 1 thread; then, in the same run on the same records, PyTorch + PEFT fp32
# (launch/baseline-pytorch-sft.py, 2 threads, warm-up step excluded; PYTORCH=0 skips it) and the sgemm ceiling
# (knowtune-bench ceiling: 2 × the one-thread sgemm 2048×576×576 GFLOP/s ÷ the model's training FLOPs per token).
# Writes out/bench/sft.json. Run on an otherwise idle machine.
source "$(dirname "${BASH_SOURCE[0]}")/bench-sft-common.sh"
[ -n "${KNOWTUNE_BIN:-}" ] || swift build -c release --product knowtune-bench >&2
bench="$(dirname "$knowtune")/knowtune-bench"
common=("${sft_recipe[@]}" --logging_steps 8)
OPENBLAS_NUM_THREADS=2 mpirun -np 1 --bind-to none "${root[@]}" "$knowtune" "${common[@]}" \
    --per_device_train_batch_size 8 --output_dir out/bench/sft-1x2 >&2
OPENBLAS_NUM_THREADS=1 mpirun -np 2 --bind-to core "${root[@]}" "$knowtune" "${common[@]}" \
    --per_device_train_batch_size 4 --output_dir out/bench/sft-2x1 >&2
"$bench" ceiling > out/bench/sft-ceiling.json
rm -f out/bench/sft-pytorch.json
if [ "${PYTORCH:-1}" = 1 ]; then
    python3 launch/baseline-pytorch-sft.py fp32 "${SFT_BENCH_SAMPLES:-256}" > out/bench/sft-pytorch.json
fi
python3 - <<'PY'
import json, os
result = {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")}
for name in ("1x2", "2x1"):
    r = json.load(open(f"out/bench/sft-{name}/train_results.json"))
    result[name] = {k: r[k] for k in ("train_tokens_per_second", "train_peak_rss_mib", "train_runtime", "train_loss")}
result["2x1_over_1x2"] = result["2x1"]["train_tokens_per_second"] / result["1x2"]["train_tokens_per_second"]
ceiling = json.load(open("out/bench/sft-ceiling.json"))
result["ceiling"] = ceiling
result["2x1_fraction_of_ceiling"] = result["2x1"]["train_tokens_per_second"] / ceiling["ceiling_tokens_per_second_2x1"]
if os.path.exists("out/bench/sft-pytorch.json") and os.path.getsize("out/bench/sft-pytorch.json") > 0:
    result["pytorch_fp32"] = json.load(open("out/bench/sft-pytorch.json"))
    result["2x1_over_pytorch"] = result["2x1"]["train_tokens_per_second"] / result["pytorch_fp32"]["real_tokens_per_second"]
json.dump(result, open("out/bench/sft.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
