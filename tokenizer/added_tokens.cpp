// Added tokens (special or not) are cut out of the text before anything else
// sees it. `tokenizers` uses an Aho-Corasick automaton in leftmost-longest
// mode; a first-byte index with candidates sorted longest first finds the same
// matches, and there are only tens to a few hundred added tokens.
#include <algorithm>
#include <cctype>

#include "tokenizer/tokenizer_parts.h"

namespace mnemo::tokenizer_detail {
namespace {

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }
bool is_space_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

void AddedTokenMatcher::add(const AddedToken& token, std::string pattern) {
  if (pattern.empty()) return;
  tokens_.push_back({std::move(pattern), token});
  size_t index = tokens_.size() - 1;
  auto& bucket = by_first_byte_[static_cast<unsigned char>(tokens_[index].pattern[0])];
  bucket.push_back(index);
  std::stable_sort(bucket.begin(), bucket.end(),
                   [&](size_t a, size_t b) { return tokens_[a].pattern.size() > tokens_[b].pattern.size(); });
}

std::vector<TextPiece> AddedTokenMatcher::split(std::string_view text, const Accept& accept) const {
  std::vector<TextPiece> pieces;
  size_t piece_start = 0;  // end of the previous kept match, with its stripped spaces
  size_t search = 0;       // where the automaton resumes: after the previous match proper
  while (search < text.size()) {
    const Entry* found = nullptr;
    size_t at = search;
    for (; at < text.size() && !found; ++at) {
      for (size_t index : by_first_byte_[static_cast<unsigned char>(text[at])]) {
        const Entry& entry = tokens_[index];
        if (text.compare(at, entry.pattern.size(), entry.pattern) == 0) {
          found = &entry;
          break;
        }
      }
    }
    if (!found) break;
    size_t start = at - 1, stop = start + found->pattern.size();
    const AddedToken& token = found->token;
    if (accept && !accept(start, stop, token)) {
      search = start + 1;
      continue;
    }
    search = stop;
    if (token.single_word) {
      bool left_ok = start == 0 || !is_word_byte(static_cast<unsigned char>(text[start - 1]));
      bool right_ok = stop == text.size() || !is_word_byte(static_cast<unsigned char>(text[stop]));
      if (!left_ok || !right_ok) continue;
    }
    if (token.lstrip) {
      size_t new_start = start;
      while (new_start > 0 && is_space_byte(text[new_start - 1])) --new_start;
      start = std::max(new_start, piece_start);  // spaces already eaten by the previous match stay there
    }
    if (token.rstrip) {
      while (stop < text.size() && is_space_byte(text[stop])) ++stop;
      search = stop;
    }
    if (start > piece_start) pieces.push_back({text.substr(piece_start, start - piece_start), -1, piece_start});
    pieces.push_back({text.substr(start, stop - start), token.id, start});
    piece_start = stop;
  }
  if (piece_start < text.size()) pieces.push_back({text.substr(piece_start), -1, piece_start});
  return pieces;
}

}  // namespace mnemo::tokenizer_detail
