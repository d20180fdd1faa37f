#!/usr/bin/env python3
"""Build the Hugging Face checkpoint fixture for issue #6 and record llama.cpp's goldens on it.

From models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch_models.sh):

1. models/hf/smollm2-135m-f16/: an HF checkpoint as transformers would store it: every tensor
   dequantized (gguf-py) and rounded to f16, q/k rows UN-permuted back to HF order (the inverse of
   convert_hf_to_gguf.py's `LlamaModel.permute`), HF tensor names, two shards plus
   model.safetensors.index.json, config.json, tokenizer.json (vocabulary, merges, added tokens and
   the SmolLM2 pre-tokenizer, built from the GGUF's tokenizer.ggml.*) and tokenizer_config.json
   (special tokens, chat template).
2. models/hf/smollm2-135m-f16.gguf: the same f16 weights as an F16 GGUF. The issue asks for
   llama.cpp's convert_hf_to_gguf.py here, but it imports torch (and transformers for the
   tokenizer), a multi-GB install CI cannot afford, so the GGUF is written with gguf-py instead:
   the original GGUF's metadata, the f16 weights in GGUF (permuted) row order and the norms as F32
   holding the same f16-rounded values. That is what convert_hf_to_gguf.py writes for this
   checkpoint (it permutes q/k, keeps 1-D tensors in F32 and copies the tokenizer).
3. models/hf/smollm2-135m-q8_0.gguf: llama-quantize F16 -> Q8_0 (.cache/llama.cpp-build).
4. tests/hf/golden.json: llama.cpp's prompt ids, greedy continuation and top-10 log-probs on
   both GGUFs (tests/golden/llama_golden.cpp driver), plus the fixture files' sha256.

Needs: python3 with numpy and gguf (pip install numpy gguf); for the goldens (and the Q8_0 GGUF)
also scripts/build_llama_cpp.sh. The tests (tests/hf_checkpoint.rs) need only the fixture files:
    python3 tests/hf/make_hf_fixture.py --no-golden      # ~20 s; what CI runs
    python3 tests/hf/make_hf_fixture.py                  # + re-record tests/hf/golden.json
"""

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType, GGUFValueType
from gguf.constants import Keys
from gguf.quants import dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(ROOT, "models", "hf")
HF_DIR = os.path.join(OUT, "smollm2-135m-f16")
F16_GGUF = os.path.join(OUT, "smollm2-135m-f16.gguf")
Q8_GGUF = os.path.join(OUT, "smollm2-135m-q8_0.gguf")
BIN = os.path.join(ROOT, ".cache", "llama.cpp-build", "bin")
GOLDEN = os.path.join(ROOT, "tests", "hf", "golden.json")

N_PREDICT = 40
N_PROBS = 10
N_CTX = 512
N_THREADS = 2

CHATML = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
PROMPTS = [
    ("short", False, "The capital of France is"),
    ("chat", False, CHATML.format("Write a haiku about the sea.")),
    ("code", False, "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("digits_unicode", False, "In 1969, 3 astronauts flew 384400 km — naïve café résumé: 東京 ¿qué?"),
]

HF_LAYER = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def hf_name(name):
    glob = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
            "output.weight": "lm_head.weight"}
    if name in glob:
        return glob[name]
    _, layer, kind, suffix = name.split(".")
    return f"model.layers.{layer}.{HF_LAYER[kind]}.{suffix}"


