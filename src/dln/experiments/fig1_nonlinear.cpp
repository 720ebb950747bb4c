// Figure 1 (right): SGD with momentum on TensorFlow's MNIST tutorial CNN, original against its
// dense layers replaced by depth-2 linear neural networks (Section 3.2), on Fashion-MNIST; then
// collapse (same function) and rank truncation of the dense layers (Section 4.4).
#include "dln/experiments/fig1_nonlinear.hpp"

#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "dln/io/npy.hpp"
#include "dln/torch/image_data.hpp"

namespace dln::experiments {
namespace fig1nl {
namespace {

namespace nn = torch::nn;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// TensorFlow's truncated_normal: N(0, std^2) redrawn outside two standard deviations.
void truncated_normal_(torch::Tensor& w, double std) {
  torch::NoGradGuard no_grad;
  w.normal_(0, std);
  for (torch::Tensor bad = w.abs() > 2 * std; bad.any().item<bool>(); bad = w.abs() > 2 * std)
    w.copy_(torch::where(bad, torch::empty_like(w).normal_(0, std), w));
}

// The tutorial's network (NCHW): conv 5x5x32 'same', 2x2 max-pool, conv 5x5x64, pool, dense
// 3136 -> 512 with ReLU and dropout, dense 512 -> 10.
nn::Sequential tutorial_cnn(double std, double bias, double dropout) {
  nn::Sequential m;
  m->push_back("conv1", nn::Conv2d(nn::Conv2dOptions(1, 32, 5).padding(2)));
  m->push_back("relu1", nn::ReLU());
  m->push_back("pool1", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  m->push_back("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 5).padding(2)));
  m->push_back("relu2", nn::ReLU());
  m->push_back("pool2", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  m->push_back("flatten", nn::Flatten());
  m->push_back("fc1", nn::Linear(3136, 512));
  m->push_back("relu3", nn::ReLU());
  m->push_back("dropout", nn::Dropout(dropout));
  m->push_back("fc2", nn::Linear(512, 10));
  torch::NoGradGuard no_grad;
  for (auto& item : m->named_parameters()) {
    torch::Tensor t = item.value();
    if (item.key().ends_with("weight"))
      truncated_normal_(t, std);
    else
      t.fill_(item.key() == "conv1.bias" ? 0.0 : bias);
  }
  return m;
}

// The parameters the L2 term covers: every weight and bias of the dense layers (or their factors).
std::vector<torch::Tensor> dense_parameters(const nn::Sequential& m) {
  std::vector<torch::Tensor> out;
  for (const auto& item : m->named_parameters())
    if (item.key().starts_with("fc")) out.push_back(item.value());
  return out;
}

struct Split {
  torch::Tensor images, labels;
};

struct Evaluation {
  double accuracy = 0, loss = 0;
};

Evaluation evaluate(nn::Sequential& m, const Split& s, long batch) {
  m->eval();
  torch::NoGradGuard no_grad;
  const long n = s.labels.size(0);
  double loss = 0;
  long correct = 0;
  for (long i = 0; i < n; i += batch) {
    const long b = std::min(batch, n - i);
    const torch::Tensor logits = m->forward(s.images.narrow(0, i, b));
    const torch::Tensor y = s.labels.narrow(0, i, b);
    loss += torch::nn::functional::cross_entropy(
                logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                .item<double>();
    correct += logits.argmax(1).eq(y).sum().item<long>();
  }
  return {static_cast<double>(correct) / static_cast<double>(n), loss / static_cast<double>(n)};
}

// Max |logits difference| and the number of differing predictions of two models on `s`.
std::pair<double, long> compare(nn::Sequential& a, nn::Sequential& b, const Split& s, long batch) {
  a->eval();
  b->eval();
  torch::NoGradGuard no_grad;
  double max_abs = 0;
  long mismatches = 0;
  for (long i = 0; i < s.labels.size(0); i += batch) {
    const torch::Tensor x = s.images.narrow(0, i, std::min(batch, s.labels.size(0) - i));
    const torch::Tensor la = a->forward(x), lb = b->forward(x);
    max_abs = std::max(max_abs, (la - lb).abs().max().item<double>());
    mismatches += la.argmax(1).ne(lb.argmax(1)).sum().item<long>();
  }
  return {max_abs, mismatches};
}

// Best of three passes over the test images, in milliseconds.
double inference_ms(nn::Sequential& m, const Split& s, long batch) {
  double best = 1e300;
  for (int k = 0; k < 3; ++k) {
    const auto t = Clock::now();
    evaluate(m, s, batch);
    best = std::min(best, 1e3 * seconds_since(t));
  }
  return best;
}

// A progress bar on stderr: redrawn in place on a terminal, a line per 5% otherwise.
class ProgressBar {
 public:
  ProgressBar(const Options& o, long total) : o_(o), total_(total), tty_(isatty(2) != 0) {}
  void update(long done, const std::string& what) {
    if (o_.quiet) return;
    const int pct = static_cast<int>(100 * done / std::max(1L, total_));
    if (!tty_ && pct < next_ && done < total_) return;
    next_ = pct - pct % 5 + 5;
    const double elapsed = seconds_since(start_);
    const double eta =
        done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : 0;
    const int filled = pct / 4;
    const std::string line =
        fmt::format("[{}{}] {:3d}% {}  {:.0f}s, eta {:.0f}s", std::string(filled, '#'),
                    std::string(25 - filled, '-'), pct, what, elapsed, eta);
    if (tty_)
      std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), done >= total_ ? "\n" : "");
    else
      std::fprintf(stderr, "%s\n", line.c_str());
  }

 private:
  const Options& o_;
  long total_;
  bool tty_;
  int next_ = 0;
  Clock::time_point start_ = Clock::now();
};

// Writes each parameter of `m` as out/<dir>/<name>.npy (float64, C order) for replay elsewhere.
void save_parameters(const nn::Sequential& m, const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const auto& item : m->named_parameters()) {
    const torch::Tensor t = item.value().detach().to(torch::kFloat64).contiguous();
    std::vector<Index> shape(t.sizes().begin(), t.sizes().end());
    std::vector<double> data(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
    io::write_npy(dir + "/" + item.key() + ".npy", shape, data);
  }
}

struct Training {
  const Params& p;
  const Options& o;
  const Setup& setup;
  Split train, validation, test;
  ProgressBar& bar;
  long done_before = 0;

  ModelRun run(const std::string& name, nn::Sequential m) {
    ModelRun r;
    r.name = name;
    r.params = nonlinear::count_parameters(*m);
    const long batch = p.integer("batch_size"), eval_batch = p.integer("eval_batch");
    const double lr0 = p.real("learning_rate"), decay = p.real("lr_decay");
    const double l2 = p.real("l2");
    // The same dropout masks for every model: the generator is reset after initialisation.
    torch::manual_seed(static_cast<std::uint64_t>(p.integer("seed")) + 2);
    torch::optim::SGD opt(m->parameters(),
                          torch::optim::SGDOptions(lr0).momentum(p.real("momentum")));
    auto& group_options = static_cast<torch::optim::SGDOptions&>(opt.param_groups()[0].options());
    const std::vector<torch::Tensor> dense = dense_parameters(m);
    const auto record_epoch = [&](long epoch, long step) {
      const Evaluation t = evaluate(m, test, eval_batch), v = evaluate(m, validation, eval_batch);
      r.epochs.push_back({epoch, step, t.accuracy, t.loss, v.accuracy});
    };
    record_epoch(0, 0);
    const auto t0 = Clock::now();
    double train_seconds = 0;
    const long n = setup.train_size;
    for (long step = 0; step < setup.steps; ++step) {
      const auto ts = Clock::now();
      // The tutorial's batches: consecutive, offset = step * batch mod (n - batch), no shuffle.
      const long offset = (step * batch) % (n - batch);
      const long epoch = step * batch / n;
      const double lr = lr0 * std::pow(decay, static_cast<double>(epoch));
      group_options.lr(lr);
      m->train();
      const torch::Tensor logits = m->forward(train.images.narrow(0, offset, batch));
      const torch::Tensor ce =
          torch::nn::functional::cross_entropy(logits, train.labels.narrow(0, offset, batch));
      torch::Tensor reg = torch::zeros({}, logits.options());
      for (const auto& w : dense) reg = reg + w.square().sum();
      reg = reg * 0.5;
      const torch::Tensor loss = ce + l2 * reg;
      opt.zero_grad();
      loss.backward();
      opt.step();
      train_seconds += seconds_since(ts);
      r.steps.push_back(
          {step, epoch, lr, loss.item<double>(), ce.item<double>(), l2 * reg.item<double>()});
      const long next_epoch = (step + 1) * batch / n;
      if (next_epoch > epoch || step + 1 == setup.steps) record_epoch(epoch + 1, step + 1);
      bar.update(done_before + step + 1, fmt::format("{} step {}/{} loss {:.3f}", name, step + 1,
                                                     setup.steps, r.steps.back().loss));
    }
    done_before += setup.steps;
    r.seconds = seconds_since(t0);
    r.ms_per_step = 1e3 * train_seconds / static_cast<double>(std::max(1L, setup.steps));
    r.test_accuracy = r.epochs.back().test_accuracy;  // evaluated after the last step
    r.inference_ms = inference_ms(m, test, eval_batch);

    // Collapse: the original architecture with the product weights, the same outputs.
    nonlinear::Collapsed c = nonlinear::collapse(m);
    r.collapsed_params = c.params();
    r.layers = c.layers;
    r.collapsed_accuracy = evaluate(c.model, test, eval_batch).accuracy;
    std::tie(r.collapse_max_abs, r.collapse_prediction_mismatches) =
        compare(m, c.model, test, eval_batch);
    r.collapsed_inference_ms = inference_ms(c.model, test, eval_batch);
    for (const auto& item : c.model->named_parameters())
      if (item.key().starts_with("fc") && item.key().ends_with("weight")) {
        const torch::Tensor s = at::linalg_svdvals(item.value().detach().to(torch::kFloat64));
        r.spectra.emplace_back(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
      }

    // Section 4.4: every dense layer truncated to rank rho.
    std::int64_t dense_full = 0;
    for (const auto& l : r.layers)
      if (l.kind == "linear") dense_full += l.params_dense;
    for (long rho : p.integers("ranks")) {
      nonlinear::CollapseOptions co;
      co.rank = rho;
      nonlinear::Collapsed t = nonlinear::collapse(m, co);
      TruncationRecord tr;
      tr.rank = rho;
      for (const auto& l : t.layers)
        if (l.kind == "linear") {
          tr.dense_params += l.params_kept;
          if (l.name == "fc1") tr.energy_fc1 = l.energy_kept;
        }
      tr.total_params = r.collapsed_params - dense_full + tr.dense_params;
      tr.test_accuracy = evaluate(t.model, test, eval_batch).accuracy;
      r.truncation.push_back(tr);
    }
    if (p.boolean("save_parameters")) save_parameters(m, fmt::format("{}/final/{}", o.out, name));
    return r;
  }
};

Split slice(const nonlinear::ImageData& d, long from, long count) {
  return {d.images.narrow(0, from, count), d.labels.narrow(0, from, count)};
}

}  // namespace
}  // namespace fig1nl

namespace {

int fig1_nonlinear(const Options& options) {
  using namespace fig1nl;
  const auto start = Clock::now();
  const Params p("fig1-nonlinear", options);
  Setup setup;
  setup.train_size = p.integer("train_size");
  const long validation_size = p.integer("validation_size");
  setup.test_size = p.integer("test_size");
  const long batch = p.integer("batch_size"), epochs = p.integer("epochs");
  setup.depth = static_cast<int>(p.integer("depth"));
  setup.width = p.integer("width");
  setup.smoothing = p.integer("smoothing");
  setup.claim_window = p.integer("claim_window");
  const auto models = p.strings("models");
  const long threads = p.integer("threads");
  if (batch < 1) throw Error(fmt::format("experiment.batch_size: must be >= 1, got {}", batch));
  if (setup.train_size <= batch)
    throw Error(fmt::format("experiment.train_size: must exceed batch_size ({}), got {}", batch,
                            setup.train_size));
  if (validation_size < 1 || setup.train_size + validation_size > 60000)
    throw Error(
        fmt::format("experiment.validation_size: must be >= 1 with train_size + "
                    "validation_size <= 60000, got {}",
                    validation_size));
  if (setup.test_size < 1 || setup.test_size > 10000)
    throw Error(fmt::format("experiment.test_size: must be in 1..10000, got {}", setup.test_size));
  if (epochs < 1) throw Error(fmt::format("experiment.epochs: must be >= 1, got {}", epochs));
  if (setup.depth < 2)
    throw Error(fmt::format("experiment.depth: must be >= 2, got {}", setup.depth));
  if (setup.width < 0)
    throw Error(fmt::format("experiment.width: must be >= 0, got {}", setup.width));
  if (threads < 0) throw Error(fmt::format("experiment.threads: must be >= 0, got {}", threads));
  if (p.integer("eval_batch") < 1)
    throw Error(
        fmt::format("experiment.eval_batch: must be >= 1, got {}", p.integer("eval_batch")));
  if (setup.smoothing < 1 || setup.claim_window < 1)
    throw Error("experiment.smoothing, experiment.claim_window: must be >= 1");
  const auto ranks = p.integers("ranks");
  for (long r : ranks)
    if (r < 1) throw Error(fmt::format("experiment.ranks: every rank must be >= 1, got {}", r));
  if (std::find(ranks.begin(), ranks.end(), p.integer("claim_rank")) == ranks.end())
    throw Error(fmt::format("experiment.claim_rank: must be one of ranks, got {}",
                            p.integer("claim_rank")));
  for (const auto& m : models)
    if (m != "original" && m != "overparameterized" && m != "overparameterized_identity")
      throw Error(
          fmt::format("experiment.models: unknown model '{}' (expected original, "
                      "overparameterized or overparameterized_identity)",
                      m));
  const double dropout = p.real("dropout");
  if (!(dropout >= 0 && dropout < 1))
    throw Error(fmt::format("experiment.dropout: must be in [0, 1), got {}", dropout));
  setup.steps = epochs * setup.train_size / batch;  // as the tutorial: int(epochs * n) // batch
  setup.threads = threads > 0 ? threads : cores();
  // A rerun of the same config into the same folder reuses the models it finished.
  const bool resume = same_config(options.out, p.resolved_toml());
  write_config(options, p);

  // libtorch's threads, set explicitly: results are reproducible for a fixed count.
  at::set_num_threads(static_cast<int>(setup.threads));
  try {
    at::set_num_interop_threads(1);
  } catch (const std::exception&) {  // already set in this process
  }

  const std::string dir = p.string("data_dir");
  const nonlinear::ImageData train = nonlinear::load_fashion_mnist(dir, "train");
  const nonlinear::ImageData test = nonlinear::load_fashion_mnist(dir, "t10k");
  // The tutorial validates on the first images and trains on the ones after them.
  ProgressBar bar(options, setup.steps * static_cast<long>(models.size()));
  Training training{p,
                    options,
                    setup,
                    slice(train, validation_size, setup.train_size),
                    slice(train, 0, validation_size),
                    slice(test, 0, setup.test_size),
                    bar};

  const double std = p.real("init_std"), bias = p.real("bias_init");
  const auto seed = static_cast<std::uint64_t>(p.integer("seed"));
  torch::manual_seed(seed);
  const nn::Sequential original = tutorial_cnn(std, bias, dropout);
  std::vector<ModelRun> runs;
  for (const auto& name : models) {
    if (auto done = resume ? load_model_run(options.out, name, setup.steps) : std::nullopt) {
      progress(options, fmt::format("fig1-nonlinear: {} reused from {}/models/{}.json (this "
                                    "config's earlier run)",
                                    name, options.out, name));
      training.done_before += setup.steps;
      runs.push_back(std::move(*done));
      continue;
    }
    nn::Sequential m;
    if (name == "original") {
      m = nonlinear::clone_named(original);
    } else {
      nonlinear::OverparameterizeOptions o;
      o.depth = setup.depth;
      o.width = setup.width;
      if (name == "overparameterized") {
        o.init = nonlinear::ExpandInit::factors;
        o.factor_init = [std](torch::Tensor& w) { truncated_normal_(w, std); };
        torch::manual_seed(seed + 1);
      }
      m = nonlinear::overparameterize(original, o);
    }
    if (p.boolean("save_parameters"))
      save_parameters(m, fmt::format("{}/init/{}", options.out, name));
    runs.push_back(training.run(name, m));
    save_model_run(options.out, runs.back());
  }
  return report(options, p, setup, runs, start);
}

}  // namespace

void register_torch_experiments() { register_experiment("fig1-nonlinear", fig1_nonlinear); }

}  // namespace dln::experiments
