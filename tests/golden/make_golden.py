#!/usr/bin/env python3
"""Record llama.cpp reference outputs ("goldens") for ember's end-to-end tests.

The reference is llama.cpp from the llama-cpp-python 0.3.36 sdist (.cache/llama.cpp), driven by
tests/golden/llama_golden.cpp (built by scripts/build_llama_cpp.sh as .cache/llama.cpp-build/bin/
llama-golden). For every prompt it records llama.cpp's tokenization, the greedy 64-token continuation
and, at every step, the top-10 log-probabilities of the raw logits (log-softmax over the full
vocabulary, before any sampler). Chat prompts are rendered with the model's own Jinja chat template by
llama.cpp's template engine as shipped in the `xllamacpp` wheel (POST /apply-template), which also
serves as an independent cross-check of the continuations (a second llama.cpp build).
See tests/golden/README.md for the schema.

Usage (from the repository root):
    scripts/build_llama_cpp.sh && scripts/make_random_model.sh
    python3 tests/golden/make_golden.py                 # every model in MODELS whose file exists
    python3 tests/golden/make_golden.py smollm2-135m-q4_1
"""

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import urllib.request

import xllamacpp
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODELS = {
    "smollm2-135m-q4_1": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "llama1b-shape-mixed": "models/llama1b-shape-mixed.gguf",
    "gemma3-270m-q4_k_m": "models/gemma-3-270m-q4_k_m.gguf",
    "qwen2.5-coder-0.5b": "models/qwen2.5-coder-0.5b-instruct.gguf",
    "qwen3-shape-q4_k_m": "models/qwen3-shape-q4_k_m.gguf",
    "phi3-shape-q4_k_m": "models/phi3-shape-q4_k_m.gguf",
    "qwen3moe-shape-q4_k_m": "models/qwen3moe-shape-q4_k_m.gguf",
    "mixtral-shape-q4_k_m": "models/mixtral-shape-q4_k_m.gguf",
}

N_PREDICT = 64
N_PROBS = 10
N_CTX = 2048
N_THREADS = 1

LONG_PROSE = (
    "The lighthouse keeper had kept the same routine for thirty-one years. Every evening, a little "
    "before sunset, he climbed the one hundred and twelve steps of the spiral staircase, wiped the salt "
    "from the great lens with a soft cloth, trimmed the wick, and wrote the state of the weather in a "
    "thick ledger whose pages had gone yellow at the edges. He did not think of himself as lonely. The "
    "sea was always talking, the gulls argued on the rocks below, and twice a month a supply boat came "
    "from the mainland with flour, lamp oil, newspapers that were already a week old, and letters from "
    "his sister, who lived in a town with a railway station and a bakery that sold almond cakes. In "
    "winter the storms came in from the north-west and shook the tower until the windows rattled in "
    "their frames, and on those nights he stayed awake until dawn, watching the beam sweep across the "
    "black water and counting the seconds between each flash, as if the light might forget its rhythm "
    "if nobody were listening. In summer the evenings were long and gentle, and he sometimes sat on "
    "the gallery with a mug of tea, reading old novels about explorers and sailors who had never come "
    "home. When the engineers from the harbour authority finally arrived to tell him that the light "
    "would be automated, that a machine with a small battery and a photoelectric cell would do his work "
    "from now on, he listened politely, offered them biscuits, and asked only one question: who would "
    "write down the weather? The younger of the two engineers laughed, but the older one looked at the "
    "ledger for a long time and then said"
)

CODE_PREFIX = (
    "def merge_sorted(left: list[int], right: list[int]) -> list[int]:\n"
    '    """Merge two sorted lists into one sorted list."""\n'
    "    result = []\n"
    "    i = j = 0\n"
    "    while i < len(left) and j < len(right):\n"
)

