#!/usr/bin/env bash
# The KnowTuning recipe's time, a newer revision (default HEAD) against an older one (default 3426e14), each built in
# its own folder (out/bench/rev-<rev>, launch/build-revision.sh), run interleaved on the same machine: a fixed slice
# of every stage of launch/knowtuning.sh --full, under `mpirun -np 2`, fp32 base (`--bf16` has no effect on CPU, as in
# the main job), activation recomputation off where the build has the flag (the old one has none and never recomputes):
#   SFT on the first SFT_RECORDS (64) dolly_train records, 1 epoch; build-ka (rules teacher) on KA_RECORDS (16);
#   KA-SFT on their KA dataset, 1 epoch; build-kc (rules) on KC_RECORDS (16); KC-DPO on their pairs continuing the
#   KA adapter, 1 epoch; predict (LF sampling, max_new_tokens 512) of PREDICT_PROMPTS (4) dolly_test questions.
# Each stage's own runtime (train_runtime, + reference_runtime for DPO, the build summary's seconds,
# predict_runtime; model loading excluded) is scaled to the full recipe: SFT 4,000 records × 3 epochs, build-ka and
# build-kc 4,000 records, KA-SFT 3 epochs over 4,000 × (KA examples per record), KC-DPO 4,000 × (pairs per record),
# predict 4 test sets × 200 questions × 3 models at both builds' mean answer length (per generated token: sampled
# answers of two adapters differ in length). Prints each stage for both builds, the extrapolated totals and
# their ratio; writes out/bench/recipe.json. ROUNDS (1) repeats the comparison, alternating which build goes first;
# medians are reported.
#   launch/bench-recipe.sh [OLD [NEW]]   (default 3426e14 and HEAD)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
old_rev="$(git rev-parse --short "${1:-3426e14}")"
new_rev="$(git rev-parse --short "${2:-HEAD}")"
rounds="${ROUNDS:-1}"
sft_records="${SFT_RECORDS:-64}"; ka_records="${KA_RECORDS:-16}"; kc_records="${KC_RECORDS:-16}"; prompts="${PREDICT_PROMPTS:-4}"
"$repo_root/launch/fetch-model.sh"
declare -A binaries=([old]="$(launch/build-revision.sh "$old_rev")" [new]="$(launch/build-revision.sh "$new_rev")")
results="$repo_root/out/bench/recipe"
rm -rf "$results" && mkdir -p "$results"
root=()
[ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)

run_recipe() {   # build round
    local build="$1" round="$2" bin="${binaries[$1]}"
    local out="$results/$build-$round"
    mkdir -p "$out" && cp -r data "$out/data"
    local mpi=(env OPENBLAS_NUM_THREADS=1 mpirun -np 2 --bind-to core "${root[@]}" "$bin")
    local extra=()
    "$bin" train --help 2>&1 | grep -q disable_gradient_checkpointing && extra=(--disable_gradient_checkpointing)
    local common=(--model_name_or_path models/smollm2 --dataset_dir "$out/data" --template alpaca --finetuning_type lora --bf16
                  --lora_target q_proj,v_proj --cutoff_len 512 --lr_scheduler_type cosine --logging_steps 5 --save_strategy no
                  --overwrite_output_dir "${extra[@]}")
    local sft=(--stage sft --do_train --learning_rate 1e-4 --num_train_epochs 1 --per_device_train_batch_size 8)
    echo "== round $round, $build: SFT" >&2
    "${mpi[@]}" train "${common[@]}" "${sft[@]}" --dataset dolly_train --max_samples "$sft_records" --output_dir "$out/sft" >&2
    echo "== round $round, $build: build-ka" >&2
    "${mpi[@]}" build-ka --dataset dolly_train --dataset_dir "$out/data" --model_name_or_path models/smollm2 --teacher rules \
        --max_samples "$ka_records" --seed 42 > "$out/ka.summary.json"
    echo "== round $round, $build: KA-SFT" >&2
    "${mpi[@]}" train "${common[@]}" "${sft[@]}" --dataset dolly_train_KA --output_dir "$out/ka" >&2
    echo "== round $round, $build: build-kc" >&2
    "${mpi[@]}" build-kc --dataset dolly_train --dataset_dir "$out/data" --model_name_or_path models/smollm2 --teacher rules \
        --max_samples "$kc_records" --seed 42 > "$out/kc.summary.json"
    echo "== round $round, $build: KC-DPO" >&2
    "${mpi[@]}" train "${common[@]}" --stage dpo --do_train --dataset dolly_train_KC --resume_lora_training 1 \
        --checkpoint_dir "$out/ka" --per_device_train_batch_size 8 --learning_rate 1e-5 --num_train_epochs 1.0 --dpo_ftx 0.2 \
        --output_dir "$out/kc" >&2
    echo "== round $round, $build: predict" >&2
    "${mpi[@]}" train "${common[@]}" --stage sft --do_predict --predict_with_generate --dataset dolly_test \
        --per_device_eval_batch_size 2 --max_samples "$prompts" --max_new_tokens 512 --cutoff_len 1024 \
        --checkpoint_dir "$out/kc" --output_dir "$out/predict" >&2
}

