// tokenizer.json and tokenizer_config.json built from GGUF tokenizer.*
// metadata, so mnemo::Tokenizer::from_json reads a GGUF model's tokenizer
// like any Hugging Face one.
//
// Hand-written: it mirrors transformers' GGUF tokenizer conversion
// (integrations/ggml.py: GGUFLlamaConverter for general.architecture llama,
// GGUFQwen2Converter for qwen2/qwen3), because "ids identical to
// transformers loading the same GGUF" is the contract. Notable consequences,
// kept on purpose:
//  - for llama with a "gpt2" tokenizer (Llama 3, SmolLM) the pre-tokenizer
//    is ByteLevel with the GPT-2 regex; `tokenizer.ggml.pre` is not used
//    (transformers ignores it too); BPE keeps byte_fallback as transformers sets it;
//  - only control tokens (token_type 3) become added special tokens;
//  - SentencePiece-style ("llama") files without merges get merges built
//    from the scores exactly as GGUFTokenizerSkeleton does.
// One deliberate difference: the post-processor adds BOS/EOS according to
// tokenizer.ggml.add_bos_token / add_eos_token (what llama.cpp does and the
// model was trained with); transformers 5 ignores those keys and adds none.
#include "model/gguf.h"

#include "model/error.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace mnemo {
namespace {

using nlohmann::json;

constexpr int kTokenTypeControl = 3;
const char* const kSpiecePrefix = "\xE2\x96\x81";  // "▁"

std::optional<std::string> token_for(const GgufFile& file, const std::vector<std::string>& tokens,
                                     const std::string& key) {
  if (!file.has(key)) return std::nullopt;
  int64_t id = file.get_int(key);
  if (id < 0 || id >= static_cast<int64_t>(tokens.size()))
    fail("{}: metadata '{}' = {} is not a token id (the vocabulary has {} tokens)", file.path(), key, id,
         tokens.size());
  return tokens[id];
}

json added_token(int64_t id, const std::string& content) {
  return {{"id", id},           {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},    {"normalized", false}, {"special", true}};
}

json string_pattern(const std::string& text) { return {{"String", text}}; }

// Byte offsets of UTF-8 character starts inside `text` (excluding 0 and the end).
std::vector<size_t> char_boundaries(const std::string& text) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < text.size(); ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) cuts.push_back(i);
  return cuts;
}

// GGUFTokenizerSkeleton's merges for a vocabulary with scores but no merges:
// every split of every token into two tokens, ranked by the token's score
// (ties: by the pieces' scores, then vocabulary order; Python's sorts are stable).
std::vector<std::pair<std::string, std::string>> merges_from_scores(const std::vector<std::string>& tokens,
                                                                    const std::vector<double>& scores) {
  std::unordered_map<std::string, double> score_of;  // later duplicates win, as in a dict
  std::vector<const std::string*> order;              // first-occurrence order, as dict keys keep
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!score_of.count(tokens[i])) order.push_back(&tokens[i]);
    score_of[tokens[i]] = scores[i];
  }
  struct Merge {
    std::string left, right;
    double score;
  };
  std::vector<Merge> merges;
  for (const std::string* piece : order) {
    std::vector<Merge> local;
    for (size_t cut : char_boundaries(*piece)) {
      std::string left = piece->substr(0, cut), right = piece->substr(cut);
      if (score_of.count(left) && score_of.count(right)) local.push_back({left, right, score_of[*piece]});
    }
    std::stable_sort(local.begin(), local.end(), [&](const Merge& a, const Merge& b) {
      double al = score_of[a.left], bl = score_of[b.left];
      if (al != bl) return al > bl;
      return score_of[a.right] > score_of[b.right];
    });
    for (Merge& m : local) merges.push_back(std::move(m));
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (Merge& m : merges) out.emplace_back(std::move(m.left), std::move(m.right));
  return out;
}

std::vector<std::pair<std::string, std::string>> read_merges(const GgufFile& file) {
  std::vector<std::pair<std::string, std::string>> merges;
  for (const std::string& merge : file.get_string_array("tokenizer.ggml.merges")) {
    size_t space = merge.find(' ');
    if (space == std::string::npos || merge.find(' ', space + 1) != std::string::npos)
      fail("{}: tokenizer.ggml.merges entry '{}' is not two tokens separated by one space", file.path(), merge);
    merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
  }
  return merges;
}

