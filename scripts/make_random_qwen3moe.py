#!/usr/bin/env python3
"""The qwen3moe shape of scripts/make_random_moe.py (see its docstring): make_random_qwen3moe.py OUT.gguf"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_random_moe import main  # noqa: E402

sys.argv = [sys.argv[0], "qwen3moe", *sys.argv[1:]]
main()
