// The token-level memory baseline: one user's log turns in an SQLite FTS5
// table, ranked against a question by FTS5's bm25() (Porter-stemmed unicode61
// tokens). One index per user, so term statistics come from that user's turns
// only and no other user's text can be retrieved.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace mnemo {

struct RetrievedTurn {
  int64_t position = 0;  // order of insertion (the turn's place in the history)
  std::string text;
  double score = 0;  // bm25(): lower is better (FTS5's convention)
};

class Bm25Index {
 public:
  // An in-memory index. Throws mnemo::Error when this SQLite lacks FTS5.
  Bm25Index();
  ~Bm25Index();
  Bm25Index(const Bm25Index&) = delete;
  Bm25Index& operator=(const Bm25Index&) = delete;

  // Adds one turn; positions count up from 0 in the order added.
  void add(std::string_view text);
  // The best `k` turns for `query` (any of its words may match), best first;
  // fewer when fewer turns share a word with it, none for a query without words.
  std::vector<RetrievedTurn> search(std::string_view query, int64_t k) const;
  int64_t size() const { return n_turns_; }

 private:
  sqlite3* db_ = nullptr;
  int64_t n_turns_ = 0;
};

// The FTS5 query for free text: each word as a quoted term, joined by OR
// (FTS5's default is AND, and its syntax characters must not reach it raw).
std::string fts5_any_word_query(std::string_view text);

}  // namespace mnemo
