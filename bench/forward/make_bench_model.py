#!/usr/bin/env python3
"""Writes the benchmark's tiny-but-not-trivial random Llama checkpoint
(hidden 512, 8 layers, 8 heads / 4 KV heads, vocabulary 8192) to --out."""
import argparse

import torch
from transformers import LlamaConfig, LlamaForCausalLM

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", required=True)
args = parser.parse_args()
torch.manual_seed(0)
config = LlamaConfig(vocab_size=8192, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                     num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=2048,
                     bos_token_id=1, eos_token_id=2)
LlamaForCausalLM(config).save_pretrained(args.out)
