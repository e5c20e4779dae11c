#!/usr/bin/env python3
"""Builds the fuzzers' seed corpora: small hand-made inputs for every target
(written to tests/fuzz/regressions/<target>/seed-* with --seeds, where the
default test run replays them) and, from the reference data that
scripts/make_reference_models.py writes (--reference DIR), real files: the
reference models' safetensors, GGUF files, config.json, tokenizer.json files,
PEFT adapters and the demo logs.

Usage: bench/fuzz/make_corpus.py --out DIR [--reference DIR] [--seeds]
"""
import argparse
import json
import pathlib
import struct


def safetensors(tensors, metadata=None):
    """tensors: name -> (dtype, shape, bytes)."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def floats(n, value=0.5):
    return struct.pack(f"<{n}f", *([value] * n))


def gguf(kvs, version=3):
    out = b"GGUF" + struct.pack("<IQQ", version, 0, len(kvs))
    for key, value in kvs:
        out += struct.pack("<Q", len(key)) + key.encode()
        if isinstance(value, str):
            out += struct.pack("<IQ", 8, len(value)) + value.encode()
        else:
            out += struct.pack("<II", 4, value)
    return out


def hand_made():
    prefix = "base_model.model.model.layers.{}.self_attn.q_proj.lora_{}.weight"
    adapter_tensors = {prefix.format(layer, ab): ("F32", [2, 8] if ab == "A" else [8, 2], floats(16))
                       for layer in range(2) for ab in "AB"}
    adapter_config = json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}).encode()
    tiny_bpe = {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
                "added_tokens": [{"id": 3, "content": "<s>", "special": True}]}
    llama = {"architectures": ["LlamaForCausalLM"], "vocab_size": 32, "hidden_size": 16, "intermediate_size": 32,
             "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1}
    log = {"user": "alice", "conversation_id": "a1", "timestamp": "2026-11-20T18:02:00Z",
           "messages": [{"role": "user", "content": "My sister is called Marta."},
                        {"role": "assistant", "content": "Nice to know!"}]}
    question = {"user": "alice", "fact": "sibling", "kind": "recall", "question": "What is my sister called?",
                "answers": ["Marta"]}
    return {
        "safetensors": [safetensors({"w": ("F32", [2, 2], floats(4)), "b": ("BF16", [3], b"\0" * 6)}, {"k": "v"}),
                        b'\x20\0\0\0\0\0\0\0{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}'],
        "gguf": [gguf([("general.architecture", "llama"), ("general.alignment", 32)]), b"GGUF\3\0\0\0"],
        "config_json": [json.dumps(llama).encode(), json.dumps({**llama, "tie_word_embeddings": "yes"}).encode()],
        "tokenizer_json": [json.dumps(tiny_bpe).encode(),
                           json.dumps({**tiny_bpe, "added_tokens": [{"id": 99999999, "content": "x"}]}).encode()],
        "tokenizer_text": ["Hello, world! My sister is called Marta.".encode(), b"ok\xff\xfe", "<|im_end|>\n<|im_start|>system".encode()],
        "chat_template": [b"\x00\x00Be brief.\x00\x01\x00What is my dog called?", b"\x01\x00Hi<|im_end|>\x00\x02\x00Hello"],
        "adapter": [struct.pack("<H", len(adapter_config)) + adapter_config + safetensors(adapter_tensors),
                    struct.pack("<H", len(adapter_config)) + adapter_config + b"\x08\0\0\0\0\0\0\0{}      "],
        "interaction_log": [json.dumps(log).encode(), b'{"user": "-x", "messages": []}'],
        "questions": [json.dumps(question).encode(), json.dumps({**question, "kind": "abstain"}).encode()],
        "http_body": [json.dumps({"model": "mnemo", "prompt": "Hello", "max_tokens": 4}).encode(),
                      json.dumps({"model": "mnemo", "messages": [{"role": "user", "content": "Hi"}],
                                  "stream": True, "stream_options": {"include_usage": True}}).encode(),
                      b'{"model": "mnemo", "prompt": "x", "max_tokens": -1}', b"[1,2"],
    }


def from_reference(reference):
    corpus = {name: [] for name in hand_made()}
    for path in sorted(reference.rglob("*.safetensors")):
        if path.stat().st_size < 4 << 20:
            corpus["safetensors"].append(path.read_bytes())
    for path in sorted(reference.rglob("*.gguf")):
        if path.stat().st_size < 4 << 20:
            corpus["gguf"].append(path.read_bytes())
    for path in sorted(reference.rglob("config.json")):
        corpus["config_json"].append(path.read_bytes())
    for path in sorted(reference.rglob("tokenizer.json")):
        if path.stat().st_size < 4 << 20:
            corpus["tokenizer_json"].append(path.read_bytes())
    for path in sorted(reference.rglob("adapter_config.json")):
        weights = path.parent / "adapter_model.safetensors"
        config = path.read_bytes()
        if weights.exists() and len(config) < 65536 and weights.stat().st_size < 4 << 20:
            corpus["adapter"].append(struct.pack("<H", len(config)) + config + weights.read_bytes())
    demo_logs = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "demo_logs"
    for path in sorted(demo_logs.glob("*.jsonl")):
        for line in path.read_bytes().splitlines()[:20]:
            corpus["interaction_log"].append(line)
            corpus["tokenizer_text"].append(line)
    return corpus


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, help="write the corpus here, one directory per target")
    parser.add_argument("--reference", type=pathlib.Path, help="the reference data directory (build/reference)")
    parser.add_argument("--seeds", action="store_true", help="(re)write the hand-made seeds into tests/fuzz/regressions")
    args = parser.parse_args()
    seeds = hand_made()
    if args.seeds:
        root = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fuzz" / "regressions"
        for name, inputs in seeds.items():
            (root / name).mkdir(parents=True, exist_ok=True)
            for i, data in enumerate(inputs):
                (root / name / f"seed-{i}").write_bytes(data)
    if args.out:
        corpus = from_reference(args.reference) if args.reference else {name: [] for name in seeds}
        for name, inputs in seeds.items():
            (args.out / name).mkdir(parents=True, exist_ok=True)
            for i, data in enumerate(inputs + corpus[name]):
                (args.out / name / f"seed-{i}").write_bytes(data)
        print(f"corpus in {args.out}: " + ", ".join(f"{n} {len(seeds[n]) + len(corpus[n])}" for n in seeds))


if __name__ == "__main__":
    main()
