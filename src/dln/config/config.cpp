#include "dln/config/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <limits>
#include <set>
#include <sstream>

#include "dln/config/config_table.hpp"
#include "dln/io/files.hpp"

namespace dln {

namespace {

// Allowed keys per section: the config contract.
const std::map<std::string, std::set<std::string>>& schema() {
  static const std::map<std::string, std::set<std::string>> s = {
      // clang-format off
      {"problem",
       {"kind", "rows", "cols", "rank", "observations", "samples", "seed", "p", "noise",
        "sensing_std", "reduction", "observations_file", "sensing_file", "measurements_file",
        "x_file", "y_file", "labels_file", "ground_truth_file", "csv_file", "feature_columns",
        "target_columns", "standardize", "shape", "ground_truth_norm"}},
      // clang-format on
      {"network",
       {"depth", "width", "widths", "init", "init_scale", "seed", "init_path", "model",
        "components", "pool"}},
      {"optimizer",
       {"name", "lr", "momentum", "alpha", "eps", "bias_correction", "beta1", "beta2", "rho",
        "time", "rtol", "atol", "max_steps", "depth"}},
      {"stop", {"max_iters", "loss_tol", "max_seconds", "divergence_threshold"}},
      {"record",
       {"every", "singular_values", "dt", "analytic", "components", "rank_tol", "max_rank"}},
      {"run", {"threads", "checkpoint_every", "max_memory"}},
  };
  return s;
}

class Reader {
 public:
  Reader(const toml::table& t, std::string section) : section_(std::move(section)) {
    if (auto* n = t.get(section_)) {
      table_ = n->as_table();
      if (!table_) throw Error(fmt::format("{}: expected a table [{}]", section_, section_));
    }
  }
  std::string name(const char* key) const { return section_ + "." + key; }
  const toml::node* get(const char* key) const { return table_ ? table_->get(key) : nullptr; }

  template <class T>
  void integer(const char* key, T& out) const {
    if (auto* n = get(key)) {
      // is_integer() first: value<int64_t>() of a float such as 1e308 is undefined (fuzz_config).
      if (!n->is_integer()) throw Error(name(key) + ": expected an integer");
      auto v = n->value<int64_t>();
      if (!v) throw Error(name(key) + ": expected an integer");
      if (*v < std::numeric_limits<T>::min() || *v > std::numeric_limits<T>::max())
        throw Error(name(key) + ": integer out of range");  // no silent wrap-around
      out = static_cast<T>(*v);
    }
  }
  void seed(const char* key, std::uint64_t& out) const {
    std::int64_t v = 0;
    if (!get(key)) return;
    integer(key, v);
    if (v < 0) throw Error(name(key) + ": must be >= 0");
    out = static_cast<std::uint64_t>(v);
  }
  void real(const char* key, double& out) const {
    if (auto* n = get(key)) {
      if (!n->is_number()) throw Error(name(key) + ": expected a number");
      out = *n->value<double>();
    }
  }
  void string(const char* key, std::string& out) const {
    if (auto* n = get(key)) {
      if (!n->is_string()) throw Error(name(key) + ": expected a string");
      out = *n->value<std::string>();
    }
  }
  void boolean(const char* key, bool& out) const {
    if (auto* n = get(key)) {
      if (!n->is_boolean()) throw Error(name(key) + ": expected true or false");
      out = *n->value<bool>();
    }
  }
  void integers(const char* key, std::vector<Index>& out) const {
    if (auto* n = get(key)) {
      auto* arr = n->as_array();
      if (!arr) throw Error(name(key) + ": expected an array of integers");
      out.clear();
      for (auto& e : *arr) {
        if (!e.is_integer()) throw Error(name(key) + ": expected an array of integers");
        out.push_back(static_cast<Index>(*e.value<int64_t>()));
      }
    }
  }
  void strings(const char* key, std::vector<std::string>& out) const {
    if (auto* n = get(key)) {
      auto* arr = n->as_array();
      if (!arr) throw Error(name(key) + ": expected an array of strings");
      out.clear();
      for (auto& e : *arr) {
        if (!e.is_string()) throw Error(name(key) + ": expected an array of strings");
        out.push_back(*e.value<std::string>());
      }
    }
  }

