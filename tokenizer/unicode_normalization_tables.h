// Private to the tokenizer: code point ranges that NFC / NFKC leave alone (see
// unicode_normalization_tables.cpp for how they were made).
#pragma once

#include <span>

namespace mnemo::tokenizer_detail {

struct CodePointRange {
  char32_t first;
  char32_t last;
};
// Sorted, disjoint.
std::span<const CodePointRange> nfc_stable_ranges();
std::span<const CodePointRange> nfkc_stable_ranges();

}  // namespace mnemo::tokenizer_detail
