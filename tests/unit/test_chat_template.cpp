// Chat templates are recognised by family from the template text, carry the
// defaults written in that text, render each family's layout, and refuse what
// the original template would refuse. (Exact agreement with transformers is
// tests/interop/test_chat_template_parity.cpp.)
#include "tokenizer/chat_template.h"
#include "model/error.h"
#include "support/errors.h"
#include "support/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

namespace mnemo {
namespace {

using ::testing::HasSubstr;

const char* kSmolLM2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const char* kPlainChatML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

using testing::error_of;

TEST(ChatTemplate, SmolLM2InjectsTheDefaultSystemPromptFromItsTemplateText) {
  ChatTemplate chat = ChatTemplate::from_template_text(kSmolLM2, "<|im_start|>", "<|im_end|>", "smol");
  EXPECT_EQ(chat.family(), "chatml");
  EXPECT_EQ(chat.default_system_prompt(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(chat.render({{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chat.render({{"system", "S"}, {"user", "Hi"}}, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, ChatMLWithoutADefaultAddsNoSystemTurn) {
  ChatTemplate chat = ChatTemplate::from_template_text(kPlainChatML, "", "<|im_end|>", "smol-v1");
  EXPECT_EQ(chat.default_system_prompt(), "");
  EXPECT_EQ(chat.render({{"user", "Hi"}}, false), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Llama3TrimsContentAndStartsWithBos) {
  ChatTemplate chat = ChatTemplate::from_template_text(
      "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
      "+ '<|eot_id|>' %}",
      "<|begin_of_text|>", "<|eot_id|>", "llama3");
  EXPECT_EQ(chat.family(), "llama3");
  EXPECT_EQ(chat.render({{"user", "  Hi \n"}, {"assistant", "Yo"}}, true),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nYo<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama31AddsItsKnowledgeDateSystemBlock) {
  ChatTemplate chat = ChatTemplate::from_template_text(
      "{%- set date_string = \"26 Jul 2024\" %}<|start_header_id|>{{- \"Cutting Knowledge Date: December 2023\\n\" }}",
      "<|begin_of_text|>", "<|eot_id|>", "llama3.1");
  EXPECT_EQ(chat.render({{"system", "Be brief."}, {"user", "Hi"}}, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, Llama2FoldsTheSystemPromptIntoTheFirstInst) {
  ChatTemplate chat = ChatTemplate::from_template_text("... [INST] ... <<SYS>> ...", "<s>", "</s>", "llama2");
  EXPECT_EQ(chat.family(), "llama2");
  EXPECT_EQ(chat.render({{"system", "S"}, {"user", "Q1"}, {"assistant", " A1 "}, {"user", "Q2"}}, true),
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nQ1 [/INST] A1 </s><s>[INST] Q2 [/INST]");
  EXPECT_THAT(error_of([&] { chat.render({{"user", "a"}, {"user", "b"}}, false); }),
              HasSubstr("roles must alternate"));
}

TEST(ChatTemplate, MistralHasNoSystemRole) {
  ChatTemplate chat = ChatTemplate::from_template_text("{{ bos_token }} [INST] ", "<s>", "</s>", "mistral");
  EXPECT_EQ(chat.family(), "mistral");
  EXPECT_EQ(chat.render({{"user", "Q"}, {"assistant", "A"}}, false), "<s>[INST] Q [/INST]A</s>");
  EXPECT_THAT(error_of([&] { chat.render({{"system", "S"}, {"user", "Q"}}, false); }),
              HasSubstr("roles must alternate"));
}

TEST(ChatTemplate, Qwen3GivesTheFinalAssistantTurnAThinkBlock) {
  ChatTemplate chat = ChatTemplate::from_template_text(
      "<|im_start|> {%- set ns = namespace(last_query_index=messages|length - 1) %} '<think>\\n\\n</think>\\n\\n'",
      "", "<|im_end|>", "qwen3");
  EXPECT_EQ(chat.render({{"user", "Q"}, {"assistant", "<think>\nhmm\n</think>\n\nA"}}, false),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nhmm\n</think>\n\nA<|im_end|>\n");
  EXPECT_EQ(chat.render({{"user", "Q"}, {"assistant", "A"}, {"user", "R"}}, true),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nR<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, AnUnknownTemplateNamesTheFileAndHowToOverride) {
  std::string message = error_of([] { ChatTemplate::from_template_text("{{ messages }}", "", "", "cfg.json"); });
  EXPECT_THAT(message, HasSubstr("cfg.json"));
  EXPECT_THAT(message, HasSubstr("override"));
  EXPECT_THAT(message, HasSubstr("chatml, llama3, llama2, mistral"));
  ChatTemplate forced = ChatTemplate::from_template_text("{{ messages }}", "<s>", "</s>", "cfg.json", "mistral");
  EXPECT_EQ(forced.family(), "mistral");
  EXPECT_THAT(error_of([] { ChatTemplate::from_template_text("", "", "", "cfg.json", "vicuna"); }),
              HasSubstr("unknown chat template family \"vicuna\""));
}

TEST(ChatTemplate, ReadsTokenizerConfigWithTokenObjects) {
  auto dir = testing::scratch_dir("chat_template_config");
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "chat_template": "[INST] <<SYS>>"})";
  ChatTemplate chat = ChatTemplate::from_tokenizer_config((dir / "tokenizer_config.json").string());
  EXPECT_EQ(chat.bos_token(), "<s>");
  EXPECT_EQ(chat.render({{"user", "Q"}}, false), "<s>[INST] Q [/INST]");

  std::ofstream(dir / "none.json") << R"({"bos_token": "<s>"})";
  EXPECT_THAT(error_of([&] { ChatTemplate::from_tokenizer_config((dir / "none.json").string()); }),
              HasSubstr("no chat_template"));
  EXPECT_EQ(ChatTemplate::from_tokenizer_config((dir / "none.json").string(), "chatml").family(), "chatml");
}

}  // namespace
}  // namespace mnemo