 private:
  std::string section_;
  const toml::table* table_ = nullptr;
};

void check_keys(const toml::table& t) {
  for (auto&& [k, v] : t) {
    const std::string section(k.str());
    auto it = schema().find(section);
    if (it == schema().end()) throw Error(fmt::format("{}: unknown section", section));
    const auto* tbl = v.as_table();
    if (!tbl) throw Error(fmt::format("{}: expected a table [{}]", section, section));
    for (auto&& [key, value] : *tbl) {
      const std::string ks(key.str());
      if (!it->second.count(ks)) throw Error(fmt::format("{}.{}: unknown key", section, ks));
    }
  }
}

void apply_override(toml::table& t, const std::string& ov) {
  const auto eq = ov.find('=');
  const auto dot = ov.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq)
    throw Error(fmt::format("--set {}: expected section.key=value", ov));
  const std::string section = ov.substr(0, dot), key = ov.substr(dot + 1, eq - dot - 1);
  const std::string value = ov.substr(eq + 1);
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed.insert_or_assign("v", value);  // a bare word is a string
  }
  if (!t.contains(section)) t.insert(section, toml::table{});
  auto* sec = t.get(section)->as_table();
  if (!sec) throw Error(fmt::format("--set {}: {} is not a table", ov, section));
  sec->insert_or_assign(key, *parsed.get("v"));
}

Config from_table(const toml::table& t) {
  check_keys(t);
  Config c;
  {
    Reader r(t, "problem");
    auto& p = c.problem;
    r.string("kind", p.kind);
    r.integer("rows", p.rows);
    r.integer("cols", p.cols);
    r.integer("rank", p.rank);
    r.integer("observations", p.observations);
    r.integer("samples", p.samples);
    r.seed("seed", p.seed);
    r.integer("p", p.p);
    r.real("noise", p.noise);
    r.real("sensing_std", p.sensing_std);
    r.string("reduction", p.reduction);
    r.string("observations_file", p.observations_file);
    r.string("sensing_file", p.sensing_file);
    r.string("measurements_file", p.measurements_file);
    r.string("x_file", p.x_file);
    r.string("y_file", p.y_file);
    r.string("labels_file", p.labels_file);
    r.string("ground_truth_file", p.ground_truth_file);
    r.string("csv_file", p.csv_file);
    r.strings("feature_columns", p.feature_columns);
    r.strings("target_columns", p.target_columns);
    r.boolean("standardize", p.standardize);
    r.integers("shape", p.shape);
    r.real("ground_truth_norm", p.ground_truth_norm);
  }
  {
    Reader r(t, "network");
    auto& n = c.network;
    r.integer("depth", n.depth);
    r.integer("width", n.width);
    if (r.get("width") && n.width <= 0)  // 0 is the internal "unset": an explicit 0 is an error
      throw Error(fmt::format("network.width: must be > 0, got {}", n.width));
    r.integers("widths", n.widths);
    std::string init = to_string(n.init.kind);
    r.string("init", init);
    n.init.kind = parse_init(init);
    r.real("init_scale", n.init.scale);
    r.seed("seed", n.init.seed);
    r.string("init_path", n.init.path);
    r.string("model", n.model);
    r.integer("components", n.components);
    r.integer("pool", n.pool);
  }
  {
    Reader r(t, "optimizer");
    auto& o = c.optimizer;
    std::string name = to_string(o.kind);
    r.string("name", name);
    o.kind = parse_optimizer(name);
    r.real("lr", o.lr);
    r.real("momentum", o.momentum);
    r.real("alpha", o.alpha);
    r.real("eps", o.eps);
    r.boolean("bias_correction", o.bias_correction);
    r.real("beta1", o.beta1);
    r.real("beta2", o.beta2);
    r.real("rho", o.rho);
    r.real("time", o.time);
    r.real("rtol", o.rtol);
    r.real("atol", o.atol);
    r.integer("max_steps", o.max_steps);
    r.integer("depth", o.depth);
  }
  {
    Reader r(t, "stop");
    r.integer("max_iters", c.stop.max_iters);
    r.real("loss_tol", c.stop.loss_tol);
    r.real("max_seconds", c.stop.max_seconds);
    r.real("divergence_threshold", c.stop.divergence_threshold);
  }
  {
    Reader r(t, "record");
    r.integer("every", c.record.every);
    r.integer("singular_values", c.record.singular_values);
    r.real("dt", c.record_dt);
    r.boolean("analytic", c.record.analytic);
    r.integer("components", c.record.components);
    r.real("rank_tol", c.record.rank_tol);
    r.integer("max_rank", c.record.max_rank);
  }
  {
    Reader r(t, "run");
    r.integer("threads", c.threads);
    r.integer("checkpoint_every", c.checkpoint_every);
    if (const auto* m = r.get("max_memory")) {
      if (m->is_integer() && *m->value<int64_t>() == 0)
        c.max_memory = 0;
      else if (m->is_integer() && *m->value<int64_t>() > 0)  // the same 4 EiB bound (fuzz_config)
        c.max_memory = memory::parse_bytes(std::to_string(*m->value<int64_t>()), "run.max_memory");
      else if (m->is_string())
        c.max_memory = memory::parse_bytes(*m->value<std::string>(), "run.max_memory");
      else
        throw Error("run.max_memory: expected a size such as \"8GiB\" or a number of bytes >= 0");
    }
  }
  c.validate();
  return c;
}

}  // namespace

