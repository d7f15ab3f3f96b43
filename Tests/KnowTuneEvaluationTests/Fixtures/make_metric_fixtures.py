#!/usr/bin/env python3
"""Writes the reference values that KnowTuneEvaluationTests check the Swift metrics against.

Reference stack (the versions KnowTuning's requirements.txt pins for LLaMA-Factory 0.5.3's
`train/sft/metric.py::ComputeMetrics`):

    pip install nltk==3.7 rouge-chinese==1.0.3 jieba==0.42.1 numpy

Run from anywhere:

    python3 Tests/KnowTuneEvaluationTests/Fixtures/make_metric_fixtures.py

Writes, next to this script:
- metric_cases.json: per-example BLEU-4 / ROUGE-1/2/L / METEOR exactly as LF 0.5.3 rounds them
  (round(score * 100, 4)), the unrounded scores, jieba's tokens for both sides, a token-level
  jieba table, and the numpy mean over all exact cases (LF's aggregate).
- porter_stems.json: NLTK 3.7 PorterStemmer (NLTK_EXTENSIONS mode) stems for the words of the
  Dolly test outputs plus a list of rule-specific words.

METEOR is not part of LF 0.5.3. KnowTune defines it as NLTK 3.7 `meteor_score([ref], hyp)` with
alpha 0.9, beta 3, gamma 0.5, str.lower preprocessing, the Porter stem stage, and tokens = jieba
tokens that are not whitespace. WordNet data cannot be downloaded here, so the synonym stage gets a
stub whose `synsets` returns [] (that stage then matches nothing new). `meteor_exact` also replaces
the stemmer with the identity, i.e. the exact-match stage alone.
"""

import json
import math
import os
import random
import sys

import jieba
import nltk
import numpy as np
from nltk.stem.porter import PorterStemmer
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from nltk.translate.meteor_score import meteor_score
from rouge_chinese import Rouge

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DOLLY_TEST = os.path.join(REPO_ROOT, "data", "dolly", "dolly_test.json")

jieba.setLogLevel(60)


class NoWordNet:
    """Stands in for nltk.corpus.wordnet: no synsets, so METEOR's synonym stage adds nothing."""

    def synsets(self, word):
        return []


class IdentityStemmer:
    def stem(self, word):
        return word


def lf_scores(pred, label):
    """LLaMA-Factory 0.5.3 ComputeMetrics for one (pred, label) pair, unrounded and rounded."""
    hypothesis = list(jieba.cut(pred))
    reference = list(jieba.cut(label))
    if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
        rouge = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        rouge = Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
    bleu = sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)
    meteor_tokens_hyp = [w for w in hypothesis if w.strip()]
    meteor_tokens_ref = [w for w in reference if w.strip()]
    meteor = meteor_score([meteor_tokens_ref], meteor_tokens_hyp, wordnet=NoWordNet())
    meteor_exact = meteor_score(
        [meteor_tokens_ref], meteor_tokens_hyp, wordnet=NoWordNet(), stemmer=IdentityStemmer()
    )
    raw = {
        "bleu-4": float(bleu),
        "rouge-1": rouge["rouge-1"]["f"],
        "rouge-2": rouge["rouge-2"]["f"],
        "rouge-l": rouge["rouge-l"]["f"],
        "meteor": float(meteor),
        "meteor_exact": float(meteor_exact),
    }
    rounded = {k: round(v * 100, 4) for k, v in raw.items()}
    return hypothesis, reference, raw, rounded


def has_cjk_ideograph(text):
    # KnowTune's splitter has no CJK dictionary or HMM: these cases are approximate for ROUGE/METEOR.
    return any("\u4e00" <= ch <= "\u9fd5" for ch in text)


def load_dolly():
    if not os.path.exists(DOLLY_TEST):
        sys.exit("dolly_test.json not found at " + DOLLY_TEST)
    with open(DOLLY_TEST, encoding="utf-8") as f:
        return [row["output"] for row in json.load(f)]


def perturb_drop(text, rng, fraction):
    words = text.split(" ")
    kept = [w for w in words if rng.random() >= fraction]
    return " ".join(kept)


def perturb_inflect(text, rng):
    # Exercises METEOR's stem stage: the same stems with other endings.
    out = []
    for w in text.split(" "):
        if w.isalpha() and len(w) > 4 and rng.random() < 0.4:
            if w.endswith("s"):
                w = w[:-1]
            elif w.endswith("e"):
                w = w[:-1] + "ing"
            else:
                w = w + "s"
        out.append(w)
    return " ".join(out)


