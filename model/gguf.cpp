// The GGUF container: mmap, header, metadata, tensor infos, validation.
//
// Hand-written: the only packaged GGUF readers are ggml itself (a C library
// that would bring its own tensor runtime and allocator) and Python's `gguf`;
// the format is small enough that an owned, bounds-checked reader is simpler
// than either. Layout reference: ggml/docs/gguf.md and gguf-py's reader.
#include "model/gguf.h"

#include "model/error.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace mnemo {
namespace {

constexpr uint32_t kMaxDims = 4;            // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 4;         // arrays of arrays are legal; deeper is nonsense
constexpr uint64_t kMaxAlignment = 1 << 20;
// Limits on what a file may declare, so a hostile one cannot make the reader
// allocate without bound. The largest real ones: a few hundred metadata keys,
// arrays of ~260,000 tokens or ~500,000 merges, a tokenizer.json of ~35 MB
// kept as one string, a few thousand tensors with names under 64 bytes.
constexpr uint64_t kMaxMetadataCount = 1 << 16;
constexpr uint64_t kMaxArrayLength = 1 << 22;
constexpr uint64_t kMaxStringBytes = 64ull << 20;
constexpr uint64_t kMaxNameBytes = 64ull << 10;  // metadata keys and tensor names
constexpr uint64_t kMaxTensorCount = 1 << 20;

// A bounds-checked little-endian cursor over the mapping. Every read checks
// the remaining bytes first and fails with the offset where it started.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, uint64_t size) : path_(path), data_(data), size_(size) {}

  uint64_t offset() const { return offset_; }
  uint64_t remaining() const { return size_ - offset_; }

  [[noreturn]] void fail_at(uint64_t offset, const std::string& what) const {
    fail("{}: byte {}: {}", path_, offset, what);
  }

  void need(uint64_t bytes, const char* what) const {
    if (bytes > remaining())
      fail_at(offset_, fmt::format("truncated: {} needs {} bytes but the file ends after {} more", what, bytes,
                                   remaining()));
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, data_ + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }

  std::string read_string(const char* what, uint64_t max_bytes) {
    uint64_t start = offset_;
    uint64_t length = read<uint64_t>(what);
    if (length > max_bytes)
      fail_at(start, fmt::format("{} has length {}, more than the limit of {}", what, length, max_bytes));
    if (length > remaining())
      fail_at(start, fmt::format("{} has length {} but only {} bytes are left in the file", what, length,
                                 remaining()));
    std::string text(reinterpret_cast<const char*>(data_ + offset_), length);
    offset_ += length;
    return text;
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t offset_ = 0;
};

// Smallest encoding of one value of `type`, to reject an array count that
// cannot fit in the rest of the file before allocating for it.
uint64_t min_value_bytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::Bool: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    case GgufValueType::String: return 8;
    case GgufValueType::Array: return 12;
  }
  return 1;
}

bool known_value_type(uint32_t type) { return type <= static_cast<uint32_t>(GgufValueType::F64); }

