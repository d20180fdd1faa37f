#!/usr/bin/env python3
"""Write a deterministic random-weight F16 GGUF with the shape of Llama-3.2-1B.

The weights are random but the file is byte-for-byte reproducible: every tensor comes from its own
PCG64 stream (seeded from the tensor name) through integer-only arithmetic, so the bytes do not depend
on the CPU, the numpy build or the order of generation. scripts/make_random_model.sh quantizes the
result to models/llama1b-shape-mixed.gguf.

Shape: hidden 2048, 16 layers, 32 heads, 8 KV heads (head dim 64), FFN 8192, vocab 128256,
rope theta 500000 with Llama-3 frequency factors (rope_freqs), RMS eps 1e-5, context 8192,
untied output. Tokenizer: the real Llama 3 BPE vocabulary from llama.cpp's ggml-vocab-llama-bpe.gguf.

Scales (uniform weights, standard deviation per tensor kind, see SCALES) make a confident model:
RMS-normalized block inputs, attention scores with std ~2, each block adding ~0.1 of the residual
RMS (so the context matters, ~25% of the final variance, while rounding differences inside the blocks
stay small next to the embedding), and logits with std ~LOGIT_STD so the top-1 token usually wins
by more than a nat. Output rows of the 256 special tokens are zero, so greedy decoding never emits them.
"""

import argparse
import hashlib
import math
import os

import numpy as np
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType, LlamaFileType

HIDDEN = 2048
LAYERS = 16
HEADS = 32
KV_HEADS = 8
HEAD_DIM = HIDDEN // HEADS
FFN = 8192
CONTEXT = 8192
ROPE_THETA = 500000.0
RMS_EPS = 1e-5
BOS_ID = 128000
EOS_ID = 128009  # <|eot_id|>, as in the Llama 3 instruct models
N_SPECIAL_FROM = 128000
LOGIT_STD = 12.0

# Standard deviation of the uniform weights of each tensor kind.
SCALES = {
    "token_embd": 1.0,
    "attn_q": 0.031,  # q.k/sqrt(64) has std ~2 for RMS-normalized inputs
    "attn_k": 0.031,
    "attn_v": 1.0 / math.sqrt(HIDDEN),
    "attn_output": 0.0044,  # attention block adds ~0.1 RMS to the residual
    "ffn_gate": 1.0 / math.sqrt(HIDDEN),
    "ffn_up": 1.0 / math.sqrt(HIDDEN),
    "ffn_down": 0.0018,  # FFN block adds ~0.1 RMS to the residual
    "output": LOGIT_STD / math.sqrt(HIDDEN),
}
NORM_JITTER = 0.1  # RMS-norm weights are uniform in [1 - j, 1 + j]

# Meta's Llama 3 instruct template (llama.cpp recognises it as "llama3").
CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def uniform(name, shape, std):
    """Uniform(-std*sqrt(3), std*sqrt(3)) float32 values, bit-reproducible on any platform."""
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    n = math.prod(shape)
    raw = np.random.Generator(np.random.PCG64(seed)).bit_generator.random_raw((n + 3) // 4)
    k = raw.view(np.uint16)[:n].astype(np.float32)
    # (k - 32767.5) / 32768 is exact in float32: a uniform grid on (-1, 1).
    u = (k - np.float32(32767.5)) * np.float32(1.0 / 32768.0)
    return (u * np.float32(std * math.sqrt(3.0))).reshape(shape)


def llama3_rope_freqs():
    """Frequency factors of Llama 3.1/3.2 rope scaling (factor 32, low 1, high 4, original 8192)."""
    factor, low, high, old_ctx = 32.0, 1.0, 4.0, 8192.0
    out = []
    for i in range(0, HEAD_DIM, 2):
        freq = 1.0 / (ROPE_THETA ** (i / HEAD_DIM))
        wavelen = 2.0 * math.pi / freq
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1.0 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def tensor_plan(vocab):
    """(name, numpy shape, kind) in file order; kind selects the scale or a special rule."""
    plan = [("rope_freqs.weight", (HEAD_DIM // 2,), "rope_freqs"), ("token_embd.weight", (vocab, HIDDEN), "token_embd")]
    for i in range(LAYERS):
        p = f"blk.{i}."
        plan += [
            (p + "attn_norm.weight", (HIDDEN,), "norm"),
            (p + "attn_q.weight", (HIDDEN, HIDDEN), "attn_q"),
            (p + "attn_k.weight", (KV_HEADS * HEAD_DIM, HIDDEN), "attn_k"),
            (p + "attn_v.weight", (KV_HEADS * HEAD_DIM, HIDDEN), "attn_v"),
            (p + "attn_output.weight", (HIDDEN, HIDDEN), "attn_output"),
            (p + "ffn_norm.weight", (HIDDEN,), "norm"),
            (p + "ffn_gate.weight", (FFN, HIDDEN), "ffn_gate"),
            (p + "ffn_up.weight", (FFN, HIDDEN), "ffn_up"),
            (p + "ffn_down.weight", (HIDDEN, FFN), "ffn_down"),
        ]
    plan += [("output_norm.weight", (HIDDEN,), "norm"), ("output.weight", (vocab, HIDDEN), "output")]
    return plan


def make_tensor(name, shape, kind):
    if kind == "rope_freqs":
        return llama3_rope_freqs()
    if kind == "norm":
        return np.float32(1.0) + uniform(name, shape, NORM_JITTER / math.sqrt(3.0))
    w = uniform(name, shape, SCALES[kind])
    if kind == "output":
        w[N_SPECIAL_FROM:] = 0.0
    return w.astype(np.float16)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output F16 GGUF path")
    ap.add_argument("--vocab", default=os.path.join(root, ".cache/llama.cpp/models/ggml-vocab-llama-bpe.gguf"))
    args = ap.parse_args()

    src = GGUFReader(args.vocab)
    tokens = src.fields["tokenizer.ggml.tokens"].contents()
    token_types = src.fields["tokenizer.ggml.token_type"].contents()
    merges = src.fields["tokenizer.ggml.merges"].contents()
    vocab = len(tokens)
    assert vocab == 128256, vocab

    w = GGUFWriter(args.out, "llama")
    w.add_name("ember random llama1b-shape")
    w.add_description("Random weights in the shape of Llama-3.2-1B, for tests only (scripts/make_random_model.py)")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_vocab_size(vocab)
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(merges)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    write_tensors(w, tensor_plan(vocab), make_tensor, f32_kinds=("rope_freqs", "norm"))


def write_tensors(w, plan, make_tensor, f32_kinds):
    """Write the header, metadata and the tensors of `plan` ((name, shape, kind) in file order),
    one at a time (F32 for `f32_kinds`, F16 otherwise), and close `w`."""
    for name, shape, kind in plan:
        dtype = np.float32 if kind in f32_kinds else np.float16
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        w.add_tensor_info(name, shape, np.dtype(dtype), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, kind in plan:
        w.write_tensor_data(make_tensor(name, shape, kind))
    w.close()


if __name__ == "__main__":
    main()