def unpermute(w, n_head):
    """Inverse of convert_hf_to_gguf.py's permute(): GGUF rows (adjacent RoPE pairs) to HF rows."""
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer: JSON header padded to 8 bytes, data back to back."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors:
        dtype = {np.float16: "F16", np.float32: "F32"}[arr.dtype.type]
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, arr in tensors:
            f.write(np.ascontiguousarray(arr).tobytes())
    return offset


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_checkpoint(r):
    n_head = field(r, "llama.attention.head_count")
    n_head_kv = field(r, "llama.attention.head_count_kv")
    n_layer = field(r, "llama.block_count")
    gguf_f16 = []  # (gguf name, array in GGUF order) for the F16 GGUF
    hf = {}
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        w16 = w.astype(np.float16)
        gguf_f16.append((t.name, w16))
        h = w16
        if t.name.endswith("attn_q.weight"):
            h = unpermute(w16, n_head)
        elif t.name.endswith("attn_k.weight"):
            h = unpermute(w16, n_head_kv)
        hf[hf_name(t.name)] = np.ascontiguousarray(h)

    os.makedirs(HF_DIR, exist_ok=True)
    # Two shards (embeddings + first half of the layers; the rest), to exercise the index.
    half = n_layer // 2
    def shard_of(name):
        if name.startswith("model.layers."):
            return 1 if int(name.split(".")[2]) < half else 2
        return 1 if name == "model.embed_tokens.weight" else 2
    weight_map, total = {}, 0
    for k in (1, 2):
        fname = f"model-0000{k}-of-00002.safetensors"
        names = sorted(n for n in hf if shard_of(n) == k)
        total += write_safetensors(os.path.join(HF_DIR, fname), [(n, hf[n]) for n in names], {"format": "pt"})
        weight_map.update({n: fname for n in names})
    with open(os.path.join(HF_DIR, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": len(field(r, "tokenizer.ggml.tokens")),
        "hidden_size": field(r, "llama.embedding_length"),
        "intermediate_size": field(r, "llama.feed_forward_length"),
        "num_hidden_layers": n_layer,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_head_kv,
        "max_position_embeddings": field(r, "llama.context_length"),
        "rms_norm_eps": 1e-05,
        "rope_theta": float(field(r, "llama.rope.freq_base")),
        "rope_scaling": None,
        "tie_word_embeddings": "output.weight" not in [t.name for t in r.tensors],
        "hidden_act": "silu",
        "torch_dtype": "float16",
        "bos_token_id": field(r, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": field(r, "tokenizer.ggml.eos_token_id"),
    }
    with open(os.path.join(HF_DIR, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    merges = field(r, "tokenizer.ggml.merges")
    assert field(r, "tokenizer.ggml.model") == "gpt2" and field(r, "tokenizer.ggml.pre") == "smollm"
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, (t, ty) in enumerate(zip(tokens, types)) if ty == 3]
    assert all(ty in (1, 3) for ty in types)
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": byte_level, "decoder": {"type": "ByteLevel", "add_prefix_space": True,
                                                  "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": [m.split(" ", 1) for m in merges]},
    }
    with open(os.path.join(HF_DIR, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    tid = lambda key: tokens[field(r, key)]
    tok_config = {
        "add_bos_token": bool(field(r, "tokenizer.ggml.add_bos_token")),
        "bos_token": tid("tokenizer.ggml.bos_token_id"),
        "eos_token": tid("tokenizer.ggml.eos_token_id"),
        "unk_token": tid("tokenizer.ggml.unknown_token_id"),
        "pad_token": tid("tokenizer.ggml.padding_token_id"),
        "model_max_length": config["max_position_embeddings"],
        "tokenizer_class": "GPT2Tokenizer",
        "chat_template": field(r, "tokenizer.chat_template"),
    }
    with open(os.path.join(HF_DIR, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tok_config, f, ensure_ascii=False, indent=2)
    return gguf_f16


def write_f16_gguf(r, gguf_f16):
    w = GGUFWriter(F16_GGUF, arch="llama")
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == Keys.General.ARCHITECTURE:
            continue
        if key == Keys.General.FILE_TYPE:
            w.add_uint32(key, 1)  # LLAMA_FTYPE_MOSTLY_F16
            continue
        if key == Keys.General.QUANTIZATION_VERSION:
            continue
        vtype = f.types[0]
        if vtype == GGUFValueType.ARRAY:
            w.add_key_value(key, f.contents(), vtype, sub_type=f.types[-1])
        else:
            w.add_key_value(key, f.contents(), vtype)
    for name, arr in gguf_f16:
        # 1-D tensors (norms) stay F32, as convert_hf_to_gguf.py writes them.
        w.add_tensor(name, arr.astype(np.float32) if arr.ndim == 1 else arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


class Driver:
    """tests/golden/llama_golden.cpp over a pipe (protocol in that file)."""

    def __init__(self, model):
        exe = os.path.join(BIN, "llama-golden")
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe} missing: run scripts/build_llama_cpp.sh")
        self.proc = subprocess.Popen([exe, model, str(N_CTX), str(N_THREADS), str(N_PREDICT), str(N_PROBS)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="ascii")
        self.info = {}
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line == "READY":
                break
            _, key, value = line.split(" ", 2)
            self.info[key] = value
        else:
            raise RuntimeError("llama-golden exited before READY")

    def run(self, text, add_bos):
        self.proc.stdin.write(f"{int(add_bos)} {text.encode('utf-8').hex()}\n")
        self.proc.stdin.flush()
        head = self.proc.stdout.readline().split()
        assert head[0] == "PROMPT", head
        prompt = [int(t) for t in head[2:]]
        gen, top = [], []
        for _ in range(N_PREDICT):
            f = self.proc.stdout.readline().split()
            assert f[0] == "STEP", f
            gen.append(int(f[1]))
            top.append([[int(f[i]), float(f[i + 1])] for i in range(2, len(f), 2)])
        assert self.proc.stdout.readline().strip() == "END"
        return prompt, gen, top

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def record(model):
    d = Driver(model)
    cases = []
    for name, add_bos, text in PROMPTS:
        prompt, gen, top = d.run(text, add_bos)
        cases.append({"name": name, "prompt": text, "add_bos": add_bos, "prompt_tokens": prompt,
                      "generated_tokens": gen, "top_logprobs": top})
    eog = [int(t) for t in d.info.get("eog", "").split()]
    d.close()
    return {"path": os.path.relpath(model, ROOT), "sha256": sha256(model), "eog_token_ids": eog, "cases": cases}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-golden", action="store_true", help="only (re)build the fixture files")
    args = ap.parse_args()
    r = GGUFReader(SRC)
    gguf_f16 = build_checkpoint(r)
    write_f16_gguf(r, gguf_f16)
    quantize = os.path.join(BIN, "llama-quantize")
    if os.access(quantize, os.X_OK):
        subprocess.run([quantize, F16_GGUF, Q8_GGUF, "Q8_0"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    elif not args.no_golden:
        sys.exit(f"{quantize} missing: run scripts/build_llama_cpp.sh")
    shards = sorted(f for f in os.listdir(HF_DIR) if f.endswith(".safetensors"))
    print(f"wrote {HF_DIR} ({', '.join(shards)}), {F16_GGUF}, {Q8_GGUF}")
    if args.no_golden:
        return
    golden = {
        "source": "tests/hf/make_hf_fixture.py (llama.cpp from the llama-cpp-python 0.3.36 sdist)",
        "settings": {"n_ctx": N_CTX, "n_predict": N_PREDICT, "n_probs": N_PROBS, "n_threads": N_THREADS},
        "hf_dir": {"path": os.path.relpath(HF_DIR, ROOT),
                   "sha256": {s: sha256(os.path.join(HF_DIR, s)) for s in shards}},
        "f16": record(F16_GGUF),
        "q8_0": record(Q8_GGUF),
    }
    with open(GOLDEN, "w") as f:
        json.dump(golden, f, indent=1)
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
