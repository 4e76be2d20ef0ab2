// Tests for safetensors checkpoints (round trip, on-disk layout, and every
// class of corrupt or hostile file) and for the atomic file helpers.
#include "runtime/Checkpoint.h"
#include "runtime/FileUtil.h"

#include "test/unit/TempDirTest.h"

#include "test/unit/ErrorMatchers.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

using namespace nnc::runtime;
namespace fs = std::filesystem;

namespace {

class CheckpointTest : public nnc::test::TempDirTest {
protected:
  /// A safetensors file with the given header text (unpadded) and data bytes.
  std::string writeSafetensors(const std::string &name, const std::string &header, const std::string &data) const {
    return write(name, lengthPrefix(header.size()) + header + data);
  }

  static std::string lengthPrefix(uint64_t n) {
    std::string s;
    for (int i = 0; i < 8; ++i)
      s.push_back(char((n >> (8 * i)) & 0xff));
    return s;
  }
};

std::string slurp(const std::string &p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool hasTempFiles(const std::string &dir) {
  for (const auto &e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos)
      return true;
  return false;
}

/// 8 zero bytes: enough data for two F32 or one I64 element.
const std::string kEightBytes(8, '\0');

} // namespace

TEST_F(CheckpointTest, RoundTrip) {
  Tensor w(DType::F32, {2, 3});
  for (int i = 0; i < 6; ++i)
    w.f32()[i] = 0.5f * float(i) - 1.0f;
  Tensor step(DType::I64, {});
  step.i64()[0] = int64_t(1) << 40;
  Tensor idx(DType::I64, {3});
  idx.i64()[0] = -7;
  idx.i64()[1] = 0;
  idx.i64()[2] = 123456789012345;
  Tensor empty(DType::F32, {0, 4});
  std::string p = path("model.safetensors");
  saveSafetensors(p, {{"layer.w", &w}, {"step", &step}, {"idx", &idx}, {"empty", &empty}},
                  {{"format", "nnc"}, {"epoch", "3"}});

  Checkpoint c = loadSafetensors(p);
  ASSERT_EQ(c.tensors.size(), 4u);
  const Tensor &w2 = c.tensors.at("layer.w");
  EXPECT_EQ(w2.dtype(), DType::F32);
  EXPECT_EQ(w2.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(w2.data(), w.data(), w.bytes()), 0);
  EXPECT_EQ(c.tensors.at("step").dtype(), DType::I64);
  EXPECT_EQ(c.tensors.at("step").rank(), 0u);
  EXPECT_EQ(c.tensors.at("step").i64()[0], int64_t(1) << 40);
  EXPECT_EQ(c.tensors.at("idx").i64()[0], -7);
  EXPECT_EQ(c.tensors.at("idx").i64()[2], 123456789012345);
  EXPECT_EQ(c.tensors.at("empty").shape(), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(c.metadata, (std::map<std::string, std::string>{{"format", "nnc"}, {"epoch", "3"}}));
  EXPECT_FALSE(hasTempFiles(dir));
}

TEST_F(CheckpointTest, FileLayout) {
  Tensor a(DType::F32, {2});
  a.f32()[0] = 1.0f;
  a.f32()[1] = 2.0f;
  Tensor b(DType::I64, {1});
  b.i64()[0] = 5;
  std::string p = path("layout.safetensors");
  saveSafetensors(p, {{"z_first", &a}, {"a_second", &b}}, {{"k", "v"}});
  std::string bytes = slurp(p);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 16);
  std::string header = bytes.substr(8, n);
  // Padded with fewer than 8 spaces after the closing brace.
  size_t last = header.find_last_not_of(' ');
  ASSERT_NE(last, std::string::npos);
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(n - (last + 1), 8u);
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"]["k"], "v");
  EXPECT_EQ(j["z_first"]["dtype"], "F32");
  EXPECT_EQ(j["z_first"]["shape"], nlohmann::json::array({2}));
  EXPECT_EQ(j["z_first"]["data_offsets"], nlohmann::json::array({0, 8}));
  EXPECT_EQ(j["a_second"]["dtype"], "I64");
  EXPECT_EQ(j["a_second"]["data_offsets"], nlohmann::json::array({8, 16}));
  // Tensors appear in the caller's order in the header text and the data.
  EXPECT_LT(header.find("z_first"), header.find("a_second"));
  float f[2];
  std::memcpy(f, bytes.data() + 8 + n, 8);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[1], 2.0f);
  int64_t i64;
  std::memcpy(&i64, bytes.data() + 8 + n + 8, 8);
  EXPECT_EQ(i64, 5);
}

