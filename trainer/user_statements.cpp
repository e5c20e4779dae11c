// Hand-written (see the header): sentence splitting, pronoun rewriting and
// change detection for the user's own statements.
#include "trainer/user_statements.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <unordered_set>

namespace mnemo {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '\'' || c == '-' || (static_cast<unsigned char>(c) >= 0x80);
}

struct Word {
  size_t begin, end;  // byte range in the sentence
  std::string text;
};

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

// The most frequent English words and the verbs people use to talk about
// themselves: a word outside this list (and not a pronoun) is specific enough
// that an answer about it must keep it.
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

const std::vector<std::string_view>& change_cues() {
  static const std::vector<std::string_view> cues = {
      "moved", "moving", "switched", "switching", "changed", "stopped", "quit", "no longer", "anymore",
      "used to", "retrained", "leaving", "gave up", "replaced", "after years"};
  return cues;
}

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

std::string strip_possessive(std::string word) {
  if (word.size() > 2 && (word.ends_with("'s") || word.ends_with("’s"))) word.resize(word.size() - 2);
  return word;
}

// Nouns after "my": "my dog's name" → dog; "my older sister Robin" → sister
// (the first word that is not an adjective we know, up to two words in).
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

}  // namespace

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

namespace {

// Where the stale item (lower-case words) `stale` starts at words[i]: its
// length in words, 0 when it does not.
size_t stale_match(const std::vector<Word>& words, size_t i, const std::vector<std::vector<std::string>>& stale) {
  for (const std::vector<std::string>& item : stale) {
    if (item.empty() || i + item.size() > words.size()) continue;
    bool match = true;
    for (size_t k = 0; k < item.size() && match; ++k) match = lower(strip_possessive(words[i + k].text)) == item[k];
    if (match) return item.size();
  }
  return 0;
}

// `sentence` without the stale things it names, where a change's wording
// holds them apart from the new: "from X to Y" → "to Y", "my old X with a Y"
// → "my old one with a Y", ", instead of X" → "". "" when a stale thing is
// left (nothing current can be kept).
std::string without_stale(const std::string& sentence, const std::vector<std::string>& stale_items) {
  std::vector<std::vector<std::string>> stale;
  for (const std::string& item : stale_items) {
    std::vector<std::string> item_words;
    for (const Word& w : words_of(item)) item_words.push_back(lower(strip_possessive(w.text)));
    stale.push_back(std::move(item_words));
  }
  const std::vector<Word> words = words_of(sentence);
  struct Edit {
    size_t begin, end;
    std::string with;
  };
  std::vector<Edit> edits;
  // The end of the run of stale items from words[i]: i when none starts there.
  auto stale_run = [&](size_t i) {
    while (i < words.size()) {
      size_t n = stale_match(words, i, stale);
      if (n == 0) break;
      i += n;
    }
    return i;
  };
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string w = lower(words[i].text);
    if (w == "from") {  // from <up to 5 words, a stale one among them> to
      for (size_t j = i + 2; j < words.size() && j <= i + 6; ++j) {
        if (lower(words[j].text) != "to") continue;
        bool holds_stale = false;
        for (size_t k = i + 1; k < j; ++k) holds_stale = holds_stale || stale_match(words, k, stale) > 0;
        if (holds_stale) edits.push_back({words[i].begin, words[j].begin, ""});
        break;
      }
    } else if (w == "old" || w == "former" || w == "previous") {  // my old <stale> → my old one
      const size_t end = stale_run(i + 1);
      if (end > i + 1) edits.push_back({words[i + 1].begin, words[end - 1].end, "one"});
    } else if (w == "instead" && i + 1 < words.size() && lower(words[i + 1].text) == "of") {
      const size_t end = stale_run(i + 2);
      if (end > i + 2) {
        size_t begin = words[i].begin;
        while (begin > 0 && (sentence[begin - 1] == ' ' || sentence[begin - 1] == ',')) --begin;
        edits.push_back({begin, words[end - 1].end, ""});
      }
    }
  }
  std::string out;
  size_t at = 0;
  for (const Edit& edit : edits) {
    if (edit.begin < at) continue;  // overlapping: the first wins
    out += sentence.substr(at, edit.begin - at);
    out += edit.with;
    at = edit.end;
  }
  out += sentence.substr(at);
  for (const std::string& item : stale_items)
    if (contains_word(out, item)) return "";
  return out;
}

