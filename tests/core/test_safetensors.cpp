// safetensors: round trips, the exact byte layout the format specifies, and hostile files.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "common/test_util.h"
#include "cyclone/core/file_util.h"
#include "cyclone/core/safetensors.h"

namespace cyclone {
namespace {

namespace fs = std::filesystem;

std::string temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("cyclone_st_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}

std::string with_header(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  return out + json + data;
}

void expect_error(const std::string& bytes, const std::string& fragment) {
  try {
    parse_safetensors(bytes, "w.safetensors");
    ADD_FAILURE() << "no error, expected one mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("w.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTripsEveryDtypeShapeAndMetadata) {
  NamedTensors in = {
      {"conv.weight", testing::random_tensor({4, 3, 3, 3}, 1)},
      {"fc.bias", testing::random_tensor({10}, 2, DType::kFloat64)},
      {"labels", Tensor::from_vector<int32_t>({1, -2, 3}, {3}, Device::cpu())},
      {"pixels", Tensor::from_vector<uint8_t>({0, 255}, {2}, Device::cpu())},
      {"scalar", Tensor::from_vector<float>({7}, {}, Device::cpu())},
      {"empty", Tensor::zeros({0, 5}, DType::kFloat32, Device::cpu())},
  };
  const std::string path = temp_dir() + "/w.safetensors";
  save_safetensors(path, in, {{"format", "pt"}, {"step", "12"}});
  SafetensorsFile out = load_safetensors(path);
  ASSERT_EQ(out.tensors.size(), in.size());
  EXPECT_EQ(out.metadata.at("format"), "pt");
  EXPECT_EQ(out.metadata.at("step"), "12");
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out.tensors[i].first, in[i].first);
    const Tensor& a = out.tensors[i].second;
    const Tensor& b = in[i].second;
    EXPECT_EQ(a.shape(), b.shape()) << in[i].first;
    EXPECT_EQ(a.dtype(), b.dtype()) << in[i].first;
    EXPECT_TRUE(testing::all_close(a, b, 0, 0)) << in[i].first;
  }
}

TEST(Safetensors, BytesFollowTheSpecification) {
  Tensor t = Tensor::from_vector<float>({1.0f, 2.0f}, {2}, Device::cpu());
  const std::string bytes = serialize_safetensors({{"a", t}});
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u) << "header padded to 8 bytes";
  EXPECT_EQ(bytes.size(), 8 + n + 8);
  const std::string header = bytes.substr(8, n);
  EXPECT_NE(header.find(R"("a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]})"),
            std::string::npos)
      << header;
  float v[2];
  std::memcpy(v, bytes.data() + 8 + n, 8);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 2.0f);
}

TEST(Safetensors, RejectsHostileFilesWithOneClearError) {
  const std::string good_json = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data(8, '\0');
  EXPECT_NO_THROW(parse_safetensors(with_header(good_json, data), "w.safetensors"));
  expect_error("abc", "shorter than");
  // A header length that claims far more than the file: must not allocate or read past the end.
  std::string huge(16, '\0');
  huge[7] = 0x7f;
  expect_error(huge, "header length");
  expect_error(with_header("{not json", data), "not valid JSON");
  expect_error(with_header(std::string(200000, '['), ""), "w.safetensors");
  expect_error(with_header(R"({"a":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", data),
               "F99");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data),
               "[3]");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", data),
               "outside");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data),
               "bad dimension");
  // Billions of elements in the shape, a tiny file: rejected before any allocation.
  expect_error(
      with_header(R"({"a":{"dtype":"F32","shape":[4000000000,4000000000],"data_offsets":[0,8]}})",
                  data),
      "w.safetensors");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                               "b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                           data),
               "overlapping");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data),
               "trailing");
  expect_error(with_header(R"({"a":{"shape":[1]}})", data), "lacks");
}

TEST(Safetensors, ReadsI64AsRangeCheckedInt32) {
  // PyTorch writes BatchNorm's num_batches_tracked as I64.
  std::string data(16, '\0');
  const int64_t vals[2] = {-5, 123456789};
  std::memcpy(data.data(), vals, 16);
  auto f = parse_safetensors(
      with_header(R"({"n":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data),
      "w.safetensors");
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(f.tensors[0].second.dtype(), DType::kInt32);
  EXPECT_EQ(f.tensors[0].second.to_vector<int32_t>(), (std::vector<int32_t>{-5, 123456789}));
  const int64_t big[2] = {1, int64_t(1) << 40};
  std::memcpy(data.data(), big, 16);
  expect_error(with_header(R"({"n":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data),
               "element 1");
}

// The header alone (what a resume checks before the data load): the entries in data order, and
// every check of a full load that the file's size decides, without reading the data.
TEST(Safetensors, HeaderAloneListsTensorsAndFindsATruncatedFile) {
  const std::string path = temp_dir() + "/w.safetensors";
  save_safetensors(path, {{"b", Tensor::zeros(Shape({2, 3}), DType::kBFloat16)},
                          {"a", Tensor::zeros(Shape({5}))}});
  const auto entries = read_safetensors_header(path);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "b");
  EXPECT_EQ(entries[0].dtype, DType::kBFloat16);
  EXPECT_EQ(entries[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(entries[1].name, "a");
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 1);
  testing::expect_error([&] { read_safetensors_header(path); }, {path, "'a'", "outside"});
  std::filesystem::resize_file(path, 5);
  testing::expect_error([&] { read_safetensors_header(path); }, {path, "shorter than"});
  std::filesystem::resize_file(path, 8 + 3);  // the header's length, then 3 of its bytes
  testing::expect_error([&] { read_safetensors_header(path); }, {path, "header length"});
}

TEST(Safetensors, MissingFileAndDirectoryAreClearErrors) {
  const std::string dir = temp_dir();
  try {
    load_safetensors(dir + "/nope.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.safetensors"), std::string::npos);
  }
  try {
    load_safetensors(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
  }
}

TEST(FileUtil, AtomicWriteReplacesWholeAndCleansUpOnFailure) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/state.json";
  write_file_atomic(path, "old");
  write_file_atomic(path, "new contents");
  EXPECT_EQ(read_file(path), "new contents");
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos)
        << "temporary file left behind: " << e.path();
  try {
    write_file_atomic(dir + "/no/such/dir/x", "data");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/x"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_file(path, 3), Error);  // larger than allowed
}

TEST(Tensor, SetDataKeepsIdentityForEveryHandle) {
  Tensor p = Tensor::from_vector<float>({1, 2}, {2}, Device::cpu());
  p.set_requires_grad();
  Tensor alias = p;
  p.set_data(Tensor::from_vector<float>({5, 6, 7}, {3}, Device::cpu()));
  EXPECT_EQ(alias.shape(), Shape({3}));
  EXPECT_EQ(alias.to_vector<float>(), (std::vector<float>{5, 6, 7}));
  EXPECT_TRUE(alias.requires_grad());
}

}  // namespace
}  // namespace cyclone
