// Object level: losses (built-in and Python callables), problems, the objective phi (Eq. 1),
// initializers, optimizers, options, the training loop with Python callbacks, summaries.
#include <fmt/format.h>

#include "common.hpp"
#include "dln/init/initializers.hpp"
#include "dln/problems/problem.hpp"

namespace dlnpy {

namespace {

using dln::Loss;

// A loss given as Python callables of the end-to-end matrix W (rows x cols):
// value(W) -> float and gradient(W) -> array, or value_and_gradient(W) -> (float, array).
// Called with the GIL acquired (training releases it); W is passed as a fresh copy.
class PythonLoss final : public Loss {
 public:
  PythonLoss(Index rows, Index cols, py::object value, py::object gradient,
             py::object value_and_gradient, std::string name)
      : rows_(rows),
        cols_(cols),
        value_(std::move(value)),
        gradient_(std::move(gradient)),
        both_(std::move(value_and_gradient)),
        name_(std::move(name)) {
    if (rows <= 0 || cols <= 0)
      throw py::value_error(
          fmt::format("PythonLoss: shape must be positive, got {}x{}", rows, cols));
    if (both_.is_none() && (value_.is_none() || gradient_.is_none()))
      throw py::value_error("PythonLoss: give value and gradient, or value_and_gradient");
  }
  std::string name() const override { return name_; }
  Index rows() const override { return rows_; }
  Index cols() const override { return cols_; }
  double value(const Mat& w) const override {
    py::gil_scoped_acquire gil;
    if (!value_.is_none()) return to_double(value_(to_numpy_copy(w)), "value");
    return to_double(py::tuple(both_(to_numpy_copy(w)))[0], "value");
  }
  double value_and_gradient(const Mat& w, Mat& g) const override {
    py::gil_scoped_acquire gil;
    py::array wa = to_numpy_copy(w);
    double v = 0;
    if (!both_.is_none()) {
      py::object r = both_(wa);
      if (!py::isinstance<py::tuple>(r) || py::len(r) != 2)
        throw py::value_error("value_and_gradient: must return (value, gradient)");
      auto t = py::reinterpret_borrow<py::tuple>(r);
      v = to_double(t[0], "value");
      g = to_mat(t[1], "gradient", rows_, cols_);
    } else {
      v = to_double(value_(wa), "value");
      g = to_mat(gradient_(wa), "gradient", rows_, cols_);
    }
    return v;
  }

