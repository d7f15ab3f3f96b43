#!/usr/bin/env bash
# Fuzzes KnowTune's parsers with libFuzzer and AddressSanitizer from the Swift toolchain: builds knowtune-fuzz into
# .build-fuzz (-D KNOWTUNE_FUZZ, coverage instrumentation, libFuzzer's no-main runtime), seeds out/fuzz/TARGET/corpus
# with the committed seeds (Tests/Fixtures/fuzz/TARGET), runs until RUNS executions or SECONDS have passed, and writes
# out/fuzz/TARGET/result.json: executions, seconds, coverage (edges) and features, corpus size, and the crash files
# (out/fuzz/TARGET/artifacts). A crash file goes into Tests/Fixtures/fuzz/TARGET/crash-<name> with its fix, so that
# the plain test suite replays it. By hand: two cores; one target at a time.
#   launch/fuzz.sh TARGET|all [SECONDS (1800)] [RUNS (1000000)]
#   targets: gguf safetensors tokenizer-json dataset-records dataset-info adapter checkpoint teacher-reply predictions training-config
#            response-schema chat-request
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
target="${1:?usage: launch/fuzz.sh TARGET|all [SECONDS] [RUNS]}"
seconds="${2:-1800}"
runs="${3:-1000000}"
targets=(gguf safetensors tokenizer-json dataset-records dataset-info adapter checkpoint teacher-reply predictions training-config response-schema)
[ "$target" = all ] || targets=("$target")

clang_lib="$(dirname "$(command -v swift)")/../lib/clang"
fuzzer_lib="$(ls "$clang_lib"/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)"
[ -f "$fuzzer_lib" ] || { echo "fuzz.sh: libFuzzer (libclang_rt.fuzzer_no_main) not found under $clang_lib" >&2; exit 1; }
swift build -c release --build-path .build-fuzz --product knowtune-fuzz \
    -Xswiftc -DKNOWTUNE_FUZZ -Xswiftc -sanitize=address \
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
    -Xlinker "$fuzzer_lib" -Xlinker -lstdc++ >&2
binary=.build-fuzz/release/knowtune-fuzz

for name in "${targets[@]}"; do
    work="out/fuzz/$name"
    # The corpus grows from run to run; artifacts are this run's alone (commit a fixed one as a crash-* seed).
    rm -rf "$work/artifacts"
    mkdir -p "$work/corpus" "$work/artifacts"
    # Seeds only: the committed crash files are regressions the test suite replays, and some are slow on purpose.
    cp -n Tests/Fixtures/fuzz/"$name"/seed-* "$work/corpus/" 2>/dev/null || true
    log="$work/fuzz.log"
    echo "== $name: up to $runs runs or $seconds s" >&2
    # Leak checks are off: the Swift runtime keeps metadata caches alive on purpose. 2 GiB is the memory a parser
    # may use on a fuzzed input of at most 64 KiB.
    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0 KNOWTUNE_FUZZ_TARGET="$name" \
        "$binary" -runs="$runs" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" > "$log" 2>&1 || true
    python3 - "$name" "$work" <<'PY'
import json, os, re, sys
name, work = sys.argv[1], sys.argv[2]
text = open(os.path.join(work, "fuzz.log"), errors="replace").read()
def last(pattern, cast=int):
    found = re.findall(pattern, text)
    return cast(found[-1]) if found else None
result = {
    "target": name,
    "executions": last(r"stat::number_of_executed_units:\s*(\d+)"),
    "seconds": last(r"Done \d+ runs in (\d+) second"),
    "executions_per_second": last(r"exec/s: (\d+)"),
    "coverage_edges": last(r"cov: (\d+)"),
    "features": last(r"ft: (\d+)"),
    "corpus_files": len(os.listdir(os.path.join(work, "corpus"))),
    "peak_rss_mib": last(r"stat::peak_rss_mb:\s*(\d+)"),
    "crashes": sorted(os.listdir(os.path.join(work, "artifacts"))),
    "deadly_signal_or_error": bool(re.search(r"ERROR: (AddressSanitizer|libFuzzer)|deadly signal", text)),
}
json.dump(result, open(os.path.join(work, "result.json"), "w"), indent=2)
print(json.dumps(result))
PY
done
