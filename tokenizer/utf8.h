// UTF-8 primitives, with Rust's rules for invalid input (so the tokenizer's
// decode matches `tokenizers` byte for byte); shared by the tokenizer and
// the evaluation's answer matching. Defined in unicode_text.cpp.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

size_t utf8_sequence_length(unsigned char lead);  // 0 for a byte that cannot start one
// Offset of the first byte that is not valid UTF-8, or nullopt.
std::optional<size_t> first_invalid_utf8(std::string_view text);
// Like Rust's String::from_utf8_lossy: each maximal invalid subpart -> U+FFFD.
std::string utf8_lossy(std::string_view bytes);
void append_utf8(std::string& out, char32_t code_point);
// Splits valid UTF-8 into its characters.
std::vector<std::string_view> utf8_characters(std::string_view text);
// REQUIRES: one valid UTF-8 character.
char32_t decode_utf8_character(std::string_view character);

}  // namespace mnemo
