#!/usr/bin/env python3
"""Float32 logits of a Hugging Face model directory (optionally with a peft
adapter) for given prompt ids, written as safetensors (logits_i, and the
tokenizer's ids of --texts as ids_i). Used by interop tests to check that what
mnemo writes loads in transformers and peft and computes the same thing."""
import argparse
import json

import torch
from safetensors.torch import save_file


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--adapter", help="a peft adapter directory")
    parser.add_argument("--prompts", required=True, help="JSON list of lists of token ids")
    parser.add_argument("--texts", default="[]", help="JSON list of strings to tokenize")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    if args.adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, args.adapter).eval()
    out = {}
    with torch.no_grad():
        for i, ids in enumerate(json.loads(args.prompts)):
            out[f"logits_{i}"] = model(torch.tensor([ids])).logits[0].float().contiguous()
    texts = json.loads(args.texts)
    if texts:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(args.model)
        for i, text in enumerate(texts):
            out[f"ids_{i}"] = torch.tensor(tokenizer(text, add_special_tokens=False).input_ids, dtype=torch.int64)
    save_file(out, args.out)


if __name__ == "__main__":
    main()
