#!/usr/bin/env bash
# Batch-1 (and batch-8) greedy decoding on SmolLM2-135M with a q8_0 base against the fp32 base and against llama.cpp
# on the same q8_0 file, in one run (issue "the paper's model size on one node"): makes the q8_0 GGUF once with
# llama.cpp's own quantizer (~/.cache/knowtune/bench), then, ROUNDS times (default 2) in turn, knowtune-genbench with
# the fp32 base (the file's weights dequantized), the q8_0 base (8-bit activations, the default), the q8_0 base with
# fp32 activations (KNOWTUNE_DECODE_ACTIVATIONS=fp32), and launch/baseline-llamacpp-decode.py, all on 2 threads;
# medians. Greedy agreement of the two q8_0 paths: the batch-8 run's tokens, position by position until they part.
# Needs llama-cpp-python (pip install llama-cpp-python builds llama.cpp natively). Writes out/bench/decode.json.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
"$repo_root/launch/fetch-model.sh"
[ -n "${KNOWTUNE_BIN:-}" ] || swift build -c release --product knowtune-genbench >&2
genbench="$(dirname "${KNOWTUNE_BIN:-.build/release/knowtune}")/knowtune-genbench"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/knowtune/bench"
model="$cache/SmolLM2-135M-Instruct.Q8_0.gguf"
mkdir -p "$cache" out/bench/decode
if [ ! -s "$model" ]; then
    python3 launch/baseline-llamacpp-decode.py --quantize models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$model.partial" q8_0 2> /dev/null
    mv "$model.partial" "$model"
fi
rounds="${ROUNDS:-2}"
for round in $(seq 1 "$rounds"); do
    OPENBLAS_NUM_THREADS=2 KNOWTUNE_BASE_DTYPE=fp32 "$genbench" "$model" > "out/bench/decode/fp32-$round.json"
    OPENBLAS_NUM_THREADS=2 KNOWTUNE_BASE_DTYPE=q8_0 "$genbench" "$model" > "out/bench/decode/q8_0-$round.json"
    OPENBLAS_NUM_THREADS=2 KNOWTUNE_BASE_DTYPE=q8_0 KNOWTUNE_DECODE_ACTIVATIONS=fp32 "$genbench" "$model" > "out/bench/decode/q8_0-fp32-activations-$round.json"
    python3 launch/baseline-llamacpp-decode.py "$model" 2 > "out/bench/decode/llamacpp-$round.json"
done
ROUNDS="$rounds" python3 - <<'PY'
import json, os, statistics
rounds = int(os.environ["ROUNDS"])
load = lambda name: [json.load(open(f"out/bench/decode/{name}-{r}.json")) for r in range(1, rounds + 1)]
runs = {name: load(name) for name in ("fp32", "q8_0", "q8_0-fp32-activations")}
llama = load("llamacpp")
result = {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
          "rounds": rounds, "openblas_core": runs["fp32"][0]["openblas_core"], "threads": 2}
for name, rs in runs.items():
    result[name] = {key: statistics.median(r[key] for r in rs) for key in ("batch1_tokens_per_second", "batch8_tokens_per_second")}
    result[name]["batch1_rounds"] = [r["batch1_tokens_per_second"] for r in rs]
result["llamacpp_q8_0"] = {"batch1_tokens_per_second": statistics.median(r["decode_tokens_per_second"] for r in llama),
                           "batch1_rounds": [r["decode_tokens_per_second"] for r in llama], "version": llama[0]["llama_cpp_python"]}
b1 = lambda name: result[name]["batch1_tokens_per_second"]
result["q8_0_over_fp32_batch1"] = b1("q8_0") / b1("fp32")
result["q8_0_over_llamacpp_batch1"] = b1("q8_0") / b1("llamacpp_q8_0")
result["q8_0_fp32_activations_over_fp32_batch1"] = b1("q8_0-fp32-activations") / b1("fp32")
# Greedy agreement of 8-bit against fp32 activations: tokens equal before the sequences first part.
a, b = runs["q8_0"][0]["batch8_token_ids"], runs["q8_0-fp32-activations"][0]["batch8_token_ids"]
agree = [next((i for i, (x, y) in enumerate(zip(s, t)) if x != y), min(len(s), len(t))) for s, t in zip(a, b)]
result["greedy_agreement_8bit_vs_fp32_activations"] = {"tokens_before_first_difference": agree,
    "identical_sequences": sum(1 for s, t in zip(a, b) if s == t), "sequences": len(a), "tokens_per_sequence": len(a[0]) if a else 0}
json.dump(result, open("out/bench/decode.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
