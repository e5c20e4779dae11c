// The BPE model of tokenizer.json, hand-written because no packaged C++
// library reads the Hugging Face format. Merging follows `tokenizers`'
// Word::merge_all exactly (a min-heap on (rank, position) over a linked list
// of symbols) so ties resolve identically; characters missing from the
// vocabulary go to <0xNN> byte tokens (byte_fallback) or to unk (fused when
// fuse_unk), in that order.
#include <queue>

#include "model/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_parts.h"

namespace mnemo::tokenizer_detail {
namespace {

constexpr size_t kCacheCapacity = 10000;
constexpr size_t kMaxCachedWordBytes = 256;

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Merges come as "a b" strings (older files) or ["a", "b"] pairs (newer ones,
// which allow spaces inside tokens).
std::pair<std::string, std::string> parse_merge(const nlohmann::json& merge, const JsonPlace& place) {
  if (merge.is_string()) {
    const std::string& text = merge.get_ref<const std::string&>();
    size_t space = text.find(' ');
    if (space == std::string::npos) place.fail("merge \"" + text + "\" is not two tokens separated by a space");
    if (text.find(' ', space + 1) != std::string::npos)
      place.fail("merge \"" + text + "\" has more than two parts");
    return {text.substr(0, space), text.substr(space + 1)};
  }
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string())
    return {merge[0].get<std::string>(), merge[1].get<std::string>()};
  place.fail("expected \"a b\" or [\"a\", \"b\"]");
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model, const JsonPlace& place) {
  byte_token_ids_.fill(-1);
  const nlohmann::json& vocab = place.member(model, "vocab");
  if (!vocab.is_object()) place.at("vocab").fail("expected an object of token -> id");
  if (static_cast<int64_t>(vocab.size()) > kMaxVocabulary)
    place.at("vocab").fail(fmt::format("{} tokens, more than the limit of {}", vocab.size(), kMaxVocabulary));
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX)
      place.at("vocab").at(it.key()).fail("expected a non-negative integer id");
    vocab_.emplace(it.key(), it.value().get<int32_t>());
  }

  auto prefix = model.find("continuing_subword_prefix");
  auto suffix = model.find("end_of_word_suffix");
  if ((prefix != model.end() && !prefix->is_null() && prefix->get<std::string>() != "") ||
      (suffix != model.end() && !suffix->is_null() && suffix->get<std::string>() != ""))
    place.fail("continuing_subword_prefix / end_of_word_suffix are not supported (WordPiece-style BPE)");
  auto dropout = model.find("dropout");
  if (dropout != model.end() && dropout->is_number() && dropout->get<double>() > 0.0)
    place.at("dropout").fail("BPE dropout is a training-time option and is not supported");

  byte_fallback_ = place.bool_member(model, "byte_fallback", false);
  fuse_unk_ = place.bool_member(model, "fuse_unk", false);
  ignore_merges_ = place.bool_member(model, "ignore_merges", false);
  auto unk = model.find("unk_token");
  if (unk != model.end() && !unk->is_null()) {
    if (!unk->is_string()) place.at("unk_token").fail("expected a string");
    auto id = vocab_.find(unk->get<std::string>());
    if (id == vocab_.end()) place.at("unk_token").fail("\"" + unk->get<std::string>() + "\" is not in model.vocab");
    unk_id_ = id->second;
  }
  for (int byte = 0; byte < 256; ++byte) {
    auto id = vocab_.find(fmt::format("<0x{:02X}>", byte));
    if (id != vocab_.end()) byte_token_ids_[byte] = id->second;
  }

  auto merges = model.find("merges");
  if (merges == model.end() || merges->is_null()) return;
  JsonPlace merges_place = place.at("merges");
  if (!merges->is_array()) merges_place.fail("expected an array");
  if (static_cast<int64_t>(merges->size()) > kMaxMerges)
    merges_place.fail(fmt::format("{} merges, more than the limit of {}", merges->size(), kMaxMerges));
  merges_.reserve(merges->size());
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    JsonPlace merge_place = merges_place.at(rank);
    auto [left, right] = parse_merge((*merges)[rank], merge_place);
    auto left_id = vocab_.find(left);
    if (left_id == vocab_.end()) merge_place.fail("merge names unknown token \"" + left + "\"");
    auto right_id = vocab_.find(right);
    if (right_id == vocab_.end()) merge_place.fail("merge names unknown token \"" + right + "\"");
    auto merged_id = vocab_.find(left + right);
    if (merged_id == vocab_.end())
      merge_place.fail("merged token \"" + left + right + "\" is not in model.vocab");
    // A repeated pair takes its last rank, as a Rust HashMap collect does.
    merges_[pair_key(left_id->second, right_id->second)] = {static_cast<int32_t>(rank), merged_id->second};
  }
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(std::string(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  bool cacheable = word.size() <= kMaxCachedWordBytes;
  std::string key;
  if (cacheable) {
    key.assign(word);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();  // crude but bounded; hits dominate anyway
    cache_.emplace(std::move(key), std::vector<int32_t>(out.begin() + first, out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool removed;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id) {
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, false});
    if (index > 0) symbols[index - 1].next = index;
  };
  int32_t pending_unk = -1;  // an unk waiting to be fused with the next unknown character
  for (std::string_view character : utf8_characters(word)) {
    auto it = vocab_.find(std::string(character));
    if (it != vocab_.end()) {
      if (pending_unk >= 0) add(pending_unk), pending_unk = -1;
      add(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (char byte : character) all_bytes = all_bytes && byte_token_ids_[static_cast<unsigned char>(byte)] >= 0;
      if (all_bytes) {
        // Like `tokenizers`, a pending unk is not flushed before byte tokens;
        // it lands after them. Reproduced for parity.
        for (char byte : character) add(byte_token_ids_[static_cast<unsigned char>(byte)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
      pending_unk = *unk_id_;
    }
    // Without an unk token the character is dropped, as `tokenizers` does.
  }
  if (pending_unk >= 0) add(pending_unk);

  struct Candidate {
    int32_t rank;
    int32_t position;
    int32_t new_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : position > other.position;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto lookup = [&](int32_t left, int32_t right) -> const Merge* {
    auto it = merges_.find(pair_key(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (const Merge* m = lookup(symbols[i].id, symbols[i + 1].id))
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});

  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& current = symbols[top.position];
    if (current.removed || current.next < 0) continue;
    Symbol& right = symbols[current.next];
    const Merge* still = lookup(current.id, right.id);
    if (!still || still->new_id != top.new_id) continue;  // stale entry: a neighbour merged first
    current.id = top.new_id;
    right.removed = true;
    current.next = right.next;
    if (current.next >= 0) symbols[current.next].prev = top.position;
    if (current.prev >= 0)
      if (const Merge* m = lookup(symbols[current.prev].id, current.id)) queue.push({m->rank, current.prev, m->new_id});
    if (current.next >= 0)
      if (const Merge* m = lookup(current.id, symbols[current.next].id)) queue.push({m->rank, top.position, m->new_id});
  }
  for (const Symbol& symbol : symbols)
    if (!symbol.removed) out.push_back(symbol.id);
}

}  // namespace mnemo::tokenizer_detail
