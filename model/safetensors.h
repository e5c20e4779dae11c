// The safetensors format: an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
// then the raw tensor bytes. Files are mmapped and tensors are views of the
// mapping where the dtype allows (zero copy); the mapping lives as long as
// any tensor that views it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mnemo {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
};

class SafetensorsFile : public std::enable_shared_from_this<SafetensorsFile> {
 public:
  // Maps the file and validates the header: length within the file, JSON well
  // formed, every entry's dtype known, offsets inside the data section and
  // matching shape × element size. Throws mnemo::Error naming the file, the
  // tensor and the byte offset otherwise.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;

  // A CPU tensor viewing the mapping (it keeps the mapping alive).
  // Throws mnemo::Error for an unknown name.
  at::Tensor tensor(const std::string& name) const;

  ~SafetensorsFile();

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* mapping_ = nullptr;
  uint64_t mapping_bytes_ = 0;
  uint64_t data_offset_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Reads only the `__metadata__` of a safetensors file (no tensor data touched).
std::map<std::string, std::string> read_safetensors_metadata(const std::string& path);

// Writes tensors (any device and dtype among F32/F16/BF16/I64/I32/U8/I8/BOOL;
// copied to CPU, contiguous) with `metadata`, in sorted name order, to a
// temporary file beside `path` that is fsynced and renamed over it.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// All tensors of a model directory: model.safetensors, or the shards listed in
// model.safetensors.index.json (every shard mapped once). Names map to
// zero-copy CPU tensors.
std::map<std::string, at::Tensor> load_safetensors_dir(const std::string& model_dir);

}  // namespace mnemo
