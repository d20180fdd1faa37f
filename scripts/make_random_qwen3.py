#!/usr/bin/env python3
"""Write a deterministic random-weight F16 GGUF with a small Qwen3 shape (architecture "qwen3").

Same reproducibility method as scripts/make_random_model.py (whose `uniform` it uses): every tensor
comes from its own PCG64 stream seeded from the tensor name, through integer-only arithmetic, so the
bytes do not depend on the CPU, the numpy build or the order of generation.
scripts/make_random_shape.sh qwen3 quantizes the result to models/qwen3-shape-q4_k_m.gguf.

Shape: hidden 1024, 8 layers, 16 heads, 8 KV heads, head dim 128 (so the attention width, 2048, is
not the hidden size, as in Qwen3), FFN 3072, vocab 151936, rope theta 1e6 (NeoX rotation, llama.cpp's
default for qwen3), RMS eps 1e-6, context 40960, per-head RMS norms on Q and K (attn_q_norm /
attn_k_norm, length 128), no biases, tied embeddings (no output.weight), as in Qwen3-0.6B.
Tokenizer: the real Qwen2/Qwen3 BPE vocabulary from llama.cpp's ggml-vocab-qwen2.gguf, BOS/padding
151643 (<|endoftext|>), EOS 151645 (<|im_end|>), add_bos false, a plain ChatML chat template.

Scales (uniform weights, standard deviation per tensor kind, see SCALES). With tied embeddings the
logits are token_embd @ norm(h), so token_embd has std LOGIT_STD / sqrt(HIDDEN) and the residual stream
has that RMS. The per-head Q/K norms make the attention scores std ~1 whatever the Q/K projection
scale. Every block but the last FFN adds ~0.1 of the residual RMS (the context matters while rounding
differences inside the blocks stay small next to the embedding), as in make_random_model.py. The last
FFN then writes the output: it adds ~FINAL_FFN_GAIN times the residual RMS, because otherwise the
final state would be mostly the current token's own embedding and its self-logit (|e|^2 / RMS, ~384)
would make the model repeat its input forever; with the gain the self-logit is ~18 (1.5 std). Logits
have std ~LOGIT_STD, so the top-1 token usually wins by more than a nat. Rows of the 293 special and
padding tokens (ids >= 151643) of token_embd are zero, so greedy decoding never emits them (as inputs
they embed to zero).
"""

import argparse
import math
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter, LlamaFileType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_random_model import uniform, write_tensors  # noqa: E402

HIDDEN = 1024
LAYERS = 8
HEADS = 16
KV_HEADS = 8
HEAD_DIM = 128
Q_DIM = HEADS * HEAD_DIM
KV_DIM = KV_HEADS * HEAD_DIM
FFN = 3072
CONTEXT = 40960
ROPE_THETA = 1000000.0
RMS_EPS = 1e-6
N_VOCAB = 151936
BOS_ID = 151643  # <|endoftext|>, also the padding token
EOS_ID = 151645  # <|im_end|>, as in the Qwen3 GGUFs
N_SPECIAL_FROM = 151643
LOGIT_STD = 12.0
EMBD_STD = LOGIT_STD / math.sqrt(HIDDEN)  # tied: also the RMS of the residual stream
FINAL_FFN_GAIN = 21.0

# Standard deviation of the uniform weights of each tensor kind.
SCALES = {
    "token_embd": EMBD_STD,
    "attn_q": 1.0 / math.sqrt(HIDDEN),  # RMS ~1 before the per-head norm (far above eps)
    "attn_k": 1.0 / math.sqrt(HIDDEN),
    "attn_v": 1.0 / math.sqrt(HIDDEN),
    "attn_output": 0.0044 * EMBD_STD,  # attention block adds ~0.1 of the residual RMS
    "ffn_gate": 1.0 / math.sqrt(HIDDEN),
    "ffn_up": 1.0 / math.sqrt(HIDDEN),
    "ffn_down": 0.0029 * EMBD_STD,  # FFN block adds ~0.1 of the residual RMS
    "ffn_down_last": 0.0029 * EMBD_STD * FINAL_FFN_GAIN / 0.1,
}
NORM_JITTER = 0.1  # RMS-norm weights (attn/ffn/output/q/k norms) are uniform in [1 - j, 1 + j]

# ChatML, as Qwen uses (llama.cpp recognises it as "chatml"); no default system message.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tensor_plan(vocab):
    """(name, numpy shape, kind) in file order; kind selects the scale or a special rule."""
    plan = [("token_embd.weight", (vocab, HIDDEN), "token_embd")]
    for i in range(LAYERS):
        p = f"blk.{i}."
        plan += [
            (p + "attn_norm.weight", (HIDDEN,), "norm"),
            (p + "attn_q.weight", (Q_DIM, HIDDEN), "attn_q"),
            (p + "attn_k.weight", (KV_DIM, HIDDEN), "attn_k"),
            (p + "attn_v.weight", (KV_DIM, HIDDEN), "attn_v"),
            (p + "attn_q_norm.weight", (HEAD_DIM,), "norm"),
            (p + "attn_k_norm.weight", (HEAD_DIM,), "norm"),
            (p + "attn_output.weight", (HIDDEN, Q_DIM), "attn_output"),
            (p + "ffn_norm.weight", (HIDDEN,), "norm"),
            (p + "ffn_gate.weight", (FFN, HIDDEN), "ffn_gate"),
            (p + "ffn_up.weight", (FFN, HIDDEN), "ffn_up"),
            (p + "ffn_down.weight", (HIDDEN, FFN), "ffn_down_last" if i == LAYERS - 1 else "ffn_down"),
        ]
    plan += [("output_norm.weight", (HIDDEN,), "norm")]
    return plan


def make_tensor(name, shape, kind):
    if kind == "norm":
        return np.float32(1.0) + uniform(name, shape, NORM_JITTER / math.sqrt(3.0))
    w = uniform(name, shape, SCALES[kind])
    if kind == "token_embd":
        w[N_SPECIAL_FROM:] = 0.0
    return w.astype(np.float16)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output F16 GGUF path")
    ap.add_argument("--vocab", default=os.path.join(root, ".cache/llama.cpp/models/ggml-vocab-qwen2.gguf"))
    args = ap.parse_args()

    src = GGUFReader(args.vocab)
    tokens = src.fields["tokenizer.ggml.tokens"].contents()
    token_types = src.fields["tokenizer.ggml.token_type"].contents()
    merges = src.fields["tokenizer.ggml.merges"].contents()
    vocab = len(tokens)
    assert vocab == N_VOCAB, vocab
    assert tokens[BOS_ID] == "<|endoftext|>" and tokens[EOS_ID] == "<|im_end|>"
    assert all(t == 1 for t in token_types[:N_SPECIAL_FROM]) and all(t != 1 for t in token_types[N_SPECIAL_FROM:])

    w = GGUFWriter(args.out, "qwen3")
    w.add_name("ember random qwen3-shape")
    w.add_description("Random weights in a small Qwen3 shape, for tests only (scripts/make_random_qwen3.py)")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_vocab_size(vocab)
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(merges)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_pad_token_id(BOS_ID)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    write_tensors(w, tensor_plan(vocab), make_tensor, f32_kinds=("norm",))

if __name__ == "__main__":
    main()
