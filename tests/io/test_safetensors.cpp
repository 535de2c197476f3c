// test_safetensors.cpp — safetensors round trips, a hand-built golden file, every rejection rule of the
// reader, and the atomic-write guarantee (an uncommitted writer never disturbs the existing file).
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "util/error.h"

namespace bytelm {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "bytelm_safetensors_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  std::string write_raw(const std::string& name, const std::string& bytes) const {
    std::string p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  // A file with a correct length prefix around `header` followed by `data`.
  std::string write_with_header(const std::string& name, const std::string& header, const std::string& data) const {
    std::string bytes(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
    return write_raw(name, bytes + header + data);
  }

  // Expects the reader to reject the file with a one-line message naming the file and containing `word`.
  void expect_rejected(const std::string& file, const std::string& word) const {
    try {
      SafetensorsReader reader(file);
      ADD_FAILURE() << file << ": accepted, expected an error containing '" << word << "'";
    } catch (const Error& e) {
      std::string message = e.what();
      EXPECT_NE(message.find(word), std::string::npos) << "message: " << message;
      EXPECT_NE(message.find(file), std::string::npos) << "message does not name the file: " << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << "message is not one line: " << message;
    }
  }

  std::string dir_;
};

std::string bytes_of(const uint8_t* data, size_t n) { return std::string(reinterpret_cast<const char*>(data), n); }

TEST_F(SafetensorsTest, DTypeTable) {
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::BOOL), 1u);
  EXPECT_STREQ(dtype_name(DType::BF16), "BF16");
  EXPECT_STREQ(dtype_name(DType::I64), "I64");
  DType dtype;
  ASSERT_TRUE(dtype_from_name("F16", &dtype));
  EXPECT_EQ(dtype, DType::F16);
  EXPECT_FALSE(dtype_from_name("f32", &dtype));
}

TEST_F(SafetensorsTest, RoundTripManyDTypesAndShapes) {
  std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 1e-8f, 7.0f};
  std::vector<uint16_t> bf16 = {0x3f80, 0xc000, 0x7f80, 0x0001};
  std::vector<uint16_t> f16 = {0x3c00, 0xbc00};
  std::vector<double> f64 = {3.141592653589793};
  int64_t scalar = -1234567890123LL;
  std::vector<int32_t> i32 = {1, -2, 3};
  std::vector<int16_t> i16 = {-7, 8};
  std::vector<int8_t> i8 = {-1, 2, -3, 4};
  std::vector<uint8_t> u8 = {0, 255, 128};
  std::vector<uint8_t> boolean = {1, 0, 1};
  std::vector<TensorToWrite> tensors = {
      {"f32", DType::F32, {2, 3}, f32.data()}, {"bf16", DType::BF16, {4}, bf16.data()},
      {"f16", DType::F16, {1, 2}, f16.data()}, {"f64", DType::F64, {1}, f64.data()},
      {"scalar", DType::I64, {}, &scalar},  // 0-d: shape [] and one element
      {"empty", DType::F32, {0, 5}, nullptr},  {"i32", DType::I32, {3}, i32.data()},
      {"i16", DType::I16, {2}, i16.data()},    {"layers.0.i8", DType::I8, {2, 2}, i8.data()},
      {"u8", DType::U8, {3}, u8.data()},       {"bool", DType::BOOL, {3}, boolean.data()},
  };
  std::string file = path("model.safetensors");
  write_safetensors(file, tensors);

  SafetensorsReader reader(file);
  EXPECT_EQ(reader.path(), file);
  EXPECT_TRUE(reader.metadata().empty());
  ASSERT_EQ(reader.tensors().size(), tensors.size());
  uint64_t expected_begin = 0;
  for (const TensorToWrite& t : tensors) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(reader.has(t.name));
    const TensorInfo& info = reader.info(t.name);
    EXPECT_EQ(info.dtype, t.dtype);
    EXPECT_EQ(info.shape, t.shape);
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    EXPECT_EQ(info.numel(), numel);
    size_t n = static_cast<size_t>(numel) * dtype_size(t.dtype);
    EXPECT_EQ(info.begin, expected_begin);  // contiguous, in the given order
    EXPECT_EQ(info.end - info.begin, n);
    expected_begin = info.end;
    if (n > 0) {
      EXPECT_EQ(bytes_of(reader.data(t.name), n), bytes_of(static_cast<const uint8_t*>(t.data), n));
    }
  }
  EXPECT_EQ(reader.info("scalar").numel(), 1);
  EXPECT_EQ(reader.info("empty").numel(), 0);
  EXPECT_FALSE(reader.has("missing"));

  // The header is padded so the data region starts 8-byte aligned in the file.
  std::string raw = read_file(file);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(raw[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(raw.size(), 8 + n + expected_begin);

  // Moving the reader keeps the mapping valid.
  SafetensorsReader moved(std::move(reader));
  EXPECT_EQ(bytes_of(moved.data("u8"), 3), bytes_of(u8.data(), 3));
}

TEST_F(SafetensorsTest, MetadataRoundTrip) {
  std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"config", R"({"width": 256, "name": "tiny"})"}, {"note", "quotes \" and\nnewline"}};
  float x = 2.0f;
  std::string file = path("meta.safetensors");
  write_safetensors(file, {{"x", DType::F32, {1}, &x}}, metadata);
  SafetensorsReader reader(file);
  EXPECT_EQ(reader.metadata(), metadata);
  EXPECT_EQ(reader.tensors().size(), 1u);
}

