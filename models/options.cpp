#include "cyclone/models/options.h"

namespace cyclone {

void check_model_options(const char* model, const ModelOptions& o) {
  CYCLONE_CHECK(o.in_channels > 0 && o.height > 0 && o.width > 0, model,
                ": input must be positive, got ", o.in_channels, "x", o.height, "x", o.width,
                " (channels x height x width)");
  CYCLONE_CHECK(o.num_classes > 0, model, ": num_classes must be positive, got ", o.num_classes);
  CYCLONE_CHECK(o.dropout >= 0 && o.dropout < 1, model, ": dropout must be in [0, 1), got ",
                o.dropout);
}

BlockOptions block_options(const ModelOptions& o, Generator& gen) {
  BlockOptions b;
  b.activation = o.activation;
  b.initializer = o.initializer;
  b.device = o.device;
  b.gen = &gen;
  b.dropout_gen =
      o.dropout_generator ? o.dropout_generator : std::make_shared<Generator>(dropout_seed(o.seed));
  return b;
}

std::shared_ptr<Linear> make_linear(int64_t in, int64_t out, const ModelOptions& o,
                                    Generator& gen) {
  // Linear's own PyTorch-default draws are overwritten below; a scratch generator keeps them out
  // of the model's init stream.
  Generator scratch(0);
  auto fc = std::make_shared<Linear>(in, out, true, o.device, &scratch);
  init_tensor(o.initializer, fc->weight(), gen);
  fc->bias().zero_();
  return fc;
}

}  // namespace cyclone