GgufValue read_value(Cursor& cursor, GgufValueType type, const std::string& key, int depth) {
  GgufValue value;
  value.type = type;
  switch (type) {
    case GgufValueType::U8: value.integer = cursor.read<uint8_t>("a u8 value"); break;
    case GgufValueType::I8: value.integer = cursor.read<int8_t>("an i8 value"); break;
    case GgufValueType::U16: value.integer = cursor.read<uint16_t>("a u16 value"); break;
    case GgufValueType::I16: value.integer = cursor.read<int16_t>("an i16 value"); break;
    case GgufValueType::U32: value.integer = cursor.read<uint32_t>("a u32 value"); break;
    case GgufValueType::I32: value.integer = cursor.read<int32_t>("an i32 value"); break;
    case GgufValueType::I64: value.integer = cursor.read<int64_t>("an i64 value"); break;
    case GgufValueType::U64:
      value.unsigned_integer = cursor.read<uint64_t>("a u64 value");
      value.integer = static_cast<int64_t>(value.unsigned_integer);  // checked in get_int
      break;
    case GgufValueType::F32: value.real = cursor.read<float>("an f32 value"); break;
    case GgufValueType::F64: value.real = cursor.read<double>("an f64 value"); break;
    case GgufValueType::Bool: {
      uint64_t at = cursor.offset();
      uint8_t byte = cursor.read<uint8_t>("a bool value");
      if (byte > 1) cursor.fail_at(at, fmt::format("metadata '{}': bool value {} is neither 0 nor 1", key, byte));
      value.boolean = byte == 1;
      break;
    }
    case GgufValueType::String: value.string = cursor.read_string("a string value", kMaxStringBytes); break;
    case GgufValueType::Array: {
      uint64_t at = cursor.offset();
      uint32_t element = cursor.read<uint32_t>("an array element type");
      if (!known_value_type(element))
        cursor.fail_at(at, fmt::format("metadata '{}': unknown array element type {}", key, element));
      if (depth >= kMaxArrayNesting)
        cursor.fail_at(at, fmt::format("metadata '{}': arrays nested deeper than {}", key, kMaxArrayNesting));
      value.element_type = static_cast<GgufValueType>(element);
      uint64_t count_at = cursor.offset();
      uint64_t count = cursor.read<uint64_t>("an array length");
      if (count > kMaxArrayLength)
        cursor.fail_at(count_at, fmt::format("metadata '{}': array of {} values, more than the limit of {}", key,
                                             count, kMaxArrayLength));
      if (count > cursor.remaining() / min_value_bytes(value.element_type))
        cursor.fail_at(count_at, fmt::format("metadata '{}': array of {} {} values cannot fit in the {} bytes left",
                                             key, count, gguf_value_type_name(value.element_type),
                                             cursor.remaining()));
      value.array.reserve(count);
      for (uint64_t i = 0; i < count; ++i) value.array.push_back(read_value(cursor, value.element_type, key, depth + 1));
      break;
    }
  }
  return value;
}

bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace

const char* gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8: return "u8";
    case GgufValueType::I8: return "i8";
    case GgufValueType::U16: return "u16";
    case GgufValueType::I16: return "i16";
    case GgufValueType::U32: return "u32";
    case GgufValueType::I32: return "i32";
    case GgufValueType::F32: return "f32";
    case GgufValueType::Bool: return "bool";
    case GgufValueType::String: return "string";
    case GgufValueType::Array: return "array";
    case GgufValueType::U64: return "u64";
    case GgufValueType::I64: return "i64";
    case GgufValueType::F64: return "f64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::U16: case GgufValueType::I16:
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::U64: case GgufValueType::I64:
      return true;
    default: return false;
  }
}

bool GgufValue::is_float() const { return type == GgufValueType::F32 || type == GgufValueType::F64; }

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::shared_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int error = errno;
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(error));
  }
  file->size_bytes_ = static_cast<uint64_t>(st.st_size);
  if (file->size_bytes_ > 0) {
    void* mapping = ::mmap(nullptr, file->size_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
    int error = errno;
    ::close(fd);
    if (mapping == MAP_FAILED) fail("{}: cannot mmap {} bytes: {}", path, file->size_bytes_, std::strerror(error));
    file->mapping_ = static_cast<const uint8_t*>(mapping);
  } else {
    ::close(fd);
  }
  file->parse();
  return file;
}

GgufFile::~GgufFile() {
  if (mapping_) ::munmap(const_cast<uint8_t*>(mapping_), size_bytes_);
}

