#!/usr/bin/env python3
"""The baseline for bench_forward: the same prefill + greedy decode workload in
transformers (same model directory, same batch, prompt and decode lengths,
same thread count, same device), printed as one JSON object. On CUDA the
clock is read after a device synchronization."""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM, DynamicCache


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = parser.parse_args()
    device = torch.device(args.device)

    def now():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).eval().to(device)
    vocab = model.config.vocab_size
    prompts = torch.randint(3, vocab, (args.batch, args.prompt_tokens), generator=torch.Generator().manual_seed(0)).to(device)
    best_prefill = best_decode = float("inf")
    with torch.inference_mode():
        for r in range(args.repeats + 1):  # the first run warms up and is not counted
            cache = DynamicCache(config=model.config)
            t0 = now()
            out = model(prompts, past_key_values=cache, use_cache=True, logits_to_keep=1)
            next_tokens = out.logits[:, -1].argmax(-1, keepdim=True)
            t1 = now()
            for _ in range(args.decode_tokens):
                out = model(next_tokens, past_key_values=out.past_key_values, use_cache=True)
                next_tokens = out.logits[:, -1].argmax(-1, keepdim=True)
            t2 = now()
            if r == 0:
                continue
            best_prefill = min(best_prefill, t1 - t0)
            best_decode = min(best_decode, t2 - t1)
    print(json.dumps({
        "implementation": "transformers", "transformers_version": __import__("transformers").__version__,
        "batch": args.batch, "prompt_tokens": args.prompt_tokens, "decode_tokens": args.decode_tokens,
        "dtype": args.dtype, "device": args.device, "threads": torch.get_num_threads(),
        "prefill_s": best_prefill, "decode_s": best_decode,
        "prefill_tokens_per_s": args.batch * args.prompt_tokens / best_prefill,
        "decode_tokens_per_s": args.batch * args.decode_tokens / best_decode,
    }))


if __name__ == "__main__":
    main()
