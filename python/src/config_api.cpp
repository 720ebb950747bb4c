// Config level: dln.train(config) -> Result, through the same parsing and validation as
// `dln train` (parse_config_table), the same run() and the same run-directory writer.
#include <fmt/format.h>

#include <filesystem>

#include "common.hpp"
#include "dln/config/config_table.hpp"
#include "dln/io/files.hpp"
#include "dln/run/run_dir.hpp"

namespace dlnpy {

namespace {

toml::array to_toml_array(py::handle seq, const std::string& path);

// One Python value as a TOML node; None is skipped by the caller (key absent: default).
void insert_value(toml::table& t, const std::string& key, py::handle v, const std::string& path) {
  auto np_kind = [&](char k) {
    return py::hasattr(v, "dtype") && py::hasattr(v, "ndim") && v.attr("ndim").cast<int>() == 0 &&
           v.attr("dtype").attr("kind").cast<std::string>() == std::string(1, k);
  };
  if (py::isinstance<py::bool_>(v) || np_kind('b')) {
    t.insert_or_assign(key, v.cast<bool>());
  } else if (py::isinstance<py::int_>(v) || np_kind('i') || np_kind('u')) {
    try {
      t.insert_or_assign(key, py::int_(py::reinterpret_borrow<py::object>(v)).cast<std::int64_t>());
    } catch (py::cast_error&) {
      throw py::value_error(fmt::format("{}: integer out of range", path));
    }
  } else if (py::isinstance<py::float_>(v) || np_kind('f')) {
    t.insert_or_assign(key, v.cast<double>());
  } else if (py::isinstance<py::str>(v)) {
    t.insert_or_assign(key, v.cast<std::string>());
  } else if (py::hasattr(v, "__fspath__")) {
    t.insert_or_assign(key, py::module_::import("os").attr("fspath")(v).cast<std::string>());
  } else if (py::isinstance<py::dict>(v)) {
    toml::table sub;
    for (auto [k, x] : py::reinterpret_borrow<py::dict>(v)) {
      if (!py::isinstance<py::str>(k))
        throw py::value_error(fmt::format("{}: keys must be strings", path));
      const std::string ks = k.cast<std::string>();
      if (!x.is_none()) insert_value(sub, ks, x, path + "." + ks);
    }
    t.insert_or_assign(key, std::move(sub));
  } else if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v) ||
             py::isinstance<py::array>(v)) {
    t.insert_or_assign(key, to_toml_array(v, path));
  } else {
    throw py::value_error(
        fmt::format("{}: unsupported value of type {}", path,
                    py::str(py::type::of(v).attr("__name__")).cast<std::string>()));
  }
}

toml::array to_toml_array(py::handle seq, const std::string& path) {
  toml::array arr;
  py::object list = py::isinstance<py::array>(seq) ? seq.attr("tolist")()
                                                   : py::reinterpret_borrow<py::object>(seq);
  for (auto x : list) {
    toml::table one;
    insert_value(one, "v", x, path);
    arr.push_back(*one.get("v"));
  }
  return arr;
}

std::vector<std::string> to_strings(py::handle seq) {
  std::vector<std::string> out;
  if (seq.is_none()) return out;
  if (py::isinstance<py::str>(seq)) return {seq.cast<std::string>()};
  for (auto s : seq) out.push_back(py::str(s).cast<std::string>());
  return out;
}

}  // namespace

toml::table dict_to_table(py::handle config) {
  toml::table t;
  if (config.is_none()) return t;
  if (!py::isinstance<py::dict>(config))
    throw py::value_error("config: expected a dict of sections (or a TOML file path)");
  for (auto [k, v] : py::reinterpret_borrow<py::dict>(config)) {
    if (!py::isinstance<py::str>(k)) throw py::value_error("config: keys must be strings");
    const std::string ks = k.cast<std::string>();
    if (!v.is_none()) insert_value(t, ks, v, ks);
  }
  return t;
}

// A config from a dict (sections as in the TOML file), a TOML file path, or None (defaults).
dln::Config to_config(py::handle config, py::handle overrides) {
  const auto sets = to_strings(overrides);
  if (py::isinstance<py::str>(config) || py::hasattr(config, "__fspath__")) {
    const auto path = py::module_::import("os").attr("fspath")(config).cast<std::string>();
    return dln::load_config(path, sets);
  }
  return dln::parse_config_table(dict_to_table(config), sets);
}

namespace {

py::object train(py::handle config, py::handle out, py::handle callbacks, py::handle overrides,
                 bool progress, py::handle observations) {
  dln::Config c = to_config(config, overrides);
  std::string dir;
  if (!out.is_none()) dir = py::module_::import("os").attr("fspath")(out).cast<std::string>();
  CallbackSet cbs(callbacks, progress, c.stop.max_iters);
  if (c.problem.tensor()) return train_tensor(c, dir, observations, cbs);
  if (!observations.is_none())
    throw py::value_error("observations: only read by problem.kind = \"tensor_completion\"");
  auto r = std::make_unique<dln::RunResult>();
  {
    py::gil_scoped_release release;
    if (!dir.empty()) dln::io::ensure_writable_directory(dir);  // fail before training
    *r = dln::run(c, cbs.pointers, dir);
  }
  // A callback's exception (or Ctrl-C) propagates; the directory then lacks summary.json.
  cbs.pending->rethrow();
  if (!dir.empty()) {
    py::gil_scoped_release release;
    dln::write_run_directory(dir, *r);
  }
  return py::cast(std::move(r));
}

py::object json_loads(const std::string& s) { return py::module_::import("json").attr("loads")(s); }

}  // namespace

