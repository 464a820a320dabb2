// \brief Checkpoint files: round trip of every field, the byte layout, atomic replace, and the errors for corrupt,
// truncated, foreign, future-format and unwritable files.
#include <gtest/gtest.h>  // for TEST
#include <torch/torch.h>  // for torch::equal, torch::randn

#include <cstdio>      // for std::snprintf
#include <cstdlib>     // for mkdtemp
#include <cstring>     // for std::memcmp
#include <filesystem>  // for std::filesystem::remove_all, exists, directory_iterator
#include <fstream>     // for std::ifstream, std::ofstream
#include <iterator>    // for std::istreambuf_iterator
#include <limits>      // for std::numeric_limits

#include "core/error.h"        // for DataError, IoError
#include "train/checkpoint.h"  // for Checkpoint, write_checkpoint, read_checkpoint

using namespace dfcl;
using train::Checkpoint;
using train::read_checkpoint;
using train::write_checkpoint;
namespace fs = std::filesystem;

namespace {

/// A fresh directory per test, removed afterwards.
class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir();
    if (tmpl.empty() || tmpl.back() != '/') tmpl += '/';
    tmpl += "dfcl_ckpt_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

uint64_t get_le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(s[at + i])) << (8 * i);
  return v;
}

void put_le(std::string& s, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

/// Bitwise CRC-32 (reflected, polynomial 0xEDB88320): an independent reference that the trailer is the standard
/// CRC-32 that zlib.crc32 / binascii.crc32 compute, and the way tests re-seal a file they edited.
uint32_t reference_crc32(const std::string& s, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= uint8_t(s[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

/// Replaces the JSON header of the checkpoint bytes `s` with `header` and recomputes the checksum, so that only
/// the reader's header checks can reject it.
std::string with_header(const std::string& s, const std::string& header) {
  const uint64_t old_len = get_le(s, 12, 8);
  std::string out = s.substr(0, 20) + header + s.substr(20 + old_len);
  put_le(out, 12, header.size(), 8);
  put_le(out, out.size() - 4, reference_crc32(out, out.size() - 4), 4);
  return out;
}

nlohmann::json header_of(const std::string& s) { return nlohmann::json::parse(s.substr(20, get_le(s, 12, 8))); }

Checkpoint sample() {
  torch::manual_seed(7);
  Checkpoint c;
  c.schema_version = 3;
  c.config = "train:\n  epochs: 5\n  lr: 0.001\nname: \"r\\u00e9sum\xc3\xa9\"\n";
  c.epoch = 4;
  c.batch = 17;
  c.step = (int64_t(1) << 40) + 3;
  c.state = {{"rng", {{"seed", 42}, {"offset", 123456789012345ll}}},
             {"best_metric", 0.1 + 0.2},
             {"history", {1.5, -2.25, 1e-300}},
             {"tag", "best"},
             {"done", false},
             {"none", nullptr}};
  c.tensors = {{"model.w", torch::randn({4, 3})},
               {"model.b", torch::randn({3}, torch::kFloat64)},
               {"optim.step", torch::arange(5, torch::kInt64) * (int64_t(1) << 35)},
               {"optim.count", torch::tensor({-1, 2, 3}, torch::kInt32)},
               {"mask", torch::tensor({0, 1, 255}, torch::kUInt8)},
               {"scalar", torch::tensor(2.5, torch::kFloat32)},
               {"empty", torch::empty({0, 7})},
               {"strided", torch::randn({5, 6}).t().slice(0, 1, 4)}};  // not contiguous
  return c;
}

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.schema_version, b.schema_version);
  EXPECT_EQ(a.config, b.config);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.batch, b.batch);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.state, b.state);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const auto& [name, want] = a.tensors[i];
    const auto& got = b.tensors[i].second;
    SCOPED_TRACE(name);
    EXPECT_EQ(b.tensors[i].first, name);
    EXPECT_EQ(got.scalar_type(), want.scalar_type());
    EXPECT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(got.device().is_cpu());
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_TRUE(torch::equal(got, want.contiguous()));
    const at::Tensor w = want.contiguous();
    if (w.numel() > 0) {  // bitwise, not just ==, so that -0.0 and NaN payloads survive too
      EXPECT_EQ(std::memcmp(got.data_ptr(), w.data_ptr(), w.numel() * w.element_size()), 0);
    }
  }
}

