// The words of a sentence, for the hand-written English rules of
// user_statements.cpp and statement_changes.cpp (see user_statements.h):
// word boundaries, lower case, the common words that carry nothing specific,
// and the nouns after "my".
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace mnemo::sentence_words {

// ASCII lower case.
std::string lower(std::string_view text);

// Letters, digits, apostrophes, hyphens and every non-ASCII byte.
bool is_word_char(char c);

struct Word {
  size_t begin, end;  // byte range in the sentence
  std::string text;
};

// The words of `text`, trailing apostrophes and hyphens left out.
std::vector<Word> words_of(std::string_view text);

// The most frequent English words and the verbs people use to talk about
// themselves: a word outside this list (and not a pronoun) is specific enough
// that an answer about it must keep it.
const std::unordered_set<std::string>& common_words();

// "Robin's" → "Robin".
std::string strip_possessive(std::string word);

// Nouns after "my": "my dog's name" → dog; "my older sister Robin" → sister
// (the first word that is not an adjective we know, up to two words in).
std::vector<std::string> topics_of(std::string_view sentence);

// The name said with "my {topic}" (a one-word topic): "my rabbit Hercules",
// "my sister is called Micah", "my dog's name is Biscuit", "Reagan, my
// boyfriend"; "" when the sentence does not put one there ("my sister lives
// in Oslo" names a city, not her).
std::string name_of_topic(std::string_view sentence, const std::string& topic);

}  // namespace mnemo::sentence_words
