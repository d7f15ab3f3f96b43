# Sourced by launch/bench-sft.sh and launch/bench-dtype.sh: goes to the checkout, fetches the model, builds
# knowtune optimised (unless KNOWTUNE_BIN names another binary) and creates out/bench; defines `root` (mpirun's
# --allow-run-as-root when run as root), `knowtune` (the binary) and `sft_recipe`, the SFT benchmark's run: LoRA r=8
# on q,v over the first SFT_BENCH_SAMPLES (default 256) dolly_train records (alpaca template,
# cutoff 1024), one epoch, cosine schedule from 1e-4, no checkpoints. Callers add the batch split, logging and output.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
"$repo_root/launch/fetch-model.sh"
[ -n "${KNOWTUNE_BIN:-}" ] || swift build -c release --product knowtune >&2
knowtune="${KNOWTUNE_BIN:-.build/release/knowtune}"
mkdir -p out/bench
root=()
[ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
sft_recipe=(train --stage sft --model_name_or_path models/smollm2 --do_train --dataset dolly_train --template alpaca
            --finetuning_type lora --lora_target q_proj,v_proj --max_samples "${SFT_BENCH_SAMPLES:-256}" --cutoff_len 1024 --num_train_epochs 1
            --learning_rate 1e-4 --lr_scheduler_type cosine --save_strategy no --overwrite_output_dir)
