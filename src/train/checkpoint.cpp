// \brief write_checkpoint / read_checkpoint: the DFCLCKPT file (see checkpoint.h), POSIX I/O, CRC-32 trailer.
#include "train/checkpoint.h"

#include <ATen/ATen.h>   // for at::empty, at::ScalarType, at::kCPU
#include <fcntl.h>       // for open, O_WRONLY, O_CREAT, O_TRUNC, O_CLOEXEC, O_DIRECTORY
#include <fmt/format.h>  // for fmt::format
#include <sys/stat.h>    // for fstat
#include <unistd.h>      // for write, read, fsync, close, unlink

#ifdef DFCL_HAVE_LIBDEFLATE
#include <libdeflate.h>  // for libdeflate_crc32
#else
#include <zlib.h>  // for crc32
#endif

#include <algorithm>      // for std::min
#include <cerrno>         // for errno, EINTR, EINVAL
#include <cstdio>         // for std::rename
#include <cstring>        // for std::memcpy, std::memcmp, std::strerror
#include <filesystem>     // for std::filesystem::path
#include <limits>         // for std::numeric_limits
#include <unordered_set>  // for std::unordered_set
#include <vector>         // for std::vector

#include "core/error.h"  // for IoError, DataError

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dfcl checkpoints store raw little-endian tensor bytes; this build targets a big-endian machine"
#endif

namespace dfcl::train {
namespace {

constexpr char kMagic[8] = {'D', 'F', 'C', 'L', 'C', 'K', 'P', 'T'};
constexpr size_t kPreamble = 8 + 4 + 8;  // magic, format version, header length
constexpr size_t kTrailer = 4;           // CRC-32

/// CRC-32 (ISO-HDLC, as zlib.crc32 and libdeflate_crc32 compute it), continued from `crc` (0 to start).
uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
#ifdef DFCL_HAVE_LIBDEFLATE
  return libdeflate_crc32(crc, data, n);
#else
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {  // zlib takes uInt lengths
    const size_t part = std::min<size_t>(n, std::numeric_limits<uInt>::max());
    crc = static_cast<uint32_t>(::crc32(crc, p, static_cast<uInt>(part)));
    p += part, n -= part;
  }
  return crc;
#endif
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

/// The file's dtype names; nullptr for a dtype checkpoints do not store.
const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kLong:
      return "int64";
    case at::kInt:
      return "int32";
    case at::kByte:
      return "uint8";
    default:
      return nullptr;
  }
}

bool dtype_from_name(const std::string& name, at::ScalarType& out) {
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kLong, at::kInt, at::kByte})
    if (name == dtype_name(t)) {
      out = t;
      return true;
    }
  return false;
}

constexpr const char* kDtypes = "float32, float64, int64, int32, uint8";

/// The open `.partial` file: closed and removed on destruction unless commit() succeeded.
class PartialFile {
 public:
  PartialFile(std::string path, std::string tmp) : path_(std::move(path)), tmp_(std::move(tmp)) {
    do fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0)
      throw IoError(fmt::format("cannot create checkpoint '{}': {}; check that the directory exists and is writable",
                                path_, std::strerror(errno)));
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  /// Writes all `n` bytes (short writes and EINTR retried) and folds them into the running CRC.
  void write(const void* data, size_t n) {
    crc_ = crc32_update(crc_, data, n);
    write_raw(data, n);
  }

  /// Appends the CRC, flushes to disk, renames over `path`, and flushes the directory entry.
  void commit() {
    std::string trailer;
    put_le(trailer, crc_, 4);
    write_raw(trailer.data(), trailer.size());
    if (::fsync(fd_) != 0) fail("cannot flush checkpoint", " to disk", "check free disk space");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("cannot write checkpoint", " (on close)", "check free disk space");
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail("cannot replace checkpoint", "", "check that the path is not a directory and the directory is writable");
    committed_ = true;
    sync_directory();
  }

 private:
  /// IoError "<what> '<path>'<after>: <strerror(errno)>; <fix>".
  [[noreturn]] void fail(const char* what, const char* after, const char* fix) const {
    throw IoError(fmt::format("{} '{}'{}: {}; {}", what, path_, after, std::strerror(errno), fix));
  }

  void write_raw(const void* data, size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t k = ::write(fd_, p, n);
      if (k < 0) {
        if (errno == EINTR) continue;
        fail("cannot write checkpoint", "", "check free disk space and quotas");
      }
      p += k, n -= static_cast<size_t>(k);
    }
  }

  /// fsync of the directory makes the rename durable. A file system that cannot sync a directory (EINVAL) still
  /// renamed atomically, so that is not an error.
  void sync_directory() const {
    std::string dir = std::filesystem::path(path_).parent_path().string();
    if (dir.empty()) dir = ".";
    int fd;
    do fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
      fail("wrote checkpoint", " but cannot open its directory to flush it", "check the directory's permissions");
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0 && err != EINVAL && err != ENOTSUP) {
      errno = err;
      fail("wrote checkpoint", " but cannot flush its directory to disk", "check the file system");
    }
  }

  std::string path_, tmp_;
  int fd_ = -1;
  uint32_t crc_ = 0;
  bool committed_ = false;
};

