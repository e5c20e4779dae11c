// The safetensors reader and writer. Hand-written: no Debian package reads
// safetensors from C++, and the format is a JSON header plus raw bytes.
#include "model/safetensors.h"

#include "model/error.h"
#include "tokenizer/json_input.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace mnemo {
namespace {

using nlohmann::json;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t bytes;
};

constexpr DtypeInfo kDtypes[] = {
    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2}, {"BF16", at::kBFloat16, 2}, {"F64", at::kDouble, 8},
    {"I64", at::kLong, 8},  {"I32", at::kInt, 4},  {"I16", at::kShort, 2},     {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},   {"BOOL", at::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& info : kDtypes)
    if (name == info.name) return &info;
  return nullptr;
}

const DtypeInfo& dtype_of(at::ScalarType type, const std::string& tensor_name) {
  for (const auto& info : kDtypes)
    if (info.type == type) return info;
  fail("cannot write tensor '{}': dtype {} has no safetensors equivalent", tensor_name, c10::toString(type));
}

// Limits on what a file may declare (real headers are kilobytes to a few
// megabytes, with at most thousands of tensors of a few dimensions; strings
// are tensor names, dtypes and __metadata__ values, which some trainers fill
// with their whole configuration).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr JsonLimits kHeaderLimits{kMaxHeaderBytes, 8, 16ull << 20};
constexpr size_t kMaxTensors = 1 << 20;
constexpr size_t kMaxTensorDims = 16;
constexpr JsonLimits kIndexLimits{64ull << 20, 8, 64ull << 10};

// Parses the JSON header, refusing duplicate tensor names (the format forbids
// them; a parser that keeps the first or the last would silently misread).
json parse_header(const std::string& path, const char* text, uint64_t length) {
  std::set<std::string> names;
  auto on_event = [&](int depth, json::parse_event_t event, const json& parsed) {
    if (depth != 1 || event != json::parse_event_t::key) return;
    const auto& name = parsed.get_ref<const std::string&>();
    if (!names.insert(name).second) fail("{}: tensor '{}' appears twice in the header", path, name);
    if (names.size() > kMaxTensors)
      fail("{}: the header lists more than {} tensors, the limit", path, kMaxTensors);
  };
  json header = parse_json_input(std::string_view(text, length), path + ": the header", kHeaderLimits, on_event,
                                 /*first_byte=*/8);
  if (!header.is_object()) fail("{}: the header is not a JSON object", path);
  return header;
}

