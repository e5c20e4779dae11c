// Hand-written (see the header): sentence splitting and pronoun rewriting
// for the user's own statements; the change rules are statement_changes.cpp.
#include "trainer/user_statements.h"

#include "trainer/sentence_words.h"
#include "trainer/statement_changes.h"

#include <algorithm>
#include <cctype>

namespace mnemo {
namespace {

using sentence_words::common_words;
using sentence_words::is_word_char;
using sentence_words::lower;
using sentence_words::strip_possessive;
using sentence_words::topics_of;
using sentence_words::Word;
using sentence_words::words_of;

bool starts_with_word(std::string_view lowered, std::string_view prefix) {
  return lowered.size() >= prefix.size() && lowered.substr(0, prefix.size()) == prefix &&
         (lowered.size() == prefix.size() || !is_word_char(lowered[prefix.size()]));
}

// A sentence that asks or requests rather than states.
bool is_request(std::string_view sentence) {
  std::string l = lower(sentence);
  if (!l.empty() && l.back() == '?') return true;
  static const std::vector<std::string_view> openings = {
      "can you", "could you", "would you", "will you", "please", "help me", "tell me", "show me", "give me",
      "explain", "write", "what", "how", "why", "which", "who", "where", "when", "is there", "are there",
      "do you", "does", "should i", "any", "thanks", "thank you", "ok", "okay", "great", "i wonder",
      "i was wondering", "i'd like you", "i want you", "let's", "make", "list", "suggest", "recommend"};
  for (std::string_view opening : openings)
    if (starts_with_word(l, opening)) return true;
  return false;
}

bool first_person(std::string_view sentence) {
  for (const Word& word : words_of(sentence)) {
    std::string w = lower(word.text);
    if (w == "i" || w == "i'm" || w == "i've" || w == "i'd" || w == "i'll" || w == "my" || w == "me" ||
        w == "mine" || w == "myself")
      return true;
  }
  return false;
}

}  // namespace

bool states_about_speaker(std::string_view sentence) { return !is_request(sentence) && first_person(sentence); }

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

bool contains_word(std::string_view text, std::string_view word) {
  if (word.empty()) return false;
  std::string t = lower(text), w = lower(word);
  for (size_t at = t.find(w); at != std::string::npos; at = t.find(w, at + 1)) {
    bool left = at == 0 || !is_word_char(t[at - 1]) || t[at - 1] == '\'';
    size_t end = at + w.size();
    bool right = end >= t.size() || !is_word_char(t[end]) || t[end] == '\'';
    if (left && right) return true;
  }
  return false;
}

std::vector<std::string> split_sentences(std::string_view text) {
  std::vector<std::string> sentences;
  std::string current;
  auto flush = [&] {
    size_t b = current.find_first_not_of(" \t\r\n");
    size_t e = current.find_last_not_of(" \t\r\n");
    if (b != std::string::npos) sentences.push_back(current.substr(b, e - b + 1));
    current.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') {
      flush();
      continue;
    }
    current += c;
    if ((c == '.' || c == '!' || c == '?') && (i + 1 == text.size() || text[i + 1] == ' ' || text[i + 1] == '\n')) {
      // "Mr." / "e.g." / a decimal: not an end. A short word before '.' that is
      // all-lowercase and one letter ("e.g") or a known abbreviation.
      size_t w = current.size() - 1;
      while (w > 0 && is_word_char(current[w - 1])) --w;
      std::string before = lower(std::string_view(current).substr(w, current.size() - 1 - w));
      if (c == '.' && (before == "mr" || before == "mrs" || before == "ms" || before == "dr" || before == "st" ||
                       before == "e.g" || before == "i.e" || before == "etc" || before == "vs"))
        continue;
      flush();
    }
  }
  flush();
  return sentences;
}

