#!/usr/bin/env python3
"""Load test of `mnemo serve` over real HTTP: starts the server on a registry of
random rank-16 adapters (all seven modules), then for 1, 8 and 64 concurrent
clients, each its own user (own key, own adapter) and all on the base model in
the same run, streams completions and reports requests/s, output tokens/s,
time to first token and inter-token latency p50/p99, and errors. Then, against
a second server with a small queue, holds --held connections open at once
(1,000 by default), sends a request on each and counts the answers: every one
must be a 200 or a 429 with Retry-After, never a refused connection, a reset,
a timeout or another status. Prints one JSON line per configuration
(bench/serve/run.sh adds device, commit, date)."""
import argparse
import asyncio
import json
import os
import pathlib
import resource
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
parser.add_argument("--held", type=int, default=1000, help="connections held open at once (0: skip)")
parser.add_argument("--held-queue", type=int, default=16, help="the queue limit of the server they are held against")
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
    try:
        return await stream_one_unguarded(client, key, prompt)
    except httpx.HTTPError as e:  # a reset or a timeout counts as an error, by kind
        return {"error": type(e).__name__}


async def stream_one_unguarded(client, key, prompt):
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
    # Idle connections expire on the client before the server's keep-alive
    # timeout (cpp-httplib's 5 s): a POST sent on a connection the server is
    # closing at that moment fails, and POSTs are not retried.
    limits = httpx.Limits(max_connections=n_clients + 8, keepalive_expiry=2.0)
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
    return {"requests": len(flat), "errors": len(flat) - len(ok),
            "error_kinds": sorted({str(r["error"]) for r in flat if "error" in r}), "seconds": seconds,
            "requests_per_s": len(ok) / seconds, "output_tokens_per_s": sum(r["tokens"] for r in ok) / seconds,
            "ttft_ms_p50": 1e3 * percentile(firsts, 50), "ttft_ms_p99": 1e3 * percentile(firsts, 99),
            "itl_ms_p50": 1e3 * percentile(gaps, 50), "itl_ms_p99": 1e3 * percentile(gaps, 99)}


def start_server(work, name, config):
    (work / f"{name}.yaml").write_text(config)
    port_file = work / f"{name}.port"
    server = subprocess.Popen([args.mnemo, "serve", "--config", str(work / f"{name}.yaml"), "--model", args.model,
                               "--registry", str(work / "registry"), "--port", "0", "--port-file", str(port_file)],
                              stdout=open(work / f"{name}.log", "w"), stderr=subprocess.STDOUT)
    for _ in range(1200):
        if port_file.exists() and port_file.read_text().strip():
            return server, f"http://127.0.0.1:{port_file.read_text().strip()}"
        if server.poll() is not None:
            raise SystemExit("the server exited: " + (work / f"{name}.log").read_text())
        time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server did not start within 120 s: {work / f'{name}.log'}")


def stop_server(server):
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=120)


async def held_connections(port, keys, prompt):
    """Opens every connection first and holds them all open, then sends one
    request on each; reads each answer to the end. Returns the counts."""
    body = json.dumps({"model": "mnemo", "prompt": prompt, "max_tokens": args.new_tokens, "temperature": 0,
                       "ignore_eos": True}).encode()
    started = time.perf_counter()
    results = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in keys),
                                   return_exceptions=True)
    connected = [r for r in results if not isinstance(r, BaseException)]
    connect_errors = [type(r).__name__ for r in results if isinstance(r, BaseException)]
    open_seconds = time.perf_counter() - started
    await asyncio.sleep(1.0)  # all of them held open and idle at once

    async def one(connection, key):
        reader, writer = connection
        began = time.perf_counter()
        try:
            writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                         b"Content-Type: application/json\r\nAuthorization: Bearer " + key.encode() +
                         b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), timeout=600)
        except Exception as e:  # noqa: BLE001
            return {"error": type(e).__name__, "seconds": time.perf_counter() - began}
        finally:
            writer.close()
        head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else 0
        retry_after = any(line.lower().startswith("retry-after:") for line in head[1:])
        return {"status": status, "retry_after": retry_after, "seconds": time.perf_counter() - began}

    answers = await asyncio.gather(*(one(c, k) for c, k in zip(connected, keys)))
    seconds = time.perf_counter() - started
    ok = [a for a in answers if a.get("status") == 200]
    limited = [a for a in answers if a.get("status") == 429]
    other = [a for a in answers if a.get("status") not in (200, 429)]
    return {"held_connections": len(keys), "connected": len(connected), "connect_errors": len(connect_errors),
            "open_seconds": open_seconds, "ok": len(ok), "rejected_429": len(limited),
            "rejected_429_without_retry_after": sum(not a["retry_after"] for a in limited),
            "errors": len(connect_errors) + len(other),
            "error_kinds": sorted({a.get("error") or str(a.get("status")) for a in other} | set(connect_errors)),
            "seconds": seconds,
            "ok_seconds_p50": percentile([a["seconds"] for a in ok], 50),
            "ok_seconds_max": max((a["seconds"] for a in ok), default=None),
            "rejected_seconds_p50": percentile([a["seconds"] for a in limited], 50),
            "rejected_seconds_max": max((a["seconds"] for a in limited), default=None)}


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
    server, url = start_server(work, "serve", 
        f"threads: {args.threads}\nkeys_file: keys.yaml\nlimits: {{queue: {4 * max_clients + 16}}}\n"
        f"engine: {{max_batch_tokens: 512, max_sequences: {max_clients}, kv_memory_mb: 1024, "
        f"adapter_slots: {max_clients}, adapter_rank_capacity: {args.rank}}}\n")
    try:
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
        stop_server(server)
    if args.held:
        # One descriptor per connection on this side too.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = args.held + 256
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard) if hard != resource.RLIM_INFINITY
                                                        else wanted, hard))
        server, url = start_server(work, "held",
            f"threads: {args.threads}\nkeys_file: keys.yaml\nlimits: {{queue: {args.held_queue}}}\n"
            f"engine: {{max_batch_tokens: 512, max_sequences: {args.held_queue}, kv_memory_mb: 1024, "
            f"adapter_slots: {max_clients}, adapter_rank_capacity: {args.rank}}}\n")
        try:
            chosen = [keys[users[i % len(users)]] for i in range(args.held)]
            row = {"clients": args.held, "users": f"held open, queue {args.held_queue}",
                   "new_tokens": args.new_tokens}
            row.update(asyncio.run(held_connections(int(url.rsplit(":", 1)[1]), chosen, prompt)))
            print(json.dumps(row), flush=True)
        finally:
            stop_server(server)


main()
