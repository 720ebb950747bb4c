// Section 5: CP and hierarchical tensor factorizations. Gradients against finite differences, the
// order-2 CP model against the depth-2 matrix engine, conservation laws of gradient flow, the
// records against the saved factors, CP-ALS and the rank estimate, and bad input.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "dln/core/rng.hpp"
#include "dln/io/npy.hpp"
#include "dln/optimizers/train.hpp"
#include "dln/problems/problem.hpp"
#include "dln/tensors/cp_als.hpp"
#include "dln/tensors/run.hpp"
#include "test_support.hpp"

namespace dln::tensors {
namespace {

using dln::testing::expect_error;

TensorNetworkSpec cp_spec(Shape shape, Index r) {
  TensorNetworkSpec s;
  s.shape = std::move(shape);
  s.components = r;
  return s;
}

TensorNetworkSpec ht_spec(Shape shape, std::vector<Index> widths, int pool) {
  TensorNetworkSpec s;
  s.model = TensorModel::kHierarchical;
  s.shape = std::move(shape);
  s.widths = std::move(widths);
  s.pool = pool;
  return s;
}

Observations random_observations(const Shape& shape, Index m, std::uint64_t seed) {
  Observations o;
  o.entries = sample_entries(shape, m, seed);
  Rng rng(seed + 7);
  for (Index e = 0; e < m; ++e) o.values.push_back(rng.normal());
  return o;
}

// Max relative error of the analytic gradient against central differences.
double gradient_error(TensorObjective& obj, Factors w) {
  Factors g = obj.make_like();
  obj.evaluate_with_gradient(w, g);
  const double h = 1e-6;
  double worst = 0, scale = 0;
  for (const auto& gj : g) scale = std::max(scale, gj.cwiseAbs().maxCoeff());
  for (std::size_t j = 0; j < w.size(); ++j)
    for (Index i = 0; i < w[j].size(); ++i) {
      const double keep = w[j].data()[i];
      w[j].data()[i] = keep + h;
      const double up = obj.evaluate(w);
      w[j].data()[i] = keep - h;
      const double down = obj.evaluate(w);
      w[j].data()[i] = keep;
      worst = std::max(worst, std::abs((up - down) / (2 * h) - g[j].data()[i]));
    }
  return worst / scale;
}

TEST(TensorGradients, CpCompletionMatchesFiniteDifferences) {
  for (auto red : {Reduction::kHalfMean, Reduction::kMean}) {
    const auto spec = cp_spec({4, 3, 5}, 3);
    TensorObjective obj(spec, random_observations(spec.shape, 25, 1), red);
    EXPECT_LT(gradient_error(obj, gaussian_parameters(spec, 0.7, 2)), 1e-7);
  }
}

TEST(TensorGradients, CpOrderFiveMatchesFiniteDifferences) {
  const auto spec = cp_spec({2, 3, 2, 3, 2}, 4);
  TensorObjective obj(spec, random_observations(spec.shape, 40, 3), Reduction::kHalfMean);
  EXPECT_LT(gradient_error(obj, gaussian_parameters(spec, 0.8, 4)), 1e-7);
}

TEST(TensorGradients, HierarchicalCompletionMatchesFiniteDifferences) {
  // Pool 2 over 4 modes (two levels), and pool 3 over 5 modes (uneven groups, a one-child node
  // never arises; groups (1,2,3) and (4,5)).
  const TensorNetworkSpec specs[] = {ht_spec({3, 2, 3, 2}, {3, 4}, 2),
                                     ht_spec({2, 3, 2, 2, 3}, {3, 2}, 3),
                                     ht_spec({2, 2, 2, 2, 2}, {2, 3, 2}, 2)};
  for (const auto& spec : specs) {
    TensorObjective obj(spec, random_observations(spec.shape, 20, 5), Reduction::kMean);
    EXPECT_LT(gradient_error(obj, gaussian_parameters(spec, 0.8, 6)), 1e-7);
  }
}

TEST(TensorGradients, SensingMatchesFiniteDifferences) {
  Rng rng(9);
  for (const auto& spec : {cp_spec({3, 3, 2}, 3), ht_spec({3, 2, 2, 3}, {2, 3}, 2)}) {
    const auto d = static_cast<Index>(entry_count(spec.shape));
    TensorObjective obj(spec, rng.gaussian(7, d, 1.0), rng.gaussian(7, 1, 1.0).col(0),
                        Reduction::kHalfMean);
    EXPECT_LT(gradient_error(obj, gaussian_parameters(spec, 0.8, 10)), 1e-7);
  }
}

TEST(TensorNetwork, TreeOfThePublishedHierarchicalModel) {
  // Order 4, pool 2, widths 512, 512: four 8 x 512 leaves, two 512 x 512 nodes, a 512 x 1 root.
  const auto shapes = parameter_shapes(ht_spec({8, 8, 8, 8}, {512, 512}, 2));
  ASSERT_EQ(shapes.size(), 7u);
  EXPECT_EQ(shapes[0], (std::pair<Index, Index>{8, 512}));
  EXPECT_EQ(shapes[4], (std::pair<Index, Index>{512, 512}));
  EXPECT_EQ(shapes[6], (std::pair<Index, Index>{512, 1}));
}

TEST(TensorNetwork, DenseTensorIsTheSumOfOuterProducts) {
  const auto spec = cp_spec({3, 4, 2}, 2);
  const Factors u = gaussian_parameters(spec, 1.0, 11);
  const Vec t = dense_tensor(spec, u);
  for (Index a = 0; a < 3; ++a)
    for (Index b = 0; b < 4; ++b)
      for (Index c = 0; c < 2; ++c) {
        double want = 0;
        for (Index r = 0; r < 2; ++r) want += u[0](a, r) * u[1](b, r) * u[2](c, r);
        EXPECT_NEAR(t[(a * 4 + b) * 2 + c], want, 1e-14);
      }
}

// Section 5's matrix case: an order-2 CP model with R components is the depth-2 network
// W = U_1 U_2^T = W_2 W_1.
TEST(TensorMatrixCase, OrderTwoCpEqualsDepthTwoMatrixEngine) {
  ProblemConfig pc;
  pc.rows = 9;
  pc.cols = 7;
  pc.rank = 2;
  pc.observations = 30;
  pc.seed = 4;
  const Problem mp = make_problem(pc);
  Observations obs;
  obs.entries.shape = {9, 7};
  for (const auto& o : mp.observations) {
    obs.entries.index.insert(obs.entries.index.end(), {o.row, o.col});
    obs.values.push_back(o.value);
  }
  const Index r = 5;
  Rng rng(12);
  Factors w{rng.gaussian(r, 7, 0.3), rng.gaussian(9, r, 0.3)};  // W_1: R x d_0, W_2: d_n x R
  Factors u{w[1], w[0].transpose()};
  for (auto kind : {OptimizerKind::kGd, OptimizerKind::kGroupRmsprop}) {
    OptimizerOptions oo;
    oo.kind = kind;
    oo.lr = kind == OptimizerKind::kGd ? 0.5 : 1e-2;
    StopOptions stop;
    stop.max_iters = 500;
    RecordOptions rec;
    rec.every = 50;
    Objective matrix({7, r, 9}, *mp.loss);
    Factors wm = w;
    auto om = Optimizer::create(oo, wm);
    const Summary sm = train(matrix, wm, *om, stop, rec, nullptr);
    TensorObjective tensor(cp_spec({9, 7}, r), obs, Reduction::kHalfMean);
    Factors ut = u;
    auto ot = Optimizer::create(oo, ut);
    rec.end_to_end = false;
    const Summary st = train(tensor, ut, *ot, stop, rec, nullptr);
    ASSERT_EQ(sm.history.size(), st.history.size());
    for (std::size_t i = 0; i < sm.history.size(); ++i)
      EXPECT_NEAR(sm.history[i].loss, st.history[i].loss, 1e-12 * sm.history[0].loss);
    EXPECT_LT((wm[1] - ut[0]).cwiseAbs().maxCoeff(), 1e-12 * wm[1].cwiseAbs().maxCoeff());
    EXPECT_LT((wm[0].transpose() - ut[1]).cwiseAbs().maxCoeff(),
              1e-12 * wm[0].cwiseAbs().maxCoeff());
    EXPECT_LT(sm.final_loss, 0.05 * sm.history[0].loss);  // it did train
  }
}

// Gradient flow conserves ||W_v[r, :]||^2 - ||W_c[:, r]||^2 per node and component (for CP:
// the differences of the component's factor-column norms).
TEST(TensorConservation, GradientFlowKeepsComponentNormDifferences) {
  for (const auto& spec : {cp_spec({4, 3, 5}, 3), ht_spec({3, 2, 3, 2}, {3, 2}, 2)}) {
    TensorObjective obj(spec, random_observations(spec.shape, 20, 13), Reduction::kHalfMean);
    Factors w = gaussian_parameters(spec, 0.6, 14);
    const double before = tensor_unbalancedness(spec, w);
    FlowOptions flow;
    flow.time = 100;
    flow.ode.rtol = 1e-10;
    flow.ode.atol = 1e-12;
    RecordOptions rec;
    rec.end_to_end = false;
    const Summary s = train_gradient_flow(obj, w, flow, StopOptions{}, rec, nullptr);
    EXPECT_LT(s.final_loss, 0.5 * s.history.front().loss);  // it moved
    EXPECT_GT(before, 1e-2);
    EXPECT_NEAR(tensor_unbalancedness(spec, w), before, 1e-7);
    EXPECT_NEAR(s.history.back().unbalancedness, before, 1e-7);
  }
}

TEST(TensorAls, RankEstimateRecoversAPlantedRank) {
  const Shape shape{6, 5, 4};
  for (Index rank : {1, 3}) {
    const Vec t = cp_dense(shape, cp_ground_truth(shape, rank, 1.0, 20 + rank));
    const RankEstimate est = estimate_cp_rank(shape, t, 1e-6, 6);
    EXPECT_EQ(est.rank, rank);
    ASSERT_EQ(est.errors.size(), static_cast<std::size_t>(rank));
    if (rank > 1) {
      EXPECT_GT(est.errors[static_cast<std::size_t>(rank - 2)], 1e-3);
    }
  }
  EXPECT_EQ(estimate_cp_rank(shape, Vec::Zero(120), 1e-6, 6).rank, 0);
}

TEST(TensorAls, MaskedAlsCompletesATensorAtItsRank) {
  const Shape shape{8, 8, 8};
  const Factors truth = cp_ground_truth(shape, 2, 1.0, 30);
  const Vec dense = cp_dense(shape, truth);
  Observations obs;
  obs.entries = sample_entries(shape, 200, 31);
  for (Index e = 0; e < obs.entries.size(); ++e)
    obs.values.push_back(dense[offset(shape, obs.entries.at(e))]);
  const CpFit fit = cp_als_completion(obs, 2);
  EXPECT_LT(fit.rel_error, 1e-8);
  EXPECT_LT((cp_dense(shape, fit.factors) - dense).norm() / dense.norm(), 1e-6);
}

TEST(TensorProblem, SyntheticGroundTruthHasItsNorm) {
  ProblemConfig pc;
  pc.kind = "tensor_completion";
  pc.shape = {5, 4, 3};
  pc.rank = 2;
  pc.observations = 30;
  pc.ground_truth_norm = 64;
  const TensorProblem p = make_tensor_problem(pc);
  ASSERT_TRUE(p.truth.has_value());
  EXPECT_NEAR(p.truth->dense.norm(), 64, 1e-10);
  EXPECT_NEAR(cp_norm(p.truth_factors), 64, 1e-10);
  EXPECT_EQ(p.observations.entries.size(), 30);
  for (Index e = 0; e < 30; ++e)
    EXPECT_DOUBLE_EQ(p.observations.values[static_cast<std::size_t>(e)],
                     p.truth->dense[offset(pc.shape, p.observations.entries.at(e))]);
}

std::string tensor_config(const std::string& extra = "") {
  return R"(
[problem]
kind = "tensor_completion"
shape = [5, 4, 3]
rank = 2
observations = 40
[network]
model = "cp"
components = 6
init_scale = 0.2
[optimizer]
name = "gd"
lr = 0.5
[stop]
max_iters = 200
[record]
every = 20
components = 4
)" + extra;
}

// history.csv's top component norms against factors/U*.npy read back.
TEST(TensorRun, RecordedComponentNormsMatchTheSavedFactors) {
  const auto dir = dln::testing::scratch_dir("tensor_run") / "cp";
  const Config c = parse_config(tensor_config(), "test");
  const TensorRunResult r = run_tensor(c, {}, dir.string());
  write_tensor_run_directory(dir.string(), r);
  Factors u;
  for (int k = 1; k <= 3; ++k)
    u.push_back(io::read_npy_matrix((dir / "factors" / fmt::format("U{}.npy", k)).string()));
  Vec norms = component_norms(r.spec, u)[0];
  std::sort(norms.data(), norms.data() + norms.size(), std::greater<>());
  std::ifstream in(dir / "history.csv");
  std::string header, line, last;
  std::getline(in, header);
  while (std::getline(in, line)) last = line;
  std::vector<std::string> names, cells;
  for (std::stringstream h(header); std::getline(h, line, ',');) names.push_back(line);
  for (std::stringstream l(last); std::getline(l, line, ',');) cells.push_back(line);
  ASSERT_EQ(names.size(), cells.size());
  int found = 0;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i].rfind("norm", 0) == 0) {
      const int k = std::stoi(names[i].substr(4)) - 1;
      EXPECT_NEAR(std::stod(cells[i]), norms[k], 1e-12 * norms[0]);
      ++found;
    }
  EXPECT_EQ(found, 4);
  EXPECT_TRUE(std::filesystem::exists(dir / "end_to_end.npy"));
  EXPECT_TRUE(std::filesystem::exists(dir / "data" / "ground_truth.npy"));
  EXPECT_EQ(r.summary.history.back().iteration, 200);
}

