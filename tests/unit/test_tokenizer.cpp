// The tokenizer on small hand-built tokenizer.json objects: how merges, byte
// fallback, unk, added tokens and the post-processor behave, that the stream
// decoder never splits a UTF-8 character, and that each kind of malformed file
// fails with one error naming the file and the JSON path.
#include "tokenizer/tokenizer.h"
#include "model/error.h"
#include "support/errors.h"
#include "support/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace mnemo {
namespace {

using ::testing::ElementsAre;
using ::testing::AllOf;
using ::testing::HasSubstr;
using nlohmann::json;

// Byte-level BPE: every byte is a token (GPT-2's printable mapping), plus merges.
json byte_level_json(json merges, json extra_vocab = json::object()) {
  json vocab = json::object();
  // bytes_to_unicode for the bytes these tests use; ids are the byte values.
  for (int byte = 0; byte < 256; ++byte) {
    bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE);
    int code_point = byte;
    if (!printable) {
      int n = 0;
      for (int b = 0; b < byte; ++b)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) ++n;
      code_point = 256 + n;
    }
    std::string s;
    if (code_point < 0x80) s += static_cast<char>(code_point);
    else s += static_cast<char>(0xC0 | (code_point >> 6)), s += static_cast<char>(0x80 | (code_point & 0x3F));
    vocab[s] = byte;
  }
  for (auto& [token, id] : extra_vocab.items()) vocab[token] = id;
  return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}}}};
}

