// fig1-nonlinear's resume files: each trained model's records as out/models/<name>.json, written
// atomically when the model is done and reused by a rerun of the same config (the results are a
// function of the config alone: every model reseeds its own initialisation and dropout).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dln/experiments/fig1_nonlinear.hpp"
#include "dln/io/files.hpp"

namespace dln::experiments::fig1nl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string path_of(const std::string& out, const std::string& name) {
  return (fs::path(out) / "models" / (name + ".json")).string();
}

}  // namespace

void save_model_run(const std::string& out, const ModelRun& r) {
  json steps = {{"step", json::array()}, {"epoch", json::array()},         {"lr", json::array()},
                {"loss", json::array()}, {"cross_entropy", json::array()}, {"l2", json::array()}};
  for (const auto& s : r.steps) {
    steps["step"].push_back(s.step);
    steps["epoch"].push_back(s.epoch);
    steps["lr"].push_back(s.lr);
    steps["loss"].push_back(s.loss);
    steps["cross_entropy"].push_back(s.cross_entropy);
    steps["l2"].push_back(s.l2);
  }
  json epochs = json::array(), truncation = json::array(), layers = json::array();
  for (const auto& e : r.epochs)
    epochs.push_back({e.epoch, e.step, e.test_accuracy, e.test_loss, e.validation_accuracy});
  for (const auto& t : r.truncation)
    truncation.push_back({t.rank, t.dense_params, t.total_params, t.test_accuracy, t.energy_fc1});
  for (const auto& l : r.layers)
    layers.push_back({l.name, l.kind, l.out, l.in, l.full_rank, l.rank_kept, l.energy_kept,
                      l.effective_rank, l.params_before, l.params_dense, l.params_kept});
  const json j = {{"name", r.name},
                  {"params", r.params},
                  {"collapsed_params", r.collapsed_params},
                  {"steps", steps},
                  {"epochs", epochs},
                  {"truncation", truncation},
                  {"layers", layers},
                  {"spectra", r.spectra},
                  {"seconds", r.seconds},
                  {"ms_per_step", r.ms_per_step},
                  {"test_accuracy", r.test_accuracy},
                  {"collapsed_accuracy", r.collapsed_accuracy},
                  {"collapse_max_abs", r.collapse_max_abs},
                  {"collapse_prediction_mismatches", r.collapse_prediction_mismatches},
                  {"inference_ms", r.inference_ms},
                  {"collapsed_inference_ms", r.collapsed_inference_ms}};
  io::ensure_writable_directory((fs::path(out) / "models").string());
  io::write_file_atomic(path_of(out, r.name), j.dump());
}

std::optional<ModelRun> load_model_run(const std::string& out, const std::string& name,
                                       long steps) {
  std::ifstream in(path_of(out, name));
  if (!in) return std::nullopt;
  try {
    const json j = json::parse(in);
    ModelRun r;
    r.name = j.at("name").get<std::string>();
    r.params = j.at("params").get<std::int64_t>();
    r.collapsed_params = j.at("collapsed_params").get<std::int64_t>();
    const json& s = j.at("steps");
    const std::size_t n = s.at("step").size();
    for (const char* key : {"epoch", "lr", "loss", "cross_entropy", "l2"})
      if (s.at(key).size() != n) return std::nullopt;
    for (std::size_t i = 0; i < n; ++i)
      r.steps.push_back({s["step"][i].get<long>(), s["epoch"][i].get<long>(),
                         s["lr"][i].get<double>(), s["loss"][i].get<double>(),
                         s["cross_entropy"][i].get<double>(), s["l2"][i].get<double>()});
    for (const auto& e : j.at("epochs"))
      r.epochs.push_back({e.at(0).get<long>(), e.at(1).get<long>(), e.at(2).get<double>(),
                          e.at(3).get<double>(), e.at(4).get<double>()});
    for (const auto& t : j.at("truncation"))
      r.truncation.push_back({t.at(0).get<long>(), t.at(1).get<std::int64_t>(),
                              t.at(2).get<std::int64_t>(), t.at(3).get<double>(),
                              t.at(4).get<double>()});
    for (const auto& l : j.at("layers"))
      r.layers.push_back({l.at(0).get<std::string>(), l.at(1).get<std::string>(),
                          l.at(2).get<std::int64_t>(), l.at(3).get<std::int64_t>(),
                          l.at(4).get<std::int64_t>(), l.at(5).get<std::int64_t>(),
                          l.at(6).get<double>(), l.at(7).get<double>(), l.at(8).get<std::int64_t>(),
                          l.at(9).get<std::int64_t>(), l.at(10).get<std::int64_t>()});
    r.spectra = j.at("spectra").get<std::vector<std::vector<double>>>();
    r.seconds = j.at("seconds").get<double>();
    r.ms_per_step = j.at("ms_per_step").get<double>();
    r.test_accuracy = j.at("test_accuracy").get<double>();
    r.collapsed_accuracy = j.at("collapsed_accuracy").get<double>();
    r.collapse_max_abs = j.at("collapse_max_abs").get<double>();
    r.collapse_prediction_mismatches = j.at("collapse_prediction_mismatches").get<long>();
    r.inference_ms = j.at("inference_ms").get<double>();
    r.collapsed_inference_ms = j.at("collapsed_inference_ms").get<double>();
    if (r.name != name || static_cast<long>(r.steps.size()) != steps) return std::nullopt;
    return r;
  } catch (const std::exception&) {  // unreadable: the model is trained again
    return std::nullopt;
  }
}

bool same_config(const std::string& out, const std::string& resolved_toml) {
  const fs::path config = fs::path(out) / "config.toml";
  return fs::is_regular_file(config) && io::read_file(config.string()) == resolved_toml;
}

}  // namespace dln::experiments::fig1nl