// The format's rule: the tensors' byte ranges tile the data section exactly,
// with no overlap and no hole (so no two tensors alias and nothing hides in a gap).
void check_data_layout(const std::string& path, const std::vector<SafetensorsEntry>& entries, uint64_t data_bytes,
                       uint64_t data_offset) {
  std::vector<const SafetensorsEntry*> by_offset;
  for (const SafetensorsEntry& entry : entries) by_offset.push_back(&entry);
  std::sort(by_offset.begin(), by_offset.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  uint64_t expected = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry* entry : by_offset) {
    if (entry->begin < expected)
      fail("{}: tensor '{}': data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", path, entry->name, entry->begin,
           entry->end, previous->name, previous->begin, previous->end);
    if (entry->begin > expected)
      fail("{}: tensor '{}': data_offsets begin at {} but the previous tensor ends at {} (file byte offset {}): "
           "the data section has a hole",
           path, entry->name, entry->begin, expected, data_offset + expected);
    expected = entry->end;
    previous = entry;
  }
  if (expected != data_bytes)
    fail("{}: the tensors cover {} bytes of the data section but it holds {} (file byte offset {}): "
         "trailing bytes or a truncated table",
         path, expected, data_bytes, data_offset + expected);
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{}: not a regular file", path);
  }
  uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < 8) {
    ::close(fd);
    fail("{}: truncated: {} bytes, but the header length alone takes 8", path, file_bytes);
  }
  void* mapping = mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) fail("{}: cannot mmap: {}", path, std::strerror(errno));
  file->mapping_ = mapping;
  file->mapping_bytes_ = file_bytes;

  const auto* bytes = static_cast<const uint8_t*>(mapping);
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | bytes[i];
  if (header_bytes > file_bytes - 8)
    fail("{}: header length {} at byte offset 0 is larger than the file ({} bytes): truncated or not safetensors",
         path, header_bytes, file_bytes);
  if (header_bytes > kMaxHeaderBytes)
    fail("{}: header length {} at byte offset 0 is more than the limit of {}", path, header_bytes,
         byte_size_text(kMaxHeaderBytes));
  file->data_offset_ = 8 + header_bytes;
  uint64_t data_bytes = file_bytes - file->data_offset_;

  json header = parse_header(path, reinterpret_cast<const char*>(bytes) + 8, header_bytes);

  for (auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail("{}: __metadata__ is not an object", path);
      for (auto& [key, text] : value.items()) {
        if (!text.is_string()) fail("{}: __metadata__ field '{}' is not a string", path, key);
        file->metadata_[key] = text.get<std::string>();
      }
      continue;
    }
    SafetensorsEntry entry;
    entry.name = name;
    try {
      entry.dtype = value.at("dtype").get<std::string>();
      if (const json& shape = value.at("shape"); shape.is_array() && shape.size() > kMaxTensorDims)
        fail("{}: tensor '{}': {} dimensions, more than the limit of {}", path, name, shape.size(), kMaxTensorDims);
      entry.shape = value.at("shape").get<std::vector<int64_t>>();
      auto offsets = value.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2) fail("{}: tensor '{}': data_offsets must hold two numbers", path, name);
      entry.begin = offsets[0];
      entry.end = offsets[1];
    } catch (const json::exception& e) {
      fail("{}: tensor '{}': bad header entry: {}", path, name, e.what());
    }
    const DtypeInfo* info = find_dtype(entry.dtype);
    if (!info) fail("{}: tensor '{}': unsupported dtype '{}'", path, name, entry.dtype);
    uint64_t bytes_expected = info->bytes;  // checked: a hostile shape must not wrap around
    for (int64_t dim : entry.shape) {
      if (dim < 0) fail("{}: tensor '{}': negative dimension in shape", path, name);
      if (__builtin_mul_overflow(bytes_expected, static_cast<uint64_t>(dim), &bytes_expected))
        fail("{}: tensor '{}': shape [{}] holds more than 2^64 bytes of {}", path, name,
             fmt::join(entry.shape, ", "), entry.dtype);
    }
    if (entry.begin > entry.end || entry.end > data_bytes)
      fail("{}: tensor '{}': data_offsets [{}, {}] run past the data section ({} bytes, file byte offset {}): "
           "truncated file",
           path, name, entry.begin, entry.end, data_bytes, file->data_offset_ + entry.end);
    if (entry.end - entry.begin != bytes_expected)
      fail("{}: tensor '{}': {} bytes for {} shape [{}] ({} bytes expected)", path, name, entry.end - entry.begin,
           entry.dtype, fmt::join(entry.shape, ", "), bytes_expected);
    file->index_[name] = file->entries_.size();
    file->entries_.push_back(std::move(entry));
  }
  check_data_layout(path, file->entries_, data_bytes, file->data_offset_);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_) munmap(mapping_, mapping_bytes_);
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) > 0; }

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("{}: no tensor named '{}'", path_, name);
  const SafetensorsEntry& entry = entries_[it->second];
  const DtypeInfo* info = find_dtype(entry.dtype);
  auto* data = static_cast<uint8_t*>(mapping_) + data_offset_ + entry.begin;
  auto options = at::TensorOptions().dtype(info->type).device(at::kCPU);
  // The mapping is private copy-on-write, so a stray in-place op cannot reach
  // the file. A tensor whose data is not aligned
  // to its element size is copied, and the view keeps the file alive.
  std::shared_ptr<const SafetensorsFile> keep_alive = shared_from_this();
  if (reinterpret_cast<uintptr_t>(data) % info->bytes != 0) {
    at::Tensor copy = at::empty(entry.shape, options);
    std::memcpy(copy.data_ptr(), data, entry.end - entry.begin);
    return copy;
  }
  return at::from_blob(data, entry.shape, [keep_alive](void*) {}, options);
}

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) fail("{}: not a regular file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open: {}", path, std::strerror(errno));
  uint8_t length_bytes[8];
  if (!in.read(reinterpret_cast<char*>(length_bytes), 8)) fail("{}: truncated: no header length", path);
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | length_bytes[i];
  in.seekg(0, std::ios::end);
  uint64_t file_bytes = static_cast<uint64_t>(in.tellg());
  if (file_bytes < 8 || header_bytes > file_bytes - 8)
    fail("{}: header length {} at byte offset 0 is larger than the file ({} bytes)", path, header_bytes, file_bytes);
  if (header_bytes > kMaxHeaderBytes)
    fail("{}: header length {} at byte offset 0 is more than the limit of {}", path, header_bytes,
         byte_size_text(kMaxHeaderBytes));
  std::string text(header_bytes, '\0');
  in.seekg(8);
  in.read(text.data(), static_cast<std::streamsize>(header_bytes));
  json header = parse_header(path, text.data(), text.size());
  std::map<std::string, std::string> metadata;
  if (auto it = header.find("__metadata__"); it != header.end() && it->is_object())
    for (auto& [key, value] : it->items())
      if (value.is_string()) metadata[key] = value.get<std::string>();
  return metadata;
}

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    at::Tensor cpu = tensor.detach().to(at::kCPU).contiguous();
    const DtypeInfo& info = dtype_of(cpu.scalar_type(), name);
    uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * info.bytes;
    header[name] = {{"dtype", info.name}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(cpu);
  }
  std::string header_text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the
  // reference writer does: readers can then view tensors without copying.
  while ((8 + header_text.size()) % 8 != 0) header_text.push_back(' ');

  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create: {}", temporary, std::strerror(errno));
  auto write_all = [&](const void* data, size_t bytes) {
    const auto* p = static_cast<const char*>(data);
    while (bytes > 0) {
      ssize_t written = ::write(fd, p, bytes);
      if (written < 0) {
        if (errno == EINTR) continue;
        int error = errno;
        ::close(fd);
        ::unlink(temporary.c_str());
        fail("{}: write failed: {}", temporary, std::strerror(error));
      }
      p += written;
      bytes -= static_cast<size_t>(written);
    }
  };
  uint8_t length_bytes[8];
  uint64_t header_bytes = header_text.size();
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<uint8_t>(header_bytes >> (8 * i));
  write_all(length_bytes, 8);
  write_all(header_text.data(), header_text.size());
  for (const at::Tensor& tensor : contiguous)
    write_all(tensor.data_ptr(), static_cast<size_t>(tensor.numel()) * tensor.element_size());
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temporary.c_str());
    fail("{}: fsync/close failed: {}", temporary, std::strerror(errno));
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    fail("{}: rename to {} failed: {}", temporary, path, std::strerror(error));
  }
}