TEST(TensorRun, ResumeContinuesBitIdentically) {
  const auto dir = dln::testing::scratch_dir("tensor_run") / "resume";
  const Config c = parse_config(tensor_config(), "test", {"run.checkpoint_every=60"});
  const TensorRunResult full = run_tensor(c);
  // A run stopped after its checkpoint at 120, then resumed.
  const Config cut =
      parse_config(tensor_config(), "test", {"run.checkpoint_every=60", "stop.max_iters=130"});
  run_tensor(cut, {}, dir.string());
  const TensorRunResult resumed = run_tensor(c, {}, dir.string(), true);
  for (std::size_t k = 0; k < full.factors.size(); ++k)
    EXPECT_EQ(full.factors[k], resumed.factors[k]);
  ASSERT_EQ(full.summary.history.size(), resumed.summary.history.size());
  EXPECT_EQ(full.summary.history.back().components, resumed.summary.history.back().components);
}

TEST(TensorBadInput, ObservationFilesNameTheirLine) {
  const auto dir = dln::testing::scratch_dir("tensor_bad");
  auto write = [&](const std::string& name, const std::string& text) {
    const auto p = (dir / name).string();
    std::ofstream(p) << text;
    return p;
  };
  const Shape shape{3, 5, 2};
  const auto range = write("range.csv", "i1,i2,i3,value\n0,1,1,0.5\n2,7,0,1\n");
  expect_error([&] { read_observations_csv(range, shape); },
               range + ":3: index i2 = 7 out of range [0, 5)");
  const auto fields = write("fields.csv", "0,1,0.5\n");
  expect_error([&] { read_observations_csv(fields, shape); },
               fields + ":1: expected 4 fields i1,...,i3,value, got 3");
  const auto dup = write("dup.csv", "i1,i2,i3,value\n1,2,0,0.5\n1,2,0,0.7\n");
  expect_error([&] { read_observations_csv(dup, shape); },
               dup + ":3: duplicate entry (1, 2, 0) (first at line 2)");
  const auto nan = write("nan.csv", "1,2,0,nan\n");
  expect_error([&] { read_observations_csv(nan, shape); }, nan + ":1: non-finite value");
  const auto neg = write("neg.csv", "1,-2,0,1\n");
  expect_error([&] { read_observations_csv(neg, shape); },
               neg + ":1: index i2 = -2 out of range [0, 5)");
  const auto empty = write("empty.csv", "i1,i2,i3,value\n");
  expect_error([&] { read_observations_csv(empty, shape); }, empty + ": no observations");
}

