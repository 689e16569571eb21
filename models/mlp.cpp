#include "cyclone/models/mlp.h"

#include "cyclone/layers/conv_modules.h"

namespace cyclone {

std::shared_ptr<Sequential> make_mlp(const std::vector<int64_t>& hidden, const ModelOptions& o) {
  check_model_options("mlp", o);
  CYCLONE_CHECK(!hidden.empty(), "mlp: needs at least one hidden layer");
  CYCLONE_CHECK(o.filters.empty(),
                "mlp: its hidden sizes come from its name (mlp-512-256); num_filters_per_block is "
                "not a knob of this model");
  for (int64_t h : hidden)
    CYCLONE_CHECK(h > 0 && h <= (1 << 16), "mlp: hidden size ", h, " must be in [1, 65536]");
  Generator gen(o.seed);
  const BlockOptions b = block_options(o, gen);
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Flatten>());
  int64_t in = static_cast<int64_t>(o.in_channels) * o.height * o.width;
  for (int64_t h : hidden) {
    net->add(make_linear(in, h, o, gen));
    net->add(std::make_shared<Activation>(o.activation));
    if (o.dropout > 0) net->add(std::make_shared<Dropout>(o.dropout, b.dropout_gen));
    in = h;
  }
  net->add(make_linear(in, o.num_classes, o, gen));
  return net;
}

}  // namespace cyclone
