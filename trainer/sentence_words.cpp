// Hand-written (see user_statements.h): the word-level rules both the
// statement reader and the change rules use.
#include "trainer/sentence_words.h"

#include <algorithm>
#include <cctype>

namespace mnemo::sentence_words {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '\'' || c == '-' || (static_cast<unsigned char>(c) >= 0x80);
}

std::vector<Word> words_of(std::string_view text) {
  std::vector<Word> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !is_word_char(text[i])) ++i;
    size_t begin = i;
    while (i < text.size() && is_word_char(text[i])) ++i;
    // Trailing apostrophes and hyphens belong to punctuation, not the word.
    size_t end = i;
    while (end > begin && (text[end - 1] == '\'' || text[end - 1] == '-')) --end;
    if (end > begin) words.push_back({begin, end, std::string(text.substr(begin, end - begin))});
  }
  return words;
}

const std::unordered_set<std::string>& common_words() {
  static const std::unordered_set<std::string> words = {
      "a", "about", "above", "across", "actually", "after", "again", "ago", "all", "almost", "already", "also",
      "always", "am", "an", "and", "another", "any", "anything", "are", "around", "as", "at", "away", "back",
      "bad", "be", "because", "been", "before", "being", "best", "better", "between", "big", "bit", "both",
      "but", "by", "came", "can", "can't", "come", "could", "day", "days", "did", "didn't", "do", "does",
      "doing", "don't", "done", "down", "during", "each", "early", "either", "else", "enough", "even", "ever",
      "every", "everything", "few", "finally", "first", "for", "from", "get", "gets", "getting", "give", "go",
      "goes", "going", "gone", "good", "got", "great", "had", "half", "has", "have", "having", "he", "her",
      "here", "him", "his", "home", "how", "i", "i'd", "i'll", "i'm", "i've", "if", "in", "into", "is", "it",
      "it's", "its", "just", "keep", "kind", "know", "last", "late", "later", "least", "left", "less", "let",
      "like", "little", "long", "look", "lot", "lots", "made", "make", "many", "may", "me", "might", "mine",
      "more", "morning", "most", "much", "must", "my", "myself", "name", "named", "need", "never", "new",
      "next", "night", "no", "not", "now", "of", "off", "often", "old", "on", "once", "one", "only", "or",
      "other", "our", "out", "over", "own", "part", "past", "people", "place", "pretty", "put", "quite",
      "rather", "really", "right", "said", "same", "saw", "say", "see", "seem", "she", "should", "since",
      "so", "some", "something", "soon", "still", "such", "sure", "take", "than", "that", "that's", "the",
      "their", "them", "then", "there", "these", "they", "thing", "things", "think", "this", "those",
      "though", "through", "time", "times", "to", "today", "together", "too", "took", "two", "under",
      "until", "up", "us", "use", "used", "very", "want", "was", "way", "we", "week", "weeks", "weekend",
      "well", "went", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with",
      "without", "won't", "work", "working", "works", "worked", "would", "year", "years", "yes", "yet",
      "you", "your", "yesterday", "tomorrow", "month", "months", "ago", "lately", "recently", "usually",
      "start", "started", "starting", "stop", "stopped", "stopping", "finish", "finished", "try", "tried",
      "trying", "live", "lives", "living", "lived", "move", "moved", "moving", "call", "called", "calls",
      "love", "loved", "loves", "enjoy", "enjoyed", "job", "new", "called", "feel", "felt", "find", "found",
      "makes", "making", "took", "taking", "thought", "tell", "told", "talk", "talked", "let's", "hope",
      "mean", "means", "help", "helped", "getting", "whole", "last", "three", "four", "five", "ten", "lot",
      "anymore", "longer", "instead", "switched", "switch", "changed", "change", "since", "because", "each",
      "spend", "spent", "plan", "planning", "play", "played", "playing", "plays", "went", "lately", "every",
      "family", "friend", "friends", "house", "far", "near", "still", "these", "days", "sometimes", "usually"};
  return words;
}

std::string strip_possessive(std::string word) {
  if (word.size() > 2 && (word.ends_with("'s") || word.ends_with("’s"))) word.resize(word.size() - 2);
  return word;
}

std::vector<std::string> topics_of(std::string_view sentence) {
  static const std::unordered_set<std::string> skip = {"own", "old", "new", "little", "big", "older", "younger",
                                                       "best", "favorite", "favourite", "dear", "first", "last",
                                                       "current", "whole", "only", "other", "main", "usual"};
  std::vector<Word> words = words_of(sentence);
  std::vector<std::string> topics;
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    if (lower(words[i].text) != "my") continue;
    std::string topic;
    for (size_t j = i + 1; j < words.size() && j <= i + 3; ++j) {
      std::string w = strip_possessive(lower(words[j].text));
      if (skip.count(w) && j < i + 3) {
        if (w == "favorite" || w == "favourite") topic = "favorite ";
        continue;
      }
      if (std::isupper(static_cast<unsigned char>(words[j].text[0]))) break;  // a name, not a noun
      topic += w;
      break;
    }
    if (!topic.empty() && topic.back() != ' ' && std::find(topics.begin(), topics.end(), topic) == topics.end())
      topics.push_back(topic);
  }
  return topics;
}

std::string name_of_topic(std::string_view sentence, const std::string& topic) {
  const std::vector<Word> words = words_of(sentence);
  auto capital = [&](size_t i) {
    const std::string& w = words[i].text;
    return std::isupper(static_cast<unsigned char>(w[0])) && w != "I" && w.rfind("I'", 0) != 0 &&
           !common_words().count(lower(w));
  };
  auto run_from = [&](size_t i) {  // capitalised words from i on, none across punctuation
    std::string name = strip_possessive(words[i].text);
    for (size_t j = i + 1; j < words.size() && capital(j) && words[j].begin == words[j - 1].end + 1 &&
                           sentence[words[j - 1].end] == ' ';
         ++j)
      name += " " + strip_possessive(words[j].text);
    return name;
  };
  for (size_t i = 1; i < words.size(); ++i) {
    if (lower(words[i - 1].text) != "my" || lower(strip_possessive(words[i].text)) != topic) continue;
    const bool possessive = words[i].text.size() > topic.size();  // "my dog's name is ..."
    // After: "my rabbit Hercules", "my sister is called Micah", "my dog's name is Biscuit".
    size_t at = i + 1;
    auto next_is = [&](const char* word) {
      if (at < words.size() && lower(words[at].text) == word) return ++at, true;
      return false;
    };
    if (possessive) {
      if (next_is("name") && next_is("is") && at < words.size() && capital(at)) return run_from(at);
    } else if (at < words.size() && capital(at) && sentence[words[i].end] == ' ') {
      return run_from(at);
    } else {
      next_is("is");
      if ((next_is("called") || next_is("named")) && at < words.size() && capital(at)) return run_from(at);
    }
    // Before: "Reagan, my boyfriend" (the run that ends just before ", my").
    if (i >= 2 && capital(i - 2) && sentence.substr(words[i - 2].end, 2) == ", ") {
      size_t first = i - 2;
      while (first > 0 && capital(first - 1) && sentence[words[first - 1].end] == ' ' &&
             words[first].begin == words[first - 1].end + 1)
        --first;
      return run_from(first);
    }
  }
  return "";
}

}  // namespace mnemo::sentence_words
