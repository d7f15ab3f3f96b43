#!/usr/bin/env python3
"""Regenerates KnowTune's golden fixtures (this folder) with HF transformers + PEFT on SmolLM2-135M-Instruct.

Run from the repository root, after `launch/fetch-model.sh`:

    pip install torch transformers peft gguf numpy
    python3 Tests/Fixtures/golden/make_golden.py            # writes Tests/Fixtures/golden/*.json, *.npy, *.npz

Options: --model GGUF (default models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf), --data DIR (default data/),
--output DIR (default this folder). About a minute on 2 cores; no randomness anywhere.

The committed files were made with torch 2.15.0 (2 threads), transformers 5.25.0, peft 0.21.2, gguf 0.19.0 and
numpy 2.4.6 (meta.json records the versions of the last run). The README beside this script says what each file holds
and which tolerances the Swift tests use.

Method: transformers dequantises the Q4_1 GGUF to float32; the fp64 model is that float32 model cast with
`.double()`, so both see exactly the same weight values. Reference values are computed in fp64 and stored as float32
where an array is large (logits, gradients); the fp32 model's results are kept beside the scalar ones to show the
error an fp32 implementation can expect.
"""
import argparse
import copy
import json
import os
import re
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

ALPACA_PROMPT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
                 "request.\n\n### Instruction:\n{}\n\n### Response:\n")
EOS_ID = 2
KINDS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
BETA, FTX = 0.1, 0.2

# Strings for the tokenizer cases; the last two are added from the dolly validation set in tokenizer_cases().
TOKENIZER_TEXTS = [
    ("plain", "Hello world"),
    ("sentence", "The quick brown fox jumps over the lazy dog."),
    ("leading_space", " leading space"),
    ("trailing_space", "trailing space "),
    ("multiple_spaces", "two  spaces,   three spaces,    four"),
    ("only_spaces", "   "),
    ("newlines", "line one\nline two\n\nline four\n"),
    ("tabs_and_indent", "col1\tcol2\tcol3\n\tindented\n  \n"),
    ("crlf", "windows\r\nline end"),
    ("digits", "0 1 12 123 1234 12345 2024-11-25 3.14159 -42 1,000,000"),
    ("long_number", "31415926535897932384626433832795028841971693993751"),
    ("punctuation", "Wait... what?! (yes) [no] {maybe} \"quoted\" 'single' - -- ; : / \\ | @ # $ % ^ & * _ + = ~ `"),
    ("contractions", "it's don't I'm we'll they've you'd He's SHE'S"),
    ("accented_latin", "Café naïve résumé façade Ångström Zürich señor Łódź"),
    ("cjk_chinese", "中文分词测试：你好，世界！"),
    ("cjk_japanese_korean", "日本語のテキストと한국어 텍스트"),
    ("emoji", "Emoji: 😀👍🏽🚀 and ❤️ and family 👨\u200d👩\u200d👧"),
    ("math_symbols", "∑ ∫ √ π ≈ ≠ ≤ ≥ °C €100 £5 ¥"),
    ("code_python", "def f(x):\n    return x**2  # square\n\nprint(f(3))\n"),
    ("code_c", "for (int i = 0; i < n; ++i) { sum += a[i]; }"),
    ("url_email", "https://example.com/path?q=1&r=two#frag user@example.org"),
    ("mixed_case", "ALL CAPS and MiXeD CaSe and camelCaseIdentifier"),
    ("special_token_text", "<|im_start|>user\nHi<|im_end|>\n"),
]


def pattern_value(kind_index, layer, rows, columns, is_a):
    """The LoRA pattern, exact in fp32: A from (3i + 5j + 7·layer + 11m) mod 19, B from (7i + 2j + 5·layer + 3m) mod 23."""
    i = np.arange(rows)[:, None]
    j = np.arange(columns)[None, :]
    if is_a:
        return (((3 * i + 5 * j + 7 * layer + 11 * kind_index) % 19) - 9) / 512.0
    return (((7 * i + 2 * j + 5 * layer + 3 * kind_index) % 23) - 11) / 1024.0


def adapter_name(parameter_name):
    """PEFT's parameter name without the adapter's own name, as in adapter_model.safetensors."""
    return parameter_name.replace(".default", "")


