#!/usr/bin/env python3
"""Record llama.cpp reference outputs ("goldens") for ember's end-to-end tests.

The reference is llama.cpp as shipped in the prebuilt `xllamacpp` wheel (its in-process server).
For every prompt it records llama.cpp's tokenization, the greedy 64-token continuation and, at every
step, the top-10 log-probabilities computed by llama.cpp from the raw logits (log-softmax over the
full vocabulary, before any sampler). See tests/golden/README.md for the schema.

Usage (from the repository root):
    python3 tests/golden/make_golden.py                 # every model in MODELS whose file exists
    python3 tests/golden/make_golden.py smollm2-135m-q4_1
"""

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import sys
import urllib.request

import xllamacpp
from gguf import GGUFReader

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODELS = {
    "smollm2-135m-q4_1": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "llama1b-shape-mixed": "models/llama1b-shape-mixed.gguf",
}

N_PREDICT = 64
N_PROBS = 10
N_CTX = 2048
N_THREADS = 2

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

# Token texts llama.cpp treats as end-of-generation (src/llama-vocab.cpp, special_eog_ids), besides
# the eos/eot/eom ids from the metadata. Used only to annotate steps; llama.cpp itself bans them.
EOG_TEXTS = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
}


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def vocab_info(path):
    r = GGUFReader(path)

    def get(key, default=None):
        field = r.fields.get(key)
        return default if field is None else field.contents()

    tokens = get("tokenizer.ggml.tokens")
    eog = {i for i, t in enumerate(tokens) if t in EOG_TEXTS}
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"):
        if get(key) is not None:
            eog.add(int(get(key)))
    return {
        "n_vocab": len(tokens),
        "tokenizer_model": get("tokenizer.ggml.model"),
        "tokenizer_pre": get("tokenizer.ggml.pre"),
        "bos_token_id": get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": get("tokenizer.ggml.eos_token_id"),
        "add_bos_token": get("tokenizer.ggml.add_bos_token"),
        "eog_token_ids": sorted(eog),
        "bos_text": tokens[get("tokenizer.ggml.bos_token_id")] if get("tokenizer.ggml.bos_token_id") is not None else None,
        "chat_template": get("tokenizer.chat_template"),
    }


@contextlib.contextmanager
def quiet_stderr():
    """llama.cpp logs to fd 2; keep the console readable."""
    saved = os.dup(2)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Reference:
    """llama.cpp's server, in process, through xllamacpp."""

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
        self.params = p
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

    def tokenize(self, text, add_bos):
        return self._post("/tokenize", {"content": text, "add_special": add_bos, "parse_special": True})["tokens"]

    def render_chat(self, messages):
        return self._post("/apply-template", {"messages": messages})["prompt"]

    def complete(self, prompt_ids):
        with quiet_stderr():
            out = self.server.handle_completions({
                "prompt": prompt_ids,
                "n_predict": N_PREDICT,
                "n_probs": N_PROBS,
                "post_sampling_probs": False,
                "temperature": 0.0,
                "ignore_eos": True,
                "cache_prompt": False,
                "samplers": ["temperature"],
                "seed": 0,
            })
        if "error" in out:
            raise RuntimeError(out["error"])
        choice = out["choices"][0]
        steps = choice["logprobs"]["content"]
        return choice, steps


