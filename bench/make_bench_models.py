#!/usr/bin/env python3
"""Random-weight F16 GGUFs for the speed benchmark (bench/run.sh quantizes them with llama-quantize).

  --shape llama1b : Llama-3.2-1B shape, exactly scripts/make_random_model.py (Llama 3 BPE vocab).
  --shape llama7b : Llama-2-7B shape (hidden 4096, 32 layers, 32 heads = 32 KV heads, FFN 11008,
                    context 4096, rope theta 10000) with the real Llama 2 SentencePiece vocabulary
                    from llama.cpp's ggml-vocab-llama-spm.gguf (32000 tokens).

Weights come from scripts/make_random_model.py's bit-reproducible generator (same seeds by tensor
name), so the files are deterministic. Speed does not depend on the weight values.
"""

import argparse
import math
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import make_random_model as rm  # noqa: E402
from gguf import GGUFReader, GGUFWriter, LlamaFileType  # noqa: E402


def write_llama7b(out):
    hidden, layers, heads, ffn, ctx = 4096, 32, 32, 11008, 4096
    src = GGUFReader(os.path.join(ROOT, ".cache/llama.cpp/models/ggml-vocab-llama-spm.gguf"))
    tokens = src.fields["tokenizer.ggml.tokens"].contents()
    scores = src.fields["tokenizer.ggml.scores"].contents()
    token_types = src.fields["tokenizer.ggml.token_type"].contents()
    vocab = len(tokens)
    scales = {
        "token_embd": 1.0,
        "attn_q": 0.5 / math.sqrt(hidden),
        "attn_k": 0.5 / math.sqrt(hidden),
        "attn_v": 1.0 / math.sqrt(hidden),
        "attn_output": 0.25 / math.sqrt(hidden),
        "ffn_gate": 1.0 / math.sqrt(hidden),
        "ffn_up": 1.0 / math.sqrt(hidden),
        "ffn_down": 0.25 / math.sqrt(ffn),
        "output": 12.0 / math.sqrt(hidden),
    }
    w = GGUFWriter(out, "llama")
    w.add_name("ember random llama7b-shape")
    w.add_description("Random weights in the shape of Llama-2-7B, for benchmarks only (bench/make_bench_models.py)")
    w.add_context_length(ctx)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hidden // heads)
    w.add_vocab_size(vocab)
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(token_types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    plan = [("token_embd.weight", (vocab, hidden), "token_embd")]
    for i in range(layers):
        p = f"blk.{i}."
        plan += [
            (p + "attn_norm.weight", (hidden,), "norm"),
            (p + "attn_q.weight", (hidden, hidden), "attn_q"),
            (p + "attn_k.weight", (hidden, hidden), "attn_k"),
            (p + "attn_v.weight", (hidden, hidden), "attn_v"),
            (p + "attn_output.weight", (hidden, hidden), "attn_output"),
            (p + "ffn_norm.weight", (hidden,), "norm"),
            (p + "ffn_gate.weight", (ffn, hidden), "ffn_gate"),
            (p + "ffn_up.weight", (ffn, hidden), "ffn_up"),
            (p + "ffn_down.weight", (hidden, ffn), "ffn_down"),
        ]
    plan += [("output_norm.weight", (hidden,), "norm"), ("output.weight", (vocab, hidden), "output")]

    def make(name, shape, kind):
        if kind == "norm":
            return np.float32(1.0) + rm.uniform(name, shape, rm.NORM_JITTER / math.sqrt(3.0))
        return rm.uniform(name, shape, scales[kind]).astype(np.float16)

    for name, shape, kind in plan:
        dtype = np.float32 if kind == "norm" else np.float16
        w.add_tensor_info(name, shape, np.dtype(dtype), math.prod(shape) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, kind in plan:
        w.write_tensor_data(make(name, shape, kind))
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=["llama1b", "llama7b"], required=True)
    ap.add_argument("out", help="output F16 GGUF path")
    args = ap.parse_args()
    if args.shape == "llama1b":
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/make_random_model.py"), args.out], check=True)
    else:
        write_llama7b(args.out)


if __name__ == "__main__":
    main()
