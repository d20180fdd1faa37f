#!/usr/bin/env python3
"""Write kernels/tests/data/dequant_reference.bin: gguf-py's dequantization of deterministic
pseudo-random blocks of every quantized weight type, the independent reference that
ember-kernels' test dequantizers (and through them the scalar dot kernels) are checked against.

Usage: python3 kernels/tests/gen_dequant_reference.py   (needs `pip install gguf numpy`)

Layout: for each type in TYPES, in order, N_ELEMS little-endian f32 values. The input bytes are
made by `block_bytes` below; the Rust test (`testutil::tests`) rebuilds them identically.
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

N_ELEMS = 512
# name, block length, block bytes, byte offsets of f16 scale fields
TYPES = [
    ("Q4_0", 32, 18, [0]),
    ("Q4_1", 32, 20, [0, 2]),
    ("Q5_0", 32, 22, [0]),
    ("Q5_1", 32, 24, [0, 2]),
    ("Q8_0", 32, 34, [0]),
    ("Q2_K", 256, 84, [80, 82]),
    ("Q3_K", 256, 110, [108]),
    ("Q4_K", 256, 144, [0, 2]),
    ("Q5_K", 256, 176, [0, 2]),
    ("Q6_K", 256, 210, [208]),
]
MASK = (1 << 64) - 1


def block_bytes(type_index, n_bytes, f16_offsets, block_size):
    """64-bit LCG seeded per type; top byte of each state is one data byte. f16 fields are
    overwritten with finite values: bits = (r & 0x83FF) | 0x2000 | ((r >> 16) & 0x0C00)."""
    x = (type_index + 1) * 0x9E3779B97F4A7C15 & MASK
    out = bytearray()
    for _ in range(n_bytes):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK
        out.append(x >> 56)
    for b in range(n_bytes // block_size):
        for off in f16_offsets:
            x = (x * 6364136223846793005 + 1442695040888963407) & MASK
            r = x >> 32
            bits = (r & 0x83FF) | 0x2000 | ((r >> 16) & 0x0C00)
            out[b * block_size + off] = bits & 0xFF
            out[b * block_size + off + 1] = bits >> 8
    return bytes(out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    chunks = []
    for i, (name, blen, bsize, offs) in enumerate(TYPES):
        raw = block_bytes(i, N_ELEMS // blen * bsize, offs, bsize)
        y = quants.dequantize(np.frombuffer(raw, dtype=np.uint8), getattr(T, name))
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        assert y.shape == (N_ELEMS,), (name, y.shape)
        chunks.append(y.astype("<f4").tobytes())
    path = os.path.join(here, "data", "dequant_reference.bin")
    with open(path, "wb") as f:
        f.write(b"".join(chunks))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