/// Runs `f`, expects a DataError whose message contains every one of `parts`, and returns the message.
template <typename F>
std::string data_error(F f, std::initializer_list<const char*> parts) {
  try {
    f();
  } catch (const DataError& e) {
    const std::string msg = e.what();
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected DataError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected DataError, nothing thrown";
  return "";
}

}  // namespace

TEST_F(CheckpointTest, RoundTripAllFields) {
  const Checkpoint c = sample();
  const std::string p = path("a.ckpt");
  write_checkpoint(p, c);
  expect_same(c, read_checkpoint(p));
  EXPECT_FALSE(fs::exists(p + ".partial"));
}

TEST_F(CheckpointTest, RoundTripDefaultsAndSpecialValues) {
  Checkpoint c;  // null state, no tensors, empty config
  write_checkpoint(path("empty.ckpt"), c);
  expect_same(c, read_checkpoint(path("empty.ckpt")));

  const double inf = std::numeric_limits<double>::infinity();
  c.tensors = {
      {"special", torch::tensor({-0.0, inf, -inf, std::numeric_limits<double>::quiet_NaN(), 5e-324}, torch::kFloat64)},
      {"f32", torch::tensor({-0.0f, std::numeric_limits<float>::denorm_min()}, torch::kFloat32)}};
  write_checkpoint(path("special.ckpt"), c);
  const Checkpoint back = read_checkpoint(path("special.ckpt"));
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const at::Tensor& w = c.tensors[i].second;
    EXPECT_EQ(std::memcmp(back.tensors[i].second.data_ptr(), w.data_ptr(), w.numel() * w.element_size()), 0);
  }
}

TEST_F(CheckpointTest, LoadedTensorsOwnTheirMemory) {
  const std::string p = path("own.ckpt");
  write_checkpoint(p, sample());
  Checkpoint back = read_checkpoint(p);
  fs::remove(p);  // nothing may still point into the file's bytes
  const at::Tensor w = back.tensors[0].second;
  const at::Tensor copy = w.clone();
  w.add_(1.0);
  EXPECT_TRUE(torch::equal(w, copy + 1.0));
  EXPECT_TRUE(back.tensors[0].second.is_contiguous());
}

TEST_F(CheckpointTest, ByteLayoutMatchesTheFormat) {
  const Checkpoint c = sample();
  const std::string p = path("layout.ckpt");
  write_checkpoint(p, c);
  const std::string s = slurp(p);
  ASSERT_GE(s.size(), 24u);
  EXPECT_EQ(s.substr(0, 8), "DFCLCKPT");
  EXPECT_EQ(get_le(s, 8, 4), uint64_t(train::kCheckpointVersion));
  const uint64_t header_len = get_le(s, 12, 8);
  ASSERT_LE(20 + header_len + 4, s.size());
  const nlohmann::json h = nlohmann::json::parse(s.substr(20, header_len));
  EXPECT_EQ(h.at("schema_version"), 3);
  EXPECT_EQ(h.at("config"), c.config);
  EXPECT_EQ(h.at("epoch"), 4);
  EXPECT_EQ(h.at("batch"), 17);
  EXPECT_EQ(h.at("step"), c.step);
  EXPECT_EQ(h.at("state"), c.state);
  const auto& dir = h.at("tensors");
  ASSERT_EQ(dir.size(), c.tensors.size());
  const char* dtypes[] = {"float32", "float64", "int64", "int32", "uint8", "float32", "float32", "float32"};
  const size_t data = 20 + header_len;
  for (size_t i = 0; i < dir.size(); ++i) {
    const at::Tensor t = c.tensors[i].second.contiguous();
    SCOPED_TRACE(c.tensors[i].first);
    EXPECT_EQ(dir[i].at("name"), c.tensors[i].first);
    EXPECT_EQ(dir[i].at("dtype"), dtypes[i]);
    EXPECT_EQ(dir[i].at("shape").get<std::vector<int64_t>>(), t.sizes().vec());
    const size_t offset = dir[i].at("offset"), nbytes = dir[i].at("nbytes");
    EXPECT_EQ(nbytes, size_t(t.numel()) * t.element_size());
    ASSERT_LE(data + offset + nbytes, s.size() - 4);
    if (nbytes) {  // raw little-endian, as the tensor holds it
      EXPECT_EQ(std::memcmp(s.data() + data + offset, t.data_ptr(), nbytes), 0);
    }
  }
  EXPECT_EQ(get_le(s, s.size() - 4, 4), reference_crc32(s, s.size() - 4));  // standard CRC-32 of all before it
  EXPECT_EQ(reference_crc32("123456789", 9), 0xcbf43926u);                  // the reference is CRC-32's check value
}

