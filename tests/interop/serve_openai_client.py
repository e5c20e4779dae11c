#!/usr/bin/env python3
"""Drives a running `mnemo serve` with the real `openai` client (and raw httpx
where the client would hide what is checked) and compares its answers with
the expectations the C++ test computed with `mnemo generate`. Prints one line
per check; exits 1 if any failed."""
import argparse
import asyncio
import collections
import concurrent.futures
import json
import os
import re
import resource
import signal
import sys
import threading
import time

import httpx
import openai

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--base-url", required=True)
parser.add_argument("--cases", required=True, help="JSON written by the C++ test")
parser.add_argument("--server-pid", type=int, required=True, help="sent SIGTERM at the end, mid-request")
parser.add_argument("--drain-min-ms", type=int, required=True, help="the server's drain_min_ms")
args = parser.parse_args()
cases = json.load(open(args.cases))
keys = cases["keys"]
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        failures.append(name)


def client(key, retries=0):
    return openai.OpenAI(base_url=args.base_url, api_key=key, max_retries=retries, timeout=120)


prompt, chat_prompt, max_tokens = cases["prompt"], cases["chat_prompt"], cases["max_tokens"]
greedy = dict(temperature=0, max_tokens=max_tokens)

# Each user's key gets that user's adapter's greedy answer, equal to `mnemo generate --adapter`.
for user, expected in cases["completion"].items():
    key = keys[user] if user in keys else keys["service"]
    extra = {} if user in keys else ({"user": user} if user != "base" else {})
    response = client(key).completions.create(model="mnemo", prompt=prompt, **greedy, **extra)
    check(f"completion for {user} equals mnemo generate", response.choices[0].text == expected,
          f"{response.choices[0].text!r} != {expected!r}")
    want = "mnemo-base" if user in ("base", "nobody") else f"mnemo-{user}-v1"
    check(f"completion for {user} says who served it", response.system_fingerprint == want,
          response.system_fingerprint)
    check(f"completion for {user} has usage", 0 < response.usage.completion_tokens <= max_tokens
          and response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens,
          str(response.usage))
check("alice and bob get different answers", cases["completion"]["alice"] != cases["completion"]["bob"])

# A service key names the end user; alice's key cannot reach bob's memory by naming him.
response = client(keys["service"]).completions.create(model="mnemo", prompt=prompt, user="alice", **greedy)
check("a service key naming alice gets alice's memory", response.choices[0].text == cases["completion"]["alice"])
response = client(keys["alice"]).completions.create(model="mnemo", prompt=prompt, user="bob", **greedy)
check("alice's key naming bob still gets alice's memory", response.choices[0].text == cases["completion"]["alice"])

# Chat, plain and streamed.
chat = client(keys["alice"]).chat.completions.create(
    model="mnemo", messages=[{"role": "user", "content": chat_prompt}], **greedy)
check("chat for alice equals mnemo generate --chat", chat.choices[0].message.content == cases["chat"]["alice"],
      f"{chat.choices[0].message.content!r} != {cases['chat']['alice']!r}")
check("chat role is assistant", chat.choices[0].message.role == "assistant")
pieces, usage = [], None
for chunk in client(keys["alice"]).chat.completions.create(
        model="mnemo", messages=[{"role": "user", "content": chat_prompt}], stream=True,
        stream_options={"include_usage": True}, **greedy):
    if chunk.usage:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
check("streamed chat adds up to the plain answer", "".join(pieces) == cases["chat"]["alice"], repr("".join(pieces)))
check("streamed chat ends with usage", usage is not None and usage.completion_tokens == chat.usage.completion_tokens,
      str(usage))
text = "".join(c.choices[0].text for c in client(keys["bob"]).completions.create(
    model="mnemo", prompt=prompt, stream=True, **greedy) if c.choices)
check("streamed completion adds up to the plain answer", text == cases["completion"]["bob"], repr(text))

# Errors arrive as the client's own exception classes.
def raises(name, exception, call):
    try:
        call()
    except exception as e:
        check(name, True)
        return e
    except Exception as e:  # noqa: BLE001
        check(name, False, f"raised {type(e).__name__}: {e}")
        return None
    check(name, False, "no error")


raises("a wrong key is 401", openai.AuthenticationError,
       lambda: client("sk-wrong-key-0000000000").completions.create(model="mnemo", prompt=prompt, **greedy))
raises("an unknown model is 404", openai.NotFoundError,
       lambda: client(keys["alice"]).completions.create(model="gpt-4", prompt=prompt, **greedy))
