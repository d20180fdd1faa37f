#!/usr/bin/env python3
"""Write a deterministic random-weight F16 GGUF with a small mixture-of-experts shape.

    make_random_moe.py {qwen3moe,mixtral} OUT.gguf

Same reproducibility method as scripts/make_random_model.py (whose `uniform` and `write_tensors` it
uses): every tensor comes from its own PCG64 stream seeded from its name. scripts/make_random_shape.sh
quantizes the result (make_random_qwen3moe.py and make_random_mixtral.py call this one).

Both: hidden 1024, 4 layers, every feed-forward a mixture of experts whose weights are stacked as
llama.cpp stores them (`ffn_{gate,up,down}_exps` of ggml shape [cols, rows, n_expert]) with an F32
router `ffn_gate_inp` (llama-quantize keeps routers F32), untied `output`.
- qwen3moe (Qwen3-30B-A3B in small): 16 heads / 4 KV heads of 128, per-head q/k RMS norms, 32 experts
  of width 512, 4 used per token (`expert_feed_forward_length`), rope theta 1e6, RMS eps 1e-6; the real
  Qwen2/Qwen3 BPE vocabulary (151936) and ChatML.
- mixtral (Mixtral-8x7B in small): architecture `llama` with `expert_count` 8, 2 used, experts of width
  `feed_forward_length` 1024, 16 heads / 4 KV heads of 64, rope theta 1e6, RMS eps 1e-5; the Llama SPM
  vocabulary (32000) of llama.cpp's ggml-vocab-llama-spm.gguf and Mistral's [INST] template.

Scales as in make_random_model.py: RMS-normalized block inputs, attention scores with std ~2, each
block adding ~0.1 of the residual RMS, logits with std ~LOGIT_STD; router logits have std ~4, so a
token's experts are usually clear winners (routing near-ties would make two engines pick different
experts). Output rows of every token that is not a normal one are zero.
"""

import math
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter, LlamaFileType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_random_model import uniform, write_tensors  # noqa: E402

HIDDEN = 1024
LAYERS = 4
LOGIT_STD = 12.0
NORM_JITTER = 0.1
ROUTER_STD = 4.0
SHAPES = {
    "qwen3moe": dict(arch="qwen3moe", heads=16, kv_heads=4, head_dim=128, n_expert=32, n_used=4, ff=512,
                     theta=1e6, eps=1e-6, context=40960, vocab="qwen2", qk_norm=True),
    "mixtral": dict(arch="llama", heads=16, kv_heads=4, head_dim=64, n_expert=8, n_used=2, ff=1024,
                    theta=1e6, eps=1e-5, context=32768, vocab="llama-spm", qk_norm=False),
}
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
)


