#!/usr/bin/env python3
"""llama.cpp's prefill and decode tokens/s on a GGUF file, measured by its own
tools, printed as one JSON row in bench_forward's format (bench/forward/run.sh
interleaves it with mnemo's rows).

Batch 1: llama-bench, prefill of --prompt-tokens from an empty context, and
decode of --decode-tokens after a context of --prompt-tokens (-d); best of
--repeats. Batch N > 1: llama-batched-bench, N sequences each prefilling
--prompt-tokens and then decoding --decode-tokens together (its S_PP and
S_TG speeds over all N).
"""
import argparse
import json
import pathlib
import subprocess
import sys


def run(command, both=False):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"llama.cpp: {' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout + (done.stderr if both else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the directory with llama-bench and llama-batched-bench")
    parser.add_argument("--gguf", required=True)
    parser.add_argument("--label", required=True, help="e.g. F32 or Q4_1: the weights' type, in the row's name")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    binary = pathlib.Path(args.bin)
    row = {"implementation": f"llama.cpp {args.label}", "batch": args.batch, "prompt_tokens": args.prompt_tokens,
           "decode_tokens": args.decode_tokens, "dtype": args.label, "device": "cpu", "threads": args.threads}
    if args.batch == 1:
        # --repack 0: llama.cpp's repacked quantized kernels die with SIGILL on
        # this VM (an instruction the build detects but the host does not allow).
        common = [str(binary / "llama-bench"), "-m", args.gguf, "-t", str(args.threads), "-r", str(args.repeats),
                  "-o", "json", "-ngl", "0", "--repack", "0"]
        prefill = json.loads(run(common + ["-p", str(args.prompt_tokens), "-n", "0"]))
        decode = json.loads(run(common + ["-p", "0", "-n", str(args.decode_tokens), "-d", str(args.prompt_tokens)]))
        (p,), (d,) = prefill, decode
        # Best of the repeats, as for mnemo.
        row["prefill_s"] = min(p["samples_ns"]) / 1e9
        row["decode_s"] = min(d["samples_ns"]) / 1e9
        row["llama_cpp_build"] = p.get("build_commit")
    else:
        out = run([str(binary / "llama-batched-bench"), "-m", args.gguf, "-t", str(args.threads), "-tb",
                   str(args.threads), "-ngl", "0", "-c", str(args.batch * (args.prompt_tokens + args.decode_tokens)),
                   "-npp", str(args.prompt_tokens), "-ntg", str(args.decode_tokens), "-npl", str(args.batch),
                   "--output-format", "jsonl", "--no-repack"], both=True)
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if not rows:
            sys.exit(f"llama.cpp: no JSON row from llama-batched-bench:\n{out[-2000:]}")
        r = rows[-1]
        row["prefill_s"] = r["t_pp"]
        row["decode_s"] = r["t_tg"]
    row["prefill_tokens_per_s"] = args.batch * args.prompt_tokens / row["prefill_s"]
    row["decode_tokens_per_s"] = args.batch * args.decode_tokens / row["decode_s"]
    print(json.dumps(row))


if __name__ == "__main__":
    main()
