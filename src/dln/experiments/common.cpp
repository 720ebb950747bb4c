#include "dln/experiments/common.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <sstream>
#include <thread>

#include "dln/experiments/embedded.hpp"
#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"

namespace dln::experiments {

namespace fs = std::filesystem;

std::string embedded_text(const std::string& path) {
  for (const auto& f : embedded::files())
    if (f.path == path) return std::string(f.text);
  throw Error(fmt::format("{}: not built into this dln", path));
}

// ----------------------------------------------------------------------------------------------
// Params

struct Params::Impl {
  toml::table table;  // the resolved [experiment] table
};

namespace {

toml::table parse_toml(const std::string& text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw Error(fmt::format("{}: line {}: {}", source, e.source().begin.line, e.description()));
  }
}

const toml::table& section(const toml::table& t, const char* name, const std::string& source) {
  static const toml::table empty;
  const toml::node* n = t.get(name);
  if (!n) return empty;
  if (!n->is_table()) throw Error(fmt::format("{}: [{}] must be a table", source, name));
  return *n->as_table();
}

bool same_kind(const toml::node& want, const toml::node& got) {
  if (want.is_floating_point()) return got.is_number();
  if (want.is_array()) {
    if (!got.is_array()) return false;
    const auto& w = *want.as_array();
    const auto& g = *got.as_array();
    if (w.empty() || g.empty()) return true;
    for (const auto& e : g)
      if (!same_kind(w[0], e)) return false;
    return true;
  }
  return want.type() == got.type();
}

const char* kind_name(const toml::node& n) {
  if (n.is_floating_point()) return "a number";
  if (n.is_integer()) return "an integer";
  if (n.is_boolean()) return "true or false";
  if (n.is_string()) return "a string";
  if (n.is_array()) {
    const auto& a = *n.as_array();
    if (!a.empty() && a[0].is_integer()) return "an array of integers";
    if (!a.empty() && a[0].is_string()) return "an array of strings";
    return "an array of numbers";
  }
  return "a table";
}

// Copies `from` into `into`, keys checked against `schema` (the built-in [experiment] table).
void merge_checked(toml::table& into, const toml::table& from, const toml::table& schema,
                   const std::string& where) {
  for (const auto& [key, value] : from) {
    const toml::node* want = schema.get(key.str());
    if (!want)
      throw Error(fmt::format("{}.{}: unknown key (see the built-in experiments/*.toml)", where,
                              key.str()));
    if (!same_kind(*want, value))
      throw Error(fmt::format("{}.{}: expected {}", where, key.str(), kind_name(*want)));
    into.insert_or_assign(key.str(), value);
  }
}

}  // namespace

Params::Params(const std::string& name, const Options& options) : impl_(std::make_unique<Impl>()) {
  const std::string builtin_path = fmt::format("experiments/{}.toml", name);
  const toml::table builtin = parse_toml(embedded_text(builtin_path), builtin_path);
  const toml::table& schema = section(builtin, "experiment", builtin_path);
  toml::table user_file;
  source_ = builtin_path + " (built in)";
  const toml::table* user = &builtin;
  if (!options.config_path.empty()) {
    user_file = parse_toml(io::read_file(options.config_path), options.config_path);
    for (const auto& [key, value] : user_file)
      if (key.str() != "experiment" && key.str() != "quick")
        throw Error(fmt::format("{}: [{}]: unknown table (expected [experiment] and [quick])",
                                options.config_path, key.str()));
    user = &user_file;
    source_ = options.config_path;
  }
  impl_->table = schema;  // defaults for keys the user file leaves out
  merge_checked(impl_->table, section(*user, "experiment", source_), schema, "experiment");
  if (options.quick) {
    // The user's [quick] table if it has one, else the built-in one.
    const toml::table& quick = user->get("quick") ? section(*user, "quick", source_)
                                                  : section(builtin, "quick", builtin_path);
    merge_checked(impl_->table, quick, schema, "quick");
  }
}

Params::~Params() = default;