// Keeps the current part of a statement that names stale things (without_stale);
// false when there is none.
bool keep_current_part(UserStatement& statement, const std::vector<std::string>& stale) {
  const std::string current = without_stale(statement.text, stale);
  if (current.empty() || current == statement.text) return false;
  std::vector<std::string> content = specific_content(current);
  if (content.empty()) return false;
  if (statement.said.empty()) statement.said = statement.text;
  statement.text = current;
  statement.second_person = to_second_person(current);
  statement.content = std::move(content);
  statement.topics = topics_of(current);
  return true;
}

// Flags the statements that made something stale, and supersedes every other
// statement that names a stale thing unless it keeps a current part. Returns
// how many statements it newly superseded.
int64_t mark_stale(std::vector<UserStatement>& statements, const std::set<std::string>& stale,
                   const std::set<const UserStatement*>& replacing) {
  const std::vector<std::string> items(stale.begin(), stale.end());
  int64_t marked = 0;
  for (UserStatement& statement : statements) {
    if (replacing.count(&statement)) statement.replaces_something = true;
    if (statement.superseded) continue;
    bool names_stale = false;
    for (const std::string& item : items) names_stale = names_stale || contains_word(statement.text, item);
    if (names_stale && !keep_current_part(statement, items)) {
      statement.superseded = true;
      ++marked;
    }
  }
  return marked;
}

}  // namespace

