"""Makes the SentencePiece-BPE tokenizer fixtures for SentencePieceTokenizerTests.swift.

Trains a small Llama-style SentencePiece BPE model (byte fallback, split digits, dummy prefix, identity
normalisation, extra whitespace kept: the settings of Llama-2's tokenizer.model) on dolly_train answers, converts
it to Hugging Face tokenizer.json files in the three layouts transformers writes for Llama, dumps the pieces,
scores and types for a GGUF (`tokenizer.ggml.model = llama`), and records HF's ids (add_special_tokens=False) and
decodes for the test strings.

    pip install sentencepiece tokenizers transformers protobuf
    python make_fixtures.py [DATA_DIR]   # default: the repository's data/; reads dolly/dolly_{train,test}.json

Made with sentencepiece 0.2.3, tokenizers 0.23.3, transformers 5.24.0 (cases.json records the versions). The
trained tokenizer.model is kept and reused; delete it to train again.
Layouts:
  legacy/            normalizer Sequence[Prepend("▁"), Replace(" ", "▁")], no pre-tokenizer: what transformers 4.x
                     wrote for Llama-2 (`legacy=True`), built here with `tokenizers` since transformers 5 no longer
                     writes it;
  metaspace-always/  transformers 5 `LlamaTokenizer.from_pretrained(..., legacy=True)`: Metaspace(prepend_scheme
                     "always", split false);
  metaspace-first/   transformers 5 default (`legacy=False`): Metaspace(prepend_scheme "first").
The ids under "legacy-normalized-specials" are for legacy/tokenizer.json with `"normalized": true` on <unk>, <s> and
</s>, as some early Llama tokenizer.json files have: HF then matches them after the Prepend normalizer. No file is
written for it; the Swift test makes the same edit.
"""
import json
import os
import shutil
import sys
import tempfile

import sentencepiece as spm
import tokenizers
import transformers
from tokenizers import Tokenizer, normalizers
from transformers import LlamaTokenizer, PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.abspath(os.path.join(HERE, "..", "..", "..", "..", "data"))
LAYOUTS = ["legacy", "metaspace-always", "metaspace-first"]

SYSTEM = ("Below is an instruction that describes a task. "
          "Write a response that appropriately completes the request.")
