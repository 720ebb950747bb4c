// Linear overparameterization of libtorch networks (src/dln/torch, Sections 3.2 and 4.4):
// expand-then-collapse is the same function, one SGD step on a depth-2 product follows Eq. 4 to
// O(eta^2), truncation is Eckart-Young, and bad options get their exact errors.
#include <torch/torch.h>

#include <cmath>

#include "dln/torch/overparameterize.hpp"
#include "test_support.hpp"

namespace {

namespace nn = torch::nn;
using dln::nonlinear::collapse;
using dln::nonlinear::CollapseOptions;
using dln::nonlinear::ExpandInit;
using dln::nonlinear::overparameterize;
using dln::nonlinear::OverparameterizeOptions;
using dln::testing::expect_error;

double max_abs_diff(nn::Sequential& a, nn::Sequential& b, const torch::Tensor& x) {
  torch::NoGradGuard g;
  return (a->forward(x) - b->forward(x)).abs().max().item<double>();
}

struct ConvCase {
  int k, stride, padding, dilation, groups;
  bool bias;
  const char* padding_mode;
};

nn::Sequential conv_net(const ConvCase& c) {
  nn::Conv2dOptions o(4, 6, c.k);
  o.stride(c.stride).padding(c.padding).dilation(c.dilation).groups(c.groups).bias(c.bias);
  if (std::string(c.padding_mode) == "reflect") o.padding_mode(torch::kReflect);
  if (std::string(c.padding_mode) == "circular") o.padding_mode(torch::kCircular);
  nn::Sequential m;
  m->push_back("conv", nn::Conv2d(o));
  m->push_back("relu", nn::ReLU());
  m->push_back("flatten", nn::Flatten());
  return m;
}

class TorchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(3);
    at::set_num_threads(1);
  }
};

TEST_F(TorchTest, ExpandThenCollapseIsTheSameFunction) {
  const std::vector<ConvCase> convs = {
      {3, 1, 1, 1, 1, true, "zeros"},   {3, 2, 1, 1, 1, false, "zeros"},
      {5, 1, 2, 2, 1, true, "zeros"},   {3, 1, 1, 1, 2, true, "zeros"},
      {3, 1, 1, 1, 1, true, "reflect"}, {3, 2, 0, 1, 2, false, "circular"}};
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const double tol = dtype == torch::kFloat64 ? 1e-10 : 1e-4;
    for (int depth : {2, 3})
      for (const auto init : {ExpandInit::identity, ExpandInit::factors, ExpandInit::product}) {
        OverparameterizeOptions o;
        o.depth = depth;
        o.conv = true;
        o.conv_rate = 2;
        o.init = init;
        for (bool bias : {true, false}) {
          nn::Sequential lin;
          lin->push_back("fc1", nn::Linear(nn::LinearOptions(7, 5).bias(bias)));
          lin->push_back("tanh", nn::Tanh());
          lin->push_back("fc2", nn::Linear(nn::LinearOptions(5, 3).bias(bias)));
          lin->to(dtype);
          nn::Sequential e = overparameterize(lin, o);
          nn::Sequential c = collapse(e).model;
          const torch::Tensor x = torch::randn({9, 7}, dtype);
          EXPECT_LE(max_abs_diff(e, c, x), tol);
          if (init == ExpandInit::identity) {
            EXPECT_LE(max_abs_diff(lin, e, x), tol);
          }
          EXPECT_EQ(dln::nonlinear::count_parameters(*c), dln::nonlinear::count_parameters(*lin));
        }
        for (const auto& cc : convs) {
          nn::Sequential m = conv_net(cc);
          m->to(dtype);
          nn::Sequential e = overparameterize(m, o);
          nn::Sequential c = collapse(e).model;
          const torch::Tensor x = torch::randn({2, 4, 9, 9}, dtype);
          EXPECT_LE(max_abs_diff(e, c, x), tol) << "k " << cc.k << " groups " << cc.groups;
          if (init == ExpandInit::identity) {
            EXPECT_LE(max_abs_diff(m, e, x), tol);
          }
          EXPECT_EQ(dln::nonlinear::count_parameters(*c), dln::nonlinear::count_parameters(*m));
        }
      }
  }
}

