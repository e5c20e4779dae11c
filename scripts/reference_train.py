#!/usr/bin/env python3
"""The reference for Mnemo's adapter optimizer: the same optimizer steps with
peft + torch.optim.AdamW, on the same model, initial adapter and sequences.

Usage: reference_train.py --model HF_DIR --adapter INIT_PEFT_DIR --batch BATCH.json --out OUT_DIR
         [--steps N] [--lr LR] [--warmup N] [--total N] [--max-grad-norm X] [--weight-decay X]

BATCH.json: [{"tokens": [ids], "weights": [w for each of tokens[1:]]}, ...]. The loss
is the sum of weighted token cross-entropies over the sum of weights (one user); each
sequence runs alone (no padding). The schedule: linear warmup, then cosine to 0 at
--total (constant when --total <= --warmup), as trainer/adapter_optimizer.h.
Writes OUT_DIR as PeftModel.save_pretrained does.
"""
import argparse
import json
import math
import sys

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--batch", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--total", type=int, default=0)
    parser.add_argument("--max-grad-norm", type=float, default=0.0)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    args = parser.parse_args()

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(base, args.adapter, is_trainable=True)
    model.train(False)  # no dropout anywhere; the reference models have none, and lora_dropout is 0
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=args.weight_decay)

    def factor(step: int) -> float:
        if step < args.warmup:
            return (step + 1) / args.warmup
        if args.total <= args.warmup:
            return 1.0
        progress = min((step - args.warmup) / (args.total - args.warmup), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    with open(args.batch, encoding="utf-8") as f:
        batch = json.load(f)
    for _ in range(args.steps):
        optimizer.zero_grad()
        loss_sum = torch.zeros((), dtype=torch.float32)
        weight_sum = 0.0
        for sequence in batch:
            ids = torch.tensor([sequence["tokens"]], dtype=torch.long)
            logits = model(input_ids=ids).logits[0, :-1].float()
            targets = ids[0, 1:]
            weights = torch.tensor(sequence["weights"], dtype=torch.float32)
            token_loss = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            loss_sum = loss_sum + (token_loss * weights).sum()
            weight_sum += float(weights.sum())
        (loss_sum / weight_sum).backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(parameters, args.max_grad_norm)
        optimizer.step()
        scheduler.step()
    model.save_pretrained(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
