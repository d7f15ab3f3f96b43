#!/usr/bin/env bash
# Compares two revisions on the SFT and DPO benchmarks (launch/bench-sft.sh, launch/bench-dpo.sh), run interleaved
# on the same machine so that both builds see the same conditions: each revision is cloned and built in its own folder
# (out/bench/rev-<rev>; the work tree may change meanwhile), then for each of ROUNDS rounds both benchmarks run with
# the old binary and with the new one, alternating which goes first. Prints and writes out/bench/compare.json: per
# build and configuration the median tokens/s (SFT) and pairs/s (DPO) and new/old ratios. Speeds compare only within
# one run.
#   launch/bench-compare.sh [OLD [NEW]]   (default 3426e14 and HEAD)
#   knobs: ROUNDS (3), SFT_BENCH_SAMPLES (64), DPO_BENCH_PAIRS (32), BENCHMARKS ("sft dpo"), DPO_BENCH_SHAPE (reversed|kc)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
old_rev="$(git rev-parse --short "${1:-3426e14}")"
new_rev="$(git rev-parse --short "${2:-HEAD}")"
rounds="${ROUNDS:-3}"
benchmarks="${BENCHMARKS:-sft dpo}"
export SFT_BENCH_SAMPLES="${SFT_BENCH_SAMPLES:-64}" DPO_BENCH_PAIRS="${DPO_BENCH_PAIRS:-32}"
declare -A binaries=([old]="$(launch/build-revision.sh "$old_rev")" [new]="$(launch/build-revision.sh "$new_rev")")
results="$repo_root/out/bench/compare"
rm -rf "$results"
mkdir -p "$results"
for round in $(seq 1 "$rounds"); do
    order=(old new)
    [ $((round % 2)) -eq 0 ] && order=(new old)
    for build in "${order[@]}"; do
        echo "== round $round: $build" >&2
        for bench in $benchmarks; do
            KNOWTUNE_BIN="${binaries[$build]}" "launch/bench-$bench.sh" > /dev/null
            cp "out/bench/$bench.json" "$results/$bench-$build-$round.json"
        done
    done
done
python3 - "$results" "$old_rev" "$new_rev" "$rounds" "$benchmarks" <<'PY'
import json, statistics, sys
folder, old_rev, new_rev, rounds, benchmarks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
result = {"old_revision": old_rev, "new_revision": new_rev, "rounds": rounds, "cpu": cpu}
result["dpo_shape"] = json.load(open(f"{folder}/dpo-old-1.json")).get("shape", "reversed") if "dpo" in benchmarks else None
for bench, key, suffix in (("sft", "train_tokens_per_second", ""), ("dpo", "train_pairs_per_second", ""),
                           ("dpo", "pairs_per_second_with_reference", "_with_reference")):
    if bench not in benchmarks:
        continue
    for config in ("1x2", "2x1"):
        runs = {b: [json.load(open(f"{folder}/{bench}-{b}-{r}.json"))[config][key] for r in range(1, rounds + 1)] for b in ("old", "new")}
        medians = {b: statistics.median(v) for b, v in runs.items()}
        result[f"{bench}_{config}{suffix}"] = {"old": runs["old"], "new": runs["new"], "old_median": medians["old"],
                                               "new_median": medians["new"], "new_over_old": medians["new"] / medians["old"]}
json.dump(result, open(f"{folder}.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