std::string to_second_person(std::string_view sentence) {
  std::vector<Word> words = words_of(sentence);
  std::string out;
  size_t at = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    const Word& word = words[i];
    out.append(sentence.substr(at, word.begin - at));
    at = word.end;
    std::string w = lower(word.text);
    std::string replacement = word.text;
    std::string next = i + 1 < words.size() ? lower(words[i + 1].text) : "";
    if (w == "i") {
      replacement = "you";
      if (next == "am" || next == "was") {  // "I am" → "you are", "I was" → "you were"
        replacement = next == "am" ? "you are" : "you were";
        out += replacement;
        at = words[i + 1].end;
        ++i;
        continue;
      }
    } else if (w == "i'm" || w == "i’m") replacement = "you're";
    else if (w == "i've") replacement = "you've";
    else if (w == "i'd") replacement = "you'd";
    else if (w == "i'll") replacement = "you'll";
    else if (w == "my") replacement = "your";
    else if (w == "me") replacement = "you";
    else if (w == "mine") replacement = "yours";
    else if (w == "myself") replacement = "yourself";
    else if (w == "am" && i > 0 && lower(words[i - 1].text) == "i") replacement = "are";
    // Keep the original capitalisation of the first letter.
    // "My" → "Your", but "I've" → "you've" (I is always capitalised; the
    // sentence's first letter is capitalised below).
    if (replacement != word.text && std::isupper(static_cast<unsigned char>(word.text[0])) && word.text[0] != 'I')
      replacement[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(replacement[0])));
    out += replacement;
  }
  out.append(sentence.substr(at));
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string question_to_first_person(std::string_view question) {
  static const std::unordered_set<std::string> before_object = {
      "to", "for", "with", "about", "at", "from", "of", "tell", "remind", "give", "show", "help", "call", "ask"};
  std::vector<Word> words = words_of(question);
  std::string out;
  size_t at = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    const Word& word = words[i];
    out.append(question.substr(at, word.begin - at));
    at = word.end;
    std::string w = lower(word.text);
    std::string replacement = word.text;
    bool last = i + 1 == words.size();
    if (w == "your") replacement = "my";
    else if (w == "yours") replacement = "mine";
    else if (w == "yourself") replacement = "myself";
    else if (w == "you're") replacement = "I'm";
    else if (w == "you've") replacement = "I've";
    else if (w == "you'd") replacement = "I'd";
    else if (w == "you") replacement = (last || (i > 0 && before_object.count(lower(words[i - 1].text)))) ? "me" : "I";
    else if (w == "are" && i + 1 < words.size() && lower(words[i + 1].text) == "you") replacement = "am";
    else if (w == "were" && i + 1 < words.size() && lower(words[i + 1].text) == "you") replacement = "was";
    if (replacement != word.text && std::isupper(static_cast<unsigned char>(word.text[0])) && replacement != "I" &&
        replacement.rfind("I'", 0) != 0)
      replacement[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(replacement[0])));
    out += replacement;
  }
  out.append(question.substr(at));
  return out;
}

bool about_the_speaker(std::string_view text) {
  for (const Word& word : words_of(text)) {
    std::string w = lower(word.text);
    if (w == "i" || w == "my" || w == "me" || w == "i'm" || w == "i've" || w == "myself" || w == "mine") return true;
  }
  return false;
}

std::vector<std::string> specific_content(std::string_view sentence) {
  std::vector<std::string> content;
  std::vector<Word> words = words_of(sentence);
  static const std::unordered_set<std::string> pronouns = {"i", "i'm", "i've", "i'd", "i'll", "my", "me", "mine",
                                                           "you", "your", "you're", "he", "she", "we", "they"};
  for (size_t i = 0; i < words.size(); ++i) {
    std::string w = strip_possessive(words[i].text);
    std::string l = lower(w);
    if (pronouns.count(l)) continue;
    bool digit = std::any_of(w.begin(), w.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    bool capital = i > 0 && std::isupper(static_cast<unsigned char>(w[0]));
    bool uncommon = l.size() >= 3 && !common_words().count(l);
    if (i == 0 && !digit && !uncommon) continue;  // a capital that only starts the sentence
    if (digit || capital || uncommon)
      if (std::find(content.begin(), content.end(), w) == content.end()) content.push_back(w);
  }
  return content;
}

std::vector<UserStatement> extract_statements(const std::vector<LogRecord>& conversations) {
  std::vector<UserStatement> statements;
  for (size_t c = 0; c < conversations.size(); ++c)
    for (const ChatMessage& message : conversations[c].messages) {
      if (message.role != "user") continue;
      for (std::string& sentence : split_sentences(message.content)) {
        if (!states_about_speaker(sentence)) continue;
        UserStatement statement;
        statement.content = specific_content(sentence);
        if (statement.content.empty()) continue;  // "I see." says nothing to remember
        statement.second_person = to_second_person(sentence);
        statement.topics = topics_of(sentence);
        statement.conversation = static_cast<int64_t>(c);
        statement.timestamp_seconds = conversations[c].timestamp_seconds;
        statement.text = std::move(sentence);
        statements.push_back(std::move(statement));
      }
    }
  mark_changes(statements);
  return statements;
}

}  // namespace mnemo
