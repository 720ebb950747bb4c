// Linear overparameterization of non-linear networks (notes, Sections 3.2 and 4.4; Arora, Cohen
// & Hazan 2018; ExpandNets' CL expansion): each Linear of a libtorch model becomes a product of
// `depth` linear maps and, optionally, each k x k Conv2d a k x k convolution followed by 1 x 1
// convolutions. The function class is unchanged; gradient descent on the factors follows Eq. 4
// for each product. `collapse` multiplies the products back into the original architecture, with
// an optional rank truncation (rho (d + d' - rho) parameters, Section 4.4).
//
// libtorch modules call their members directly in forward(), so a general module cannot be
// rewritten from outside: these functions rewrite a torch::nn::Sequential (libtorch cannot nest
// one inside another), and LinearProduct / ConvProduct can be used directly in a user's own
// module. A child module that holds a Linear (or, with conv, a Conv2d) is refused, not skipped.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dln::nonlinear {

// How the factors of an expanded layer start. The paper's choice is not published.
enum class ExpandInit {
  identity,  // the product equals the original layer's current weight: W_1 holds it (extra rows
             // from the default init), W_2..W_n are padded identities
  factors,   // every factor initialised on its own (libtorch's default, or `factor_init`)
  product,   // Gaussian factors whose product has the original default init's entry variance:
             // W_1 ~ N(0, 1/(3 fan_in)), W_j ~ N(0, 1/h_{j-1}) for j >= 2
};
// "identity", "factors", "product"; throws dln::Error naming `field` on anything else.
ExpandInit parse_expand_init(const std::string& text, const std::string& field);
std::string to_string(ExpandInit init);

struct OverparameterizeOptions {
  int depth = 2;           // factors per Linear, convolutions per Conv2d (1: a copy)
  std::int64_t width = 0;  // hidden width of a Linear product; 0: its out_features (published)
  bool conv = false;       // also expand every Conv2d (k x k, then depth - 1 1 x 1 convolutions)
  std::int64_t conv_rate = 4;  // hidden channels of an expanded Conv2d: conv_rate x out_channels
  ExpandInit init = ExpandInit::identity;
  // With init == factors: applied to every factor's weight (e.g. a truncated normal); empty:
  // libtorch's default initialisation of a new layer of that shape.
  std::function<void(torch::Tensor&)> factor_init;
  bool IsValid(std::string* error) const;
};

// W_n ... W_1 x + b: `depth` bias-free Linear factors except the last (Eq. 1 inside a network).
struct LinearProductOptions {
  std::int64_t in = 0, out = 0, width = 0;
  int depth = 2;
  bool bias = true;
};
class LinearProductImpl : public torch::nn::Cloneable<LinearProductImpl> {
 public:
  explicit LinearProductImpl(LinearProductOptions options);
  void reset() override;
  torch::Tensor forward(torch::Tensor x);
  // The end-to-end matrix W_n ... W_1 (out x in), computed in float64.
  torch::Tensor end_to_end_weight() const;
  LinearProductOptions options;
  std::vector<torch::nn::Linear> factors;
};
TORCH_MODULE(LinearProduct);

// A k x k convolution to conv_rate x out_channels (no bias), then depth - 1 1 x 1 convolutions
// with the same groups, the last to out_channels with the bias. Padding sits only in the first,
// so the product is again a k x k convolution exactly (ExpandNets' public collapse breaks when
// padding sits inside an expansion unit).
struct ConvProductOptions {
  torch::nn::Conv2dOptions base{1, 1, 1};  // the original layer's options
  std::int64_t rate = 4;
  int depth = 2;
};
class ConvProductImpl : public torch::nn::Cloneable<ConvProductImpl> {
 public:
  explicit ConvProductImpl(ConvProductOptions options);
  void reset() override;
  torch::Tensor forward(torch::Tensor x);
  // The composed kernel (out, in / groups, k, k) in float64, and the bias (or undefined).
  torch::Tensor end_to_end_weight() const;
  ConvProductOptions options;
  torch::nn::Conv2d spatial{nullptr};
  std::vector<torch::nn::Conv2d> pointwise;
};
TORCH_MODULE(ConvProduct);

// A deep copy of `model` with every Linear (and, with options.conv, every Conv2d) expanded.
// Throws dln::Error on invalid options or an expansion the layer cannot take.
torch::nn::Sequential overparameterize(const torch::nn::Sequential& model,
                                       const OverparameterizeOptions& options);

struct CollapseOptions {
  std::int64_t rank = 0;                      // keep this rank in every Linear; 0: no truncation
  std::map<std::string, std::int64_t> ranks;  // per layer name ("fc1", "3"), over `rank`
  double energy = 0;      // in (0, 1]: the least rank holding this share of sum sigma^2; 0: off
  bool factored = false;  // store a truncated layer as a width-rho LinearProduct
  bool IsValid(std::string* error) const;
};

// What collapse did to one layer.
struct LayerReport {
  std::string name, kind;        // kind: "linear" or "conv2d"
  std::int64_t out = 0, in = 0;  // the (collapsed) weight's matrix shape (conv: out x in k k / g)
  std::int64_t full_rank = 0, rank_kept = 0;
  double energy_kept = 1;     // sum of kept sigma^2 over the total
  double effective_rank = 0;  // Roy & Vetterli 2007, of the collapsed weight
  std::int64_t params_before = 0, params_dense = 0, params_kept = 0;  // with the bias
};
struct Collapsed {
  torch::nn::Sequential model;
  std::vector<LayerReport> layers;
  std::int64_t params() const;
};

// The original architecture with each product multiplied out (float64, then the layer's dtype);
// its outputs equal the expanded model's to rounding. Truncation applies to Linear layers only.
Collapsed collapse(const torch::nn::Sequential& model, const CollapseOptions& options = {});

// A deep copy that keeps the children's names (Sequential::clone renames them 0, 1, ...).
torch::nn::Sequential clone_named(const torch::nn::Sequential& model);

// Parameters of a module (every registered parameter, recursively).
std::int64_t count_parameters(const torch::nn::Module& module);

}  // namespace dln::nonlinear
