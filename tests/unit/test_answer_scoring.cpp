// How answers are matched and scored (eval/answer_text.h, eval/scoring.h):
// folding, substring and whole-phrase matching, the update rule (new value
// and no stale one), the abstention phrases, and leakage.
#include "eval/answer_text.h"
#include "eval/scoring.h"

#include <gtest/gtest.h>

namespace mnemo {
namespace {

Question make_question(const std::string& user, QuestionKind kind, std::vector<std::string> answers,
                       std::vector<std::string> stale = {}) {
  Question q;
  q.user = user;
  q.fact = "home_city";
  q.kind = kind;
  q.question = "Where do I live?";
  q.answers = std::move(answers);
  q.stale = std::move(stale);
  return q;
}

TEST(AnswerText, FoldsCaseAccentsQuotesAndWhitespace) {
  EXPECT_EQ(fold_for_matching("  São   PAULO\t"), "sao paulo");
  EXPECT_EQ(fold_for_matching("Zoë’s “café” — Ærø"), "zoe's \"cafe\" - aero");
  EXPECT_EQ(fold_for_matching("Łódź"), "lodz");
  EXPECT_EQ(fold_for_matching("e\xCC\x81" "clair"), "eclair");  // decomposed é
  EXPECT_EQ(fold_for_matching("\xEF\xBC\xA1\xEF\xBD\x82"), "ab");  // fullwidth Ａｂ
  EXPECT_EQ(fold_for_matching("\xEF\xAC\x81sh"), "fish");          // ﬁ ligature
  EXPECT_EQ(fold_for_matching("МОСКВА"), "москва");
  EXPECT_EQ(fold_for_matching("a\xC2\xA0" "b"), "a b");            // no-break space
  EXPECT_EQ(fold_for_matching("bad \xFF byte"), "bad \xFF byte");  // invalid UTF-8 kept
}

TEST(AnswerText, SubstringAndPhraseMatching) {
  EXPECT_TRUE(contains_folded("Your dog is called BISCUIT!", "Biscuit"));
  EXPECT_TRUE(contains_folded("I believe it is March 14th.", "March 14"));
  EXPECT_FALSE(contains_folded("anything", ""));
  EXPECT_TRUE(contains_folded_phrase("You live in Rome.", "Rome"));
  EXPECT_FALSE(contains_folded_phrase("Romeo and Juliet", "Rome"));
  EXPECT_FALSE(contains_folded_phrase("the alphabet", "Al"));
  EXPECT_TRUE(contains_folded_phrase("Al said hi", "Al"));
  EXPECT_TRUE(contains_folded_phrase("She works at harbor analytics now", "Harbor Analytics"));
}

TEST(Scoring, RecallNeedsOneAcceptedAnswer) {
  FactValueOwners owners({make_question("alice", QuestionKind::Recall, {"Lisbon"})});
  Question q = make_question("alice", QuestionKind::Recall, {"Lisbon"});
  EXPECT_TRUE(score_answer(q, "You live in lisbon.", owners).correct);
  EXPECT_FALSE(score_answer(q, "You live in Porto.", owners).correct);
}

TEST(Scoring, UpdateIsWrongWhenTheStaleValueIsGivenToo) {
  Question q = make_question("alice", QuestionKind::Update, {"Porto"}, {"Lyon"});
  FactValueOwners owners({q});
  EXPECT_TRUE(score_answer(q, "You live in Porto now.", owners).correct);
  AnswerScore both = score_answer(q, "You moved from Lyon to Porto.", owners);
  EXPECT_FALSE(both.correct);
  EXPECT_TRUE(both.gave_stale);
  EXPECT_FALSE(score_answer(q, "You live in Lyon.", owners).correct);
}

TEST(Scoring, AbstentionNeedsANotKnowingPhraseAndNoValue) {
  Question own = make_question("alice", QuestionKind::Recall, {"Biscuit"});
  Question other = make_question("bob", QuestionKind::Recall, {"Pickles"});
  Question abstain = make_question("alice", QuestionKind::Abstain, {});
  FactValueOwners owners({own, other, abstain});
  EXPECT_TRUE(score_answer(abstain, "I don’t know where you live; you haven't told me.", owners).correct);
  EXPECT_TRUE(score_answer(abstain, "You have not mentioned it.", owners).correct);
  EXPECT_FALSE(score_answer(abstain, "You live in a lovely town.", owners).correct);  // no not-knowing phrase
  EXPECT_FALSE(score_answer(abstain, "I'm not sure, maybe Biscuit?", owners).correct);  // her own other value
  EXPECT_FALSE(score_answer(abstain, "I don't know, Pickles?", owners).correct);  // another user's value
}

TEST(Scoring, NotKnowingPhrasesAreRecognised) {
  for (std::string_view phrase : kNotKnowingPhrases) EXPECT_TRUE(says_not_knowing(phrase)) << phrase;
  EXPECT_TRUE(says_not_knowing("I DON'T KNOW."));
  EXPECT_FALSE(says_not_knowing("Your sister is called Nora."));
  EXPECT_FALSE(says_not_knowing("Sure! It's a cat."));
}

TEST(Scoring, LeakageCountsValuesOnlyOtherUsersHave) {
  Question alice = make_question("alice", QuestionKind::Recall, {"Lisbon"});
  Question bob = make_question("bob", QuestionKind::Recall, {"Osaka"});
  Question shared_alice = make_question("alice", QuestionKind::Recall, {"Tagalog"});
  Question shared_bob = make_question("bob", QuestionKind::Recall, {"Tagalog"});
  FactValueOwners owners({alice, bob, shared_alice, shared_bob});
  EXPECT_EQ(score_answer(alice, "You live in Osaka.", owners).leaked, std::vector<std::string>{"Osaka"});
  EXPECT_TRUE(score_answer(alice, "You live in Lisbon.", owners).leaked.empty());
  EXPECT_TRUE(score_answer(alice, "You speak Tagalog.", owners).leaked.empty());  // alice has it too
  EXPECT_TRUE(score_answer(alice, "Osakan food is great", owners).leaked.empty());  // not the whole phrase
}

}  // namespace
}  // namespace mnemo