def with_lora(model, rank, alpha, targets):
    """A PEFT LoRA on a deep copy of `model`, its A and B filled with the pattern, in the model's precision."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, bias="none")
    peft_model = get_peft_model(copy.deepcopy(model), config)
    dtype = next(model.parameters()).dtype
    peft_model.to(dtype)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_" not in name:
                continue
            layer = int(re.search(r"layers\.(\d+)\.", name).group(1))
            kind = next(k for k in KINDS if f".{k}." in name)
            values = pattern_value(KINDS.index(kind), layer, *parameter.shape, is_a="lora_A" in name)
            parameter.copy_(torch.tensor(values, dtype=dtype))
    return peft_model


def response_log_probs(model, prompt_ids, response_ids):
    """Log-probabilities of `response_ids` (EOS included) after `prompt_ids`, and the whole forward's output."""
    full = torch.tensor([prompt_ids + response_ids])
    output = model(full, output_hidden_states=True)
    logits = output.logits[0]
    n_prompt = len(prompt_ids)
    log_softmax = torch.log_softmax(logits[n_prompt - 1:-1], dim=-1)
    targets = torch.tensor(response_ids)
    return log_softmax.gather(1, targets[:, None])[:, 0], output


def lora_gradients(peft_model):
    return {adapter_name(name): parameter.grad.detach().clone()
            for name, parameter in peft_model.named_parameters() if parameter.requires_grad}


def global_norm(gradients):
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in gradients.values())))


def relative_l2(actual, expected):
    a = torch.cat([actual[k].double().flatten() for k in expected])
    e = torch.cat([expected[k].double().flatten() for k in expected])
    return float(torch.linalg.norm(a - e) / torch.linalg.norm(e))


def forward_case(models, tokenizer, record):
    prompt = ALPACA_PROMPT.format(record["instruction"])
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(record["output"], add_special_tokens=False)["input_ids"]
    full_ids = prompt_ids + response_ids + [EOS_ID]
    results = {}
    with torch.no_grad():
        for precision, model in models.items():
            log_probs, output = response_log_probs(model, prompt_ids, response_ids + [EOS_ID])
            results[precision] = (log_probs, output)
    log_probs64, output64 = results["fp64"]
    log_probs32, output32 = results["fp32"]
    n_prompt = len(prompt_ids)
    hidden = []
    for index, (state64, state32) in enumerate(zip(output64.hidden_states, output32.hidden_states)):
        row64 = state64[0, n_prompt - 1]
        row32 = state32[0, n_prompt - 1].double()
        hidden.append({"l2_fp64": float(torch.linalg.norm(row64)), "first8_fp64": row64[:8].tolist(),
                       "max_abs_diff_fp32": float((row64 - row32).abs().max())})
    logits64, logits32 = output64.logits[0], output32.logits[0].double()
    case = {
        "source_record": "dolly_valid.json[3] (0-based)",
        "prompt": prompt,
        "response": record["output"],
        "prompt_ids": prompt_ids,
        "response_ids": response_ids,
        "eos_id": EOS_ID,
        "full_ids": full_ids,
        "n_prompt": n_prompt,
        "n_full": len(full_ids),
        "argmax_per_position_fp64": logits64.argmax(-1).tolist(),
        "target_logprob_per_response_token_fp64": log_probs64.tolist(),
        "mean_response_ce_fp64": float(-log_probs64.mean()),
        "mean_response_ce_fp32": float(-log_probs32.double().mean()),
        "hidden_states_last_prompt_pos": hidden,
        "hidden_states_note": "entry 0 = embedding output, entry i (1..29) = output of decoder layer i-1, "
                              "entry 30 = last layer's output after the final RMSNorm",
        "fp32_vs_fp64": {
            "last_prompt_logits_max_abs_diff": float((logits64[n_prompt - 1] - logits32[n_prompt - 1]).abs().max()),
            "all_positions_logits_max_abs_diff": float((logits64 - logits32).abs().max()),
            "argmax_mismatches": int((logits64.argmax(-1) != logits32.argmax(-1)).sum()),
        },
    }
    last_prompt_logits = logits64[n_prompt - 1].float().numpy()
    return case, prompt_ids, response_ids + [EOS_ID], last_prompt_logits


