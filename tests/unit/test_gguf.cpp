// The GGUF reader on files this test writes byte by byte: metadata of every
// value type, tensor infos and dims order, hand-computed dequantization, and
// every kind of bad file (bad magic, unsupported version, truncation at every
// byte, absurd lengths and counts, offsets past the end, unknown types,
// shapes that disagree with the block size) giving a mnemo::Error that names
// the file and a byte offset, never a crash or an out-of-bounds read.
#include "model/error.h"
#include "model/gguf.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

namespace mnemo {
namespace {

// A minimal little-endian GGUF writer for building test files.
class Builder {
 public:
  template <typename T>
  Builder& raw(T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  Builder& str(const std::string& s) {
    raw<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  Builder& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    bytes.insert(bytes.end(), {'G', 'G', 'U', 'F'});
    return raw<uint32_t>(version).raw<uint64_t>(tensors).raw<uint64_t>(kvs);
  }
  Builder& key(const std::string& k, GgufValueType type) { return str(k).raw<uint32_t>(static_cast<uint32_t>(type)); }
  Builder& tensor_info(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).raw<uint32_t>(dims.size());
    for (uint64_t d : dims) raw<uint64_t>(d);
    return raw<uint32_t>(type).raw<uint64_t>(offset);
  }
  Builder& align(size_t alignment = 32) {
    while (bytes.size() % alignment) bytes.push_back(0);
    return *this;
  }
  std::string write(const std::string& name) const { return write_bytes(name, bytes); }
  static std::string write_bytes(const std::string& name, const std::vector<uint8_t>& data) {
    std::string path = (testing::scratch_dir("gguf_" + name) / (name + ".gguf")).string();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()), data.size());
    return path;
  }
  std::vector<uint8_t> bytes;
};

uint16_t f16_bits(float value) { return c10::Half(value).x; }

// A valid file: one key of every type and two tensors (F32 [2, 32] in
// PyTorch order, i.e. dims {32, 2}; Q8_0 [1, 32]).
Builder every_type_file() {
  Builder b;
  b.header(2, 15);
  b.key("t.u8", GgufValueType::U8).raw<uint8_t>(250);
  b.key("t.i8", GgufValueType::I8).raw<int8_t>(-120);
  b.key("t.u16", GgufValueType::U16).raw<uint16_t>(65000);
  b.key("t.i16", GgufValueType::I16).raw<int16_t>(-32000);
  b.key("t.u32", GgufValueType::U32).raw<uint32_t>(4000000000u);
  b.key("t.i32", GgufValueType::I32).raw<int32_t>(-2000000000);
  b.key("t.u64", GgufValueType::U64).raw<uint64_t>(uint64_t(1) << 63);
  b.key("t.i64", GgufValueType::I64).raw<int64_t>(-(int64_t(1) << 62));
  b.key("t.f32", GgufValueType::F32).raw<float>(0.5f);
  b.key("t.f64", GgufValueType::F64).raw<double>(-2.25);
  b.key("t.bool", GgufValueType::Bool).raw<uint8_t>(1);
  b.key("t.string", GgufValueType::String).str("héllo");
  b.key("t.strings", GgufValueType::Array).raw<uint32_t>(8).raw<uint64_t>(3).str("a").str("").str("b c");
  b.key("t.nested", GgufValueType::Array).raw<uint32_t>(9).raw<uint64_t>(2);
  b.raw<uint32_t>(5).raw<uint64_t>(2).raw<int32_t>(1).raw<int32_t>(2);  // [1, 2]
  b.raw<uint32_t>(5).raw<uint64_t>(1).raw<int32_t>(3);                  // [3]
  b.key("general.alignment", GgufValueType::U32).raw<uint32_t>(32);
  b.tensor_info("weight", {32, 2}, 0, 0);
  b.tensor_info("q8", {32, 1}, 8, 256);
  b.align();
  for (int i = 0; i < 64; ++i) b.raw<float>(static_cast<float>(i) * 0.5f);
  while (b.bytes.size() % 32) b.bytes.push_back(0);
  size_t data_start = b.bytes.size() - 256;
  EXPECT_EQ(data_start % 32, 0u);
  b.raw<uint16_t>(f16_bits(0.25f));
  for (int i = 0; i < 32; ++i) b.raw<int8_t>(static_cast<int8_t>(i - 16));
  return b;
}

void expect_error(const std::string& path, const std::string& needle) {
  try {
    GgufFile::open(path);
    ADD_FAILURE() << "no error for " << path << " (expected '" << needle << "')";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("byte"), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
  }
}

