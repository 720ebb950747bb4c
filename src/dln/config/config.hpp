// The run configuration: TOML file + `--set section.key=value` overrides -> validated structs.
// Key names are a public contract (docs/config.md); unknown keys are errors.
#pragma once

#include <string>
#include <vector>

#include "dln/core/memory.hpp"
#include "dln/init/initializers.hpp"
#include "dln/optimizers/train.hpp"
#include "dln/problems/problem.hpp"
#include "dln/tensors/network.hpp"

namespace dln {

struct NetworkConfig {
  int depth = 3;
  Index width = 0;            // all hidden widths; 0 = max(rows, cols)
  std::vector<Index> widths;  // d_1..d_{n-1}, overrides width; hierarchical: R_0..R_{L-1}
  InitOptions init;
  // Tensor problems (dln/tensors): "cp" or "hierarchical"; matrix problems: "matrix".
  std::string model = "matrix";
  Index components = 0;  // cp: R
  int pool = 2;          // hierarchical: children per node
};

struct Config {
  ProblemConfig problem;
  NetworkConfig network;
  OptimizerOptions optimizer;
  StopOptions stop;
  RecordOptions record;
  double record_dt = 0;       // [record] dt: continuous optimizers record every dt (0: time / 100)
  int threads = 2;            // [run] threads: BLAS threads
  long checkpoint_every = 0;  // [run] checkpoint_every: discrete optimizers, iterations (0: off)
  double max_memory = 0;      // [run] max_memory: bytes a run may allocate (0: what is available)

  // d_0 .. d_n of the network for this problem.
  std::vector<Index> dims() const;
  // Throws Error naming the first invalid key.
  void validate() const;
  // Tensor problems: the network (throws Error naming network.<key>).
  tensors::TensorNetworkSpec tensor_spec() const;
  // What dln::run will allocate (the memory guard checks it before allocating).
  memory::Estimate memory_estimate() const;
  // The resolved config (every key, defaults filled in) as TOML text.
  std::string to_toml() const;

 private:
  void validate_matrix_network() const;
  void validate_tensor() const;
  memory::Estimate tensor_memory_estimate() const;
};

// Parses TOML text (`source` names it in errors: "<source>: line L: ..."), applies overrides
// ("section.key=value", value parsed as TOML, bare words taken as strings), validates.
Config parse_config(const std::string& toml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace dln