def lora_case(models, prompt_ids, response_ids, rank, alpha, targets):
    """Mean response CE and its LoRA gradients under the pattern adapter, in fp64 and fp32."""
    per_precision = {}
    for precision, model in models.items():
        peft_model = with_lora(model, rank, alpha, targets)
        log_probs, _ = response_log_probs(peft_model, prompt_ids, response_ids)
        loss = -log_probs.mean()
        loss.backward()
        per_precision[precision] = (float(loss.detach()), lora_gradients(peft_model))
    loss64, gradients64 = per_precision["fp64"]
    loss32, gradients32 = per_precision["fp32"]
    summary = {
        "sequence": "forward.json full_ids; mean response CE, EOS included",
        "config": {"r": rank, "lora_alpha": alpha, "scaling": alpha / rank, "dropout": 0.0,
                   "target_modules": targets, "n_tensors": len(gradients64),
                   "n_trainable_params": sum(g.numel() for g in gradients64.values())},
        "lora_loss_fp64": loss64,
        "lora_loss_fp32": loss32,
        "grad_global_l2_fp64": global_norm(gradients64),
        "grad_global_l2_fp32": global_norm(gradients32),
        "fp32_vs_fp64": {"loss_abs_diff": abs(loss64 - loss32),
                         "grad_rel_l2_err_global": relative_l2(gradients32, gradients64),
                         "grad_rel_l2_err_worst_tensor": max(relative_l2({k: gradients32[k]}, {k: gradients64[k]})
                                                             for k in gradients64)},
    }
    return summary, gradients64


def dpo_case(models, tokenizer, record):
    """One DPO pair (chosen = the record's output, rejected = its sentences reversed) under the pattern adapter."""
    prompt = ALPACA_PROMPT.format(record["instruction"])
    chosen = record["output"]
    rejected = " ".join(reversed(re.split(r"(?<=[.!?])\s+", chosen.strip())))
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    chosen_ids = tokenizer(chosen, add_special_tokens=False)["input_ids"] + [EOS_ID]
    rejected_ids = tokenizer(rejected, add_special_tokens=False)["input_ids"] + [EOS_ID]
    values = {}
    for precision, model in models.items():
        peft_model = with_lora(model, 8, 16, ["q_proj", "v_proj"])
        with torch.no_grad(), peft_model.disable_adapter():
            reference_chosen = float(response_log_probs(peft_model, prompt_ids, chosen_ids)[0].sum())
            reference_rejected = float(response_log_probs(peft_model, prompt_ids, rejected_ids)[0].sum())
        policy_chosen = response_log_probs(peft_model, prompt_ids, chosen_ids)[0].sum()
        policy_rejected = response_log_probs(peft_model, prompt_ids, rejected_ids)[0].sum()
        logits = BETA * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
        dpo_loss = -torch.nn.functional.logsigmoid(logits)
        sft_loss = -policy_chosen / len(chosen_ids)
        total = dpo_loss + FTX * sft_loss
        total.backward()
        reward_chosen = BETA * (float(policy_chosen) - reference_chosen)
        reward_rejected = BETA * (float(policy_rejected) - reference_rejected)
        values[precision] = {
            "policy_chosen_logp": float(policy_chosen), "policy_rejected_logp": float(policy_rejected),
            "ref_chosen_logp": reference_chosen, "ref_rejected_logp": reference_rejected,
            "dpo_logits": float(logits), "dpo_loss": float(dpo_loss), "sft_loss": float(sft_loss),
            "total_loss": float(total), "reward_chosen": reward_chosen, "reward_rejected": reward_rejected,
            "reward_margin": reward_chosen - reward_rejected,
            "grad_global_l2_total_loss": global_norm(lora_gradients(peft_model)),
        }
    return {
        "source_record": "dolly_valid.json[5] (0-based)",
        "prompt": prompt, "chosen": chosen, "rejected": rejected,
        "prompt_ids": prompt_ids, "chosen_response_ids": chosen_ids, "rejected_response_ids": rejected_ids,
        "definitions": f"logp = sum of response log-probs (EOS included); dpo_logits = beta*((pc-rc)-(pr-rr)), "
                       f"beta {BETA}; dpo_loss = -log sigmoid(dpo_logits); sft_loss = -pc/len(chosen); "
                       f"total = dpo_loss + {FTX}*sft_loss; policy = base + r=8/alpha=16 q,v pattern adapter; "
                       f"reference = the same model with the adapter disabled",
        "fp64": values["fp64"],
        "fp32": values["fp32"],
    }


