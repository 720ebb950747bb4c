#include "dln/torch/overparameterize.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <set>

#include "dln/core/types.hpp"
#include "dln/diagnostics/metrics.hpp"

namespace dln::nonlinear {
namespace nn = torch::nn;

ExpandInit parse_expand_init(const std::string& text, const std::string& field) {
  if (text == "identity") return ExpandInit::identity;
  if (text == "factors") return ExpandInit::factors;
  if (text == "product") return ExpandInit::product;
  throw Error(fmt::format("{}: unknown initialisation '{}' (expected identity, factors or product)",
                          field, text));
}

std::string to_string(ExpandInit init) {
  switch (init) {
    case ExpandInit::identity:
      return "identity";
    case ExpandInit::factors:
      return "factors";
    case ExpandInit::product:
      return "product";
  }
  return "?";
}

bool OverparameterizeOptions::IsValid(std::string* error) const {
  if (depth < 1) return *error = fmt::format("depth: must be >= 1, got {}", depth), false;
  if (width < 0)
    return *error = fmt::format("width: must be >= 1 (0: out_features), got {}", width), false;
  if (conv_rate < 1)
    return *error = fmt::format("conv_rate: must be >= 1, got {}", conv_rate), false;
  if (factor_init && init != ExpandInit::factors)
    return *error = "factor_init: only used with init = factors", false;
  return true;
}

bool CollapseOptions::IsValid(std::string* error) const {
  if (rank < 0) return *error = fmt::format("rank: must be >= 1 (0: off), got {}", rank), false;
  for (const auto& [name, r] : ranks)
    if (r < 1) return *error = fmt::format("ranks[{}]: must be >= 1, got {}", name, r), false;
  if (!(energy >= 0 && energy <= 1))
    return *error = fmt::format("energy: must be in (0, 1] (0: off), got {}", energy), false;
  if (energy > 0 && (rank > 0 || !ranks.empty()))
    return *error = "energy: give either a rank or an energy, not both", false;
  return true;
}

LinearProductImpl::LinearProductImpl(LinearProductOptions o) : options(o) { reset(); }

void LinearProductImpl::reset() {
  factors.clear();
  std::int64_t prev = options.in;
  for (int j = 0; j < options.depth; ++j) {
    const bool last = j == options.depth - 1;
    const std::int64_t next = last ? options.out : options.width;
    factors.push_back(
        register_module(fmt::format("W{}", j + 1),
                        nn::Linear(nn::LinearOptions(prev, next).bias(last && options.bias))));
    prev = next;
  }
}

torch::Tensor LinearProductImpl::forward(torch::Tensor x) {
  for (auto& f : factors) x = f->forward(x);
  return x;
}

torch::Tensor LinearProductImpl::end_to_end_weight() const {
  torch::Tensor w = factors[0]->weight.detach().to(torch::kFloat64);
  for (std::size_t j = 1; j < factors.size(); ++j)
    w = factors[j]->weight.detach().to(torch::kFloat64).matmul(w);
  return w;
}

ConvProductImpl::ConvProductImpl(ConvProductOptions o) : options(std::move(o)) { reset(); }

void ConvProductImpl::reset() {
  pointwise.clear();
  const auto& b = options.base;
  if (options.depth == 1) {
    spatial = register_module("spatial", nn::Conv2d(b));
    return;
  }
  const std::int64_t hidden = options.rate * b.out_channels();
  nn::Conv2dOptions first = b;
  first.out_channels(hidden).bias(false);
  spatial = register_module("spatial", nn::Conv2d(first));
  for (int j = 1; j < options.depth; ++j) {
    const bool last = j == options.depth - 1;
    pointwise.push_back(
        register_module(fmt::format("pointwise{}", j),
                        nn::Conv2d(nn::Conv2dOptions(hidden, last ? b.out_channels() : hidden, 1)
                                       .groups(b.groups())
                                       .bias(last && b.bias()))));
  }
}

torch::Tensor ConvProductImpl::forward(torch::Tensor x) {
  x = spatial->forward(x);
  for (auto& p : pointwise) x = p->forward(x);
  return x;
}

torch::Tensor ConvProductImpl::end_to_end_weight() const {
  const torch::Tensor k = spatial->weight.detach().to(torch::kFloat64);  // (M, in/g, kh, kw)
  if (pointwise.empty()) return k;
  const std::int64_t g = options.base.groups();
  // Each 1 x 1 convolution is, per group, a matrix on the channels of every pixel.
  const auto block = [&](const nn::Conv2d& c) {
    const torch::Tensor w = c->weight.detach().to(torch::kFloat64);
    return w.reshape({g, w.size(0) / g, w.size(1)});
  };
  torch::Tensor p = block(pointwise[0]);
  for (std::size_t j = 1; j < pointwise.size(); ++j) p = torch::bmm(block(pointwise[j]), p);
  const torch::Tensor w = torch::bmm(p, k.reshape({g, k.size(0) / g, -1}));
  return w.reshape({options.base.out_channels(), k.size(1), k.size(2), k.size(3)});
}

namespace {

nn::Conv2dOptions conv2d_options(const nn::detail::ConvNdOptions<2>& o) {
  return nn::Conv2dOptions(o.in_channels(), o.out_channels(), o.kernel_size())
      .stride(o.stride())
      .padding(o.padding())
      .dilation(o.dilation())
      .groups(o.groups())
      .bias(o.bias())
      .padding_mode(o.padding_mode());
}

// Throws when a child other than a Sequential holds layers this rewrite would leave alone.
void refuse_opaque(const nn::Module& m, const std::string& name, bool conv) {
  std::string type = m.name();
  if (const auto colon = type.rfind("::"); colon != std::string::npos)
    type = type.substr(colon + 2);
  for (const auto& sub : m.modules(/*include_self=*/false)) {
    const bool linear = dynamic_cast<const nn::LinearImpl*>(sub.get()) != nullptr;
    const bool conv2d = conv && dynamic_cast<const nn::Conv2dImpl*>(sub.get()) != nullptr;
    if (linear || conv2d)
      throw Error(fmt::format(
          "overparameterize: layer '{}' ({}) holds a {} inside a module that is not a "
          "Sequential; its forward() cannot be rewritten from outside (use "
          "dln::nonlinear::{} in that module)",
          name, type, linear ? "Linear" : "Conv2d", linear ? "LinearProduct" : "ConvProduct"));
  }
}

LinearProduct expand_linear(const nn::LinearImpl& lin, const std::string& name,
                            const OverparameterizeOptions& o) {
  const std::int64_t in = lin.options.in_features(), out = lin.options.out_features();
  const std::int64_t width = o.width > 0 ? o.width : out;
  if (o.init == ExpandInit::identity && width < out)
    throw Error(
        fmt::format("overparameterize: init = identity needs width >= out_features "
                    "(layer '{}': width {} < {})",
                    name, width, out));
  LinearProduct p(LinearProductOptions{in, out, width, o.depth, lin.options.bias()});
  p->to(lin.weight.device(), lin.weight.scalar_type());
  torch::NoGradGuard no_grad;
  auto& f = p->factors;
  switch (o.init) {
    case ExpandInit::identity:
      f[0]->weight.narrow(0, 0, out).copy_(lin.weight);
      for (std::size_t j = 1; j < f.size(); ++j)
        f[j]->weight.copy_(
            torch::eye(f[j]->weight.size(0), f[j]->weight.size(1), f[j]->weight.options()));
      break;
    case ExpandInit::factors:
      if (o.factor_init)
        for (auto& l : f) o.factor_init(l->weight);
      break;
    case ExpandInit::product:
      f[0]->weight.normal_(0, std::sqrt(1.0 / (3.0 * static_cast<double>(in))));
      for (std::size_t j = 1; j < f.size(); ++j)
        f[j]->weight.normal_(0, std::sqrt(1.0 / static_cast<double>(f[j]->weight.size(1))));
      break;
  }
  if (lin.options.bias()) f.back()->bias.copy_(lin.bias);
  return p;
}

ConvProduct expand_conv(const nn::Conv2dImpl& conv, const OverparameterizeOptions& o) {
  ConvProduct p(ConvProductOptions{conv2d_options(conv.options), o.conv_rate, o.depth});
  p->to(conv.weight.device(), conv.weight.scalar_type());
  torch::NoGradGuard no_grad;
  const std::int64_t g = conv.options.groups(), og = conv.options.out_channels() / g;
  const std::int64_t mg = p->spatial->weight.size(0) / g;
  switch (o.init) {
    case ExpandInit::identity:
      for (std::int64_t j = 0; j < g; ++j)
        p->spatial->weight.narrow(0, j * mg, og).copy_(conv.weight.narrow(0, j * og, og));
      for (auto& c : p->pointwise) {
        const std::int64_t rows = c->weight.size(0) / g, cols = c->weight.size(1);
        c->weight.view({g, rows, cols})
            .copy_(
                torch::eye(rows, cols, c->weight.options()).unsqueeze(0).expand({g, rows, cols}));
      }
      break;
    case ExpandInit::factors:
      if (o.factor_init) {
        o.factor_init(p->spatial->weight);
        for (auto& c : p->pointwise) o.factor_init(c->weight);
      }
      break;
    case ExpandInit::product: {
      const double fan_in = static_cast<double>(p->spatial->weight[0].numel());
      p->spatial->weight.normal_(0, std::sqrt(1.0 / (3.0 * fan_in)));
      for (auto& c : p->pointwise)
        c->weight.normal_(0, std::sqrt(1.0 / static_cast<double>(c->weight.size(1))));
      break;
    }
  }
  if (conv.options.bias()) {
    auto& last = p->pointwise.empty() ? p->spatial : p->pointwise.back();
    last->bias.copy_(conv.bias);
  }
  return p;
}

// A new Sequential with each child (name, module) replaced by map(name, child), names kept.
nn::Sequential map_children(
    const nn::Sequential& model,
    const std::function<nn::AnyModule(const std::string&, const nn::AnyModule&)>& map) {
  nn::Sequential out;
  const auto children = model->named_children();
  std::size_t i = 0;
  for (const auto& any : *model) {
    std::string name = children[i++].key();
    nn::AnyModule mapped = map(name, any);
    out->push_back(std::move(name), std::move(mapped));
  }
  return out;
}

nn::AnyModule expand_child(const std::string& name, const nn::AnyModule& any,
                           const OverparameterizeOptions& o) {
  const auto ptr = any.ptr();
  if (auto lin = std::dynamic_pointer_cast<nn::LinearImpl>(ptr))
    return nn::AnyModule(expand_linear(*lin, name, o));
  if (auto conv = std::dynamic_pointer_cast<nn::Conv2dImpl>(ptr); conv && o.conv)
    return nn::AnyModule(expand_conv(*conv, o));
  if (!std::dynamic_pointer_cast<LinearProductImpl>(ptr) &&
      !std::dynamic_pointer_cast<ConvProductImpl>(ptr))
    refuse_opaque(*ptr, name, o.conv);
  return any.clone();
}

struct Collapser {
  const CollapseOptions& o;
  std::vector<LayerReport> layers;
  std::set<std::string> linear_names;

