#!/usr/bin/env python3
"""A nightly job killed at random moments finishes its work (issue 15, item 3).

Runs `mnemo train --registry R --job-dir J` on generated users with a short
schedule and SIGKILLs it after a random delay, again and again, until a run
ends on its own; then checks what the job promises:
  - every user's job ended published (none skipped, none failed);
  - no double publish: each user has exactly one version in the registry, and
    it names this job;
  - no user trained twice to completion (the job's records count it);
  - the registry verifies (no torn state);
  - each published adapter equals what one uninterrupted run trains (so a
    resumed training went on from its checkpoint exactly: weights, AdamW
    moments, example stream).
Prints where each kill landed (the last log line of the killed run).
"""
import argparse
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

CONFIG = """schedule:
  steps: 6
  examples_per_step: 2
  retention_per_step: 1
  max_sequence_tokens: 128
data:
  augmentation: false
  retention_prompts: 2
  retention_answer_tokens: 8
  abstention_probes: 2
job:
  checkpoint_every: 2
gate:
  max_questions: 2
  answer_tokens: 8
  retention_tokens: 64
"""


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnemo", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--kills", type=int, default=15, help="run whole jobs, each killed until a run finishes it, until this many kills")
    parser.add_argument("--max-delay", type=float, default=20.0, help="a kill comes 0.2..this many seconds after a start")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = pathlib.Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    generated = run([args.mnemo, "eval", "generate", "--users", str(args.users), "--seed", "1", "--out", str(work / "bench")])
    assert generated.returncode == 0, generated.stderr
    (work / "tiny.yaml").write_text(CONFIG)
    common = ["train", "--logs", str(work / "bench" / "logs"), "--config", str(work / "tiny.yaml")]

    # The reference: one uninterrupted run.
    started = time.time()
    reference = run([args.mnemo, *common, "--out", str(work / "reference")], env=env)
    assert reference.returncode == 0, reference.stderr[-3000:]
    print(f"uninterrupted run: {time.time() - started:.0f} s", flush=True)

    users = sorted(p.stem for p in (work / "bench" / "logs").iterdir())
    total_kills, rounds, failures = 0, 0, []
    while total_kills < args.kills and not failures:
        rounds += 1
        kills = run_killed_job(args, rng, env, common, work / f"round{rounds}")
        total_kills += kills
        failures = check_round(args, work / f"round{rounds}", work / "reference", users)
        print(f"round {rounds}: {kills} kills, {'FAILED' if failures else 'ok'}", flush=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"ok: {total_kills} kills over {rounds} jobs; every time each of the {len(users)} users was trained to "
          "completion once, published once, equal to the uninterrupted run, and the registry verified")
    return 0


def run_killed_job(args, rng, env, common, work):
    """Starts the job in `work` and kills it after random delays until a run finishes it; returns the kills."""
    work.mkdir(parents=True)
    job_command = [args.mnemo, *common, "--registry", str(work / "registry"), "--job-dir", str(work / "job"),
                   "--summary", str(work / "summary.json")]
    kills = 0
    for attempt in range(1, 100):
        log_path = work / f"run{attempt:02d}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(job_command, stdout=log, stderr=subprocess.STDOUT, env=env)
            delay = rng.uniform(0.2, args.max_delay)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                lines = [l for l in log_path.read_text().splitlines() if l.strip()]
                print(f"  kill after {delay:.1f} s; last line: {lines[-1][:140] if lines else '(none)'}", flush=True)
                continue
        output = log_path.read_text()
        assert process.returncode == 0, f"{log_path} exited {process.returncode}:\n{output[-3000:]}"
        return kills
    raise AssertionError(f"{work}: the job never finished")


def check_round(args, work, reference, users):
    """What a finished job promises; returns what failed."""
    from safetensors.numpy import load_file
    import numpy as np
    failures = []
    summary = json.loads((work / "summary.json").read_text())
    job_id = summary["job"]["id"]
    states = {e["user"]: e["state"] for e in summary["users"]}
    if sorted(states) != users:
        return [f"the summary lists {sorted(states)}, the logs hold {users}"]
    if not all(s == "published" for s in states.values()):
        failures.append(f"not every user was published: {states}")
    for user in users:
        listed = run([args.mnemo, "adapters", "--registry", str(work / "registry"), "--json", "show", user])
        if listed.returncode != 0:
            failures.append(f"{user}: adapters show failed: {listed.stderr}")
            continue
        versions = json.loads(listed.stdout)["versions"]
        if len(versions) != 1:
            failures.append(f"{user}: {len(versions)} versions in the registry (a double publish)")
        elif versions[0]["metrics"].get("job") != job_id or not versions[0]["live"]:
            failures.append(f"{user}: the version is not this job's live one: {versions[0]['metrics'].get('job')}")
        record = json.loads((work / "job" / "users" / f"{user}.json").read_text())
        if record["state"] != "published":
            failures.append(f"{user}: the job's record says {record['state']}")
        if record["trainings_completed"] != 1:
            failures.append(f"{user}: trained to completion {record['trainings_completed']} times")
        if record["job"] != job_id:
            failures.append(f"{user}: the record is of job {record['job']}, the summary's is {job_id}")
        exported = work / "exported" / user
        out = run([args.mnemo, "adapters", "--registry", str(work / "registry"), "export", user, str(exported)])
        if out.returncode != 0:
            failures.append(f"{user}: export failed: {out.stderr}")
            continue
        got = load_file(str(exported / "adapter_model.safetensors"))
        want = load_file(str(reference / user / "adapter_model.safetensors"))
        if sorted(got) != sorted(want):
            failures.append(f"{user}: the published adapter has other tensors than the reference")
            continue
        difference = max(float(np.max(np.abs(got[k] - want[k]))) for k in got)
        scale = max(float(np.max(np.abs(want[k]))) for k in want)
        print(f"  {user}: runs {record['runs']}, max |published - uninterrupted| = {difference:.3g} "
              f"(weights up to {scale:.3g})", flush=True)
        if difference > 1e-5 * max(scale, 1e-3):
            failures.append(f"{user}: the published adapter differs from the uninterrupted run's by {difference}")
    verify = run([args.mnemo, "adapters", "--registry", str(work / "registry"), "verify"])
    if verify.returncode != 0:
        failures.append(f"adapters verify exited {verify.returncode}: {verify.stdout}{verify.stderr}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