def tensor_plan(s, vocab):
    q_dim, kv_dim, n, ff = s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"], s["n_expert"], s["ff"]
    plan = [("token_embd.weight", (vocab, HIDDEN), "token_embd")]
    for i in range(LAYERS):
        p = f"blk.{i}."
        plan += [
            (p + "attn_norm.weight", (HIDDEN,), "norm"),
            (p + "attn_q.weight", (q_dim, HIDDEN), "attn_q"),
            (p + "attn_k.weight", (kv_dim, HIDDEN), "attn_k"),
            (p + "attn_v.weight", (kv_dim, HIDDEN), "attn_v"),
        ]
        if s["qk_norm"]:
            plan += [(p + "attn_q_norm.weight", (s["head_dim"],), "norm"), (p + "attn_k_norm.weight", (s["head_dim"],), "norm")]
        plan += [
            (p + "attn_output.weight", (HIDDEN, q_dim), "attn_output"),
            (p + "ffn_norm.weight", (HIDDEN,), "norm"),
            (p + "ffn_gate_inp.weight", (n, HIDDEN), "router"),
            # numpy shape (n_expert, rows, cols) = ggml [cols, rows, n_expert]
            (p + "ffn_gate_exps.weight", (n, ff, HIDDEN), "ffn_gate"),
            (p + "ffn_up_exps.weight", (n, ff, HIDDEN), "ffn_up"),
            (p + "ffn_down_exps.weight", (n, HIDDEN, ff), "ffn_down"),
        ]
    plan += [("output_norm.weight", (HIDDEN,), "norm"), ("output.weight", (vocab, HIDDEN), "output")]
    return plan


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        sys.exit(__doc__)
    name, out = sys.argv[1], sys.argv[2]
    s = SHAPES[name]
    src = GGUFReader(os.path.join(root, f".cache/llama.cpp/models/ggml-vocab-{s['vocab']}.gguf"))
    field = lambda k: src.fields[k].contents() if k in src.fields else None  # noqa: E731
    tokens, token_types = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.token_type")
    vocab = len(tokens)
    not_normal = np.array([t != 1 for t in token_types])
    scales = {
        "token_embd": 1.0,
        # With q/k norms the projections' scale is normalized away; without, q.k/sqrt(hd) ~ 2.
        "attn_q": math.sqrt(2.0 / HIDDEN),
        "attn_k": math.sqrt(2.0 / HIDDEN),
        "attn_v": 1.0 / math.sqrt(HIDDEN),
        "attn_output": 0.1 / math.sqrt(s["heads"] * s["head_dim"]) * 2.0,
        "router": ROUTER_STD / math.sqrt(HIDDEN),
        "ffn_gate": 1.0 / math.sqrt(HIDDEN),
        "ffn_up": 1.0 / math.sqrt(HIDDEN),
        "ffn_down": 0.16 / math.sqrt(s["ff"]),
        "output": LOGIT_STD / math.sqrt(HIDDEN),
    }

    def make_tensor(tname, shape, kind):
        if kind == "norm":
            return np.float32(1.0) + uniform(tname, shape, NORM_JITTER / math.sqrt(3.0))
        w = uniform(tname, shape, scales[kind])
        if kind == "router":
            return w  # F32, as llama-quantize leaves it
        if kind == "output":
            w[not_normal] = 0.0
        return w.astype(np.float16)

    w = GGUFWriter(out, s["arch"])
    w.add_name(f"ember random {name}-shape")
    w.add_description(f"Random weights in a small {name} mixture-of-experts shape, for tests only (scripts/make_random_moe.py)")
    w.add_context_length(s["context"])
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_key_length(s["head_dim"])
    w.add_value_length(s["head_dim"])
    w.add_rope_dimension_count(s["head_dim"])
    w.add_rope_freq_base(s["theta"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_expert_count(s["n_expert"])
    w.add_expert_used_count(s["n_used"])
    if s["arch"] == "qwen3moe":
        w.add_expert_feed_forward_length(s["ff"])
        w.add_feed_forward_length(6144)  # Qwen3-30B-A3B's dense width; unused by the MoE layers
    else:
        w.add_feed_forward_length(s["ff"])
    w.add_vocab_size(vocab)
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model(field("tokenizer.ggml.model"))
    w.add_tokenizer_pre(field("tokenizer.ggml.pre"))
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    if field("tokenizer.ggml.scores") is not None:
        w.add_token_scores(field("tokenizer.ggml.scores"))
    if field("tokenizer.ggml.merges") is not None:
        w.add_token_merges(field("tokenizer.ggml.merges"))
    if s["vocab"] == "qwen2":
        w.add_bos_token_id(151643)
        w.add_eos_token_id(151645)  # <|im_end|>
        w.add_pad_token_id(151643)
        w.add_add_bos_token(False)
        w.add_chat_template(CHATML)
    else:
        w.add_bos_token_id(field("tokenizer.ggml.bos_token_id"))
        w.add_eos_token_id(field("tokenizer.ggml.eos_token_id"))
        w.add_unk_token_id(field("tokenizer.ggml.unknown_token_id"))
        w.add_add_bos_token(True)
        w.add_chat_template(MISTRAL)
    w.add_add_eos_token(False)
    write_tensors(w, tensor_plan(s, vocab), make_tensor, f32_kinds=("norm", "router"))


if __name__ == "__main__":
    main()
