// Every bad config produces one line naming the key.
#include <gtest/gtest.h>

#include "dln/config/config.hpp"
#include "test_support.hpp"

namespace dln {
namespace {

using dln::testing::expect_error;

const char* kBase = R"(
[problem]
kind = "completion"
rows = 30
cols = 24
rank = 3
observations = 300
seed = 11
[network]
depth = 3
width = 32
init = "gaussian"
init_scale = 0.1
seed = 5
[optimizer]
name = "gd"
lr = 0.5
[stop]
max_iters = 500
loss_tol = 0.0
[record]
every = 50
)";

Config with(std::vector<std::string> sets) { return parse_config(kBase, "cfg.toml", sets); }

TEST(Config, IssueExampleParsesWithDefaults) {
  Config c = with({});
  EXPECT_EQ(c.dims(), (std::vector<Index>{24, 32, 32, 30}));
  EXPECT_EQ(c.optimizer.kind, OptimizerKind::kGd);
  EXPECT_EQ(c.record.every, 50);
  EXPECT_EQ(c.problem.seed, 11u);
  // Resolved config round-trips.
  Config again = parse_config(c.to_toml(), "resolved");
  EXPECT_EQ(again.to_toml(), c.to_toml());
  EXPECT_EQ(again.dims(), c.dims());
}

TEST(Config, OverridesParseTomlValuesAndBareWords) {
  Config c = with({"optimizer.name=group_rmsprop", "optimizer.lr=1e-3", "network.widths=[5, 6]",
                   "stop.loss_tol=1e-6"});
  EXPECT_EQ(c.optimizer.kind, OptimizerKind::kGroupRmsprop);
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 1e-3);
  EXPECT_EQ(c.dims(), (std::vector<Index>{24, 5, 6, 30}));
  EXPECT_DOUBLE_EQ(c.optimizer.resolved_eps(), 1e-4);
}

TEST(Config, BadInputsNameTheField) {
  expect_error([] { with({"problem.colour=3"}); }, "problem.colour: unknown key");
  expect_error([] { with({"solver.x=1"}); }, "solver: unknown section");
  expect_error([] { with({"network.depth=0"}); }, "network.depth: must be >= 1, got 0");
  expect_error([] { with({"problem.rows=-4"}); }, "problem.rows: must be > 0, got -4");
  expect_error([] { with({"problem.cols=0"}); }, "problem.cols: must be > 0, got 0");
  expect_error([] { with({"network.width=-1"}); }, "network.width: must be > 0, got -1");
  expect_error([] { with({"problem.rank=25"}); }, "problem.rank: 25 exceeds min(rows, cols) = 24");
  expect_error([] { with({"problem.observations=721"}); },
               "problem.observations: 721 exceeds the 720 entries of a 30x24 matrix");
  expect_error(
      [] {
        with({"problem.kind=lp_regression", "problem.p=3"});
      },
      "problem.p: must be an even integer >= 2, got 3");
  expect_error([] { with({"problem.kind=foo"}); },
               "problem.kind: expected one of completion, sensing, regression, lp_regression, "
               "logistic, tensor_completion, tensor_sensing; got \"foo\"");
  expect_error([] { with({"optimizer.name=sgd"}); },
               "optimizer.name: expected one of gd, group_rmsprop, momentum, adam, gradient_flow, "
               "end_to_end, adagrad, adadelta; got \"sgd\"");
  expect_error([] { with({"optimizer.lr=-1"}); }, "optimizer.lr: must be finite and > 0");
  expect_error([] { with({"optimizer.lr=nan"}); }, "optimizer.lr: must be finite and > 0");
  expect_error([] { with({"problem.rows=\"ten\""}); }, "problem.rows: expected an integer");
  expect_error([] { with({"network.widths=[4]"}); },
               "network.widths: expected depth - 1 = 2 hidden widths, got 1");
  expect_error([] { with({"network.init=file"}); },
               "network.init_path: required when network.init = \"file\"");
  expect_error([] { with({"record.every=0"}); }, "record.every: must be >= 1");
  expect_error([] { with({"problem.reduction=sum"}); },
               "problem.reduction: expected \"half_mean\" or \"mean\", got \"sum\"");
  expect_error([] { with({"badoverride"}); }, "--set badoverride: expected section.key=value");
}

TEST(Config, MalformedTomlReportsLine) {
  expect_error([] { parse_config("[problem]\nrows = 3\ncols = = 4\n", "bad.toml"); },
               "bad.toml: line 3: Error while parsing value: could not determine value type");
}

}  // namespace
}  // namespace dln
