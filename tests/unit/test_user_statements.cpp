// Which sentences count as the user's statements and how they are said
// back, without a model: the named things in them, the statements a newer
// one supersedes (by text rules, or by the kinds a labeler gives the things
// named) and the current part a change keeps.
#include "chat_logs.h"
#include "trainer/sentence_words.h"
#include "trainer/statement_changes.h"
#include "trainer/train_config.h"
#include "trainer/training_data.h"
#include "trainer/user_statements.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace mnemo {
namespace {

using ::testing::ElementsAre;
using test_logs::alice_logs;
using test_logs::conversation;

TEST(UserStatements, SentencesSplitAtTheirEnds) {
  EXPECT_THAT(split_sentences("I live in Lyon. Can you help? Sure!\nNew line"),
              ElementsAre("I live in Lyon.", "Can you help?", "Sure!", "New line"));
  EXPECT_THAT(split_sentences("Dr. Smith is my doctor. Ok."), ElementsAre("Dr. Smith is my doctor.", "Ok."));
}

TEST(UserStatements, TheNameSaidWithATopic) {
  using sentence_words::name_of_topic;
  EXPECT_EQ(name_of_topic("My sister Micah and I are planning a party.", "sister"), "Micah");
  EXPECT_EQ(name_of_topic("My brother is called Tomas and he likes climbing.", "brother"), "Tomas");
  EXPECT_EQ(name_of_topic("I think my dog's name is Biscuit Junior, officially.", "dog"), "Biscuit Junior");
  EXPECT_EQ(name_of_topic("I bought a bed for Hercules, my rabbit.", "rabbit"), "Hercules");
  EXPECT_EQ(name_of_topic("Loren, my girlfriend, says I work too much.", "girlfriend"), "Loren");
  EXPECT_EQ(name_of_topic("My neighbor will walk my dog Jasper.", "dog"), "Jasper");
  EXPECT_EQ(name_of_topic("My sister lives in Oslo.", "sister"), "");  // a city, not her name
  EXPECT_EQ(name_of_topic("My cat, Nimbus, sleeps all day.", "cat"), "");  // not a form it reads
  EXPECT_EQ(name_of_topic("My sister Micah and I are planning a party.", "brother"), "");
}

TEST(UserStatements, FirstPersonIsSaidBackInTheSecond) {
  EXPECT_EQ(to_second_person("My dog's name is Biscuit."), "Your dog's name is Biscuit.");
  EXPECT_EQ(to_second_person("I am a nurse and I've got two kids."), "You are a nurse and you've got two kids.");
  EXPECT_EQ(to_second_person("Because I follow a diet, I'm careful."), "Because you follow a diet, you're careful.");
  EXPECT_EQ(to_second_person("My sister called me yesterday."), "Your sister called you yesterday.");
}

TEST(UserStatements, GeneratedQuestionsAreAskedByTheUser) {
  EXPECT_EQ(question_to_first_person("Who is your sister?"), "Who is my sister?");
  EXPECT_EQ(question_to_first_person("What do you drive?"), "What do I drive?");
  EXPECT_EQ(question_to_first_person("Where are you from?"), "Where am I from?");
  EXPECT_EQ(question_to_first_person("What did my sister give to you?"), "What did my sister give to me?");
  EXPECT_TRUE(about_the_speaker("What do I drive?"));
  EXPECT_FALSE(about_the_speaker("What is the population of Bulgaria?"));
}

TEST(UserStatements, SpecificContentIsNamesNumbersAndUncommonWords) {
  EXPECT_THAT(specific_content("My dog Biscuit turned 7 today."), ElementsAre("dog", "Biscuit", "turned", "7"));
  EXPECT_THAT(specific_content("I live in New York."), ElementsAre("New", "York"));
  EXPECT_TRUE(specific_content("I think so too.").empty());
}

TEST(UserStatements, OnlyTheUsersOwnFirstPersonStatementsCount) {
  std::vector<UserStatement> statements = extract_statements(alice_logs());
  std::vector<std::string> texts;
  for (const UserStatement& s : statements) texts.push_back(s.said.empty() ? s.text : s.said);  // as written
  // Questions, requests and the assistant's words are not statements.
  EXPECT_THAT(texts, ElementsAre("My cat Pumpkin keeps stealing my socks.", "I live in Lyon.",
                                 "I follow a raw vegan diet these days.", "I finally moved from Lyon to Porto last month.",
                                 "Since I started the paleo diet, I sleep better.",
                                 "Porto is lovely, I live near the river."));
  EXPECT_THAT(statements[0].topics, ElementsAre("cat", "socks"));
  EXPECT_EQ(statements[0].conversation, 0);
  EXPECT_EQ(statements[4].conversation, 3);
}

TEST(UserStatements, NewerStatementsSupersedeWhatTheyReplace) {
  std::vector<UserStatement> statements = extract_statements(alice_logs());
  auto superseded = [&](const std::string& text) {
    for (const UserStatement& s : statements)
      if (s.text == text) return s.superseded;
    ADD_FAILURE() << "no statement " << text;
    return false;
  };
  // Lyon was replaced by Porto; the change names both, and keeps the new one.
  EXPECT_TRUE(superseded("I live in Lyon."));
  EXPECT_FALSE(superseded("I finally moved to Porto last month."));
  EXPECT_FALSE(superseded("Porto is lovely, I live near the river."));
  for (const UserStatement& s : statements) {
    if (s.text.find("Lyon") != std::string::npos) EXPECT_TRUE(s.superseded) << s.text;
    // The statements that made something stale.
    EXPECT_EQ(s.replaces_something, s.text == "I finally moved to Porto last month." ||
                                        s.text == "Since I started the paleo diet, I sleep better.")
        << s.text;
    if (s.text == "I finally moved to Porto last month.") {
      EXPECT_EQ(s.said, "I finally moved from Lyon to Porto last month.");
      EXPECT_EQ(s.second_person, "You finally moved to Porto last month.");
      EXPECT_THAT(s.content, ::testing::Contains("Porto"));
      EXPECT_THAT(s.content, ::testing::Not(::testing::Contains("Lyon")));
    } else {
      EXPECT_EQ(s.said, "") << s.text;
    }
  }
  // "raw vegan diet" was replaced by "paleo diet": a new modifier on the same noun.
  EXPECT_TRUE(superseded("I follow a raw vegan diet these days."));
  EXPECT_FALSE(superseded("Since I started the paleo diet, I sleep better."));
  EXPECT_FALSE(superseded("My cat Pumpkin keeps stealing my socks."));
}

// Implicit updates: no text rule links a new car to the old one; the kinds
// a generator gives the named things do. Here the kinds come from a table,
// as a labeler would give them.
std::vector<LogRecord> implicit_update_logs() {
  return {
      conversation("c1", 100,
                   {{"user", "I drive a Honda Civic. I work as a welder. I have a brother called Logan."},
                    {"assistant", "Noted."}}),
      conversation("c2", 200,
                   {{"user", "My Honda Civic needs new tires. I'm a welder by trade."}, {"assistant", "Ok."}}),
      conversation("c3", 300,
                   {{"user", "Picking up my new Ford Bronco was the highlight of my week. Since I became a "
                             "florist, my mornings start early. I joined Kestrel Labs."},
                    {"assistant", "Congratulations."}}),
      conversation("c4", 400, {{"user", "My Ford Bronco handles the hills fine."}, {"assistant", "Good."}}),
  };
}

std::map<std::string, std::string> implicit_update_kinds() {
  return {{"Honda Civic", "car"}, {"Ford Bronco", "car"}, {"welder", "job"}, {"florist", "job"},
          {"Logan", "person"}, {"Kestrel Labs", "company"}, {"highlight", "other"}};
}

TEST(UserStatements, NamedThingsAreNamesAndWhatTheSpeakerIs) {
  std::vector<UserStatement> statements = extract_statements(implicit_update_logs());
  auto things_of = [&](const std::string& text) {
    for (const UserStatement& s : statements)
      if (s.text == text) return named_things(s);
    ADD_FAILURE() << "no statement " << text;
    return std::vector<std::string>{};
  };
  EXPECT_THAT(things_of("I drive a Honda Civic."), ElementsAre("Honda Civic"));
  EXPECT_THAT(things_of("I work as a welder."), ElementsAre("welder"));
  EXPECT_THAT(things_of("My Honda Civic needs new tires."), ElementsAre("Honda Civic"));  // the name alone
  // Unnamed things only where something is or becomes one ("was the
  // highlight"); the labeler tells that this one is no job.
  EXPECT_THAT(things_of("Picking up my new Ford Bronco was the highlight of my week."),
              ElementsAre("Ford Bronco", "highlight"));
  EXPECT_THAT(things_of("I have a brother called Logan."), ElementsAre("Logan"));
  EXPECT_THAT(things_of("Since I became a florist, my mornings start early."), ElementsAre("florist"));
  EXPECT_TRUE(single_valued_kind("Car"));
  EXPECT_TRUE(single_valued_kind("company"));
  EXPECT_FALSE(single_valued_kind("person"));
  EXPECT_FALSE(single_valued_kind("dog"));
}

TEST(UserStatements, ANewThingOfTheSameKindReplacesTheOld) {
  std::vector<UserStatement> statements = extract_statements(implicit_update_logs());
  auto superseded = [&](const std::string& text) {
    for (const UserStatement& s : statements)
      if (s.text == text) return s.superseded;
    ADD_FAILURE() << "no statement " << text;
    return false;
  };
  // The text rules alone see no change.
  for (const UserStatement& s : statements) EXPECT_FALSE(s.superseded) << s.text;
  EXPECT_EQ(mark_replaced_by_kind(statements, implicit_update_kinds()), 4);
  EXPECT_TRUE(superseded("I drive a Honda Civic."));
  EXPECT_TRUE(superseded("My Honda Civic needs new tires."));
  EXPECT_TRUE(superseded("I work as a welder."));
  EXPECT_TRUE(superseded("I'm a welder by trade."));
  EXPECT_FALSE(superseded("Picking up my new Ford Bronco was the highlight of my week."));
  EXPECT_FALSE(superseded("Since I became a florist, my mornings start early."));
  EXPECT_FALSE(superseded("My Ford Bronco handles the hills fine."));
  EXPECT_FALSE(superseded("I have a brother called Logan."));
  // Without kinds, or with kinds that are not had one at a time, nothing changes.
  std::vector<UserStatement> again = extract_statements(implicit_update_logs());
  EXPECT_EQ(mark_replaced_by_kind(again, {}), 0);
  EXPECT_EQ(mark_replaced_by_kind(again, {{"Honda Civic", "toy"}, {"Ford Bronco", "toy"}}), 0);
}

TEST(UserStatements, AThingStillNamedAfterTheNewOneStays) {
  std::vector<LogRecord> logs = implicit_update_logs();
  // The Civic is named again after the Bronco arrived: two cars, both current.
  logs.push_back(conversation("c5", 500, {{"user", "I lent my Honda Civic to a friend."}, {"assistant", "Kind."}}));
  std::vector<UserStatement> statements = extract_statements(logs);
  mark_replaced_by_kind(statements, implicit_update_kinds());
  for (const UserStatement& s : statements)
    if (s.text.find("Civic") != std::string::npos) EXPECT_FALSE(s.superseded) << s.text;
}

TEST(TrainingData, TheLabelerFindsImplicitUpdates) {
  DataConfig config;
  config.augmentation = false;
  std::vector<std::string> asked;
  KindLabeler labeler = [&](const std::vector<NamedThing>& things) {
    for (const NamedThing& t : things) asked.push_back(t.thing);
    return implicit_update_kinds();
  };
  UserData data = build_user_data("alice", implicit_update_logs(), config, labeler);
  EXPECT_EQ(data.n_replaced_by_kind, 4);
  EXPECT_THAT(asked, ::testing::Contains("Ford Bronco"));
  for (const ChatExample& example : data.examples)
    for (const ChatMessage& m : example.messages) {
      EXPECT_EQ(m.content.find("Honda Civic"), std::string::npos) << m.content;  // cut from conversations too
    }
  config.implicit_updates = false;
  asked.clear();
  EXPECT_EQ(build_user_data("alice", implicit_update_logs(), config, labeler).n_replaced_by_kind, 0);
  EXPECT_TRUE(asked.empty());
}

TEST(UserStatements, WhatANewerStatementCallsOldIsSuperseded) {
  std::vector<LogRecord> logs = {
      conversation("c1", 100, {{"user", "My Vespa scooter has been so reliable."}, {"assistant", "Nice."}}),
      conversation("c2", 200,
                   {{"user", "The Skoda Octavia I just bought is much nicer than my old Vespa scooter."},
                    {"assistant", "Enjoy it."}}),
      conversation("c3", 300, {{"user", "I took my Skoda Octavia to the coast."}, {"assistant", "Fun."}}),
      // "old" without a replacement is only old: the Octavia stays current.
      conversation("c4", 400, {{"user", "I still keep my old Skoda Octavia manual."}, {"assistant", "Nice."}}),
  };
  std::vector<UserStatement> statements = extract_statements(logs);
  ASSERT_EQ(statements.size(), 4u);
  EXPECT_TRUE(statements[0].superseded);
  // It names the old one too, and keeps what is current.
  EXPECT_FALSE(statements[1].superseded);
  EXPECT_EQ(statements[1].text, "The Skoda Octavia I just bought is much nicer than my old one.");
  EXPECT_FALSE(statements[2].superseded);
  EXPECT_FALSE(statements[3].superseded);
}

// A change that names the old value beside the new keeps its current part
// where its wording holds the two apart, and goes where it does not.
TEST(UserStatements, AChangeKeepsItsCurrentPart) {
  std::vector<LogRecord> logs = {
      conversation("c1", 100,
                   {{"user", "I work at Halcyon Freightways. I drive a Mazda CX-5. I live in Leeds."},
                    {"assistant", "Noted."}}),
      conversation("c2", 200,
                   {{"user", "Switching from Halcyon Freightways to Ravenwood Security was the best career move "
                             "I've made. I finally replaced my old Mazda CX-5 with a Nissan Altima. I moved to "
                             "York, and I no longer miss Leeds."},
                    {"assistant", "Congratulations."}}),
  };
  std::vector<UserStatement> statements = extract_statements(logs);
  std::vector<std::string> current;
  for (const UserStatement& s : statements)
    if (!s.superseded) current.push_back(s.text);
  EXPECT_THAT(current, ElementsAre("Switching to Ravenwood Security was the best career move I've made.",
                                   "I finally replaced my old one with a Nissan Altima."));
  // "I moved to York, and I no longer miss Leeds." cannot be cut apart by these rules: it goes.
}

}  // namespace
}  // namespace mnemo
