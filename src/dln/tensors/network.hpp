// Tensor factorizations as networks with multiplicative non-linearity (Section 5; Razin, Maman,
// Cohen 2021 and 2022): the CP model and the hierarchical tensor factorization, evaluated and
// differentiated at a bound set of entries only (no dense d_1...d_N tensor).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dln/core/helper_thread.hpp"
#include "dln/core/types.hpp"
#include "dln/model/network.hpp"
#include "dln/tensors/entries.hpp"

namespace dln::tensors {

enum class TensorModel { kCp, kHierarchical };
TensorModel parse_tensor_model(const std::string& s);  // "cp" | "hierarchical"
std::string to_string(TensorModel m);

// CP: W = sum_{r=1}^R U_1[:, r] (x) ... (x) U_N[:, r], U_k of size d_k x R.
// Hierarchical (2022): modes merged in adjacent groups of `pool` up to one root; a d_k x R_0
// matrix per mode, an R_{l-1} x R_l matrix per node of level l, an R_{L-1} x 1 output at the
// root; a node's r-th output mixes, through its matrix, the outer products of its children's
// r-th outputs.
struct TensorNetworkSpec {
  TensorModel model = TensorModel::kCp;
  Shape shape;
  Index components = 0;       // CP: R
  std::vector<Index> widths;  // hierarchical: R_0 .. R_{L-1} (L = levels above the modes)
  int pool = 2;               // hierarchical: children per node
  // Levels above the modes: 1 for CP; ceil(log_pool N) for the hierarchical model.
  int levels() const;
  void validate() const;  // throws Error naming network.<key>
};

// One node of the tree: leaves are modes (level 0), the root is last. `param` indexes the
// parameter list (-1: CP's root, whose mixing is fixed to ones).
struct TreeNode {
  int level = 0;
  std::vector<int> children;  // node indices (empty for leaves)
  std::vector<int> modes;     // the modes below (0-based)
  int param = -1;
  Index in = 0, out = 0;  // the parameter is in x out (leaves: d_k x R_0)
};
std::vector<TreeNode> build_tree(const TensorNetworkSpec& spec);

// Parameter shapes, in the order of Factors: leaves (modes 1..N), then nodes level by level,
// root last (CP: U_1..U_N only).
std::vector<std::pair<Index, Index>> parameter_shapes(const TensorNetworkSpec& spec);
Factors zero_parameters(const TensorNetworkSpec& spec);
// Every entry i.i.d. N(0, std^2) from `seed`, parameter by parameter in order.
Factors gaussian_parameters(const TensorNetworkSpec& spec, double stddev, std::uint64_t seed);
// Throws Error "<where>: ..." when w does not have the spec's shapes or is not finite.
void check_parameters(const TensorNetworkSpec& spec, const Factors& w, const std::string& where);

// The network bound to a set of distinct entries. Each node computes its outputs once per
// distinct index sub-tuple of its modes (a node over modes (1, 2) of a 8^4 tensor has at most
// 64), so work is sparse and shared.
class TensorNetwork {
 public:
  TensorNetwork(TensorNetworkSpec spec, const Entries& entries);
  ~TensorNetwork();
  TensorNetwork(TensorNetwork&&) noexcept;
  const TensorNetworkSpec& spec() const;
  const std::vector<TreeNode>& tree() const;
  Index size() const;  // bound entries

  // v_e = W[entry e] for every bound entry.
  void values(const Factors& w, Vec& v);
  // grads = sum_e dv_e d W[entry e] / d w, at the w of the last values() call.
  void backward(const Factors& w, const Vec& dv, Factors& grads);
  // Multiply-adds of one values() + backward() (benchmarks).
  double flops() const;

  // CP over distinct entries: completion in one pass per entry (prefix products, the value and
  // its residual, then the gradient by suffix products). The entries are split in two fixed
  // halves, run concurrently when `helper` is given, and their gradients summed in a fixed
  // order, so the result does not depend on the thread count. Returns sum_e (v_e - b_e)^2 and
  // sets grads = coef sum_e (v_e - b_e) dW[e]/dw.
  bool fused_completion() const;
  double completion_step(const Factors& w, const Vec& b, double coef, Factors& grads,
                         HelperThread* helper);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The full tensor in C order (the network bound to every entry).
Vec dense_tensor(const TensorNetworkSpec& spec, const Factors& w);

// Component norms per node of level >= 1, in tree order (CP: one node). Node v's r-th local
// component norm is prod_{children c} ||W_c[:, r]|| * ||W_v[r, :]|| (2022); for CP this is
// prod_k ||U_k[:, r]|| (2021).
std::vector<Vec> component_norms(const TensorNetworkSpec& spec, const Factors& w);

// Gradient flow conserves, for every node v and r, the differences of the squared norms
// ||W_v[r, :]||^2 and ||W_c[:, r]||^2 of its children (for CP: ||U_k[:, r]||^2 - ||U_l[:, r]||^2).
// Returns the largest max - min over (v, r).
double tensor_unbalancedness(const TensorNetworkSpec& spec, const Factors& w);

}  // namespace dln::tensors