namespace {
const toml::node& need(const toml::table& t, const char* key) {
  const toml::node* n = t.get(key);
  if (!n) throw Error(fmt::format("experiment.{}: missing", key));
  return *n;
}
}  // namespace

double Params::real(const char* key) const {
  const auto& n = need(impl_->table, key);
  if (!n.is_number()) throw Error(fmt::format("experiment.{}: expected a number", key));
  return *n.value<double>();
}
long Params::integer(const char* key) const {
  const auto& n = need(impl_->table, key);
  if (!n.is_integer()) throw Error(fmt::format("experiment.{}: expected an integer", key));
  return static_cast<long>(*n.value<int64_t>());
}
bool Params::boolean(const char* key) const {
  const auto& n = need(impl_->table, key);
  if (!n.is_boolean()) throw Error(fmt::format("experiment.{}: expected true or false", key));
  return *n.value<bool>();
}
std::string Params::string(const char* key) const {
  const auto& n = need(impl_->table, key);
  if (!n.is_string()) throw Error(fmt::format("experiment.{}: expected a string", key));
  return *n.value<std::string>();
}
std::vector<long> Params::integers(const char* key) const {
  const auto& n = need(impl_->table, key);
  std::vector<long> out;
  if (n.is_array())
    for (const auto& e : *n.as_array()) {
      if (!e.is_integer()) throw Error(fmt::format("experiment.{}: expected integers", key));
      out.push_back(static_cast<long>(*e.value<int64_t>()));
    }
  if (!n.is_array() || out.empty())
    throw Error(fmt::format("experiment.{}: expected a non-empty array of integers", key));
  return out;
}
std::vector<double> Params::reals(const char* key) const {
  const auto& n = need(impl_->table, key);
  std::vector<double> out;
  if (n.is_array())
    for (const auto& e : *n.as_array()) {
      if (!e.is_number()) throw Error(fmt::format("experiment.{}: expected numbers", key));
      out.push_back(*e.value<double>());
    }
  if (!n.is_array() || out.empty())
    throw Error(fmt::format("experiment.{}: expected a non-empty array of numbers", key));
  return out;
}
std::vector<std::string> Params::strings(const char* key) const {
  const auto& n = need(impl_->table, key);
  std::vector<std::string> out;
  if (n.is_array())
    for (const auto& e : *n.as_array()) {
      if (!e.is_string()) throw Error(fmt::format("experiment.{}: expected strings", key));
      out.push_back(*e.value<std::string>());
    }
  if (!n.is_array() || out.empty())
    throw Error(fmt::format("experiment.{}: expected a non-empty array of strings", key));
  return out;
}

std::string Params::resolved_toml() const {
  toml::table t;
  t.insert("experiment", impl_->table);
  std::ostringstream os;
  os << "# Resolved parameters of this run (source: " << source_ << ")\n" << t << "\n";
  return os.str();
}

// ----------------------------------------------------------------------------------------------
// Tables, threads, progress

void Table::add(std::vector<std::string> cells) {
  if (cells.size() != columns_.size())
    throw std::logic_error(
        fmt::format("Table::add: {} cells for {} columns", cells.size(), columns_.size()));
  rows_.push_back(std::move(cells));
}

std::string Table::csv() const {
  std::string out;
  for (std::size_t i = 0; i < columns_.size(); ++i) out += (i ? "," : "") + columns_[i];
  out += '\n';
  for (const auto& r : rows_) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (i) out += ',';
      out += r[i];
    }
    out += '\n';
  }
  return out;
}

std::string num(double v) { return fmt::format("{:.17g}", v); }

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

std::vector<int> longest_first(const std::vector<double>& cost) {
  std::vector<int> order(cost.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return cost[static_cast<std::size_t>(a)] > cost[static_cast<std::size_t>(b)];
  });
  return order;
}

