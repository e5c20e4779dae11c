// Hand-written text folding for answer matching. Full Unicode normalization
// (NFKC with case folding) would need ICU, which is not among the project's
// dependencies; this covers what answers to personal questions contain
// (Latin names and places with accents, typographic quotes and dashes,
// fullwidth forms, ligatures, Greek and Cyrillic case) and is unit-tested.
#include "eval/answer_text.h"

#include "tokenizer/utf8.h"

#include <cstdint>
#include <string_view>

namespace mnemo {
namespace {

// Base letters of U+0100..U+017F (Latin Extended-A), one per code point;
// '*' marks the ligatures Ĳ ĳ Œ œ, spelled out in fold_code_point.
constexpr std::string_view kLatinExtendedA =
    "aaaaaaccccccccdd"
    "ddeeeeeeeeeegggg"
    "gggghhhhiiiiiiii"
    "ii**jjkkklllllll"
    "lllnnnnnnnnnoooo"
    "oo**rrrrrrssssss"
    "ssttttttuuuuuuuu"
    "uuuuwwyyyzzzzzzs";

// Base letters of U+00C0..U+00FF; '*' for Æ Þ ß æ þ, '=' for × and ÷ (kept).
constexpr std::string_view kLatin1 =
    "aaaaaa*ceeeeiiii"
    "dnooooo=ouuuuy**"
    "aaaaaa*ceeeeiiii"
    "dnooooo=ouuuuy*y";
static_assert(kLatinExtendedA.size() == 0x80 && kLatin1.size() == 0x40);

// The length of the valid UTF-8 character at `text[i]` (its code point in
// `code_point`), or 0 when the bytes there are not one.
size_t decode(std::string_view text, size_t i, char32_t* code_point) {
  const size_t length = utf8_sequence_length(static_cast<unsigned char>(text[i]));
  if (length == 0 || i + length > text.size()) return 0;
  const std::string_view character = text.substr(i, length);
  if (first_invalid_utf8(character)) return 0;
  *code_point = decode_utf8_character(character);
  return length;
}

// Appends the folded form of one code point ("" for marks and zero-width).
void fold_code_point(char32_t c, std::string& out) {
  if (c < 0x80) {
    out += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  if (c >= 0xC0 && c <= 0xFF) {
    char base = kLatin1[c - 0xC0];
    if (base == '=') return append_utf8(out, c);
    if (base != '*') {
      out += base;
      return;
    }
    out += (c == 0xC6 || c == 0xE6) ? "ae" : (c == 0xDE || c == 0xFE) ? "th" : "ss";
    return;
  }
  if (c >= 0x100 && c <= 0x17F) {
    char base = kLatinExtendedA[c - 0x100];
    if (base != '*') {
      out += base;
      return;
    }
    out += (c == 0x132 || c == 0x133) ? "ij" : "oe";
    return;
  }
  if (c >= 0x300 && c <= 0x36F) return;                            // combining marks (decomposed accents)
  if ((c >= 0x200B && c <= 0x200D) || c == 0xFEFF || c == 0xAD) return;  // zero-width, soft hyphen
  if (c == 0xA0 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000) {
    out += ' ';
    return;
  }
  if (c == 0x2018 || c == 0x2019 || c == 0x201A || c == 0x201B || c == 0x2032) {
    out += '\'';
    return;
  }
  if (c == 0x201C || c == 0x201D || c == 0x201E || c == 0x2033) {
    out += '"';
    return;
  }
  if ((c >= 0x2010 && c <= 0x2015) || c == 0x2212) {
    out += '-';
    return;
  }
  if (c == 0x2026) {
    out += "...";
    return;
  }
  if (c >= 0xFF01 && c <= 0xFF5E) return fold_code_point(c - 0xFEE0, out);  // fullwidth ASCII
  if (c >= 0xFB00 && c <= 0xFB04) {
    constexpr const char* kLigatures[] = {"ff", "fi", "fl", "ffi", "ffl"};
    out += kLigatures[c - 0xFB00];
    return;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return append_utf8(out, c + 0x20);  // Greek capitals
  if (c >= 0x410 && c <= 0x42F) return append_utf8(out, c + 0x20);                // Cyrillic А..Я
  if (c >= 0x400 && c <= 0x40F) return append_utf8(out, c + 0x50);                // Cyrillic Ѐ..Џ
  append_utf8(out, c);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// A byte that belongs to a word: ASCII letters and digits, and every byte of
// a non-ASCII character (folded text keeps only letters there, in practice).
bool is_word_byte(char c) {
  auto b = static_cast<unsigned char>(c);
  return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b >= 0x80;
}

}  // namespace

std::string fold_for_matching(std::string_view text) {
  std::string folded;
  folded.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t c = 0;
    size_t length = decode(text, i, &c);
    if (length == 0) {  // invalid byte: kept, so nothing silently disappears
      folded += text[i++];
      continue;
    }
    fold_code_point(c, folded);
    i += length;
  }
  std::string collapsed;
  collapsed.reserve(folded.size());
  for (char c : folded) {
    if (is_space(c)) {
      if (!collapsed.empty() && collapsed.back() != ' ') collapsed += ' ';
    } else {
      collapsed += c;
    }
  }
  if (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
  return collapsed;
}

bool contains_folded(std::string_view haystack, std::string_view needle) {
  std::string folded_needle = fold_for_matching(needle);
  if (folded_needle.empty()) return false;
  return fold_for_matching(haystack).find(folded_needle) != std::string::npos;
}

bool contains_folded_phrase(std::string_view haystack, std::string_view needle) {
  std::string folded_needle = fold_for_matching(needle);
  if (folded_needle.empty()) return false;
  std::string folded = fold_for_matching(haystack);
  for (size_t at = folded.find(folded_needle); at != std::string::npos; at = folded.find(folded_needle, at + 1)) {
    size_t end = at + folded_needle.size();
    bool starts_word = at == 0 || !is_word_byte(folded[at - 1]) || !is_word_byte(folded_needle.front());
    bool ends_word = end == folded.size() || !is_word_byte(folded[end]) || !is_word_byte(folded_needle.back());
    if (starts_word && ends_word) return true;
  }
  return false;
}

}  // namespace mnemo