raises("negative max_tokens is 400", openai.BadRequestError,
       lambda: client(keys["alice"]).completions.create(model="mnemo", prompt=prompt, max_tokens=-5))
raises("empty messages is 400", openai.BadRequestError,
       lambda: client(keys["alice"]).chat.completions.create(model="mnemo", messages=[], max_tokens=4))
raises("n = 2 is 400", openai.BadRequestError,
       lambda: client(keys["alice"]).completions.create(model="mnemo", prompt=prompt, n=2, **greedy))
raises("a prompt longer than the context is 400", openai.BadRequestError,
       lambda: client(keys["alice"]).completions.create(model="mnemo", prompt="word " * 400, **greedy))
raw = httpx.post(args.base_url + "/completions", headers={"Authorization": f"Bearer {keys['alice']}"},
                 json={"model": "mnemo", "prompt": "x" * 3_000_000, "max_tokens": 4})
check("a body over the limit is 413 with OpenAI's error body",
      raw.status_code == 413 and "error" in raw.json(), f"{raw.status_code} {raw.text[:200]}")
root = args.base_url.removesuffix("/v1")
raw = httpx.get(root + "/metrics", headers={"Authorization": f"Bearer {keys['alice']}"})
check("metrics need an admin key (403)", raw.status_code == 403, str(raw.status_code))
raw = httpx.post(args.base_url + "/completions", content=b"{not json",
                 headers={"Authorization": f"Bearer {keys['alice']}"})
check("malformed JSON is 400 with OpenAI's error body",
      raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error", raw.text)
raw = httpx.post(args.base_url + "/completions", content=b'{"model":"mnemo","prompt":"\xff\xfe"}',
                 headers={"Authorization": f"Bearer {keys['alice']}"})
check("invalid UTF-8 is 400", raw.status_code == 400, raw.text)

# Many users at once, each with its own memory (the client retries 429s).
users = list(cases["completion"].keys())
def one(i):
    user = users[i % len(users)]
    key = keys[user] if user in keys else keys["service"]
    extra = {"user": user} if user not in keys and user != "base" else {}
    return user, client(key, retries=8).completions.create(model="mnemo", prompt=prompt, **greedy, **extra)
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    results = list(pool.map(one, range(16)))
wrong = [u for u, r in results if r.choices[0].text != cases["completion"][u]]
check("16 concurrent clients each get their own user's answer", not wrong, f"wrong for {wrong}")

# Past the queue limit: 429 with Retry-After, never a failure of another kind.
def raw_one(_):
    return httpx.post(args.base_url + "/completions", timeout=120,
                      headers={"Authorization": f"Bearer {keys['alice']}"},
                      json={"model": "mnemo", "prompt": prompt, "max_tokens": 128, "temperature": 0,
                            "ignore_eos": True})
with concurrent.futures.ThreadPoolExecutor(32) as pool:
    statuses = [r.status_code for r in pool.map(raw_one, range(32))]
limited = [s for s in statuses if s == 429]
check("a full queue answers 429", len(limited) > 0 and set(statuses) <= {200, 429}, str(statuses))

# A client that leaves mid-stream: its request is cancelled and its KV blocks come back.
def engine_gauge(name):
    text = httpx.get(root + "/metrics", headers={"Authorization": f"Bearer {keys['admin']}"}).text
    return float(re.search(r'mnemo_engine\{quantity="%s"\} (\S+)' % name, text).group(1))
cancelled_before = engine_gauge("requests_cancelled")
with httpx.stream("POST", args.base_url + "/completions", timeout=120,
                  headers={"Authorization": f"Bearer {keys['alice']}"},
                  json={"model": "mnemo", "prompt": prompt, "max_tokens": 200, "temperature": 0,
                        "stream": True, "ignore_eos": True}) as stream:
    lines = stream.iter_lines()
    next(lines)
    next(lines)
free = total = None
for _ in range(100):
    text = httpx.get(root + "/metrics", headers={"Authorization": f"Bearer {keys['admin']}"}).text
    free = re.search(r'mnemo_engine\{quantity="kv_blocks_free"\} (\S+)', text).group(1)
    total = re.search(r'mnemo_engine\{quantity="kv_blocks_total"\} (\S+)', text).group(1)
    running = re.search(r'mnemo_engine\{quantity="running_sequences"\} (\S+)', text).group(1)
    if free == total and float(running) == 0:
        break
    time.sleep(0.1)
check("a client gone mid-stream frees its KV blocks", free == total, f"{free} of {total} free")
check("... because its request was cancelled", engine_gauge("requests_cancelled") == cancelled_before + 1,
      f"{engine_gauge('requests_cancelled')} cancelled, {cancelled_before} before")

for path in ("/made-up-1", "/made-up-2"):
    httpx.get(root + path)
admin = httpx.get(root + "/metrics", headers={"Authorization": f"Bearer {keys['admin']}"})
check("metrics for the admin", admin.status_code == 200 and "mnemo_time_to_first_token_seconds" in admin.text
      and 'mnemo_http_requests_total{route="/v1/completions",status="429"}' in admin.text, admin.text[:300])
check("made-up paths share one metrics label", "made-up" not in admin.text
      and 'mnemo_http_requests_total{route="other",status="404"}' in admin.text)

# A burst of connections opened at once, each then asking /health: all are
# answered (the listen backlog is not cpp-httplib's 5, which reset some).
async def burst(n):
    host, port = root.removeprefix("http://").rsplit(":", 1)
    opened = await asyncio.gather(*(asyncio.open_connection(host, int(port)) for _ in range(n)),
                                  return_exceptions=True)
    async def ask(connection):
        if isinstance(connection, BaseException):
            return type(connection).__name__
        reader, writer = connection
        try:
            writer.write(f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            return (await asyncio.wait_for(reader.read(), 60)).split(b" ", 2)[1].decode()
        except Exception as e:  # noqa: BLE001
            return type(e).__name__
        finally:
            writer.close()
    return await asyncio.gather(*(ask(c) for c in opened))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < 1300:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1300 if hard == resource.RLIM_INFINITY else min(1300, hard), hard))
