# PyTorch + PEFT baseline for launch/bench-sft.sh and bench-dtype.sh, to compare on the same machine: LoRA r=8 q,v
# SFT of SmolLM2 on the first N dolly_train records (alpaca prompt, cutoff 1024, batch 8 length-grouped, AdamW,
# 2 threads), fp32 or bf16 (bf16 weights, fp32 LoRA parameters, bf16 autocast: LLaMA-Factory's --bf16). Prints JSON:
# real (unpadded) tokens/s after the first (warm-up) step, peak RSS, mean loss. Not part of the tests; needs torch, transformers, peft and gguf
# (e.g. in a venv): python3 launch/baseline-pytorch-sft.py fp32|bf16 [N=256]
import json, os, resource, sys, time
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import LoraConfig, get_peft_model
dtype = sys.argv[1]
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 256
torch.set_num_threads(2)
torch.manual_seed(0)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
folder, gguf = os.path.join(root, "models/smollm2"), "SmolLM2-135M-Instruct.Q4_1.gguf"
tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
if dtype == "bf16":
    model = model.to(torch.bfloat16)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
for p in model.parameters():
    if p.requires_grad:
        p.data = p.data.float()
records = json.load(open(os.path.join(root, "data/dolly/dolly_train.json")))[:limit]
prompt = ("Below is an instruction that describes a task. Write a response that appropriately completes the request."
          "\n\n### Instruction:\n{}\n\n### Response:\n")
examples = []
for r in records:
    p = tokenizer(prompt.format(r["instruction"]), add_special_tokens=False)["input_ids"]
    a = tokenizer(r["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(p) + len(a) > 1024:  # LLaMA-Factory splits the budget by length; proportional cut
        keep_p = max(1, int(1024 * len(p) / (len(p) + len(a))))
        p, a = p[:keep_p], a[:1024 - keep_p]
    examples.append((p + a, [-100] * len(p) + a))
order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))  # length grouping
batches = [order[i:i + 8] for i in range(0, len(order), 8)]
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
model.train()
real, losses = 0, []
started = time.time()
for step, batch in enumerate(batches):
    if step == 1:  # the first step warms up (allocator, thread pool, kernels) and is not timed
        real, started = 0, time.time()
    width = max(len(examples[i][0]) for i in batch)
    ids = torch.full((len(batch), width), tokenizer.eos_token_id)
    labels = torch.full((len(batch), width), -100)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):
        x, y = examples[i]
        ids[row, :len(x)] = torch.tensor(x); labels[row, :len(y)] = torch.tensor(y); mask[row, :len(x)] = 1
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    optimizer.step(); optimizer.zero_grad()
    real += int(mask.sum()); losses.append(float(loss))
    print(f"step {len(losses)}/{len(batches)} loss {losses[-1]:.4f} {real / (time.time() - started):.1f} tok/s", file=sys.stderr, flush=True)
elapsed = time.time() - started
print(json.dumps({"dtype": dtype, "torch": torch.__version__, "records": limit, "real_tokens": real, "seconds": elapsed,
                  "real_tokens_per_second": real / elapsed, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "mean_loss": sum(losses) / len(losses)}))