double expected_cost(const Config& c) {
  const auto dims = c.dims();
  const int n = c.network.depth;
  const double rows = static_cast<double>(c.problem.rows),
               cols = static_cast<double>(c.problem.cols);
  const double m = static_cast<double>(c.problem.observations);
  double products = 0.0;  // prefix, suffix and gradient products, as Objective::gemm_flops
  for (int j = 2; j <= n; ++j)
    products += 6.0 * static_cast<double>(dims[static_cast<std::size_t>(j)]) *
                static_cast<double>(dims[static_cast<std::size_t>(j - 1)]) *
                static_cast<double>(std::max(dims.front(), dims.back()));
  const double width = static_cast<double>(*std::max_element(dims.begin(), dims.end()));
  const double data = c.problem.kind == "sensing" ? 4.0 * m * rows * cols : 4.0 * m * width * n;
  return (products + data) * static_cast<double>(std::max<long>(1, c.stop.max_iters));
}

double expected_nuclear_cost(long rows, long cols) {
  return 20.0 * static_cast<double>(rows) * static_cast<double>(cols) *
         static_cast<double>(std::min(rows, cols)) * 1000.0;
}

void parallel_for(int n, int workers, const std::function<void(int)>& job,
                  const std::vector<double>& cost) {
  if (!cost.empty() && cost.size() != static_cast<std::size_t>(n))
    throw std::logic_error("parallel_for: one cost per job");
  std::vector<int> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (!cost.empty()) order = longest_first(cost);
  std::atomic<int> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (int k = next++; k < n; k = next++) {
      {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (error) return;
      }
      try {
        job(order[static_cast<std::size_t>(k)]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  const int k = std::max(1, std::min(workers, n));
  std::vector<std::thread> threads;
  for (int t = 1; t < k; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

void progress(const Options& options, const std::string& line) {
  static std::mutex m;
  if (options.quiet) return;
  std::lock_guard<std::mutex> lock(m);
  std::fprintf(stderr, "%s\n", line.c_str());
}

// ----------------------------------------------------------------------------------------------
// Runs

Config base_config() {
  Config c;
  c.threads = 1;
  c.record.every = 1000;
  c.record.singular_values = 10;
  return c;
}

Config completion_config(const Params& p, long observations, long seed, long depth) {
  Config c = base_config();
  c.problem.kind = "completion";
  c.problem.rows = p.integer("rows");
  c.problem.cols = p.integer("cols");
  c.problem.rank = p.integer("rank");
  c.problem.observations = observations;
  c.problem.seed = static_cast<std::uint64_t>(seed);
  c.problem.reduction = p.string("reduction");
  if (depth > 0) {
    c.network.depth = static_cast<int>(depth);
    c.network.width = p.integer("width");
    c.network.init.kind = InitKind::kGaussian;
    c.network.init.scale = std::pow(p.real("init_scale"), 1.0 / static_cast<double>(depth)) /
                           std::sqrt(static_cast<double>(c.network.width));
    c.network.init.seed = static_cast<std::uint64_t>(1000 + seed);
    c.optimizer.kind = parse_optimizer(p.string("optimizer"));
    c.optimizer.lr = p.real("lr");
    c.optimizer.alpha = p.real("alpha");
    c.optimizer.eps = p.real("eps");
    c.stop.max_iters = p.integer("max_iters");
    c.stop.loss_tol = p.real("loss_tol");
    c.record.every = p.integer("record_every");
  }
  return c;
}

NuclearNormResult min_nuclear_for(const Problem& problem, const Params& p, const std::string& out,
                                  const std::string& tag) {
  std::vector<Index> r, c;
  std::vector<double> b;
  for (const auto& o : problem.observations) {
    r.push_back(o.row);
    c.push_back(o.col);
    b.push_back(o.value);
  }
  NuclearNormOptions options;
  options.tol = p.real("nuclear_tol");
  options.rel_gap = p.real("nuclear_rel_gap");
  auto result = min_nuclear_norm_completion(problem.rows, problem.cols, r, c, b, options);
  const auto dir = fs::path(out) / "runs" / tag;
  io::ensure_writable_directory(dir.string());
  io::write_npy((dir / "X.npy").string(), result.x);
  return result;
}

RunResult run_into(const Config& config, const std::string& out, const std::string& tag,
                   const std::vector<Callback*>& callbacks) {
  const std::string dir = (fs::path(out) / "runs" / tag).string();
  RunResult r = run(config, callbacks, dir);
  write_run_directory(dir, r);
  return r;
}

// ----------------------------------------------------------------------------------------------
// Report and figure

void write_report(const std::string& out, const std::string& title, const Options& options,
                  const Params& params, const std::vector<Claim>& claims, const std::string& body,
                  double seconds, const std::string& figure_note) {
  std::string md = fmt::format("# {}\n\n", title);
  md += fmt::format(
      "dln {} · mode: {} · config: {} (resolved copy: `config.toml`) · wall time {:.1f} s\n\n",
      DLN_VERSION, options.quick ? "--quick" : "full", params.source(), seconds);
  bool all = true;
  for (const auto& c : claims) all = all && c.supported;
  md += fmt::format("**Verdict: {}**\n\n", all ? "this run supports the notes' claims"
                                               : "this run does NOT support every claim");
  md += "## Claims\n\n";
  for (const auto& c : claims)
    md += fmt::format("- **{}** {}\n  - {}\n",
                      c.supported ? "Supported:" : "Not supported:", c.statement, c.evidence);
  md += "\n" + body + "\n";
  md += "## Files\n\n- `results.csv`: one row per method x setting x seed (tidy)\n";
  md += figure_note.empty() ? fmt::format("- figure: see the PNG and SVG in this directory\n")
                            : fmt::format("- no figure: {}\n", figure_note);
  md +=
      "- `config.toml`: the parameters used; `dln experiment NAME --config config.toml` "
      "reruns them\n- `runs/`: the run directory of every training run (config, data, "
      "initial and final factors, history)\n- `plot.py`: redraws the figure from the CSV "
      "files\n";
  io::write_file_atomic((fs::path(out) / "report.md").string(), md);
}

void write_config(const Options& options, const Params& params) {
  io::ensure_writable_directory(options.out);
  io::write_file_atomic((fs::path(options.out) / "config.toml").string(), params.resolved_toml());
}

int finish(const std::string& name, const std::string& title, const Options& options,
           const Params& params, const std::vector<Claim>& claims, const std::string& body,
           std::chrono::steady_clock::time_point start, const std::string& csv_files) {
  const std::string figure = draw_figure(options.out, name, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_report(options.out, title, options, params, claims, body, seconds, figure);
  if (!options.quiet) {
    for (const auto& c : claims)
      std::printf("%s %s\n", c.supported ? "[supported]" : "[NOT supported]", c.statement.c_str());
    std::printf("wrote %s/{%s,report.md%s} in %.1f s\n", options.out.c_str(), csv_files.c_str(),
                figure.empty() ? fmt::format(",{0}.png,{0}.svg", name).c_str() : "", seconds);
  }
  return 0;
}

std::string draw_figure(const std::string& out, const std::string& name, const Options& options) {
  const std::string script = (fs::path(out) / "plot.py").string();
  io::write_file_atomic(script, embedded_text("experiments/plot.py"));
  if (!options.plot) return "--no-plot was given";
  std::string python = "python3";
  if (const char* env = std::getenv("DLN_PYTHON"); env && *env)
    python = env;
  else if (access("/usr/bin/python3", X_OK) == 0)
    python = "/usr/bin/python3";
  const std::string log = (fs::path(out) / "plot.log").string();
  const std::string cmd =
      fmt::format("'{}' '{}' '{}' '{}' > '{}' 2>&1", python, script, out, name, log);
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::string why = io::read_file(log);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    const auto last = why.rfind('\n');
    return fmt::format("{} plot.py failed: {}", python,
                       last == std::string::npos ? why : why.substr(last + 1));
  }
  fs::remove(log);
  return "";
}

}  // namespace dln::experiments
