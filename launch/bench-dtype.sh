#!/usr/bin/env bash
# Base-precision benchmark (issue "the models users bring", --base_dtype): real tokens/s, peak RSS per rank and the
# loss curve of LoRA SFT on the first 256 dolly_train records (alpaca, cutoff 1024, global batch 8, 2 ranks x 1
# thread) with the frozen base in fp32, bf16, f16 and the quantized q8_0, q4_0, q4_k (DTYPES picks; SFT_BENCH_SAMPLES
# shortens); the largest per-step loss difference against fp32; and the resident weights projected for Llama-2-7B.
# Writes out/bench/dtype.json. Run on an otherwise idle machine.
source "$(dirname "${BASH_SOURCE[0]}")/bench-sft-common.sh"
dtypes="${DTYPES:-fp32 bf16 f16 q8_0 q4_0 q4_k}"
for dtype in $dtypes; do
    OPENBLAS_NUM_THREADS=1 mpirun -np 2 --bind-to core "${root[@]}" "$knowtune" "${sft_recipe[@]}" \
        --logging_steps 1 --per_device_train_batch_size 4 --base_dtype "$dtype" --output_dir "out/bench/dtype-$dtype" >&2
done
python3 - <<'PY'
import json, os
def losses(dtype):
    rows = [json.loads(line) for line in open(f"out/bench/dtype-{dtype}/trainer_log.jsonl")]
    return [row["loss"] for row in rows if row.get("loss") is not None]
result = {"config": "2 ranks x 1 thread, global batch 8, first 256 dolly_train, cutoff 1024, LoRA r=8 q,v",
          "cpu": open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip()}
# fp32 first, as the reference, also when only the 16-bit runs were repeated (DTYPES="bf16 f16").
dtypes = [d for d in ["fp32", "bf16", "f16", "q8_0", "q4_0", "q4_k"] if os.path.exists(f"out/bench/dtype-{d}/train_results.json")]
for dtype in dtypes:
    r = json.load(open(f"out/bench/dtype-{dtype}/train_results.json"))
    entry = {k: r[k] for k in ("train_tokens_per_second", "train_peak_rss_mib", "train_runtime", "train_loss")}
    if dtype != "fp32" and "fp32" in result:
        ours, reference = losses(dtype), losses("fp32")
        entry["max_step_loss_difference_vs_fp32"] = max(abs(a - b) / b for a, b in zip(ours, reference))
        entry["train_loss_difference_vs_fp32"] = (r["train_loss"] - result["fp32"]["train_loss"]) / result["fp32"]["train_loss"]
        entry["speed_vs_fp32"] = r["train_tokens_per_second"] / result["fp32"]["train_tokens_per_second"]
    result[dtype] = entry
# Llama-2-7B (config: 32 layers, hidden 4096, intermediate 11008, vocab 32000, untied head, no GQA).
layers, hidden, intermediate, vocab = 32, 4096, 11008, 32000
parameters = 2 * vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * intermediate + 2 * hidden) + hidden
lora = layers * 2 * 8 * (hidden + hidden)  # r=8 on q,v: A [8, 4096] + B [4096, 8]
result["llama2_7b_projection"] = {
    "parameters": parameters,
    "base_gib": {"fp32": parameters * 4 / 2**30, "bf16": parameters * 2 / 2**30, "f16": parameters * 2 / 2**30,
                 "q8_0": parameters * 34 / 32 / 2**30, "q4_0": parameters * 18 / 32 / 2**30, "q4_k": parameters * 144 / 256 / 2**30},
    "lora_parameters": lora,
    "lora_with_gradients_and_adamw_mib": lora * 4 * 4 / 2**20,  # weights, gradients, two moments
    "note": "base weights resident once per node (node-shared mapping); activations depend on --token_budget",
}
json.dump(result, open("out/bench/dtype.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
