// How an answer is compared with a fact's value: both are folded (Unicode
// compatibility forms, case, accents, typographic punctuation, whitespace)
// and then searched as a substring, or as a whole phrase for leakage.
#pragma once

#include <string>
#include <string_view>

namespace mnemo {

// Folds `text` for matching: fullwidth ASCII and ligatures to their plain
// letters, Latin letters with diacritics to the base letter (decomposed or
// precomposed), case to lower (Latin, Greek, Cyrillic), curly quotes to
// straight ones, dashes to '-', every run of whitespace to one space, trimmed.
// Invalid UTF-8 bytes are kept as they are.
std::string fold_for_matching(std::string_view text);

// Whether folded `needle` occurs anywhere in folded `haystack` (the question
// format's rule for `answers` and `stale`). An empty needle never matches.
bool contains_folded(std::string_view haystack, std::string_view needle);

// Like contains_folded, but the match must start and end at a word boundary
// (no letter or digit on either side): "Rome" is not found in "Romeo".
bool contains_folded_phrase(std::string_view haystack, std::string_view needle);

}  // namespace mnemo
