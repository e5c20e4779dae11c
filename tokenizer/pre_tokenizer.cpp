// tokenizer.json pre-tokenizers: Split, ByteLevel, Digits, Metaspace,
// Sequence. Hand-written (no packaged C++ library reads this format); the
// split behaviours reproduce `tokenizers`' NormalizedString::split so pieces,
// and therefore ids, are the same.
#include "model/error.h"
#include "tokenizer/tokenizer_parts.h"

namespace mnemo::tokenizer_detail {
namespace {

const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class Behaviour { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behaviour parse_behaviour(const nlohmann::json& json, const JsonPlace& place) {
  std::string name = place.string_member(json, "behavior");
  if (name == "Removed") return Behaviour::Removed;
  if (name == "Isolated") return Behaviour::Isolated;
  if (name == "MergedWithPrevious") return Behaviour::MergedWithPrevious;
  if (name == "MergedWithNext") return Behaviour::MergedWithNext;
  if (name == "Contiguous") return Behaviour::Contiguous;
  place.at("behavior").fail("unknown split behavior \"" + name + "\"");
}

struct Span {
  size_t begin, end;
  bool is_match;
};

// Cuts `piece` at the matches and appends the resulting non-empty pieces.
void split_piece(const PreToken& piece, const std::vector<std::pair<size_t, size_t>>& matches, Behaviour behaviour,
                 bool invert, std::vector<PreToken>& out) {
  const std::string& text = piece.text;
  std::vector<Span> spans;
  size_t previous = 0;
  for (auto [begin, end] : matches) {
    if (previous != begin) spans.push_back({previous, begin, invert});
    spans.push_back({begin, end, !invert});
    previous = end;
  }
  if (previous != text.size()) spans.push_back({previous, text.size(), invert});

  std::vector<Span> merged;
  switch (behaviour) {
    case Behaviour::Isolated:
      merged = spans;
      break;
    case Behaviour::Removed:
      for (const Span& s : spans)
        if (!s.is_match) merged.push_back(s);
      break;
    case Behaviour::MergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !merged.empty()) merged.back().end = s.end;
        else merged.push_back(s);
        previous_match = s.is_match;
      }
      break;
    }
    case Behaviour::MergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) merged.back().begin = it->begin;
        else merged.push_back(*it);
        previous_match = it->is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case Behaviour::Contiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !merged.empty()) merged.back().end = s.end;
        else merged.push_back(s);
        previous_match = s.is_match;
      }
      break;
    }
  }
  for (const Span& s : merged)
    if (s.end > s.begin) out.push_back({text.substr(s.begin, s.end - s.begin), piece.at_text_start && s.begin == 0});
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> pattern, Behaviour behaviour, bool invert)
      : pattern_(std::move(pattern)), behaviour_(behaviour), invert_(invert) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    std::vector<PreToken> out;
    out.reserve(pieces.size() * 4);
    for (const PreToken& piece : pieces) split_piece(piece, pattern_->find_all(piece.text), behaviour_, invert_, out);
    pieces = std::move(out);
  }

 private:
  std::unique_ptr<Regex> pattern_;
  Behaviour behaviour_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const JsonPlace& place)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, place);
  }
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    std::vector<PreToken> out;
    out.reserve(pieces.size() * 4);
    for (PreToken& piece : pieces) {
      if (add_prefix_space_ && !piece.text.empty() && piece.text[0] != ' ') piece.text.insert(0, 1, ' ');
      if (regex_) split_piece(piece, regex_->find_all(piece.text), Behaviour::Isolated, false, out);
      else if (!piece.text.empty()) out.push_back(std::move(piece));
    }
    const auto& map = byte_to_unicode();
    for (PreToken& piece : out) {
      std::string mapped;
      mapped.reserve(piece.text.size() * 2);
      for (char byte : piece.text) mapped += map[static_cast<unsigned char>(byte)];
      piece.text = std::move(mapped);
    }
    pieces = std::move(out);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  DigitsPreTokenizer(bool individual, const JsonPlace& place)
      : individual_(individual), regex_(individual ? R"(\p{N})" : R"(\p{N}+)", place) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    std::vector<PreToken> out;
    for (const PreToken& piece : pieces) split_piece(piece, regex_.find_all(piece.text), Behaviour::Isolated, false, out);
    pieces = std::move(out);
  }

 private:
  bool individual_;
  Regex regex_;
};

enum class PrependScheme { Always, First, Never };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    std::vector<PreToken> out;
    for (PreToken& piece : pieces) {
      std::string replaced;
      for (char c : piece.text) {
        if (c == ' ') replaced += replacement_;
        else replaced += c;
      }
      bool starts = replaced.compare(0, replacement_.size(), replacement_) == 0;
      if (!replaced.empty() && !starts &&
          (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && piece.at_text_start)))
        replaced.insert(0, replacement_);
      PreToken prepared{std::move(replaced), piece.at_text_start};
      if (!split_) {
        if (!prepared.text.empty()) out.push_back(std::move(prepared));
        continue;
      }
      std::vector<std::pair<size_t, size_t>> matches;
      for (size_t at = prepared.text.find(replacement_); at != std::string::npos;
           at = prepared.text.find(replacement_, at + replacement_.size()))
        matches.emplace_back(at, at + replacement_.size());
      split_piece(prepared, matches, Behaviour::MergedWithNext, false, out);
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    for (const auto& part : parts_) part->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

PrependScheme parse_prepend_scheme(const nlohmann::json& json, const JsonPlace& place) {
  auto scheme = json.find("prepend_scheme");
  if (scheme == json.end() || scheme->is_null()) {
    // Files written before prepend_scheme existed say add_prefix_space instead.
    return place.bool_member(json, "add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
  }
  std::string name = place.string_member(json, "prepend_scheme");
  if (name == "always") return PrependScheme::Always;
  if (name == "first") return PrependScheme::First;
  if (name == "never") return PrependScheme::Never;
  place.at("prepend_scheme").fail("unknown prepend_scheme \"" + name + "\" (always, first, never)");
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& json, const JsonPlace& place) {
  if (json.is_null()) return nullptr;
  std::string type = place.string_member(json, "type");
  if (type == "Split")
    return std::make_unique<SplitPreTokenizer>(make_pattern(place.member(json, "pattern"), place.at("pattern")),
                                               parse_behaviour(json, place), place.bool_member(json, "invert", false));
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(place.bool_member(json, "add_prefix_space", true),
                                                   place.bool_member(json, "use_regex", true), place);
  if (type == "Digits")
    return std::make_unique<DigitsPreTokenizer>(place.bool_member(json, "individual_digits", false), place);
  if (type == "Metaspace") {
    std::string replacement = place.string_member(json, "replacement");
    if (replacement.empty()) place.at("replacement").fail("must not be empty");
    return std::make_unique<MetaspacePreTokenizer>(replacement, parse_prepend_scheme(json, place),
                                                   place.bool_member(json, "split", true));
  }
  if (type == "Sequence") {
    const nlohmann::json& list = place.member(json, "pretokenizers");
    if (!list.is_array()) place.at("pretokenizers").fail("expected an array");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto part = make_pre_tokenizer(list[i], place.at("pretokenizers").at(i))) parts.push_back(std::move(part));
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  place.at("type").fail("unsupported pre_tokenizer type \"" + type +
                        "\" (supported: Split, ByteLevel, Digits, Metaspace, Sequence)");
}

}  // namespace mnemo::tokenizer_detail
