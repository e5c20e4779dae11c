#include "eval/bm25_index.h"

#include "model/error.h"

#include <sqlite3.h>

namespace mnemo {
namespace {

void check(sqlite3* db, int code, const char* what) {
  if (code != SQLITE_OK && code != SQLITE_DONE && code != SQLITE_ROW)
    fail("bm25 index: {}: {}", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(code));
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    check(db, sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr), sql);
  }
  ~Statement() { sqlite3_finalize(statement_); }
  sqlite3_stmt* get() const { return statement_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* statement_ = nullptr;
};

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

}  // namespace

std::string fts5_any_word_query(std::string_view text) {
  std::string query;
  for (size_t i = 0; i < text.size();) {
    if (!is_word_byte(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < text.size() && is_word_byte(static_cast<unsigned char>(text[i]))) ++i;
    if (!query.empty()) query += " OR ";
    query += '"' + std::string(text.substr(start, i - start)) + '"';  // a word holds no '"'
  }
  return query;
}

Bm25Index::Bm25Index() {
  check(nullptr, sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
        "open an in-memory database");
  int code = sqlite3_exec(db_, "CREATE VIRTUAL TABLE turns USING fts5(text, tokenize = 'porter unicode61')",
                          nullptr, nullptr, nullptr);
  if (code != SQLITE_OK)
    fail("bm25 index: this SQLite cannot create an FTS5 table ({}); the bm25 condition needs FTS5",
         sqlite3_errmsg(db_));
}

Bm25Index::~Bm25Index() { sqlite3_close(db_); }

void Bm25Index::add(std::string_view text) {
  Statement insert(db_, "INSERT INTO turns(rowid, text) VALUES (?1, ?2)");
  sqlite3_bind_int64(insert.get(), 1, n_turns_);
  sqlite3_bind_text(insert.get(), 2, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  check(db_, sqlite3_step(insert.get()), "insert a turn");
  ++n_turns_;
}

std::vector<RetrievedTurn> Bm25Index::search(std::string_view query, int64_t k) const {
  std::vector<RetrievedTurn> turns;
  const std::string match = fts5_any_word_query(query);
  if (match.empty() || k <= 0) return turns;
  Statement select(db_,
                   "SELECT rowid, text, bm25(turns) FROM turns WHERE turns MATCH ?1 ORDER BY bm25(turns), rowid "
                   "LIMIT ?2");
  sqlite3_bind_text(select.get(), 1, match.data(), static_cast<int>(match.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(select.get(), 2, k);
  int code;
  while ((code = sqlite3_step(select.get())) == SQLITE_ROW) {
    RetrievedTurn turn;
    turn.position = sqlite3_column_int64(select.get(), 0);
    turn.text = reinterpret_cast<const char*>(sqlite3_column_text(select.get(), 1));
    turn.score = sqlite3_column_double(select.get(), 2);
    turns.push_back(std::move(turn));
  }
  check(db_, code, "search");
  return turns;
}

}  // namespace mnemo