std::vector<uint8_t> read_file(const std::string& path) {
  int fd;
  do fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  auto fail = [&] {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw IoError(
        fmt::format("cannot read checkpoint '{}': {}; check the path and its permissions", path, std::strerror(err)));
  };
  if (fd < 0) fail();
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail();
  std::vector<uint8_t> bytes;
  bytes.reserve(st.st_size > 0 ? static_cast<size_t>(st.st_size) : 0);
  uint8_t buf[1 << 16];
  for (;;) {
    const ssize_t k = ::read(fd, buf, sizeof buf);
    if (k < 0) {
      if (errno == EINTR) continue;
      fail();
    }
    if (k == 0) break;
    bytes.insert(bytes.end(), buf, buf + k);
  }
  ::close(fd);
  return bytes;
}

}  // namespace

void write_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  // Check every tensor before creating any file, and lay out the directory: offsets from the start of the data.
  nlohmann::json dir = nlohmann::json::array();
  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : checkpoint.tensors) {
    if (!names.insert(name).second)
      throw DataError(
          fmt::format("checkpoint '{}': two tensors are named '{}'; tensor names must be unique", path, name));
    if (!t.defined())
      throw DataError(
          fmt::format("checkpoint '{}': tensor '{}' is undefined; pass a tensor or leave it out", path, name));
    if (t.layout() != at::kStrided)
      throw DataError(
          fmt::format("checkpoint '{}': tensor '{}' is not a dense tensor; convert it with .to_dense()", path, name));
    const char* dtype = dtype_name(t.scalar_type());
    if (!dtype)
      throw DataError(fmt::format("checkpoint '{}': tensor '{}' has dtype {}; checkpoints store {}", path, name,
                                  c10::toString(t.scalar_type()), kDtypes));
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    dir.push_back(
        {{"name", name}, {"dtype", dtype}, {"shape", t.sizes().vec()}, {"offset", offset}, {"nbytes", nbytes}});
    offset += nbytes;
  }
  const nlohmann::json header = {{"schema_version", checkpoint.schema_version},
                                 {"config", checkpoint.config},
                                 {"epoch", checkpoint.epoch},
                                 {"batch", checkpoint.batch},
                                 {"step", checkpoint.step},
                                 {"state", checkpoint.state},
                                 {"tensors", std::move(dir)}};
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(
        fmt::format("checkpoint '{}': the header cannot be written as JSON ({}); config, state and tensor "
                    "names must be valid UTF-8",
                    path, e.what()));
  }
  std::string head(kMagic, sizeof kMagic);
  put_le(head, static_cast<uint32_t>(kCheckpointVersion), 4);
  put_le(head, text.size(), 8);
  head += text;

  PartialFile file(path, path + ".partial");
  file.write(head.data(), head.size());
  for (const auto& kv : checkpoint.tensors) {
    const at::Tensor cpu = kv.second.detach().to(at::kCPU).contiguous();  // no copy for a CPU contiguous tensor
    if (cpu.numel() > 0) file.write(cpu.data_ptr(), static_cast<size_t>(cpu.numel()) * cpu.element_size());
  }
  file.commit();
}

