#!/usr/bin/env bash
# The KnowTuning demo on SmolLM2-135M-Instruct under mpirun (default 2 ranks): set-up (packages, model, build), then
# the method end to end on dolly:
#   SFT baseline → build KA (rules teacher, perplexity with the base model) → KA-SFT on original + KA pairs
#   → build KC (three disturbed answers per question) → KC-DPO continuing the KA adapter (reference: base model)
#   → predict on dolly_test with the SFT and the KnowTuning adapters → out/knowtuning/results.md
# Size knobs (environment): SAMPLES (training records, default 200), KC_SAMPLES (questions for KC, default 32),
# PREDICT_SAMPLES (default 20), MAX_NEW_TOKENS (default 128), EPOCHS (default 1), RANKS (default 2),
# TEST_SETS (default dolly_test; e.g. "dolly_test medquad_test nq_test eli5_test"), TEACHER (default rules).
# --full (or FULL=1) uses the release scripts' hyper-parameters on all of dolly_train (hours here; see README).
set -euo pipefail
for arg in "$@"; do
    case "$arg" in
        --full) FULL=1 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "knowtuning.sh: unknown argument $arg (only --full; size knobs are environment variables)" >&2; exit 2 ;;
    esac
done
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo_root/launch/setup.sh"
cd "$repo_root"

ranks="${RANKS:-2}"
out="${OUT:-out/knowtuning}"
knowtune=".build/release/knowtune"
# knowtune-mpirun: threads per rank and binding from this machine's cores, --allow-run-as-root only for root, and
# on failure the rank, the step and the checkpoint to resume from.
mpi=(launch/knowtune-mpirun -n "$ranks" --)
if [ "${FULL:-0}" = 1 ]; then
    samples=4000; kc_samples=4000; predict_samples=200; max_new=512; epochs=3
    sft_batch=32; sft_lr=1e-4; dpo_batch=16
else
    samples="${SAMPLES:-200}"; kc_samples="${KC_SAMPLES:-32}"; predict_samples="${PREDICT_SAMPLES:-20}"
    max_new="${MAX_NEW_TOKENS:-128}"; epochs="${EPOCHS:-1}"; sft_batch=16; sft_lr=1e-4; dpo_batch=8
fi
teacher="${TEACHER:-rules}"
test_sets="${TEST_SETS:-dolly_test}"
per_rank() { local b=$(( $1 / ranks )); echo $(( b > 0 ? b : 1 )); }
mkdir -p "$out"
# The builders register their datasets in dataset_info.json: work on a copy so the repository stays clean.
rm -rf "$out/data" && cp -r data "$out/data"
common=(--model_name_or_path models/smollm2 --dataset_dir "$out/data" --template alpaca --finetuning_type lora --bf16)
sft_flags=(--stage sft --do_train --lora_target q_proj,v_proj --load_best_model_at_end --gradient_accumulation_steps 1
           --lr_scheduler_type cosine --eval_steps 0.1 --evaluation_strategy steps --save_steps 0.1 --val_size 20
           --learning_rate "$sft_lr" --num_train_epochs "$epochs" --cutoff_len 512 --logging_steps 5 --plot_loss
           --per_device_train_batch_size "$(per_rank "$sft_batch")" --overwrite_output_dir)
stage() { echo "== $*" >&2; }

stage "1/6 SFT baseline: dolly_train (first $samples records)"
"${mpi[@]}" train "${common[@]}" "${sft_flags[@]}" --dataset dolly_train --max_samples "$samples" --output_dir "$out/sft"

stage "2/6 build KA: atomic facts, perplexity under the base model, hardest facts rewritten into new QA pairs"
"${mpi[@]}" build-ka --dataset dolly_train --dataset_dir "$out/data" --model_name_or_path models/smollm2 \
    --teacher "$teacher" --max_samples "$samples" --seed 42

stage "3/6 KA-SFT on original + KA pairs"
"${mpi[@]}" train "${common[@]}" "${sft_flags[@]}" --dataset dolly_train_KA --output_dir "$out/ka"

