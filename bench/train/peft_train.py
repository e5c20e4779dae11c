#!/usr/bin/env python3
"""The baseline for bench/train: peft + transformers train each user's adapter
on exactly the sequences Mnemo's trainer used (BATCHES.json, written by
bench_train), with the same steps, rank, target modules, AdamW, schedule,
per-user clipping, and the same loss: weighted cross-entropy plus kl_weight
times the KL to the frozen base (the base's distributions come from the same
model with the adapter disabled). One user after another, each step one
padded batch. Prints one JSON row (seconds for all users) for write_results.py.

Usage: peft_train.py --model HF_DIR --batches BATCHES.json [--threads N]
"""
import argparse
import json
import math
import sys
import time

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--batches", required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    with open(args.batches, encoding="utf-8") as f:
        recorded = json.load(f)
    config = recorded["config"]
    users = recorded["users"]
    total = config["steps"]
    warmup = config["warmup_steps"]

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if total <= warmup:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min((step - warmup) / (total - warmup), 1.0)))

    base = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
    base.requires_grad_(False)

    def tensors(batch):
        length = max(len(s["tokens"]) for s in batch)
        ids = torch.zeros((len(batch), length), dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        weights = torch.zeros((len(batch), length - 1))
        kl_weights = torch.zeros((len(batch), length - 1))
        for i, s in enumerate(batch):
            n = len(s["tokens"])
            ids[i, :n] = torch.tensor(s["tokens"])
            mask[i, :n] = 1
            weights[i, : n - 1] = torch.tensor(s["weights"])
            if s["kl"]:
                kl_weights[i, : n - 1] = torch.tensor(s["kl"])
        return ids, mask, weights, kl_weights

    # Untimed warm-up, as the Mnemo side has: one forward and backward of the
    # first batch (gradients to the input embeddings; nothing is trained).
    ids, mask, _, _ = tensors(next(iter(users.values()))[0])
    embedded = base.get_input_embeddings()(ids).detach().requires_grad_(True)
    base(inputs_embeds=embedded, attention_mask=mask).logits.float().sum().backward()

    started = time.perf_counter()
    model = None
    for user, steps in users.items():
        lora = LoraConfig(r=config["rank"], lora_alpha=config["alpha"], target_modules=config["target_modules"],
                          lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
        if model is None:
            model = get_peft_model(base, lora, adapter_name=user)
        else:
            model.add_adapter(user, lora)
        model.set_adapter(user)
        model.train(False)
        parameters = [p for n, p in model.named_parameters() if p.requires_grad and f".{user}." in n]
        optimizer = torch.optim.AdamW(parameters, lr=config["learning_rate"], betas=(0.9, 0.999), eps=1e-8,
                                      weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        for batch in steps:
            ids, mask, weights, kl_weights = tensors(batch)
            optimizer.zero_grad()
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            log_probs = torch.log_softmax(logits, -1)
            token_loss = -log_probs.gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
            loss = (token_loss * weights).sum() / weights.sum().clamp_min(1e-12)
            if kl_weights.sum() > 0:
                with torch.no_grad(), model.disable_adapter():
                    teacher = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
                kl = (teacher.exp() * (teacher - log_probs)).sum(-1)
                loss = loss + config["kl_weight"] * (kl * kl_weights).sum() / kl_weights.sum()
            loss.backward()
            if config["max_grad_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(parameters, config["max_grad_norm"])
            optimizer.step()
            scheduler.step()
    seconds = time.perf_counter() - started
    print(json.dumps({"workload": "train: peft + transformers, one user after another", "users": len(users),
                      "steps": total, "seconds": seconds, "seconds_per_user": seconds / len(users)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