std::vector<Index> Config::dims() const {
  const int n = network.depth;
  std::vector<Index> d;
  d.push_back(problem.cols);
  const Index w = network.width > 0 ? network.width : std::max(problem.rows, problem.cols);
  for (int j = 1; j < n; ++j)
    d.push_back(network.widths.empty() ? w : network.widths[static_cast<std::size_t>(j - 1)]);
  d.push_back(problem.rows);
  return d;
}

void Config::validate_matrix_network() const {
  if (network.model != "matrix")
    throw Error(fmt::format(
        "network.model: \"{}\" is a tensor model; kind = \"{}\" trains network.model = \"matrix\"",
        network.model, problem.kind));
  if (network.depth < 1)
    throw Error(fmt::format("network.depth: must be >= 1, got {}", network.depth));
  if (network.width < 0)
    throw Error(fmt::format("network.width: must be > 0, got {}", network.width));
  if (!network.widths.empty()) {
    if (static_cast<int>(network.widths.size()) != network.depth - 1)
      throw Error(fmt::format("network.widths: expected depth - 1 = {} hidden widths, got {}",
                              network.depth - 1, network.widths.size()));
    for (Index w : network.widths)
      if (w <= 0) throw Error(fmt::format("network.widths: every width must be > 0, got {}", w));
  }
  if (!std::isfinite(network.init.scale) || network.init.scale < 0)
    throw Error("network.init_scale: must be finite and >= 0");
  if (network.init.kind == InitKind::kFile && network.init.path.empty())
    throw Error("network.init_path: required when network.init = \"file\"");
}

void Config::validate() const {
  problem.validate();
  if (problem.tensor()) {
    validate_tensor();
  } else {
    validate_matrix_network();
  }
  std::string err;
  if (!optimizer.IsValid(&err) || !stop.IsValid(&err) || !record.IsValid(&err)) throw Error(err);
  if (!std::isfinite(record_dt) || record_dt < 0) throw Error("record.dt: must be finite and >= 0");
  if (checkpoint_every < 0)
    throw Error(fmt::format("run.checkpoint_every: must be >= 0, got {}", checkpoint_every));
  if (threads < 1) throw Error(fmt::format("run.threads: must be >= 1, got {}", threads));
  if (!(max_memory >= 0 && max_memory <= 0x1p62))
    throw Error("run.max_memory: must be in [0, 4 EiB]");
}