void init_config_api(py::module_& m) {
  py::class_<dln::RunResult>(m, "Result",
                             "The outcome of dln.train(config): the same content as the run "
                             "directory `dln train` writes (docs/run-directory.md).")
      .def_property_readonly(
          "summary", [](const dln::RunResult& r) { return json_loads(dln::summary_json(r)); },
          "summary.json as a dict")
      .def_property_readonly(
          "history",
          [](const dln::RunResult& r) {
            return history_dict(r.summary, r.problem.ground_truth.has_value());
          },
          "history.csv as a dict of numpy arrays (one entry per column)")
      .def_property_readonly(
          "singular_values",
          [](const dln::RunResult& r) { return singular_values_array(r.summary, false); },
          "singular_values.csv without its iteration column: records x K (NaN-padded)")
      .def_property_readonly(
          "analytic_singular_values",
          [](const dln::RunResult& r) -> py::object {
            if (!r.config.record.analytic) return py::none();
            return singular_values_array(r.summary, true);
          },
          "record.analytic: records x K signed singular values (Def. 4), else None")
      .def_property_readonly(
          "end_to_end",
          [](py::object self) {
            return view_of(self.cast<const dln::RunResult&>().end_to_end, self);
          },
          "W_{n:1} of the final factors (read-only view, no copy)")
      .def_property_readonly(
          "factors",
          [](py::object self) {
            py::list l;
            for (const auto& w : self.cast<const dln::RunResult&>().factors)
              l.append(view_of(w, self));
            return l;
          },
          "final factors W_1..W_n (read-only views, no copy)")
      .def_property_readonly(
          "init",
          [](py::object self) {
            py::list l;
            for (const auto& w : self.cast<const dln::RunResult&>().init)
              l.append(view_of(w, self));
            return l;
          },
          "initial factors W_1(0)..W_n(0) (read-only views, no copy)")
      .def_property_readonly(
          "ground_truth",
          [](py::object self) -> py::object {
            const auto& r = self.cast<const dln::RunResult&>();
            if (!r.problem.ground_truth) return py::none();
            return view_of(*r.problem.ground_truth, self);
          },
          "W* when known, else None")
      .def_property_readonly(
          "loss", [](const dln::RunResult& r) -> const dln::Loss& { return *r.problem.loss; },
          py::return_value_policy::reference_internal, "the problem's loss (a dln.Loss)")
      .def_property_readonly("dims", [](const dln::RunResult& r) { return r.config.dims(); })
      .def_property_readonly(
          "termination",
          [](const dln::RunResult& r) { return dln::to_string(r.summary.termination); })
      .def_property_readonly("final_loss",
                             [](const dln::RunResult& r) { return r.summary.final_loss; })
      .def_property_readonly(
          "config_toml", [](const dln::RunResult& r) { return r.config.to_toml(); },
          "config.toml: the resolved config as TOML text")
      .def_property_readonly(
          "config",
          [](const dln::RunResult& r) {
            return py::module_::import("tomllib").attr("loads")(r.config.to_toml());
          },
          "the resolved config as a dict (every key, defaults filled in)")
      .def(
          "save",
          [](const dln::RunResult& r, py::handle dir) {
            const auto d = py::module_::import("os").attr("fspath")(dir).cast<std::string>();
            py::gil_scoped_release release;
            dln::write_run_directory(d, r);
          },
          py::arg("dir"), "Writes the run directory `dln train --out DIR` would write")
      .def("brief_report", [](const dln::RunResult& r) { return r.summary.BriefReport(); })
      .def("__repr__", [](const dln::RunResult& r) {
        return fmt::format("<dln.Result {} iterations={} final_loss={:.6g}>",
                           dln::to_string(r.summary.termination), r.summary.iterations,
                           r.summary.final_loss);
      });

  m.def("train", &train, py::arg("config") = py::none(), py::kw_only(), py::arg("out") = py::none(),
        py::arg("callbacks") = py::none(), py::arg("overrides") = py::none(),
        py::arg("progress") = false, py::arg("observations") = py::none(),
        R"doc(Trains as `dln train` does and returns a dln.Result (a dln.TensorResult for
problem.kind = "tensor_completion" / "tensor_sensing", docs/tensors.md).

config: a dict of sections like the TOML file ({"problem": {...}, "network": {...}, ...}),
    a TOML file path, or None (all defaults). Validated exactly as by the CLI: unknown keys and
    bad values raise ValueError with the CLI's message.
out: a run directory to write (the same files as `dln train --out`).
callbacks: a callable f(row, factors), an object with on_step(iteration, loss) and/or
    on_record(row, factors) methods (optional attribute `every`), or a list of those. Returning
    False stops the run (termination "callback"); an exception stops it and propagates.
overrides: ["section.key=value", ...] as `--set`.
progress: draw the CLI's progress bar on stderr.
observations: tensor_completion only, instead of problem.observations_file: (indices, values),
    an m x N integer array of 0-based indices and m values.
The GIL is released while training; Ctrl-C stops the run with KeyboardInterrupt.)doc");

  m.def(
      "resolve_config",
      [](py::handle config, py::handle overrides) {
        return py::module_::import("tomllib").attr("loads")(to_config(config, overrides).to_toml());
      },
      py::arg("config") = py::none(), py::kw_only(), py::arg("overrides") = py::none(),
      "Validates a config like dln.train and returns it resolved (every key, as config.toml)");
}

}  // namespace dlnpy
