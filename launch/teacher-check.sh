#!/usr/bin/env bash
# How often the `local` teacher gives usable replies: build-ka and build-kc with --teacher local (SmolLM2-135M-Instruct
# unless TEACHER_MODEL is set, greedy, schema-constrained JSON) on the first N dolly_train records (default 200) under
# `mpirun -np RANKS` (default 2), in a scratch copy of data/. A record is usable when the build summary has no
# `record.*` skip for it. Prints and writes out/bench/teacher-local.json: per stage the records, the skips by reason,
# the usable share, the seconds, and (KC) the pairs per disturbance. With API=1 it then serves the teacher model with
# `knowtune api` and runs both builds again with `--teacher openai` against it (greedy, one request at a time per
# rank), into a second copy of data/, and records whether each output file is byte-identical to the local teacher's.
#   [API=1] launch/teacher-check.sh [N]
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
if [ "${API:-0}" = 1 ]; then
    log="$out/api.log"
    "${KNOWTUNE_BIN:-.build/release/knowtune}" api --model_name_or_path "$teacher_model" --template chatml --port 0 \
        --served_model_name teacher --max_concurrent 2 --context_length 2048 2> "$log" &
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
    for _ in $(seq 1 600); do grep -q "listening on" "$log" && break; sleep 0.1; done
    base_url=$(grep -o "http://[0-9.]*:[0-9]*/v1" "$log" | head -1)
    [ -n "$base_url" ] || { cat "$log" >&2; exit 1; }
    cp -r data "$out/data-api"
    for stage in ka kc; do
        echo "== build-$stage --teacher openai ($base_url) on $records records" >&2
        "${run[@]}" "build-$stage" --dataset dolly_train --dataset_dir "$out/data-api" --model_name_or_path models/smollm2 \
            --teacher openai --openai_base_url "$base_url" --openai_model teacher --teacher_concurrency 1 \
            --max_samples "$records" --seed 42 > "$out/$stage.api.summary.json"
    done
    kill $server
fi
python3 - "$out" "$records" <<'PY'
import filecmp, json, os, sys
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
    if os.path.exists(f"{out}/{stage}.api.summary.json"):
        name = f"dolly/dolly_train_{stage.upper()}.json"
        result[stage]["api_byte_identical"] = filecmp.cmp(f"{out}/data/{name}", f"{out}/data-api/{name}", shallow=False)
        result[stage]["api_seconds"] = json.load(open(f"{out}/{stage}.api.summary.json")).get("seconds")
json.dump(result, open("out/bench/teacher-local.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
