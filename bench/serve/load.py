#!/usr/bin/env python3
"""Load test of `mnemo serve` over real HTTP: starts the server on a registry of
random rank-16 adapters (all seven modules), then for 1, 8 and 64 concurrent
clients, each its own user (own key, own adapter) and all on the base model in
the same run, streams completions and reports requests/s, output tokens/s,
time to first token and inter-token latency p50/p99, and errors. Prints one
JSON line per configuration (bench/serve/run.sh adds device, commit, date)."""
import argparse
import asyncio
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import time

import httpx
import numpy as np
from safetensors.numpy import save_file

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--mnemo", required=True)
parser.add_argument("--model", required=True, help="HF directory or GGUF file")
parser.add_argument("--clients", default="1,8,64")
parser.add_argument("--requests-per-client", type=int, default=2)
parser.add_argument("--new-tokens", type=int, default=32)
parser.add_argument("--prompt-words", type=int, default=40)
parser.add_argument("--rank", type=int, default=16)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
clients = [int(c) for c in args.clients.split(",")]


def model_shape(path):
    path = pathlib.Path(path)
    if path.is_dir():
        c = json.loads((path / "config.json").read_text())
        heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
        head_dim = c.get("head_dim") or c["hidden_size"] // heads
        return c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], heads * head_dim, kv * head_dim
    from gguf import GGUFReader
    fields = GGUFReader(str(path)).fields
    value = lambda key: int(fields[key].parts[fields[key].data[0]][0])
    hidden, heads, kv = value("llama.embedding_length"), value("llama.attention.head_count"), value(
        "llama.attention.head_count_kv")
    return hidden, value("llama.feed_forward_length"), value("llama.block_count"), hidden, kv * (hidden // heads)


def write_adapter(directory, user, shape, seed, base):
    hidden, inter, layers, q_out, kv_out = shape
    shapes = {"self_attn.q_proj": (hidden, q_out), "self_attn.k_proj": (hidden, kv_out),
              "self_attn.v_proj": (hidden, kv_out), "self_attn.o_proj": (q_out, hidden),
              "mlp.gate_proj": (hidden, inter), "mlp.up_proj": (hidden, inter), "mlp.down_proj": (inter, hidden)}
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(layers):
        for module, (fan_in, fan_out) in shapes.items():
            name = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{name}.lora_A.weight"] = (rng.standard_normal((args.rank, fan_in)) * 0.02).astype(np.float32)
            tensors[f"{name}.lora_B.weight"] = (rng.standard_normal((fan_out, args.rank)) * 0.02).astype(np.float32)
    directory.mkdir(parents=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"),
              metadata={"format": "pt", "mnemo.user": user, "mnemo.base_model_fingerprint": base})
    (directory / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": args.rank, "lora_alpha": 2 * args.rank,
        "target_modules": [m.split(".")[1] for m in shapes]}))


def percentile(values, p):
    return float(np.percentile(values, p)) if values else None


async def stream_one(client, key, prompt):
    started = time.perf_counter()
    first, last, gaps, tokens = None, None, [], 0
    async with client.stream("POST", "/v1/completions", headers={"Authorization": f"Bearer {key}"},
                             json={"model": "mnemo", "prompt": prompt, "max_tokens": args.new_tokens,
                                   "temperature": 0, "ignore_eos": True, "stream": True,
                                   "stream_options": {"include_usage": True}}) as response:
        if response.status_code != 200:
            await response.aread()
            return {"error": response.status_code}
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            now = time.perf_counter()
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif chunk["choices"] and chunk["choices"][0].get("text"):
                if first is None:
                    first = now - started
                else:
                    gaps.append(now - last)
                last = now
    return {"first": first, "gaps": gaps, "tokens": tokens, "seconds": time.perf_counter() - started}


async def run(url, n_clients, keys, prompt):
    limits = httpx.Limits(max_connections=n_clients + 8)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def one_client(key):
            return [await stream_one(client, key, prompt) for _ in range(args.requests_per_client)]
        started = time.perf_counter()
        results = await asyncio.gather(*(one_client(key) for key in keys))
        seconds = time.perf_counter() - started
    flat = [r for rs in results for r in rs]
    ok = [r for r in flat if "error" not in r]
    gaps = [g for r in ok for g in r["gaps"]]
    firsts = [r["first"] for r in ok if r["first"] is not None]
    return {"requests": len(flat), "errors": len(flat) - len(ok), "seconds": seconds,
            "requests_per_s": len(ok) / seconds, "output_tokens_per_s": sum(r["tokens"] for r in ok) / seconds,
            "ttft_ms_p50": 1e3 * percentile(firsts, 50), "ttft_ms_p99": 1e3 * percentile(firsts, 99),
            "itl_ms_p50": 1e3 * percentile(gaps, 50), "itl_ms_p99": 1e3 * percentile(gaps, 99)}


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="mnemo-bench-serve-"))
    shape = model_shape(args.model)
    users = [f"user{i:03d}" for i in range(max(clients))]
    # The registry records the base model's fingerprint and the shapes adapters must fit.
    init = subprocess.run([args.mnemo, "adapters", "--json", "init", "--registry", str(work / "registry"),
                           "--model", args.model], check=True, capture_output=True, text=True)
    base = json.loads(init.stdout)["base_model_fingerprint"]
    for i, user in enumerate(users):
        write_adapter(work / "adapters" / user, user, shape, i, base)
    subprocess.run([args.mnemo, "adapters", "import", "--registry", str(work / "registry"), str(work / "adapters")],
                   check=True, stdout=subprocess.DEVNULL)
    keys = {user: f"sk-bench-{user}-000000000000" for user in users}
    keys_file = work / "keys.yaml"
    keys_file.write_text("keys:\n" + "".join(f"  - {{key: {k}, role: user, user: {u}}}\n" for u, k in keys.items())
                         + "  - {key: sk-bench-service-0000000000, role: service}\n")
    max_clients = max(clients)
    (work / "serve.yaml").write_text(
        f"threads: {args.threads}\nkeys_file: keys.yaml\nlimits: {{queue: {4 * max_clients + 16}}}\n"
        f"engine: {{max_batch_tokens: 512, max_sequences: {max_clients}, kv_memory_mb: 1024, "
        f"adapter_slots: {max_clients}, adapter_rank_capacity: {args.rank}}}\n")
    server = subprocess.Popen([args.mnemo, "serve", "--config", str(work / "serve.yaml"), "--model", args.model,
                               "--registry", str(work / "registry"), "--port", "0", "--port-file",
                               str(work / "port")], stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(1200):
            if (work / "port").exists() and (work / "port").read_text().strip():
                break
            if server.poll() is not None:
                raise SystemExit("the server exited: " + (work / "server.log").read_text())
            time.sleep(0.1)
        url = f"http://127.0.0.1:{(work / 'port').read_text().strip()}"
        prompt = " ".join(["the quick brown fox jumps over the lazy dog"] * (args.prompt_words // 9 + 1))
        asyncio.run(run(url, 1, ["sk-bench-service-0000000000"], prompt))  # warm-up
        for n in clients:
            for mode in ("base", "users"):
                chosen = ["sk-bench-service-0000000000"] * n if mode == "base" else [keys[u] for u in users[:n]]
                if mode == "users":  # adapters into the host tier first: the load test is not a cold start
                    asyncio.run(run(url, n, chosen, "warm"))
                row = {"clients": n, "users": mode, "new_tokens": args.new_tokens}
                row.update(asyncio.run(run(url, n, chosen, prompt)))
                print(json.dumps(row), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


main()