answers = asyncio.run(burst(1000))
check("1,000 connections opened at once are all answered", answers == ["200"] * 1000,
      str(collections.Counter(answers)))

# vLLM's admin routes: only an admin key may load or unload; a loaded
# adapter is served to requests that arrive after the registry poll picks it up.
admin_case = cases["admin_load"]
dave = admin_case["user"]
def load(key, route, body):
    return httpx.post(args.base_url + route, headers={"Authorization": f"Bearer {key}"}, json=body, timeout=60)
def served_for_dave():
    response = client(keys["service"]).completions.create(model="mnemo", prompt=prompt, user=dave, **greedy)
    return response.choices[0].text, response.system_fingerprint
text, fingerprint = served_for_dave()
check("a user with no adapter yet gets the base model", fingerprint == "mnemo-base"
      and text == cases["completion"]["base"], f"{fingerprint} {text!r}")
raw = load(keys["alice"], "/load_lora_adapter", {"lora_name": dave, "lora_path": admin_case["path"]})
check("a user key may not load an adapter (403)", raw.status_code == 403, f"{raw.status_code} {raw.text}")
raw = load(keys["service"], "/unload_lora_adapter", {"lora_name": "alice"})
check("a service key may not unload an adapter (403)", raw.status_code == 403, f"{raw.status_code} {raw.text}")
raw = load(keys["admin"], "/load_lora_adapter", {"lora_name": dave})
check("a load without lora_path is 400 naming it", raw.status_code == 400
      and raw.json()["error"]["param"] == "lora_path", f"{raw.status_code} {raw.text}")
raw = load(keys["admin"], "/load_lora_adapter", {"lora_name": dave, "lora_path": admin_case["path"] + "-missing"})
check("a load of a missing directory is an error, not a 500", raw.status_code in (400, 404), f"{raw.status_code}")
raw = load(keys["admin"], "/load_lora_adapter", {"lora_name": dave, "lora_path": admin_case["path"]})
check("the admin key loads dave's adapter as version 1", raw.status_code == 200 and raw.json().get("version") == 1,
      f"{raw.status_code} {raw.text}")
for _ in range(100):
    text, fingerprint = served_for_dave()
    if fingerprint != "mnemo-base":
        break
    time.sleep(0.05)
check("after the load dave gets his adapter, equal to mnemo generate --adapter",
      fingerprint == f"mnemo-{dave}-v1" and text == admin_case["completion"], f"{fingerprint} {text!r}")
raw = load(keys["admin"], "/unload_lora_adapter", {"lora_name": dave})
check("the admin key unloads dave's adapter", raw.status_code == 200, f"{raw.status_code} {raw.text}")
text, fingerprint = served_for_dave()
check("after an unload dave's next request loads it again from the registry",
      fingerprint == f"mnemo-{dave}-v1" and text == admin_case["completion"], f"{fingerprint} {text!r}")

