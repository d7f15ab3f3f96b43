#!/usr/bin/env bash
# SFT benchmark (issue "distributed SFT"): real (unpadded) tokens/s and peak RSS of LoRA SFT on the first 256
# dolly_train records (alpaca template, cutoff 1024), global batch 8, on this machine's cores: 1 rank x 2 threads
# (mpirun --bind-to none) and 2 ranks x 1 thread; then, in the same run on the same records, PyTorch + PEFT fp32
# (launch/baseline-pytorch-sft.py, 2 threads, warm-up step excluded; PYTORCH=0 skips it) and the sgemm ceiling
# (knowtune-bench ceiling: 2 × the one-thread sgemm 2048×576×576 GFLOP/s ÷ the model's training FLOPs per token).
# ROUNDS (default 3) repeats the 2 × 1 run and the ceiling in turn and compares their medians: on a shared VM a
# single pair can be 20 % apart from the next. Writes out/bench/sft.json. Run on an otherwise idle machine.
source "$(dirname "${BASH_SOURCE[0]}")/bench-sft-common.sh"
[ -n "${KNOWTUNE_BIN:-}" ] || swift build -c release --product knowtune-bench >&2
bench="$(dirname "$knowtune")/knowtune-bench"
common=("${sft_recipe[@]}" --logging_steps 8)
OPENBLAS_NUM_THREADS=2 mpirun -np 1 --bind-to none "${root[@]}" "$knowtune" "${common[@]}" \
    --per_device_train_batch_size 8 --output_dir out/bench/sft-1x2 >&2
rounds="${ROUNDS:-3}"
for round in $(seq 1 "$rounds"); do
    OPENBLAS_NUM_THREADS=1 mpirun -np 2 --bind-to core "${root[@]}" "$knowtune" "${common[@]}" \
        --per_device_train_batch_size 4 --output_dir out/bench/sft-2x1 >&2
    cp out/bench/sft-2x1/train_results.json "out/bench/sft-2x1-round$round.json"
    "$bench" ceiling --model models/smollm2 > "out/bench/sft-ceiling-round$round.json"
done
rm -f out/bench/sft-pytorch.json
if [ "${PYTORCH:-1}" = 1 ]; then
    python3 launch/baseline-pytorch-sft.py fp32 "${SFT_BENCH_SAMPLES:-256}" > out/bench/sft-pytorch.json
fi
ROUNDS="$rounds" python3 - <<'PY'
import json, os, statistics
rounds = int(os.environ["ROUNDS"])
result = {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
          "rounds": rounds}
keys = ("train_tokens_per_second", "train_peak_rss_mib", "train_runtime", "train_loss", "train_allreduce_ms_per_step")
r = json.load(open("out/bench/sft-1x2/train_results.json"))
result["1x2"] = {k: r[k] for k in keys}
runs = [json.load(open(f"out/bench/sft-2x1-round{i}.json")) for i in range(1, rounds + 1)]
ceilings = [json.load(open(f"out/bench/sft-ceiling-round{i}.json")) for i in range(1, rounds + 1)]
result["2x1_rounds"] = [{k: r[k] for k in keys} for r in runs]
result["ceiling_rounds"] = ceilings
speed = statistics.median(r["train_tokens_per_second"] for r in runs)
ceiling = statistics.median(c["ceiling_tokens_per_second_2x1"] for c in ceilings)
result["2x1"] = {"train_tokens_per_second": speed}
result["ceiling"] = {"ceiling_tokens_per_second_2x1": ceiling, "model_flops_per_token": ceilings[0]["model_flops_per_token"],
                     "sgemm_2048x576x576_gflops_1_thread": statistics.median(c["sgemm_2048x576x576_gflops_1_thread"] for c in ceilings),
                     "openblas_core": ceilings[0]["openblas_core"]}
result["2x1_over_1x2"] = speed / result["1x2"]["train_tokens_per_second"]
result["2x1_fraction_of_ceiling"] = speed / ceiling
result["2x1_fraction_of_ceiling_rounds"] = [r["train_tokens_per_second"] / c["ceiling_tokens_per_second_2x1"] for r, c in zip(runs, ceilings)]
if os.path.exists("out/bench/sft-pytorch.json") and os.path.getsize("out/bench/sft-pytorch.json") > 0:
    result["pytorch_fp32"] = json.load(open("out/bench/sft-pytorch.json"))
    result["2x1_over_pytorch"] = speed / result["pytorch_fp32"]["real_tokens_per_second"]
json.dump(result, open("out/bench/sft.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