TEST(TensorBadInput, ConfigErrorsNameTheKey) {
  auto cfg = [](const std::vector<std::string>& sets) {
    return [sets] { parse_config(tensor_config(), "test", sets); };
  };
  expect_error(cfg({"problem.shape=[5]"}),
               "problem.shape: order 1 < 2 (a tensor needs at least two modes)");
  expect_error(cfg({"problem.shape=[]"}),
               "problem.shape: the shape is empty (a tensor needs order >= 2)");
  expect_error(cfg({"problem.shape=[5, 0, 3]"}),
               "problem.shape: mode 2 has dimension 0 (must be >= 1)");
  expect_error(cfg({"problem.rank=7"}),
               "problem.rank: the ground truth's CP rank 7 exceeds network.components = 6");
  expect_error(cfg({"problem.observations=61"}),
               "problem.observations: 61 exceeds the 60 entries of the tensor");
  expect_error(cfg({"network.model=matrix"}),
               "network.model: kind = \"tensor_completion\" needs network.model = \"cp\" or "
               "\"hierarchical\"");
  expect_error(cfg({"network.model=hierarchical", "network.components=0", "network.widths=[4]"}),
               "network.widths: the hierarchical model over 3 modes with pool 2 has 2 levels, so "
               "expected 2 widths R_0..R_1, got 1");
  expect_error(cfg({"optimizer.name=end_to_end"}),
               "optimizer.name: end_to_end needs a matrix model (Theorem 1)");
  expect_error(
      [] { parse_config("[problem]\nkind = \"completion\"\n[network]\nmodel = \"cp\"\n", "test"); },
      "network.model: \"cp\" is a tensor model; kind = \"completion\" trains network.model = "
      "\"matrix\"");
}

TEST(TensorBadInput, ParameterFilesAreChecked) {
  const auto spec = cp_spec({3, 2}, 2);
  Factors w = zero_parameters(spec);
  expect_error([&] { check_parameters(spec, {w[0]}, "init"); },
               "init: 1 parameter matrices, expected 2");
  w[1](1, 1) = NAN;
  expect_error([&] { check_parameters(spec, w, "init"); },
               "init: parameter 2 has a non-finite entry");
}

}  // namespace
}  // namespace dln::tensors