TEST_F(CheckpointTest, OverwriteReplacesAndLeavesNoPartial) {
  const std::string p = path("run.ckpt");
  Checkpoint c = sample();
  write_checkpoint(p, c);
  c.epoch = 9;
  c.tensors = {{"model.w", torch::ones({2, 2})}};
  c.state = {{"best_metric", 0.5}};
  write_checkpoint(p, c);
  expect_same(c, read_checkpoint(p));
  EXPECT_FALSE(fs::exists(p + ".partial"));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    files += 1;
    EXPECT_EQ(e.path().filename().string(), "run.ckpt");
  }
  EXPECT_EQ(files, 1u);
}

TEST_F(CheckpointTest, StalePartialIsReplaced) {
  const std::string p = path("run.ckpt");
  spit(p + ".partial", "left over from a crash");
  write_checkpoint(p, sample());
  expect_same(sample(), read_checkpoint(p));
  EXPECT_FALSE(fs::exists(p + ".partial"));
}

TEST_F(CheckpointTest, MissingDirectoryIsIoErrorNamingThePath) {
  const std::string p = path("no/such/dir/run.ckpt");
  try {
    write_checkpoint(p, sample());
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot create checkpoint '" + p + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("check that the directory exists and is writable"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(path("no")));
}

TEST_F(CheckpointTest, UnwritableTargetRemovesPartial) {
  const std::string p = path("is_a_dir");
  fs::create_directory(p);
  fs::create_directory(p + "/child");  // rename() cannot replace a non-empty directory
  EXPECT_THROW(write_checkpoint(p, sample()), IoError);
  EXPECT_FALSE(fs::exists(p + ".partial"));
}

TEST_F(CheckpointTest, MissingFileIsIoError) {
  const std::string p = path("absent.ckpt");
  try {
    read_checkpoint(p);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("'" + p + "'"), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, DuplicateNamesAreDataError) {
  Checkpoint c;
  c.tensors = {{"model.w", torch::zeros({2})}, {"model.b", torch::zeros({1})}, {"model.w", torch::ones({2})}};
  const std::string p = path("dup.ckpt");
  data_error([&] { write_checkpoint(p, c); }, {"'model.w'", "unique", p.c_str()});
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".partial"));
}

TEST_F(CheckpointTest, UnsupportedTensorsAreDataError) {
  const std::string p = path("bad.ckpt");
  Checkpoint c;
  c.tensors = {{"flags", torch::zeros({2}, torch::kBool)}};
  data_error([&] { write_checkpoint(p, c); }, {"'flags'", "float32, float64, int64, int32, uint8"});
  c.tensors = {{"half", torch::zeros({2}, torch::kFloat16)}};
  data_error([&] { write_checkpoint(p, c); }, {"'half'", "dtype"});
  c.tensors = {{"undef", at::Tensor()}};
  data_error([&] { write_checkpoint(p, c); }, {"'undef'", "undefined"});
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".partial"));
}