std::map<std::string, at::Tensor> load_safetensors_dir(const std::string& model_dir) {
  namespace fs = std::filesystem;
  fs::path dir(model_dir);
  std::vector<std::string> shards;
  fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    const json index = read_json_file(index_path.string(), "safetensors index", kIndexLimits);
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      fail("{}: missing object 'weight_map'", index_path.string());
    if (index["weight_map"].size() > kMaxTensors)
      fail("{}: weight_map lists {} tensors, more than the limit of {}", index_path.string(),
           index["weight_map"].size(), kMaxTensors);
    std::set<std::string> unique;
    for (auto& [name, shard] : index["weight_map"].items()) {
      if (!shard.is_string()) fail("{}: weight_map['{}'] is not a file name", index_path.string(), name);
      std::string file = shard.get<std::string>();
      if (file.find('/') != std::string::npos || file == "..")
        fail("{}: weight_map['{}'] names '{}', which is not a file in the model directory", index_path.string(),
             name, file);
      unique.insert(file);
    }
    shards.assign(unique.begin(), unique.end());
  } else if (fs::exists(dir / "model.safetensors")) {
    shards.push_back("model.safetensors");
  } else {
    fail("{}: no model.safetensors or model.safetensors.index.json", model_dir);
  }
  std::map<std::string, at::Tensor> tensors;
  for (const std::string& shard : shards) {
    auto file = SafetensorsFile::open((dir / shard).string());
    for (const SafetensorsEntry& entry : file->entries()) {
      if (tensors.count(entry.name)) fail("{}: tensor '{}' appears in more than one shard", model_dir, entry.name);
      tensors[entry.name] = file->tensor(entry.name);
    }
  }
  return tensors;
}

}  // namespace mnemo