TEST(Gguf, ReadsMetadataOfEveryValueType) {
  auto file = GgufFile::open(every_type_file().write("every_type"));
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->get_int("t.u8"), 250);
  EXPECT_EQ(file->get_int("t.i8"), -120);
  EXPECT_EQ(file->get_int("t.u16"), 65000);
  EXPECT_EQ(file->get_int("t.i16"), -32000);
  EXPECT_EQ(file->get_int("t.u32"), 4000000000LL);
  EXPECT_EQ(file->get_int("t.i32"), -2000000000);
  EXPECT_EQ(file->value("t.u64").unsigned_integer, uint64_t(1) << 63);
  EXPECT_THROW(file->get_int("t.u64"), Error);  // above INT64_MAX
  EXPECT_EQ(file->get_int("t.i64"), -(int64_t(1) << 62));
  EXPECT_EQ(file->get_float("t.f32"), 0.5);
  EXPECT_EQ(file->get_float("t.f64"), -2.25);
  EXPECT_EQ(file->get_float("t.u8"), 250.0);  // integers widen to float
  EXPECT_TRUE(file->get_bool("t.bool"));
  EXPECT_EQ(file->get_string("t.string"), "héllo");
  EXPECT_EQ(file->get_string_array("t.strings"), (std::vector<std::string>{"a", "", "b c"}));
  const GgufValue& nested = file->value("t.nested");
  ASSERT_EQ(nested.array.size(), 2u);
  EXPECT_EQ(nested.element_type, GgufValueType::Array);
  EXPECT_EQ(nested.array[0].array.size(), 2u);
  EXPECT_EQ(nested.array[0].array[1].integer, 2);
  EXPECT_EQ(nested.array[1].array[0].integer, 3);
  EXPECT_THROW(file->get_int_array("t.nested"), Error);  // elements are arrays
}

TEST(Gguf, TypedGettersNameTheKeyOnMissingOrWrongType) {
  auto file = GgufFile::open(every_type_file().write("getters"));
  try {
    file->get_int("t.string");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'t.string' is string, expected an integer"), std::string::npos) << e.what();
  }
  try {
    file->get_string("no.such.key");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'no.such.key' is missing"), std::string::npos) << e.what();
  }
  EXPECT_THROW(file->get_string_array("t.nested"), Error);
  EXPECT_THROW(file->get_bool("t.u8"), Error);
  EXPECT_EQ(file->get_int_or("absent", 7), 7);
  EXPECT_THROW(file->get_int_or("t.string", 7), Error);  // present but wrong type
}

TEST(Gguf, TensorShapesAreReversedToPyTorchOrder) {
  auto file = GgufFile::open(every_type_file().write("shapes"));
  ASSERT_EQ(file->tensors().size(), 2u);
  const GgufTensorInfo& weight = file->tensor("weight");
  EXPECT_EQ(weight.dims, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(weight.shape, (std::vector<int64_t>{2, 32}));
  at::Tensor t = file->dequantize("weight", at::kFloat);
  EXPECT_EQ(t.sizes().vec(), (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(t[1][3].item<float>(), 35 * 0.5f);  // row-major: dims[0] is contiguous
  EXPECT_THROW(file->tensor("missing"), Error);
}

TEST(Gguf, DequantizesQ8_0ByHandIntoEveryDtype) {
  auto file = GgufFile::open(every_type_file().write("q8"));
  at::Tensor expected = (at::arange(32, at::kFloat) - 16) * 0.25f;
  at::Tensor fp32 = file->dequantize("q8", at::kFloat);
  EXPECT_TRUE(at::equal(fp32.reshape({32}), expected));
  at::Tensor bf16 = file->dequantize("q8", at::kBFloat16);
  EXPECT_EQ(bf16.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(bf16.reshape({32}), expected.to(at::kBFloat16)));
  EXPECT_TRUE(at::equal(file->dequantize("q8", at::kHalf).reshape({32}), expected.to(at::kHalf)));
  EXPECT_THROW(file->dequantize("q8", at::kDouble), Error);
}

TEST(Gguf, DequantizesQ4_0AndQ4_1ByHand) {
  Builder b;
  b.header(2, 0).tensor_info("q40", {32}, 2, 0).tensor_info("q41", {32}, 3, 32).align();
  // Q4_0: d = 2, nibbles j (low) and 15 - j (high): x[j] = (j - 8) * 2, x[j+16] = (7 - j) * 2.
  b.raw<uint16_t>(f16_bits(2.0f));
  for (int j = 0; j < 16; ++j) b.raw<uint8_t>(static_cast<uint8_t>(j | ((15 - j) << 4)));
  b.align();
  // Q4_1: d = 0.5, m = -1: x = q * 0.5 - 1.
  b.raw<uint16_t>(f16_bits(0.5f)).raw<uint16_t>(f16_bits(-1.0f));
  for (int j = 0; j < 16; ++j) b.raw<uint8_t>(static_cast<uint8_t>(j | ((15 - j) << 4)));
  auto file = GgufFile::open(b.write("q4"));
  at::Tensor q40 = file->dequantize("q40", at::kFloat), q41 = file->dequantize("q41", at::kFloat);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(q40[j].item<float>(), (j - 8) * 2.0f);
    EXPECT_EQ(q40[j + 16].item<float>(), (7 - j) * 2.0f);
    EXPECT_EQ(q41[j].item<float>(), j * 0.5f - 1.0f);
    EXPECT_EQ(q41[j + 16].item<float>(), (15 - j) * 0.5f - 1.0f);
  }
}

TEST(Gguf, RejectsBadMagic) {
  Builder b = every_type_file();
  b.bytes[0] = 'X';
  expect_error(b.write("bad_magic"), "not a GGUF file");
}

TEST(Gguf, RejectsUnsupportedVersions) {
  Builder v1;
  v1.header(0, 0, 1);
  expect_error(v1.write("v1"), "unsupported GGUF version 1");
  Builder v4;
  v4.header(0, 0, 4);
  expect_error(v4.write("v4"), "unsupported GGUF version 4");
  Builder v2;
  v2.header(0, 0, 2);
  EXPECT_EQ(GgufFile::open(v2.write("v2"))->version(), 2u);
}

TEST(Gguf, EveryTruncationGivesAnErrorNamingTheOffset) {
  std::vector<uint8_t> full = every_type_file().bytes;
  for (size_t size = 0; size < full.size(); ++size) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + size);
    std::string path = Builder::write_bytes("truncated", cut);
    try {
      GgufFile::open(path);
      ADD_FAILURE() << "a file cut to " << size << " of " << full.size() << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("byte"), std::string::npos) << e.what();
    }
  }
}

