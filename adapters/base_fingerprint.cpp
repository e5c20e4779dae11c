#include "adapters/base_fingerprint.h"

#include "adapters/sha256.h"
#include "model/error.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

namespace mnemo {
namespace {

void hash_file(Sha256& hash, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open to fingerprint the model", path.string());
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) fail("{}: read error while fingerprinting the model", path.string());
}

}  // namespace

std::string base_model_fingerprint(const std::string& model_path) {
  namespace fs = std::filesystem;
  Sha256 hash;
  if (fs::is_regular_file(model_path)) {
    hash_file(hash, model_path);
    return "sha256:" + hash.hex();
  }
  if (!fs::is_directory(model_path)) fail("{}: no such model file or directory", model_path);
  std::vector<fs::path> files{fs::path(model_path) / "config.json"};
  std::vector<fs::path> weights;
  for (const auto& entry : fs::directory_iterator(model_path))
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors") weights.push_back(entry.path());
  if (weights.empty()) fail("{}: no *.safetensors files to fingerprint", model_path);
  std::sort(weights.begin(), weights.end());
  files.insert(files.end(), weights.begin(), weights.end());
  for (const fs::path& file : files) {
    // The name is part of the hash so that two files swapping contents differ.
    hash.update(file.filename().string() + '\0');
    hash_file(hash, file);
  }
  return "sha256:" + hash.hex();
}

}  // namespace mnemo
