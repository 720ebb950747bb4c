// The extension module dln._dln (python/dln/__init__.py re-exports it). docs/python.md.
#include "common.hpp"

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
}