TEST(Gguf, RejectsHugeStringLengthWithoutAllocating) {
  Builder b;
  b.header(0, 1).raw<uint64_t>(uint64_t(1) << 60);
  b.bytes.resize(b.bytes.size() + 16);  // enough for the metadata count to be plausible
  expect_error(b.write("huge_key"), "has length 1152921504606846976");
  Builder v;
  v.header(0, 1).key("k", GgufValueType::String).raw<uint64_t>(~uint64_t(0));
  expect_error(v.write("huge_value"), "more than the limit of 67108864");
}

// A file padded with `extra` zero bytes (sparse), so that what it declares
// would fit and only the explicit limit refuses it.
std::string write_padded(const Builder& b, const std::string& name, uint64_t extra) {
  std::string path = b.write(name);
  std::filesystem::resize_file(path, b.bytes.size() + extra);
  return path;
}

TEST(Gguf, LimitsRefuseWhatAHostileFileCouldHoldNamingTheLimitAndTheValue) {
  Builder key;
  key.header(0, 1).str(std::string((64 << 10) + 1, 'k'));
  expect_error(write_padded(key, "limit_key", 64), "a metadata key has length 65537, more than the limit of 65536");
  Builder value;
  value.header(0, 1).key("k", GgufValueType::String).raw<uint64_t>((64ull << 20) + 1);
  expect_error(write_padded(value, "limit_string", (64ull << 20) + 1),
               "a string value has length 67108865, more than the limit of 67108864");
  Builder array;
  array.header(0, 1).key("k", GgufValueType::Array).raw<uint32_t>(0).raw<uint64_t>((1 << 22) + 1);
  expect_error(write_padded(array, "limit_array", (1 << 22) + 1),
               "metadata 'k': array of 4194305 values, more than the limit of 4194304");
  Builder kvs;
  kvs.header(0, (1 << 16) + 1);
  expect_error(write_padded(kvs, "limit_kvs", 13ull << 16), "metadata count 65537 is more than the limit of 65536");
  Builder tensors;
  tensors.header((1 << 20) + 1, 0);
  expect_error(write_padded(tensors, "limit_tensors", 33ull << 20),
               "tensor count 1048577 is more than the limit of 1048576");
}

TEST(Gguf, RejectsHugeArrayAndMetadataCounts) {
  Builder b;
  b.header(0, 1).key("k", GgufValueType::Array).raw<uint32_t>(4).raw<uint64_t>(uint64_t(1) << 20);
  expect_error(b.write("huge_array"), "cannot fit");
  Builder c;
  c.header(0, uint64_t(1) << 50);
  expect_error(c.write("huge_kv_count"), "metadata count");
  Builder t;
  t.header(uint64_t(1) << 50, 0);
  expect_error(t.write("huge_tensor_count"), "tensor count");
}

TEST(Gguf, RejectsUnknownValueAndTensorTypes) {
  Builder b;
  b.header(0, 1).key("k", static_cast<GgufValueType>(13)).raw<uint32_t>(0);
  expect_error(b.write("bad_value_type"), "unknown value type 13");
  Builder t;
  t.header(1, 0).tensor_info("w", {32}, 99, 0).align();
  t.bytes.resize(t.bytes.size() + 256);
  expect_error(t.write("bad_tensor_type"), "unknown or unsupported ggml type 99");
}

