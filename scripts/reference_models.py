"""Tiny random checkpoints of every supported architecture, and what
transformers computes on them (part of make_reference_models.py).

For each model directory out/models/<name>/ it writes the checkpoint
(config.json, safetensors, tokenizer files when a reference tokenizer exists)
and expected.safetensors with, for prompt i: prompt_i (ids), logits_i
(float32 logits of every prompt position, model in float32), logits_bf16_i
(the model in bfloat16) and greedy_i (32 greedy tokens).
"""
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

PROMPT_LENGTHS = [7, 19, 1, 12]
GREEDY_TOKENS = 32

# (name, config class, extra config, tokenizer dir name, sharded)
BASE = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, initializer_range=0.3)


def model_specs():
    from transformers import LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config
    return [
        ("llama", LlamaConfig, dict(rope_theta=10000.0, tie_word_embeddings=False), "bytelevel", False),
        ("llama_tied_sharded", LlamaConfig, dict(rope_theta=500000.0, tie_word_embeddings=True), "bytelevel", True),
        ("llama3_rope", LlamaConfig, dict(rope_theta=500000.0, tie_word_embeddings=False,
                                          rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                                            high_freq_factor=4.0,
                                                            original_max_position_embeddings=16)), "bytelevel", False),
        ("mistral", MistralConfig, dict(rope_theta=10000.0, tie_word_embeddings=False, sliding_window=None), "spm", False),
        ("qwen2", Qwen2Config, dict(rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False), "bytelevel", False),
        ("qwen3", Qwen3Config, dict(rope_theta=1000000.0, tie_word_embeddings=False, head_dim=32,
                                    use_sliding_window=False), "bytelevel", False),
    ]


def tokenizer_vocab(tokenizer_dir):
    if not (tokenizer_dir / "tokenizer.json").exists():
        return None
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")).get_vocab_size(with_added_tokens=True)


COMPLETION_PROMPTS = ["The quick brown fox", "Once upon a time, in a land far away,", "12 + 30 ="]


def write_expected_completions(directory, model):
    """What `mnemo generate` must print: transformers' greedy completion of a
    text prompt (and of a chat turn, where the model has a chat template),
    stopping at eos, decoded without special tokens."""
    from transformers import PreTrainedTokenizerFast
    # Not AutoTokenizer: for some model types (qwen2) transformers picks a
    # class that rebuilds the pre-tokenizer and ignores tokenizer.json.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(directory)
    cases = []
    for prompt in COMPLETION_PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        cases.append({"chat": False, "prompt": prompt, "ids": ids[0].tolist()})
        if tokenizer.chat_template:
            text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
            cases.append({"chat": True, "prompt": prompt, "ids": ids[0].tolist()})
    for case in cases:
        ids = torch.tensor([case["ids"]])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=16,
                                 pad_token_id=0)
        case["completion"] = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    (directory / "expected_completions.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False))


def build(out: Path, log):
    from transformers import AutoModelForCausalLM
    models = out / "models"
    if models.exists():
        shutil.rmtree(models)
    models.mkdir(parents=True)
    for index, (name, config_class, extra, tokenizer_name, sharded) in enumerate(model_specs()):
        torch.manual_seed(1000 + index)
        tokenizer_dir = out / "tokenizers" / tokenizer_name
        vocab = tokenizer_vocab(tokenizer_dir) or 1000
        config = config_class(vocab_size=vocab, bos_token_id=1, eos_token_id=2, **BASE, **extra)
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32).eval()
        # Norm weights start at one; perturb them so a wrong norm cannot pass.
        with torch.no_grad():
            for param_name, param in model.named_parameters():
                if "norm" in param_name or param_name.endswith(".bias"):
                    param.add_(torch.randn_like(param) * 0.2)
        directory = models / name
        model.save_pretrained(directory, max_shard_size="100KB" if sharded else "10GB")
        if tokenizer_dir.exists():
            shutil.copy(tokenizer_dir / "tokenizer.json", directory / "tokenizer.json")
            shutil.copy(tokenizer_dir / "tokenizer_config.json", directory / "tokenizer_config.json")

        generator = torch.Generator().manual_seed(7 + index)
        expected = {}
        model_bf16 = AutoModelForCausalLM.from_pretrained(directory, torch_dtype=torch.bfloat16).eval()
        for i, length in enumerate(PROMPT_LENGTHS):
            prompt = torch.randint(3, vocab, (1, length), generator=generator)
            with torch.no_grad():
                expected[f"prompt_{i}"] = prompt[0].clone()
                expected[f"logits_{i}"] = model(prompt).logits[0].float().contiguous()
                expected[f"logits_bf16_{i}"] = model_bf16(prompt).logits[0].float().contiguous()
                generated = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                           max_new_tokens=GREEDY_TOKENS, min_new_tokens=GREEDY_TOKENS,
                                           pad_token_id=0)
                expected[f"greedy_{i}"] = generated[0, length:].clone()
        save_file(expected, str(directory / "expected.safetensors"))
        if (directory / "tokenizer.json").exists():
            write_expected_completions(directory, model)
        (directory / "expected.json").write_text(json.dumps(
            {"prompts": len(PROMPT_LENGTHS), "greedy_tokens": GREEDY_TOKENS, "architecture": config.architectures}))
        log(f"  {name}: vocab {vocab}, {sum(p.numel() for p in model.parameters())} parameters")
