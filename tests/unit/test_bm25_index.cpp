// The BM25 baseline's retrieval: SQLite FTS5 over one user's turns.
#include "eval/bm25_index.h"

#include <gtest/gtest.h>

namespace mnemo {
namespace {

TEST(Bm25Index, RanksTheTurnThatSharesTheRarestWordsFirst) {
  Bm25Index index;
  index.add("What is a good pasta recipe for tonight?");
  index.add("My dog Biscuit chewed my slippers again.");
  index.add("What is the capital of Peru?");
  index.add("What is the best way to learn chess?");
  index.add("I walked along the river in the rain.");
  std::vector<RetrievedTurn> turns = index.search("What is my dog called?", 2);
  ASSERT_EQ(turns.size(), 2u);
  EXPECT_EQ(turns[0].position, 1) << turns[0].text;  // "dog" and "my" are rare, "what is" common
  EXPECT_LE(turns[0].score, turns[1].score);
  EXPECT_EQ(index.search("slippers", 3).at(0).position, 1);
  EXPECT_EQ(index.search("slippers", 3).size(), 1u);
}

TEST(Bm25Index, QueriesAreNeverParsedAsFts5Syntax) {
  Bm25Index index;
  index.add("The meeting is at noon.");
  EXPECT_EQ(fts5_any_word_query("what's \"up\" (NEAR) AND x*?"), "\"what\" OR \"s\" OR \"up\" OR \"NEAR\" OR \"AND\" OR \"x\"");
  EXPECT_NO_THROW(index.search("\"unbalanced ( quote AND OR NOT *", 3));
  EXPECT_TRUE(index.search("?!", 3).empty());
  EXPECT_TRUE(index.search("zebra", 3).empty());
  EXPECT_EQ(index.search("meetings", 3).size(), 1u);  // Porter stemming
}

}  // namespace
}  // namespace mnemo
