"""Small trained tokenizers and what `tokenizers` / `transformers` make of a
corpus of hard strings and chat conversations (part of make_reference_models.py).

Writes out/tokenizers/<name>/{tokenizer.json, tokenizer_config.json} for
  bytelevel      byte-level BPE, Llama-3/Qwen2 Split regex + ByteLevel(use_regex=False),
                 ignore_merges, BOS by TemplateProcessing; ChatML template of Qwen2
  llama3         the same tokenizer with Llama 3's chat template
  smollm         GPT-2/SmolLM2 style: Digits(individual) + ByteLevel(use_regex=True);
                 SmolLM2's ChatML template with its default system prompt
  spm            SentencePiece-style BPE, Llama-2 style: Prepend/Replace normalizer,
                 byte_fallback <0xNN> tokens, <unk> fused; Llama 2 chat template
  spm_metaspace  the same model with a Metaspace(prepend_scheme=first) pre-tokenizer
                 and Metaspace decoder; Mistral's chat template
and out/tokenizers/expected.json with ids, decodes and chat renderings.
Everything is trained here, offline, on text this script generates.
"""
import json
import random
import shutil
from pathlib import Path

NAMES = ["bytelevel", "llama3", "smollm", "spm", "spm_metaspace"]

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

QWEN2_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                  "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
                  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

SMOLLM2_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                    "{% endif %}")

LLAMA3_TEMPLATE = ("{% set loop_messages = messages %}{% for message in loop_messages %}"
                   "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ "
                   "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
                   "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
                   "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

LLAMA2_TEMPLATE = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
                   "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
                   "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
                   "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                   "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
                   "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
                   "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
                   "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
                   "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
                   "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")

MISTRAL_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
                    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
                    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
                    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
                    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
                    "roles are supported!') }}{% endif %}{% endfor %}")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.", "I'm sure they'll say it's fine, isn't it?",
    "Café, naïve, résumé, déjà vu, façade, Zürich, Ærøskøbing, São Paulo, Kraków.",
    "Ünïcödé àccénts are everywhere: élève, garçon, señor, mañana, Straße.",
    "東京は日本の首都です。今日はいい天気ですね。", "我爱自然语言处理，机器学习很有趣。", "안녕하세요, 만나서 반갑습니다.",
    "Привет, как дела? Всё хорошо, спасибо.", "Γειά σου κόσμε, τι κάνεις;", "مرحبا بالعالم", "שלום עולם",
    "Emoji: 😀 😂 🎉 👍🏽 ❤️ 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷", "def add(a, b):\n    return a + b\n",
    "for (int i = 0; i < n; ++i) { sum += x[i] * 2; }", "if x == 3.14159: print(f\"{x:.2f}\")",
    "Numbers: 0 1 2 3 42 1234567890 3.14159 2026-11-20 +1-555-0100 $1,000,000.00",
    "Tabs\tand\tnewlines\n\nand   runs   of   spaces.", "  leading spaces and trailing  ",
    "hello world hello world hello there general kenobi", "user assistant system memory adapter",
    "Mnemo gives every user a memory that lives in the weights of the model.",
    "Alice lives in Lisbon and her cat is called Pixel.", "Bob likes green tea, jazz and long walks.",
]


def corpus():
    rng = random.Random(1234)
    lines = []
    for _ in range(40):
        for s in SENTENCES:
            words = s.split(" ")
            rng.shuffle(words)
            lines.append(s)
            lines.append(" ".join(words))
            lines.append(str(rng.randint(0, 10 ** rng.randint(1, 9))) + " " + s.lower())
    return lines


HARD_STRINGS = [
    "", " ", "  ", "\n", "\n\n\n", "\t", " \t \n ", "a", "Hello", " Hello", "  Hello", "Hello world",
    "Hello  world", "Hello   world  ", "hello\nworld", "hello\n\nworld\n", "line1\r\nline2",
    "I'm", "I'M", "they'll", "we've", "she'd", "don't", "DON'T", "it's", "'s", "''", "'",
    "café", "CAFÉ", "naïve résumé", "Zürich Straße", "ñ", "Ã©", "e\u0301",
    "東京", "日本語のテキスト", "中文字符", "한국어", "Привет мир", "Ελληνικά",
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇩🇪", "a😀b", "❤️", "\u200d", "\ufeffbom",
    "0", "7", "42", "123", "1234", "12345", "1234567890123456789", "3.14159", "1,000,000", "-17",
    "2026-11-20T18:02:00Z", "x²+y²", "٣٤٥", "①②", "Ⅻ",
    "def f(x):\n    return x ** 2\n", "{\"key\": [1, 2, 3]}", "a+b=c", "<div class=\"x\">y</div>",
    "!!!", "...", "???!!!", "—", "«quote»", "\\n", "\\xff", "<0xFF>", "<0x41>", "\ufffd", "\u0000", "\u007f",
    "word " * 50, "ab" * 100, "😀" * 10, " " * 17, "\n" * 9,
    "The quick brown fox jumps over the lazy dog.",
    "Mnemo gives every user a memory that lives in the weights of the model.",
]

SPECIAL_STRINGS = {
    "bytelevel": ["<|im_start|>user\nhi<|im_end|>\n", "a<|im_end|>b", "<|begin_of_text|>Hello",
                  "x <tool> y", "x<tool>y", "x   <tool>   y", "<|im_start|><|im_end|>", "<|im_start", "<|endoftext|>"],
    "llama3": ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", "<|eot_id|>"],
    "smollm": ["<|im_start|>user\nhi<|im_end|>\n", "<|endoftext|>", "a<|im_start|>b", "1<|im_end|>2"],
    "spm": ["<s>Hello</s>", "Hello <s> world", "<unk>", "a</s>b", " <s> ", "[INST] hi [/INST]"],
    "spm_metaspace": ["<s>Hello</s>", "Hello <s> world", "<unk>", "</s> x", "[INST] hi [/INST]"],
}

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke."}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "  spaced  "},
     {"role": "assistant", "content": " ok \n"}, {"role": "user", "content": "Ünïcödé 😀\nsecond line"}],
    [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    [{"role": "user", "content": ""}],
]