# (name, kind, text or chat messages). Chat prompts are rendered with the model's own template.
PROMPTS = [
    ("short", "text", "The capital of France is"),
    ("long_prose", "text", LONG_PROSE),
    ("french", "text", "Il était une fois, dans un petit village au bord de la mer, une jeune fille qui"),
    ("chinese", "text", "从前有一座山，山里有一座庙，庙里有一个老和尚，他每天都"),
    ("russian", "text", "Москва — столица России. Это один из крупнейших городов мира, и"),
    ("code_python", "text", CODE_PREFIX),
    ("emoji", "text", "My favourite emojis are 😀🎉🚀 and 🐍, and the flag 🇫🇷 means"),
    ("numbers_whitespace", "text", "Order #12345:\t3 × 19.99 = 59.97\n\n    Total:   1,234,567.89 EUR\n  2024-01-31  "),
    ("chat", "chat", [{"role": "user", "content": "Write a short poem about the ocean."}]),
]

DRIVER = os.path.join(ROOT, ".cache", "llama.cpp-build", "bin", "llama-golden")
SDIST = os.path.join(ROOT, ".cache", "dl", "llama_cpp_python-0.3.36.tar.gz")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def vocab_info(path):
    r = GGUFReader(path)

    def get(key):
        field = r.fields.get(key)
        return None if field is None else field.contents()

    tokens = get("tokenizer.ggml.tokens")
    bos = get("tokenizer.ggml.bos_token_id")
    return {
        "n_vocab": len(tokens),
        "tokenizer_model": get("tokenizer.ggml.model"),
        "tokenizer_pre": get("tokenizer.ggml.pre"),
        "bos_token_id": bos,
        "eos_token_id": get("tokenizer.ggml.eos_token_id"),
        "add_bos_token": get("tokenizer.ggml.add_bos_token"),
        "chat_template": get("tokenizer.chat_template"),
        "bos_text": tokens[bos] if bos is not None else None,
    }


