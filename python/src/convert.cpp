// numpy <-> Eigen conversions, Python callbacks and history tables for the bindings.
#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "common.hpp"

namespace dlnpy {

namespace {

py::module_& numpy() {
  // Leaked on purpose: a static py::object would be released after the interpreter is finalized.
  static auto* np = new py::module_(py::module_::import("numpy"));
  return *np;
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += fmt::format("{}{}", i ? ", " : "", a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// obj as a numpy array of float64 in Fortran order (a copy only when needed), after the checks.
using RealArray = py::array_t<double, py::array::f_style | py::array::forcecast>;

RealArray real_array(py::handle obj, const std::string& name, int ndim) {
  py::array a;
  if (py::isinstance<py::array>(obj)) {
    a = py::reinterpret_borrow<py::array>(obj);
  } else {
    try {
      a = numpy().attr("asarray")(obj);
    } catch (py::error_already_set&) {
      throw py::value_error(fmt::format("{}: expected an array of numbers", name));
    }
  }
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw py::value_error(fmt::format("{}: expected a real (float64) array, got dtype {}", name,
                                      py::str(a.dtype()).cast<std::string>()));
  if (a.ndim() != ndim)
    throw py::value_error(
        fmt::format("{}: expected a {}-D array, got shape {}", name, ndim, shape_str(a)));
  return RealArray::ensure(a);
}

}  // namespace

py::array to_numpy(Mat&& m) {
  if (m.size() == 0) return numpy().attr("zeros")(py::make_tuple(m.rows(), m.cols()), "f8", "F");
  auto* p = new Mat(std::move(m));
  py::capsule owner(p, [](void* q) { delete static_cast<Mat*>(q); });
  return py::array_t<double, py::array::f_style>(
      {p->rows(), p->cols()},
      {static_cast<py::ssize_t>(sizeof(double)),
       static_cast<py::ssize_t>(sizeof(double)) * p->rows()},
      p->data(), owner);
}

py::array to_numpy(Vec&& v) {
  if (v.size() == 0) return numpy().attr("zeros")(0, "f8");
  auto* p = new Vec(std::move(v));
  py::capsule owner(p, [](void* q) { delete static_cast<Vec*>(q); });
  return py::array_t<double>({p->size()}, {static_cast<py::ssize_t>(sizeof(double))}, p->data(),
                             owner);
}

py::array to_numpy_copy(const Mat& m) { return to_numpy(Mat(m)); }
py::array to_numpy_copy(const Vec& v) { return to_numpy(Vec(v)); }

py::array view_of(const Mat& m, py::handle owner) {
  if (m.size() == 0) return to_numpy(Mat(m.rows(), m.cols()));
  py::array a(py::dtype::of<double>(), {m.rows(), m.cols()},
              {static_cast<py::ssize_t>(sizeof(double)),
               static_cast<py::ssize_t>(sizeof(double)) * m.rows()},
              m.data(), owner);
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

py::list factors_to_list(Factors&& w) {
  py::list out;
  for (auto& f : w) out.append(to_numpy(std::move(f)));
  return out;
}

py::list factors_copy(const Factors& w) {
  py::list out;
  for (const auto& f : w) out.append(to_numpy_copy(f));
  return out;
}

Mat to_mat(py::handle obj, const std::string& name, Index rows, Index cols) {
  auto a = real_array(obj, name, 2);
  const Index r = a.shape(0), c = a.shape(1);
  if ((rows >= 0 && r != rows) || (cols >= 0 && c != cols))
    throw py::value_error(fmt::format("{}: expected shape ({}, {}), got ({}, {})", name,
                                      rows >= 0 ? std::to_string(rows) : std::string("*"),
                                      cols >= 0 ? std::to_string(cols) : std::string("*"), r, c));
  Mat m(r, c);
  if (m.size() > 0)
    std::memcpy(m.data(), a.data(), static_cast<std::size_t>(m.size()) * sizeof(double));
  return m;
}

Vec to_vec(py::handle obj, const std::string& name, Index size) {
  auto a = real_array(obj, name, 1);
  const Index n = a.shape(0);
  if (size >= 0 && n != size)
    throw py::value_error(fmt::format("{}: expected shape ({},), got ({},)", name, size, n));
  Vec v(n);
  if (n > 0) std::memcpy(v.data(), a.data(), static_cast<std::size_t>(n) * sizeof(double));
  return v;
}

std::vector<double> to_doubles(py::handle obj, const std::string& name) {
  const Vec v = to_vec(obj, name);
  return std::vector<double>(v.data(), v.data() + v.size());
}

std::vector<Index> to_indices(py::handle obj, const std::string& name) {
  py::array a = numpy().attr("asarray")(obj);
  const char kind = a.dtype().kind();
  if (a.size() > 0 && kind != 'i' && kind != 'u')
    throw py::value_error(fmt::format("{}: expected an integer array, got dtype {}", name,
                                      py::str(a.dtype()).cast<std::string>()));
  if (a.ndim() != 1)
    throw py::value_error(
        fmt::format("{}: expected a 1-D array, got shape {}", name, shape_str(a)));
  auto i64 = py::array_t<std::int64_t, py::array::forcecast>::ensure(a);
  std::vector<Index> out(static_cast<std::size_t>(i64.size()));
  auto u = i64.unchecked<1>();
  for (py::ssize_t i = 0; i < i64.size(); ++i) out[static_cast<std::size_t>(i)] = u(i);
  return out;
}

Factors to_factors(py::handle obj, const std::string& name, const std::vector<Index>* dims) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::value_error(fmt::format("{}: expected a list of 2-D arrays W_1..W_n", name));
  auto seq = py::reinterpret_borrow<py::sequence>(obj);
  const auto n = static_cast<std::size_t>(py::len(seq));
  if (n == 0) throw py::value_error(fmt::format("{}: expected at least one factor", name));
  if (dims && n + 1 != dims->size())
    throw py::value_error(
        fmt::format("{}: expected {} factors (depth), got {}", name, dims->size() - 1, n));
  Factors w;
  for (std::size_t j = 0; j < n; ++j) {
    const std::string nj = fmt::format("{}[{}]", name, j);
    if (dims)
      w.push_back(to_mat(seq[j], nj, (*dims)[j + 1], (*dims)[j]));
    else
      w.push_back(to_mat(seq[j], nj));
  }
  return w;
}

py::array int_array(const std::vector<long>& v) {
  py::array_t<std::int64_t> a(static_cast<py::ssize_t>(v.size()));
  auto m = a.mutable_unchecked<1>();
  for (std::size_t i = 0; i < v.size(); ++i) m(static_cast<py::ssize_t>(i)) = v[i];
  return a;
}

py::array double_array(const std::vector<double>& v) {
  py::array_t<double> a(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(double));
  return a;
}

// ---- callbacks ------------------------------------------------------------------------------

void PendingError::rethrow() {
  if (error) {
    py::error_already_set e = std::move(*error);
    error.reset();
    throw e;
  }
}

PyCallback::PyCallback(py::handle obj, std::shared_ptr<PendingError> pending,
                       const std::string& name)
    : pending_(std::move(pending)) {
  auto method = [&](const char* m) -> py::object {
    if (!py::hasattr(obj, m)) return py::none();
    py::object f = obj.attr(m);
    return PyCallable_Check(f.ptr()) ? f : py::object(py::none());
  };
  step_ = method("on_step");
  record_ = method("on_record");
  if (step_.is_none() && record_.is_none()) {
    if (!PyCallable_Check(obj.ptr()))
      throw py::value_error(fmt::format(
          "{}: expected a callable or an object with on_step / on_record methods", name));
    record_ = py::reinterpret_borrow<py::object>(obj);
  }
  if (py::hasattr(obj, "every")) {
    every_ = obj.attr("every").cast<long>();
    if (every_ < 1) throw py::value_error(fmt::format("{}.every: must be >= 1", name));
  }
}

PyCallback::~PyCallback() {
  py::gil_scoped_acquire gil;
  step_ = py::object();
  record_ = py::object();
}

namespace {
// True: continue. A raised exception is stored and stops the run.
bool call_python(const py::object& f, PendingError& pending, auto&&... args) {
  try {
    py::object r = f(std::forward<decltype(args)>(args)...);
    return r.is_none() || r.cast<bool>();
  } catch (py::error_already_set& e) {
    pending.error = std::move(e);
    return false;
  } catch (py::cast_error&) {
    return true;
  }
}
}  // namespace

bool PyCallback::on_step(long iteration, double loss) {
  if (step_.is_none() || iteration % every_ != 0) return true;
  py::gil_scoped_acquire gil;
  if (pending_->error) return false;
  return call_python(step_, *pending_, iteration, loss);
}

bool PyCallback::on_record(const dln::HistoryRow& row, const Factors& w) {
  if (record_.is_none()) return true;
  py::gil_scoped_acquire gil;
  if (pending_->error) return false;
  return call_python(record_, *pending_, row_dict(row), factors_copy(w));
}

bool SignalCheck::check() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(100)) return true;
  last_ = now;
  py::gil_scoped_acquire gil;
  if (pending_->error) return false;
  if (PyErr_CheckSignals() != 0) {
    pending_->error = py::error_already_set();
    return false;
  }
  return true;
}

bool SignalCheck::on_step(long, double) { return check(); }
bool SignalCheck::on_record(const dln::HistoryRow&, const Factors&) { return check(); }

CallbackSet::CallbackSet(py::handle callbacks, bool progress, long max_iters) {
  if (!callbacks.is_none()) {
    if (PyCallable_Check(callbacks.ptr()) || py::hasattr(callbacks, "on_step") ||
        py::hasattr(callbacks, "on_record")) {
      owned.push_back(std::make_unique<PyCallback>(callbacks, pending, "callbacks"));
    } else {
      std::size_t i = 0;
      for (auto cb : py::iter(callbacks))
        owned.push_back(
            std::make_unique<PyCallback>(cb, pending, fmt::format("callbacks[{}]", i++)));
    }
  }
  if (progress) owned.push_back(std::make_unique<dln::ProgressBar>(max_iters));
  owned.push_back(std::make_unique<SignalCheck>(pending));
  for (auto& c : owned) pointers.push_back(c.get());
}

// ---- history --------------------------------------------------------------------------------

py::dict row_dict(const dln::HistoryRow& h) {
  py::dict d;
  d["iteration"] = h.iteration;
  d["time"] = h.time;
  d["loss"] = h.loss;
  d["grad_norm"] = h.grad_norm;
  d["unbalancedness"] = h.unbalancedness;
  d["fro_norm"] = h.metrics.fro_norm;
  d["nuclear_norm"] = h.metrics.nuclear_norm;
  d["spectral_norm"] = h.metrics.spectral_norm;
  d["effective_rank"] = h.metrics.effective_rank;
  if (h.metrics.recon_mse) d["recon_mse"] = *h.metrics.recon_mse;
  if (h.metrics.recon_rel_error) d["recon_rel_error"] = *h.metrics.recon_rel_error;
  d["seconds"] = h.seconds;
  d["singular_values"] = to_numpy_copy(h.metrics.singular_values);
  if (h.analytic_sigma.size() > 0) d["analytic_sigma"] = to_numpy_copy(h.analytic_sigma);
  return d;
}

py::dict history_dict(const dln::Summary& s, bool truth) {
  const auto& h = s.history;
  auto col = [&](auto get) {
    std::vector<double> v;
    v.reserve(h.size());
    for (const auto& r : h) v.push_back(get(r));
    return double_array(v);
  };
  py::dict d;
  std::vector<long> it;
  for (const auto& r : h) it.push_back(r.iteration);
  d["iteration"] = int_array(it);
  if (s.continuous) d["time"] = col([](const dln::HistoryRow& r) { return r.time; });
  d["loss"] = col([](const dln::HistoryRow& r) { return r.loss; });
  d["grad_norm"] = col([](const dln::HistoryRow& r) { return r.grad_norm; });
  d["unbalancedness"] = col([](const dln::HistoryRow& r) { return r.unbalancedness; });
  d["fro_norm"] = col([](const dln::HistoryRow& r) { return r.metrics.fro_norm; });
  d["nuclear_norm"] = col([](const dln::HistoryRow& r) { return r.metrics.nuclear_norm; });
  d["spectral_norm"] = col([](const dln::HistoryRow& r) { return r.metrics.spectral_norm; });
  d["effective_rank"] = col([](const dln::HistoryRow& r) { return r.metrics.effective_rank; });
  if (truth) {
    d["recon_mse"] = col([](const dln::HistoryRow& r) { return r.metrics.recon_mse.value_or(0); });
    d["recon_rel_error"] =
        col([](const dln::HistoryRow& r) { return r.metrics.recon_rel_error.value_or(0); });
  }
  d["seconds"] = col([](const dln::HistoryRow& r) { return r.seconds; });
  return d;
}

py::array singular_values_array(const dln::Summary& s, bool analytic) {
  Index k = 0;
  auto vec = [&](const dln::HistoryRow& r) -> const Vec& {
    return analytic ? r.analytic_sigma : r.metrics.singular_values;
  };
  for (const auto& r : s.history) k = std::max(k, vec(r).size());
  Mat m = Mat::Constant(static_cast<Index>(s.history.size()), k,
                        std::numeric_limits<double>::quiet_NaN());
  for (std::size_t i = 0; i < s.history.size(); ++i) {
    const Vec& v = vec(s.history[i]);
    m.row(static_cast<Index>(i)).head(v.size()) = v.transpose();
  }
  return to_numpy(std::move(m));
}

}  // namespace dlnpy
