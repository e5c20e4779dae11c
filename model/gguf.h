// GGUF, llama.cpp's single-file model format, as a base model.
//
// A GGUF file is: "GGUF", a version (2 or 3), a tensor count, a metadata
// count, typed key/value metadata, tensor infos (name, dims with the fastest
// dimension first, ggml type, offset), then the tensor data section aligned
// to `general.alignment` (32 by default). Quantized types store blocks of 32
// or 256 values with their own scales.
//
// GgufFile maps the file read-only and validates all of it at open(): every
// length, count and offset is checked against the file size before it is
// used, so a truncated or corrupt file gives a mnemo::Error naming the file,
// the byte offset and what is wrong, and nothing ever reads out of bounds.
// load_gguf_model() turns a Llama-family GGUF into what a Hugging Face
// directory would give: config, HF-named tensors in the HF layout, and
// tokenizer.json / tokenizer_config.json equivalents, so the rest of Mnemo
// (and transformers, after `mnemo model convert`) sees the very same model.
#pragma once

#include <ATen/core/Tensor.h>
// The full json header, not json_fwd: GgufModel holds two json values.
#include <nlohmann/json.hpp>

#include "kernels/weight_quant.h"
#include "model/config.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mnemo {

// Metadata value types, numbered as in the file.
enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_value_type_name(GgufValueType type);

// One metadata value. Integers of every width are held in `integer` (u64
// values above INT64_MAX in `unsigned_integer` as well), floats in `real`.
struct GgufValue {
  GgufValueType type = GgufValueType::U8;
  GgufValueType element_type = GgufValueType::U8;  // for arrays
  int64_t integer = 0;
  uint64_t unsigned_integer = 0;
  double real = 0.0;
  bool boolean = false;
  std::string string;
  std::vector<GgufValue> array;

  bool is_integer() const;
  bool is_float() const;
};

// ggml tensor types, numbered as in the file. Those Mnemo can dequantize are
// listed; any other number is rejected at open() as an unknown type.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};
// Name ("Q4_K"), values per block and bytes per block; nullopt for a type
// number Mnemo does not know.
struct GgmlTypeTraits {
  const char* name;
  int64_t block_values;
  int64_t block_bytes;
};
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;   // as in the file: dims[0] is the fastest (contiguous) one
  std::vector<int64_t> shape;  // PyTorch order: dims reversed
  GgmlType type = GgmlType::F32;
  uint64_t file_offset = 0;  // absolute byte offset of the data in the file
  uint64_t bytes = 0;
  int64_t numel() const;
};

class GgufFile {
 public:
  // Maps and validates `path`: magic, version (2 or 3), every metadata value,
  // tensor infos (at most 4 dims, known type, first dim a multiple of the
  // block size, offset aligned and data inside the file, no duplicate names
  // or keys). Throws mnemo::Error "<path>: byte <offset>: <what>" otherwise.
  static std::shared_ptr<GgufFile> open(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  // Metadata. The typed getters throw mnemo::Error naming the file and the
  // key when the key is missing or holds another type; get_int accepts any
  // integer type (and fails for a u64 above INT64_MAX), get_float any float
  // or integer type.
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  const GgufValue& value(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;
  // The same, with a default for a missing key (a present key of the wrong
  // type still throws).
  std::string get_string_or(const std::string& key, const std::string& fallback) const;
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  double get_float_or(const std::string& key, double fallback) const;
  bool get_bool_or(const std::string& key, bool fallback) const;

  // Tensor infos in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  bool has_tensor(const std::string& name) const { return tensor_index_.count(name) != 0; }
  // Throws mnemo::Error naming the file for an unknown name.
  const GgufTensorInfo& tensor(const std::string& name) const;

  // A new contiguous CPU tensor of `dtype` (Float, BFloat16 or Half) in the
  // PyTorch shape, dequantized in parallel over blocks. Values equal ggml's
  // reference dequantization (computed in fp32, then rounded to `dtype`).
  // The result owns its memory; the file may be closed afterwards.
  at::Tensor dequantize(const std::string& name, at::ScalarType dtype) const;
  at::Tensor dequantize(const GgufTensorInfo& info, at::ScalarType dtype) const;

 private:
  GgufFile() = default;
  void parse();
  std::string path_;
  const uint8_t* mapping_ = nullptr;
  uint64_t size_bytes_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// A Llama-family GGUF (general.architecture llama, qwen2 or qwen3) as a base
// model: everything a Hugging Face directory holds.
struct GgufModel {
  ModelConfig config;
  // HF names ("model.layers.0.self_attn.q_proj.weight") and HF shapes, in the
  // requested dtype, on the CPU; q/k projections un-permuted back to the HF
  // layout. No "lm_head.weight" when config.tie_word_embeddings.
  std::map<std::string, at::Tensor> tensors;
  nlohmann::json tokenizer_json;    // shaped like tokenizer.json
  nlohmann::json tokenizer_config;  // shaped like tokenizer_config.json
  std::string source;               // the GGUF path
};

// Throws mnemo::Error (naming the file) for anything GgufFile::open rejects,
// an unsupported architecture or tokenizer model, a missing required key, or
// a tensor whose shape disagrees with the config.
// With `quant`, the tensors load_weights would quantize (weight_quant_for)
// are packed as each is read (kernels/quantized_linear_cpu.h), so the
// float32 model is never whole in memory.
// REQUIRES: dtype is Float, BFloat16 or Half (Float with quant).
GgufModel load_gguf_model(const std::string& path, at::ScalarType dtype, WeightQuant quant = WeightQuant::kNone);

// The parts of load_gguf_model, for tools and tests.
ModelConfig gguf_model_config(const GgufFile& file);
// The HF name of a GGUF tensor name ("blk.3.attn_q.weight" ->
// "model.layers.3.self_attn.q_proj.weight"); nullopt for names with no HF
// counterpart (e.g. "rope_freqs.weight").
std::optional<std::string> gguf_to_hf_tensor_name(const std::string& gguf_name);
// tokenizer.json and tokenizer_config.json equivalents built from the
// tokenizer.* metadata the way transformers' GGUF loader builds them.
nlohmann::json gguf_tokenizer_json(const GgufFile& file);
nlohmann::json gguf_tokenizer_config(const GgufFile& file);

}  // namespace mnemo
