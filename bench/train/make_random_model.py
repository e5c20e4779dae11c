#!/usr/bin/env python3
"""Writes a model of the same architecture, shape and tokenizer as --like (a
Hugging Face directory, such as the default model converted by `mnemo model
convert default`) with random weights to --out: training speed does not
depend on the weights, and the real ones are too large to carry to the GPU
machine."""
import argparse
import pathlib
import shutil

import torch
from transformers import AutoConfig, AutoModelForCausalLM

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--like", required=True, help="directory with config.json and the tokenizer files")
parser.add_argument("--out", required=True)
args = parser.parse_args()
like, out = pathlib.Path(args.like), pathlib.Path(args.out)
torch.manual_seed(0)
AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(like)).save_pretrained(out)
for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
    if (like / name).exists():
        shutil.copy(like / name, out / name)
print(f"wrote a random model shaped like {like} to {out}")