TEST_F(CheckpointTest, SaveRejectsBadNames) {
  Tensor a(DType::F32, {1});
  EXPECT_ERROR_HAS(saveSafetensors(path("d"), {{"x", &a}, {"x", &a}}), "duplicate tensor name 'x'");
  EXPECT_ERROR_HAS(saveSafetensors(path("m"), {{"__metadata__", &a}}), "'__metadata__' is not a valid");
  EXPECT_ERROR_HAS(saveSafetensors(path("nodir/x.safetensors"), {{"x", &a}}), "cannot write '", "nodir/x.safetensors'",
                   "No such file or directory");
}

TEST_F(CheckpointTest, ReadsForeignFile) {
  // Key order, spacing and no metadata, as another writer might produce.
  std::string header = R"({ "b": {"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                       R"( "a": {"shape":[2],"dtype":"F32","data_offsets":[0,8]} })";
  float fa[2] = {3.0f, 4.0f};
  int64_t ib = 9;
  std::string data(16, '\0');
  std::memcpy(&data[0], fa, 8);
  std::memcpy(&data[8], &ib, 8);
  Checkpoint c = loadSafetensors(writeSafetensors("f", header, data));
  EXPECT_EQ(c.tensors.at("a").f32()[1], 4.0f);
  EXPECT_EQ(c.tensors.at("b").i64()[0], 9);
  EXPECT_TRUE(c.metadata.empty());
}

TEST_F(CheckpointTest, TruncatedFiles) {
  Tensor w(DType::F32, {4, 4});
  std::string good = path("good");
  saveSafetensors(good, {{"w", &w}});
  std::string bytes = slurp(good);

  std::string tiny = write("tiny", bytes.substr(0, 5));
  EXPECT_ERROR_HAS(loadSafetensors(tiny), "'" + tiny + "'", "5 bytes is too short");
  std::string noFile = write("empty", "");
  EXPECT_ERROR_HAS(loadSafetensors(noFile), "0 bytes is too short");

  std::string cutHeader = write("cuth", bytes.substr(0, 20));
  EXPECT_ERROR_HAS(loadSafetensors(cutHeader), "'" + cutHeader + "'", "runs past the end of the file");

  std::string cutData = write("cutd", bytes.substr(0, bytes.size() - 1));
  EXPECT_ERROR_HAS(loadSafetensors(cutData), "'" + cutData + "'", "tensor 'w'", "out of bounds");

  EXPECT_ERROR_HAS(loadSafetensors(path("missing")), "cannot open '", "missing'");
}

TEST_F(CheckpointTest, HeaderLengthTooLarge) {
  std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string p = write("big", lengthPrefix(header.size() + 100) + header + kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(p), "'" + p + "'", "header length", "runs past the end");
  std::string absurd = write("absurd", lengthPrefix(uint64_t(1) << 62) + header + kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(absurd), "'" + absurd + "'", "is absurd");
  std::string max = write("max", lengthPrefix(~uint64_t(0)) + header);
  EXPECT_ERROR_HAS(loadSafetensors(max), "is absurd");
}

TEST_F(CheckpointTest, MalformedJSON) {
  std::string garbage = writeSafetensors("g", "{not json at all", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(garbage), "'" + garbage + "'", "malformed JSON header");
  std::string binary = writeSafetensors("bin", std::string("\xff\xfe\x00\x01", 4), "");
  EXPECT_ERROR_HAS(loadSafetensors(binary), "malformed JSON header");
  std::string array = writeSafetensors("arr", "[1, 2, 3]", "");
  EXPECT_ERROR_HAS(loadSafetensors(array), "expected a JSON object");
  std::string deep = writeSafetensors("deep", std::string(100000, '[') + std::string(100000, ']'), "");
  EXPECT_ERROR_HAS(loadSafetensors(deep), "'" + deep + "'");
  std::string notObj = writeSafetensors("no", R"({"w": 5})", "");
  EXPECT_ERROR_HAS(loadSafetensors(notObj), "tensor 'w'", "not a JSON object");
  std::string noDtype = writeSafetensors("nd", R"({"w": {"shape":[1],"data_offsets":[0,4]}})", "abcd");
  EXPECT_ERROR_HAS(loadSafetensors(noDtype), "tensor 'w'", "\"dtype\"");
  std::string noShape = writeSafetensors("ns", R"({"w": {"dtype":"F32","data_offsets":[0,4]}})", "abcd");
  EXPECT_ERROR_HAS(loadSafetensors(noShape), "tensor 'w'", "\"shape\"");
  std::string badMeta = writeSafetensors("bm", R"({"__metadata__": {"epoch": 3}})", "");
  EXPECT_ERROR_HAS(loadSafetensors(badMeta), "metadata 'epoch' is not a string");
}