TEST_F(SafetensorsTest, NoTensors) {
  std::string file = path("empty.safetensors");
  write_safetensors(file, {});
  SafetensorsReader reader(file);
  EXPECT_TRUE(reader.tensors().empty());
}

TEST_F(SafetensorsTest, GoldenBytes) {
  // One F32 tensor x = [1, -2], built by hand: u64 LE header length, compact JSON padded with spaces to a
  // multiple of 8 (54 -> 56 bytes), then little-endian floats.
  const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header.size(), 54u);
  std::string expected;
  expected += std::string("\x38\0\0\0\0\0\0\0", 8);  // 56
  expected += header + "  ";
  expected += std::string("\x00\x00\x80\x3f", 4);  // 1.0f
  expected += std::string("\x00\x00\x00\xc0", 4);  // -2.0f
  ASSERT_EQ(expected.size(), 72u);

  float x[2] = {1.0f, -2.0f};
  std::string file = path("golden.safetensors");
  write_safetensors(file, {{"x", DType::F32, {2}, x}});
  EXPECT_EQ(read_file(file), expected);

  // The same tensor with metadata: "__metadata__" comes first (85 -> 88 bytes).
  const std::string header_meta =
      R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header_meta.size(), 85u);
  std::string expected_meta = std::string("\x58\0\0\0\0\0\0\0", 8) + header_meta + "   " + expected.substr(64);
  write_safetensors(file, {{"x", DType::F32, {2}, x}}, {{"format", "pt"}});
  EXPECT_EQ(read_file(file), expected_meta);

  // And the reader accepts the hand-built bytes (as a Python writer would produce them).
  SafetensorsReader reader(write_raw("hand.safetensors", expected));
  float back[2];
  std::memcpy(back, reader.data("x"), sizeof back);
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], -2.0f);
}

TEST_F(SafetensorsTest, AcceptsTensorsInAnyOffsetOrder) {
  // Offsets need not follow name order; they only have to tile the data region.
  std::string file = write_with_header(
      "order.safetensors",
      R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[3,5]},"b":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
      R"("z":{"dtype":"F32","shape":[0],"data_offsets":[5,5]}})",
      "BBBAA");
  SafetensorsReader reader(file);
  EXPECT_EQ(bytes_of(reader.data("a"), 2), "AA");
  EXPECT_EQ(bytes_of(reader.data("b"), 3), "BBB");
}