def record(name, rel_path):
    path = os.path.join(ROOT, rel_path)
    vocab = vocab_info(path)
    ref = Reference(path)
    eog = set(vocab["eog_token_ids"])
    cases = []
    gaps = []
    for case_name, kind, prompt in PROMPTS:
        if kind == "chat":
            text = ref.render_chat(prompt)
            # The template may already emit the BOS text; llama.cpp would not add a second one.
            add_bos = bool(vocab["add_bos_token"]) and not (vocab["bos_text"] and text.startswith(vocab["bos_text"]))
        else:
            text = prompt
            add_bos = bool(vocab["add_bos_token"])
        ids = ref.tokenize(text, add_bos)
        choice, steps = ref.complete(ids)
        generated = [s["id"] for s in steps]
        top = [[[t["id"], t["logprob"]] for t in s["top_logprobs"]] for s in steps]
        if len(generated) != N_PREDICT or any(len(t) != N_PROBS for t in top):
            raise RuntimeError(f"{name}/{case_name}: llama.cpp returned {len(generated)} steps")
        first_eog = None
        for step, (gen, cands) in enumerate(zip(generated, top)):
            # Self-consistency: the greedy pick is the most probable token that is not banned (EOG).
            allowed = [tid for tid, _ in cands if tid not in eog]
            if not allowed or allowed[0] != gen:
                raise RuntimeError(f"{name}/{case_name} step {step}: generated {gen} but top-10 is {cands}")
            if cands[0][0] in eog and first_eog is None:
                first_eog = step
            gaps.append(cands[0][1] - cands[1][1])
        cases.append({
            "name": case_name,
            "kind": kind,
            "messages": prompt if kind == "chat" else None,
            "prompt": text,
            "add_bos": add_bos,
            "parse_special": True,
            "prompt_tokens": ids,
            "generated_tokens": generated,
            "generated_text": choice["text"],
            "first_eog_step": first_eog,
            "top_logprobs": top,
        })
        print(f"{name}/{case_name}: {len(ids)} prompt tokens -> {choice['text'][:60]!r}", file=sys.stderr)
    gaps.sort()
    info = xllamacpp._version.get_versions()
    golden = {
        "schema_version": 1,
        "generator": "tests/golden/make_golden.py",
        "reference": {
            "implementation": "llama.cpp (in-process server of the xllamacpp wheel)",
            "xllamacpp_version": info["version"],
            "xllamacpp_revision": info["full-revisionid"],
            "llama_cpp_build_info": xllamacpp.BUILD_INFO,
            "cpu_features": xllamacpp.get_system_info().strip(),
        },
        "model": {
            "name": name,
            "path": rel_path,
            "sha256": sha256_of(path),
            "size_bytes": os.path.getsize(path),
            **{k: v for k, v in vocab.items() if k != "bos_text"},
        },
        "settings": {
            "n_ctx": N_CTX,
            "n_threads": N_THREADS,
            "n_threads_batch": N_THREADS,
            "n_batch": ref.params.n_batch,
            "n_ubatch": ref.params.n_ubatch,
            "flash_attn": False,
            "cache_type_k": "f16",
            "cache_type_v": "f16",
            "extra_buffer_types": "default (CPU repack on)",
            "sampling": "greedy (temperature 0)",
            "ignore_eos": True,
            "n_predict": N_PREDICT,
            "n_probs": N_PROBS,
            "logprobs": "natural log of softmax over the raw logits of the full vocabulary, before any sampler",
            "prompt_processing": "whole prompt in one batch from an empty KV cache, then one token per step",
        },
        "stats": {
            "top1_top2_gap_median": statistics.median(gaps),
            "top1_top2_gap_p10": gaps[len(gaps) // 10],
            "top1_top2_gap_min": gaps[0],
            "n_steps": len(gaps),
        },
        "cases": cases,
    }
    out_path = os.path.join(ROOT, "tests", "golden", name + ".json")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {out_path}: gap median {golden['stats']['top1_top2_gap_median']:.3f} "
          f"p10 {golden['stats']['top1_top2_gap_p10']:.3f} min {gaps[0]:.4f}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help=f"subset of {sorted(MODELS)}")
    args = ap.parse_args()
    names = args.models or [n for n, p in MODELS.items() if os.path.exists(os.path.join(ROOT, p))]
    for name in names:
        if name not in MODELS:
            sys.exit(f"unknown model {name}; known: {sorted(MODELS)}")
        record(name, MODELS[name])


if __name__ == "__main__":
    main()