CASES = [
    ("empty", ""),
    ("plain", "Hello world"),
    ("sentence", "The quick brown fox jumps over the lazy dog."),
    ("leading space", " Hello"),
    ("two leading spaces", "  two leading spaces"),
    ("trailing space", "trailing space "),
    ("trailing spaces", "trailing spaces   "),
    ("double space", "double  space inside"),
    ("one space", " "),
    ("two spaces", "  "),
    ("newline", "\n"),
    ("two newlines", "\n\n"),
    ("lines", "line one\nline two"),
    ("word after newline", "first\nsecond\n third"),
    ("tabs", "tab\tseparated\tvalues"),
    ("leading tab", "\tleading tab"),
    ("carriage return", "x\r\ny"),
    ("digits", "digits 12345 and 3.14159"),
    ("date", "2023-10-05"),
    ("price", "Prices: $1,299.99!"),
    ("punctuation", "punctuation: (a), [b], {c}; \"quoted\" 'single' \u2014 dash\u2026"),
    ("questions", "What? Why! How... ok?!"),
    ("contractions", "I'm can't won't they're"),
    ("caps", "ALL CAPS SHOUTING"),
    ("identifiers", "CamelCaseIdentifier snake_case_name"),
    ("code", "def f(x):\n    return x * 2"),
    ("url", "https://example.com/path?q=1&r=2"),
    ("email", "email@example.com"),
    ("long word", "supercalifragilisticexpialidocious"),
    ("repeated letters", "a" * 70),
    ("accents", "na\u00efve caf\u00e9 r\u00e9sum\u00e9"),
    ("german", "\u00c5ngstr\u00f6m \u00fcber stra\u00dfe"),
    ("combining accent", "e\u0301t\u0301e"),
    ("chinese", "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5"),
    ("japanese", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8"),
    ("mixed scripts", "Mixed \u4e2d\u6587 and English"),
    ("cyrillic", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440"),
    ("arabic", "\u0645\u0631\u062d\u0628\u0627"),
    ("emoji", "emoji \U0001F600 and \U0001F44D\U0001F3FD and \U0001F468\u200d\U0001F469\u200d\U0001F467"),
    ("lone emoji", "\U0001F916"),
    ("no-break space", "a\u00a0b"),
    ("ideographic space", "\u3000full width space"),
    ("zero-width space", "zero\u200bwidth"),
    ("control character", "bell\u0007 and nul\u0000"),
    ("literal metaspace", "\u2581literal \u2581 metaspace"),
    ("literal byte token text", "<0x0A> is not a newline"),
    ("bos alone", "<s>"),
    ("eos alone", "</s>"),
    ("unk alone", "<unk>"),
    ("eos between letters", "a</s>b"),
    ("eos between spaces", "a </s> b"),
    ("bos and eos around text", "<s>Hello</s>"),
    ("bos inside text", "text <s> more"),
    ("two eos", "</s></s>"),
    ("eos then space", "</s> x"),
    ("eos then newline", "</s>\nx"),
    ("broken special tokens", "<s <s/> </ s> s>"),
    ("alpaca system", SYSTEM),
    ("alpaca separator", "\n\n"),
    ("alpaca user", "### Instruction:\nWhat is sleep training?\n\n### Response:\n"),
    ("alpaca user with input", "### Instruction:\nSummarise this.\nThe input text.\n\n### Response:\n"),
    ("alpaca response", "Sleep training is a method."),
]
# Id lists whose decode is recorded: byte tokens that are or are not valid UTF-8, leading "▁", specials.
DECODE_IDS = [
    [],
    [1],
    [1, 2],
    ["\u2581", "\u2581"],
    ["<0xE4>"],
    ["<0xE4>", "<0xB8>"],
    ["<0xE4>", "<0xB8>", "<0xAD>"],
    ["<0xE4>", "<0xB8>", "<0xAD>", "<0xE4>"],
    ["<0x20>", "<0x41>"],
    ["<0x0A>", "\u2581the"],
    ["\u2581the", "<0xFF>", "\u2581the"],
    ["<s>", "\u2581the"],
]


def train(model_prefix):
    records = json.load(open(os.path.join(DATA, "dolly/dolly_train.json")))
    answers = [record["output"] for record in records[:3000]]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(answers), model_prefix=model_prefix, model_type="bpe", vocab_size=1200,
        byte_fallback=True, split_digits=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", character_coverage=0.9995, allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentence_length=100000, num_threads=1, minloglevel=2)


def main():
    work = tempfile.mkdtemp()
    source = os.path.join(work, "source")
    os.makedirs(source)
    model_path = os.path.join(HERE, "tokenizer.model")
    if not os.path.exists(model_path):
        train(os.path.join(work, "m"))
        shutil.copy(os.path.join(work, "m.model"), model_path)
    shutil.copy(model_path, os.path.join(source, "tokenizer.model"))
    sp = spm.SentencePieceProcessor(model_file=model_path)

    converted = {}
    for layout, legacy in [("metaspace-always", True), ("metaspace-first", False)]:
        converted[layout] = LlamaTokenizer.from_pretrained(source, legacy=legacy)
        converted[layout].save_pretrained(os.path.join(HERE, layout))
    # transformers 4.x's legacy Llama layout: the dummy prefix comes from a normalizer, on every segment.
    backend = Tokenizer.from_file(os.path.join(HERE, "metaspace-always", "tokenizer.json"))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    backend.pre_tokenizer = None
    converted["legacy"] = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        clean_up_tokenization_spaces=False)
    converted["legacy"].save_pretrained(os.path.join(HERE, "legacy"))

    # The ids are those of the saved tokenizer.json run by `tokenizers` (HF's engine), checked against the
    # transformers object that wrote it. (transformers 5 rebuilds a LlamaTokenizer's pre-tokenizer from
    # tokenizer_config.json when it reloads one, so reloading metaspace-always would give "first".)
    backends = {layout: Tokenizer.from_file(os.path.join(HERE, layout, "tokenizer.json")) for layout in LAYOUTS}
    edited = json.load(open(os.path.join(HERE, "legacy", "tokenizer.json")))
    for token in edited["added_tokens"]:
        token["normalized"] = True
    backends["legacy-normalized-specials"] = Tokenizer.from_str(json.dumps(edited))

    # Held-out answers: long BPE words (a whole segment is one word) over real text.
    test_records = json.load(open(os.path.join(DATA, "dolly/dolly_test.json")))
    held_out = [(f"dolly_test answer {index}", record["output"]) for index, record in enumerate(test_records[:3])]
    cases = []
    for name, text in CASES + held_out:
        case = {"name": name, "text": text, "ids": {}, "decoded": {}}
        for layout, backend in backends.items():
            ids = backend.encode(text, add_special_tokens=False).ids
            case["ids"][layout] = ids
            case["decoded"][layout] = backend.decode(ids, skip_special_tokens=False)
            if layout in converted:
                assert ids == converted[layout].encode(text, add_special_tokens=False), (layout, name)
                assert case["decoded"][layout] == converted[layout].decode(ids), (layout, name)
        # SentencePiece itself (what llama.cpp's SPM tokenizer follows) has no special tokens in text.
        case["sentencepiece"] = sp.encode(text) if "<s>" not in text and "</s>" not in text and "<unk>" not in text \
            else None
        cases.append(case)

    decode_cases = []
    vocabulary = backends["legacy"].get_vocab()
    for entry in DECODE_IDS:
        ids = [item if isinstance(item, int) else vocabulary[item] for item in entry]
        decoded = {layout: backend.decode(ids, skip_special_tokens=False) for layout, backend in backends.items()}
        decode_cases.append({"ids": ids, "decoded": decoded})

    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    types = []
    for i in range(sp.get_piece_size()):
        # GGUF / SentencePiece token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 1)
    gguf = {"tokens": pieces, "scores": [sp.get_score(i) for i in range(sp.get_piece_size())],
            "token_type": types, "bos_token_id": sp.bos_id(), "eos_token_id": sp.eos_id(),
            "unknown_token_id": sp.unk_id()}
    with open(os.path.join(HERE, "gguf_vocabulary.json"), "w") as file:
        json.dump(gguf, file, ensure_ascii=False, separators=(",", ":"))
        file.write("\n")
    versions = {"sentencepiece": spm.__version__, "tokenizers": tokenizers.__version__,
                "transformers": transformers.__version__}
    # One case per line keeps the file small and its diffs readable.
    def lines(entries):
        return ",\n".join("  " + json.dumps(entry, ensure_ascii=False) for entry in entries)
    with open(os.path.join(HERE, "cases.json"), "w") as file:
        file.write(f'{{"versions": {json.dumps(versions)},\n "cases": [\n{lines(cases)}\n ],\n'
                   f' "decode_cases": [\n{lines(decode_cases)}\n ]}}\n')
    shutil.rmtree(work)
    print(f"{len(cases)} cases, {len(decode_cases)} decode cases, {len(pieces)} pieces")


if __name__ == "__main__":
    main()
