// Claim 1's quantities (Section 3.2 of the notes): the certified global minimum l* of l_p
// regression (Newton), t_{l,eta} / t_{phi,zeta} (iterations to epsilon), the best-rate search that
// approximates t_l = min_eta t_{l,eta}, and the discrete end-to-end update
// vec(W) <- vec(W) - zeta P(W) vec(grad l(W)) run on a loss given as a Python callable.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "common.hpp"
#include "dln/acceleration/claim1.hpp"
#include "dln/acceleration/lp_optimum.hpp"
#include "dln/dynamics/end_to_end.hpp"

namespace dlnpy {

namespace {

namespace acc = dln::acceleration;

std::string type_name(py::handle h) { return py::str(py::type::handle_of(h).attr("__name__")); }

double number(py::handle h, const std::string& what) {
  try {
    return py::float_(py::reinterpret_borrow<py::object>(h)).cast<double>();
  } catch (py::error_already_set&) {
    throw py::value_error(fmt::format("{} must be a number, got {}", what, type_name(h)));
  }
}

long integer(py::handle h, const std::string& what) {
  try {
    return py::int_(py::reinterpret_borrow<py::object>(h)).cast<long>();
  } catch (py::error_already_set&) {
    throw py::value_error(fmt::format("{} must be an integer, got {}", what, type_name(h)));
  }
}

// What `run(rate)` returned, as a RatePoint: a tuple (final_loss, iterations, diverged), a dict
// with final_loss (and optionally iterations, diverged), or a dln.Result / dln.TrainResult /
// dln.Summary (final_loss, iterations, termination == "diverged"). A non-finite final loss counts
// as diverged (never the best, and worse than any finite one).
acc::RatePoint rate_point(double rate, py::handle r) {
  acc::RatePoint p;
  p.rate = rate;
  const std::string where = fmt::format("run({})", rate);
  if (py::isinstance<py::tuple>(r) || py::isinstance<py::list>(r)) {
    auto s = py::reinterpret_borrow<py::sequence>(r);
    if (py::len(s) != 3)
      throw py::value_error(
          fmt::format("{}: expected (final_loss, iterations, diverged), got a sequence of {}",
                      where, py::len(s)));
    p.final_loss = number(s[0], where + ": final_loss");
    p.iterations = integer(s[1], where + ": iterations");
    p.diverged = py::bool_(s[2]).cast<bool>();
  } else if (py::isinstance<py::dict>(r)) {
    auto d = py::reinterpret_borrow<py::dict>(r);
    if (!d.contains("final_loss"))
      throw py::value_error(fmt::format("{}: the dict has no 'final_loss'", where));
    p.final_loss = number(d["final_loss"], where + ": final_loss");
    if (d.contains("iterations")) p.iterations = integer(d["iterations"], where + ": iterations");
    if (d.contains("diverged")) p.diverged = py::bool_(d["diverged"]).cast<bool>();
  } else if (py::hasattr(r, "final_loss") && py::hasattr(r, "termination")) {
    p.final_loss = number(r.attr("final_loss"), where + ": final_loss");
    p.diverged = py::str(r.attr("termination")).cast<std::string>() == "diverged";
    if (py::hasattr(r, "iterations")) {
      p.iterations = integer(r.attr("iterations"), where + ": iterations");
    } else if (py::hasattr(r, "summary")) {
      py::object s = r.attr("summary");
      p.iterations = integer(py::isinstance<py::dict>(s) ? py::object(s["iterations"])
                                                         : py::object(s.attr("iterations")),
                             where + ": iterations");
    }
  } else {
    throw py::value_error(
        fmt::format("{}: expected (final_loss, iterations, diverged), a dict with final_loss, or a "
                    "dln.Result / dln.TrainResult, got {}",
                    where, type_name(r)));
  }
  if (!std::isfinite(p.final_loss)) p.diverged = true;
  return p;
}

// The search runs with the GIL held: nearly all its time is in `run` (Python, which may itself
// release the GIL, as dln.train does). A Python exception in `run` is a py::error_already_set
// that unwinds the C++ search (RAII only) and is restored as the original exception.
std::function<acc::RatePoint(double)> python_run(py::handle run) {
  if (!PyCallable_Check(run.ptr()))
    throw py::value_error(
        fmt::format("run: expected a callable rate -> (final_loss, iterations, diverged), got {}",
                    type_name(run)));
  auto f = py::reinterpret_borrow<py::object>(run);
  return [f](double rate) { return rate_point(rate, f(rate)); };
}

py::dict point_dict(const acc::RatePoint& p) {
  py::dict d;
  d["rate"] = p.rate;
  d["final_loss"] = p.final_loss;
  d["iterations"] = p.iterations;
  d["diverged"] = p.diverged;
  return d;
}

py::dict search_dict(const acc::RateSearch& s) {
  py::dict d;
  py::list points;
  for (const auto& p : s.points) points.append(point_dict(p));
  d["points"] = points;
  const acc::RatePoint* best = s.best_point();
  d["best"] = best ? py::object(py::int_(s.best)) : py::object(py::none());
  d["best_rate"] = best ? py::object(py::float_(best->rate)) : py::object(py::none());
  d["interior"] = s.interior;
  return d;
}

// (iteration, loss) columns of a history: a dict with 'iteration' and 'loss' (Result.history,
// TrainResult.history, end_to_end_descent's result), a dln.load_run dict, or an object with a
// `history` attribute (dln.Result, dln.TrainResult).
std::pair<py::object, py::object> history_columns(py::handle h) {
  py::object d = py::reinterpret_borrow<py::object>(h);
  if (!py::isinstance<py::dict>(d) && py::hasattr(d, "history")) d = d.attr("history");
  if (py::isinstance<py::dict>(d)) {
    auto dict = py::reinterpret_borrow<py::dict>(d);
    if (!dict.contains("iteration") && dict.contains("history")) {
      d = dict["history"];
      if (py::isinstance<py::dict>(d)) dict = py::reinterpret_borrow<py::dict>(d);
    }
    if (py::isinstance<py::dict>(d) && dict.contains("iteration") && dict.contains("loss"))
      return {dict["iteration"], dict["loss"]};
  }
  throw py::value_error(fmt::format(
      "history: expected a dict with 'iteration' and 'loss' columns, or a result with .history, "
      "got {}",
      type_name(h)));
}

py::object iterations_or_none(long t) {
  return t == acc::kNever ? py::object(py::none()) : py::object(py::int_(t));
}

py::object iterations_to_epsilon(py::handle iterations, py::handle losses, double l_star,
                                 double epsilon) {
  const std::vector<Index> it = to_indices(iterations, "iterations");
  const std::vector<double> loss = to_doubles(losses, "losses");
  return iterations_or_none(
      acc::iterations_to_epsilon(std::vector<long>(it.begin(), it.end()), loss, l_star, epsilon));
}

// Claim 1's discretization, vec(W_{t+1}) = vec(W_t) - zeta P(W_t) vec(grad l(W_t)), on the loss
// of grad_fn(W) -> (l(W), grad l(W)). Records (t, l(W_t)) at t % record_every == 0 and at the end;
// stops early when l is NaN/Inf or above divergence_threshold (as stop.divergence_threshold).
py::dict end_to_end_descent(py::handle w0, py::handle grad_fn, int depth, double zeta,
                            long iterations, long record_every, double divergence_threshold) {
  if (!PyCallable_Check(grad_fn.ptr()))
    throw py::value_error(fmt::format("grad_fn: expected a callable W -> (loss, gradient), got {}",
                                      type_name(grad_fn)));
  if (depth < 1)
    throw py::value_error(fmt::format("end_to_end_descent: depth must be >= 1, got {}", depth));
  if (!(zeta > 0) || !std::isfinite(zeta))
    throw py::value_error(
        fmt::format("end_to_end_descent: zeta must be finite and > 0, got {}", zeta));
  if (iterations < 0)
    throw py::value_error(
        fmt::format("end_to_end_descent: iterations must be >= 0, got {}", iterations));
  if (record_every < 1)
    throw py::value_error(
        fmt::format("end_to_end_descent: record_every must be >= 1, got {}", record_every));
  if (!(divergence_threshold > 0))
    throw py::value_error(fmt::format(
        "end_to_end_descent: divergence_threshold must be > 0, got {}", divergence_threshold));
  Mat w = to_mat(w0, "w0");
  auto fn = py::reinterpret_borrow<py::object>(grad_fn);
  std::vector<long> rec_it;
  std::vector<double> rec_loss;
  double loss = 0;
  bool diverged = false;
  long t = 0;
  for (;; ++t) {
    py::object r = fn(to_numpy_copy(w));
    if (!py::isinstance<py::tuple>(r) || py::len(r) != 2)
      throw py::value_error("grad_fn: must return (loss, gradient)");
    auto pair = py::reinterpret_borrow<py::tuple>(r);
    loss = number(pair[0], "grad_fn: the loss");
    diverged = !std::isfinite(loss) || loss > divergence_threshold;
    if (t % record_every == 0 || t == iterations || diverged) {
      rec_it.push_back(t);
      rec_loss.push_back(loss);
    }
    if (diverged || t == iterations) break;
    const Mat g = to_mat(pair[1], "grad_fn: the gradient", w.rows(), w.cols());
    py::gil_scoped_release release;
    w = dln::end_to_end_discrete_step(w, g, depth, zeta);
  }
  py::dict d;
  d["iteration"] = int_array(rec_it);
  d["loss"] = double_array(rec_loss);
  d["W"] = to_numpy(std::move(w));
  d["final_loss"] = loss;
  d["iterations"] = t;
  d["diverged"] = diverged;
  return d;
}

}  // namespace

void init_acceleration(py::module_& m) {
  m.def(
      "lp_regression_optimum",
      [](py::handle x, py::handle y, int p, double grad_tol, int max_iters) {
        const Mat xm = to_mat(x, "X");
        const Mat ym = to_mat(y, "Y", -1, xm.cols());
        acc::LpOptimumOptions o;
        o.grad_tol = grad_tol;
        o.max_iters = max_iters;
        acc::LpOptimum r;
        {
          py::gil_scoped_release release;
          r = acc::lp_regression_optimum(xm, ym, p, o);
        }
        py::dict d;
        d["w"] = to_numpy(std::move(r.w));
        d["loss"] = r.loss;
        d["grad_norm"] = r.grad_norm;
        d["iterations"] = r.iterations;
        d["converged"] = r.converged;
        return d;
      },
      py::arg("X"), py::arg("Y"), py::arg("p"), py::arg("grad_tol") = 1e-13,
      py::arg("max_iters") = 500,
      "Claim 1: l* = min_W 1/m sum ||W x_i - y_i||_p^p (Newton, certified by grad_norm)");

  m.def("iterations_to_epsilon", &iterations_to_epsilon, py::arg("iterations"), py::arg("losses"),
        py::arg("l_star"), py::arg("epsilon"),
        "Claim 1: the first recorded iteration with loss - l_star <= epsilon, None if never");
  m.def(
      "iterations_to_epsilon",
      [](py::handle history, double l_star, double epsilon) {
        auto [it, loss] = history_columns(history);
        return iterations_to_epsilon(it, loss, l_star, epsilon);
      },
      py::arg("history"), py::arg("l_star"), py::arg("epsilon"),
      "The same on a history: a dict with 'iteration' and 'loss', or a result with .history");

  m.def(
      "search_best_rate",
      [](py::handle run, double start, double factor, int patience, int max_points, double min_rate,
         double max_rate) {
        acc::RateSearchOptions o;
        o.start = start;
        o.factor = factor;
        o.patience = patience;
        o.max_points = max_points;
        o.min_rate = min_rate;
        o.max_rate = max_rate;
        return search_dict(acc::search_best_rate(python_run(run), o));
      },
      py::arg("run"), py::arg("start"), py::arg("factor") = 2.0, py::arg("patience") = 2,
      py::arg("max_points") = 40, py::arg("min_rate") = 0.0,
      py::arg("max_rate") = std::numeric_limits<double>::infinity(),
      "Claim 1's t_l = min_eta t_{l,eta}: the rate of the grid start * factor^k whose run "
      "reaches the lowest final loss");
  m.def(
      "best_rate_on_grid",
      [](py::handle run, py::handle grid) {
        return search_dict(acc::best_rate_on_grid(python_run(run), to_doubles(grid, "grid")));
      },
      py::arg("run"), py::arg("grid"), "Runs every rate of grid; the lowest final loss wins");
  m.def("grid_index", &acc::grid_index, py::arg("rate"), py::arg("start"), py::arg("factor"),
        "k of the grid point start * factor^k closest to rate");

  m.def("end_to_end_descent", &end_to_end_descent, py::arg("w0"), py::arg("grad_fn"),
        py::arg("depth"), py::arg("zeta"), py::arg("iterations"), py::arg("record_every") = 1,
        py::kw_only(), py::arg("divergence_threshold") = 1e100,
        "Claim 1: vec(W) <- vec(W) - zeta P(W) vec(grad) on grad_fn(W) -> (loss, grad)");
  // Claim 1's single update under a shorter name (init_diagnostics defines it first).
  m.attr("end_to_end_step") = m.attr("end_to_end_discrete_step");
}

}  // namespace dlnpy