// Eq. 4, discrete: for W = W_2 W_1, one SGD step of size eta changes W by
// -eta (W_2 W_2^T G + G W_1^T W_1) + O(eta^2), G the gradient at the collapsed weight.
TEST_F(TorchTest, OneStepFollowsEquation4) {
  nn::Sequential m;
  m->push_back("fc", nn::Linear(nn::LinearOptions(6, 4).bias(true)));
  m->to(torch::kFloat64);
  OverparameterizeOptions o;
  o.init = ExpandInit::product;
  o.width = 5;
  const nn::Sequential base = overparameterize(m, o);
  const torch::Tensor x = torch::randn({20, 6}, torch::kFloat64);
  const torch::Tensor y = torch::randn({20, 4}, torch::kFloat64);
  std::vector<double> ratio;
  for (double eta : {1e-2, 5e-3, 2.5e-3, 1.25e-3}) {
    nn::Sequential e = dln::nonlinear::clone_named(base);
    auto p = std::dynamic_pointer_cast<dln::nonlinear::LinearProductImpl>(e->ptr(0));
    const torch::Tensor w1 = p->factors[0]->weight.detach().clone();
    const torch::Tensor w2 = p->factors[1]->weight.detach().clone();
    const torch::Tensor w = w2.matmul(w1);
    // G: the gradient of the loss at the collapsed weight.
    torch::Tensor wc = w.clone().requires_grad_(true);
    const torch::Tensor b = p->factors[1]->bias.detach();
    torch::mse_loss(torch::addmm(b, x, wc.t()), y).backward();
    const torch::Tensor g = wc.grad();
    torch::optim::SGD sgd(e->parameters(), torch::optim::SGDOptions(eta));
    sgd.zero_grad();
    torch::mse_loss(e->forward(x), y).backward();
    sgd.step();
    const torch::Tensor predicted =
        w - eta * (w2.matmul(w2.t()).matmul(g) + g.matmul(w1.t().matmul(w1)));
    const double residual = (p->end_to_end_weight() - predicted).norm().item<double>();
    ratio.push_back(residual / (eta * eta));
    EXPECT_LT(residual / eta, 0.2 * (w2.matmul(w2.t()).matmul(g)).norm().item<double>());
  }
  for (std::size_t k = 1; k < ratio.size(); ++k) {
    EXPECT_GT(ratio[k], ratio[0] / 1.5);
    EXPECT_LT(ratio[k], ratio[0] * 1.5);
  }
  EXPECT_GT(ratio[0], 0);
}

TEST_F(TorchTest, TruncationIsEckartYoungAndFullRankIsLossless) {
  nn::Sequential m;
  m->push_back("fc1", nn::Linear(12, 8));
  m->push_back("relu", nn::ReLU());
  m->push_back("fc2", nn::Linear(8, 3));
  m->to(torch::kFloat64);
  const nn::Sequential e = overparameterize(m, {});
  const torch::Tensor x = torch::randn({10, 12}, torch::kFloat64);
  CollapseOptions full;
  full.rank = 8;
  auto lossless = collapse(e, full);
  auto plain = collapse(e);
  EXPECT_LE(max_abs_diff(lossless.model, plain.model, x), 1e-12);
  EXPECT_EQ(lossless.layers[0].rank_kept, 8);

  CollapseOptions r3;
  r3.ranks["fc1"] = 3;
  auto t = collapse(e, r3);
  const torch::Tensor w = t.model->named_parameters()["fc1.weight"];
  const torch::Tensor full_w = plain.model->named_parameters()["fc1.weight"];
  const torch::Tensor s = at::linalg_svdvals(full_w);
  EXPECT_NEAR(at::linalg_svdvals(w)[3].item<double>(), 0, 1e-12);  // rank 3
  const double dropped = s.narrow(0, 3, s.size(0) - 3).square().sum().item<double>();
  EXPECT_NEAR((w - full_w).square().sum().item<double>(), dropped, 1e-12);
  EXPECT_EQ(t.layers[0].params_kept, 3 * (8 + 12 - 3) + 8);  // Section 4.4, plus the bias
  EXPECT_EQ(t.layers[1].rank_kept, 3);                       // fc2 untouched (its rank is 3)
  EXPECT_NEAR(t.layers[0].energy_kept, 1 - dropped / s.square().sum().item<double>(), 1e-12);

  r3.factored = true;
  auto f = collapse(e, r3);
  EXPECT_LE(max_abs_diff(f.model, t.model, x), 1e-12);

  CollapseOptions en;
  en.energy = 0.9;
  auto ce = collapse(e, en);
  const torch::Tensor c = (s * s).cumsum(0) / (s * s).sum();
  std::int64_t expect = 1;
  while (c[expect - 1].item<double>() < 0.9) ++expect;
  EXPECT_EQ(ce.layers[0].rank_kept, expect);
  EXPECT_GE(ce.layers[0].energy_kept, 0.9);
}

