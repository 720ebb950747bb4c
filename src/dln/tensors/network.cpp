#include "dln/tensors/network.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "dln/core/blas.hpp"
#include "dln/core/rng.hpp"

namespace dln::tensors {

TensorModel parse_tensor_model(const std::string& s) {
  if (s == "cp") return TensorModel::kCp;
  if (s == "hierarchical") return TensorModel::kHierarchical;
  throw Error(fmt::format("network.model: expected matrix, cp or hierarchical, got '{}'", s));
}

std::string to_string(TensorModel m) { return m == TensorModel::kCp ? "cp" : "hierarchical"; }

int TensorNetworkSpec::levels() const {
  if (model == TensorModel::kCp) return 1;
  int levels = 0;
  for (std::size_t n = shape.size(); n > 1; n = (n + pool - 1) / pool) ++levels;
  return std::max(levels, 1);
}

void TensorNetworkSpec::validate() const {
  validate_shape(shape, "problem.shape");
  if (model == TensorModel::kCp) {
    if (components <= 0)
      throw Error(fmt::format("network.components: must be >= 1, got {}", components));
    return;
  }
  if (pool < 2) throw Error(fmt::format("network.pool: must be >= 2, got {}", pool));
  const int l = levels();
  if (static_cast<int>(widths.size()) != l)
    throw Error(fmt::format(
        "network.widths: the hierarchical model over {} modes with pool {} has {} levels, so "
        "expected {} widths R_0..R_{}, got {}",
        shape.size(), pool, l, l, l - 1, widths.size()));
  for (Index w : widths)
    if (w <= 0) throw Error(fmt::format("network.widths: every width must be >= 1, got {}", w));
}

std::vector<TreeNode> build_tree(const TensorNetworkSpec& spec) {
  std::vector<TreeNode> nodes;
  const int n = static_cast<int>(spec.shape.size());
  const Index r0 = spec.model == TensorModel::kCp ? spec.components : spec.widths.at(0);
  int param = 0;
  std::vector<int> current;
  for (int k = 0; k < n; ++k) {
    TreeNode leaf;
    leaf.modes = {k};
    leaf.param = param++;
    leaf.in = spec.shape[static_cast<std::size_t>(k)];
    leaf.out = r0;
    nodes.push_back(leaf);
    current.push_back(k);
  }
  const int group = spec.model == TensorModel::kCp ? n : spec.pool;
  for (int level = 1; current.size() > 1 || level == 1; ++level) {
    std::vector<int> next;
    const bool root = static_cast<int>(current.size()) <= group;
    for (std::size_t g = 0; g < current.size(); g += static_cast<std::size_t>(group)) {
      TreeNode v;
      v.level = level;
      for (std::size_t c = g; c < std::min(current.size(), g + group); ++c) {
        v.children.push_back(current[c]);
        const auto& m = nodes[static_cast<std::size_t>(current[c])].modes;
        v.modes.insert(v.modes.end(), m.begin(), m.end());
      }
      if (spec.model == TensorModel::kHierarchical) {
        v.in = spec.widths[static_cast<std::size_t>(level - 1)];
        v.out = root ? 1 : spec.widths[static_cast<std::size_t>(level)];
      } else {
        v.in = spec.components;
        v.out = 1;
      }
      next.push_back(static_cast<int>(nodes.size()));
      nodes.push_back(v);
    }
    current = next;
    if (root) break;
  }
  if (spec.model == TensorModel::kHierarchical)
    for (auto& v : nodes)
      if (v.level > 0) v.param = param++;
  return nodes;
}

std::vector<std::pair<Index, Index>> parameter_shapes(const TensorNetworkSpec& spec) {
  std::vector<std::pair<Index, Index>> shapes;
  for (const auto& v : build_tree(spec))
    if (v.param >= 0) shapes.emplace_back(v.in, v.out);
  return shapes;
}

Factors zero_parameters(const TensorNetworkSpec& spec) {
  Factors w;
  for (auto [r, c] : parameter_shapes(spec)) w.push_back(Mat::Zero(r, c));
  return w;
}

Factors gaussian_parameters(const TensorNetworkSpec& spec, double stddev, std::uint64_t seed) {
  Rng rng(seed);
  Factors w;
  for (auto [r, c] : parameter_shapes(spec)) w.push_back(rng.gaussian(r, c, stddev));
  return w;
}

void check_parameters(const TensorNetworkSpec& spec, const Factors& w, const std::string& where) {
  const auto shapes = parameter_shapes(spec);
  if (w.size() != shapes.size())
    throw Error(
        fmt::format("{}: {} parameter matrices, expected {}", where, w.size(), shapes.size()));
  for (std::size_t j = 0; j < w.size(); ++j) {
    if (w[j].rows() != shapes[j].first || w[j].cols() != shapes[j].second)
      throw Error(fmt::format("{}: parameter {} is {}x{}, expected {}x{}", where, j + 1,
                              w[j].rows(), w[j].cols(), shapes[j].first, shapes[j].second));
    if (!w[j].allFinite())
      throw Error(fmt::format("{}: parameter {} has a non-finite entry", where, j + 1));
  }
}

// Per node: the distinct sub-tuples u of its modes met by the entries, the children's tuple
// ids of each, and the buffers. Columns are tuples: H (in x n_u) holds the Hadamard products of
// the children's outputs, Out = W^T H (out x n_u).
struct TensorNetwork::Impl {
  struct NodeState {
    Index tuples = 0;
    std::vector<std::vector<Index>> child_ids;  // [child][u]
    Mat h, out, d_out, d_h, suffix;
  };
  TensorNetworkSpec spec;
  std::vector<TreeNode> tree;
  std::vector<NodeState> state;
  std::vector<Index> root_ids;  // entry e -> tuple of the root
  Index entries = 0;
  Vec column;  // scratch: running prefix product
  // completion_step: per half, the leaves' gradients (R x d_k) and prefix products (R x N).
  bool fused = false;
  Factors half_grads[2];
  Mat half_prefix[2];
  double half_sq[2] = {0, 0};
  void completion_half(int h, Index begin, Index end, const Vec& b, double coef);
};

void TensorNetwork::Impl::completion_half(int h, Index begin, Index end, const Vec& b,
                                          double coef) {
  const TreeNode& root = tree.back();
  const auto& ids = state.back().child_ids;
  const std::size_t n = root.children.size();
  const Index rank = root.in;
  Factors& d = half_grads[h];
  Mat& p = half_prefix[h];  // kChunk x N: prefix products P_0..P_{N-2}, then the suffix
  for (auto& dk : d) dk.setZero();
  double sq = 0;
  const double* a[8];
  double* g_col[8];
  // Work on chunks of components that stay in L1 (a_k, dW_k and the products: ~40 KiB).
  constexpr Index kChunk = 256;
  for (Index e = begin; e < end; ++e) {
    for (std::size_t k = 0; k < n; ++k) {
      const Index i = ids[k][static_cast<std::size_t>(e)];
      a[k] = state[static_cast<std::size_t>(root.children[k])].out.col(i).data();
      g_col[k] = d[k].col(i).data();
    }
    double v = 0;
    for (Index c = 0; c < rank; c += kChunk) {
      const Index len = std::min(kChunk, rank - c);
      auto prod = p.col(0).head(len);
      prod =
          Eigen::Map<const Vec>(a[0] + c, len).cwiseProduct(Eigen::Map<const Vec>(a[1] + c, len));
      for (std::size_t k = 2; k < n; ++k)
        prod.array() *= Eigen::Map<const Vec>(a[k] + c, len).array();
      v += prod.sum();
    }
    const double r = v - b[e];
    sq += r * r;
    const double g = coef * r;
    for (Index c = 0; c < rank; c += kChunk) {
      const Index len = std::min(kChunk, rank - c);
      auto col = [&](std::size_t k) { return Eigen::Map<const Vec>(a[k] + c, len); };
      auto grad = [&](std::size_t k) { return Eigen::Map<Vec>(g_col[k] + c, len); };
      // P_j = a_0 (.) ... (.) a_j, j = 0..N-2; then dW_k += g P_{k-1} (.) a_{k+1} (.) ... (.)
      // a_{N-1}.
      p.col(0).head(len) = col(0);
      for (std::size_t k = 1; k + 1 < n; ++k)
        p.col(static_cast<Index>(k)).head(len) =
            p.col(static_cast<Index>(k - 1)).head(len).cwiseProduct(col(k));
      auto suffix = p.col(static_cast<Index>(n - 1)).head(len);
      grad(n - 1) += g * p.col(static_cast<Index>(n - 2)).head(len);
      suffix = g * col(n - 1);
      for (std::size_t k = n - 2; k >= 1; --k) {
        grad(k) += p.col(static_cast<Index>(k - 1)).head(len).cwiseProduct(suffix);
        suffix.array() *= col(k).array();
      }
      grad(0) += suffix;
    }
  }
  half_sq[h] = sq;
}

TensorNetwork::TensorNetwork(TensorNetworkSpec spec, const Entries& entries)
    : impl_(std::make_unique<Impl>()) {
  spec.validate();
  if (entries.shape != spec.shape)
    throw Error("TensorNetwork: the entries' shape differs from problem.shape");
  auto& I = *impl_;
  I.spec = std::move(spec);
  I.tree = build_tree(I.spec);
  I.state.resize(I.tree.size());
  I.entries = entries.size();
  const int n = entries.order();
  // ids[v][e]: entry e's tuple at node v.
  std::vector<std::vector<Index>> ids(I.tree.size());
  for (std::size_t v = 0; v < I.tree.size(); ++v) {
    const TreeNode& node = I.tree[v];
    auto& st = I.state[v];
    auto& id = ids[v];
    id.resize(static_cast<std::size_t>(I.entries));
    if (node.children.empty()) {
      for (Index e = 0; e < I.entries; ++e)
        id[static_cast<std::size_t>(e)] =
            entries.index[static_cast<std::size_t>(e * n + node.modes[0])];
      st.tuples = node.in;
      st.out.resize(node.out, node.in);
      st.d_out.resize(node.out, node.in);
      continue;
    }
    std::map<std::vector<Index>, Index> seen;
    std::vector<Index> key(node.children.size());
    st.child_ids.assign(node.children.size(), {});
    for (Index e = 0; e < I.entries; ++e) {
      for (std::size_t c = 0; c < key.size(); ++c)
        key[c] = ids[static_cast<std::size_t>(node.children[c])][static_cast<std::size_t>(e)];
      const auto [it, fresh] = seen.emplace(key, static_cast<Index>(seen.size()));
      if (fresh)
        for (std::size_t c = 0; c < key.size(); ++c) st.child_ids[c].push_back(key[c]);
      id[static_cast<std::size_t>(e)] = it->second;
    }
    st.tuples = static_cast<Index>(seen.size());
    if (node.param >= 0) {
      st.h.resize(node.in, st.tuples);
      st.d_h.resize(node.in, st.tuples);
    }
    st.out.resize(node.out, st.tuples);
    st.d_out.resize(node.out, st.tuples);
    st.suffix.resize(node.in, static_cast<Index>(node.children.size()));
  }
  I.root_ids = std::move(ids.back());
  // (at most 8 modes: the kernel keeps one pointer per mode on the stack)
  I.fused = I.spec.model == TensorModel::kCp && I.state.back().tuples == I.entries &&
            I.tree.back().children.size() <= 8;
  if (I.fused) {
    for (auto& half : I.half_grads)
      for (int c : I.tree.back().children)
        half.push_back(Mat::Zero(I.tree[static_cast<std::size_t>(c)].out,
                                 I.tree[static_cast<std::size_t>(c)].in));
    for (auto& p : I.half_prefix) p.resize(256, static_cast<Index>(I.tree.back().children.size()));
  }
  Index widest = 0;
  for (const auto& v : I.tree) widest = std::max(widest, v.in);
  I.column.resize(widest);
}

TensorNetwork::~TensorNetwork() = default;
TensorNetwork::TensorNetwork(TensorNetwork&&) noexcept = default;
const TensorNetworkSpec& TensorNetwork::spec() const { return impl_->spec; }
const std::vector<TreeNode>& TensorNetwork::tree() const { return impl_->tree; }
Index TensorNetwork::size() const { return impl_->entries; }

void TensorNetwork::values(const Factors& w, Vec& v) {
  auto& I = *impl_;
  for (std::size_t j = 0; j < I.tree.size(); ++j) {
    const TreeNode& node = I.tree[j];
    auto& st = I.state[j];
    if (node.children.empty()) {
      blas::transpose(w[static_cast<std::size_t>(node.param)], st.out);  // R_0 x d_k
      continue;
    }
    const auto& first = I.state[static_cast<std::size_t>(node.children[0])].out;
    // CP's root sums the products directly (its H, in x m, is never stored).
    const bool mixed = node.param >= 0;
    for (Index u = 0; u < st.tuples; ++u) {
      auto col = I.column.head(node.in);
      col = first.col(st.child_ids[0][static_cast<std::size_t>(u)]);
      for (std::size_t c = 1; c < node.children.size(); ++c)
        col.array() *= I.state[static_cast<std::size_t>(node.children[c])]
                           .out.col(st.child_ids[c][static_cast<std::size_t>(u)])
                           .array();
      if (mixed)
        st.h.col(u) = col;
      else
        st.out(0, u) = col.sum();
    }
    if (mixed) blas::gemm(w[static_cast<std::size_t>(node.param)], true, st.h, false, st.out);
  }
  const auto& root = I.state.back().out;
  v.resize(I.entries);
  for (Index e = 0; e < I.entries; ++e) v[e] = root(0, I.root_ids[static_cast<std::size_t>(e)]);
}

void TensorNetwork::backward(const Factors& w, const Vec& dv, Factors& grads) {
  auto& I = *impl_;
  for (auto& st : I.state) st.d_out.setZero();
  auto& root = I.state.back().d_out;
  for (Index e = 0; e < I.entries; ++e) root(0, I.root_ids[static_cast<std::size_t>(e)]) += dv[e];
  for (std::size_t j = I.tree.size(); j-- > 0;) {
    const TreeNode& node = I.tree[j];
    auto& st = I.state[j];
    if (node.children.empty()) {
      blas::transpose(st.d_out, grads[static_cast<std::size_t>(node.param)]);
      continue;
    }
    if (node.param >= 0) {
      const Mat& wv = w[static_cast<std::size_t>(node.param)];
      blas::gemm(st.h, false, st.d_out, true, grads[static_cast<std::size_t>(node.param)]);
      blas::gemm(wv, false, st.d_out, false, st.d_h);
    }
    // d Out_c[:, id_c(u)] += dH[:, u] (.) prod_{c' != c} Out_c'[:, id_c'(u)], by prefix and
    // suffix products.
    const std::size_t p = node.children.size();
    for (Index u = 0; u < st.tuples; ++u) {
      auto out_of = [&](std::size_t c) {
        return I.state[static_cast<std::size_t>(node.children[c])].out.col(
            st.child_ids[c][static_cast<std::size_t>(u)]);
      };
      st.suffix.col(static_cast<Index>(p - 1)).setOnes();
      for (std::size_t c = p - 1; c-- > 0;)
        st.suffix.col(static_cast<Index>(c)) =
            st.suffix.col(static_cast<Index>(c + 1)).cwiseProduct(out_of(c + 1));
      auto prefix = I.column.head(node.in);
      if (node.param >= 0)
        prefix = st.d_h.col(u);
      else
        prefix.setConstant(st.d_out(0, u));
      for (std::size_t c = 0; c < p; ++c) {
        auto& d_child = I.state[static_cast<std::size_t>(node.children[c])].d_out;
        d_child.col(st.child_ids[c][static_cast<std::size_t>(u)]) +=
            prefix.cwiseProduct(st.suffix.col(static_cast<Index>(c)));
        if (c + 1 < p) prefix.array() *= out_of(c).array();
      }
    }
  }
}

bool TensorNetwork::fused_completion() const { return impl_->fused; }

double TensorNetwork::completion_step(const Factors& w, const Vec& b, double coef, Factors& grads,
                                      HelperThread* helper) {
  auto& I = *impl_;
  if (!I.fused) throw Error("TensorNetwork: completion_step needs CP over distinct entries");
  for (std::size_t j = 0; j + 1 < I.tree.size(); ++j)
    blas::transpose(w[static_cast<std::size_t>(I.tree[j].param)], I.state[j].out);
  const Index mid = I.entries / 2;
  if (helper) {
    helper->run([&] { I.completion_half(0, 0, mid, b, coef); },
                [&] { I.completion_half(1, mid, I.entries, b, coef); });
  } else {
    I.completion_half(0, 0, mid, b, coef);
    I.completion_half(1, mid, I.entries, b, coef);
  }
  // Leaves are nodes 0..N-1 and parameters 0..N-1, in mode order.
  for (std::size_t k = 0; k + 1 < I.tree.size(); ++k) {
    Mat& dk = I.half_grads[0][k];
    dk += I.half_grads[1][k];
    blas::transpose(dk, grads[k]);
  }
  return I.half_sq[0] + I.half_sq[1];
}

double TensorNetwork::flops() const {
  const auto& I = *impl_;
  double f = 0;
  for (std::size_t j = 0; j < I.tree.size(); ++j) {
    const TreeNode& node = I.tree[j];
    if (node.children.empty()) continue;
    const double t = static_cast<double>(I.state[j].tuples), in = static_cast<double>(node.in);
    const double p = static_cast<double>(node.children.size());
    f += t * in * (p - 1) + t * in * 4 * p;  // Hadamard forward; prefix, suffix, accumulate
    if (node.param >= 0) f += 3 * t * in * static_cast<double>(node.out);  // three GEMMs
  }
  return f;
}

Vec dense_tensor(const TensorNetworkSpec& spec, const Factors& w) {
  TensorNetwork net(spec, all_entries(spec.shape));
  Vec v;
  net.values(w, v);
  return v;
}

std::vector<Vec> component_norms(const TensorNetworkSpec& spec, const Factors& w) {
  const auto tree = build_tree(spec);
  std::vector<Vec> out;
  for (const auto& v : tree) {
    if (v.children.empty()) continue;
    Vec norms = v.param >= 0 ? Vec(w[static_cast<std::size_t>(v.param)].rowwise().norm())
                             : Vec(Vec::Ones(v.in));
    for (int c : v.children)
      norms.array() *= w[static_cast<std::size_t>(tree[static_cast<std::size_t>(c)].param)]
                           .colwise()
                           .norm()
                           .transpose()
                           .array();
    out.push_back(norms);
  }
  return out;
}

double tensor_unbalancedness(const TensorNetworkSpec& spec, const Factors& w) {
  const auto tree = build_tree(spec);
  double worst = 0;
  for (const auto& v : tree) {
    if (v.children.empty()) continue;
    for (Index r = 0; r < v.in; ++r) {
      double lo = INFINITY, hi = -INFINITY;
      auto see = [&](double s) {
        lo = std::min(lo, s);
        hi = std::max(hi, s);
      };
      if (v.param >= 0) see(w[static_cast<std::size_t>(v.param)].row(r).squaredNorm());
      for (int c : v.children)
        see(w[static_cast<std::size_t>(tree[static_cast<std::size_t>(c)].param)]
                .col(r)
                .squaredNorm());
      worst = std::max(worst, hi - lo);
    }
  }
  return worst;
}

}  // namespace dln::tensors