// SentencePiece style: ▁ words, <0xNN> byte tokens, <unk>, Llama-2 normalizer and decoder.
json spm_json(bool byte_fallback, bool fuse_unk) {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int byte = 0; byte < 256; ++byte) vocab[fmt::format("<0x{:02X}>", byte)] = 3 + byte;
  int next = 259;
  for (const char* token : {"▁", "h", "i", "▁h", "▁hi", "e", "y", "▁hey", "he", "▁he"}) vocab[token] = next++;
  json merges = json::array({"▁ h", "▁h i", "h e", "▁h e", "▁he y"});
  return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"unk_token", "<unk>"},
                     {"byte_fallback", byte_fallback}, {"fuse_unk", fuse_unk}}},
          {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array({
              {{"type", "Prepend"}, {"prepend", "▁"}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}})}}},
          {"decoder", {{"type", "Sequence"}, {"decoders", json::array({
              {{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
              {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
          {"added_tokens", json::array({
              {{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
              {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
              {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}})},
          {"post_processor", {{"type", "TemplateProcessing"},
                              {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                      {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                              {"pair", json::array()},
                              {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}}};
}

using testing::error_of;

TEST(Tokenizer, MergesApplyByRankInBothJsonForms) {
  // a+b has rank 0 and b+c rank 1, so "abc" is [ab, c] even though bc exists.
  json extra = {{"ab", 300}, {"bc", 301}, {"abc", 302}};
  Tokenizer strings = Tokenizer::from_json(byte_level_json({"a b", "b c"}, extra), "strings");
  Tokenizer pairs = Tokenizer::from_json(byte_level_json(json::array({json::array({"a", "b"}), json::array({"b", "c"})}), extra), "pairs");
  EXPECT_THAT(strings.encode("abc", false), ElementsAre(300, 'c'));
  EXPECT_EQ(pairs.encode("abc", false), strings.encode("abc", false));
  Tokenizer full = Tokenizer::from_json(byte_level_json({"a b", "b c", "ab c"}, extra), "full");
  EXPECT_THAT(full.encode("abc bc", false), ElementsAre(302, ' ', 301));
}

TEST(Tokenizer, IgnoreMergesTakesAWholeWordFromTheVocabulary) {
  json file = byte_level_json({"a b"}, {{"ab", 300}, {"abc", 302}});
  EXPECT_THAT(Tokenizer::from_json(file, "t").encode("abc", false), ElementsAre(300, 'c'));
  file["model"]["ignore_merges"] = true;
  EXPECT_THAT(Tokenizer::from_json(file, "t").encode("abc", false), ElementsAre(302));
}

TEST(Tokenizer, ByteLevelRoundTripsAnyUtf8) {
  Tokenizer tokenizer = Tokenizer::from_json(byte_level_json(json::array()), "t");
  for (std::string text : {"", "héllo wörld", "東京 😀👨‍👩‍👧", "  \n\t tabs\r\n", "I'm 12345"})
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text);
  EXPECT_THAT(tokenizer.encode("é", false), ElementsAre(0xC3, 0xA9));
}

TEST(Tokenizer, ByteFallbackSpellsUnknownCharactersAsBytes) {
  Tokenizer tokenizer = Tokenizer::from_json(spm_json(true, true), "spm");
  EXPECT_THAT(tokenizer.encode("hey hi", false), ElementsAre(266, 263));
  // "é" is not in the vocabulary: its two UTF-8 bytes become <0xC3> <0xA9>.
  EXPECT_THAT(tokenizer.encode("é", false), ElementsAre(259, 3 + 0xC3, 3 + 0xA9));
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("hey é hi", false)), "hey é hi");
  // A lone continuation byte decodes to U+FFFD, as `tokenizers` does.
  std::vector<int32_t> lone = {3 + 0xA9};
  EXPECT_EQ(tokenizer.decode(lone), "\xEF\xBF\xBD");
}

TEST(Tokenizer, UnknownCharactersBecomeUnkFusedOrNot) {
  EXPECT_THAT(Tokenizer::from_json(spm_json(false, true), "t").encode("hqxz", false), ElementsAre(262, 0));
  EXPECT_THAT(Tokenizer::from_json(spm_json(false, false), "t").encode("hqxz", false), ElementsAre(262, 0, 0, 0));
}

TEST(Tokenizer, PostProcessorAddsBosOnlyWithSpecialTokens) {
  Tokenizer tokenizer = Tokenizer::from_json(spm_json(true, true), "spm");
  EXPECT_THAT(tokenizer.encode("hi", true), ElementsAre(1, 263));
  EXPECT_THAT(tokenizer.encode("hi", false), ElementsAre(263));
}

TEST(Tokenizer, SpecialTokensInTextAreMatchedAndSkippableInDecode) {
  Tokenizer tokenizer = Tokenizer::from_json(spm_json(true, true), "spm");
  std::vector<int32_t> ids = tokenizer.encode("hi</s>hey", false);
  EXPECT_THAT(ids, ElementsAre(263, 2, 266));
  EXPECT_TRUE(tokenizer.is_special(2));
  EXPECT_FALSE(tokenizer.is_special(262));
  EXPECT_EQ(tokenizer.decode(ids, false), "hi</s> hey");
  EXPECT_EQ(tokenizer.decode(ids, true), "hi hey");
  EXPECT_EQ(tokenizer.token_to_id("</s>"), 2);
  EXPECT_EQ(tokenizer.id_to_token(266), "▁hey");
  EXPECT_EQ(tokenizer.token_to_id("nope"), std::nullopt);
}

TEST(Tokenizer, AddedTokensMatchLongestFirstAndHonourStripAndSingleWord) {
  json file = byte_level_json(json::array());
  file["added_tokens"] = json::array({
      {{"id", 400}, {"content", "<x>"}, {"special", true}, {"normalized", false}},
      {{"id", 401}, {"content", "<x><y>"}, {"special", true}, {"normalized", false}},
      {{"id", 402}, {"content", "<t>"}, {"lstrip", true}, {"rstrip", true}, {"normalized", false}},
      {{"id", 403}, {"content", "cat"}, {"single_word", true}, {"normalized", false}}});
  Tokenizer tokenizer = Tokenizer::from_json(file, "t");
  EXPECT_THAT(tokenizer.encode("<x><y><x>", false), ElementsAre(401, 400));
  EXPECT_THAT(tokenizer.encode("a  <t>  b", false), ElementsAre('a', 402, 'b'));
  EXPECT_THAT(tokenizer.encode("cat", false), ElementsAre(403));
  EXPECT_THAT(tokenizer.encode("cats", false), ElementsAre('c', 'a', 't', 's'));
  EXPECT_EQ(tokenizer.vocab_size(), 404);
}

TEST(Tokenizer, StreamDecoderHoldsBackIncompleteCharacters) {
  Tokenizer tokenizer = Tokenizer::from_json(byte_level_json(json::array()), "t");
  std::string text = "a😀é東";
  std::vector<int32_t> ids = tokenizer.encode(text, false);
  ASSERT_EQ(ids.size(), 1u + 4 + 2 + 3);
  StreamDecoder stream(tokenizer);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(stream.push(id));
  EXPECT_THAT(pieces, ElementsAre("a", "", "", "", "😀", "", "é", "", "", "東"));
  EXPECT_EQ(stream.flush(), "");
}

TEST(Tokenizer, StreamDecoderFlushGivesUpOnBytesThatNeverComplete) {
  Tokenizer tokenizer = Tokenizer::from_json(spm_json(true, true), "spm");
  StreamDecoder stream(tokenizer);
  std::string joined = stream.push(263);
  joined += stream.push(3 + 0xE2);
  joined += stream.push(3 + 0x82);
  EXPECT_EQ(joined, "hi");
  joined += stream.flush();
  std::vector<int32_t> all = {263, 3 + 0xE2, 3 + 0x82};
  EXPECT_EQ(joined, tokenizer.decode(all));
}

TEST(Tokenizer, StreamDecoderMatchesDecodeForSentencePieceSpaces) {
  Tokenizer tokenizer = Tokenizer::from_json(spm_json(true, true), "spm");
  std::vector<int32_t> ids = tokenizer.encode("hey hi  é hey", true);
  StreamDecoder stream(tokenizer, true);
  std::string joined;
  for (int32_t id : ids) joined += stream.push(id);
  joined += stream.flush();
  EXPECT_EQ(joined, tokenizer.decode(ids, true));
  EXPECT_EQ(joined, "hey hi  é hey");
}

TEST(Tokenizer, MetaspaceDecoderDropsEveryReplacementOfTheFirstTokenLikeTokenizers) {
  // `tokenizers` gives "ab c" for ["▁a▁b", "▁c"] (prepend_scheme first) and " a b c" (never).
  auto decode_with = [](const char* scheme) {
    json file = {{"model", {{"type", "BPE"}, {"vocab", {{"▁a▁b", 0}, {"▁c", 1}}}, {"merges", json::array()}}},
                 {"decoder", {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", scheme}}}};
    std::vector<int32_t> ids = {0, 1};
    return Tokenizer::from_json(file, "t").decode(ids);
  };
  EXPECT_EQ(decode_with("first"), "ab c");
  EXPECT_EQ(decode_with("never"), " a b c");
}

TEST(Tokenizer, NfcIsAcceptedForTextItLeavesUnchangedAndRefusedOtherwise) {
  json file = byte_level_json(json::array());
  file["normalizer"] = {{"type", "NFC"}};
  Tokenizer tokenizer = Tokenizer::from_json(file, "qwen-like");
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("café 東京 😀")), "café 東京 😀");
  EXPECT_THAT(error_of([&] { tokenizer.encode("cafe\xCC\x81"); }), HasSubstr("NFC"));
}

// A hostile id made the reader allocate a table of that many entries first
// (4 GB for 99,999,999; a bare std::bad_alloc for 2,000,000,000).
TEST(Tokenizer, TokenIdsFarBeyondTheVocabularyAreRefusedBeforeAllocating) {
  for (int64_t id : {int64_t{99'999'999}, int64_t{2'000'000'000}}) {
    json file = spm_json(true, true);
    file["added_tokens"].push_back({{"id", id}, {"content", "<evil>"}, {"special", true}, {"normalized", false}});
    EXPECT_THAT(error_of([&] { Tokenizer::from_json(file, "t.json"); }),
                AllOf(HasSubstr("t.json"), HasSubstr("added_tokens[3].id"), HasSubstr(std::to_string(id)),
                      HasSubstr("beyond the vocabulary")));
    file = spm_json(true, true);
    file["model"]["vocab"]["zz"] = id;
    EXPECT_THAT(error_of([&] { Tokenizer::from_json(file, "t.json"); }),
                AllOf(HasSubstr("model.vocab.zz"), HasSubstr(std::to_string(id))));
  }
}

TEST(Tokenizer, InvalidUtf8InputIsAnErrorWithTheOffset) {
  Tokenizer tokenizer = Tokenizer::from_json(byte_level_json(json::array()), "t");
  EXPECT_THAT(error_of([&] { tokenizer.encode("ok\xFF"); }), HasSubstr("byte offset 2"));
}

TEST(Tokenizer, MalformedFilesFailNamingFileAndJsonPath) {
  auto dir = testing::scratch_dir("tokenizer_malformed");
  auto bad = dir / "tokenizer.json";
  std::ofstream(bad) << "{\"model\": ";
  EXPECT_THAT(error_of([&] { Tokenizer::from_file(bad.string()); }),
              ::testing::AllOf(HasSubstr(bad.string()), HasSubstr("not valid JSON")));
  EXPECT_THAT(error_of([&] { Tokenizer::from_file((dir / "missing.json").string()); }), HasSubstr("cannot open"));

  EXPECT_THAT(error_of([] { Tokenizer::from_json(json::object(), "f.json"); }), HasSubstr("f.json: model: missing"));
  json unigram = byte_level_json(json::array());
  unigram["model"]["type"] = "Unigram";
  EXPECT_THAT(error_of([&] { Tokenizer::from_json(unigram, "f.json"); }),
              HasSubstr("f.json: model.type: unsupported model type \"Unigram\""));
  json pre = byte_level_json(json::array());
  pre["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({{{"type", "Bogus"}}})}};
  EXPECT_THAT(error_of([&] { Tokenizer::from_json(pre, "f.json"); }),
              HasSubstr("pre_tokenizer.pretokenizers[0].type: unsupported pre_tokenizer type \"Bogus\""));
  json norm = byte_level_json(json::array());
  norm["normalizer"] = {{"type", "NFD"}};
  EXPECT_THAT(error_of([&] { Tokenizer::from_json(norm, "f.json"); }),
              HasSubstr("normalizer.type: unsupported normalizer type \"NFD\""));
  json dec = byte_level_json(json::array());
  dec["decoder"] = {{"type", "WordPiece"}};
  EXPECT_THAT(error_of([&] { Tokenizer::from_json(dec, "f.json"); }),
              HasSubstr("decoder.type: unsupported decoder type \"WordPiece\""));
  json merge = byte_level_json({"a b", "a zz"}, {{"ab", 300}});
  EXPECT_THAT(error_of([&] { Tokenizer::from_json(merge, "f.json"); }),
              HasSubstr("f.json: model.merges[1]: merge names unknown token \"zz\""));
  json unmerged = byte_level_json({"a c"});
  EXPECT_THAT(error_of([&] { Tokenizer::from_json(unmerged, "f.json"); }),
              HasSubstr("model.merges[0]: merged token \"ac\" is not in model.vocab"));
  json regex = byte_level_json(json::array());
  regex["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  EXPECT_THAT(error_of([&] { Tokenizer::from_json(regex, "f.json"); }),
              HasSubstr("pre_tokenizer.pattern.Regex: regex does not compile"));
}

TEST(Tokenizer, SplitBehavioursCutLikeTokenizers) {
  auto pieces = [](const char* behaviour, bool invert) {
    json file = byte_level_json(json::array());
    file["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behaviour},
                             {"invert", invert}};
    file["decoder"] = nullptr;  // join tokens with spaces so the cuts are visible
    Tokenizer tokenizer = Tokenizer::from_json(file, "t");
    return tokenizer.encode("a-b--c", false).size();
  };
  // Every piece is one byte token here, so the count shows how much was removed.
  EXPECT_EQ(pieces("Isolated", false), 6u);
  EXPECT_EQ(pieces("Removed", false), 3u);
  EXPECT_EQ(pieces("Removed", true), 3u);
}

}  // namespace
}  // namespace mnemo