  // The rank to keep for a Linear layer named `name` with singular values `s` (descending).
  std::int64_t rank_for(const std::string& name, const torch::Tensor& s) const {
    const std::int64_t full = s.size(0);
    if (auto it = o.ranks.find(name); it != o.ranks.end()) return std::min(it->second, full);
    if (o.rank > 0) return std::min(o.rank, full);
    if (o.energy > 0) {
      const torch::Tensor c = (s * s).cumsum(0);
      const double total = c[full - 1].item<double>();
      for (std::int64_t r = 1; r <= full; ++r)
        if (c[r - 1].item<double>() >= o.energy * total * (1 - 1e-12)) return r;
    }
    return full;
  }

  nn::AnyModule linear(const std::string& name, torch::Tensor w, const torch::Tensor& bias,
                       const torch::TensorOptions& to, std::int64_t before) {
    linear_names.insert(name);
    const std::int64_t out = w.size(0), in = w.size(1), nb = bias.defined() ? out : 0;
    const auto [u, s, vh] = at::linalg_svd(w, /*full_matrices=*/false);
    Vec sigma(s.size(0));
    for (Index k = 0; k < sigma.size(); ++k) sigma(k) = s[k].item<double>();
    LayerReport r{name,      "linear",      out,          in,
                  s.size(0), s.size(0),     1.0,          effective_rank(sigma),
                  before,    out * in + nb, out * in + nb};
    const std::int64_t rho = rank_for(name, s);
    torch::NoGradGuard no_grad;
    if (rho < r.full_rank) {
      const double total = (s * s).sum().item<double>();
      r.rank_kept = rho;
      r.energy_kept = total > 0 ? (s.narrow(0, 0, rho).square().sum().item<double>() / total) : 1;
      r.params_kept = rho * (out + in - rho) + nb;  // Section 4.4
      const torch::Tensor left = u.narrow(1, 0, rho) * s.narrow(0, 0, rho);
      const torch::Tensor right = vh.narrow(0, 0, rho);
      if (o.factored) {
        LinearProduct p(LinearProductOptions{in, out, rho, 2, bias.defined()});
        p->to(to.device(), to.dtype().toScalarType());
        p->factors[0]->weight.copy_(right);
        p->factors[1]->weight.copy_(left);
        if (bias.defined()) p->factors[1]->bias.copy_(bias);
        layers.push_back(r);
        return nn::AnyModule(p);
      }
      w = left.matmul(right);
    }
    nn::Linear l(nn::LinearOptions(in, out).bias(bias.defined()));
    l->to(to.device(), to.dtype().toScalarType());
    l->weight.copy_(w);
    if (bias.defined()) l->bias.copy_(bias);
    layers.push_back(r);
    return nn::AnyModule(l);
  }