TEST_F(TorchTest, TutorialCnnParameterCounts) {
  nn::Sequential m;
  m->push_back("conv1", nn::Conv2d(nn::Conv2dOptions(1, 32, 5).padding(2)));
  m->push_back("pool1", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  m->push_back("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 5).padding(2)));
  m->push_back("pool2", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  m->push_back("flatten", nn::Flatten());
  m->push_back("fc1", nn::Linear(3136, 512));
  m->push_back("fc2", nn::Linear(512, 10));
  EXPECT_EQ(dln::nonlinear::count_parameters(*m), 1663370);
  const nn::Sequential e = overparameterize(m, {});
  EXPECT_EQ(dln::nonlinear::count_parameters(*e), 1925614);  // +15.77%, as published (~15%)
  const auto c = collapse(e);
  EXPECT_EQ(c.params(), 1663370);
  const torch::Tensor x = torch::randn({2, 1, 28, 28});
  EXPECT_LE(max_abs_diff(m, const_cast<nn::Sequential&>(e), x), 1e-4);
}

TEST_F(TorchTest, BadOptionsGetTheirErrors) {
  nn::Sequential m;
  m->push_back("fc", nn::Linear(4, 3));
  OverparameterizeOptions o;
  o.depth = 0;
  expect_error([&] { overparameterize(m, o); }, "overparameterize: depth: must be >= 1, got 0");
  o = {};
  o.width = 2;
  expect_error([&] { overparameterize(m, o); },
               "overparameterize: init = identity needs width >= out_features (layer 'fc': "
               "width 2 < 3)");
  o = {};
  o.conv_rate = 0;
  expect_error([&] { overparameterize(m, o); }, "overparameterize: conv_rate: must be >= 1, got 0");
  o = {};
  o.factor_init = [](torch::Tensor&) {};
  expect_error([&] { overparameterize(m, o); },
               "overparameterize: factor_init: only used with init = factors");
  CollapseOptions c;
  c.ranks["fc9"] = 2;
  expect_error([&] { collapse(m, c); },
               "collapse: ranks: no Linear layer named 'fc9' (Linear layers: fc)");
  c = {};
  c.energy = 1.5;
  expect_error([&] { collapse(m, c); }, "collapse: energy: must be in (0, 1] (0: off), got 1.5");
  c.energy = 0.5;
  c.rank = 2;
  expect_error([&] { collapse(m, c); },
               "collapse: energy: give either a rank or an energy, not both");
  c = {};
  c.rank = -1;
  expect_error([&] { collapse(m, c); }, "collapse: rank: must be >= 1 (0: off), got -1");
  // A module whose forward() calls its own Linear cannot be rewritten from outside.
  struct Block : nn::Module {
    Block() { fc = register_module("fc", nn::Linear(3, 3)); }
    torch::Tensor forward(torch::Tensor x) { return fc->forward(x); }
    nn::Linear fc{nullptr};
  };
  nn::Sequential s;
  s->push_back("block", std::make_shared<Block>());
  // clang-format off
  expect_error([&] { overparameterize(s, {}); },
               "overparameterize: layer 'block' (Block) holds a Linear inside a module that is not a Sequential; its forward() cannot be rewritten from outside (use dln::nonlinear::LinearProduct in that module)");
  // clang-format on
  expect_error([] { dln::nonlinear::parse_expand_init("zeros", "init"); },
               "init: unknown initialisation 'zeros' (expected identity, factors or product)");
}

}  // namespace