void GgufFile::parse() {
  Cursor cursor(path_, mapping_, size_bytes_);
  cursor.need(4, "the magic \"GGUF\"");
  if (std::memcmp(mapping_, "GGUF", 4) != 0) {
    std::string seen;
    for (int i = 0; i < 4; ++i) seen += fmt::format("{:02x}", mapping_[i]);
    cursor.fail_at(0, fmt::format("not a GGUF file: magic is 0x{}, expected \"GGUF\"", seen));
  }
  cursor.read<uint32_t>("the magic");
  version_ = cursor.read<uint32_t>("the version");
  // v1 used 32-bit counts and lengths; v2 and v3 differ only in that v3 may
  // be big-endian, which a little-endian reader sees as an absurd version.
  if (version_ != 2 && version_ != 3)
    cursor.fail_at(4, fmt::format("unsupported GGUF version {} (Mnemo reads versions 2 and 3)", version_));
  uint64_t tensor_count = cursor.read<uint64_t>("the tensor count");
  uint64_t kv_count = cursor.read<uint64_t>("the metadata count");
  if (kv_count > kMaxMetadataCount)
    cursor.fail_at(16, fmt::format("metadata count {} is more than the limit of {}", kv_count, kMaxMetadataCount));
  // Each entry needs at least a length-prefixed key and a type tag.
  if (kv_count > cursor.remaining() / 12)
    cursor.fail_at(16, fmt::format("metadata count {} cannot fit in the {} bytes left", kv_count, cursor.remaining()));

  for (uint64_t i = 0; i < kv_count; ++i) {
    uint64_t key_at = cursor.offset();
    std::string key = cursor.read_string("a metadata key", kMaxNameBytes);
    uint64_t type_at = cursor.offset();
    uint32_t type = cursor.read<uint32_t>("a metadata value type");
    if (!known_value_type(type))
      cursor.fail_at(type_at, fmt::format("metadata '{}': unknown value type {}", key, type));
    GgufValue value = read_value(cursor, static_cast<GgufValueType>(type), key, 0);
    if (!metadata_.emplace(key, std::move(value)).second)
      cursor.fail_at(key_at, fmt::format("metadata key '{}' appears twice", key));
  }

  if (auto it = metadata_.find("general.alignment"); it != metadata_.end()) {
    const GgufValue& value = it->second;
    if (!value.is_integer() || value.integer <= 0 || !is_power_of_two(static_cast<uint64_t>(value.integer)) ||
        static_cast<uint64_t>(value.integer) > kMaxAlignment)
      fail("{}: metadata 'general.alignment' must be a power of two integer up to {}, got {} {}", path_,
           kMaxAlignment, gguf_value_type_name(value.type), value.is_integer() ? std::to_string(value.integer) : "");
    alignment_ = static_cast<uint64_t>(value.integer);
  }

  if (tensor_count > kMaxTensorCount)
    cursor.fail_at(8, fmt::format("tensor count {} is more than the limit of {}", tensor_count, kMaxTensorCount));
  // Name, n_dims, dims, type, offset: at least 8 + 4 + 8 + 4 + 8 bytes.
  if (tensor_count > cursor.remaining() / 32)
    cursor.fail_at(8, fmt::format("tensor count {} cannot fit in the {} bytes left", tensor_count, cursor.remaining()));
  std::vector<uint64_t> relative_offsets;
  std::vector<uint64_t> info_offsets;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info;
    uint64_t info_at = cursor.offset();
    info.name = cursor.read_string("a tensor name", kMaxNameBytes);
    uint64_t dims_at = cursor.offset();
    uint32_t n_dims = cursor.read<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      cursor.fail_at(dims_at, fmt::format("tensor '{}': {} dimensions (must be 1 to {})", info.name, n_dims, kMaxDims));
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim_at = cursor.offset();
      uint64_t dim = cursor.read<uint64_t>("a tensor dimension");
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim)
        cursor.fail_at(dim_at, fmt::format("tensor '{}': dimension {} is {}, which is zero or too large", info.name,
                                           d, dim));
      numel *= dim;
      info.dims.push_back(static_cast<int64_t>(dim));
    }
    info.shape.assign(info.dims.rbegin(), info.dims.rend());
    uint64_t type_at = cursor.offset();
    uint32_t type = cursor.read<uint32_t>("a tensor type");
    auto traits = ggml_type_traits(type);
    if (!traits)
      cursor.fail_at(type_at, fmt::format("tensor '{}': unknown or unsupported ggml type {}", info.name, type));
    info.type = static_cast<GgmlType>(type);
    if (info.dims[0] % traits->block_values != 0)
      cursor.fail_at(dims_at, fmt::format("tensor '{}': first dimension {} is not a multiple of the {} block size {}",
                                          info.name, info.dims[0], traits->name, traits->block_values));
    // Each block needs block_bytes of the file: checking the block count
    // against the file size first keeps the byte count from overflowing.
    uint64_t n_blocks = numel / traits->block_values;
    if (n_blocks > size_bytes_ / traits->block_bytes)
      cursor.fail_at(dims_at, fmt::format("tensor '{}': {} {} blocks ({} values) cannot fit in a {}-byte file",
                                          info.name, n_blocks, traits->name, numel, size_bytes_));
    info.bytes = n_blocks * traits->block_bytes;
    uint64_t offset_at = cursor.offset();
    uint64_t offset = cursor.read<uint64_t>("a tensor data offset");
    if (offset % alignment_ != 0)
      cursor.fail_at(offset_at, fmt::format("tensor '{}': data offset {} is not a multiple of the alignment {}",
                                            info.name, offset, alignment_));
    if (tensor_index_.count(info.name))
      cursor.fail_at(info_at, fmt::format("tensor name '{}' appears twice", info.name));
    tensor_index_[info.name] = tensors_.size();
    relative_offsets.push_back(offset);
    info_offsets.push_back(offset_at);
    tensors_.push_back(std::move(info));
  }

  uint64_t end_of_infos = cursor.offset();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > size_bytes_)
    cursor.fail_at(end_of_infos, fmt::format("truncated: the tensor data section would start at byte {} but the file "
                                             "has {} bytes",
                                             data_offset_, size_bytes_));
  for (size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensorInfo& info = tensors_[i];
    uint64_t available = size_bytes_ - std::min(size_bytes_, data_offset_);
    if (relative_offsets[i] > available || info.bytes > available - relative_offsets[i])
      cursor.fail_at(info_offsets[i],
                     fmt::format("tensor '{}': data [{}, {}) of the data section (file bytes [{}, {})) runs past the "
                                 "end of the file ({} bytes)",
                                 info.name, relative_offsets[i], relative_offsets[i] + info.bytes,
                                 data_offset_ + relative_offsets[i], data_offset_ + relative_offsets[i] + info.bytes,
                                 size_bytes_));
    info.file_offset = data_offset_ + relative_offsets[i];
  }
}