  nn::AnyModule conv(const std::string& name, const nn::Conv2dOptions& options,
                     const torch::Tensor& w, const torch::Tensor& bias,
                     const torch::TensorOptions& to, std::int64_t before) {
    nn::Conv2d c(options);
    c->to(to.device(), to.dtype().toScalarType());
    torch::NoGradGuard no_grad;
    c->weight.copy_(w);
    if (bias.defined()) c->bias.copy_(bias);
    const torch::Tensor m = w.reshape({w.size(0), -1}).to(torch::kFloat64);
    const torch::Tensor s = at::linalg_svdvals(m);
    Vec sigma(s.size(0));
    for (Index k = 0; k < sigma.size(); ++k) sigma(k) = s[k].item<double>();
    const std::int64_t dense = count_parameters(*c);
    layers.push_back({name, "conv2d", m.size(0), m.size(1), s.size(0), s.size(0), 1.0,
                      effective_rank(sigma), before, dense, dense});
    return nn::AnyModule(c);
  }

  nn::AnyModule child(const std::string& name, const nn::AnyModule& any) {
    const auto ptr = any.ptr();
    if (auto p = std::dynamic_pointer_cast<LinearProductImpl>(ptr)) {
      const auto& last = p->factors.back();
      return linear(name, p->end_to_end_weight(),
                    last->options.bias() ? last->bias.detach() : torch::Tensor(),
                    last->weight.options(), count_parameters(*p));
    }
    if (auto l = std::dynamic_pointer_cast<nn::LinearImpl>(ptr))
      return linear(name, l->weight.detach().to(torch::kFloat64),
                    l->options.bias() ? l->bias.detach() : torch::Tensor(), l->weight.options(),
                    count_parameters(*l));
    if (auto c = std::dynamic_pointer_cast<ConvProductImpl>(ptr)) {
      const auto& last = c->pointwise.empty() ? c->spatial : c->pointwise.back();
      return conv(name, c->options.base, c->end_to_end_weight(),
                  c->options.base.bias() ? last->bias.detach() : torch::Tensor(),
                  c->spatial->weight.options(), count_parameters(*c));
    }
    if (auto k = std::dynamic_pointer_cast<nn::Conv2dImpl>(ptr))
      return conv(name, conv2d_options(k->options), k->weight.detach(),
                  k->options.bias() ? k->bias.detach() : torch::Tensor(), k->weight.options(),
                  count_parameters(*k));
    return any.clone();
  }
};

}  // namespace

nn::Sequential overparameterize(const nn::Sequential& model, const OverparameterizeOptions& o) {
  std::string error;
  if (!o.IsValid(&error)) throw Error("overparameterize: " + error);
  return map_children(model, [&](const std::string& name, const nn::AnyModule& any) {
    return expand_child(name, any, o);
  });
}

Collapsed collapse(const nn::Sequential& model, const CollapseOptions& o) {
  std::string error;
  if (!o.IsValid(&error)) throw Error("collapse: " + error);
  Collapser c{o, {}, {}};
  Collapsed result{
      map_children(model, [&](const std::string& name,
                              const nn::AnyModule& any) { return c.child(name, any); }),
      {}};
  for (const auto& [name, r] : o.ranks)
    if (!c.linear_names.count(name))
      throw Error(fmt::format("collapse: ranks: no Linear layer named '{}' (Linear layers: {})",
                              name, fmt::join(c.linear_names, ", ")));
  result.layers = std::move(c.layers);
  return result;
}

nn::Sequential clone_named(const nn::Sequential& model) {
  return map_children(model,
                      [](const std::string&, const nn::AnyModule& any) { return any.clone(); });
}

std::int64_t Collapsed::params() const { return count_parameters(*model); }

std::int64_t count_parameters(const nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) n += p.numel();
  return n;
}

}  // namespace dln::nonlinear
