// Hand-written (see user_statements.h): which of a user's statements a newer
// one made stale, by the wording of a change ("moved from Lyon to Porto",
// "my old Mazda") or by the generator's kinds of the things they name.
#include "trainer/statement_changes.h"

#include "trainer/sentence_words.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <unordered_set>

namespace mnemo {
namespace {

using sentence_words::common_words;
using sentence_words::lower;
using sentence_words::strip_possessive;
using sentence_words::topics_of;
using sentence_words::Word;
using sentence_words::words_of;

const std::vector<std::string_view>& change_cues() {
  static const std::vector<std::string_view> cues = {
      "moved", "moving", "switched", "switching", "changed", "stopped", "quit", "no longer", "anymore",
      "used to", "retrained", "leaving", "gave up", "replaced", "after years"};
  return cues;
}


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

int64_t mark_changes(std::vector<UserStatement>& statements) {
  for (UserStatement& statement : statements) {
    const std::string l = lower(statement.text);
    for (std::string_view cue : change_cues())
      if (contains_word(l, cue)) statement.changes_something = true;
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
  return mark_stale(statements, stale, replacing);
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