TEST_F(CheckpointTest, UnsupportedAndUnknownDTypes) {
  std::string f64 = writeSafetensors("f64", R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(f64), "'" + f64 + "'", "tensor 'w'", "dtype F64 is not supported");
  std::string f16 = writeSafetensors("f16", R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(f16), "tensor 'h'", "dtype F16 is not supported");
  std::string i32 = writeSafetensors("i32", R"({"i":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(i32), "dtype I32 is not supported");
  std::string odd = writeSafetensors("odd", R"({"w":{"dtype":"Q3","shape":[1],"data_offsets":[0,8]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(odd), "tensor 'w'", "unknown dtype \"Q3\"");
}

TEST_F(CheckpointTest, BadShapes) {
  std::string overflow = writeSafetensors(
      "ov", R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(overflow), "'" + overflow + "'", "tensor 'w'", "too large");
  std::string bytesOverflow = writeSafetensors(
      "ov2", R"({"w":{"dtype":"I64","shape":[4611686018427387904],"data_offsets":[0,8]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(bytesOverflow), "tensor 'w'", "too large");
  std::string negative =
      writeSafetensors("neg", R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(negative), "tensor 'w'", "not a non-negative integer");
  std::string fractional =
      writeSafetensors("fr", R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(fractional), "tensor 'w'", "not a non-negative integer");
}

TEST_F(CheckpointTest, BadOffsets) {
  std::string outOfRange =
      writeSafetensors("oor", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(outOfRange), "'" + outOfRange + "'", "tensor 'w'",
                   "data_offsets [8, 16] are out of bounds: the data section has 8 bytes");
  std::string huge = writeSafetensors(
      "huge", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]}})",
      kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(huge), "tensor 'w'", "out of bounds");
  std::string mismatch =
      writeSafetensors("mm", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(mismatch), "tensor 'w'", "hold 8 bytes but F32 [3] needs 12");
  std::string reversed =
      writeSafetensors("rev", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(reversed), "tensor 'w'", "reversed");
  std::string notPair = writeSafetensors("np", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(notPair), "tensor 'w'", "data_offsets");
  std::string overlap = writeSafetensors(
      "ol",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      std::string(16, '\0'));
  EXPECT_ERROR_HAS(loadSafetensors(overlap), "'" + overlap + "'", "tensor 'b'", "overlap tensor 'a'");
  // An empty tensor between two overlapping ones must not hide the overlap.
  std::string hidden = writeSafetensors(
      "hid",
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
      R"("c":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      std::string(16, '\0'));
  EXPECT_ERROR_HAS(loadSafetensors(hidden), "tensor 'c'", "overlap tensor 'a'");
  std::string same = writeSafetensors(
      "same",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
      kEightBytes);
  EXPECT_ERROR_HAS(loadSafetensors(same), "overlap");
}

TEST_F(CheckpointTest, WriteFileAtomicReplacesContent) {
  std::string p = path("out.txt");
  writeFileAtomic(p, "first version, quite long");
  EXPECT_EQ(slurp(p), "first version, quite long");
  writeFileAtomic(p, "second");
  EXPECT_EQ(slurp(p), "second");
  EXPECT_EQ(readFile(p), "second");
  writeFileAtomic(p, "");
  EXPECT_EQ(readFile(p), "");
  EXPECT_FALSE(hasTempFiles(dir));

  std::string binary("\0\x01\xff\n\r", 5);
  writeFileAtomic(p, binary);
  EXPECT_EQ(readFile(p), binary);
}

TEST_F(CheckpointTest, WriteFileAtomicFailureKeepsOldFile) {
  std::string p = path("keep.txt");
  writeFileAtomic(p, "old content");
  // Renaming a file over a non-empty directory fails after the temporary
  // file was written, which exercises the cleanup path even as root.
  std::string target = path("adir");
  fs::create_directory(target);
  write("adir/inside", "x");
  EXPECT_ERROR_HAS(writeFileAtomic(target, "new"), "cannot write '" + target + "': ");
  EXPECT_FALSE(hasTempFiles(dir));
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(readFile(p), "old content");

  EXPECT_ERROR_HAS(writeFileAtomic(path("no/such/dir/f"), "x"), "cannot write '", "No such file");
  EXPECT_ERROR_HAS(readFile(path("absent")), "cannot open '", "absent': No such file or directory");
  EXPECT_ERROR_HAS(readFile(dir), "'" + dir + "'", "Is a directory");
}
