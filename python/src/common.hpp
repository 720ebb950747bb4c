// Shared helpers of the Python bindings (python/src/*.cpp): numpy <-> Eigen conversions with the
// rules of docs/python.md, callbacks written in Python, and the entry points of each topic.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dln/config/config.hpp"
#include "dln/core/types.hpp"
#include "dln/model/network.hpp"
#include "dln/optimizers/train.hpp"

namespace dlnpy {

namespace py = pybind11;
using dln::Factors;
using dln::Index;
using dln::Mat;
using dln::Vec;

// ---- Eigen -> numpy -------------------------------------------------------------------------
// Moves the matrix into a capsule owned by the returned array: no copy, Fortran order.
py::array to_numpy(Mat&& m);
py::array to_numpy(Vec&& v);
py::array to_numpy_copy(const Mat& m);
py::array to_numpy_copy(const Vec& v);
// A read-only view of m (no copy) that keeps `owner` alive.
py::array view_of(const Mat& m, py::handle owner);
py::list factors_to_list(Factors&& w);
py::list factors_copy(const Factors& w);

// ---- numpy -> Eigen -------------------------------------------------------------------------
// Real arrays of any integer or floating dtype and any memory order are accepted and copied into
// a column-major float64 matrix (one memcpy for float64 Fortran-ordered input). complex, bool,
// object and string arrays, the wrong number of dimensions, or a shape other than the expected
// one (rows/cols >= 0) raise ValueError naming the argument.
Mat to_mat(py::handle obj, const std::string& name, Index rows = -1, Index cols = -1);
Vec to_vec(py::handle obj, const std::string& name, Index size = -1);
std::vector<double> to_doubles(py::handle obj, const std::string& name);
// Integer dtypes only (floats are rejected: indices must be exact).
std::vector<Index> to_indices(py::handle obj, const std::string& name);
// A list/tuple of 2-D arrays; with dims (d_0..d_n), factor j must be d_{j+1} x d_j.
Factors to_factors(py::handle obj, const std::string& name,
                   const std::vector<Index>* dims = nullptr);

// Helpers for dicts of results.
py::array int_array(const std::vector<long>& v);
py::array double_array(const std::vector<double>& v);

// ---- callbacks ------------------------------------------------------------------------------
// Where a Python exception raised during training (in a callback, or a Ctrl-C seen by the
// signal check) waits until the GIL is back and training has returned.
struct PendingError {
  std::optional<py::error_already_set> error;
  // Rethrows the stored exception (call with the GIL held).
  void rethrow();
};

// A Python callback: an object with on_step(iteration, loss) and/or on_record(row, factors)
// methods (returning False stops the run; None or True continues), or a plain callable used as
// on_record. `every` (attribute, default 1) thins on_step calls to iterations divisible by it.
class PyCallback final : public dln::Callback {
 public:
  PyCallback(py::handle obj, std::shared_ptr<PendingError> pending, const std::string& name);
  ~PyCallback() override;
  bool on_step(long iteration, double loss) override;
  bool on_record(const dln::HistoryRow& row, const Factors& w) override;

 private:
  py::object step_, record_;
  long every_ = 1;
  std::shared_ptr<PendingError> pending_;
};

// Checks for Ctrl-C (PyErr_CheckSignals with the GIL) at most every 0.1 s of training.
class SignalCheck final : public dln::Callback {
 public:
  explicit SignalCheck(std::shared_ptr<PendingError> pending) : pending_(std::move(pending)) {}
  bool on_step(long iteration, double loss) override;
  bool on_record(const dln::HistoryRow& row, const Factors& w) override;

 private:
  bool check();
  std::shared_ptr<PendingError> pending_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Python callbacks + the signal check (+ a progress bar), owned together.
struct CallbackSet {
  std::shared_ptr<PendingError> pending = std::make_shared<PendingError>();
  std::vector<std::unique_ptr<dln::Callback>> owned;
  std::vector<dln::Callback*> pointers;
  CallbackSet(py::handle callbacks, bool progress, long max_iters);
};

// A history row as a dict (callbacks) and a whole history as a dict of numpy columns, with the
// columns of history.csv (docs/run-directory.md).
py::dict row_dict(const dln::HistoryRow& row);
py::dict history_dict(const dln::Summary& summary, bool ground_truth);
// Records x K matrix of top singular values (NaN-padded), and of analytic singular values.
py::array singular_values_array(const dln::Summary& summary, bool analytic);

// A config from a dict of sections (as the TOML file), a TOML file path, or None (defaults),
// with `section.key=value` overrides: parse_config_table(), the CLI's validation and messages.
dln::Config to_config(py::handle config, py::handle overrides);

// ---- registration, one per source file ------------------------------------------------------
void init_config_api(py::module_& m);
void init_objects(py::module_& m);
void init_diagnostics(py::module_& m);
void init_baselines(py::module_& m);
void init_acceleration(py::module_& m);
void init_tensors(py::module_& m);
// dln.train on a tensor problem (problem.kind = "tensor_*"): a dln.TensorResult.
py::object train_tensor(const dln::Config& c, const std::string& dir, py::handle observations,
                        CallbackSet& cbs);

}  // namespace dlnpy