std::string Config::to_toml() const {
  toml::table t;
  const auto& p = problem;
  toml::table pt{{"kind", p.kind},
                 {"rows", p.rows},
                 {"cols", p.cols},
                 {"rank", p.rank},
                 {"observations", p.observations},
                 {"samples", p.samples},
                 {"seed", static_cast<int64_t>(p.seed)},
                 {"p", p.p},
                 {"noise", p.noise},
                 {"sensing_std", p.sensing_std},
                 {"reduction", p.reduction}};
  auto add_file = [&](const char* k, const std::string& v) {
    if (!v.empty()) pt.insert(k, v);
  };
  add_file("observations_file", p.observations_file);
  add_file("sensing_file", p.sensing_file);
  add_file("measurements_file", p.measurements_file);
  add_file("x_file", p.x_file);
  add_file("y_file", p.y_file);
  add_file("labels_file", p.labels_file);
  add_file("ground_truth_file", p.ground_truth_file);
  add_file("csv_file", p.csv_file);
  auto add_names = [&](const char* k, const std::vector<std::string>& names) {
    if (names.empty()) return;
    toml::array a;
    for (const auto& n : names) a.push_back(n);
    pt.insert(k, a);
  };
  add_names("feature_columns", p.feature_columns);
  add_names("target_columns", p.target_columns);
  pt.insert("standardize", p.standardize);
  if (p.tensor()) {
    toml::array shape;
    for (Index d : p.shape) shape.push_back(d);
    pt.insert("shape", shape);
    pt.insert("ground_truth_norm", p.ground_truth_norm);
  }
  t.insert("problem", pt);
  toml::array widths;
  const auto d = p.tensor() ? network.widths : dims();
  if (p.tensor())
    for (Index w : d) widths.push_back(w);
  else
    for (std::size_t j = 1; j + 1 < d.size(); ++j) widths.push_back(d[j]);
  toml::table nt{{"depth", network.depth},
                 {"widths", widths},
                 {"init", to_string(network.init.kind)},
                 {"init_scale", network.init.scale},
                 {"seed", static_cast<int64_t>(network.init.seed)}};
  if (!network.init.path.empty()) nt.insert("init_path", network.init.path);
  nt.insert("model", network.model);
  if (p.tensor()) {
    nt.insert("components", network.components);
    nt.insert("pool", network.pool);
  }
  t.insert("network", nt);
  t.insert("optimizer",
           toml::table{{"name", to_string(optimizer.kind)},
                       {"lr", optimizer.lr},
                       {"momentum", optimizer.momentum},
                       {"alpha", optimizer.alpha},
                       {"eps", optimizer.resolved_eps()},
                       {"bias_correction", optimizer.bias_correction},
                       {"beta1", optimizer.beta1},
                       {"beta2", optimizer.beta2},
                       {"rho", optimizer.rho},
                       {"time", optimizer.time},
                       {"rtol", optimizer.rtol},
                       {"atol", optimizer.atol},
                       {"max_steps", static_cast<int64_t>(optimizer.max_steps)},
                       {"depth", optimizer.depth > 0 ? optimizer.depth : network.depth}});
  t.insert("stop", toml::table{{"max_iters", static_cast<int64_t>(stop.max_iters)},
                               {"loss_tol", stop.loss_tol},
                               {"max_seconds", stop.max_seconds},
                               {"divergence_threshold", stop.divergence_threshold}});
  t.insert("record", toml::table{{"every", static_cast<int64_t>(record.every)},
                                 {"singular_values", record.singular_values},
                                 {"dt", record_dt},
                                 {"analytic", record.analytic},
                                 {"components", record.components},
                                 {"rank_tol", record.rank_tol},
                                 {"max_rank", record.max_rank}});
  t.insert("run", toml::table{{"threads", threads},
                              {"checkpoint_every", static_cast<int64_t>(checkpoint_every)},
                              {"max_memory", static_cast<int64_t>(max_memory)}});
  std::ostringstream os;
  os << t << "\n";
  return os.str();
}

Config parse_config(const std::string& text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  toml::table t;
  try {
    t = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw Error(fmt::format("{}: line {}: {}", source, e.source().begin.line, e.description()));
  }
  for (const auto& ov : overrides) apply_override(t, ov);
  return from_table(t);
}

Config parse_config_table(toml::table t, const std::vector<std::string>& overrides) {
  for (const auto& ov : overrides) apply_override(t, ov);
  return from_table(t);
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_config(io::read_file(path), path, overrides);
}

}  // namespace dln