def train_bytelevel(specials, pre_tokenizer, post_processor, ignore_merges, vocab_size):
    from tokenizers import Tokenizer, decoders, models, trainers
    from tokenizers import pre_tokenizers as pt
    tokenizer = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pt.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus(), trainer)
    if post_processor is not None:
        tokenizer.post_processor = post_processor
    return tokenizer


def make_bytelevel():
    from tokenizers import AddedToken, Regex, processors
    from tokenizers import pre_tokenizers as pt
    specials = ["<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>",
                "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    pre = pt.Sequence([pt.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
                       pt.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    post = processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                         special_tokens=[("<|begin_of_text|>", 1)])
    tokenizer = train_bytelevel(specials, pre, post, True, 1500)
    tokenizer.add_tokens([AddedToken("<tool>", special=False, normalized=False, lstrip=True, rstrip=True)])
    return tokenizer


def make_smollm():
    from tokenizers import processors
    from tokenizers import pre_tokenizers as pt
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    pre = pt.Sequence([pt.Digits(individual_digits=True),
                       pt.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    return train_bytelevel(specials, pre, processors.ByteLevel(trim_offsets=False), False, 1200)


def make_spm(metaspace):
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from tokenizers import pre_tokenizers as pt
    specials = ["<unk>", "<s>", "</s>"]
    trained = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    trained.pre_tokenizer = pt.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=specials, show_progress=False)
    trained.train_from_iterator(corpus(), trainer)
    data = json.loads(trained.to_str())
    # SentencePiece puts the 256 byte tokens right after the specials; shift the rest.
    vocab = {}
    for token, index in sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1]):
        vocab[token] = index if index < 3 else index + 256
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = 3 + byte
    data["model"]["vocab"] = vocab
    for added in data["added_tokens"]:
        added["id"] = vocab[added["content"]]
    tokenizer = Tokenizer.from_str(json.dumps(data))
    if metaspace:
        tokenizer.normalizer = None
        tokenizer.pre_tokenizer = pt.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tokenizer.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first"),
                                               decoders.ByteFallback(), decoders.Fuse()])
    else:
        tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tokenizer.pre_tokenizer = None
        tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                               decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                             special_tokens=[("<s>", 1)])
    return tokenizer


def write_dir(directory, tokenizer, template, bos, eos, extra=None):
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos,
              "chat_template": template, "clean_up_tokenization_spaces": False, "model_max_length": 4096}
    config.update(extra or {})
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))


def render_all(directory, log):
    from transformers import PreTrainedTokenizerFast
    fast = PreTrainedTokenizerFast.from_pretrained(str(directory))
    out = []
    for messages in CONVERSATIONS:
        for add_generation_prompt in [False, True]:
            case = {"messages": messages, "add_generation_prompt": add_generation_prompt}
            try:
                case["rendered"] = fast.apply_chat_template(messages, tokenize=False,
                                                            add_generation_prompt=add_generation_prompt)
            except Exception as error:  # the template raises (roles must alternate, ...)
                case["error"] = str(error)
            out.append(case)
    return out


def build(out: Path, log):
    from tokenizers import Tokenizer
    root = out / "tokenizers"
    if root.exists():
        shutil.rmtree(root)
    bytelevel = make_bytelevel()
    specs = {
        "bytelevel": (bytelevel, QWEN2_TEMPLATE, "<|begin_of_text|>", "<|im_end|>", "chatml"),
        "llama3": (bytelevel, LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>", "llama3"),
        "smollm": (make_smollm(), SMOLLM2_TEMPLATE, "<|im_start|>", "<|im_end|>", "chatml"),
        "spm": (make_spm(False), LLAMA2_TEMPLATE, "<s>", "</s>", "llama2"),
        "spm_metaspace": (make_spm(True), MISTRAL_TEMPLATE, "<s>", "</s>", "mistral"),
    }
    expected = {"tokenizers": {}, "chat": {}}
    for name, (tokenizer, template, bos, eos, family) in specs.items():
        directory = root / name
        write_dir(directory, tokenizer, template, bos, eos)
        reloaded = Tokenizer.from_file(str(directory / "tokenizer.json"))
        cases = []
        # The last string is long (a prompt of ~13k characters) so every pre-tokenizer path and the word
        # cache see real text.
        for text in HARD_STRINGS + SPECIAL_STRINGS[name] + ["\n".join(corpus()[:300])]:
            with_special = reloaded.encode(text, add_special_tokens=True).ids
            without = reloaded.encode(text, add_special_tokens=False).ids
            cases.append({"text": text, "ids": with_special, "ids_no_special": without,
                          "decoded": reloaded.decode(with_special, skip_special_tokens=False),
                          "decoded_skip_special": reloaded.decode(with_special, skip_special_tokens=True),
                          "decoded_no_special": reloaded.decode(without, skip_special_tokens=False)})
        expected["tokenizers"][name] = {"vocab_size": reloaded.get_vocab_size(with_added_tokens=True),
                                        "cases": cases}
        expected["chat"][name] = {"family": family, "bos_token": bos, "eos_token": eos,
                                  "conversations": render_all(directory, log)}
        log(f"tokenizer {name}: vocab {reloaded.get_vocab_size(with_added_tokens=True)}, {len(cases)} strings")
    (root / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False))
