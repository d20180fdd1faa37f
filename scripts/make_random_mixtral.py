#!/usr/bin/env python3
"""The mixtral shape of scripts/make_random_moe.py (see its docstring): make_random_mixtral.py OUT.gguf"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_random_moe import main  # noqa: E402

sys.argv = [sys.argv[0], "mixtral", *sys.argv[1:]]
main()
