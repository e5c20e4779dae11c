// Mnemo's tokenizer equals `tokenizers` on the reference tokenizers that
// scripts/reference_tokenizers.py trains: every id of every hard string (with
// and without special tokens), every decode, decode(encode(s)) == s, and the
// stream decoder's concatenated pieces.
#include "tokenizer/tokenizer.h"
#include "support/reference.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace mnemo {
namespace {

const char* kTokenizers[] = {"bytelevel", "llama3", "smollm", "spm", "spm_metaspace"};

nlohmann::json expected_for(const std::string& name) {
  std::ifstream file(testing::reference_dir() / "tokenizers" / "expected.json");
  EXPECT_TRUE(file.good()) << "no expected.json: run scripts/make_reference_models.py";
  return nlohmann::json::parse(file)["tokenizers"][name];
}

std::string quoted(const std::string& text) { return nlohmann::json(text).dump(); }

bool is_valid_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    unsigned char c = text[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

class TokenizerParity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    tokenizer_ = std::make_unique<Tokenizer>(
        Tokenizer::from_file((testing::reference_dir() / "tokenizers" / GetParam() / "tokenizer.json").string()));
    expected_ = expected_for(GetParam());
  }
  std::unique_ptr<Tokenizer> tokenizer_;
  nlohmann::json expected_;
};

TEST_P(TokenizerParity, VocabularySizeMatches) {
  EXPECT_EQ(tokenizer_->vocab_size(), expected_["vocab_size"].get<int32_t>());
}

TEST_P(TokenizerParity, EveryIdMatchesWithAndWithoutSpecialTokens) {
  for (const auto& c : expected_["cases"]) {
    std::string text = c["text"];
    EXPECT_EQ(tokenizer_->encode(text, true), c["ids"].get<std::vector<int32_t>>()) << quoted(text);
    EXPECT_EQ(tokenizer_->encode(text, false), c["ids_no_special"].get<std::vector<int32_t>>()) << quoted(text);
  }
}

TEST_P(TokenizerParity, DecodeMatchesWithAndWithoutSkippingSpecialTokens) {
  for (const auto& c : expected_["cases"]) {
    auto ids = c["ids"].get<std::vector<int32_t>>();
    auto plain = c["ids_no_special"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer_->decode(ids, false), c["decoded"].get<std::string>()) << quoted(c["text"]);
    EXPECT_EQ(tokenizer_->decode(ids, true), c["decoded_skip_special"].get<std::string>()) << quoted(c["text"]);
    EXPECT_EQ(tokenizer_->decode(plain, false), c["decoded_no_special"].get<std::string>()) << quoted(c["text"]);
  }
}

TEST_P(TokenizerParity, DecodeOfEncodeRoundTripsWhereTheReferenceDoes) {
  for (const auto& c : expected_["cases"]) {
    std::string text = c["text"];
    // A SentencePiece-style tokenizer drops one leading space by design; the
    // reference shows which strings survive, and those must survive here too.
    if (c["decoded_no_special"] != text) continue;
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(text, false)), text) << quoted(text);
  }
}

TEST_P(TokenizerParity, StreamDecoderPiecesAreValidUtf8AndConcatenateToDecode) {
  for (bool skip : {false, true}) {
    for (const auto& c : expected_["cases"]) {
      auto ids = c["ids"].get<std::vector<int32_t>>();
      StreamDecoder stream(*tokenizer_, skip);
      std::string joined;
      for (int32_t id : ids) {
        std::string piece = stream.push(id);
        EXPECT_TRUE(is_valid_utf8(piece)) << quoted(c["text"]) << " piece " << quoted(piece);
        joined += piece;
      }
      joined += stream.flush();
      EXPECT_EQ(joined, tokenizer_->decode(ids, skip)) << quoted(c["text"]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ReferenceTokenizers, TokenizerParity, ::testing::ValuesIn(kTokenizers));

}  // namespace
}  // namespace mnemo
