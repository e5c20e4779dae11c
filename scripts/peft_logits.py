#!/usr/bin/env python3
"""Loads a base model in float32 with a LoRA adapter through `peft` and writes
the logits of every position of each prompt: the checker for adapters Mnemo
writes (tests/interop/test_peft_parity.cpp runs it through $MNEMO_PYTHON).

  peft_logits.py --base DIR --adapter DIR --prompt-ids 5,9,13 [--prompt-ids ...] --out FILE

FILE (safetensors) holds logits_i [len_i, vocab] float32 for the i-th prompt,
and prints the adapter's safetensors metadata as JSON on stdout, as peft's
loader saw the file.
"""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from peft import PeftModel  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--prompt-ids", action="append", required=True, help="comma-separated token ids")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    base = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32).eval()
    model = PeftModel.from_pretrained(base, args.adapter).eval()
    logits = {}
    with torch.no_grad():
        for i, ids in enumerate(args.prompt_ids):
            prompt = torch.tensor([[int(t) for t in ids.split(",")]])
            logits[f"logits_{i}"] = model(prompt).logits[0].float().contiguous()
    save_file(logits, args.out)
    with safe_open(os.path.join(args.adapter, "adapter_model.safetensors"), "pt") as f:
        print(json.dumps(f.metadata()))


if __name__ == "__main__":
    main()
