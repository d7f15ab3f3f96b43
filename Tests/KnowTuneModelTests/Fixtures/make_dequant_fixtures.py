#!/usr/bin/env python3
"""Builds dequant_cases.json, the reference data for DequantizerTests.swift.

For every tensor type KnowTune dequantises, it draws a few random raw blocks (fixed numpy seed, so reruns give
the same file) and records the fp32 values the PyPI `gguf` package's `gguf.quants.dequantize` gives for them;
that module mirrors ggml's `dequantize_row_*` operation for operation, in fp32. Scale fields (f16, or the f32 of
Q8_K) are written as finite values of modest magnitude, so no case involves inf or NaN; the exponent range reaches
into f16 subnormals on purpose. Everything else in a block is uniform random bytes.

Q8_K is the exception: gguf 0.19 has no Q8_K dequantiser (it raises NotImplementedError), so its expected values
are computed here from ggml's `block_q8_K` layout (f32 d, int8 qs[256], int16 bsums[16]; x = d * q), which is also
what `dequantize_row_q8_K` does.

The file also carries the three hand-derived blocks of DequantizerTests (Q4_0, Q4_1, Q8_0), checked here against
gguf so the hand arithmetic in the Swift comments and gguf agree.

Usage: python3 make_dequant_fixtures.py   (writes dequant_cases.json beside this script)
"""
import json
import os

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QuantType
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

SEED = 20240611
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dequant_cases.json")

# Byte offsets of the f16 scale fields inside one block, from ggml's `block_*` structs (ggml-common.h).
HALF_SCALE_OFFSETS = {
    QuantType.Q4_0: [0],          # d
    QuantType.Q4_1: [0, 2],       # d, m
    QuantType.Q5_0: [0],          # d
    QuantType.Q5_1: [0, 2],       # d, m
    QuantType.Q8_0: [0],          # d
    QuantType.Q2_K: [80, 82],     # d, dmin after scales[16] and qs[64]
    QuantType.Q3_K: [108],        # d after hmask[32], qs[64], scales[12]
    QuantType.Q4_K: [0, 2],       # d, dmin
    QuantType.Q5_K: [0, 2],       # d, dmin
    QuantType.Q6_K: [208],        # d after ql[128], qh[64], scales[16]
}

BLOCK_TYPES = [
    QuantType.Q4_0, QuantType.Q4_1, QuantType.Q5_0, QuantType.Q5_1, QuantType.Q8_0,
    QuantType.Q2_K, QuantType.Q3_K, QuantType.Q4_K, QuantType.Q5_K, QuantType.Q6_K, QuantType.Q8_K,
]


def modest_scales(rng, count, dtype):
    """Finite scales ±2^e, e uniform in [-17, 2]: modest, and (for f16) partly subnormal below 2^-14."""
    exponent = rng.uniform(-17.0, 2.0, size=count)
    sign = rng.choice([-1.0, 1.0], size=count)
    values = (sign * np.exp2(exponent)).astype(dtype)
    assert np.all(np.isfinite(values))
    return values


def float_case(rng, qtype, count):
    """Raw bytes of `count` random finite F32/F16/BF16 values, including a signed zero and tiny values."""
    magnitudes = np.exp2(rng.uniform(-20.0, 10.0, size=count))
    values = (rng.choice([-1.0, 1.0], size=count) * magnitudes).astype(np.float32)
    values[0] = np.float32(-0.0)
    if qtype == QuantType.F32:
        values[1] = np.float32(1e-40)  # an fp32 subnormal
        return values.view(np.uint8).copy()
    if qtype == QuantType.F16:
        halves = values.astype(np.float16)
        halves[1] = np.float16(2.0**-24)  # the smallest f16 subnormal
        assert np.all(np.isfinite(halves))
        return halves.view(np.uint8).copy()
    # BF16: the top half of each fp32 (any finite fp32 gives a finite bf16 this way).
    return (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).copy()


def block_case(rng, qtype, block_count):
    """Raw bytes of `block_count` random blocks whose scale fields are modest finite values."""
    _, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(block_count, type_size), dtype=np.uint8)
    if qtype == QuantType.Q8_K:
        # block_q8_K: f32 d, int8 qs[256], int16 bsums[16] (each the sum of 16 quants, as ggml fills it).
        blocks[:, 0:4] = modest_scales(rng, block_count, np.float32).reshape(block_count, 1).view(np.uint8)
        quants = blocks[:, 4:260].view(np.int8).astype(np.int16)
        blocks[:, 260:292] = quants.reshape(block_count, 16, 16).sum(axis=2).astype("<i2").view(np.uint8)
        return blocks.reshape(-1).copy()
    for offset in HALF_SCALE_OFFSETS[qtype]:
        halves = modest_scales(rng, block_count, np.float16).reshape(block_count, 1)
        blocks[:, offset:offset + 2] = halves.view(np.uint8)
    return blocks.reshape(-1).copy()