TEST_F(SafetensorsTest, RejectsBadFiles) {
  const std::string ok_entry = R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]})";

  expect_rejected(write_raw("empty.st", ""), "too short");
  expect_rejected(write_raw("short.st", "abc"), "too short");
  expect_rejected(write_raw("huge_n.st", std::string("\xff\xff\xff\xff\xff\xff\xff\xff{}", 10)), "exceeds");
  expect_rejected(write_raw("long_n.st", std::string("\x40\0\0\0\0\0\0\0{}", 10)), "exceeds");
  expect_rejected(write_with_header("badjson.st", "{\"a\": [1, 2", ""), "header: invalid JSON");
  expect_rejected(write_with_header("badutf8.st", "{\"\xff\":1}", ""), "header: invalid JSON");
  expect_rejected(write_with_header("zero_n.st", "", ""), "header: invalid JSON");
  expect_rejected(write_with_header("array.st", "[1, 2]", ""), "not an object");
  expect_rejected(write_with_header("entry.st", R"({"a": 5})", ""), "not an object");
  expect_rejected(write_with_header("nodtype.st", R"({"a":{"shape":[1],"data_offsets":[0,1]}})", "x"), "missing dtype");
  expect_rejected(write_with_header("noshape.st", R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", "x"),
                  "missing shape");
  expect_rejected(write_with_header("nooffsets.st", R"({"a":{"dtype":"U8","shape":[1]}})", "x"),
                  "missing data_offsets");
  expect_rejected(write_with_header("dtype.st", R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", "x"),
                  "unknown dtype");
  expect_rejected(write_with_header("dtypenum.st", R"({"a":{"dtype":3,"shape":[1],"data_offsets":[0,1]}})", "x"),
                  "dtype");
  expect_rejected(write_with_header("negdim.st", R"({"a":{"dtype":"U8","shape":[-1, 2],"data_offsets":[0,0]}})", ""),
                  "negative");
  expect_rejected(write_with_header("floatdim.st", R"({"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", "x"),
                  "non-integer");
  expect_rejected(write_with_header("shapeobj.st", R"({"a":{"dtype":"U8","shape":{"n":1},"data_offsets":[0,1]}})", "x"),
                  "shape");
  for (const char* offsets : {"[0]", "[0,1,1]", "[0,\"1\"]", "[-1,1]", "[0,1.0]", "7"}) {
    SCOPED_TRACE(offsets);
    expect_rejected(
        write_with_header("offsets.st",
                          std::string(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":)") + offsets + "}}", "x"),
        "data_offsets");
  }
  expect_rejected(write_with_header("reversed.st", R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", "xxxx"),
                  "begin");
  expect_rejected(write_with_header("beyond.st", R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "xx"),
                  "beyond");
  expect_rejected(write_with_header("size.st", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "xxxx"),
                  "size mismatch");
  // numel = 2^62 * 4 overflows 64 bits; 2^61 F64 elements overflow only in bytes.
  expect_rejected(
      write_with_header("numel_overflow.st",
                        R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}})", "xxxx"),
      "overflow");
  expect_rejected(write_with_header("bytes_overflow.st",
                                    R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", ""),
                  "overflow");
  expect_rejected(
      write_with_header("bigdim.st", R"({"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})", ""),
      "too large");
  expect_rejected(write_with_header("overlap.st",
                                    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                    std::string(12, 'x')),
                  "overlaps");
  expect_rejected(write_with_header("gap.st",
                                    R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                    std::string(12, 'x')),
                  "gap");
  expect_rejected(write_with_header("trailing.st", "{" + ok_entry + "}", std::string(8, 'x')), "gap");
  expect_rejected(
      write_with_header("leading.st", R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", std::string(8, 'x')),
      "gap");
  expect_rejected(write_with_header("dup.st", "{" + ok_entry + "," + ok_entry + "}", "xxxx"), "duplicate");
  expect_rejected(write_with_header("dupfield.st",
                                    R"({"a":{"dtype":"U8","dtype":"F32","shape":[4],"data_offsets":[0,4]}})", "xxxx"),
                  "duplicate");
  expect_rejected(write_with_header("metaval.st", R"({"__metadata__":{"k":1},)" + ok_entry + "}", "xxxx"),
                  "not a string");
  expect_rejected(write_with_header("metaobj.st", R"({"__metadata__":"x",)" + ok_entry + "}", "xxxx"), "__metadata__");
  // The control file: the same pieces assembled correctly are accepted.
  EXPECT_NO_THROW(SafetensorsReader(write_with_header("ok.st", "{" + ok_entry + "}", "xxxx")));
}

TEST_F(SafetensorsTest, CorruptedBytesNeverCrash) {
  // Deterministic mutations of a valid file (byte flips in the length and header, truncations): the reader
  // must either throw Error or accept a file whose every tensor lies inside it. Run under ASan to catch
  // out-of-bounds reads.
  float x[3] = {1, 2, 3};
  int64_t step = 7;
  std::string file = path("valid.safetensors");
  write_safetensors(file, {{"x", DType::F32, {3}, x}, {"step", DType::I64, {}, &step}}, {{"k", "v"}});
  const std::string valid = read_file(file);
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string bytes = valid;
    if (trial % 4 == 3) {
      bytes.resize(rng() % bytes.size());
    } else {
      for (int flips = 1 + trial % 3; flips > 0; --flips) {
        size_t at = rng() % (bytes.size() - 20);  // the length prefix and the header
        bytes[at] = static_cast<char>(rng());
      }
    }
    std::string mutated = write_raw("mutated.safetensors", bytes);
    try {
      SafetensorsReader reader(mutated);
      ++accepted;
      for (const auto& [name, info] : reader.tensors()) {
        ASSERT_LE(info.end, bytes.size());
        ASSERT_EQ(info.end - info.begin, static_cast<uint64_t>(info.numel()) * dtype_size(info.dtype));
      }
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
  EXPECT_LT(accepted, 400);
}

TEST_F(SafetensorsTest, RejectsMissingFileAndDirectory) {
  expect_rejected(path("does_not_exist.safetensors"), "cannot open");
  expect_rejected(dir_, "not a regular file");
  EXPECT_THROW(read_file(path("nope")), Error);
  EXPECT_THROW(read_file(dir_), Error);
}

TEST_F(SafetensorsTest, MissingTensorErrorNamesIt) {
  float x = 1.0f;
  std::string file = path("one.safetensors");
  write_safetensors(file, {{"x", DType::F32, {}, &x}});
  SafetensorsReader reader(file);
  try {
    reader.info("y");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), file + ": missing tensor 'y'");
  }
  EXPECT_THROW(reader.data("y"), Error);
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  float x[2] = {1, 2};
  std::string file = path("bad.safetensors");
  EXPECT_THROW(write_safetensors(file, {{"x", DType::F32, {2}, x}, {"x", DType::F32, {2}, x}}), Error);
  EXPECT_THROW(write_safetensors(file, {{"__metadata__", DType::F32, {2}, x}}), Error);
  EXPECT_THROW(write_safetensors(file, {{"x", DType::F32, {-2}, x}}), Error);
  EXPECT_THROW(write_safetensors(file, {{"x", DType::F32, {2}, nullptr}}), Error);
  EXPECT_THROW(write_safetensors(file, {{"bad\xff", DType::F32, {2}, x}}), Error);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(fs::is_empty(dir_)) << "a failed write left a temp file behind";
  EXPECT_THROW(write_safetensors(path("no/such/dir/x.safetensors"), {{"x", DType::F32, {2}, x}}), Error);
}

TEST_F(SafetensorsTest, AtomicWriteKeepsOldFileUntilCommit) {
  std::string file = path("state.bin");
  write_file_atomic(file, "old contents");
  EXPECT_EQ(read_file(file), "old contents");
  {
    AtomicFileWriter writer(file);
    writer.write("new", 3);
    EXPECT_EQ(read_file(file), "old contents");  // nothing visible before commit
  }                                              // destroyed without commit
  EXPECT_EQ(read_file(file), "old contents");
  size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "the temp file was not removed";

  {
    AtomicFileWriter writer(file);
    writer.write("new ", 4);
    writer.write("contents", 8);
    writer.commit();
    EXPECT_THROW(writer.write("x", 1), Error);
  }
  EXPECT_EQ(read_file(file), "new contents");

  // write_safetensors replaces an existing file as a whole.
  float x = 1.0f;
  write_safetensors(file, {{"x", DType::F32, {}, &x}});
  EXPECT_TRUE(SafetensorsReader(file).has("x"));
}

TEST_F(SafetensorsTest, FailedWriteLeavesOldFileAndNoTemp) {
  // A file-size limit makes write() come up short and then fail with EFBIG, the same short-write path a
  // full disk (ENOSPC) takes. SIGXFSZ is ignored so the limit reports an error instead of killing the test.
  std::string file = path("kept.bin");
  write_file_atomic(file, "kept");
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit low = old_limit;
  low.rlim_cur = 4096;
  if (::setrlimit(RLIMIT_FSIZE, &low) != 0) GTEST_SKIP() << "cannot lower RLIMIT_FSIZE";
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  std::string big(10000, 'x');
  bool threw = false;
  try {
    write_file_atomic(file, big);
  } catch (const Error& e) {
    threw = true;
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_EQ(read_file(file), "kept");
  size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "the temp file was not removed after a failed write";
}

TEST_F(SafetensorsTest, PythonParsesHeader) {
  // Optional cross-check with an independent parser: Python's json + struct read the header and data.
  if (std::system("python3 -c 'import json, struct' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not available";
  float x[3] = {0.5f, -1.0f, 8.0f};
  int64_t step = 42;
  std::string file = path("py.safetensors");
  write_safetensors(file, {{"w", DType::F32, {3}, x}, {"step", DType::I64, {}, &step}}, {{"k", "v"}});
  std::string script = path("check.py");
  std::ofstream(script) << "import json, struct, sys\n"
                           "b = open(sys.argv[1], 'rb').read()\n"
                           "n = struct.unpack('<Q', b[:8])[0]\n"
                           "h = json.loads(b[8:8 + n])\n"
                           "d = b[8 + n:]\n"
                           "assert n % 8 == 0\n"
                           "assert h['__metadata__'] == {'k': 'v'}\n"
                           "w = h['w']; s = h['step']\n"
                           "assert w['dtype'] == 'F32' and w['shape'] == [3] and w['data_offsets'] == [0, 12]\n"
                           "assert s['dtype'] == 'I64' and s['shape'] == [] and s['data_offsets'] == [12, 20]\n"
                           "assert struct.unpack('<3f', d[0:12]) == (0.5, -1.0, 8.0)\n"
                           "assert struct.unpack('<q', d[12:20]) == (42,)\n"
                           "assert len(d) == 20\n";
  EXPECT_EQ(std::system(("python3 '" + script + "' '" + file + "'").c_str()), 0);
}

}  // namespace
}  // namespace bytelm
