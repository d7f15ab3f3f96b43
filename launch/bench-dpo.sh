#!/usr/bin/env bash
# DPO benchmark (issue "DPO stage"): pairs/s of LoRA DPO (sigmoid, beta 0.1, ftx 0.2) on dolly-sized preference
# pairs, global batch 8, on this machine's cores: 1 rank x 2 threads (mpirun --bind-to none) and 2 ranks x 1
# thread; the reference log-prob precompute time is reported separately (it runs once, before training).
# Pairs ($DPO_BENCH_PAIRS, default 64) from dolly_train records with at least three sentences, chosen = the output;
# DPO_BENCH_SHAPE=reversed (default): one pair per record, rejected = the sentences in reverse order (the golden
# dpo.json's construction); DPO_BENCH_SHAPE=kc: three pairs per record sharing the prompt and the chosen answer, as
# build-kc writes them (rejected: the first half of the sentences = incomplete, "not" after each sentence's first
# word = non-factual, reversed = illogical). pairs_per_second_with_reference counts the reference pass too. Writes
# out/bench/dpo.json. Run on an otherwise idle machine. KNOWTUNE_BIN runs another build's binary
# (launch/bench-compare.sh).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
pairs="${DPO_BENCH_PAIRS:-64}"
"$repo_root/launch/fetch-model.sh"
[ -n "${KNOWTUNE_BIN:-}" ] || swift build -c release --product knowtune >&2
knowtune="${KNOWTUNE_BIN:-.build/release/knowtune}"
mkdir -p out/bench/dpo-data
shape="${DPO_BENCH_SHAPE:-reversed}"
python3 - "$pairs" "$shape" <<'PY'
import json, re, sys
count, shape = int(sys.argv[1]), sys.argv[2]
assert shape in ("reversed", "kc"), f"DPO_BENCH_SHAPE is reversed or kc, not {shape}"
records = json.load(open("data/dolly/dolly_train.json"))
pairs = []
for record in records:
    sentences = re.split(r"(?<=[.!?])\s+", record["output"].strip())
    if len(sentences) < 3:
        continue  # a short answer reversed or halved is too close to itself
    def negated(sentence):
        words = sentence.split(" ")
        return " ".join(words[:1] + ["not"] + words[1:])
    illogical = " ".join(reversed(sentences))
    variants = [illogical] if shape == "reversed" else [
        " ".join(sentences[:len(sentences) // 2]), " ".join(negated(s) for s in sentences), illogical]
    for rejected in variants:
        if len(pairs) < count:
            pairs.append({"instruction": record["instruction"], "input": record.get("input", ""), "output": [record["output"], rejected]})
    if len(pairs) == count:
        break
json.dump(pairs, open("out/bench/dpo-data/dolly_pairs.json", "w"))
info = {"dolly_pairs": {"file_name": "dolly_pairs.json", "ranking": True,
                        "columns": {"prompt": "instruction", "query": "input", "response": "output"}}}
json.dump(info, open("out/bench/dpo-data/dataset_info.json", "w"))
PY
root=()
[ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
common=(train --stage dpo --model_name_or_path models/smollm2 --do_train --dataset dolly_pairs --dataset_dir out/bench/dpo-data
        --template alpaca --finetuning_type lora --lora_target q_proj,v_proj --cutoff_len 1024 --num_train_epochs 1
        --learning_rate 1e-5 --lr_scheduler_type cosine --dpo_ftx 0.2 --logging_steps 4 --save_strategy no --overwrite_output_dir)
OPENBLAS_NUM_THREADS=2 mpirun -np 1 --bind-to none "${root[@]}" "$knowtune" "${common[@]}" \
    --per_device_train_batch_size 8 --output_dir out/bench/dpo-1x2 >&2
OPENBLAS_NUM_THREADS=1 mpirun -np 2 --bind-to core "${root[@]}" "$knowtune" "${common[@]}" \
    --per_device_train_batch_size 4 --output_dir out/bench/dpo-2x1 >&2
python3 - "$pairs" "$shape" <<'PY'
import json, sys
result = {"pairs": int(sys.argv[1]), "shape": sys.argv[2]}
for name in ("1x2", "2x1"):
    r = json.load(open(f"out/bench/dpo-{name}/train_results.json"))
    result[name] = {k: r[k] for k in ("train_pairs_per_second", "reference_runtime", "train_runtime", "train_peak_rss_mib", "train_loss")}
    # The reference pass scores both sequences of every pair once (forward only).
    result[name]["reference_pairs_per_second"] = result["pairs"] / r["reference_runtime"]
    result[name]["pairs_per_second_with_reference"] = result["pairs"] / (r["train_runtime"] + r["reference_runtime"])
result["2x1_over_1x2"] = result["2x1"]["train_pairs_per_second"] / result["1x2"]["train_pairs_per_second"]
json.dump(result, open("out/bench/dpo.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