TEST(Gguf, RejectsTensorDataPastTheEnd) {
  Builder b;
  b.header(1, 0).tensor_info("w", {64, 2}, 0, 0).align();
  b.bytes.resize(b.bytes.size() + 64 * 2 * 4 - 1);  // one byte short
  expect_error(b.write("short_data"), "runs past the end");
  Builder o;
  o.header(1, 0).tensor_info("w", {8}, 0, uint64_t(1) << 62).align();
  o.bytes.resize(o.bytes.size() + 64);
  expect_error(o.write("offset_past_end"), "runs past the end");
}

TEST(Gguf, RejectsShapeInconsistentWithBlockSize) {
  Builder b;
  b.header(1, 0).tensor_info("w", {31, 2}, 2, 0).align();  // Q4_0 blocks hold 32
  b.bytes.resize(b.bytes.size() + 64);
  expect_error(b.write("partial_block"), "not a multiple of the Q4_0 block size 32");
  Builder big;  // 2^62 Q8_K values: the byte count would overflow 64 bits
  big.header(1, 0).tensor_info("w", {uint64_t(1) << 40, uint64_t(1) << 22}, 15, 0).align();
  big.bytes.resize(big.bytes.size() + 512);
  expect_error(big.write("overflowing_bytes"), "cannot fit in a");
  Builder z;
  z.header(1, 0).tensor_info("w", {0}, 0, 0).align();
  expect_error(z.write("zero_dim"), "zero or too large");
  Builder d;
  d.header(1, 0).tensor_info("w", {1, 1, 1, 1, 1}, 0, 0).align();
  expect_error(d.write("five_dims"), "5 dimensions");
}

TEST(Gguf, RejectsMisalignedOffsetsAndDuplicates) {
  Builder b;
  b.header(1, 0).tensor_info("w", {8}, 0, 4).align();
  b.bytes.resize(b.bytes.size() + 64);
  expect_error(b.write("misaligned"), "not a multiple of the alignment 32");
  Builder k;
  k.header(0, 2).key("a", GgufValueType::U8).raw<uint8_t>(1).key("a", GgufValueType::U8).raw<uint8_t>(2);
  expect_error(k.write("duplicate_key"), "appears twice");
  Builder t;
  t.header(2, 0).tensor_info("w", {8}, 0, 0).tensor_info("w", {8}, 0, 32).align();
  t.bytes.resize(t.bytes.size() + 64);
  expect_error(t.write("duplicate_tensor"), "appears twice");
}

TEST(Gguf, RejectsBadAlignmentAndBadBool) {
  Builder b;
  b.header(0, 1).key("general.alignment", GgufValueType::U32).raw<uint32_t>(24);
  EXPECT_THROW(GgufFile::open(b.write("alignment_24")), Error);
  Builder c;
  c.header(0, 1).key("k", GgufValueType::Bool).raw<uint8_t>(7);
  expect_error(c.write("bool_7"), "neither 0 nor 1");
}

TEST(Gguf, RandomCorruptionNeverCrashes) {
  std::vector<uint8_t> full = every_type_file().bytes;
  std::mt19937 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<uint8_t> bytes = full;
    for (int flips = 0; flips < 3; ++flips)
      bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    std::string path = Builder::write_bytes("corrupt", bytes);
    try {
      auto file = GgufFile::open(path);
      for (const GgufTensorInfo& info : file->tensors()) file->dequantize(info, at::kFloat);
    } catch (const Error&) {
    }
  }
}

TEST(Gguf, MissingFileNamesThePath) {
  try {
    GgufFile::open("/nonexistent/model.gguf");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
}

TEST(GgufNames, MapLlamaTensorsToHuggingFaceNames) {
  EXPECT_EQ(gguf_to_hf_tensor_name("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.12.attn_q.weight"), "model.layers.12.self_attn.q_proj.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.0.attn_k.bias"), "model.layers.0.self_attn.k_proj.bias");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.0.attn_output.weight"), "model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.1.ffn_gate.weight"), "model.layers.1.mlp.gate_proj.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.1.ffn_up.weight"), "model.layers.1.mlp.up_proj.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.1.ffn_down.weight"), "model.layers.1.mlp.down_proj.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.2.attn_norm.weight"), "model.layers.2.input_layernorm.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.2.ffn_norm.weight"), "model.layers.2.post_attention_layernorm.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.2.attn_q_norm.weight"), "model.layers.2.self_attn.q_norm.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("output_norm.weight"), "model.norm.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("output.weight"), "lm_head.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("rope_freqs.weight"), std::nullopt);
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.0.unknown.weight"), std::nullopt);
}

}  // namespace
}  // namespace mnemo