TEST_F(CheckpointTest, AnyCorruptByteIsDetected) {
  const std::string p = path("good.ckpt");
  write_checkpoint(p, sample());
  const std::string good = slurp(p);
  const uint64_t header_len = get_le(good, 12, 8);
  // Every byte of the preamble, a spread of header bytes, every data byte and every checksum byte.
  std::vector<size_t> where;
  for (size_t i = 8; i < 20; ++i) where.push_back(i);
  for (size_t i = 20; i < 20 + header_len; i += 7) where.push_back(i);
  for (size_t i = 20 + header_len; i < good.size(); ++i) where.push_back(i);
  const std::string q = path("bad.ckpt");
  for (size_t at : where) {
    for (uint8_t flip : {uint8_t(0x01), uint8_t(0x80)}) {
      std::string bad = good;
      bad[at] = static_cast<char>(uint8_t(bad[at]) ^ flip);
      spit(q, bad);
      SCOPED_TRACE("byte " + std::to_string(at) + " ^ " + std::to_string(flip));
      data_error([&] { read_checkpoint(q); }, {"checksum", "truncated or corrupt", q.c_str()});
    }
  }
}

TEST_F(CheckpointTest, CorruptionMessageIsExact) {
  const std::string p = path("good.ckpt");
  write_checkpoint(p, sample());
  const std::string good = slurp(p);
  const size_t data = 20 + get_le(good, 12, 8);
  const std::string q = path("bad.ckpt");
  auto expect_message = [&](size_t at) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    spit(q, bad);
    char crcs[64];
    std::snprintf(crcs, sizeof crcs, "stored %08x, computed %08x", unsigned(get_le(bad, bad.size() - 4, 4)),
                  unsigned(reference_crc32(bad, bad.size() - 4)));
    const std::string want = "checkpoint '" + q + "': checksum mismatch (" + crcs + " over " +
                             std::to_string(bad.size() - 4) +
                             " bytes): the file is truncated or corrupt; resume from another checkpoint";
    SCOPED_TRACE("byte " + std::to_string(at));
    EXPECT_EQ(data_error([&] { read_checkpoint(q); }, {}), want);
  };
  expect_message(13);               // header length
  expect_message(40);               // JSON header
  expect_message(data + 5);         // tensor data
  expect_message(good.size() - 2);  // the checksum itself
}

TEST_F(CheckpointTest, TruncatedFileIsDataError) {
  const std::string p = path("good.ckpt");
  write_checkpoint(p, sample());
  const std::string good = slurp(p);
  const std::string q = path("cut.ckpt");
  for (size_t keep : {size_t(0), size_t(5), size_t(8), size_t(19), size_t(23), size_t(24), size_t(60), good.size() / 2,
                      good.size() - 5, good.size() - 1}) {
    spit(q, good.substr(0, keep));
    SCOPED_TRACE("kept " + std::to_string(keep) + " bytes");
    data_error([&] { read_checkpoint(q); }, {"truncated or corrupt", q.c_str()});
  }
  spit(q, good + "x");  // trailing garbage moves the checksum too
  data_error([&] { read_checkpoint(q); }, {"checksum mismatch"});
}

TEST_F(CheckpointTest, WrongMagicIsNotACheckpoint) {
  const std::string p = path("good.ckpt");
  write_checkpoint(p, sample());
  std::string bad = slurp(p);
  bad[3] = 'X';
  const std::string q = path("foreign.bin");
  spit(q, bad);
  data_error([&] { read_checkpoint(q); }, {"not a dfcl checkpoint", q.c_str()});
  spit(q, "PK\x03\x04 a zip file, say");
  data_error([&] { read_checkpoint(q); }, {"not a dfcl checkpoint"});
  spit(q, "DFC");  // a prefix of the magic is a truncated checkpoint, not a foreign file
  data_error([&] { read_checkpoint(q); }, {"truncated or corrupt"});
}

