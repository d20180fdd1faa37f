#!/usr/bin/env python3
"""Make tests/tokenizer/smollm2_tokens.json: SmolLM2 token ids and pieces according to llama.cpp.

The reference is llama.cpp itself, through xllamacpp (pip install xllamacpp): its in-process
llama-server exposes /tokenize (llama_tokenize with add_special / parse_special, plus each token's
piece via common_token_to_piece) and /detokenize (the pieces joined). runtime/tests/
tokenizer_vectors.rs checks ember's tokenizer against this file.

Usage: python3 tests/tokenizer/make_smollm2_tokens.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import json
import os
import socket
import sys
import urllib.request

import xllamacpp

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

TEXTS = [
    "Hello world",
    " Hello, world! How are you doing today?",
    "The year 2024 had 366 days; 3.14159 is pi, 1,000,000 is a million.",
    "I'm sure you're right, they'll see we've done it. DON'T SHOUT'S",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() {\n\tlet v: Vec<u8> = vec![0x1F, 0xff];\n\tprintln!(\"{v:?}\");\n}\r\n",
    "Emoji: 🦙🚀 😶‍🌫️ ✅ 👍🏽 🇫🇷",
    "我想在apple工作1314151天～ 你好，世界！",
    "日本語のテキスト、한국어 텍스트, нещо на Български, Ελληνικά, العربية",
    "ünïcödé naïve café façade Ångström",
    "   multiple   spaces\t\ttabs\n\n\nnewlines  \n ",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text<|im_end|><|im_start|>",
    "<|im_start|> <|im_end|>  <|endoftext|>",
    "<filename>src/main.rs<gh_stars>100\n<issue_start>x<jupyter_code>",
    "",
    " ",
    "\n",
    "a",
    "!!!???...,,,;;;:::",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?query=1&x=%20",
    "x = [1, 2, 3]; y = {'a': 1, \"b\": 2.5e-3}",
]

FLAGS = [(False, False), (False, True), (True, True)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    params = xllamacpp.CommonParams()
    params.model.path = MODEL
    params.n_ctx = 256
    params.n_parallel = 1
    params.port = free_port()
    params.cpuparams.n_threads = 1
    server = xllamacpp.Server(params)
    addr = server.listening_address

    def post(path, body):
        req = urllib.request.Request(
            addr + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def piece_bytes(p):
        # The server sends a piece as a string when it is valid UTF-8, else as a byte list.
        return list(p.encode("utf-8")) if isinstance(p, str) else list(p)

    cases = []
    detok = []
    for text in TEXTS:
        for add_special, parse_special in FLAGS:
            r = post("/tokenize", {"content": text, "add_special": add_special,
                                   "parse_special": parse_special, "with_pieces": True})
            toks = r["tokens"]
            case = {
                "text": text,
                "add_special": add_special,
                "parse_special": parse_special,
                "tokens": [t["id"] for t in toks],
            }
            if add_special and parse_special:  # pieces once per text keep the file small
                case["pieces"] = [piece_bytes(t["piece"]) for t in toks]
            cases.append(case)
        ids = cases[-1]["tokens"]
        detok.append({"tokens": ids, "content": post("/detokenize", {"tokens": ids})["content"]})

    out = {
        "model": os.path.basename(MODEL),
        "reference": f"llama.cpp via xllamacpp {getattr(xllamacpp, '__version__', '?')} server "
                     "/tokenize (with_pieces) and /detokenize",
        "cases": cases,
        "detokenize": detok,
    }
    dst = os.path.join(HERE, "smollm2_tokens.json")
    # One case per line: reviewable diffs without a 1-number-per-line layout.
    lines = ["{"]
    lines.append(f' "model": {json.dumps(out["model"])},')
    lines.append(f' "reference": {json.dumps(out["reference"])},')
    for key in ("cases", "detokenize"):
        lines.append(f' "{key}": [')
        rows = [" " + json.dumps(c, ensure_ascii=False) for c in out[key]]
        lines.append(",\n".join(rows))
        lines.append(" ]," if key == "cases" else " ]")
    lines.append("}")
    with open(dst, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {dst}: {len(cases)} cases")


if __name__ == "__main__":
    main()
