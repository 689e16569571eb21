// Module: naming, state_dict round trips and their errors, freezing, modes, summary, and a small
// network that can overfit a fixed batch.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/test_util.h"
#include "cyclone/layers/modules.h"

namespace cyclone {
namespace {

// A two-level network: named children inside a Sequential inside a custom module.
class Net : public Module {
 public:
  explicit Net(int64_t hidden = 8, int64_t classes = 3) {
    Generator g(7);
    body_ =
        register_module("body", std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                                    std::make_shared<Linear>(4, hidden, true, Device::cpu(), &g),
                                    std::make_shared<Activation>("relu")}));
    head_ =
        register_module("head", std::make_shared<Linear>(hidden, classes, true, Device::cpu(), &g));
    scale_ = register_buffer("scale", Tensor::zeros({1}));
  }
  Tensor forward(const Tensor& x) override { return (*head_)((*body_)(x)); }
  std::string type_name() const override { return "Net"; }

 private:
  std::shared_ptr<Sequential> body_;
  std::shared_ptr<Linear> head_;
  Tensor scale_;
};

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + std::to_string(::getpid()) + ".safetensors"))
      .string();
}

TEST(Module, ParametersAreNamedByDottedPathInOrder) {
  Net net;
  std::vector<std::string> names;
  for (auto& [n, t] : net.named_parameters()) names.push_back(n);
  EXPECT_EQ(names,
            (std::vector<std::string>{"body.0.weight", "body.0.bias", "head.weight", "head.bias"}));
  EXPECT_EQ(net.named_buffers().at(0).first, "scale");
  EXPECT_EQ(net.num_parameters(), 4 * 8 + 8 + 8 * 3 + 3);
  for (auto& p : net.parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_EQ(net.parameters_with_prefix("head.").size(), 2u);
  EXPECT_EQ(net.submodule("body.0").type_name(), "Linear");
  EXPECT_THROW(net.submodule("body.7"), Error);
}

// A weight used twice (the same Linear added at two places, or registered under a second name)
// is one parameter under its first name, as in PyTorch's named_parameters: listed twice, an
// optimizer stepped it twice a step (found by a library bug hunt). state_dict keeps every name,
// as PyTorch's does, so files of either layout load.
TEST(Module, ASharedWeightIsOneParameter) {
  auto lin = std::make_shared<Linear>(2, 2);
  Sequential s;
  s.add(lin).add(std::make_shared<Activation>("relu")).add(lin);
  std::vector<std::string> names;
  for (auto& [n, t] : s.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias"}));
  EXPECT_EQ(s.num_parameters(), 6);
  names.clear();
  for (auto& [n, t] : s.state_dict()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(s.parameters_with_prefix("2.").size(), 2u);
  const std::string path = temp_path("tied");
  s.save(path);
  Sequential t;
  t.add(std::make_shared<Linear>(2, 2)).add(std::make_shared<Activation>("relu"));
  t.add(t.child("0"));
  EXPECT_TRUE(t.load(path).empty());
  std::filesystem::remove(path);
}

// A module inside itself made every walk (parameters, str(), train()) recurse until the stack
// overflowed (SIGSEGV): refused when it is added.
TEST(Module, AModuleCannotBeInsideItself) {
  auto a = std::make_shared<Sequential>();
  testing::expect_error([&] { a->add(a); }, {"is this module itself", "inside itself"});
  auto b = std::make_shared<Sequential>();
  a->add(b);
  testing::expect_error([&] { b->add(a); }, {"contains this module", "inside itself"});
  EXPECT_EQ(a->str().empty(), false);
}

TEST(Module, StateDictRoundTripsThroughSafetensors) {
  Net a, b;
  // Make b different, then load a's weights into it: outputs must agree exactly.
  for (auto& p : b.parameters()) p.zero_();
  const std::string path = temp_path("module_rt");
  a.save(path);
  EXPECT_TRUE(b.load(path).empty());
  Tensor x = testing::random_tensor({5, 4}, 3);
  EXPECT_TRUE(testing::all_close(a(x), b(x), 0, 0));
  // Handles taken before the load still see the loaded values (identity is kept).
  EXPECT_TRUE(testing::all_close(b.parameters()[0], a.parameters()[0], 0, 0));
}

// Float weights of another float dtype load converted, as PyTorch's load_state_dict does (a
// float64 file into a float32 model); an integer tensor's dtype must still match.
TEST(Module, FloatWeightsOfAnotherDtypeLoadConverted) {
  Net a, b;
  NamedTensors wide;
  for (const auto& [n, t] : a.state_dict()) wide.emplace_back(n, cast(t, DType::kFloat64));
  EXPECT_TRUE(b.load_state_dict(wide).empty());
  EXPECT_EQ(b.parameters()[0].dtype(), DType::kFloat32);
  EXPECT_TRUE(testing::all_close(b.parameters()[0], a.parameters()[0], 0, 0));
  NamedTensors ints = a.state_dict();
  ints[0].second = Tensor::zeros(ints[0].second.shape(), DType::kInt32);
  testing::expect_error([&] { b.load_state_dict(ints); }, {"dtype int32", "float32 in the model"});
}

TEST(Module, LoadErrorsNameTheTensorAndBothShapes) {
  Net small(8, 3), other_head(8, 5);
  const std::string path = temp_path("module_bad");
  other_head.save(path);
  try {
    small.load(path);
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind(path + ": ", 0), 0u) << m;  // the file first
    EXPECT_NE(m.find("head.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("[5, 8]"), std::string::npos) << m;
    EXPECT_NE(m.find("[3, 8]"), std::string::npos) << m;
  }
  // Non-strict: the new head is skipped and listed, the body loads.
  const auto skipped = small.load(path, /*strict=*/false);
  EXPECT_EQ(skipped, (std::vector<std::string>{"head.weight", "head.bias"}));
  EXPECT_TRUE(testing::all_close(small.parameters()[0], other_head.parameters()[0], 0, 0));
  // Missing and unexpected names under strict.
  NamedTensors partial = small.state_dict();
  partial.pop_back();
  EXPECT_THROW(small.load_state_dict(partial), Error);
  NamedTensors extra = small.state_dict();
  extra.emplace_back("ghost.weight", Tensor::zeros({1}));
  EXPECT_THROW(small.load_state_dict(extra), Error);
}

TEST(Module, FreezeStopsGradientsAndTrainEvalPropagate) {
  Net net;
  net.submodule("body").freeze();
  Tensor loss = cross_entropy(net(testing::random_tensor({6, 4}, 1)),
                              Tensor::from_vector<int32_t>({0, 1, 2, 0, 1, 2}, {6}, Device::cpu()));
  loss.backward();
  for (auto& [n, p] : net.named_parameters()) {
    if (n.rfind("body.", 0) == 0) {
      EXPECT_FALSE(p.requires_grad()) << n;
      EXPECT_FALSE(p.grad().defined()) << n;
    } else {
      EXPECT_TRUE(p.grad().defined()) << n;
    }
  }
  EXPECT_EQ(net.num_parameters(true), 8 * 3 + 3);
  net.submodule("body").unfreeze();
  EXPECT_EQ(net.num_parameters(true), net.num_parameters());
  net.eval();
  EXPECT_FALSE(net.submodule("body.0").is_training());
  net.train();
  EXPECT_TRUE(net.submodule("head").is_training());
}

TEST(Module, SummaryListsLayersShapesAndTotals) {
  Net net;
  const std::string s = summary(net, {2, 4});
  EXPECT_NE(s.find("body.0"), std::string::npos) << s;
  EXPECT_NE(s.find("[2, 8]"), std::string::npos) << s;
  EXPECT_NE(s.find("head"), std::string::npos) << s;
  EXPECT_NE(s.find("[2, 3]"), std::string::npos) << s;
  EXPECT_NE(s.find("total parameters: 67"), std::string::npos) << s;
  EXPECT_THROW(summary(net, {2, 5}), Error);  // wrong input width names the shapes
  EXPECT_NE(net.str().find("Linear(4, 8)"), std::string::npos) << net.str();
}

TEST(Module, ActivationByNameAndUnknownName) {
  Activation a("relu");
  EXPECT_EQ(a(Tensor::from_vector<float>({-1, 2}, {2}, Device::cpu())).to_vector<float>(),
            (std::vector<float>{0, 2}));
  try {
    Activation bad("relux");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("relux"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("leaky_relu"), std::string::npos) << e.what();
  }
}

TEST(Module, SmallNetworkOverfitsAFixedBatch) {
  Net net(32, 3);
  Tensor x = testing::random_tensor({12, 4}, 5);
  Tensor y =
      Tensor::from_vector<int32_t>({0, 1, 2, 2, 1, 0, 0, 1, 2, 1, 0, 2}, {12}, Device::cpu());
  double first = 0, last = 0;
  for (int step = 0; step < 1500; ++step) {
    Tensor loss = cross_entropy(net(x), y);
    if (step == 0) first = loss.item();
    last = loss.item();
    for (auto& p : net.parameters()) p.zero_grad();
    loss.backward();
    autograd::NoGradGuard g;
    for (auto& p : net.parameters()) p.copy_from(p - p.grad() * 0.2);
  }
  EXPECT_GT(first, 0.5);
  EXPECT_LT(last, 0.02) << "a 4-32-3 MLP must memorise 12 points";
}

}  // namespace
}  // namespace cyclone