 private:
  static double to_double(py::handle h, const char* what) {
    try {
      return py::float_(py::reinterpret_borrow<py::object>(h)).cast<double>();
    } catch (py::error_already_set&) {
      throw py::value_error(fmt::format("{}: must return a number", what));
    }
  }
  Index rows_, cols_;
  py::object value_, gradient_, both_;
  std::string name_;
};

// Sensing matrices: m x rows x cols (as data/sensing_A.npy) or m x (rows*cols) (vec column-first).
Mat sensing_matrix(py::handle a, Index rows, Index cols) {
  py::array arr = py::module_::import("numpy").attr("asarray")(a);
  if (arr.ndim() == 3) {
    if (arr.shape(1) != rows || arr.shape(2) != cols)
      throw py::value_error(fmt::format("A: expected shape (m, {}, {}), got (m, {}, {})", rows,
                                        cols, arr.shape(1), arr.shape(2)));
    const char kind = arr.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u')
      throw py::value_error(fmt::format("A: expected a real (float64) array, got dtype {}",
                                        py::str(arr.dtype()).cast<std::string>()));
    auto d = py::array_t<double, py::array::forcecast>::ensure(arr);
    auto u = d.unchecked<3>();
    Mat out(arr.shape(0), rows * cols);
    for (Index i = 0; i < out.rows(); ++i)
      for (Index c = 0; c < cols; ++c)
        for (Index r = 0; r < rows; ++r) out(i, r + rows * c) = u(i, r, c);
    return out;
  }
  return to_mat(arr, "A", -1, rows * cols);
}

struct FactorsRun {
  dln::Summary summary;
  Factors factors;
  bool truth = false;
};

dln::Config options(py::handle optimizer, py::handle stop, py::handle record) {
  py::dict d;
  if (py::isinstance<py::dict>(optimizer)) d["optimizer"] = optimizer;
  if (py::isinstance<py::dict>(stop)) d["stop"] = stop;
  if (py::isinstance<py::dict>(record)) d["record"] = record;
  dln::Config c = to_config(d, py::none());
  if (py::isinstance<dln::OptimizerOptions>(optimizer))
    c.optimizer = optimizer.cast<dln::OptimizerOptions>();
  if (py::isinstance<dln::StopOptions>(stop)) c.stop = stop.cast<dln::StopOptions>();
  if (py::isinstance<dln::RecordOptions>(record)) c.record = record.cast<dln::RecordOptions>();
  c.validate();
  return c;
}

std::unique_ptr<FactorsRun> train_factors(dln::Objective& objective, py::handle factors,
                                          py::handle optimizer, py::handle stop, py::handle record,
                                          py::handle ground_truth, py::handle callbacks,
                                          bool progress) {
  const dln::Config c = options(optimizer, stop, record);
  auto out = std::make_unique<FactorsRun>();
  out->factors = to_factors(factors, "factors", &objective.dims());
  std::optional<Mat> truth;
  if (!ground_truth.is_none())
    truth = to_mat(ground_truth, "ground_truth", objective.dims().back(), objective.dims().front());
  out->truth = truth.has_value();
  const Mat* t = truth ? &*truth : nullptr;
  CallbackSet cbs(callbacks, progress, c.stop.max_iters);
  dln::OptimizerOptions opt = c.optimizer;
  if (opt.depth == 0) opt.depth = objective.depth();
  dln::FlowOptions flow;
  flow.time = opt.time;
  flow.record_dt = c.record_dt;
  flow.ode = {opt.rtol, opt.atol, opt.max_steps};
  {
    py::gil_scoped_release release;
    auto& w = out->factors;
    if (opt.kind == dln::OptimizerKind::kEndToEnd) {
      // As `dln train`: Theorem 1 needs balanced factors; W_{n:1} evolves alone.
      double scale = 0.0;
      for (const auto& f : w) scale = std::max(scale, f.squaredNorm());
      const double u = dln::unbalancedness(w);
      if (u > 1e-10 * std::max(scale, 1e-300))
        throw dln::Error(fmt::format(
            "optimizer.name: end_to_end needs balanced initial factors (Assumption 1), but the "
            "factors have unbalancedness {:.3e}",
            u));
      Factors e{dln::end_to_end(w)};
      if (opt.continuous()) {
        out->summary = dln::train_end_to_end_flow(objective.loss(), e[0], opt.depth, flow, c.stop,
                                                  c.record, t, cbs.pointers);
      } else {
        const auto& d = objective.dims();
        dln::Objective e2e({d.front(), d.back()}, objective.loss());
        auto stepper = dln::Optimizer::create(opt, e);
        out->summary = dln::train(e2e, e, *stepper, c.stop, c.record, t, cbs.pointers);
      }
      w = dln::balanced_factors(objective.dims(), e[0]);
    } else if (opt.kind == dln::OptimizerKind::kGradientFlow) {
      out->summary =
          dln::train_gradient_flow(objective, w, flow, c.stop, c.record, t, cbs.pointers);
    } else {
      auto stepper = dln::Optimizer::create(opt, w);
      out->summary = dln::train(objective, w, *stepper, c.stop, c.record, t, cbs.pointers);
    }
  }
  cbs.pending->rethrow();
  return out;
}

template <class T>
std::string validity(const T& o) {
  std::string err;
  return o.IsValid(&err) ? std::string() : err;
}

}  // namespace

void init_objects(py::module_& m) {
  // ---- losses ----
  py::class_<Loss>(m, "Loss", "A loss l(W) of the end-to-end matrix W (rows x cols)")
      .def_property_readonly("name", &Loss::name)
      .def_property_readonly("rows", &Loss::rows)
      .def_property_readonly("cols", &Loss::cols)
      .def_property_readonly("shape",
                             [](const Loss& l) { return py::make_tuple(l.rows(), l.cols()); })
      .def(
          "value",
          [](const Loss& l, py::handle w) {
            Mat x = to_mat(w, "W", l.rows(), l.cols());
            py::gil_scoped_release release;
            return l.value(x);
          },
          py::arg("W"))
      .def(
          "value_and_gradient",
          [](const Loss& l, py::handle w) {
            Mat x = to_mat(w, "W", l.rows(), l.cols());
            Mat g(l.rows(), l.cols());
            double v = 0;
            {
              py::gil_scoped_release release;
              v = l.value_and_gradient(x, g);
            }
            return py::make_tuple(v, to_numpy(std::move(g)));
          },
          py::arg("W"), "(l(W), grad l(W))")
      .def(
          "gradient",
          [](const Loss& l, py::handle w) {
            Mat x = to_mat(w, "W", l.rows(), l.cols());
            Mat g(l.rows(), l.cols());
            {
              py::gil_scoped_release release;
              l.value_and_gradient(x, g);
            }
            return to_numpy(std::move(g));
          },
          py::arg("W"));

  py::class_<dln::CompletionLoss, Loss>(m, "CompletionLoss",
                                        "Eq. 9 with A_i = e_r e_c^T: 1/(2m) sum (W[r,c] - b)^2")
      .def(py::init([](Index rows, Index cols, py::handle r, py::handle c, py::handle b,
                       const std::string& reduction) {
             return std::make_unique<dln::CompletionLoss>(rows, cols, to_indices(r, "r"),
                                                          to_indices(c, "c"), to_doubles(b, "b"),
                                                          dln::parse_reduction(reduction));
           }),
           py::arg("rows"), py::arg("cols"), py::arg("r"), py::arg("c"), py::arg("b"),
           py::arg("reduction") = "half_mean")
      .def_property_readonly("size", &dln::CompletionLoss::size);
  py::class_<dln::SensingLoss, Loss>(m, "SensingLoss",
                                     "Eq. 9: 1/(2m) sum (<W, A_i> - b_i)^2; A is m x rows x cols")
      .def(py::init([](Index rows, Index cols, py::handle a, py::handle b,
                       const std::string& reduction) {
             Mat am = sensing_matrix(a, rows, cols);
             Vec bv = to_vec(b, "b", am.rows());
             return std::make_unique<dln::SensingLoss>(rows, cols, std::move(am), std::move(bv),
                                                       dln::parse_reduction(reduction));
           }),
           py::arg("rows"), py::arg("cols"), py::arg("A"), py::arg("b"),
           py::arg("reduction") = "half_mean");
  py::class_<dln::SquareRegressionLoss, Loss>(m, "SquareRegressionLoss",
                                              "Example 1: 1/(2m) ||W X - Y||_F^2")
      .def(py::init([](py::handle x, py::handle y) {
             Mat xm = to_mat(x, "X");
             Mat ym = to_mat(y, "Y", -1, xm.cols());
             return std::make_unique<dln::SquareRegressionLoss>(std::move(xm), std::move(ym));
           }),
           py::arg("X"), py::arg("Y"));
  py::class_<dln::LpRegressionLoss, Loss>(m, "LpRegressionLoss",
                                          "Claim 1: 1/m sum ||W x_i - y_i||_p^p, p even")
      .def(py::init([](py::handle x, py::handle y, int p) {
             Mat xm = to_mat(x, "X");
             Mat ym = to_mat(y, "Y", -1, xm.cols());
             return std::make_unique<dln::LpRegressionLoss>(std::move(xm), std::move(ym), p);
           }),
           py::arg("X"), py::arg("Y"), py::arg("p"));
  py::class_<dln::LogisticLoss, Loss>(m, "LogisticLoss", "multinomial logistic regression")
      .def(py::init([](py::handle x, py::handle labels, Index classes) {
             return std::make_unique<dln::LogisticLoss>(to_mat(x, "X"),
                                                        to_indices(labels, "labels"), classes);
           }),
           py::arg("X"), py::arg("labels"), py::arg("classes"));
  py::class_<PythonLoss, Loss>(
      m, "PythonLoss",
      "A loss from Python callables of W: value(W) and gradient(W), or value_and_gradient(W)")
      .def(py::init<Index, Index, py::object, py::object, py::object, std::string>(),
           py::arg("rows"), py::arg("cols"), py::arg("value") = py::none(),
           py::arg("gradient") = py::none(), py::kw_only(),
           py::arg("value_and_gradient") = py::none(), py::arg("name") = "python");

  // ---- problems ----
  py::class_<dln::Problem>(m, "Problem", "A problem built from a [problem] section")
      .def_readonly("kind", &dln::Problem::kind)
      .def_readonly("rows", &dln::Problem::rows)
      .def_readonly("cols", &dln::Problem::cols)
      .def_property_readonly(
          "loss", [](const dln::Problem& p) -> const Loss& { return *p.loss; },
          py::return_value_policy::reference_internal)
      .def_property_readonly("ground_truth",
                             [](py::object self) -> py::object {
                               const auto& p = self.cast<const dln::Problem&>();
                               if (!p.ground_truth) return py::none();
                               return view_of(*p.ground_truth, self);
                             })
      .def_property_readonly(
          "observations",
          [](const dln::Problem& p) -> py::object {
            if (p.observations.empty()) return py::none();
            std::vector<long> r, c;
            std::vector<double> b;
            for (const auto& o : p.observations) {
              r.push_back(o.row);
              c.push_back(o.col);
              b.push_back(o.value);
            }
            return py::make_tuple(int_array(r), int_array(c), double_array(b));
          },
          "completion: (r, c, b) arrays, else None")
      .def("save_data",
           [](const dln::Problem& p, const std::string& dir) { dln::save_problem_data(p, dir); });
  m.def(
      "make_problem",
      [](py::handle problem) {
        py::dict d;
        if (!problem.is_none()) d["problem"] = problem;
        dln::Config c = to_config(d, py::none());
        dln::memory::require(c.problem.memory_estimate(), 0, "run.max_memory");  // no network yet
        return std::make_unique<dln::Problem>(dln::make_problem(c.problem));
      },
      py::arg("problem") = py::none(),
      "The problem of a [problem] section (dict): loss, ground truth, data");

  // ---- the network ----
  py::class_<dln::Objective>(m, "Objective",
                             "phi(W_1..W_n) = l(W_n...W_1) (Eq. 1) and its gradients")
      .def(py::init([](std::vector<Index> dims, const Loss& loss) {
             return std::make_unique<dln::Objective>(std::move(dims), loss);
           }),
           py::arg("dims"), py::arg("loss"), py::keep_alive<1, 3>())
      .def_property_readonly("dims", &dln::Objective::dims)
      .def_property_readonly("depth", &dln::Objective::depth)
      .def_property_readonly("loss", &dln::Objective::loss,
                             py::return_value_policy::reference_internal)
      .def_property_readonly("gemm_flops", &dln::Objective::gemm_flops)
      .def(
          "value",
          [](dln::Objective& o, py::handle factors) {
            Factors w = to_factors(factors, "factors", &o.dims());
            py::gil_scoped_release release;
            return o.evaluate(w);
          },
          py::arg("factors"))
      .def(
          "value_and_gradient",
          [](dln::Objective& o, py::handle factors) {
            Factors w = to_factors(factors, "factors", &o.dims());
            Factors g = o.make_like();
            double v = 0;
            {
              py::gil_scoped_release release;
              v = o.evaluate_with_gradient(w, g);
            }
            return py::make_tuple(v, factors_to_list(std::move(g)));
          },
          py::arg("factors"), "(phi, [d phi / d W_1, ..., d phi / d W_n])");

  m.def(
      "end_to_end",
      [](py::handle f) { return to_numpy(dln::end_to_end(to_factors(f, "factors"))); },
      py::arg("factors"), "W_{n:1} = W_n ... W_1 (Def. 2)");
  m.def(
      "initialize",
      [](std::vector<Index> dims, const std::string& init, double scale, std::uint64_t seed,
         const std::string& path) {
        dln::InitOptions o;
        o.kind = dln::parse_init(init);
        o.scale = scale;
        o.seed = seed;
        o.path = path;
        return factors_to_list(dln::initialize(dims, o));
      },
      py::arg("dims"), py::arg("init") = "gaussian", py::arg("scale") = 0.1, py::arg("seed") = 0,
      py::arg("path") = "",
      "Initial factors for dims d_0..d_n, as network.init / init_scale / seed / init_path");
  m.def(
      "balanced_factors",
      [](std::vector<Index> dims, py::handle target) {
        return factors_to_list(dln::balanced_factors(dims, to_mat(target, "target")));
      },
      py::arg("dims"), py::arg("target"), "Procedure 1: the SVD of target split evenly");

  // ---- options ----
  py::class_<dln::OptimizerOptions>(m, "OptimizerOptions", "[optimizer] (docs/config.md)")
      .def(py::init<>())
      .def_property(
          "name", [](const dln::OptimizerOptions& o) { return dln::to_string(o.kind); },
          [](dln::OptimizerOptions& o, const std::string& s) { o.kind = dln::parse_optimizer(s); })
      .def_readwrite("lr", &dln::OptimizerOptions::lr)
      .def_readwrite("momentum", &dln::OptimizerOptions::momentum)
      .def_readwrite("alpha", &dln::OptimizerOptions::alpha)
      .def_readwrite("eps", &dln::OptimizerOptions::eps)
      .def_readwrite("bias_correction", &dln::OptimizerOptions::bias_correction)
      .def_readwrite("beta1", &dln::OptimizerOptions::beta1)
      .def_readwrite("beta2", &dln::OptimizerOptions::beta2)
      .def_readwrite("rho", &dln::OptimizerOptions::rho)
      .def_readwrite("time", &dln::OptimizerOptions::time)
      .def_readwrite("rtol", &dln::OptimizerOptions::rtol)
      .def_readwrite("atol", &dln::OptimizerOptions::atol)
      .def_readwrite("max_steps", &dln::OptimizerOptions::max_steps)
      .def_readwrite("depth", &dln::OptimizerOptions::depth)
      .def("validate", &validity<dln::OptimizerOptions>, "'' when valid, else the error");
  py::class_<dln::StopOptions>(m, "StopOptions", "[stop] (docs/config.md)")
      .def(py::init<>())
      .def_readwrite("max_iters", &dln::StopOptions::max_iters)
      .def_readwrite("loss_tol", &dln::StopOptions::loss_tol)
      .def_readwrite("max_seconds", &dln::StopOptions::max_seconds)
      .def_readwrite("divergence_threshold", &dln::StopOptions::divergence_threshold)
      .def("validate", &validity<dln::StopOptions>);
  py::class_<dln::RecordOptions>(m, "RecordOptions", "[record] (docs/config.md)")
      .def(py::init<>())
      .def_readwrite("every", &dln::RecordOptions::every)
      .def_readwrite("singular_values", &dln::RecordOptions::singular_values)
      .def_readwrite("analytic", &dln::RecordOptions::analytic)
      .def_readwrite("end_to_end", &dln::RecordOptions::end_to_end)
      .def("validate", &validity<dln::RecordOptions>);

  py::class_<dln::Optimizer>(m, "Optimizer", "One update W <- W - ... from gradients")
      .def(py::init([](py::handle options, py::handle shape) {
             dln::Config c = dlnpy::options(options, py::none(), py::none());
             return dln::Optimizer::create(c.optimizer, to_factors(shape, "shape"));
           }),
           py::arg("options"), py::arg("factors"))
      .def(
          "step",
          [](dln::Optimizer& o, py::handle factors, py::handle grads) {
            Factors w = to_factors(factors, "factors");
            std::vector<Index> dims = dln::dims_of(w);
            Factors g = to_factors(grads, "grads", &dims);
            o.step(w, g);
            return factors_to_list(std::move(w));
          },
          py::arg("factors"), py::arg("grads"), "Returns the updated factors (new arrays)");

  // ---- training ----
  py::class_<dln::Summary>(m, "Summary", "What train_factors did (Ceres-style)")
      .def_property_readonly("termination",
                             [](const dln::Summary& s) { return dln::to_string(s.termination); })
      .def_readonly("message", &dln::Summary::message)
      .def_readonly("iterations", &dln::Summary::iterations)
      .def_readonly("final_loss", &dln::Summary::final_loss)
      .def_readonly("wall_seconds", &dln::Summary::wall_seconds)
      .def_readonly("record_seconds", &dln::Summary::record_seconds)
      .def_readonly("continuous", &dln::Summary::continuous)
      .def_readonly("time", &dln::Summary::time)
      .def_readonly("rhs_evals", &dln::Summary::rhs_evals)
      .def_readonly("steps_attempted", &dln::Summary::steps_attempted)
      .def_readonly("steps_rejected", &dln::Summary::steps_rejected)
      .def("brief_report", &dln::Summary::BriefReport)
      .def("__repr__", [](const dln::Summary& s) {
        return fmt::format("<dln.Summary {} iterations={} final_loss={:.6g}>",
                           dln::to_string(s.termination), s.iterations, s.final_loss);
      });
  py::class_<FactorsRun>(m, "TrainResult", "The outcome of dln.train_factors")
      .def_property_readonly(
          "summary", [](const FactorsRun& r) -> const dln::Summary& { return r.summary; },
          py::return_value_policy::reference_internal)
      .def_property_readonly("history",
                             [](const FactorsRun& r) { return history_dict(r.summary, r.truth); })
      .def_property_readonly(
          "singular_values",
          [](const FactorsRun& r) { return singular_values_array(r.summary, false); })
      .def_property_readonly(
          "analytic_singular_values",
          [](const FactorsRun& r) { return singular_values_array(r.summary, true); })
      .def_property_readonly("factors",
                             [](py::object self) {
                               py::list l;
                               for (const auto& w : self.cast<const FactorsRun&>().factors)
                                 l.append(view_of(w, self));
                               return l;
                             })
      .def_property_readonly(
          "end_to_end", [](const FactorsRun& r) { return to_numpy(dln::end_to_end(r.factors)); })
      .def_property_readonly(
          "termination", [](const FactorsRun& r) { return dln::to_string(r.summary.termination); })
      .def_property_readonly("final_loss",
                             [](const FactorsRun& r) { return r.summary.final_loss; });

  m.def("train_factors", &train_factors, py::arg("objective"), py::arg("factors"),
        py::arg("optimizer") = py::none(), py::arg("stop") = py::none(),
        py::arg("record") = py::none(), py::kw_only(), py::arg("ground_truth") = py::none(),
        py::arg("callbacks") = py::none(), py::arg("progress") = false,
        R"doc(Trains the given factors (copied in) on an Objective; returns a dln.TrainResult.

optimizer, stop, record: dicts with the keys of the config sections [optimizer], [stop],
[record] (validated like the CLI), or OptimizerOptions / StopOptions / RecordOptions.
ground_truth: W* (adds recon_mse / recon_rel_error to the records).
callbacks: as dln.train. The GIL is released while training; Ctrl-C raises KeyboardInterrupt.)doc");
}

}  // namespace dlnpy
