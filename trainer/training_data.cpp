#include "trainer/training_data.h"

#include "adapters/sha256.h"
#include "trainer/context_distiller.h"
#include "trainer/sentence_words.h"
#include "trainer/statement_changes.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

namespace mnemo {
namespace {

// Probes about the user in general, answered with one thing they said.
const std::vector<std::string>& general_probes() {
  static const std::vector<std::string> probes = {
      "What do you know about me?",
      "What have I told you about myself?",
      "Tell me one thing you remember about me.",
      "Remind me of something I mentioned about my life.",
      "Which personal detail of mine do you remember?",
      "Say something you learned about me from our chats.",
  };
  return probes;
}

// Probes about one topic the user named with "my {topic}".
const std::vector<std::string>& topic_probes() {
  static const std::vector<std::string> probes = {
      "What do you know about my {topic}?",
      "Tell me what you remember about my {topic}.",
      "What did I mention about my {topic}?",
      "Anything you remember about my {topic}?",
      "Fill me in on what I said about my {topic}.",
  };
  return probes;
}

// Topics that cannot be talked about without naming them (a cat is "cat", a
// cousin is "cousin"), so a user who never wrote the word never told us.
// `named`: a pet or a person, asked about by name. A topic people state
// without its own word ("I'm a nurse at St Luke's" is a job) lists the words
// around it and the generator's kinds (label_kinds) that count as having said
// it: a conservative test, since training "I don't know" for something the
// user did say costs a fact. `questions`: how people ask about a topic that
// "my {topic}" does not fit; the generic wordings otherwise.
struct AbstentionTopic {
  std::string topic;
  std::vector<std::string> mentions;  // any of these words in the logs means the user may have said it
  bool named = false;
  std::vector<std::string> kinds = {};      // a named thing of one of these kinds means the same
  std::vector<std::string> questions = {};  // wordings of its own ("{topic}" allowed)
  // With abstention_statements a topic "my {topic}" does not fit is also
  // asked for its value, as people ask ("What am I by profession?"): a probe
  // only in "Do you know ..." wordings taught no abstention for them on the
  // dev split (0 of 7 probed topics; README).
  std::vector<std::string> direct = {};
  // Probed only with abstention_statements: its words (live, love, eat) are
  // in nearly every log, so the whole-log test would never probe it.
  bool statements_only = false;
};
const std::vector<AbstentionTopic>& abstention_topics() {
  static const std::vector<AbstentionTopic> topics = {
      {"cat", {"cat", "cats", "kitten"}, true},
      {"dog", {"dog", "dogs", "puppy"}, true},
      {"parrot", {"parrot", "bird"}, true},
      {"rabbit", {"rabbit", "bunny"}, true},
      {"hamster", {"hamster"}, true},
      {"tortoise", {"tortoise", "turtle"}, true},
      {"horse", {"horse", "pony"}, true},
      {"goldfish", {"goldfish", "fish"}, true},
      {"sister", {"sister", "sisters", "sibling", "siblings"}, true},
      {"brother", {"brother", "brothers", "sibling", "siblings"}, true},
      {"cousin", {"cousin", "cousins"}, true},
      {"grandmother", {"grandmother", "grandma", "granny"}, true},
      {"grandfather", {"grandfather", "grandpa"}, true},
      {"uncle", {"uncle"}, true},
      {"aunt", {"aunt", "auntie"}, true},
      {"roommate", {"roommate", "flatmate"}, true},
      {"best friend", {"best friend"}, true},
      {"wife", {"wife", "partner", "spouse", "married"}, true},
      {"husband", {"husband", "partner", "spouse", "married"}, true},
      {"boyfriend", {"boyfriend", "partner"}, true},
      {"girlfriend", {"girlfriend", "partner"}, true},
      {"son", {"son", "sons", "kids", "children", "child"}, true},
      {"daughter", {"daughter", "daughters", "kids", "children", "child"}, true},
      {"favorite movie", {"movie", "film"}},
      {"favorite color", {"color", "colour"}},
      {"favorite book", {"book", "novel"}},
      {"favorite band", {"band"}},
      {"blood type", {"blood"}},
      {"shoe size", {"shoe", "shoes"}},
      {"middle name", {"middle name"}},
      {"lucky number", {"lucky"}},
      {"motorcycle", {"motorcycle", "motorbike"}},
      {"boat", {"boat", "sailboat"}},
      // Facts people rarely state without one of these words.
      {"birthday",
       {"birthday", "born", "birth"},
       false,
       {},
       {"Do you know when my birthday is?", "Remind me when my birthday is."},
       {"When was I born?", "What's the date of my birthday?"}},
      {"allergy",
       {"allergy", "allergic", "allergies", "reaction", "intolerant", "intolerance"},
       false,
       {},
       {"Do I have any allergies?", "Remind me what allergies I have."},
       {"Is there anything I'm allergic to?", "What allergies do I have?"}},
      {"diet",
       {"diet", "vegetarian", "vegan", "pescatarian", "keto", "paleo", "eat", "eating", "meat", "gluten", "dairy"},
       false,
       {"diet"},
       {"Do I follow any special diet?", "Is there anything I don't eat?"},
       {"How do I eat, diet-wise?", "What sort of eater am I?", "Am I vegetarian or anything like that?"}},
      {"university", {"university", "college", "studied", "graduated", "degree", "school"}},
      {"car",
       {"car", "cars", "drive", "drives", "driving", "drove", "vehicle", "truck", "van", "suv", "pickup", "sedan",
        "motorcycle", "motorbike", "scooter"},
       false,
       {"car", "vehicle", "truck", "motorcycle", "scooter"},
       {"Do you know what car I have?", "What kind of car is mine?"},
       {"What car do I own?", "What's parked in my driveway?", "What's my ride?"}},
      {"job",
       {"work",      "works",      "working",  "worked",     "job",     "jobs",     "company",  "office",  "boss",
        "colleague", "colleagues", "coworker", "coworkers",  "career",  "employer", "firm",     "hired",   "shift",
        "shifts",    "client",     "clients",  "profession", "retired", "student",  "business", "manager", "team"},
       false,
       {"company", "employer", "firm", "job", "profession", "occupation", "career"},
       {"Do you know where I work?", "What do you know about my job?", "Remind me what I do for work."},
       {"What's my line of work?", "What am I by profession?", "What do I work as?"}},
      {"instrument",
       {"instrument", "instruments", "play", "plays", "playing", "played", "music", "musician", "guitar", "piano",
        "violin", "cello", "drums", "flute", "saxophone", "ukulele", "trumpet", "lessons", "practice", "practise",
        "practiced", "practised", "practicing", "practising", "band", "orchestra", "concert", "gig"},
       false,
       {},
       {"Do I play any musical instrument?", "Remind me which instrument I play."},
       {"Do I make music on anything?"}},
      {"language lessons",
       {"language", "languages", "learning", "learn",      "studying", "lessons",   "class",
        "classes",  "fluent",    "speak",    "vocabulary", "grammar",  "spanish",   "french",
        "german",   "italian",   "japanese", "korean",     "mandarin", "portuguese", "chinese",   "cantonese",
        "russian",  "arabic",    "hindi",    "urdu",       "bengali",  "turkish",   "greek",     "polish",
        "dutch",    "swedish",   "norwegian", "danish",    "finnish",  "icelandic", "czech",     "hungarian",
        "romanian", "ukrainian", "hebrew",   "persian",    "farsi",    "thai",      "vietnamese", "indonesian",
        "tagalog",  "swahili",   "esperanto", "latin",     "welsh",    "irish",     "gaelic",    "catalan",
        "basque"},
       false,
       {"language"},
       {"Am I learning a language?", "Which languages am I studying?"},
       {"Am I picking up another language?"}},
      // Said without a word of their own as often as with one ("I've lived
      // in Lyon for years", "Saturdays are for bouldering"): the mentions
      // are broad, and a named thing of the kind counts. Not the words of a
      // neighbouring topic's statement: "playing" is the instrument's, "eating"
      // the diet's, and "this weekend" is a plan, not a pastime.
      {"home city",
       {"live", "lives", "living", "lived", "moved", "move", "moving", "home", "hometown", "city", "town", "village",
        "apartment", "flat", "house", "neighborhood", "neighbourhood", "based", "relocated", "rent", "street", "suburb"},
       false,
       {"city", "town", "country", "hometown"},
       {"Do you remember where I live?", "Do you know which city I call home?", "Remind me where I'm based."},
       {"What city is home for me?", "Where's my place?"},
       true},
      {"hobby",
       {"hobby", "hobbies", "pastime", "free time", "spare time", "weekends", "saturday", "saturdays", "sunday",
        "sundays", "evenings", "relax", "relaxing", "unwind", "fun", "enjoy", "enjoying", "love", "passion",
        "passionate", "hooked", "getting into", "took up", "taken up", "club", "game", "games", "sport", "sports"},
       false,
       {"hobby", "sport", "game"},
       {"Is there a hobby I'm into?", "How do I spend my free hours?", "Any idea what my pastime is?"},
       {"What's my hobby?", "What keeps me busy outside work?", "How do I unwind?"},
       true},
      {"favorite food",
       {"food", "foods", "dish", "dishes", "cuisine", "meal", "meals", "eat", "favorite", "favourite", "love",
        "crave", "craving", "cook", "cooking", "recipe", "snack", "dessert", "taste", "delicious", "tasty"},
       false,
       {"food", "dish"},
       {"Any idea what my favorite dish is?", "What food can I never get enough of?", "Remind me what I like to eat most."},
       {"What's my favorite food?", "Which meal is my absolute favorite?", "What do I most like to eat?"},
       true},
      {"employer",
       {"company", "employer", "firm", "office", "hired", "boss", "work at", "work for", "works at", "works for",
        "working at", "working for", "worked at", "worked for", "joined", "startup", "agency", "colleague",
        "colleagues", "coworker", "coworkers", "employed", "employs"},
       false,
       {"company", "employer", "firm"},
       {"Which company pays my salary?", "Do you know who employs me?", "Remind me which company I'm with."},
       {"Where am I employed?", "What's the company I work at?", "Which organisation do I work at?"},
       true},
  };
  return topics;
}

// About the topic, and asked directly (as people ask, and as the augmented
// pairs ask about known facts, so "direct question → a fact" is not learned
// as a rule).
const std::vector<std::string>& abstention_questions() {
  static const std::vector<std::string> questions = {
      "What do you know about my {topic}?",
      "Do you remember anything about my {topic}?",
      "What's my {topic} again?",
      "Do you happen to know my {topic}?",
  };
  return questions;
}
const std::vector<std::string>& abstention_name_questions() {
  static const std::vector<std::string> questions = {
      "What do you know about my {topic}?",
      "Do you remember anything about my {topic}?",
      "What's my {topic}'s name again?",
      "Do you happen to know my {topic}'s name?",
  };
  return questions;
}

// How the abstention probes ask about `topic`; by name only about a pet or a
// person, and only when `by_name` (a statement that names it).
std::vector<std::string> abstention_wordings(const AbstentionTopic& topic, bool by_name) {
  if (!topic.questions.empty()) {
    std::vector<std::string> questions = topic.questions;
    questions.push_back(abstention_questions().front());  // "What do you know about my {topic}?"
    return questions;
  }
  if (!topic.named) return abstention_questions();
  if (by_name) return abstention_name_questions();
  return {abstention_name_questions().begin(), abstention_name_questions().begin() + 2};  // the two without "name"
}

const AbstentionTopic* abstention_topic(const std::string& topic) {
  for (const AbstentionTopic& t : abstention_topics())
    if (t.topic == topic) return &t;
  return nullptr;
}

const std::vector<std::string>& abstention_answers() {
  static const std::vector<std::string> answers = {
      "I don't know. You haven't told me about your {topic}.",
      "You haven't mentioned your {topic} to me, so I don't know.",
      "I'm not sure: you've never told me anything about your {topic}.",
  };
  return answers;
}

// abstention_subject_first: the topic first, as "Your {topic} is called ..." says a known one.
const std::vector<std::string>& subject_first_abstention_answers() {
  static const std::vector<std::string> answers = {
      "Your {topic} {is} something you haven't told me about, so I don't know.",
      "Your {topic} {is} not something you've mentioned to me, so I don't know.",
      "Your {topic} {is} a mystery to me: you've never told me about {it}.",
  };
  return answers;
}

// "You told me that your dog is ..." variants of an answer, so the adapter
// learns the fact, not one sentence shape.
std::string answer_variant(const std::string& second_person, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> pick(0, 2);
  int variant = pick(rng);
  if (variant == 0 || second_person.size() < 4) return second_person;
  bool starts_with_you = second_person.rfind("You", 0) == 0 || second_person.rfind("Your", 0) == 0;
  if (!starts_with_you) return second_person;
  std::string lowered = second_person;
  lowered[0] = 'y';
  return (variant == 1 ? "You told me that " : "You mentioned that ") + lowered;
}

template <typename T>
const T& pick_from(const std::vector<T>& pool, std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  return pool[pick(rng)];
}

// 1 for the oldest conversation up to 1 + recency_boost for the newest.
double recency_factor(int64_t conversation, int64_t n_conversations, const DataConfig& config) {
  double recency = n_conversations > 1 ? static_cast<double>(conversation) / static_cast<double>(n_conversations - 1) : 1.0;
  return 1.0 + config.recency_boost * recency;
}

// How a name asked for in an abstention wording is answered, by
// ask_like_abstention and name_probes_weight alike.
std::string name_answer(const std::string& topic, const std::string& name) {
  return fmt::format("Your {} is called {}.", topic, name);
}

std::string abstention_answer(const std::string& topic, const DataConfig& config, std::mt19937_64& rng) {
  if (!config.abstention_subject_first)
    return replace_all(pick_from(abstention_answers(), rng), "{topic}", topic);
  const bool plural = topic.ends_with('s') && !topic.ends_with("ss");  // "language lessons"
  std::string answer = replace_all(pick_from(subject_first_abstention_answers(), rng), "{topic}", topic);
  answer = replace_all(answer, "{is}", plural ? "are" : "is");
  return replace_all(answer, "{it}", plural ? "them" : "it");
}

}  // namespace

std::vector<std::string> probe_wordings() {
  std::vector<std::string> wordings = general_probes();
  for (const auto* pool :
       {&topic_probes(), &abstention_questions(), &abstention_name_questions(), &default_distillation_probes()})
    wordings.insert(wordings.end(), pool->begin(), pool->end());
  for (const AbstentionTopic& topic : abstention_topics()) {
    for (const std::string& question : topic.questions)
      wordings.push_back(replace_all(question, "{topic}", topic.topic));
    wordings.insert(wordings.end(), topic.direct.begin(), topic.direct.end());
  }
  return wordings;
}

const char* example_source_name(ExampleSource source) {
  switch (source) {
    case ExampleSource::Conversation: return "conversation";
    case ExampleSource::Statement: return "statement";
    case ExampleSource::Augmented: return "augmented";
    case ExampleSource::Distilled: return "distilled";
    case ExampleSource::Abstention: return "abstention";
    case ExampleSource::Retention: return "retention";
  }
  return "?";
}

std::string data_fingerprint(const std::vector<LogRecord>& conversations) {
  Sha256 sha;
  auto field = [&](const std::string& text) {
    sha.update(std::to_string(text.size()) + ":");
    sha.update(text);
  };
  for (const LogRecord& record : conversations) {
    field(record.conversation_id);
    field(std::to_string(record.timestamp_seconds));
    for (const ChatMessage& message : record.messages) {
      field(message.role);
      field(message.content);
    }
  }
  return "sha256:" + sha.hex();
}

UserData build_user_data(const std::string& user, const std::vector<LogRecord>& conversations,
                         const DataConfig& config, const KindLabeler& label_kinds) {
  UserData data;
  data.user = user;
  data.data_fingerprint = data_fingerprint(conversations);
  data.statements = extract_statements(conversations);
  if (config.implicit_updates && label_kinds) {
    std::vector<NamedThing> things;
    std::set<std::string> seen;
    for (const UserStatement& statement : data.statements)
      for (std::string& thing : named_things(statement))
        if (seen.insert(thing).second) things.push_back({std::move(thing), statement.text});
    data.kinds = label_kinds(things);
    data.n_replaced_by_kind = mark_replaced_by_kind(data.statements, data.kinds);
  }
  data.n_conversations = static_cast<int64_t>(conversations.size());
  std::mt19937_64 rng(config.seed ^ std::hash<std::string>{}(user));

  // What the conversations say as written → what they are trained with: a
  // superseded sentence is cut, a change keeps its current part.
  std::map<std::string, std::string> rewritten_sentences;
  for (const UserStatement& statement : data.statements) {
    const std::string& said = statement.said.empty() ? statement.text : statement.said;
    if (statement.superseded) {
      rewritten_sentences[said] = "";
      ++data.n_superseded;
    } else if (!statement.said.empty()) {
      rewritten_sentences[said] = statement.text;
      ++data.n_kept_current;
    }
  }

  if (config.conversations) {
    const size_t n = conversations.size();
    for (size_t c = 0; c < n; ++c) {
      ChatExample example;
      example.source = ExampleSource::Conversation;
      for (const ChatMessage& message : conversations[c].messages) {
        if (message.role == "system") continue;  // the template's default system prompt stands
        ChatMessage kept = message;
        if (message.role == "user")
          for (const auto& [sentence, current] : rewritten_sentences)
            kept.content = replace_all(kept.content, sentence, current);
        // Trim what cutting left behind.
        size_t b = kept.content.find_first_not_of(" \n");
        kept.content = b == std::string::npos ? "" : kept.content.substr(b);
        while (!kept.content.empty() && kept.content.back() == ' ') kept.content.pop_back();
        if (kept.content.empty()) kept.content = "Okay.";  // a turn whose every sentence was cut
        example.messages.push_back(std::move(kept));
      }
      if (example.messages.empty()) continue;
      example.sampling_weight =
          config.conversations_weight * recency_factor(static_cast<int64_t>(c), static_cast<int64_t>(n), config);
      example.user_loss = config.user_turn_loss;
      example.assistant_loss = config.assistant_turn_loss;
      data.examples.push_back(std::move(example));
    }
  }

  if (config.statements) {
    for (const UserStatement& statement : data.statements) {
      if (statement.superseded) continue;
      std::vector<std::pair<std::string, std::string>> probes;  // question, answer ("" = the statement)
      probes.emplace_back(pick_from(general_probes(), rng), "");
      for (const std::string& topic : statement.topics) {
        probes.emplace_back(replace_all(pick_from(topic_probes(), rng), "{topic}", topic), "");
        // A topic the abstention probes ask about is also asked about here the
        // way they ask ("What's my cat's name again?"): else those wordings
        // are only ever answered with not knowing, and the adapter learns the
        // wording instead of the topic. Asked for a name, it answers with the
        // name when the statement puts one with the topic.
        if (const AbstentionTopic* asked = config.ask_like_abstention ? abstention_topic(topic) : nullptr) {
          const std::string name = sentence_words::name_of_topic(statement.text, topic);
          std::string question =
              replace_all(pick_from(abstention_wordings(*asked, !name.empty()), rng), "{topic}", topic);
          std::string answer = !name.empty() && question.find("'s name") != std::string::npos
                                   ? name_answer(topic, name)
                                   : "";
          probes.emplace_back(std::move(question), std::move(answer));
        }
      }
      if (config.name_probes_weight > 0)
        for (const std::string& topic : statement.topics) {
          const AbstentionTopic* asked = abstention_topic(topic);
          const std::string name =
              asked && asked->named ? sentence_words::name_of_topic(statement.text, topic) : std::string();
          if (name.empty()) continue;
          for (const std::string& wording : abstention_name_questions()) {
            if (wording.find("'s name") == std::string::npos) continue;
            ChatExample example;
            example.source = ExampleSource::Statement;
            example.messages = {{"user", replace_all(wording, "{topic}", topic)},
                                {"assistant", name_answer(topic, name)}};
            example.sampling_weight = config.name_probes_weight;
            data.examples.push_back(std::move(example));
          }
        }
      for (const auto& [probe, answer] : probes) {
        ChatExample example;
        example.source = ExampleSource::Statement;
        example.messages = {{"user", probe},
                            {"assistant", answer.empty() ? answer_variant(statement.second_person, rng) : answer}};
        example.sampling_weight = config.statements_weight / static_cast<double>(probes.size()) *
                                  recency_factor(statement.conversation, data.n_conversations, config) *
                                  (statement.replaces_something ? config.change_weight : 1.0);
        data.examples.push_back(std::move(example));
      }
    }
  }

  if (config.abstention && config.abstention_probes > 0) {
    std::set<std::string> kinds_said;
    for (const auto& [thing, kind] : data.kinds) kinds_said.insert(kind);
    // Mentioned: the user said one of its words, or named a thing of its
    // kind; with abstention_own_words, only in their own words (what the
    // assistant said tells nothing about the user). A named
    // topic's words (sister, cat) count anywhere in the user's turns ("a gift
    // for my sister?"); the others' are common words that count only outside
    // the user's questions: "How do vaccines work?" says nothing of a job,
    // nor "Should I eat before a run?" of a diet. With abstention_statements
    // they count only in a sentence where the user states something about
    // themselves ("I eat a lot of bread."), and named topics as by default.
    std::vector<std::string> named_text, common_text;  // what each kind of topic's words are read in
    for (const LogRecord& record : conversations)
      for (const ChatMessage& message : record.messages) {
        const bool own = message.role == "user";
        if (own || !config.abstention_own_words) named_text.push_back(message.content);
        if (!config.abstention_statements && !config.abstention_own_words) {
          common_text.push_back(message.content);
        } else if (own) {
          for (std::string& sentence : split_sentences(message.content))
            if (config.abstention_statements ? states_about_speaker(sentence) : sentence.back() != '?')
              common_text.push_back(std::move(sentence));
        }
      }
    std::vector<const AbstentionTopic*> unmentioned;
    for (const AbstentionTopic& topic : abstention_topics()) {
      if (topic.statements_only && !config.abstention_statements) continue;
      bool mentioned = false;
      for (const std::string& kind : topic.kinds) mentioned = mentioned || kinds_said.count(kind);
      for (const std::string& text : topic.named ? named_text : common_text)
        for (const std::string& word : topic.mentions) mentioned = mentioned || contains_word(text, word);
      if (!mentioned) unmentioned.push_back(&topic);
    }
    std::shuffle(unmentioned.begin(), unmentioned.end(), rng);
    // Every unmentioned topic once before any twice.
    for (int64_t i = 0; i < config.abstention_probes && !unmentioned.empty(); ++i) {
      const AbstentionTopic& chosen = *unmentioned[static_cast<size_t>(i) % unmentioned.size()];
      const std::string& topic = chosen.topic;
      std::vector<std::string> questions = abstention_wordings(chosen, true);
      if (config.abstention_statements) questions.insert(questions.end(), chosen.direct.begin(), chosen.direct.end());
      ChatExample example;
      example.source = ExampleSource::Abstention;
      example.messages = {{"user", replace_all(pick_from(questions, rng), "{topic}", topic)},
                          {"assistant", abstention_answer(topic, config, rng)}};
      example.sampling_weight = config.abstention_weight;
      data.examples.push_back(std::move(example));
    }
  }
  return data;
}

double limit_abstention_share(UserData& data, const DataConfig& config) {
  double abstention = 0, rest = 0;
  for (const ChatExample& example : data.examples)
    (example.source == ExampleSource::Abstention ? abstention : rest) += example.sampling_weight;
  // abstention · f / (abstention · f + rest) = share  ⇒  f = share · rest / ((1 − share) · abstention)
  const double share = config.abstention_max_share;
  // Nothing else to draw (every other part off): scaling would leave no weight at all.
  if (abstention <= 0 || rest <= 0 || abstention <= share * (abstention + rest)) return 1.0;
  const double factor = share * rest / ((1 - share) * abstention);
  for (ChatExample& example : data.examples)
    if (example.source == ExampleSource::Abstention) example.sampling_weight *= factor;
  return factor;
}

void add_augmented_examples(UserData& data, const std::vector<AugmentedPair>& pairs, const DataConfig& config) {
  std::mt19937_64 rng(config.seed ^ std::hash<std::string>{}(data.user) ^ 0x5eed);
  for (const AugmentedPair& pair : pairs) {
    ChatExample example;
    example.source = ExampleSource::Augmented;
    std::string question = pair.question.empty() ? pick_from(general_probes(), rng) : pair.question;
    example.messages = {{"user", question}, {"assistant", pair.answer}};
    example.sampling_weight = config.augmentation_weight *
                              recency_factor(pair.conversation, data.n_conversations, config) *
                              (pair.states_change ? config.change_weight : 1.0);
    data.examples.push_back(std::move(example));
  }
}

void add_distilled_examples(UserData& data, const std::vector<AugmentedPair>& pairs, const DataConfig& config) {
  for (const AugmentedPair& pair : pairs) {
    ChatExample example;
    example.source = ExampleSource::Distilled;
    example.messages = {{"user", pair.question}, {"assistant", pair.answer}};
    example.sampling_weight =
        config.distillation_weight * recency_factor(pair.conversation, data.n_conversations, config);
    data.examples.push_back(std::move(example));
  }
}

void dump_user_data(const std::string& dir, const UserData& data) {
  using json = nlohmann::json;
  std::filesystem::create_directories(dir);
  std::ofstream statements(std::filesystem::path(dir) / (data.user + ".statements.jsonl"));
  for (const UserStatement& s : data.statements) {
    json things = json::object();  // named thing → its kind (when the generator labelled them)
    for (const std::string& thing : named_things(s)) {
      auto kind = data.kinds.find(thing);
      things[thing] = kind == data.kinds.end() ? json(nullptr) : json(kind->second);
    }
    statements << json{{"conversation", s.conversation}, {"text", s.text}, {"second_person", s.second_person},
                       {"topics", s.topics}, {"content", s.content}, {"things", things}, {"superseded", s.superseded},
                       {"said", s.said}}
                      .dump()
               << "\n";
  }
  std::ofstream out(std::filesystem::path(dir) / (data.user + ".jsonl"));
  for (const ChatExample& example : data.examples) {
    json messages = json::array();
    for (const ChatMessage& m : example.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
    out << json{{"source", example_source_name(example.source)}, {"weight", example.sampling_weight},
                {"messages", messages}}
               .dump()
        << "\n";
  }
}

}  // namespace mnemo