stage "4/6 build KC: incomplete, non-factual and illogical answers against the gold answer"
"${mpi[@]}" build-kc --dataset dolly_train --dataset_dir "$out/data" --model_name_or_path models/smollm2 \
    --teacher "$teacher" --max_samples "$kc_samples" --seed 42

stage "5/6 KC-DPO continuing the KA adapter (reference = base model, β 0.1, ftx 0.2)"
"${mpi[@]}" train "${common[@]}" --stage dpo --do_train --dataset dolly_train_KC --lora_target q_proj,v_proj \
    --resume_lora_training 1 --checkpoint_dir "$out/ka" --overwrite_output_dir --output_dir "$out/kc" \
    --per_device_train_batch_size "$(per_rank "$dpo_batch")" --gradient_accumulation_steps 1 --lr_scheduler_type cosine \
    --logging_steps 5 --save_steps 1000 --learning_rate 1e-5 --num_train_epochs 1.0 --dpo_ftx 0.2 --cutoff_len 512 --plot_loss

stage "6/6 predict on $test_sets (first $predict_samples each, sampling as LLaMA-Factory: T 0.95, top-p 0.7, top-k 50)"
for test_set in $test_sets; do
    for variant in base sft knowtuning; do
        adapter=()
        [ "$variant" = sft ] && adapter=(--checkpoint_dir "$out/sft")
        [ "$variant" = knowtuning ] && adapter=(--checkpoint_dir "$out/kc")
        "${mpi[@]}" train "${common[@]}" --stage sft --do_predict --predict_with_generate --dataset "$test_set" \
            --per_device_eval_batch_size 4 --max_samples "$predict_samples" --max_new_tokens "$max_new" --cutoff_len 1024 \
            "${adapter[@]}" --output_dir "$out/predict-$test_set-$variant"
        # Fact statistics (rules extractor): facts per answer and the share the reference supports.
        "$knowtune" judge "$out/predict-$test_set-$variant/generated_predictions.jsonl" > "$out/predict-$test_set-$variant/facts.json"
    done
done

python3 - "$out" $test_sets <<'PY'
import json, sys
out, test_sets = sys.argv[1], sys.argv[2:]
keys = ["predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l", "predict_meteor"]
rows = ["| test set | model | BLEU-4 | ROUGE-1 | ROUGE-2 | ROUGE-L | METEOR | facts/answer | supported facts |",
        "|---|---|---|---|---|---|---|---|---|"]
labels = (("base", "SmolLM2-135M-Instruct (no adapter)"), ("sft", "SFT"), ("knowtuning", "KnowTuning (KA-SFT + KC-DPO)"))
for test_set in test_sets:
    for variant, label in labels:
        folder = f"{out}/predict-{test_set}-{variant}"
        r = json.load(open(f"{folder}/predict_results.json"))
        f = json.load(open(f"{folder}/facts.json"))
        rows.append(f"| {test_set} | {label} | " + " | ".join(f"{r[k]:.2f}" for k in keys)
                    + f" | {f['predicted_facts_per_answer']['mean']:.2f} | {100 * f['supported_share']:.1f}% |")
losses = []
for stage in ("sft", "ka", "kc"):
    try:
        r = json.load(open(f"{out}/{stage}/train_results.json"))
        speed = (f"{r['train_pairs_per_second']:.2f} pairs/s, reference {r.get('reference_runtime', 0):.0f} s"
                 if "train_pairs_per_second" in r else f"{r.get('train_tokens_per_second', 0):.0f} tok/s")
        losses.append(f"{stage}: train_loss {r['train_loss']:.4f}, {speed}, {r.get('train_runtime', 0):.0f} s")
    except FileNotFoundError:
        pass
text = "\n".join(rows) + "\n\n" + "; ".join(losses) + "\n"
open(f"{out}/results.md", "w").write(text)
print(text)
PY
