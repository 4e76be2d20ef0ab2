// The .npy and .npz writers read back through the readers (nnc predict
// -o out.npz writes these; NumPy reading them is checked by the ONNX tests).
#include "runtime/Npy.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace nnc::runtime;

TEST(NpyWrite, F32AndI64ArraysOfEveryRankReadBack) {
  Tensor a(DType::F32, {2, 3, 4});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.f32()[i] = float(i) * 0.5f - 3.0f;
  Tensor b(DType::I64, {5});
  for (int64_t i = 0; i < 5; ++i)
    b.i64()[i] = (i - 2) * 1000000007LL;
  Tensor c(DType::F32, {});
  c.f32()[0] = 42.0f;
  for (const Tensor *t : {&a, &b, &c}) {
    std::string bytes = encodeNpy(*t);
    size_t header = 10 + size_t(uint8_t(bytes[8])) + 256 * size_t(uint8_t(bytes[9]));
    EXPECT_EQ(header % 64, 0u) << "the data starts 64-aligned";
    Tensor r = parseNpy(bytes, t->dtype(), "'t.npy'");
    // (The reader takes a 0-d array as one example of one value.)
    ASSERT_EQ(r.shape(), t->rank() ? t->shape() : std::vector<int64_t>{1});
    EXPECT_EQ(std::memcmp(r.data(), t->data(), t->bytes()), 0);
  }
  EXPECT_NE(encodeNpy(b).find("'shape': (5,)"), std::string::npos) << "a 1-tuple has its comma";
  EXPECT_NE(encodeNpy(c).find("'shape': ()"), std::string::npos);
}

TEST(NpyWrite, NpzMembersReadBackByName) {
  Tensor a(DType::F32, {3, 2});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.f32()[i] = float(i);
  Tensor b(DType::I64, {3});
  b.i64()[0] = 7, b.i64()[1] = 8, b.i64()[2] = 9;
  std::string zip = encodeNpz({{"probs", encodeNpy(a)}, {"prediction", encodeNpy(b)}});
  auto members = parseNpz(zip, "'out.npz'");
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0].first, "probs");
  EXPECT_EQ(members[1].first, "prediction");
  Tensor r = parseNpy(members[1].second, DType::I64, "'prediction'");
  EXPECT_EQ(r.i64()[2], 9);
  EXPECT_EQ(members[0].second, encodeNpy(a));
}
