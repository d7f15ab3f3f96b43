#!/usr/bin/env bash
# Where a training step's time goes (issue 16): perf samples (DWARF call graphs) of `knowtune-bench engine` (SmolLM2,
# LoRA r=8 on q,v, batch 8 × 256, every position labelled; 1 OpenBLAS thread, STEPS steps after a warm-up), each sample
# charged to the first category its stack shows, in this order: head and loss (logit chunks through the frozen head,
# CrossEntropy), attention (CausalAttention, its sgemm included), frozen products (FrozenLinear, the quantized and
# 16-bit kernels), LoRA products (the rank-r products inside the decoder's projections), norms (RMSNorm), RoPE, SwiGLU, AdamW, other. Writes
# out/bench/profile-engine[-LABEL].json with each category's share and the same run's engine figures.
#   launch/profile-engine.sh [LABEL]        (KNOWTUNE_BENCH: the knowtune-bench binary; default: build it)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
"$repo_root/launch/fetch-model.sh"
if [ -z "${KNOWTUNE_BENCH:-}" ]; then swift build -c release --product knowtune-bench >&2; fi
bench="${KNOWTUNE_BENCH:-.build/release/knowtune-bench}"
label="${1:+-$1}"
mkdir -p out/bench
data="$(mktemp /tmp/knowtune-profile.XXXXXX)"
trap 'rm -f "$data" "$data.script"' EXIT
OPENBLAS_NUM_THREADS=1 perf record -F "${FREQUENCY:-199}" --call-graph dwarf,16384 -o "$data" -- \
    "$bench" engine --model models/smollm2 --data data/dolly/dolly_train.json --threads 1 --steps "${STEPS:-2}" --output "out/bench/profile-engine$label-run.json" > /dev/null
perf script -i "$data" -F comm,ip,sym 2> /dev/null > "$data.script"
python3 - "$data.script" "out/bench/profile-engine$label.json" "out/bench/profile-engine$label-run.json" <<'PY'
import json, sys
script, output, run = sys.argv[1:4]
# Swift's mangled names carry each type and method with its length; C kernels go by their own names.
categories = [
    ("head_and_loss", ("12CrossEntropy", "16forEachLogitChunk", "11headForward", "12headGradient", "kt_sum_exp", "kt_scaled_exp", "kt_max")),
    ("attention", ("15CausalAttention", "kt_softmax_row")),
    ("frozen_products", ("12FrozenLinear", "kt_quant_", "kt_bf16_", "kt_half_")),
    ("lora_products", ("7project", "15projectBackward")),
    ("norms", ("7RMSNorm", "kt_rmsnorm")),
    ("rope", ("16RotaryEmbedding",)),
    ("swiglu", ("6SwiGLU", "kt_swiglu")),
    ("adamw", ("5AdamW",)),
]
counts, total, stack = {name: 0 for name, _ in categories} | {"other": 0}, 0, []
def charge(frames):
    global total
    if not frames:
        return
    total += 1
    joined = " ".join(frames)
    for name, markers in categories:
        if any(marker in joined for marker in markers):
            counts[name] += 1
            return
    counts["other"] += 1
for line in open(script, errors="replace"):
    if not line.strip():
        charge(stack)
        stack = []
    elif line.startswith((" ", "\t")):
        stack.append(line.strip())
charge(stack)
result = {"samples": total, "share": {name: round(count / max(total, 1), 4) for name, count in counts.items()},
          "engine": json.load(open(run))}
json.dump(result, open(output, "w"), indent=2)
for name, share in sorted(result["share"].items(), key=lambda item: -item[1]):
    print(f"{name:16s} {100 * share:5.1f} %")
print(f"({total} samples; engine: {result['engine']['tokens_per_second']}, core {result['engine']['openblas_core']})")
PY