def reference_values(raw, qtype):
    """The fp32 values ggml would produce, and where they came from."""
    if qtype == QuantType.Q8_K:
        blocks = raw.reshape(-1, GGML_QUANT_SIZES[qtype][1])
        scale = blocks[:, 0:4].copy().view(np.float32)
        quants = blocks[:, 4:260].copy().view(np.int8).astype(np.float32)
        return (scale * quants).reshape(-1), "numpy from the block_q8_K layout (gguf has no Q8_K dequantiser)"
    if qtype == QuantType.BF16:
        # gguf.quants.dequantize for BF16 goes through its BF16 class (a 16-bit shift into fp32).
        return dequantize(raw, qtype).reshape(-1), "gguf.quants.dequantize"
    return dequantize(raw, qtype).reshape(-1).astype(np.float32), "gguf.quants.dequantize"


def half_bytes(value):
    return np.array([value], dtype=np.float16).view(np.uint8).tolist()


def hand_derived_cases():
    """The blocks DequantizerTests spells out by hand, with the values derived there."""
    nibbles = [j | (15 - j) << 4 for j in range(16)]  # byte j: low nibble j, high nibble 15 − j
    q4_0 = bytes(half_bytes(0.5) + nibbles)
    q4_0_expected = [0.5 * (j - 8) for j in range(16)] + [0.5 * (15 - j - 8) for j in range(16)]
    q4_1 = bytes(half_bytes(0.25) + half_bytes(-1.5) + nibbles)
    q4_1_expected = [0.25 * j - 1.5 for j in range(16)] + [0.25 * (15 - j) - 1.5 for j in range(16)]
    q8_0 = bytes(half_bytes(0.125) + [(8 * j - 128) & 0xFF for j in range(32)])  # q_j = 8j − 128
    q8_0_expected = [float(j - 16) for j in range(32)]
    return [
        ("hand-derived Q4_0", QuantType.Q4_0, q4_0, q4_0_expected),
        ("hand-derived Q4_1", QuantType.Q4_1, q4_1, q4_1_expected),
        ("hand-derived Q8_0", QuantType.Q8_0, q8_0, q8_0_expected),
    ]


def case_record(name, qtype, raw, block_size):
    values, reference = reference_values(raw, qtype)
    values = np.ascontiguousarray(values, dtype=np.float32)
    assert np.all(np.isfinite(values)), name
    element_count = raw.size // GGML_QUANT_SIZES[qtype][1] * block_size
    assert values.size == element_count, name
    return {
        "name": name,
        "type": qtype.name,
        "type_code": int(qtype.value),
        "block_elements": block_size,
        "block_bytes": GGML_QUANT_SIZES[qtype][1],
        "element_count": element_count,
        "reference": reference,
        "raw_hex": raw.tobytes().hex(),
        "expected_f32_le_hex": values.astype("<f4").tobytes().hex(),
    }


def main():
    rng = np.random.default_rng(SEED)
    cases = []
    for qtype, count in [(QuantType.F32, 24), (QuantType.F16, 24), (QuantType.BF16, 24)]:
        raw = float_case(rng, qtype, count)
        cases.append(case_record(f"random {qtype.name}", qtype, raw, 1))
    for index, qtype in enumerate(BLOCK_TYPES):
        block_count = 2 + index % 3  # 2, 3 or 4 blocks
        raw = block_case(rng, qtype, block_count)
        block_size, _ = GGML_QUANT_SIZES[qtype]
        cases.append(case_record(f"random {qtype.name} x{block_count}", qtype, raw, block_size))
    for name, qtype, raw_bytes, hand_values in hand_derived_cases():
        raw = np.frombuffer(raw_bytes, dtype=np.uint8).copy()
        record = case_record(name, qtype, raw, GGML_QUANT_SIZES[qtype][0])
        got = np.frombuffer(bytes.fromhex(record["expected_f32_le_hex"]), dtype="<f4")
        assert got.tolist() == [float(np.float32(v)) for v in hand_values], f"{name}: hand values disagree with gguf"
        cases.append(record)

    document = {
        "description": "Raw GGUF tensor bytes and the fp32 values ggml's dequantize_row_* gives for them; "
                       "written by make_dequant_fixtures.py, read by DequantizerTests.swift.",
        "numpy_seed": SEED,
        "numpy_version": np.__version__,
        "gguf_version": getattr(gguf, "__version__", None) or _installed_gguf_version(),
        "cases": cases,
    }
    with open(OUTPUT, "w") as output:
        json.dump(document, output, indent=1)
        output.write("\n")
    print(f"wrote {len(cases)} cases to {OUTPUT} ({os.path.getsize(OUTPUT)} bytes)")


def _installed_gguf_version():
    from importlib.metadata import version
    return version("gguf")


if __name__ == "__main__":
    main()
