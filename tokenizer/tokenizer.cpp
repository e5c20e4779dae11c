// Tokenizer: reads tokenizer.json into its parts (tokenizer_parts.h) and runs
// the pipeline of `tokenizers`: added tokens -> normalizer -> pre-tokenizer ->
// BPE -> post-processor; and back through the decoder. Also the stream
// decoder for generation.
#include "tokenizer/tokenizer.h"


#include "model/error.h"
#include "tokenizer/json_input.h"
#include "tokenizer/tokenizer_parts.h"

namespace mnemo {

using namespace tokenizer_detail;

struct Tokenizer::Impl {
  std::string source;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<TokenDecoder> decoder;
  AddedTokenMatcher raw_added;         // "normalized": false, matched in the raw text
  AddedTokenMatcher normalized_added;  // "normalized": true, matched after normalization
  std::unordered_map<std::string, int32_t> added_by_content;
  std::vector<std::string> tokens;  // by id; empty where no token has the id
  std::vector<bool> special;
  // What add_special_tokens puts around a single sequence.
  std::vector<int32_t> prefix_ids, suffix_ids;

  // `literal`: the piece holds text in which special tokens are not recognised.
  void encode_piece(std::string_view text, bool at_text_start, bool literal, std::vector<int32_t>& out) const;
  void parse_post_processor(const nlohmann::json& json, const JsonPlace& place);
};

namespace {

const std::string kEmpty;

// Normalizer and pre-tokenizer sequences nest a few levels; token strings are short.
constexpr JsonLimits kTokenizerJsonLimits{kMaxTokenizerFileBytes, 64, 1ull << 20};

std::vector<int32_t> special_token_ids(const nlohmann::json& special_tokens, const std::string& name,
                                       const JsonPlace& place) {
  auto it = special_tokens.find(name);
  if (it == special_tokens.end()) place.fail("template names \"" + name + "\" which special_tokens does not define");
  JsonPlace ids_place = place.at("special_tokens").at(name).at("ids");
  const nlohmann::json& ids = ids_place.member(*it, "ids");
  if (!ids.is_array()) ids_place.fail("expected an array of ids");
  std::vector<int32_t> out;
  for (const auto& id : ids) out.push_back(id.get<int32_t>());
  return out;
}

}  // namespace

void Tokenizer::Impl::parse_post_processor(const nlohmann::json& json, const JsonPlace& place) {
  if (json.is_null()) return;
  std::string type = place.string_member(json, "type");
  if (type == "ByteLevel") return;  // only trims offsets, which Mnemo does not track
  if (type == "Sequence") {
    const nlohmann::json& list = place.member(json, "processors");
    if (!list.is_array()) place.at("processors").fail("expected an array");
    for (size_t i = 0; i < list.size(); ++i) parse_post_processor(list[i], place.at("processors").at(i));
    return;
  }
  if (type == "TemplateProcessing") {
    const nlohmann::json& single = place.member(json, "single");
    const nlohmann::json& special_tokens = place.member(json, "special_tokens");
    if (!single.is_array()) place.at("single").fail("expected an array");
    bool seen_sequence = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const nlohmann::json& piece = single[i];
      if (piece.contains("Sequence")) {
        seen_sequence = true;
      } else if (piece.contains("SpecialToken")) {
        JsonPlace piece_place = place.at("single").at(i).at("SpecialToken");
        auto ids = special_token_ids(special_tokens, piece_place.string_member(piece["SpecialToken"], "id"), place);
        auto& target = seen_sequence ? suffix_ids : prefix_ids;
        target.insert(target.end(), ids.begin(), ids.end());
      } else {
        place.at("single").at(i).fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto id_of = [&](const char* key) {
      const nlohmann::json& pair = place.member(json, key);
      if (!pair.is_array() || pair.size() != 2 || !pair[1].is_number_integer())
        place.at(key).fail("expected [token, id]");
      return pair[1].get<int32_t>();
    };
    prefix_ids.push_back(id_of("cls"));
    suffix_ids.insert(suffix_ids.begin(), id_of("sep"));
    return;
  }
  place.at("type").fail("unsupported post_processor type \"" + type +
                        "\" (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  return from_json(read_json_file(path, "tokenizer file", kTokenizerJsonLimits), path);
}

Tokenizer Tokenizer::from_json_text(std::string_view text, const std::string& source) {
  return from_json(parse_json_input(text, source, kTokenizerJsonLimits), source);
}

Tokenizer Tokenizer::from_json(const nlohmann::json& json, const std::string& source) {
  auto impl = std::make_unique<Impl>();
  impl->source = source;
  JsonPlace root{impl->source, ""};
  if (!json.is_object()) root.fail("expected a JSON object at the top level");
  try {
    const nlohmann::json& model = root.member(json, "model");
    JsonPlace model_place = root.at("model");
    // Very old files leave out the model type; BPE is the only one with merges.
    std::string type = model.contains("type") ? model_place.string_member(model, "type") : "BPE";
    if (type != "BPE")
      model_place.at("type").fail("unsupported model type \"" + type + "\" (supported: BPE)");
    impl->model = std::make_unique<BpeModel>(model, model_place);
    impl->normalizer = make_normalizer(json.value("normalizer", nlohmann::json()), root.at("normalizer"));
    impl->pre_tokenizer = make_pre_tokenizer(json.value("pre_tokenizer", nlohmann::json()), root.at("pre_tokenizer"));
    impl->decoder = make_token_decoder(json.value("decoder", nlohmann::json()), root.at("decoder"));
    impl->parse_post_processor(json.value("post_processor", nlohmann::json()), root.at("post_processor"));

    int32_t max_id = -1;
    for (const auto& [token, id] : impl->model->vocab()) max_id = std::max(max_id, id);
    std::vector<AddedToken> added;
    if (auto it = json.find("added_tokens"); it != json.end() && !it->is_null()) {
      if (!it->is_array()) root.at("added_tokens").fail("expected an array");
      for (size_t i = 0; i < it->size(); ++i) {
        const nlohmann::json& entry = (*it)[i];
        JsonPlace place = root.at("added_tokens").at(i);
        AddedToken token;
        const nlohmann::json& id = place.member(entry, "id");
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
          place.at("id").fail("expected a non-negative integer id");
        token.id = id.get<int32_t>();
        token.content = place.string_member(entry, "content");
        token.single_word = place.bool_member(entry, "single_word", false);
        token.lstrip = place.bool_member(entry, "lstrip", false);
        token.rstrip = place.bool_member(entry, "rstrip", false);
        token.normalized = place.bool_member(entry, "normalized", true);
        token.special = place.bool_member(entry, "special", false);
        added.push_back(std::move(token));
      }
    }
    if (const int64_t n = static_cast<int64_t>(impl->model->vocab().size() + added.size()); n > kMaxVocabulary)
      root.fail(fmt::format("{} tokens in model.vocab and added_tokens, more than the limit of {}", n, kMaxVocabulary));
    // Ids index a table, so bound them by what the file holds before
    // allocating it: real id spaces are dense, and gaps of up to
    // kMaxUnusedTokenIds in all are allowed.
    constexpr int64_t kMaxUnusedTokenIds = 65536;
    const int64_t n_tokens = static_cast<int64_t>(impl->model->vocab().size() + added.size());
    const int64_t id_limit = n_tokens + kMaxUnusedTokenIds;
    auto beyond = [&](int64_t id) {
      return fmt::format("id {} is beyond the vocabulary ({} tokens in model.vocab and added_tokens; ids must be "
                         "below {}, leaving at most {} unused)",
                         id, n_tokens, id_limit, kMaxUnusedTokenIds);
    };
    for (const auto& [token, id] : impl->model->vocab())
      if (id >= id_limit) root.at("model").at("vocab").at(token).fail(beyond(id));
    for (size_t i = 0; i < added.size(); ++i) {
      if (added[i].id >= id_limit) root.at("added_tokens").at(i).at("id").fail(beyond(added[i].id));
      max_id = std::max(max_id, added[i].id);
    }
    impl->tokens.assign(static_cast<size_t>(max_id + 1), std::string());
    impl->special.assign(impl->tokens.size(), false);
    for (const auto& [token, id] : impl->model->vocab()) impl->tokens[id] = token;
    for (const AddedToken& token : added) {
      impl->tokens[token.id] = token.content;
      impl->special[token.id] = token.special;
      impl->added_by_content[token.content] = token.id;
      if (!token.normalized) {
        impl->raw_added.add(token, token.content);
        continue;
      }
      std::string pattern = token.content;
      if (impl->normalizer) {
        try {
          pattern = impl->normalizer->normalize(pattern);
        } catch (const Error&) {
          // content the normalizer cannot handle is matched as written
        }
      }
      impl->normalized_added.add(token, pattern);
    }
  } catch (const nlohmann::json::exception& e) {
    root.fail(std::string("malformed tokenizer: ") + e.what());
  }
  return Tokenizer(std::move(impl));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

void Tokenizer::Impl::encode_piece(std::string_view text, bool at_text_start, bool literal,
                                   std::vector<int32_t>& out) const {
  std::string normalized = normalizer ? normalizer->normalize(std::string(text)) : std::string(text);
  std::vector<TextPiece> pieces;
  // Offsets after normalization no longer map to the literal spans, so a
  // piece that holds any literal text recognises no special token at all.
  auto not_special = [](size_t, size_t, const AddedToken& token) { return !token.special; };
  if (normalized_added.empty()) pieces.push_back({normalized, -1, 0});
  else pieces = normalized_added.split(normalized, literal ? AddedTokenMatcher::Accept(not_special) : nullptr);
  for (const TextPiece& piece : pieces) {
    if (piece.added_id >= 0) {
      out.push_back(piece.added_id);
      continue;
    }
    std::vector<PreToken> words{{std::string(piece.text), at_text_start && piece.offset == 0}};
    if (pre_tokenizer) pre_tokenizer->pre_tokenize(words);
    for (const PreToken& word : words) model->tokenize(word.text, out);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return encode(text, add_special_tokens, {});
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens,
                                       std::span<const Span> literal) const {
  if (auto bad = first_invalid_utf8(text))
    fail("cannot tokenize text that is not valid UTF-8 (byte offset {})", *bad);
  auto overlaps_literal = [&](size_t begin, size_t end) {
    for (const Span& span : literal)
      if (begin < span.end && span.begin < end) return true;
    return false;
  };
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = impl_->prefix_ids;
  if (impl_->raw_added.empty()) {
    impl_->encode_piece(text, true, overlaps_literal(0, text.size()), ids);
  } else {
    auto accept = [&](size_t start, size_t stop, const AddedToken& token) {
      return !token.special || !overlaps_literal(start, stop);
    };
    for (const TextPiece& piece :
         impl_->raw_added.split(text, literal.empty() ? AddedTokenMatcher::Accept() : AddedTokenMatcher::Accept(accept))) {
      if (piece.added_id >= 0) ids.push_back(piece.added_id);
      else
        impl_->encode_piece(piece.text, piece.offset == 0,
                            overlaps_literal(piece.offset, piece.offset + piece.text.size()), ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), impl_->suffix_ids.begin(), impl_->suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= impl_->tokens.size() || impl_->tokens[id].empty()) continue;
    if (skip_special_tokens && impl_->special[id]) continue;
    tokens.push_back(impl_->tokens[id]);
  }
  if (!impl_->decoder) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) joined += (i ? " " : "") + tokens[i];
    return joined;
  }
  impl_->decoder->decode_chain(tokens);
  std::string text;
  for (const std::string& token : tokens) text += token;
  return text;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->tokens.size()); }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  std::string key(token);
  if (auto it = impl_->added_by_content.find(key); it != impl_->added_by_content.end()) return it->second;
  if (auto it = impl_->model->vocab().find(key); it != impl_->model->vocab().end()) return it->second;
  return std::nullopt;
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->tokens.size()) return kEmpty;
  return impl_->tokens[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

const std::string& Tokenizer::source() const { return impl_->source; }

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

// Decode the window with the last emitted piece as context and emit only what
// lies beyond that piece's text. Context keeps decoders that look at
// neighbours right (Metaspace and Strip treat the first token specially), and
// starting the window where all earlier text was complete keeps byte runs
// whole (ByteFallback judges a run of <0xNN> tokens as a unit). The window is
// a piece or two long, so each push costs O(1) amortised.
std::string StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  std::string text = tokenizer_->decode(ids_, skip_special_tokens_);
  // Text ending in U+FFFD may be a character whose remaining bytes are still
  // to come; hold it back until they arrive (or flush() gives up on them).
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  bool ends_incomplete = text.size() >= 3 && text.compare(text.size() - 3, 3, kReplacement) == 0;
  if (text.size() <= prefix_.size() || ends_incomplete) return "";
  MNEMO_CHECK(text.compare(0, prefix_.size(), prefix_) == 0, "stream decode of {} changed text already emitted",
              tokenizer_->source());
  std::string piece = text.substr(prefix_.size());
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(emitted_ids_));
  emitted_ids_ = ids_.size();
  prefix_ = tokenizer_->decode(ids_, skip_special_tokens_);
  return piece;
}

std::string StreamDecoder::flush() {
  std::string text = tokenizer_->decode(ids_, skip_special_tokens_);
  std::string piece = text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0
                          ? text.substr(prefix_.size())
                          : "";
  ids_.clear();
  prefix_.clear();
  emitted_ids_ = 0;
  return piece;
}

}  // namespace mnemo
