#!/usr/bin/env python3
# llama.cpp's batch-1 greedy decoding speed on a GGUF file, for launch/bench-decode.sh: the same alpaca prompt of
# the first dolly_test instruction, 128 new tokens, n_threads from the argument; prints JSON with llama.cpp's own
# timing of the decode evaluations (tokens after the prompt), best of 3 rounds. Needs llama-cpp-python, built natively
# (pip builds it from source); not part of the tests.
#   baseline-llamacpp-decode.py MODEL.gguf THREADS
#   baseline-llamacpp-decode.py --quantize INPUT.gguf OUTPUT.gguf q8_0   (llama.cpp's own requantization)
import json, os, sys, time
import llama_cpp

if sys.argv[1] == "--quantize":
    source, target = sys.argv[2].encode(), sys.argv[3].encode()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0}[sys.argv[4]]
    params.allow_requantize = True
    params.nthread = 2
    status = llama_cpp.llama_model_quantize(source, target, params)
    sys.exit(0 if status == 0 else 1)

model_path, threads = sys.argv[1], int(sys.argv[2])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
instruction = json.load(open(os.path.join(root, "data/dolly/dolly_test.json")))[0]["instruction"]
prompt = ("Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
          f"### Instruction:\n{instruction}\n\n### Response:\n")
llm = llama_cpp.Llama(model_path=model_path, n_threads=threads, n_threads_batch=threads, n_ctx=512, verbose=False)
best = None
for _ in range(3):
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm.ctx)
    # No stop: exactly 128 new tokens, greedy, as knowtune-genbench decodes.
    output = llm.create_completion(prompt, max_tokens=128, temperature=0.0, top_k=1, stop=[], logit_bias={llm.token_eos(): -1e9})
    perf = llama_cpp.llama_perf_context(llm.ctx)
    rate = perf.n_eval / (perf.t_eval_ms / 1000) if perf.t_eval_ms > 0 else 0
    if best is None or rate > best["decode_tokens_per_second"]:
        best = {"decode_tokens_per_second": rate, "decoded_tokens": perf.n_eval, "prompt_tokens": perf.n_p_eval,
                "prompt_tokens_per_second": perf.n_p_eval / (perf.t_p_eval_ms / 1000) if perf.t_p_eval_ms > 0 else 0,
                "text": output["choices"][0]["text"][:200]}
best.update({"threads": threads, "llama_cpp_python": llama_cpp.__version__, "model": os.path.basename(model_path)})
print(json.dumps(best, indent=2))