@contextlib.contextmanager
def quiet_stderr():
    """llama.cpp (xllamacpp) logs to fd 2; keep the console readable."""
    saved = os.dup(2)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Driver:
    """tests/golden/llama_golden.cpp over a pipe: one model, one context, one request at a time."""

    def __init__(self, model_path, n_predict=N_PREDICT, token_by_token=False):
        if not os.access(DRIVER, os.X_OK):
            sys.exit(f"{DRIVER} missing: run scripts/build_llama_cpp.sh")
        env = dict(os.environ)
        if token_by_token:  # n_ubatch = 1: the prompt goes through the single-token kernels
            env["LLAMA_GOLDEN_UBATCH"] = "1"
        self.n_predict = n_predict
        self.proc = subprocess.Popen(
            [DRIVER, model_path, str(N_CTX), str(N_THREADS), str(n_predict), str(N_PROBS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="ascii", env=env,
        )
        self.info = {}
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line == "READY":
                break
            _, key, value = line.split(" ", 2)
            self.info[key] = value
        else:
            raise RuntimeError("llama-golden exited before READY")
        self.eog = [int(t) for t in self.info["eog"].split()]

    def run(self, text, add_bos):
        self.proc.stdin.write(f"{int(add_bos)} {text.encode('utf-8').hex()}\n")
        self.proc.stdin.flush()
        head = self.proc.stdout.readline().split()
        assert head[0] == "PROMPT", head
        prompt_ids = [int(t) for t in head[2:]]
        assert len(prompt_ids) == int(head[1])
        generated, top = [], []
        for _ in range(self.n_predict):
            f = self.proc.stdout.readline().split()
            assert f[0] == "STEP", f
            generated.append(int(f[1]))
            top.append([[int(f[i]), float(f[i + 1])] for i in range(2, len(f), 2)])
        assert self.proc.stdout.readline().strip() == "END"
        return prompt_ids, generated, top

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


class XServer:
    """llama.cpp's server from the xllamacpp wheel: chat rendering and the cross-check."""

    def __init__(self, model_path):
        p = xllamacpp.CommonParams()
        p.model.path = model_path
        p.n_ctx = N_CTX
        p.n_parallel = 1
        p.cpuparams.n_threads = N_THREADS
        p.cpuparams_batch.n_threads = N_THREADS
        p.flash_attn_type = xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED
        p.cache_type_k = xllamacpp.ggml_type.GGML_TYPE_F16
        p.cache_type_v = xllamacpp.ggml_type.GGML_TYPE_F16
        p.fit_params = False
        p.cache_prompt = False
        with quiet_stderr():
            self.server = xllamacpp.Server(p)

    def _post(self, path, body):
        req = urllib.request.Request(
            self.server.listening_address + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())

    def render_chat(self, messages):
        return self._post("/apply-template", {"messages": messages})["prompt"]

    def detokenize(self, ids):
        return self._post("/detokenize", {"tokens": ids})["content"]

    def complete(self, prompt_ids):
        """Greedy continuation; returns (text, {step: generated-token logprob}) for steps it reports.

        The server folds tokens that end inside a UTF-8 character into the next entry, so only
        steps whose entry count lines up are comparable; the text always is.
        """
        with quiet_stderr():
            out = self.server.handle_completions({
                "prompt": prompt_ids, "n_predict": N_PREDICT, "n_probs": 1, "temperature": 0.0,
                "ignore_eos": True, "cache_prompt": False, "samplers": ["temperature"],
            })
        if "error" in out:
            raise RuntimeError(out["error"])
        choice = out["choices"][0]
        return choice["text"], choice["logprobs"]["content"]


def float64_first_step(path, prompts):
    """Log-softmax after each prompt from a plain float64 Llama forward pass over the weights as
    dequantized by the gguf package (no activation quantization, no f16 KV cache): an independent
    bound on how far the llama.cpp numbers are from exact arithmetic on the same weights.
    Also covers Qwen3 (per-head RMS norms on Q and K, NeoX rope, head dim from key_length) and
    Phi-3 (fused attn_qkv and gate/up ffn_up, NeoX rope, LongRoPE short factors and attn_factor,
    which multiplies the rotated q and k) and mixture-of-experts feed-forwards (Mixtral, Qwen3-MoE:
    softmax router, top `expert_used_count`, weights renormalized)."""
    r = GGUFReader(path)
    kv = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
    arch = kv["general.architecture"]
    hidden, n_layer = kv[f"{arch}.embedding_length"], kv[f"{arch}.block_count"]
    n_head, n_head_kv = kv[f"{arch}.attention.head_count"], kv[f"{arch}.attention.head_count_kv"]
    eps, theta = kv[f"{arch}.attention.layer_norm_rms_epsilon"], kv.get(f"{arch}.rope.freq_base", 10000.0)
    hd = kv.get(f"{arch}.attention.key_length", hidden // n_head)
    neox = arch in ("qwen3", "phi3", "qwen3moe")  # llama.cpp's LLAMA_ROPE_TYPE_NEOX: rotate the two halves of each head
    attn_factor = kv.get(f"{arch}.rope.scaling.attn_factor", 1.0)
    n_ff = kv[f"{arch}.feed_forward_length"]
    tensors = {t.name: t for t in r.tensors}

    def weight(name):
        t = tensors[name]
        return dequantize(t.data, t.tensor_type).reshape(-1, int(t.shape[0])).astype(np.float64)

    def rms_norm(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w.reshape(-1)

    inv_freq = theta ** (-np.arange(0, hd, 2) / hd)
    for factors in ("rope_freqs.weight", "rope_factors_short.weight"):  # short: N_CTX <= original context
        if factors in tensors:
            inv_freq = inv_freq / weight(factors).reshape(-1)

    def rope(q):  # llama.cpp "normal" rope: rotate adjacent pairs
        ang = np.arange(q.shape[0])[:, None, None] * inv_freq[None, None, :]
        cos, sin = np.cos(ang) * attn_factor, np.sin(ang) * attn_factor
        if neox:
            a, b = q[..., : hd // 2], q[..., hd // 2 :]
            return np.concatenate([a * cos - b * sin, a * sin + b * cos], -1)
        a, b = q[..., 0::2], q[..., 1::2]
        out = np.empty_like(q)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out

    def moe_ffn(h, w):
        n_expert, n_used = kv[f"{arch}.expert_count"], kv[f"{arch}.expert_used_count"]
        logits = h @ w["ffn_gate_inp"].T
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        split = lambda t: t.reshape(n_expert, -1, t.shape[-1])  # noqa: E731
        gate, up, down = split(w["ffn_gate_exps"]), split(w["ffn_up_exps"]), split(w["ffn_down_exps"])
        out = np.zeros_like(h)
        for t in range(h.shape[0]):
            top = np.argsort(-probs[t], kind="stable")[:n_used]
            for e, p in zip(top, probs[t][top] / probs[t][top].sum()):
                g, u = gate[e] @ h[t], up[e] @ h[t]
                out[t] += p * (down[e] @ (g / (1.0 + np.exp(-g)) * u))
        return out

    emb = weight("token_embd.weight")
    xs = [emb[ids] for ids in prompts]
    del emb
    for layer in range(n_layer):
        fused = f"blk.{layer}.attn_qkv.weight" in tensors
        moe = f"blk.{layer}.ffn_gate_inp.weight" in tensors
        names = ["attn_norm", "attn_output", "ffn_norm"]
        names += ["attn_qkv"] if fused else ["attn_q", "attn_k", "attn_v"]
        if moe:  # experts stacked: weight() gives [n_expert * rows, cols]
            names += ["ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"]
        else:
            names += ["ffn_up", "ffn_down"] + ([] if fused else ["ffn_gate"])
        w = {k: weight(f"blk.{layer}.{k}.weight") for k in names}
        if fused:  # Phi-3: Q, K, V rows in one tensor; gate rows, then up rows in ffn_up
            qkv = w.pop("attn_qkv")
            w["attn_q"], w["attn_k"], w["attn_v"] = np.split(qkv, [n_head * hd, (n_head + n_head_kv) * hd])
            w["ffn_gate"], w["ffn_up"] = w["ffn_up"][:n_ff], w["ffn_up"][n_ff:]
        qk_norm = f"blk.{layer}.attn_q_norm.weight" in tensors
        if qk_norm:
            w["attn_q_norm"], w["attn_k_norm"] = weight(f"blk.{layer}.attn_q_norm.weight"), weight(f"blk.{layer}.attn_k_norm.weight")
        for c, x in enumerate(xs):
            n = x.shape[0]
            h = rms_norm(x, w["attn_norm"])
            q = (h @ w["attn_q"].T).reshape(n, n_head, hd)
            k = (h @ w["attn_k"].T).reshape(n, n_head_kv, hd)
            if qk_norm:
                q, k = rms_norm(q, w["attn_q_norm"]), rms_norm(k, w["attn_k_norm"])
            q, k = rope(q), rope(k)
            v = (h @ w["attn_v"].T).reshape(n, n_head_kv, hd)
            k = np.repeat(k, n_head // n_head_kv, axis=1)
            v = np.repeat(v, n_head // n_head_kv, axis=1)
            scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + np.triu(np.full((n, n), -np.inf), 1)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            x = x + np.einsum("hqk,khd->qhd", scores, v).reshape(n, n_head * hd) @ w["attn_output"].T
            h = rms_norm(x, w["ffn_norm"])
            if moe:
                xs[c] = x + moe_ffn(h, w)
                continue
            gate, up = h @ w["ffn_gate"].T, h @ w["ffn_up"].T
            xs[c] = x + (gate / (1.0 + np.exp(-gate)) * up) @ w["ffn_down"].T
    out = weight("output.weight" if "output.weight" in tensors else "token_embd.weight")
    norm = weight("output_norm.weight")
    result = []
    for x in xs:
        logits = out @ rms_norm(x[-1], norm)
        logits -= logits.max()
        result.append(logits - np.log(np.exp(logits).sum()))
    return result


def record(name, rel_path, cross_check):
    path = os.path.join(ROOT, rel_path)
    vocab = vocab_info(path)
    driver = Driver(path)
    xs = XServer(path)
    eog = set(driver.eog)
    cases, gaps, xdiffs = [], [], []
    for case_name, kind, prompt in PROMPTS:
        if kind == "chat" and not vocab["chat_template"]:
            continue  # no template in the file (Gemma 3 270M): llama.cpp would guess one
        if kind == "chat":
            text = xs.render_chat(prompt)
            # The template may already emit the BOS text; llama.cpp would not add a second one.
            add_bos = bool(vocab["add_bos_token"]) and not (vocab["bos_text"] and text.startswith(vocab["bos_text"]))
        else:
            text = prompt
            add_bos = bool(vocab["add_bos_token"])
        ids, generated, top = driver.run(text, add_bos)
        first_eog = None
        for step, (gen, cands) in enumerate(zip(generated, top)):
            # Self-consistency: the greedy pick is the most probable token that is not EOG (banned).
            allowed = [tid for tid, _ in cands if tid not in eog]
            if len(cands) != N_PROBS or not allowed or allowed[0] != gen:
                raise RuntimeError(f"{name}/{case_name} step {step}: generated {gen} but top-{N_PROBS} is {cands}")
            if cands[0][0] in eog and first_eog is None:
                first_eog = step
            gaps.append(cands[0][1] - cands[1][1])
        gen_text = xs.detokenize(generated)
        case = {
            "name": case_name,
            "kind": kind,
            "messages": prompt if kind == "chat" else None,
            "prompt": text,
            "add_bos": add_bos,
            "parse_special": True,
            "prompt_tokens": ids,
            "generated_tokens": generated,
            "generated_text": gen_text,
            "first_eog_step": first_eog,
            "top_logprobs": top,
        }
        if cross_check:
            x_text, x_steps = xs.complete(ids)
            same = x_text == gen_text
            if same and len(x_steps) == N_PREDICT:
                xdiffs += [abs(s["logprob"] - t[0][1]) for s, t in zip(x_steps, top) if s["id"] == t[0][0]]
            case["xllamacpp_same_text"] = same
        cases.append(case)
        print(f"{name}/{case_name}: {len(ids)} prompt tokens -> {gen_text[:50]!r}"
              + (f" (xllamacpp agrees: {case['xllamacpp_same_text']})" if cross_check else ""), file=sys.stderr)
    driver.close()
    # The same llama.cpp build with the prompt fed one token at a time (n_ubatch = 1): llama.cpp's
    # batched and single-token kernels differ, and this shows by how much.
    single = Driver(path, n_predict=1, token_by_token=True)
    single_diffs = []
    for case in cases:
        _, _, top1 = single.run(case["prompt"], case["add_bos"])
        lp = dict((t, l) for t, l in top1[0])
        d = max(abs(l - lp[t]) for t, l in case["top_logprobs"][0] if t in lp)
        case["ubatch1_step0_max_abs_diff"] = d
        single_diffs.append(d)
    single.close()
    # The float64 check below is a plain Llama (or Qwen3, Phi-3) forward pass: only for those architectures.
    llama = GGUFReader(path).fields["general.architecture"].contents() in ("llama", "qwen3", "phi3", "qwen3moe")
    exact = float64_first_step(path, [c["prompt_tokens"] for c in cases]) if llama else []
    exact_diffs = []
    for case, lp in zip(cases, exact):
        d = max(abs(l - lp[t]) for t, l in case["top_logprobs"][0])
        case["float64_step0_max_abs_diff"] = d
        case["float64_step0_same_top1"] = int(np.argmax(lp)) == case["top_logprobs"][0][0][0]
        exact_diffs.append(d)
    gaps.sort()
    xinfo = xllamacpp._version.get_versions()
    golden = {
        "schema_version": 1,
        "generator": "tests/golden/make_golden.py",
        "reference": {
            "implementation": "llama.cpp vendored in the llama-cpp-python 0.3.36 sdist, via tests/golden/llama_golden.cpp",
            "source": "https://pypi.org/project/llama-cpp-python/0.3.36/ (vendor/llama.cpp)",
            "source_sha256": sha256_of(SDIST) if os.path.exists(SDIST) else None,
            "build": "scripts/build_llama_cpp.sh (Release, CPU, GGML_NATIVE, no AMX, static)",
            "cpu_features": driver.info.get("system", "").strip(),
            "chat_renderer": f"xllamacpp {xinfo['version']} ({xinfo['full-revisionid']}) POST /apply-template",
        },
        "model": {
            "name": name,
            "path": rel_path,
            "sha256": sha256_of(path),
            "size_bytes": os.path.getsize(path),
            "eog_token_ids": driver.eog,
            **{k: v for k, v in vocab.items() if k != "bos_text"},
        },
        "settings": {
            "n_ctx": N_CTX,
            "n_threads": N_THREADS,
            "n_batch": N_CTX,
            "n_ubatch": int(driver.info["n_batch"].split()[2]),
            "flash_attn": False,
            "cache_type_k": "f16",
            "cache_type_v": "f16",
            "extra_buffer_types": "default (CPU weight repacking on)",
            "sampling": "greedy: argmax of the raw logits over the tokens that are not EOG (llama.cpp ignore_eos)",
            "n_predict": N_PREDICT,
            "n_probs": N_PROBS,
            "logprobs": "log-softmax of the raw logits over the full vocabulary (computed in double), before any sampler; ties ordered by id",
            "prompt_processing": "each case starts from an empty KV cache; the whole prompt is one llama_decode batch, then one token per step",
        },
        "stats": {
            "top1_top2_gap_median": statistics.median(gaps),
            "top1_top2_gap_p10": gaps[len(gaps) // 10],
            "top1_top2_gap_min": gaps[0],
            "n_steps": len(gaps),
            "xllamacpp_max_abs_logprob_diff": max(xdiffs) if xdiffs else None,
            "ubatch1_step0_max_abs_logprob_diff": max(single_diffs),
            "float64_step0_max_abs_logprob_diff": max(exact_diffs) if exact_diffs else None,
            "float64_step0_median_abs_logprob_diff": statistics.median(exact_diffs) if exact_diffs else None,
        },
        "cases": cases,
    }
    out_path = os.path.join(ROOT, "tests", "golden", name + ".json")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    st = golden["stats"]
    print(f"wrote {out_path}: top1-top2 gap median {st['top1_top2_gap_median']:.3f} p10 {st['top1_top2_gap_p10']:.3f} "
          f"min {st['top1_top2_gap_min']:.5f}; xllamacpp max |dlogprob| {st['xllamacpp_max_abs_logprob_diff']}; "
          f"float64 step-0 max |dlogprob| {st['float64_step0_max_abs_logprob_diff']}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help=f"subset of {sorted(MODELS)}")
    ap.add_argument("--no-cross-check", action="store_true", help="skip the xllamacpp comparison")
    args = ap.parse_args()
    names = args.models or [n for n, p in MODELS.items() if os.path.exists(os.path.join(ROOT, p))]
    for name in names:
        if name not in MODELS:
            sys.exit(f"unknown model {name}; known: {sorted(MODELS)}")
        record(name, MODELS[name], not args.no_cross_check)


if __name__ == "__main__":
    main()