const GgufValue& GgufFile::value(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) fail("{}: metadata key '{}' is missing", path_, key);
  return it->second;
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const GgufValue& value,
                             const char* wanted) {
  std::string got = gguf_value_type_name(value.type);
  if (value.type == GgufValueType::Array) got += fmt::format(" of {}", gguf_value_type_name(value.element_type));
  fail("{}: metadata '{}' is {}, expected {}", path, key, got, wanted);
}

int64_t as_int(const std::string& path, const std::string& key, const GgufValue& value) {
  if (!value.is_integer()) wrong_type(path, key, value, "an integer");
  if (value.type == GgufValueType::U64 && value.unsigned_integer > uint64_t(std::numeric_limits<int64_t>::max()))
    fail("{}: metadata '{}' = {} does not fit in a signed 64-bit integer", path, key, value.unsigned_integer);
  return value.integer;
}

double as_float(const std::string& path, const std::string& key, const GgufValue& value) {
  if (value.is_float()) return value.real;
  if (value.is_integer()) return static_cast<double>(as_int(path, key, value));
  wrong_type(path, key, value, "a number");
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufValueType::String) wrong_type(path_, key, v, "a string");
  return v.string;
}

int64_t GgufFile::get_int(const std::string& key) const { return as_int(path_, key, value(key)); }
double GgufFile::get_float(const std::string& key) const { return as_float(path_, key, value(key)); }

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufValueType::Bool) wrong_type(path_, key, v, "a bool");
  return v.boolean;
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufValueType::Array || v.element_type != GgufValueType::String)
    wrong_type(path_, key, v, "an array of strings");
  std::vector<std::string> out;
  out.reserve(v.array.size());
  for (const GgufValue& e : v.array) out.push_back(e.string);
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufValueType::Array) wrong_type(path_, key, v, "an array of integers");
  std::vector<int64_t> out;
  out.reserve(v.array.size());
  for (const GgufValue& e : v.array) {
    if (!e.is_integer()) wrong_type(path_, key, v, "an array of integers");
    out.push_back(as_int(path_, key, e));
  }
  return out;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufValueType::Array) wrong_type(path_, key, v, "an array of numbers");
  std::vector<double> out;
  out.reserve(v.array.size());
  for (const GgufValue& e : v.array) {
    if (!e.is_integer() && !e.is_float()) wrong_type(path_, key, v, "an array of numbers");
    out.push_back(as_float(path_, key, e));
  }
  return out;
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}
int64_t GgufFile::get_int_or(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
double GgufFile::get_float_or(const std::string& key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}
bool GgufFile::get_bool_or(const std::string& key, bool fallback) const { return has(key) ? get_bool(key) : fallback; }

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  if (it == tensor_index_.end()) fail("{}: no tensor named '{}'", path_, name);
  return tensors_[it->second];
}

at::Tensor GgufFile::dequantize(const std::string& name, at::ScalarType dtype) const {
  return dequantize(tensor(name), dtype);
}

}  // namespace mnemo
