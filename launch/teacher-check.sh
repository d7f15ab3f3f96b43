#!/usr/bin/env bash
# How often the `local` teacher gives usable replies: build-ka and build-kc with --teacher local (SmolLM2-135M-Instruct
# unless TEACHER_MODEL is set, greedy, schema-constrained JSON) on the first N dolly_train records (default 200) under
# `mpirun -np RANKS` (default 2), in a scratch copy of data/. A record is usable when the build summary has no
# `record.*` skip for it. Prints and writes out/bench/teacher-local.json: per stage the records, the skips by reason,
# the usable share, the seconds, and (KC) the pairs per disturbance.
#   launch/teacher-check.sh [N]
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
records="${1:-200}"
ranks="${RANKS:-2}"
teacher_model="${TEACHER_MODEL:-models/smollm2}"
"$repo_root/launch/fetch-model.sh"
[ -n "${KNOWTUNE_BIN:-}" ] || swift build -c release --product knowtune >&2
out=out/bench/teacher-check
rm -rf "$out" && mkdir -p "$out" && cp -r data "$out/data"
run=(launch/knowtune-mpirun -n "$ranks" --)
[ -z "${KNOWTUNE_BIN:-}" ] || export KNOWTUNE_BIN
for stage in ka kc; do
    echo "== build-$stage --teacher local on $records records" >&2
    "${run[@]}" "build-$stage" --dataset dolly_train --dataset_dir "$out/data" --model_name_or_path models/smollm2 \
        --teacher local --teacher_model "$teacher_model" --max_samples "$records" --seed 42 > "$out/$stage.summary.json"
done
python3 - "$out" "$records" <<'PY'
import json, sys
out, records = sys.argv[1], int(sys.argv[2])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
result = {"records": records, "cpu": cpu}
for stage in ("ka", "kc"):
    summary = json.load(open(f"{out}/{stage}.summary.json"))
    skipped = summary.get("skipped", {})
    record_skips = sum(v for k, v in skipped.items() if k.startswith("record."))
    result[stage] = {"records": summary.get("records"), "skipped": skipped, "usable_share": 1 - record_skips / max(1, summary.get("records", 1)),
                     "seconds": summary.get("seconds"), "output_records": summary.get("output_records")}
    if "pairs" in summary:
        result[stage]["pairs"] = summary["pairs"]
json.dump(result, open("out/bench/teacher-local.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
