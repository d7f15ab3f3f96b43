#!/usr/bin/env bash
# Launch benchmark (issue "run where users run"): LoRA SFT of SmolLM2-135M on the first $SAMPLES dolly_train records
# (alpaca, cutoff 512, global batch 8) started five ways on this machine: 1 rank x 2 threads (unbound), 2 ranks x 1
# thread, 4 ranks oversubscribed, and one rank on each of two launch-lab "hosts" (network namespaces) with and
# without a 2 ms / 1 Gbit link. Reports real tokens/s, the largest peak RSS of any rank, the slowest rank's mean
# all-reduce time per step (waiting for slower ranks included), and the PSS of the node-shared base weights summed
# over the ranks with each rank's private part (launch/weights-pss.py). Writes out/bench/launch.json.
# Needs root for the namespaces (launch/lab/hosts.sh). Run it idle.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
samples="${SAMPLES:-64}"
lab="$repo_root/launch/lab"
"$repo_root/launch/fetch-model.sh"
swift build -c release --product knowtune >&2
knowtune="$repo_root/.build/release/knowtune"
out="$repo_root/out/bench/launch"
mkdir -p "$out"
common=(train --stage sft --model_name_or_path "$repo_root/models/smollm2" --do_train --dataset dolly_train
        --dataset_dir "$repo_root/data" --template alpaca --finetuning_type lora --lora_target q_proj,v_proj
        --max_samples "$samples" --cutoff_len 512 --num_train_epochs 1 --learning_rate 1e-4 --lr_scheduler_type cosine
        --logging_steps 4 --save_strategy no --overwrite_output_dir)

run() {   # name, launcher command...; the knowtune arguments follow "--"
    local name="$1"; shift
    echo "== $name" >&2
    rm -rf "$out/$name" "$out/$name.stop"
    # The weights mapping's PSS summed over the ranks, and each rank's private part of it, sampled every second.
    python3 "$repo_root/launch/weights-pss.py" "$out/$name" "$out/$name.stop" "$out/$name.pss.json" &
    local sampler=$!
    "$@" --output_dir "$out/$name" 2>&1 | grep -E "world_size|tokens/s|train_runtime|error" >&2 || true
    touch "$out/$name.stop"
    wait "$sampler" || true
}
mpirun_wrapper="$repo_root/launch/knowtune-mpirun"
run 1x2 "$mpirun_wrapper" -n 1 --threads 2 --bind none --global-batch 8 -- "${common[@]}"
run 2x1 "$mpirun_wrapper" -n 2 --threads 1 --global-batch 8 -- "${common[@]}"
run 4x1-oversubscribed "$mpirun_wrapper" -n 4 --threads 1 --global-batch 8 -- "${common[@]}"

hosts() {   # (re)builds the two namespace hosts; extra KT_* knobs as arguments
    env -u KT_DELAY -u KT_RATE -u KT_MTU -u KT_SLOTS KT_NHOSTS=2 "$@" "$lab/hosts.sh" start > "$out/hosts.log" 2>&1 < /dev/null \
        || { cat "$out/hosts.log" >&2; exit 1; }
}
lab_dir="${KT_LAB_DIR:-${TMPDIR:-/tmp}/kt-lab}"
across_hosts() {
    local name="$1"
    # Remote ranks start with a bare environment: forward the thread count. --bind-to none, or every "host" pins to core 0.
    OPENBLAS_NUM_THREADS=1 run "$name" "$lab_dir/kt-mpirun" -np 2 --bind-to none -x OPENBLAS_NUM_THREADS \
        "$knowtune" "${common[@]}" --per_device_train_batch_size 4
}
hosts
across_hosts 2hosts
hosts KT_DELAY=2ms KT_RATE=1gbit
across_hosts 2hosts-2ms-1gbit
"$lab/hosts.sh" stop > /dev/null 2>&1 || true

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
result = {}
for name in ("1x2", "2x1", "4x1-oversubscribed", "2hosts", "2hosts-2ms-1gbit"):
    r = json.load(open(f"{out}/{name}/train_results.json"))
    result[name] = {k: r.get(k) for k in ("train_tokens_per_second", "train_peak_rss_mib", "train_allreduce_ms_per_step",
                                          "train_runtime", "train_loss")}
    try:
        result[name].update(json.load(open(f"{out}/{name}.pss.json")))
    except (OSError, ValueError):
        pass  # no sample: the sampler saw no rank
tps = {k: v["train_tokens_per_second"] for k, v in result.items()}
result["2x1_over_1x2"] = tps["2x1"] / tps["1x2"]
result["2hosts_slow_over_2x1"] = tps["2hosts-2ms-1gbit"] / tps["2x1"]
json.dump(result, open(f"{out}/../launch.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