TEST_F(CheckpointTest, FutureVersionIsNamed) {
  const std::string p = path("good.ckpt");
  write_checkpoint(p, sample());
  std::string future = slurp(p);
  put_le(future, 8, 2, 4);
  put_le(future, future.size() - 4, reference_crc32(future, future.size() - 4), 4);  // a consistent newer file
  const std::string q = path("future.ckpt");
  spit(q, future);
  const std::string msg = data_error([&] { read_checkpoint(q); },
                                     {"written by a newer dfcl (format 2); this build reads format 1", q.c_str()});
  EXPECT_EQ(msg.find("corrupt"), std::string::npos) << msg;

  put_le(future, future.size() - 4, 0, 4);  // newer and failing this format's checksum: could be either
  spit(q, future);
  data_error([&] { read_checkpoint(q); },
             {"checksum mismatch",
              "truncated or corrupt, or written by a newer dfcl (format 2; this build reads "
              "format 1); resume from another checkpoint"});

  put_le(future, 8, 0, 4);
  put_le(future, future.size() - 4, reference_crc32(future, future.size() - 4), 4);
  spit(q, future);
  data_error([&] { read_checkpoint(q); }, {"format version 0 is unknown"});
}

TEST_F(CheckpointTest, BadHeaderWithValidChecksum) {
  const std::string p = path("good.ckpt");
  write_checkpoint(p, sample());
  const std::string good = slurp(p);
  const nlohmann::json h = header_of(good);
  const std::string q = path("crafted.ckpt");
  auto expect_rejected = [&](const std::string& header, std::initializer_list<const char*> parts) {
    spit(q, with_header(good, header));
    SCOPED_TRACE(header.substr(0, 200));
    data_error([&] { read_checkpoint(q); }, parts);
  };
  // The re-sealing itself is sound: an unchanged header reads back.
  spit(q, with_header(good, h.dump()));
  expect_same(sample(), read_checkpoint(q));

  expect_rejected("{not json", {"not valid JSON"});
  expect_rejected("[]", {"no 'schema_version'"});
  nlohmann::json j = h;
  j.erase("step");
  expect_rejected(j.dump(), {"no 'step'"});
  j = h, j["epoch"] = "four";
  expect_rejected(j.dump(), {"epoch", "not an integer"});
  j = h, j["config"] = 5;
  expect_rejected(j.dump(), {"config is not a string"});
  j = h, j["tensors"] = nlohmann::json::object();
  expect_rejected(j.dump(), {"tensors is not a list"});
  j = h, j["tensors"][0]["dtype"] = "bfloat16";
  expect_rejected(j.dump(), {"'model.w'", "\"bfloat16\"", "float32, float64, int64, int32, uint8"});
  j = h, j["tensors"][0]["nbytes"] = 44;
  expect_rejected(j.dump(), {"'model.w'", "44 bytes for shape [4,3] of float32"});
  j = h, j["tensors"][0]["shape"] = {4, -3};
  expect_rejected(j.dump(), {"'model.w'", "negative"});
  j = h, j["tensors"][0]["shape"] = {uint64_t(1) << 62, uint64_t(1) << 62};
  expect_rejected(j.dump(), {"'model.w'", "bytes for shape"});
  j = h, j["tensors"][1]["offset"] = 1u << 20;
  expect_rejected(j.dump(), {"'model.b'", "runs past"});
  j = h, j["tensors"][1]["offset"] = std::numeric_limits<uint64_t>::max();
  expect_rejected(j.dump(), {"'model.b'", "out of range"});
  j = h, j["tensors"][2]["name"] = "model.w";
  expect_rejected(j.dump(), {"'model.w' appears twice"});
  j = h, j["tensors"][2].erase("offset");
  expect_rejected(j.dump(), {"tensor entry 2 has no 'offset'"});

  std::string long_header = with_header(good, h.dump());  // a header length past the end of the file
  put_le(long_header, 12, long_header.size(), 8);
  put_le(long_header, long_header.size() - 4, reference_crc32(long_header, long_header.size() - 4), 4);
  spit(q, long_header);
  data_error([&] { read_checkpoint(q); }, {"header length", "runs past the end"});
}

TEST_F(CheckpointTest, InvalidUtf8IsDataErrorAndWritesNothing) {
  Checkpoint c;
  c.config = "bad \xff byte";
  const std::string p = path("utf8.ckpt");
  data_error([&] { write_checkpoint(p, c); }, {"UTF-8"});
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".partial"));
}
