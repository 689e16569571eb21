// An independent reader of TensorBoard event files for the tests, written from the specs:
// TFRecord framing (uint64 length, masked CRC-32C of it, data, masked CRC-32C of the data) and
// the protobuf wire format of tensorflow/core/util/event.proto and summary.proto.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cyclone/core/file_util.h"
#include "cyclone/train/tensorboard.h"

namespace cyclone::train::event_reader {

inline uint64_t le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(s.at(at + i))) << (8 * i);
  return v;
}

// TFRecord: uint64 length, masked crc of those 8 bytes, data, masked crc of data.
inline std::vector<std::string> read_records(const std::string& file) {
  std::vector<std::string> records;
  size_t at = 0;
  while (at < file.size()) {
    EXPECT_GE(file.size() - at, 16u) << "truncated record at " << at;
    if (file.size() - at < 16) break;
    const uint64_t len = le(file, at, 8);
    EXPECT_EQ(le(file, at + 8, 4), masked_crc32c(file.data() + at, 8)) << "length crc at " << at;
    const std::string data = file.substr(at + 12, len);
    EXPECT_EQ(data.size(), len);
    EXPECT_EQ(le(file, at + 12 + len, 4), masked_crc32c(data.data(), data.size()))
        << "data crc at " << at;
    records.push_back(data);
    at += 16 + len;
  }
  return records;
}

struct Field {
  int number = 0;
  int wire = 0;
  uint64_t scalar = 0;  // varint, fixed64 or fixed32
  std::string bytes;    // wire type 2
};

inline std::vector<Field> parse_message(const std::string& m) {
  std::vector<Field> fields;
  size_t at = 0;
  auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0; at < m.size(); shift += 7) {
      const uint8_t b = uint8_t(m[at++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    ADD_FAILURE() << "varint runs past the message";
    return v;
  };
  while (at < m.size()) {
    Field f;
    const uint64_t key = varint();
    f.number = int(key >> 3);
    f.wire = int(key & 7);
    if (f.wire == 0) {
      f.scalar = varint();
    } else if (f.wire == 1) {
      f.scalar = le(m, at, 8);
      at += 8;
    } else if (f.wire == 5) {
      f.scalar = le(m, at, 4);
      at += 4;
    } else if (f.wire == 2) {
      const uint64_t n = varint();
      f.bytes = m.substr(at, n);
      at += n;
    } else {
      ADD_FAILURE() << "unexpected wire type " << f.wire;
      break;
    }
    fields.push_back(f);
  }
  EXPECT_EQ(at, m.size());
  return fields;
}

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> scalars;
  std::vector<std::string> texts;
  bool session_start = false;  // session_log{status: START}: a restart (purge_from)
};

inline Event parse_event(const std::string& record) {
  Event e;
  for (const Field& f : parse_message(record)) {
    if (f.number == 1 && f.wire == 1) std::memcpy(&e.wall_time, &f.scalar, 8);
    if (f.number == 2 && f.wire == 0) e.step = int64_t(f.scalar);
    if (f.number == 3 && f.wire == 2) e.file_version = f.bytes;
    if (f.number == 7 && f.wire == 2)
      for (const Field& sl : parse_message(f.bytes))
        e.session_start |= sl.number == 1 && sl.wire == 0 && sl.scalar == 1;
    if (f.number != 5) continue;
    for (const Field& v : parse_message(f.bytes)) {
      EXPECT_EQ(v.number, 1);
      std::string tag;
      for (const Field& vf : parse_message(v.bytes)) {
        if (vf.number == 1) tag = vf.bytes;
        if (vf.number == 2) {
          EXPECT_EQ(vf.wire, 5);
          const auto bits = uint32_t(vf.scalar);
          float x;
          std::memcpy(&x, &bits, 4);
          e.scalars.emplace_back(tag, x);
        }
        if (vf.number == 8)
          for (const Field& tf : parse_message(vf.bytes))
            if (tf.number == 8) e.texts.push_back(tf.bytes);
      }
    }
  }
  return e;
}

inline std::vector<Event> read_events(const std::string& path) {
  std::vector<Event> events;
  for (const auto& r : read_records(read_file(path))) events.push_back(parse_event(r));
  return events;
}

}  // namespace cyclone::train::event_reader
