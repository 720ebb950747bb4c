// The extension module dln._dln (python/dln/__init__.py re-exports it). docs/python.md.
#include "common.hpp"
#include "dln/core/blas.hpp"
#include "dln/core/blas_kernel.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_dln, m) {
  m.doc() = "dln: deep linear neural networks (C++ engine). See docs/python.md.";
  m.attr("__version__") = DLN_VERSION;
  // dln::Error (bad config, data or options) -> ValueError with the CLI's message.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const dln::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  dlnpy::init_config_api(m);
  dlnpy::init_objects(m);
  dlnpy::init_diagnostics(m);
  dlnpy::init_baselines(m);
  dlnpy::init_acceleration(m);
  dlnpy::init_tensors(m);
  // The BLAS kernel, chosen and self-tested at import as the CLI does at start-up (docs/blas.md).
  // The OpenBLAS in this process is numpy's too, so numpy gets the same kernel.
  m.def(
      "blas_info",
      [] {
        const auto& k = dln::blas::select_kernel();
        py::dict d;
        d["corename"] = k.corename;
        d["openblas_choice"] = k.openblas_choice;
        d["cpu_isa"] = k.cpu_isa;
        d["cpu_features"] = dln::blas::cpu_features();
        d["reason"] = k.reason;
        d["override"] = k.override_env;
        d["switched"] = k.switched;
        d["self_test_passed"] = k.self_test_passed;
        d["self_test_error"] = k.self_test_error;
        d["warning"] = k.warning;
        d["threads"] = dln::blas::threads();
        return d;
      },
      "The BLAS kernel dln selected, why, and its self-test result (docs/blas.md).");
  try {
    dln::blas::select_kernel();
  } catch (const dln::Error& e) {
    throw py::import_error(std::string("dln: ") + e.what());
  }
}