json template_processing(const std::optional<std::string>& bos, int64_t bos_id, const std::optional<std::string>& eos,
                         int64_t eos_id) {
  auto sequence = [](const char* id, int type_id) { return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
  auto special = [](const std::string& id, int type_id) {
    return json{{"SpecialToken", {{"id", id}, {"type_id", type_id}}}};
  };
  json single = json::array(), pair = json::array(), specials = json::object();
  if (bos) {
    single.push_back(special(*bos, 0));
    specials[*bos] = {{"id", *bos}, {"ids", {bos_id}}, {"tokens", {*bos}}};
  }
  single.push_back(sequence("A", 0));
  if (eos) {
    single.push_back(special(*eos, 0));
    specials[*eos] = {{"id", *eos}, {"ids", {eos_id}}, {"tokens", {*eos}}};
  }
  pair = single;
  if (bos) pair.push_back(special(*bos, 1));
  pair.push_back(sequence("B", 1));
  if (eos) pair.push_back(special(*eos, 1));
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

bool default_add_bos(const GgufFile& file) {
  // llama.cpp's default when the key is absent: SentencePiece vocabularies add BOS.
  return file.get_bool_or("tokenizer.ggml.add_bos_token", file.get_string("tokenizer.ggml.model") == "llama");
}

}  // namespace

json gguf_tokenizer_json(const GgufFile& file) {
  std::string arch = file.get_string("general.architecture");
  std::string model_type = file.get_string("tokenizer.ggml.model");
  std::vector<std::string> tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (tokens.empty()) fail("{}: tokenizer.ggml.tokens is empty", file.path());
  bool qwen = arch == "qwen2" || arch == "qwen3";
  if (!qwen && arch != "llama")
    fail("{}: no tokenizer conversion for general.architecture '{}'", file.path(), arch);
  if (model_type != "gpt2" && model_type != "llama")
    fail("{}: tokenizer.ggml.model '{}' is not supported (Mnemo reads \"gpt2\" byte-level BPE and \"llama\" "
         "SentencePiece-style BPE)",
         file.path(), model_type);

  std::vector<std::pair<std::string, std::string>> merges;
  if (file.has("tokenizer.ggml.merges")) {
    merges = read_merges(file);
  } else if (!qwen && file.has("tokenizer.ggml.scores")) {
    std::vector<double> scores = file.get_float_array("tokenizer.ggml.scores");
    if (scores.size() != tokens.size())
      fail("{}: tokenizer.ggml.scores has {} entries for {} tokens", file.path(), scores.size(), tokens.size());
    merges = merges_from_scores(tokens, scores);
  } else {
    fail("{}: tokenizer.ggml.merges is missing (and there are no scores to build merges from)", file.path());
  }

  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = static_cast<int64_t>(i);  // last duplicate wins
  json merges_json = json::array();
  for (auto& [left, right] : merges) merges_json.push_back(json::array({left, right}));

  json out;
  out["version"] = "1.0";
  out["truncation"] = nullptr;
  out["padding"] = nullptr;
  json added = json::array();
  std::optional<std::string> bos = token_for(file, tokens, "tokenizer.ggml.bos_token_id");
  std::optional<std::string> eos = token_for(file, tokens, "tokenizer.ggml.eos_token_id");
  std::optional<std::string> unk = token_for(file, tokens, "tokenizer.ggml.unknown_token_id");

  if (qwen) {
    // GGUFQwen2Converter: Qwen2Converter's byte-level BPE plus three fixed specials.
    out["model"] = {{"type", "BPE"},           {"dropout", nullptr},      {"unk_token", nullptr},
                    {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false},
                    {"byte_fallback", false},   {"ignore_merges", false},  {"vocab", vocab},
                    {"merges", merges_json}};
    for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"})
      if (vocab.contains(special)) added.push_back(added_token(vocab[special].get<int64_t>(), special));
    out["normalizer"] = {{"type", "NFC"}};
    bool add_prefix_space = file.get_bool_or("tokenizer.ggml.add_space_prefix", false);
    out["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex",
              R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}, {"use_regex", false}}}}};
    out["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  } else {
    // GGUFLlamaConverter.
    bool spm = model_type == "llama";
    out["model"] = {{"type", "BPE"},
                    {"dropout", nullptr},
                    {"unk_token", unk ? json(*unk) : json(nullptr)},
                    {"continuing_subword_prefix", nullptr},
                    {"end_of_word_suffix", nullptr},
                    {"fuse_unk", true},
                    {"byte_fallback", true},
                    {"ignore_merges", false},
                    {"vocab", vocab},
                    {"merges", merges_json}};
    std::unordered_set<int64_t> seen;
    if (file.has("tokenizer.ggml.token_type")) {
      std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
      if (types.size() != tokens.size())
        fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", file.path(), types.size(), tokens.size());
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (types[i] != kTokenTypeControl) continue;
        int64_t id = vocab[tokens[i]].get<int64_t>();
        if (seen.insert(id).second) added.push_back(added_token(id, tokens[i]));
      }
    }
    // The tokenizer class then registers its unk/bos/eos tokens as specials
    // too; the converter names tokens[bos_token_id] for both BOS and EOS (so
    // EOS is special only if it is a control token), mirrored for parity.
    for (const auto& token : {unk, bos})
      if (token) {
        int64_t id = vocab[*token].get<int64_t>();
        if (seen.insert(id).second) added.push_back(added_token(id, *token));
      }
    // add_space_prefix absent means true (the converter's default), even for
    // byte-level vocabularies, where it only adds a Strip to the decoder.
    bool add_prefix_space = file.get_bool_or("tokenizer.ggml.add_space_prefix", true);
    json decoders = json::array({{{"type", "ByteFallback"}},
                                 {{"type", "Fuse"}},
                                 {{"type", "Replace"}, {"pattern", string_pattern(kSpiecePrefix)}, {"content", " "}}});
    if (spm) {
      json normalizers = json::array();
      if (add_prefix_space) normalizers.push_back({{"type", "Prepend"}, {"prepend", kSpiecePrefix}});
      normalizers.push_back({{"type", "Replace"}, {"pattern", string_pattern(" ")}, {"content", kSpiecePrefix}});
      out["normalizer"] = {{"type", "Sequence"}, {"normalizers", normalizers}};
      out["pre_tokenizer"] = nullptr;
    } else {
      out["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array()}};
      out["pre_tokenizer"] = {
          {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}};
      decoders.push_back({{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}});
    }
    if (add_prefix_space) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    out["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  }
  std::sort(added.begin(), added.end(), [](const json& a, const json& b) { return a["id"] < b["id"]; });
  out["added_tokens"] = added;

  bool add_bos = default_add_bos(file) && bos.has_value();
  bool add_eos = file.get_bool_or("tokenizer.ggml.add_eos_token", false) && eos.has_value();
  out["post_processor"] =
      template_processing(add_bos ? bos : std::nullopt, add_bos ? vocab[*bos].get<int64_t>() : 0,
                          add_eos ? eos : std::nullopt, add_eos ? vocab[*eos].get<int64_t>() : 0);
  return out;
}

json gguf_tokenizer_config(const GgufFile& file) {
  std::vector<std::string> tokens = file.get_string_array("tokenizer.ggml.tokens");
  auto token_or_null = [&](const std::string& key) {
    auto token = token_for(file, tokens, key);
    return token ? json(*token) : json(nullptr);
  };
  json config;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  config["bos_token"] = token_or_null("tokenizer.ggml.bos_token_id");
  config["eos_token"] = token_or_null("tokenizer.ggml.eos_token_id");
  config["unk_token"] = token_or_null("tokenizer.ggml.unknown_token_id");
  config["pad_token"] = token_or_null("tokenizer.ggml.padding_token_id");
  config["add_bos_token"] = default_add_bos(file) && file.has("tokenizer.ggml.bos_token_id");
  config["add_eos_token"] = file.get_bool_or("tokenizer.ggml.add_eos_token", false);
  config["clean_up_tokenization_spaces"] = false;
  std::string arch = file.get_string("general.architecture");
  config["model_max_length"] = file.get_int_or(arch + ".context_length", 2048);
  if (file.has("tokenizer.chat_template")) config["chat_template"] = file.get_string("tokenizer.chat_template");
  // Provenance, for `mnemo model convert` readers; transformers ignores unknown keys.
  config["gguf_tokenizer_model"] = file.get_string("tokenizer.ggml.model");
  config["gguf_tokenizer_pre"] = file.get_string_or("tokenizer.ggml.pre", "");
  return config;
}

}  // namespace mnemo
