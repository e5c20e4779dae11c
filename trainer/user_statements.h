// What a user said about themselves, read out of their conversations as plain
// text rules (no model): the sentences of their own turns that state
// something in the first person ("My dog's name is Biscuit.", "I finally
// moved from Lyon to Porto."), each with the topic it names ("my dog"), its
// specific content (names, numbers, uncommon words: what an answer must keep),
// the same sentence said back in the second person ("Your dog's name is
// Biscuit."), and whether a newer statement has replaced it.
//
// Hand-written: no packaged library does this kind of light English rewriting.
// The rules are deliberately generic (pronouns, "my <noun>", capitalised words,
// change cues such as "moved", "stopped", "no longer"); they never use the
// evaluation's wordings, so a statement phrased in an unseen way still counts.
#pragma once

#include "eval/interaction_log.h"  // LogRecord

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

struct UserStatement {
  std::string text;         // the sentence as the user wrote it, or its current part (see `said`)
  std::string second_person;  // said back to the user: "Your dog's name is Biscuit."
  std::vector<std::string> topics;   // nouns after "my": {"dog"}; may be empty
  std::vector<std::string> content;  // specific words an answer must keep: {"Biscuit"}
  int64_t conversation = 0;          // index in the user's time-ordered conversations
  int64_t timestamp_seconds = 0;
  bool changes_something = false;  // carries a change cue ("moved", "no longer", "switched", ...)
  bool superseded = false;         // names something a newer statement replaced
  bool replaces_something = false;  // made an older statement's content stale: the newest value of a changed fact
  // A change that named the old value beside the new one ("I moved from Lyon
  // to Porto") keeps its current part as `text` ("I moved to Porto"); `said`
  // is the sentence as the user wrote it then, and "" otherwise.
  std::string said;
};

// Splits text into sentences at . ! ? followed by a space or the end (and at
// line breaks); keeps the closing punctuation.
std::vector<std::string> split_sentences(std::string_view text);

// The first-person statements of the user's own turns in `conversations`
// (oldest first), questions and requests left out. Marks superseded ones: a
// statement with a change cue names content that earlier statements named
// ("after years in Lyon I moved to Porto"); that earlier content is stale, and
// every statement that names it is superseded, except that a change whose
// wording holds the old value apart ("from Lyon to Porto", "replaced my old
// Mazda with a Nissan", "instead of Lyon") keeps its current part instead
// ("I moved to Porto": `said` keeps the sentence as written). The change
// rules are statement_changes.h.
std::vector<UserStatement> extract_statements(const std::vector<LogRecord>& conversations);

// True when `sentence` states something in the first person rather than
// asking or requesting: what extract_statements keeps before it looks for
// specific content ("I love cooking." passes; "Should I eat first?" does not).
bool states_about_speaker(std::string_view sentence);

// First person to second: I → you, my → your, I'm → you're, me → you, … with
// the first letter capitalised.
std::string to_second_person(std::string_view sentence);

// A question the generator wrote to the user ("Who is your sister?") as the
// user asks it ("Who is my sister?"): you → I/me, your → my, are you → am I.
std::string question_to_first_person(std::string_view question);

// True when `text` speaks about its speaker (I, my, me, …).
bool about_the_speaker(std::string_view text);

// Words that name specific content in a sentence: capitalised words that do
// not start it, numbers, and words outside a list of common English words.
std::vector<std::string> specific_content(std::string_view sentence);

// True when `text` contains `word` as a whole word (ASCII case-insensitive).
bool contains_word(std::string_view text, std::string_view word);

// `text` with every `from` replaced by `to` ("{topic}" in a probe wording).
std::string replace_all(std::string text, std::string_view from, std::string_view to);

}  // namespace mnemo
