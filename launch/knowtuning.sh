#!/usr/bin/env bash
# The KnowTuning demo on SmolLM2-135M-Instruct under mpirun (default 2 ranks): set-up (packages, model, build), then
# the method end to end on dolly:
#   SFT baseline → build KA (rules teacher, perplexity with the base model) → KA-SFT on original + KA pairs
#   → build KC (three disturbed answers per question) → KC-DPO continuing the KA adapter (reference: base model)
#   → predict on dolly_test with the base model, the SFT and the KnowTuning adapters, sampled and greedy
#   → out/knowtuning/results.md (every metric with a 95 % bootstrap interval, KnowTuning − SFT paired) and results.svg
# Size knobs (environment): SAMPLES (training records, default 200), KC_SAMPLES (questions for KC, default 32),
# PREDICT_SAMPLES (default 20), MAX_NEW_TOKENS (default 128), EPOCHS (default 1), RANKS (default 2),
# TEST_SETS (default dolly_test; --full: all four), TEACHER (default rules).
# --full (or FULL=1) uses the release scripts' hyper-parameters on all of dolly_train and predicts on dolly_test,
# nq_test, eli5_test and medquad_test (hours here; see README).
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
    sft_batch=32; sft_lr=1e-4; dpo_batch=16; TEST_SETS="${TEST_SETS:-dolly_test nq_test eli5_test medquad_test}"
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

stage "6/6 predict on $test_sets (first $predict_samples each): sampling as LLaMA-Factory (T 0.95, top-p 0.7, top-k 50) and greedy"
for test_set in $test_sets; do
    for decoding in sampled greedy; do
        sampling=()
        [ "$decoding" = greedy ] && sampling=(--do_sample false)
        for variant in base sft knowtuning; do
            adapter=()
            [ "$variant" = sft ] && adapter=(--checkpoint_dir "$out/sft")
            [ "$variant" = knowtuning ] && adapter=(--checkpoint_dir "$out/kc")
            folder="$out/predict-$test_set-$decoding-$variant"
            "${mpi[@]}" train "${common[@]}" --stage sft --do_predict --predict_with_generate --dataset "$test_set" \
                --per_device_eval_batch_size 4 --max_samples "$predict_samples" --max_new_tokens "$max_new" --cutoff_len 1024 \
                "${sampling[@]}" "${adapter[@]}" --output_dir "$folder"
            # Fact statistics (rules extractor): facts per answer and the share the reference supports.
            "$knowtune" judge "$folder/generated_predictions.jsonl" > "$folder/facts.json"
            # 95 % bootstrap intervals over the questions; KnowTuning also paired against SFT on the same questions.
            paired=()
            [ "$variant" = knowtuning ] && paired=(--minus "$out/predict-$test_set-$decoding-sft/generated_predictions.jsonl")
            "$knowtune" metrics "$folder/generated_predictions.jsonl" --bootstrap 2000 "${paired[@]}" > "$folder/intervals.json"
        done
    done
done

python3 - "$out" $test_sets <<'PY'
import json, sys
out, test_sets = sys.argv[1], sys.argv[2:]
keys = ["predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l", "predict_meteor"]
names = ["BLEU-4", "ROUGE-1", "ROUGE-2", "ROUGE-L", "METEOR"]
labels = (("base", "SmolLM2-135M-Instruct (no adapter)"), ("sft", "SFT"), ("knowtuning", "KnowTuning (KA-SFT + KC-DPO)"))
def cell(interval):
    return f"{interval['mean']:.2f} [{interval['lower']:.2f}, {interval['upper']:.2f}]"
rows = ["Each metric: mean over the questions [95 % bootstrap interval over the questions, 2,000 resamples]. "
        "KnowTuning − SFT: the paired difference on the same questions; an interval that excludes 0 is a gain or a "
        "loss beyond resampling noise.", "",
        "| test set | decoding | model | " + " | ".join(names) + " | facts/answer | supported facts |",
        "|---|---|---|" + "---|" * (len(names) + 2)]
