#!/usr/bin/env python3
"""Slow test of configs/nginx/mnemo.conf: starts two `mnemo serve` replicas on
loopback ports and Debian's nginx in front of them with the shipped config
(only its ports changed), then checks that each user's requests always reach
the same replica (a consistent hash of the API key) while both replicas get
users, and that when one replica stops, its users' requests go to the other
and every request still succeeds. Which replica served a request is read from
the replicas' own request counters (/metrics with the admin key).
Exits 1 if any check failed."""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--mnemo", required=True)
parser.add_argument("--model", required=True, help="a small model (the tiny reference Llama)")
parser.add_argument("--config", required=True, help="configs/nginx/mnemo.conf")
parser.add_argument("--work", required=True, help="scratch directory (emptied first)")
parser.add_argument("--users", type=int, default=16)
args = parser.parse_args()
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        failures.append(name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, process, what, log):
    for _ in range(600):
        if process.poll() is not None:
            sys.exit(f"{what} exited with {process.returncode}:\n{Path(log).read_text()}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    sys.exit(f"{what} did not answer at {url} within 60 s:\n{Path(log).read_text()}")


nginx = shutil.which("nginx") or "/usr/sbin/nginx"
if not os.access(nginx, os.X_OK):
    sys.exit("nginx is not installed: scripts/setup.sh installs Debian's nginx")
work = Path(args.work)
shutil.rmtree(work, ignore_errors=True)
(work / "nginx" / "logs").mkdir(parents=True)

users = [f"user{i:02d}" for i in range(args.users)]
keys = {user: f"sk-nginx-{user}-0000000000" for user in users}
admin = "sk-nginx-admin-00000000000"
(work / "keys.yaml").write_text("keys:\n" + "".join(f"  - {{key: {k}, role: user, user: {u}}}\n"
                                                     for u, k in keys.items())
                                + f"  - {{key: {admin}, role: admin}}\n")
(work / "serve.yaml").write_text("keys_file: keys.yaml\nthreads: 1\n")

front, ports = free_port(), [free_port(), free_port()]
replicas = []
for i, port in enumerate(ports):
    log = work / f"replica{i}.log"
    replicas.append(subprocess.Popen(
        [args.mnemo, "serve", "--config", str(work / "serve.yaml"), "--model", args.model,
         "--registry", str(work / "no-registry"), "--port", str(port)],
        stdout=open(log, "w"), stderr=subprocess.STDOUT))
for i, port in enumerate(ports):
    wait_for(f"http://127.0.0.1:{port}/health", replicas[i], f"replica {i}", work / f"replica{i}.log")

# The shipped config with the test's ports, inside a minimal nginx.conf.
shipped = Path(args.config).read_text()
for old, new in (("127.0.0.1:8001", f"127.0.0.1:{ports[0]}"), ("127.0.0.1:8002", f"127.0.0.1:{ports[1]}"),
                 ("listen 8000;", f"listen 127.0.0.1:{front};")):
    if old not in shipped:
        sys.exit(f"{args.config} no longer contains {old!r}: update this test with it")
    shipped = shipped.replace(old, new)
temp = "".join(f"    {kind}_temp_path {work / 'nginx' / kind};\n"
               for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
(work / "nginx" / "nginx.conf").write_text(
    ("user root;\n" if os.geteuid() == 0 else "") +
    f"worker_processes 1;\ndaemon off;\npid {work / 'nginx' / 'nginx.pid'};\n"
    f"error_log {work / 'nginx' / 'logs' / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
    f"http {{\n    access_log {work / 'nginx' / 'logs' / 'access.log'};\n{temp}{shipped}\n}}\n")
nginx_log = work / "nginx" / "logs" / "stderr.log"
proxy = subprocess.Popen([nginx, "-p", str(work / "nginx"), "-c", str(work / "nginx" / "nginx.conf"),
                          "-e", str(work / "nginx" / "logs" / "error.log")],
                         stdout=open(nginx_log, "w"), stderr=subprocess.STDOUT)
try:
    wait_for(f"http://127.0.0.1:{front}/health", proxy, "nginx", nginx_log)

    def served(port):
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {admin}"},
                         timeout=30).text
        found = re.search(r'mnemo_http_requests_total\{route="/v1/completions",status="200"\} (\S+)', text)
        return float(found.group(1)) if found else 0.0

    def ask(user):
        """One completion through nginx; returns its status and which replicas' counters moved."""
        alive = [i for i, r in enumerate(replicas) if r.poll() is None]
        before = {i: served(ports[i]) for i in alive}
        response = httpx.post(f"http://127.0.0.1:{front}/v1/completions", timeout=60,
                              headers={"Authorization": f"Bearer {keys[user]}"},
                              json={"model": "mnemo", "prompt": "Hello", "max_tokens": 2, "temperature": 0})
        return response.status_code, [i for i in alive if served(ports[i]) > before[i]]

    home = {}
    for user in users:
        seen = set()
        for _ in range(3):
            status, moved = ask(user)
            check(f"{user}'s request through nginx succeeds on one replica", status == 200 and len(moved) == 1,
                  f"status {status}, replicas {moved}")
            seen.update(moved)
        check(f"{user}'s requests all reach the same replica", len(seen) == 1, f"replicas {sorted(seen)}")
        home[user] = min(seen) if seen else -1
    counts = [sum(1 for h in home.values() if h == i) for i in range(2)]
    check("both replicas serve users", counts[0] > 0 and counts[1] > 0, f"users per replica {counts}")

    # One replica stops: its users go to the other, and nobody gets an error.
    stopped = 0 if counts[0] else 1
    replicas[stopped].send_signal(signal.SIGTERM)
    check("the stopped replica exits 0", replicas[stopped].wait(timeout=60) == 0, str(replicas[stopped].returncode))
    for user in users:
        status, moved = ask(user)
        check(f"with replica {stopped} stopped, {user}'s request succeeds on the other",
              status == 200 and moved == [1 - stopped], f"status {status}, replicas {moved}")
finally:
    proxy.send_signal(signal.SIGQUIT)
    try:
        proxy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proxy.kill()
    for replica in replicas:
        if replica.poll() is None:
            replica.send_signal(signal.SIGTERM)
            replica.wait(timeout=60)

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