# SIGTERM while a request runs: health says draining, a new request gets 503,
# the running stream finishes whole; the C++ test then checks the exit code 0.
# The drain lasts as long as the four requests (each fills the model's
# context, 256 tokens) and at least drain_min_ms.
probe = client(keys["alice"]).completions.create(model="mnemo", prompt=prompt, max_tokens=1, temperature=0)
drain_tokens = 255 - probe.usage.prompt_tokens
stream_text, stream_done, stream_usage = [], threading.Event(), {}
started = threading.Event()
def long_stream():
    with httpx.stream("POST", args.base_url + "/completions", timeout=120,
                      headers={"Authorization": f"Bearer {keys['bob']}"},
                      json={"model": "mnemo", "prompt": prompt, "max_tokens": drain_tokens, "temperature": 0,
                            "stream": True, "ignore_eos": True,
                            "stream_options": {"include_usage": True}}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                stream_done.set()
                break
            chunk = json.loads(line[len("data: "):])
            if chunk.get("usage"):
                stream_usage.update(chunk["usage"])
            for choice in chunk.get("choices", []):
                stream_text.append(choice.get("text", ""))
            started.set()
# Beside it, a plain request of each user: the drain waits for all of them.
plain = {}
def long_plain(user):
    plain[user] = httpx.post(args.base_url + "/completions", timeout=120,
                             headers={"Authorization": f"Bearer {keys[user]}"},
                             json={"model": "mnemo", "prompt": prompt, "max_tokens": drain_tokens,
                                   "temperature": 0, "ignore_eos": True})
after_sigterm = client(keys["alice"])  # built before: building a client takes time
# SIGTERM only once all four run. On the tiny model they take well under a
# second, so on a loaded machine the stream can end before the fourth starts:
# then that round is let finish and a new one started (the server is still up).
for attempt in range(10):
    stream_text, stream_done, stream_usage, started, plain = [], threading.Event(), {}, threading.Event(), {}
    others = [threading.Thread(target=long_plain, args=(user,)) for user in ("alice", "admin", "service")]
    reader = threading.Thread(target=long_stream)
    for thread in others + [reader]:
        thread.start()
    if not started.wait(60):
        break
    while not stream_done.is_set() and engine_gauge("running_sequences") < 1 + len(others):
        time.sleep(0.001)
    if not stream_done.is_set():
        break
    for thread in others + [reader]:
        thread.join(120)
check("the long request started streaming", started.is_set(), f"after {attempt + 1} rounds")
running_at_sigterm = not stream_done.is_set()
sigterm_at = time.monotonic()
os.kill(args.server_pid, signal.SIGTERM)
health = None
for _ in range(1000):
    health = httpx.get(root + "/health", timeout=10)
    if health.status_code == 503:
        break
    time.sleep(0.002)
check("after SIGTERM health says draining (503)", health.status_code == 503 and health.json()["status"] == "draining",
      f"{health.status_code} {health.text}")
raised = raises("after SIGTERM a new request gets 503", openai.InternalServerError,
                lambda: after_sigterm.completions.create(model="mnemo", prompt=prompt, **greedy))
check("... with OpenAI's error body and code draining", raised is not None and raised.status_code == 503
      and isinstance(raised.body, dict) and raised.body.get("error", raised.body).get("code") == "draining",
      str(raised and raised.body))
reader.join(120)
for thread in others:
    thread.join(120)
check("the plain requests running at SIGTERM finished whole",
      all(r.status_code == 200 and r.json()["usage"]["completion_tokens"] == drain_tokens for r in plain.values())
      and len(plain) == len(others), str({u: r.status_code for u, r in plain.items()}))
# Whether it still runs when the 503 comes is up to the machine's speed (the
# four can finish within 0.1 s); drain_min_ms keeps the port open either way.
check("the stream had not ended when SIGTERM was sent", running_at_sigterm)
# The port stays open, saying draining, for drain_min_ms after SIGTERM.
last_draining = sigterm_at
while time.monotonic() - sigterm_at < 30:
    try:
        if httpx.get(root + "/health", timeout=10).status_code != 503:
            break
        last_draining = time.monotonic()
    except httpx.TransportError:
        break
    time.sleep(0.02)
check("health said draining for drain_min_ms, then the port closed",
      args.drain_min_ms / 1e3 <= last_draining - sigterm_at + 0.1 < 30,
      f"last draining answer {last_draining - sigterm_at:.2f} s after SIGTERM")
check("the request running at SIGTERM finished whole with [DONE]", stream_done.is_set()
      and stream_usage.get("completion_tokens") == drain_tokens,
      f"done={stream_done.is_set()} usage={stream_usage}")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