Checkpoint read_checkpoint(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  const size_t size = bytes.size();
  auto corrupt = [&](const std::string& what) { return DataError(fmt::format("checkpoint '{}': {}", path, what)); };
  constexpr const char* kResume = "the file is truncated or corrupt; resume from another checkpoint";

  // Magic first: a file that is no checkpoint is named as such before any other check.
  if (size > 0 && std::memcmp(bytes.data(), kMagic, std::min(size, sizeof kMagic)) != 0)
    throw corrupt("not a dfcl checkpoint (no DFCLCKPT magic at the start); check the path");
  if (size < kPreamble + kTrailer)
    throw corrupt(fmt::format("{} bytes, shorter than the smallest checkpoint ({} bytes): {}", size,
                              kPreamble + kTrailer, kResume));
  const uint32_t stored_crc = static_cast<uint32_t>(get_le(bytes.data() + size - kTrailer, 4));
  const uint32_t crc = crc32_update(0, bytes.data(), size - kTrailer);
  const uint64_t version = get_le(bytes.data() + 8, 4);
  // A newer format may lay its trailer out differently, so its version is named even when this format's checksum
  // fails; the message then says that the file may as well be damaged.
  const bool newer = version > static_cast<uint64_t>(kCheckpointVersion);
  if (crc == stored_crc && version != static_cast<uint64_t>(kCheckpointVersion)) {
    if (newer)
      throw corrupt(
          fmt::format("written by a newer dfcl (format {}); this build reads format {}", version, kCheckpointVersion));
    throw corrupt(fmt::format("format version {} is unknown; this build reads format {}", version, kCheckpointVersion));
  }
  if (crc != stored_crc)
    throw corrupt(fmt::format(
        "checksum mismatch (stored {:08x}, computed {:08x} over {} bytes): the file is truncated or corrupt{}; resume "
        "from another checkpoint",
        stored_crc, crc, size - kTrailer,
        newer ? fmt::format(", or written by a newer dfcl (format {}; this build reads format {})", version,
                            kCheckpointVersion)
              : std::string()));

  // The checksum holds, so what follows fails only for a file some other writer produced.
  const uint64_t header_len = get_le(bytes.data() + 12, 8);
  if (header_len > size - kPreamble - kTrailer)
    throw corrupt(fmt::format("header length {} runs past the end of the {}-byte file: {}", header_len, size, kResume));
  const uint8_t* data = bytes.data() + kPreamble + header_len;
  const uint64_t data_len = size - kPreamble - kTrailer - header_len;

  Checkpoint out;
  nlohmann::json header;
  try {
    const char* text = reinterpret_cast<const char*>(bytes.data()) + kPreamble;
    header = nlohmann::json::parse(text, text + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw corrupt(fmt::format("the header is not valid JSON ({}): {}", e.what(), kResume));
  }
  auto field = [&](const char* key) -> const nlohmann::json& {
    if (!header.is_object() || !header.contains(key))
      throw corrupt(fmt::format("the header has no '{}': {}", key, kResume));
    return header.at(key);
  };
  auto integer = [&](const nlohmann::json& j, const std::string& what) -> int64_t {
    if (!j.is_number_integer()) throw corrupt(fmt::format("{} is {}, not an integer: {}", what, j.dump(), kResume));
    if (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      throw corrupt(fmt::format("{} = {} is out of range: {}", what, j.dump(), kResume));
    return j.get<int64_t>();
  };
  const int64_t schema = integer(field("schema_version"), "schema_version");
  if (schema < std::numeric_limits<int>::min() || schema > std::numeric_limits<int>::max())
    throw corrupt(fmt::format("schema_version = {} is out of range: {}", schema, kResume));
  out.schema_version = static_cast<int>(schema);
  if (!field("config").is_string()) throw corrupt(fmt::format("the header's config is not a string: {}", kResume));
  out.config = field("config").get<std::string>();
  out.epoch = integer(field("epoch"), "epoch");
  out.batch = integer(field("batch"), "batch");
  out.step = integer(field("step"), "step");
  out.state = field("state");

  const nlohmann::json& dir = field("tensors");
  if (!dir.is_array()) throw corrupt(fmt::format("the header's tensors is not a list: {}", kResume));
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < dir.size(); ++i) {
    const nlohmann::json& e = dir[i];
    const std::string where = fmt::format("tensor entry {}", i);
    for (const char* key : {"name", "dtype", "shape", "offset", "nbytes"})
      if (!e.is_object() || !e.contains(key)) throw corrupt(fmt::format("{} has no '{}': {}", where, key, kResume));
    if (!e["name"].is_string()) throw corrupt(fmt::format("{} has a name that is not a string: {}", where, kResume));
    const std::string name = e["name"].get<std::string>();
    const std::string what = fmt::format("tensor '{}'", name);
    if (!names.insert(name).second) throw corrupt(fmt::format("{} appears twice: {}", what, kResume));
    at::ScalarType dtype{};
    if (!e["dtype"].is_string() || !dtype_from_name(e["dtype"].get<std::string>(), dtype))
      throw corrupt(fmt::format("{} has dtype {}; this build reads {}", what, e["dtype"].dump(), kDtypes));
    if (!e["shape"].is_array()) throw corrupt(fmt::format("{} has a shape that is not a list: {}", what, kResume));
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : e["shape"]) {
      const int64_t n = integer(d, what + " shape");
      if (n < 0) throw corrupt(fmt::format("{} has a negative extent {}: {}", what, n, kResume));
      shape.push_back(n);
      if (n != 0 && numel > std::numeric_limits<uint64_t>::max() / uint64_t(n)) overflow = true;
      numel *= uint64_t(n);
    }
    const int64_t offset = integer(e["offset"], what + " offset");
    const int64_t nbytes = integer(e["nbytes"], what + " nbytes");
    const uint64_t itemsize = c10::elementSize(dtype);
    if (offset < 0 || nbytes < 0 || overflow || numel > std::numeric_limits<uint64_t>::max() / itemsize ||
        numel * itemsize != uint64_t(nbytes))
      throw corrupt(fmt::format("{} has {} bytes for shape {} of {}: {}", what, e["nbytes"].dump(), e["shape"].dump(),
                                e["dtype"].get<std::string>(), kResume));
    if (uint64_t(offset) > data_len || uint64_t(nbytes) > data_len - uint64_t(offset))
      throw corrupt(fmt::format("{} (bytes {}..{}) runs past the {}-byte data section: {}", what, offset,
                                uint64_t(offset) + uint64_t(nbytes), data_len, kResume));
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype).device(at::kCPU));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data + offset, static_cast<size_t>(nbytes));
    out.tensors.emplace_back(name, std::move(t));
  }
  return out;
}

}  // namespace dfcl::train