chart = []  # (panel, model, metric, interval)
for test_set in test_sets:
    for decoding in ("sampled", "greedy"):
        for variant, label in labels:
            folder = f"{out}/predict-{test_set}-{decoding}-{variant}"
            intervals = json.load(open(f"{folder}/intervals.json"))
            f = json.load(open(f"{folder}/facts.json"))
            rows.append(f"| {test_set} | {decoding} | {label} | " + " | ".join(cell(intervals["bootstrap_95"][k]) for k in keys)
                        + f" | {f['predicted_facts_per_answer']['mean']:.2f} | {100 * f['supported_share']:.1f}% |")
            for k, n in zip(keys, names):
                chart.append((f"{test_set}, {decoding}", variant, n, intervals["bootstrap_95"][k]))
            if variant == "knowtuning":
                difference = intervals["paired_difference_95"]
                rows.append(f"| {test_set} | {decoding} | **KnowTuning − SFT** | "
                            + " | ".join(cell(difference[k]) + (" *" if difference[k]["lower"] > 0 or difference[k]["upper"] < 0 else "")
                                         for k in keys) + " | | |")
losses = []
for stage in ("sft", "ka", "kc"):
    try:
        r = json.load(open(f"{out}/{stage}/train_results.json"))
        speed = (f"{r['train_pairs_per_second']:.2f} pairs/s, reference {r.get('reference_runtime', 0):.0f} s"
                 if "train_pairs_per_second" in r else f"{r.get('train_tokens_per_second', 0):.0f} tok/s")
        losses.append(f"{stage}: train_loss {r['train_loss']:.4f}, {speed}, {r.get('train_runtime', 0):.0f} s")
    except FileNotFoundError:
        pass
text = "\n".join(rows) + "\n\n(* the paired interval excludes 0)\n\n" + "; ".join(losses) + "\n\n![metrics](results.svg)\n"
open(f"{out}/results.md", "w").write(text)

# The chart: one panel per (test set, decoding), bars per metric and model, 95 % intervals as whiskers.
panels = list(dict.fromkeys(p for p, *_ in chart))
colors = {"base": "#9e9e9e", "sft": "#4a90d9", "knowtuning": "#d9534f"}
bar, gap, panel_height, left, top = 14, 18, 230, 50, 30
panel_width = max(left + len(names) * (3 * bar + gap) + 20, left + 3 * 170)
top_value = max(i["upper"] for *_, i in chart) * 1.1 or 1
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{panel_width}" height="{top + len(panels) * panel_height + 30}" '
       'font-family="sans-serif" font-size="11">']
for name, color in colors.items():
    x = left + list(colors).index(name) * 170
    svg.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{color}"/><text x="{x + 14}" y="17">{dict(labels)[name].split(" (")[0]}</text>')
for p, panel in enumerate(panels):
    y0 = top + p * panel_height + 20
    height = panel_height - 60
    base_y = y0 + height
    svg.append(f'<text x="{left}" y="{y0 - 6}" font-weight="bold">{panel}</text>')
    svg.append(f'<line x1="{left}" y1="{base_y}" x2="{panel_width - 10}" y2="{base_y}" stroke="black"/>')
    for tick in range(0, 5):
        value = top_value * tick / 4
        ty = base_y - height * tick / 4
        svg.append(f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{value:.0f}</text>')
    for m, metric in enumerate(names):
        x0 = left + 10 + m * (3 * bar + gap)
        svg.append(f'<text x="{x0 + 1.5 * bar}" y="{base_y + 14}" text-anchor="middle">{metric}</text>')
        for v, variant in enumerate(colors):
            interval = next(i for pp, vv, mm, i in chart if pp == panel and vv == variant and mm == metric)
            def y(value): return base_y - height * max(value, 0) / top_value
            x = x0 + v * bar
            svg.append(f'<rect x="{x}" y="{y(interval["mean"]):.1f}" width="{bar - 2}" height="{base_y - y(interval["mean"]):.1f}" fill="{colors[variant]}"/>')
            cx = x + (bar - 2) / 2
            svg.append(f'<line x1="{cx}" y1="{y(interval["lower"]):.1f}" x2="{cx}" y2="{y(interval["upper"]):.1f}" stroke="black"/>')
            for bound in ("lower", "upper"):
                svg.append(f'<line x1="{cx - 3}" y1="{y(interval[bound]):.1f}" x2="{cx + 3}" y2="{y(interval[bound]):.1f}" stroke="black"/>')
svg.append("</svg>")
open(f"{out}/results.svg", "w").write("\n".join(svg) + "\n")
print(text)
PY
