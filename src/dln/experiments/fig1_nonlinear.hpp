// `dln experiment fig1-nonlinear` (experiments/fig1-nonlinear.toml): Figure 1 (right) of the
// notes. Internal to the experiment: the training in fig1_nonlinear.cpp, the report in
// fig1_nonlinear_report.cpp. Built only with libtorch (DLN_WITH_TORCH).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dln/experiments/common.hpp"
#include "dln/torch/overparameterize.hpp"

namespace dln::experiments {

// Registers fig1-nonlinear with run_experiment (called by the CLI and the Python module).
void register_torch_experiments();

namespace fig1nl {

struct StepRecord {
  long step = 0, epoch = 0;
  double lr = 0, loss = 0, cross_entropy = 0, l2 = 0;
};
struct EpochRecord {
  long epoch = 0, step = 0;
  double test_accuracy = 0, test_loss = 0, validation_accuracy = 0;
};
struct TruncationRecord {
  long rank = 0;
  std::int64_t dense_params = 0, total_params = 0;
  double test_accuracy = 0, energy_fc1 = 0;
};

struct ModelRun {
  std::string name;
  std::int64_t params = 0, collapsed_params = 0;
  std::vector<StepRecord> steps;
  std::vector<EpochRecord> epochs;
  std::vector<TruncationRecord> truncation;
  std::vector<nonlinear::LayerReport> layers;  // of the collapsed trained model
  std::vector<std::vector<double>> spectra;    // singular values of each dense layer
  double seconds = 0, ms_per_step = 0;
  double test_accuracy = 0, collapsed_accuracy = 0;
  double collapse_max_abs = 0;  // max |logits(expanded) - logits(collapsed)|
  long collapse_prediction_mismatches = 0;
  double inference_ms = 0, collapsed_inference_ms = 0;  // a pass over the test images
};

struct Setup {
  long train_size = 0, test_size = 0, steps = 0, threads = 0, claim_window = 0, smoothing = 0;
  int depth = 2;
  std::int64_t width = 0;
};

// Writes the CSV files and report.md, draws the figure; returns the exit code.
int report(const Options& options, const Params& p, const Setup& setup,
           const std::vector<ModelRun>& runs, std::chrono::steady_clock::time_point start);

// Resume (fig1_nonlinear_resume.cpp): a finished model's records in out/models/<name>.json,
// reused when out/config.toml is this run's resolved config. An unreadable file, or one of
// another step count, is ignored (the model is trained again).
void save_model_run(const std::string& out, const ModelRun& r);
std::optional<ModelRun> load_model_run(const std::string& out, const std::string& name, long steps);
bool same_config(const std::string& out, const std::string& resolved_toml);

// Mean of `loss` (or cross-entropy) over the last `window` steps.
double tail_mean(const ModelRun& r, long window, bool with_l2);

}  // namespace fig1nl
}  // namespace dln::experiments