def greedy_cases(models, tokenizer, records):
    """40 greedy tokens (HF generate, KV cache, fp32) and the fp64 top1-top2 margins along them."""
    cases = []
    for index, record in enumerate(records):
        prompt = ALPACA_PROMPT.format(record["instruction"])
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            output = models["fp32"].generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                                             do_sample=False, max_new_tokens=40, eos_token_id=EOS_ID, pad_token_id=EOS_ID)
            generated = output[0, len(prompt_ids):].tolist()
            logits64 = models["fp64"](output).logits[0, len(prompt_ids) - 1:-1]
        top2 = logits64.topk(2, dim=-1).values
        cases.append({
            "source_record": f"dolly_test.json[{index}] (0-based)",
            "prompt": prompt,
            "prompt_ids": prompt_ids,
            "generated_ids": generated,
            "generated_text": tokenizer.decode(generated, skip_special_tokens=False, clean_up_tokenization_spaces=False),
            "argmax_nocache_fp64_equals": logits64.argmax(-1).tolist() == generated,
            "min_margin_fp64": float((top2[:, 0] - top2[:, 1]).min()),
        })
    return {"settings": {"model": "fp32 base (no LoRA)", "do_sample": False, "max_new_tokens": 40,
                         "eos_token_id": EOS_ID, "method": "HF generate with KV cache on the unpadded prompt"},
            "cases": cases}


def tokenizer_cases(tokenizer, valid):
    texts = TOKENIZER_TEXTS + [
        ("alpaca_prompt_valid0", ALPACA_PROMPT.format(valid[0]["instruction"])),
        ("alpaca_prompt_response_valid1", ALPACA_PROMPT.format(valid[1]["instruction"]) + valid[1]["output"]),
    ]
    cases = []
    for name, text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        cases.append({"name": name, "text": text, "ids": ids, "tokens": tokenizer.convert_ids_to_tokens(ids),
                      "decoded": tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)})
    return {"source": "tok(text, add_special_tokens=False); tok.decode(ids, skip_special_tokens=False, "
                      "clean_up_tokenization_spaces=False)",
            "eos_id": EOS_ID, "vocab_size": len(tokenizer), "cases": cases}


def write_json(folder, name, value):
    with open(os.path.join(folder, name), "w", encoding="utf-8") as file:
        json.dump(value, file, ensure_ascii=False, separators=(",", ":"))
        file.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.path.join(REPO_ROOT, "models", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--data", default=os.path.join(REPO_ROOT, "data"))
    parser.add_argument("--output", default=HERE)
    arguments = parser.parse_args()
    if not os.path.exists(arguments.model):
        raise SystemExit(f"make_golden: no model at {arguments.model} (run launch/fetch-model.sh first)")

    import peft
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.time()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    folder, file_name = os.path.split(os.path.abspath(arguments.model))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name)
    model32 = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file_name, dtype=torch.float32,
                                                   attn_implementation="sdpa").eval()
    models = {"fp64": copy.deepcopy(model32).double(), "fp32": model32}

    def records(name):
        with open(os.path.join(arguments.data, "dolly", name), encoding="utf-8") as file:
            return json.load(file)

    valid, test = records("dolly_valid.json"), records("dolly_test.json")
    os.makedirs(arguments.output, exist_ok=True)

    forward, prompt_ids, response_ids, last_prompt_logits = forward_case(models, tokenizer, valid[3])
    write_json(arguments.output, "forward.json", forward)
    np.save(os.path.join(arguments.output, "forward_last_prompt_logits.npy"), last_prompt_logits.astype("<f4"))

    lora, gradients = lora_case(models, prompt_ids, response_ids, 8, 16, ["q_proj", "v_proj"])
    write_json(arguments.output, "lora.json", lora)
    # np.savez stores entries uncompressed (ZIP_STORED), which the Swift reader expects.
    np.savez(os.path.join(arguments.output, "lora_grads.npz"),
             **{name: g.float().numpy().astype("<f4") for name, g in gradients.items()})

    all_targets, all_gradients = lora_case(models, prompt_ids, response_ids, 4, 8, KINDS)
    all_targets["per_tensor"] = {name: {"l2_fp64": float(torch.linalg.norm(g))} for name, g in all_gradients.items()}
    write_json(arguments.output, "lora_all_targets.json", all_targets)

    write_json(arguments.output, "dpo.json", dpo_case(models, tokenizer, valid[5]))
    write_json(arguments.output, "greedy.json", greedy_cases(models, tokenizer, test[:2]))
    write_json(arguments.output, "tokenizer_cases.json", tokenizer_cases(tokenizer, valid))

    import gguf
    files = sorted(f for f in os.listdir(arguments.output) if f.endswith((".json", ".npy", ".npz")) and f != "meta.json")
    write_json(arguments.output, "meta.json", {
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "gguf": getattr(gguf, "__version__", "unknown"), "numpy": np.__version__, "threads": torch.get_num_threads(),
        "attn_implementation": "sdpa", "model_file": file_name, "seconds": round(time.time() - start, 1),
        "files": {f: os.path.getsize(os.path.join(arguments.output, f)) for f in files},
    })
    print(f"make_golden: wrote {len(files) + 1} files to {arguments.output} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