for round in $(seq 1 "$rounds"); do
    order=(old new)
    [ $((round % 2)) -eq 0 ] && order=(new old)
    for build in "${order[@]}"; do run_recipe "$build" "$round"; done
done

python3 - "$results" "$old_rev" "$new_rev" "$rounds" "$sft_records" "$ka_records" "$kc_records" "$prompts" <<'PY'
import json, statistics, sys
folder, old_rev, new_rev = sys.argv[1], sys.argv[2], sys.argv[3]
rounds, sft_records, ka_records, kc_records, prompts = map(int, sys.argv[4:9])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
FULL_RECORDS, EPOCHS, PREDICTIONS = 4000, 3, 4 * 200 * 3

def stages(out):
    load = lambda path: json.load(open(f"{out}/{path}"))
    sft, ka, kc, predict = load("sft/train_results.json"), load("ka/train_results.json"), load("kc/train_results.json"), load("predict/predict_results.json")
    ka_summary, kc_summary = load("ka.summary.json"), load("kc.summary.json")
    ka_examples = ka_summary["output_records"]
    kc_pairs = kc_summary["output_records"]
    seconds = {
        "sft": sft["train_runtime"], "build_ka": ka_summary["seconds"], "ka_sft": ka["train_runtime"],
        "build_kc": kc_summary["seconds"], "kc_dpo": kc["train_runtime"] + kc.get("reference_runtime", 0),
        "predict": predict["predict_runtime"],
    }
    full = {
        "sft": seconds["sft"] / sft_records * FULL_RECORDS * EPOCHS,
        "build_ka": seconds["build_ka"] / ka_records * FULL_RECORDS,
        "ka_sft": seconds["ka_sft"] / ka_examples * (ka_examples / ka_records * FULL_RECORDS) * EPOCHS,
        "build_kc": seconds["build_kc"] / kc_records * FULL_RECORDS,
        "kc_dpo": seconds["kc_dpo"] / kc_pairs * (kc_pairs / kc_records * FULL_RECORDS),
    }
    # Sampled answers differ in length between adapters: predict is scaled per generated token (see below).
    generated = predict["predict_generated_tokens_per_second"] * predict["predict_runtime"]
    full["predict"] = seconds["predict"] / generated
    return {"slice_seconds": seconds, "full_recipe_seconds": full, "predict_tokens_per_prompt": generated / prompts,
            "ka_examples": ka_examples, "kc_pairs": kc_pairs, "kc_pairs_per_second": kc_pairs / seconds["kc_dpo"],
            "sft_tokens_per_second": sft.get("train_tokens_per_second")}

runs = {b: [stages(f"{folder}/{b}-{r}") for r in range(1, rounds + 1)] for b in ("old", "new")}
# Both builds' predict time for the same number of tokens: the mean answer length over every run of both.
mean_tokens = statistics.mean(run["predict_tokens_per_prompt"] for b in runs for run in runs[b])
for b in runs:
    for run in runs[b]:
        run["full_recipe_seconds"]["predict"] *= mean_tokens * PREDICTIONS
        run["full_recipe_hours"] = sum(run["full_recipe_seconds"].values()) / 3600
result = {"old_revision": old_rev, "new_revision": new_rev, "rounds": rounds, "cpu": cpu,
          "slice": {"sft_records": sft_records, "ka_records": ka_records, "kc_records": kc_records, "predict_prompts": prompts},
          "runs": runs}
median = lambda build, f: statistics.median(f(run) for run in runs[build])
for stage in ("sft", "build_ka", "ka_sft", "build_kc", "kc_dpo", "predict"):
    old, new = (median(b, lambda r: r["full_recipe_seconds"][stage]) for b in ("old", "new"))
    result[stage] = {"old_full_hours": old / 3600, "new_full_hours": new / 3600, "new_over_old": new / old}
old_total, new_total = (median(b, lambda r: r["full_recipe_hours"]) for b in ("old", "new"))
result["full_recipe_hours"] = {"old": old_total, "new": new_total, "new_over_old": new_total / old_total}
old_dpo, new_dpo = (median(b, lambda r: r["kc_pairs_per_second"]) for b in ("old", "new"))
result["kc_dpo_pairs_per_second"] = {"old": old_dpo, "new": new_dpo, "new_over_old": new_dpo / old_dpo}
json.dump(result, open("out/bench/recipe.json", "w"), indent=2)
for stage in ("sft", "build_ka", "ka_sft", "build_kc", "kc_dpo", "predict"):
    r = result[stage]
    print(f"{stage:9s} old {r['old_full_hours']:7.2f} h  new {r['new_full_hours']:7.2f} h  new/old {r['new_over_old']:.3f}")
t = result["full_recipe_hours"]
print(f"full recipe old {t['old']:.2f} h, new {t['new']:.2f} h: new/old {t['new_over_old']:.3f}; "
      f"KC-DPO pairs/s (reference included) new/old {result['kc_dpo_pairs_per_second']['new_over_old']:.3f}")
PY
