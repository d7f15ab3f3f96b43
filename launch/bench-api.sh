#!/usr/bin/env bash
# API server throughput (issue "Serve and teach"): `knowtune api` on SmolLM2-135M-Instruct (alpaca template, up to 8
# sequences per batch) answering greedy 128-token completions (ignore_eos, so every reply is 128 tokens) of dolly_test
# instructions for 1 client and for 8 concurrent clients, each over HTTP with its own connection; and, in the same
# run, the batched generator's own batch-1 and batch-8 decode figures (knowtune-genbench), so the server's overhead
# is a ratio measured on this machine. Server figures are completion tokens per second of wall time (prefill, HTTP
# and JSON included); the generator's are decode-step tokens per second. Writes out/bench/api.json.
#   launch/bench-api.sh            (REQUESTS_PER_CLIENT, default 2 for 8 clients and 4 for 1)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
"$repo_root/launch/fetch-model.sh"
swift build -c release --product knowtune >&2
swift build -c release --product knowtune-genbench >&2
mkdir -p out/bench
echo "== generator (knowtune-genbench)" >&2
.build/release/knowtune-genbench models/smollm2 data/dolly/dolly_test.json > out/bench/api-genbench.json

log=$(mktemp)
.build/release/knowtune api --model_name_or_path models/smollm2 --template alpaca --port 0 --max_concurrent 8 \
    --context_length 1024 --served_model_name smollm2 2> "$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 600); do grep -q "listening on" "$log" && break; sleep 0.1; done
base_url=$(grep -o "http://[0-9.]*:[0-9]*/v1" "$log" | head -1)
[ -n "$base_url" ] || { cat "$log" >&2; exit 1; }
echo "== server at $base_url" >&2

python3 - "$base_url" "${REQUESTS_PER_CLIENT:-}" <<'PY'
import json, sys, threading, time, urllib.request
base_url, per_client = sys.argv[1], sys.argv[2]
instructions = [r["instruction"] for r in json.load(open("data/dolly/dolly_test.json"))]

def complete(instruction):
    body = json.dumps({"model": "smollm2", "messages": [{"role": "user", "content": instruction}], "temperature": 0,
                       "max_tokens": 128, "ignore_eos": True}).encode()
    request = urllib.request.Request(base_url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as reply:
        return json.load(reply)["usage"]["completion_tokens"]

def run(clients, requests_each):
    tokens = [0] * clients
    def client(index):
        for r in range(requests_each):
            tokens[index] += complete(instructions[(index * requests_each + r) % len(instructions)])
    complete(instructions[0])  # warm-up: the server's cache and weight pages
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.time()
    for t in threads: t.start()
    for t in threads: t.join()
    seconds = time.time() - start
    return {"clients": clients, "requests": clients * requests_each, "completion_tokens": sum(tokens), "seconds": seconds,
            "tokens_per_second": sum(tokens) / seconds}

one = run(1, int(per_client or 4))
eight = run(8, int(per_client or 2))
generator = json.load(open("out/bench/api-genbench.json"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
result = {
    "cpu": cpu, "openblas_core": generator["openblas_core"], "model": "SmolLM2-135M-Instruct (models/smollm2)",
    "server_1_client": one, "server_8_clients": eight,
    "generator_batch1_tokens_per_second": generator["batch1_tokens_per_second"],
    "generator_batch8_tokens_per_second": generator["batch8_tokens_per_second"],
    "server_over_generator_1": one["tokens_per_second"] / generator["batch1_tokens_per_second"],
    "server_over_generator_8": eight["tokens_per_second"] / generator["batch8_tokens_per_second"],
    "server_8_over_1": eight["tokens_per_second"] / one["tokens_per_second"],
}
json.dump(result, open("out/bench/api.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
