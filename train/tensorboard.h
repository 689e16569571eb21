// TensorBoard event files written without TensorFlow or protobuf: TFRecord framing around
// hand-encoded `tensorflow.Event` messages, readable by `tensorboard --logdir` and by its Python
// EventAccumulator (tests/train_interop checks that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cyclone::train {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum TFRecord uses.
uint32_t crc32c(const void* data, size_t size);
// TFRecord stores checksums masked so that a CRC of data that itself holds CRCs stays strong.
uint32_t masked_crc32c(const void* data, size_t size);

class TensorBoardWriter {
 public:
  // Creates `log_dir` (with its parents) and a new file
  // events.out.tfevents.<unix seconds>.<hostname>.<pid>.<counter> in it, whose first record says
  // the file version. Errors name the path and the system's reason.
  explicit TensorBoardWriter(const std::string& log_dir);
  ~TensorBoardWriter();  // flushes; a failure is reported on stderr, never thrown
  TensorBoardWriter(TensorBoardWriter&&) noexcept;
  TensorBoardWriter& operator=(TensorBoardWriter&&) noexcept;

  // One scalar point. `value` is stored as float32 (TensorBoard's simple_value); NaN and inf are
  // allowed. wall_time is seconds since the epoch; a negative value means now.
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = -1);
  // Several scalars of one step in a single event.
  void add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& tag_values,
                   double wall_time = -1);
  // A string shown by TensorBoard's Text tab (markdown).
  void add_text(const std::string& tag, const std::string& text, int64_t step,
                double wall_time = -1);

  // Marks a restart (PyTorch's SummaryWriter(purge_step=)): TensorBoard drops the points of the
  // earlier event files in this folder at steps >= `step`, so a run resumed from an older
  // checkpoint does not draw its repeated steps twice. Writes an Event{step, session_log: START}.
  void purge_from(int64_t step, double wall_time = -1);

  // Writes buffered events and fsyncs the file, so that a crash after it loses nothing.
  void flush();

  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cyclone::train
