#!/usr/bin/env python3
"""Write a deterministic random-weight F16 GGUF with the width of Phi-3-mini-128k (architecture "phi3").

Same reproducibility method as scripts/make_random_model.py (whose `uniform` it uses): every tensor
comes from its own PCG64 stream seeded from the tensor name, so the bytes do not depend on the CPU,
the numpy build or the order of generation. scripts/make_random_shape.sh quantizes the result.

Shape: Phi-3-mini's width (hidden 3072, 32 heads of 96, 32 KV heads, FFN 8192, vocab 32064, RMS eps
1e-5, rope theta 10000, NeoX rotation) with 4 of its 32 layers, so CI can afford it. The tensors are
Phi-3's fused ones: `attn_qkv` (Q, K then V rows) and an `ffn_up` of 2 x 8192 rows (gate rows, then
up rows), untied `output`. LongRoPE as in the 128k model: context 131072, original context 4096,
`rope_factors_short` / `rope_factors_long` (48 each) and `rope.scaling.attn_factor` =
sqrt(1 + ln(32) / ln(4096)) as convert_hf_to_gguf.py computes it; at contexts up to 4096 llama.cpp
uses the short factors. Tokenizer: the real Phi-3 SentencePiece vocabulary (llama.cpp's
ggml-vocab-phi-3.gguf) and its chat template.

Scales follow make_random_model.py (RMS-normalized block inputs, attention scores with std ~2, each
block adding ~0.1 of the residual RMS, logits with std ~LOGIT_STD); output rows of every token that is
not a normal one (control, byte, unused) are zero, so greedy decoding never emits them.
"""

import argparse
import math
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter, LlamaFileType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_random_model import uniform, write_tensors  # noqa: E402

HIDDEN = 3072
LAYERS = 4
HEADS = 32
KV_HEADS = 32
HEAD_DIM = HIDDEN // HEADS
FFN = 8192
CONTEXT = 131072
ORIG_CONTEXT = 4096
ROPE_THETA = 10000.0
RMS_EPS = 1e-5
LOGIT_STD = 12.0
ATTN_FACTOR = math.sqrt(1.0 + math.log(CONTEXT / ORIG_CONTEXT) / math.log(ORIG_CONTEXT))

SCALES = {
    "token_embd": 1.0,
    "attn_qkv": 0.0255,  # q.k/sqrt(96) has std ~2 for RMS-normalized inputs (0.0255^2 * 3072 ~ 2)
    "attn_output": 0.0036,  # attention block adds ~0.1 RMS to the residual
    "ffn_up": 1.0 / math.sqrt(HIDDEN),
    "ffn_down": 0.0018,  # FFN block adds ~0.1 RMS to the residual
    "output": LOGIT_STD / math.sqrt(HIDDEN),
}
NORM_JITTER = 0.1


def rope_factors(kind):
    """Smooth factors like the real ones: short from 1 to ~2, long from 1 to ~40, per dimension pair."""
    i = np.arange(HEAD_DIM // 2, dtype=np.float64) / (HEAD_DIM // 2 - 1)
    top = 2.0 if kind == "short" else 40.0
    return (1.0 + (top - 1.0) * i**2).astype(np.float32)


def tensor_plan(vocab):
    plan = [
        ("token_embd.weight", (vocab, HIDDEN), "token_embd"),
        ("rope_factors_long.weight", (HEAD_DIM // 2,), "long"),
        ("rope_factors_short.weight", (HEAD_DIM // 2,), "short"),
    ]
    for i in range(LAYERS):
        p = f"blk.{i}."
        plan += [
            (p + "attn_norm.weight", (HIDDEN,), "norm"),
            (p + "attn_qkv.weight", (HIDDEN + 2 * KV_HEADS * HEAD_DIM, HIDDEN), "attn_qkv"),
            (p + "attn_output.weight", (HIDDEN, HIDDEN), "attn_output"),
            (p + "ffn_norm.weight", (HIDDEN,), "norm"),
            (p + "ffn_up.weight", (2 * FFN, HIDDEN), "ffn_up"),
            (p + "ffn_down.weight", (HIDDEN, FFN), "ffn_down"),
        ]
    plan += [("output_norm.weight", (HIDDEN,), "norm"), ("output.weight", (vocab, HIDDEN), "output")]
    return plan


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output F16 GGUF path")
    ap.add_argument("--vocab", default=os.path.join(root, ".cache/llama.cpp/models/ggml-vocab-phi-3.gguf"))
    args = ap.parse_args()

    src = GGUFReader(args.vocab)
    field = lambda k: src.fields[k].contents()  # noqa: E731
    tokens, scores, token_types = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.scores"), field("tokenizer.ggml.token_type")
    vocab = len(tokens)
    assert vocab == 32064, vocab
    not_normal = np.array([t != 1 for t in token_types])

    def make_tensor(name, shape, kind):
        if kind in ("short", "long"):
            return rope_factors(kind)
        if kind == "norm":
            return np.float32(1.0) + uniform(name, shape, NORM_JITTER / math.sqrt(3.0))
        w = uniform(name, shape, SCALES[kind])
        if kind == "output":
            w[not_normal] = 0.0
        return w.astype(np.float16)

    w = GGUFWriter(args.out, "phi3")
    w.add_name("ember random phi3-shape")
    w.add_description("Random weights at Phi-3-mini-128k's width, for tests only (scripts/make_random_phi3.py)")
    w.add_context_length(CONTEXT)
    w.add_rope_scaling_orig_ctx_len(ORIG_CONTEXT)
    w.add_rope_scaling_attn_factors(ATTN_FACTOR)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(token_types)
    w.add_bos_token_id(field("tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(field("tokenizer.ggml.eos_token_id"))
    w.add_unk_token_id(field("tokenizer.ggml.unknown_token_id"))
    w.add_pad_token_id(field("tokenizer.ggml.padding_token_id"))
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(field("tokenizer.chat_template"))
    write_tensors(w, tensor_plan(vocab), make_tensor, f32_kinds=("norm", "short", "long"))


if __name__ == "__main__":
    main()
