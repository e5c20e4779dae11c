#!/usr/bin/env python3
"""Builds, fully offline, everything the interop tests compare against.

Each part lives in its own module beside this file and exposes
`build(out: Path, log)`; this script runs them in order and writes a stamp so a
second run with unchanged scripts returns at once:

  reference_tokenizers.py  two small trained tokenizers (byte-level BPE and
                           SentencePiece-style BPE), hard strings with the ids
                           `tokenizers` gives, chat templates rendered by
                           `transformers`' apply_chat_template
  reference_models.py      tiny random checkpoints of every supported
                           architecture, with transformers' logits and greedy
                           tokens for a batch of prompts
  reference_gguf.py        small GGUF files of every quantization type, the
                           default model's tensors as transformers reads them
  reference_default_model.py  transformers' logits, greedy tokens, token ids
                           and chat renderings on the default model
  reference_peft.py        adapters made by peft, with peft's logits
Every expected value is computed here by the real reference library; the C++
tests only compare.
"""
import argparse
import hashlib
import importlib
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ["reference_tokenizers", "reference_models", "reference_gguf", "reference_default_model", "reference_peft"]


def log(message):
    print(f"[make_reference_models {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if the stamp matches")
    parser.add_argument("--only", nargs="*", help="build only these parts")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.path.insert(0, str(HERE))
    parts = [p for p in PARTS if (HERE / f"{p}.py").exists() and (not args.only or p in args.only)]
    digest = hashlib.sha256()
    for name in ["make_reference_models"] + parts:
        digest.update((HERE / f"{name}.py").read_bytes())
    stamp = args.out / ".stamp"
    if not args.force and not args.only and stamp.exists() and stamp.read_text() == digest.hexdigest():
        log(f"up to date in {args.out}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if stamp.exists():
        stamp.unlink()
    start = time.time()
    for name in parts:
        t0 = time.time()
        log(f"building {name}")
        importlib.import_module(name).build(args.out, log)
        log(f"{name} done in {time.time() - t0:.1f} s")
    if not args.only:
        stamp.write_text(digest.hexdigest())
    log(f"all reference data in {args.out} ({time.time() - start:.1f} s)")


if __name__ == "__main__":
    main()