std::vector<UserStatement> extract_statements(const std::vector<LogRecord>& conversations) {
  std::vector<UserStatement> statements;
  for (size_t c = 0; c < conversations.size(); ++c)
    for (const ChatMessage& message : conversations[c].messages) {
      if (message.role != "user") continue;
      for (std::string& sentence : split_sentences(message.content)) {
        if (is_request(sentence) || !first_person(sentence)) continue;
        UserStatement statement;
        statement.content = specific_content(sentence);
        if (statement.content.empty()) continue;  // "I see." says nothing to remember
        statement.second_person = to_second_person(sentence);
        statement.topics = topics_of(sentence);
        statement.conversation = static_cast<int64_t>(c);
        statement.timestamp_seconds = conversations[c].timestamp_seconds;
        std::string l = lower(sentence);
        for (std::string_view cue : change_cues())
          if (contains_word(l, cue)) statement.changes_something = true;
        statement.text = std::move(sentence);
        statements.push_back(std::move(statement));
      }
    }
  // Stale content: what a change cue points at ("moved from Lyon", "stopped
  // working as a nurse", "after years in Lyon", "leaving Lyon"): content in
  // the few words after the cue (after "from" for a move, up to "to"), named
  // by an earlier statement and by no later statement that is not itself a
  // change. Only that window: "Acme just moved our team to a new floor" says
  // nothing against Acme.
  auto is_stale = [&](const std::string& word, int64_t conversation) {
    bool earlier = false, later = false;
    for (const UserStatement& other : statements) {
      if (!contains_word(other.text, word)) continue;
      if (other.conversation < conversation) earlier = true;
      if (other.conversation > conversation && !other.changes_something) later = true;
    }
    return earlier && !later;
  };
  std::set<std::string> stale;
  std::set<const UserStatement*> replacing;  // statements that made something stale
  for (const UserStatement& change : statements) {
    if (!change.changes_something) continue;
    std::vector<Word> words = words_of(change.text);
    for (std::string_view cue : change_cues()) {
      std::vector<Word> cue_words = words_of(cue);
      for (size_t i = 0; i + cue_words.size() <= words.size(); ++i) {
        bool match = true;
        for (size_t k = 0; k < cue_words.size(); ++k) match = match && lower(words[i + k].text) == cue_words[k].text;
        if (!match) continue;
        size_t first = i + cue_words.size(), last = std::min(words.size(), first + 4);
        for (size_t j = first; j < last; ++j)
          if (lower(words[j].text) == "from") first = j + 1, last = std::min(words.size(), j + 5);
        for (size_t j = first; j < last; ++j) {
          std::string w = lower(words[j].text);
          if (w == "to" || w == "and" || w == "but" || w == "with") break;
          std::string candidate = strip_possessive(words[j].text);
          if (common_words().count(lower(candidate)) || candidate.size() < 3) continue;
          if (is_stale(candidate, change.conversation)) {
            stale.insert(lower(candidate));
            replacing.insert(&change);
          }
        }
      }
    }
  }
  // A modifier that a newer statement replaced: "I follow a carnivore diet"
  // then "since I started the low-sodium diet": the word before the shared
  // noun in the older statement ("carnivore") is stale when a newer
  // statement with a start cue names the same noun with another modifier and
  // nothing from then on names the old one.
  static const std::vector<std::string_view> start_cues = {"started", "switched", "took up", "changed"};
  for (const UserStatement& newer : statements) {
    bool cue = false;
    for (std::string_view c : start_cues) cue = cue || contains_word(newer.text, c);
    if (!cue) continue;
    std::vector<Word> newer_words = words_of(newer.text);
    for (const UserStatement& older : statements) {
      if (older.conversation >= newer.conversation) continue;
      std::vector<Word> older_words = words_of(older.text);
      for (size_t i = 1; i < older_words.size(); ++i) {
        std::string noun = lower(older_words[i].text), modifier = lower(older_words[i - 1].text);
        if (common_words().count(noun) || common_words().count(modifier) || modifier.size() < 3) continue;
        if (!contains_word(newer.text, noun) || contains_word(newer.text, modifier)) continue;
        // The newer statement must give the noun a modifier of its own.
        bool replaced = false;
        for (size_t j = 1; j < newer_words.size(); ++j)
          if (lower(newer_words[j].text) == noun && !common_words().count(lower(newer_words[j - 1].text)))
            replaced = true;
        if (!replaced) continue;
        bool named_later = false;
        for (const UserStatement& other : statements)
          if (other.conversation >= newer.conversation && contains_word(other.text, modifier)) named_later = true;
        if (!named_later) {
          stale.insert(modifier);
          replacing.insert(&newer);
        }
      }
    }
  }
  // What a statement calls old: "my old Vespa scooter", "my former
  // employer Acme", "instead of Lyon": the content right after the marker is
  // stale when an earlier statement named it and no later plain one does.
  static const std::vector<std::string_view> past_markers = {"old", "former", "previous", "ex", "instead of"};
  for (const UserStatement& newer : statements) {
    // Only where something new takes its place ("replaced my old Mazda with a
    // Nissan"), not "my old college hoodie": a name no earlier statement used.
    bool names_something_new = false;
    for (const std::string& word : newer.content) {
      bool named = std::isupper(static_cast<unsigned char>(word[0])) ||
                   std::any_of(word.begin(), word.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      if (!named) continue;
      bool seen = false;
      for (const UserStatement& other : statements)
        if (other.conversation < newer.conversation && contains_word(other.text, word)) seen = true;
      if (!seen) names_something_new = true;
    }
    if (!names_something_new) continue;
    std::vector<Word> words = words_of(newer.text);
    for (size_t i = 0; i < words.size(); ++i) {
      std::string w = lower(words[i].text);
      bool marker = false;
      size_t next = i + 1;
      for (std::string_view m : past_markers) {
        if (m == "instead of") {
          if (w == "instead" && i + 1 < words.size() && lower(words[i + 1].text) == "of") marker = true, next = i + 2;
        } else if (w == m) {
          marker = true;
        }
      }
      if (!marker) continue;
      for (size_t j = next; j < words.size() && j < next + 2; ++j) {
        const std::string candidate = strip_possessive(words[j].text);
        if (!common_words().count(lower(candidate)) && is_stale(candidate, newer.conversation)) {
          stale.insert(lower(candidate));
          replacing.insert(&newer);
        }
      }
    }
  }
  mark_stale(statements, stale, replacing);
  return statements;
}

std::vector<std::string> named_things(const UserStatement& statement) {
  // A thing without a name counts only as what the speaker is, becomes or
  // follows: "as a graphic designer", "I'm a welder", "into the pescatarian
  // diet"; not "my hobby" (a topic) or "learn a harder piece".
  static const std::unordered_set<std::string> determiners = {"a", "an", "the"};
  static const std::unordered_set<std::string> predicates = {
      "as", "am", "i'm", "be", "being", "become", "became", "becoming", "was", "is", "follow", "follows",
      "following", "followed", "into", "on", "to", "started", "starting", "start", "try", "trying", "tried"};
  std::vector<Word> words = words_of(statement.text);
  std::vector<std::string> things;
  std::vector<std::string> run;  // the current run of adjacent specific words
  bool after_determiner = false;
  size_t run_end = 0, run_first = 0;
  std::vector<bool> is_named;  // of the run's words; a capital that only starts the sentence is no name
  auto named = [&](size_t i) { return is_named[i]; };
  auto flush = [&] {
    // A run with names keeps only its names ("Honda Civic washed" → "Honda
    // Civic"); one without counts only after a determiner ("a graphic
    // designer", "the low-sodium diet"), which leaves out verbs and
    // adjectives ("putting", "rough").
    size_t first = run.size(), last = 0;
    for (size_t i = 0; i < run.size(); ++i)
      if (named(i)) first = std::min(first, i), last = i + 1;
    std::string thing;
    if (first < run.size()) {
      for (size_t i = first; i < last; ++i) thing += (thing.empty() ? "" : " ") + run[i];
    } else if (after_determiner || (!run.empty() && lower(run.back()) == "diet")) {  // "my keto diet" too
      for (const std::string& w : run) thing += (thing.empty() ? "" : " ") + w;
    }
    static const std::unordered_set<std::string> calendar = {
        "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
        "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};
    for (const std::string& w : run)
      if (calendar.count(lower(w))) thing.clear();  // a date or a day is not a thing one has
    if (!thing.empty() && std::find(things.begin(), things.end(), thing) == things.end()) things.push_back(thing);
    run.clear();
    is_named.clear();
  };
  for (size_t i = 0; i < words.size(); ++i) {
    const Word& word = words[i];
    std::string w = strip_possessive(word.text);
    bool specific = std::find(statement.content.begin(), statement.content.end(), w) != statement.content.end();
    // Adjacent: only spaces between this word and the run's last. A capital
    // that starts the sentence is a name only with another after it
    // ("Bluefin Logistics moved …", not "Keeping to …").
    bool adjacent = !run.empty() && statement.text.find_first_not_of(' ', run_end) == word.begin;
    if (!specific) {
      flush();
      continue;
    }
    if (!adjacent) {
      flush();
      after_determiner = i > 1 && determiners.count(lower(words[i - 1].text)) > 0 &&
                         predicates.count(lower(words[i - 2].text)) > 0;
      run_first = i;
    }
    if (run.size() == 1 && run_first == 0 && std::isupper(static_cast<unsigned char>(w[0]))) is_named[0] = true;
    run.push_back(w);
    is_named.push_back((i > 0 && std::isupper(static_cast<unsigned char>(w[0]))) ||
                       std::any_of(w.begin(), w.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }));
    run_end = word.end;
    if (w.size() != word.text.size()) flush();  // "my Mazda's engine": the possessive ends the name
  }
  flush();
  return things;
}

bool single_valued_kind(std::string_view kind) {
  static const std::unordered_set<std::string> kinds = {
      "city", "town", "country", "hometown", "company", "employer", "firm", "job", "profession", "occupation",
      "career", "car", "vehicle", "truck", "motorcycle", "scooter", "diet"};
  return kinds.count(lower(kind)) > 0;
}

int64_t mark_replaced_by_kind(std::vector<UserStatement>& statements,
                              const std::map<std::string, std::string>& kinds) {
  static const std::vector<std::string_view> start_cues = {
      "new", "now", "started", "joined", "became", "become", "switched", "moved", "bought", "first day",
      "first week", "first month", "recently", "no longer", "anymore"};
  // A thing without a capital or a digit can only be a job or a diet: cities,
  // employers and cars have names.
  static const std::unordered_set<std::string> unnamed_kinds = {"job", "profession", "occupation", "career", "diet"};
  auto kind_of = [&](const std::string& thing) -> std::string {
    auto it = kinds.find(thing);
    if (it == kinds.end()) return "";
    std::string kind = lower(it->second);
    // "the low-residue diet" is a diet whatever the generator says.
    size_t space = thing.rfind(' ');
    std::string head = lower(space == std::string::npos ? thing : thing.substr(space + 1));
    if (unnamed_kinds.count(head)) kind = head;
    bool has_name = std::any_of(thing.begin(), thing.end(), [](char c) {
      return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c));
    });
    return has_name || unnamed_kinds.count(kind) ? kind : "";
  };
  std::set<std::string> stale;
  std::set<const UserStatement*> replacing;  // statements that made something stale
  for (const UserStatement& newer : statements) {
    bool cue = false;
    for (std::string_view c : start_cues) cue = cue || contains_word(newer.text, c);
    if (!cue) continue;
    for (const std::string& fresh : named_things(newer)) {
      const std::string kind = kind_of(fresh);
      if (!single_valued_kind(kind)) continue;
      bool named_before = false;
      for (const UserStatement& other : statements)
        if (other.conversation < newer.conversation && contains_word(other.text, fresh)) named_before = true;
      if (named_before) continue;
      for (const UserStatement& older : statements) {
        if (older.conversation >= newer.conversation) continue;
        for (const std::string& old_thing : named_things(older)) {
          if (kind_of(old_thing) != kind || contains_word(fresh, old_thing) || contains_word(old_thing, fresh))
            continue;
          // Still current when anything from the newer statement on names it
          // (the newer statement itself may: "nicer than my old Vespa").
          bool named_later = false;
          for (const UserStatement& other : statements)
            if (&other != &newer && other.conversation >= newer.conversation && contains_word(other.text, old_thing))
              named_later = true;
          if (!named_later) {
            stale.insert(old_thing);
            replacing.insert(&newer);
          }
        }
      }
    }
  }
  return mark_stale(statements, stale, replacing);
}

}  // namespace mnemo