def perturb_shuffle_sentences(text, rng):
    parts = [p for p in text.replace("\n", " ").split(". ") if p]
    rng.shuffle(parts)
    return ". ".join(parts)


def perturb_swap_words(text, rng, swaps):
    words = text.split(" ")
    for _ in range(swaps):
        if len(words) < 2:
            break
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def build_cases():
    dolly = load_dolly()
    rng = random.Random(20240229)
    cases = []

    def add(name, pred, label):
        cases.append((name, pred, label))

    # The notes' own vectors (§9 of llamafactory-semantics.md).
    add("notes-sleep-training",
        "Sleep training teaches babies to sleep on their own.",
        "Sleep training typically refers to the method by which babies are taught to sleep on their own.")
    add("notes-cat-repeated", "The cat sat on the mat. The cat sat.", "The cat sat on the mat.")
    add("notes-empty-prediction", "", "Some reference.")
    add("notes-yes-no", "Yes", "No")

    # Edge cases.
    add("identical", "The quick brown fox jumps over the lazy dog.",
        "The quick brown fox jumps over the lazy dog.")
    add("disjoint", "Alpha beta gamma.", "Zebra yak xylophone!")
    add("empty-label", "Something was generated.", "")
    add("both-empty", "", "")
    add("whitespace-only-prediction", "  \n\t ", "A real answer.")
    add("whitespace-only-label", "A real answer.", " \n ")
    add("single-character", "a", "a")
    add("single-word-match", "Paris", "Paris")
    add("case-differs", "PARIS IS THE CAPITAL OF FRANCE", "Paris is the capital of France")
    add("punctuation-heavy", "Well... isn't it? (Yes!) e.g., C++ & C# -- a 'well-known' foo_bar;",
        "Well, isn't it? Yes! For example: C++, C#, AT&T - the well-known foo_bar.")
    add("numbers", "It costs $3.50, i.e. 50% off; version v1.2.3 shipped in 2023.",
        "The price was 3.5 dollars (50% off) and v1.2 shipped in 2023-10.")
    add("repeated-words", "the the the the the the the", "the cat is on the mat")
    add("repeated-phrase", "I think I think I think so.", "I think so.")
    add("newlines-and-paragraphs", "First point.\n\nSecond point?\nThird point!",
        "First point.\nSecond point? Third point.")
    add("crlf-and-tabs", "one\r\ntwo\tthree  four", "one two\r\nthree\tfour")
    add("question-marks-split-sentences", "Why? Because. How?? Like this?!", "Why? Because! How? Like that.")
    add("fullwidth-punctuation", "。！？，“”‘’……", "。？！，")
    add("ellipsis-and-dots", "Wait...... then …… go.", "Wait... then go......")
    add("non-ascii-latin", "Café naïve résumé — déjà vu.", "Cafe naive resume - deja vu.")
    add("emoji-and-symbols", "Great job 👍🏽! ©2024 ™", "Great job! © 2024")
    add("nbsp-and-ideographic-space", "a\u00a0b\u3000c\u2028d", "a b c d")
    add("stemming-pairs", "The runners were running quickly and happily generalizing",
        "The runner runs quick and happy generalization")
    add("short-vs-long", "Yes.", "Yes. " + dolly[0])
    add("cjk-mixed-approximate", "我们在北京用C++写代码。", "我们在上海用C++写代码！")

    # Long paragraphs from Dolly outputs against perturbed versions.
    picks = [rng.randrange(len(dolly)) for _ in range(20)]
    for n, idx in enumerate(picks):
        label = dolly[idx]
        kind = n % 8
        if kind == 0:
            pred = perturb_drop(label, rng, 0.2)
            name = "dolly-drop-20pct"
        elif kind == 1:
            pred = perturb_inflect(label, rng)
            name = "dolly-inflect"
        elif kind == 2:
            pred = perturb_shuffle_sentences(label, rng)
            name = "dolly-shuffle-sentences"
        elif kind == 3:
            pred = label[: len(label) // 2]
            name = "dolly-truncate-half"
        elif kind == 4:
            pred = label.lower()
            name = "dolly-lowercase"
        elif kind == 5:
            pred = perturb_swap_words(label, rng, 10)
            name = "dolly-swap-words"
        elif kind == 6:
            pred = dolly[(idx + 1) % len(dolly)]
            name = "dolly-unrelated"
        else:
            pred = label + " " + label.split(". ")[0] + ".\n"
            name = "dolly-extended"
        add(f"{name}-{idx}", pred, label)
    return cases


TOKENIZATION_STRINGS = [
    "Sleep training C++11 abc++ AT&T at&t c#sharp e.g. well-known isn't foo_bar 3.5 50% v1.2.3",
    "a--b end...... ok\r\nx\u3000y",
    "1.2.3.4 3.14abc abc3.14 1. .5 5.% %5 50%% 100%off",
    "A&B #hashtag +plus -minus _under +-#&._% &&",
    "C++ C+ C c+++ CC++ AT&TT xAT&T",
    "tab\there\r\rCR\n\nLF\r\n\r\nCRLF\x0b\x0c\x1c\x85end",
    "quote \"double\" 'single' `tick` (paren) [bracket] {brace} <angle>",
    "Café naïve — déjà vu 👍🏽 ©",
    "",
    "   ",
    "。！？……",
]


def porter_words(dolly):
    words = set()
    for text in dolly:
        for token in jieba.cut(text):
            token = token.strip().lower()
            if token and token.isalpha() and token.isascii():
                words.add(token)
    special = [
        "sky", "skies", "dying", "lying", "tying", "news", "innings", "inning", "outings", "canning",
        "howe", "proceed", "exceed", "succeed", "flies", "dies", "ties", "spied", "died", "agreed",
        "feed", "plastered", "bled", "motoring", "sing", "conflated", "troubled", "sized", "hopping",
        "tanned", "falling", "hissing", "fizzed", "failing", "filing", "happy", "sky", "cry", "by",
        "relational", "conditional", "rational", "valenci", "hesitanci", "digitizer", "conformabli",
        "radicalli", "differentli", "vileli", "analogousli", "vietnamization", "predication",
        "operator", "feudalism", "decisiveness", "hopefulness", "callousness", "formaliti",
        "sensitiviti", "sensibiliti", "triplicate", "formative", "formalize", "electriciti",
        "electrical", "hopeful", "goodness", "revival", "allowance", "inference", "airliner",
        "gyroscopic", "adjustable", "defensible", "irritant", "replacement", "adjustment",
        "dependent", "adoption", "homologou", "communism", "activate", "angulariti", "homologous",
        "effective", "bowdlerize", "probate", "rate", "cease", "controll", "roll", "generalization",
        "oscillators", "a", "is", "as", "ies", "eed", "ied", "ing", "ed", "s", "ss", "yy", "ayy",
        "fully", "hopefulli", "archaeology", "geology", "theology", "anthology", "apologies",
        "generically", "mistakenly", "easily", "possibly", "fluently", "abled", "cryed",
    ]
    words.update(special)
    stemmer = PorterStemmer()
    return {w: stemmer.stem(w) for w in sorted(words)}


def main():
    cases = []
    for name, pred, label in build_cases():
        hyp_tokens, ref_tokens, raw, rounded = lf_scores(pred, label)
        cases.append({
            "name": name,
            "predict": pred,
            "label": label,
            "predict_tokens": hyp_tokens,
            "label_tokens": ref_tokens,
            "approximate_jieba": has_cjk_ideograph(pred) or has_cjk_ideograph(label),
            "rounded": rounded,
            "raw": raw,
        })
    exact = [c for c in cases if not c["approximate_jieba"]]
    aggregate = {
        "predict_" + key: float(np.mean([c["rounded"][key] for c in exact]))
        for key in ["bleu-4", "rouge-1", "rouge-2", "rouge-l", "meteor"]
    }
    tokenization = [{"text": s, "tokens": list(jieba.cut(s))} for s in TOKENIZATION_STRINGS]
    document = {
        "generator": {
            "script": "make_metric_fixtures.py",
            "python": sys.version.split()[0],
            "nltk": nltk.__version__,
            "jieba": jieba.__version__,
            "rouge_chinese": "1.0.3",
            "numpy": np.__version__,
            "meteor": "nltk meteor_score, wordnet stub with no synsets; tokens = non-whitespace jieba tokens",
        },
        "cases": cases,
        "aggregate_over_exact_cases": aggregate,
        "tokenization": tokenization,
    }
    with open(os.path.join(HERE, "metric_cases.json"), "w", encoding="utf-8") as f:
        json.dump(document, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "porter_stems.json"), "w", encoding="utf-8") as f:
        json.dump(porter_words(load_dolly()), f, ensure_ascii=False, indent=0, sort_keys=True)
        f.write("\n")
    print(f"{len(cases)} cases ({len(exact)} exact), {len(tokenization)} tokenization strings")


if __name__ == "__main__":
    main()
