"""dln.torch: linear overparameterization of non-linear ``torch.nn`` networks, and its collapse.

Section 3.2 of the notes: replacing a linear layer W by a product W_n ... W_1 adds no
expressiveness but changes the dynamics (Eq. 4, the end-to-end update with preconditioner
P(W)), which can accelerate training (Arora, Cohen, Hazan 2018, Figure 1 right; ExpandNets,
Guo et al. 2020). Section 4.4: the same overparameterization biases training towards low rank, so
after training the product can be collapsed back to one layer and truncated (footnote 11: a rank
rho map R^d -> R^d' needs rho (d + d' - rho) parameters instead of d d').

* ``overparameterize(module, ...)``: a copy in which every ``nn.Linear`` is a ``LinearProduct``
  (and, with ``conv=True``, every ``nn.Conv2d`` a ``ConvProduct``);
* ``collapse(module, ...)``: a copy with the original architecture, each product multiplied out,
  optionally truncated by SVD (Linear layers only);
* ``count_parameters``, ``effective_rank``, ``end_to_end_weight``.

Import it explicitly (``import dln.torch``); ``import dln`` does not import torch.
"""
import copy
import math

import torch
from torch import nn
from torch.nn.utils import skip_init

__all__ = ["LinearProduct", "ConvProduct", "overparameterize", "collapse", "count_parameters",
           "effective_rank", "end_to_end_weight"]

_INITS = ("identity", "factors", "product")


class LinearProduct(nn.Module):
    """x -> W_n ... W_1 x + b: ``factors`` (an ``nn.ModuleList`` of ``nn.Linear``), bias on the last
    only. ``in_features`` / ``out_features`` as for the ``nn.Linear`` it replaces."""

    def __init__(self, factors):
        super().__init__()
        self.factors = nn.ModuleList(factors)
        self.in_features = self.factors[0].in_features
        self.out_features = self.factors[-1].out_features

    def forward(self, x):
        for f in self.factors:
            x = f(x)
        return x

    def extra_repr(self):
        dims = [self.in_features] + [f.out_features for f in self.factors]
        return "dims=" + "->".join(map(str, dims))


class ConvProduct(nn.Module):
    """A k x k ``nn.Conv2d`` (in -> conv_rate*out channels, no bias) followed by 1x1 convs with the
    same ``groups``, the last one -> out channels with the bias; ``factors`` an ``nn.ModuleList``.

    The k x k conv comes first so that padding never sits inside the expansion: the 1x1 convs are
    per-pixel linear maps and the product collapses exactly to one k x k conv, for any padding and
    padding_mode. (ExpandNets' public collapse puts the 1x1 before a padded k x k conv, where the
    zero-padded border does not go through the 1x1 map: its collapse is then not exact.)"""

    def __init__(self, factors):
        super().__init__()
        self.factors = nn.ModuleList(factors)
        self.in_channels = self.factors[0].in_channels
        self.out_channels = self.factors[-1].out_channels

    def forward(self, x):
        for f in self.factors:
            x = f(x)
        return x


# ---- initialization helpers --------------------------------------------------------------------


def _fan_in(weight):
    return weight.shape[1] * math.prod(weight.shape[2:])


def _default_uniform_(weight, generator):
    """PyTorch's default Linear/Conv weight init: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), drawn with ``generator``."""
    bound = 1.0 / math.sqrt(_fan_in(weight)) if _fan_in(weight) > 0 else 0.0
    return weight.uniform_(-bound, bound, generator=generator)


def _padded_identity(rows, cols, groups, like):
    """Per-group padded identity [I 0] / [I; 0] as a (rows, cols // groups) matrix."""
    block = torch.eye(rows // groups, cols // groups, dtype=like.dtype, device=like.device)
    return block.repeat(groups, 1)


def _init_factors(weights, original, init, generator):
    """Fills ``weights`` (factor weights W_1..W_n, first the k x k / dense one) in place."""
    groups = getattr(original, "groups", 1)
    if callable(init):
        for w in weights:
            init(w)
    elif init == "factors":  # each factor like a fresh layer of its shape
        for w in weights:
            _default_uniform_(w, generator)
    elif init == "product":
        # Entries of the product: mean 0 and the variance of the original layer's default init,
        # b^2 / 3 = 1 / (3 fan_in) for U(-b, b): W_1 ~ N(0, var), W_j ~ N(0, 1 / h_{j-1}).
        var = 1.0 / (3.0 * _fan_in(original.weight))
        weights[0].normal_(0.0, math.sqrt(var), generator=generator)
        for w in weights[1:]:
            w.normal_(0.0, 1.0 / math.sqrt(_fan_in(w)), generator=generator)
    else:  # identity: the product equals the original's current weight
        first, out = weights[0], original.weight.shape[0]
        _default_uniform_(first, generator)  # the extra rows / channels
        w0 = original.weight.detach().to(first.dtype)
        per_in, per_out = first.shape[0] // groups, out // groups
        for g in range(groups):
            first[g * per_in:g * per_in + per_out] = w0[g * per_out:(g + 1) * per_out]
        for w in weights[1:]:
            eye = _padded_identity(w.shape[0], w.shape[1] * groups, groups, w)
            w.copy_(eye.reshape(w.shape))


def _expand_linear(layer, name, depth, width, init, generator):
    out, inp = layer.out_features, layer.in_features
    h = out if width is None else width
    if init == "identity" and h < out:
        raise ValueError(f"dln.torch.overparameterize: init='identity' needs width >= "
                         f"out_features (layer '{name}': width {h} < {out})")
    kw = {"dtype": layer.weight.dtype, "device": layer.weight.device}
    dims = [inp] + [h] * (depth - 1) + [out]
    has_bias = layer.bias is not None
    factors = [skip_init(nn.Linear, dims[j], dims[j + 1], bias=has_bias and j == depth - 1, **kw)
               for j in range(depth)]
    with torch.no_grad():
        _init_factors([f.weight for f in factors], layer, init, generator)
        if has_bias:
            factors[-1].bias.copy_(layer.bias)
    return LinearProduct(factors)


def _expand_conv(layer, depth, conv_rate, init, generator):
    kw = {"dtype": layer.weight.dtype, "device": layer.weight.device}
    wide, g = conv_rate * layer.out_channels, layer.groups  # out % groups == 0, so wide % g == 0
    first = skip_init(nn.Conv2d, layer.in_channels, wide, layer.kernel_size, stride=layer.stride,
                      padding=layer.padding, dilation=layer.dilation, groups=g, bias=False,
                      padding_mode=layer.padding_mode, **kw)
    has_bias = layer.bias is not None
    factors = [first] + [skip_init(nn.Conv2d, wide, layer.out_channels if j == depth - 1 else wide,
                                   1, groups=g, bias=has_bias and j == depth - 1, **kw)
                         for j in range(1, depth)]
    with torch.no_grad():
        _init_factors([f.weight for f in factors], layer, init, generator)
        if has_bias:
            factors[-1].bias.copy_(layer.bias)
    return ConvProduct(factors)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _replace(module, visit):
    """Applies ``visit(child, qualified_name)`` -> replacement or None, depth first in the order
    of ``named_modules``; a shared submodule is visited once and its replacement stays shared."""
    memo, seen = {}, set()

    def walk(parent, prefix):
        seen.add(id(parent))
        for name, child in list(parent.named_children()):
            if child is None:
                continue
            if id(child) in memo:
                setattr(parent, name, memo[id(child)])
                continue
            qualified = f"{prefix}.{name}" if prefix else name
            new = visit(child, qualified)
            if new is not None:
                memo[id(child)] = new
                setattr(parent, name, new)
            elif id(child) not in seen:
                walk(child, qualified)

    root = visit(module, "")
    if root is not None:
        return root
    walk(module, "")
    return module


def _display(name):
    return name if name else "<root>"


def overparameterize(module, depth=2, width=None, conv=False, conv_rate=4, init="identity",
                     generator=None):
    """A new module (a deep copy; ``module`` is untouched) in which every submodule of type exactly
    ``nn.Linear`` is a ``LinearProduct`` of ``depth`` linear maps W_depth ... W_1 (Section 3.2),
    hidden width ``width`` (None: out_features, the published choice: dense 3136 -> 512 becomes
    3136 -> 512 -> 512), bias on the last factor, same dtype and device. Subclasses of
    ``nn.Linear`` (e.g. ``nn.MultiheadAttention``'s ``out_proj``, whose weight is read directly)
    are left alone, and so are existing products. ``depth=1`` gives an unchanged copy.

    ``conv=True``: every exactly-``nn.Conv2d`` becomes a ``ConvProduct``: the k x k conv (same
    kernel_size, stride, padding incl. 'same'/'valid', dilation, groups, padding_mode) to
    ``conv_rate * out_channels`` channels without bias, then ``depth - 1`` 1x1 convs with the same
    groups, the last to out_channels with the bias (``width`` does not apply to convs). k x k
    first: padding is never inside the expansion, so the collapse is exact (ExpandNets' public
    collapse, 1x1 before a padded k x k, is not).

    ``init`` (the published paper does not say how its factors were initialized):

    * ``"identity"`` (default): the product equals the layer's current weight, so the new module
      computes the same function: W_1's first out_features rows are the weight, its extra rows
      drawn like PyTorch's default init, W_2 ... W_depth padded identities [I 0] (convs: per
      group). Needs width >= out_features.
    * ``"factors"``: each factor initialized like a new layer of its shape (PyTorch's default
      kaiming_uniform_(a=sqrt(5))); or a callable ``f(weight)`` applied in place to every factor
      weight, e.g. ``lambda w: nn.init.trunc_normal_(w, std=0.1, a=-0.2, b=0.2)``.
    * ``"product"``: Gaussian factors whose product has entries of mean 0 and the variance of the
      original layer's default init, 1 / (3 fan_in): W_1 ~ N(0, 1 / (3 fan_in)),
      W_j ~ N(0, 1 / h_{j-1}) for j >= 2.

    The bias is always copied from the original. ``generator`` (a ``torch.Generator``) makes the
    random draws reproducible (a callable init draws with its own generator).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"dln.torch.overparameterize: module must be a torch.nn.Module, "
                        f"got {type(module).__name__}")
    if not _is_int(depth) or depth < 1:
        raise ValueError(f"dln.torch.overparameterize: depth must be an integer >= 1, "
                         f"got {depth!r}")
    if width is not None and (not _is_int(width) or width < 1):
        raise ValueError(f"dln.torch.overparameterize: width must be None or an integer >= 1, "
                         f"got {width!r}")
    if not _is_int(conv_rate) or conv_rate < 1:
        raise ValueError(f"dln.torch.overparameterize: conv_rate must be an integer >= 1, "
                         f"got {conv_rate!r}")
    if not callable(init) and not (isinstance(init, str) and init in _INITS):
        raise ValueError(f"dln.torch.overparameterize: init must be 'identity', 'factors', "
                         f"'product' or a callable, got {init!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"dln.torch.overparameterize: generator must be a torch.Generator or "
                        f"None, got {type(generator).__name__}")
    for name, m in module.named_modules():
        if isinstance(m, nn.modules.lazy.LazyModuleMixin) and m.has_uninitialized_params():
            raise ValueError(f"dln.torch.overparameterize: layer '{_display(name)}' is an "
                             f"uninitialized lazy module ({type(m).__name__}); run one forward "
                             f"pass first")
    result = copy.deepcopy(module)
    if depth == 1:
        return result

    def visit(m, name):
        if isinstance(m, (LinearProduct, ConvProduct)):
            return m  # already a product: kept as it is (returning it stops the descent)
        if type(m) is nn.Linear:
            return _expand_linear(m, _display(name), depth, width, init, generator)
        if conv and type(m) is nn.Conv2d:
            return _expand_conv(m, depth, conv_rate, init, generator)
        return None

    return _replace(result, visit)


# ---- collapse ------------------------------------------------------------------------------------


def _linear_product64(layer):
    """(W, b) of a LinearProduct / nn.Linear in float64: the affine maps composed in order."""
    factors = layer.factors if isinstance(layer, LinearProduct) else [layer]
    W = b = None
    for f in factors:
        M = f.weight.detach().double()
        W = M if W is None else M @ W
        b = None if b is None else M @ b
        if f.bias is not None:
            fb = f.bias.detach().double()
            b = fb if b is None else b + fb
    return W, b


def _conv_product64(layer):
    """(kernel, bias) of a ConvProduct / nn.Conv2d in float64: per group, the 1x1 convs' matrices
    multiplied onto the k x k kernel's output-channel axis."""
    factors = layer.factors if isinstance(layer, ConvProduct) else [layer]
    K = factors[0].weight.detach().double()
    b = None if factors[0].bias is None else factors[0].bias.detach().double()
    g = factors[0].groups
    for f in factors[1:]:
        M = f.weight.detach().double()[:, :, 0, 0]  # (C_out, C_in / g)
        co, ci = M.shape[0] // g, M.shape[1]
        K = torch.cat([torch.einsum("oc,cikl->oikl", M[i * co:(i + 1) * co],
                                    K[i * ci:(i + 1) * ci]) for i in range(g)])
        if b is not None:
            b = torch.cat([M[i * co:(i + 1) * co] @ b[i * ci:(i + 1) * ci] for i in range(g)])
        if f.bias is not None:
            fb = f.bias.detach().double()
            b = fb if b is None else b + fb
    return K, b


def end_to_end_weight(layer):
    """The end-to-end weight (detached, the layer's dtype, computed in float64): W_n ... W_1 of a
    ``LinearProduct``, the weight of an ``nn.Linear``; the composed kernel of a ``ConvProduct``,
    the kernel of an ``nn.Conv2d``."""
    if isinstance(layer, (LinearProduct, nn.Linear)):
        W, dtype = _linear_product64(layer)[0], _first_weight(layer).dtype
    elif isinstance(layer, (ConvProduct, nn.Conv2d)):
        W, dtype = _conv_product64(layer)[0], _first_weight(layer).dtype
    else:
        raise TypeError(f"dln.torch.end_to_end_weight: expected a LinearProduct, ConvProduct, "
                        f"nn.Linear or nn.Conv2d, got {type(layer).__name__}")
    return W.to(dtype)


def _first_weight(layer):
    return layer.factors[0].weight if hasattr(layer, "factors") else layer.weight


def _singular_values(W):
    return torch.linalg.svdvals(W.detach().double().reshape(W.shape[0], -1))


def effective_rank(weight):
    """Roy & Vetterli (2007): exp of the entropy of p_i = sigma_i / sum_j sigma_j (a tensor, a
    >2-D kernel read as (out, -1)). 0 for the zero matrix."""
    s = _singular_values(torch.as_tensor(weight))
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def count_parameters(module):
    """The number of parameters (shared ones once)."""
    return sum(p.numel() for p in module.parameters())


def _rank_for(s2, rank, energy):
    """The kept rank (Section 4.4): the given one, or the smallest whose leading sigma^2 hold the
    fraction ``energy`` of ||W||_F^2."""
    if energy is None:
        return rank
    cum = torch.cumsum(s2, 0)
    return int(torch.searchsorted(cum, energy * cum[-1]).item()) + 1 if cum[-1] > 0 else 1


def collapse(module, rank=None, energy=None, factored=False, report=False):
    """A new module (``module`` untouched) with the original architecture: every ``LinearProduct``
    becomes an ``nn.Linear`` with weight W_n ... W_1 (computed in float64, cast back), every
    ``ConvProduct`` an ``nn.Conv2d`` with the composed kernel; outputs equal the expanded model's
    up to rounding.

    Truncation (Section 4.4), for Linear layers only (collapsed products and plain ``nn.Linear``;
    convs are never truncated): ``rank``, an int for every Linear layer or a dict
    {qualified name in ``module.named_modules()`` ('' for the root): int}, keeps the best rank-r approximation
    (Eckart-Young, by SVD in float64); ``energy`` in (0, 1] keeps the smallest rank whose leading
    sigma_i^2 hold that fraction of ||W||_F^2. A rank >= min(d, d') keeps the dense weight
    unchanged. ``factored=True`` stores a truncated layer as a depth-2 ``LinearProduct`` of width
    r (U sqrt(S), sqrt(S) V^T: r (d + d') parameters) instead of a dense ``nn.Linear``.

    ``report=True`` returns (module, report): one dict per Linear / Conv2d layer with ``name``,
    ``kind`` ('linear' / 'conv2d'), ``shape`` (out, in) of the weight as a matrix (a kernel as
    (out, in / groups * k * k)), ``full_rank`` = min(shape), ``rank_kept``, ``energy_kept``,
    ``params_expanded`` (the product's parameters incl. bias), ``params_dense`` (d d' + bias),
    ``params_kept`` (footnote 11: r (d + d' - r) + bias when truncated, else dense) and
    ``effective_rank``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"dln.torch.collapse: module must be a torch.nn.Module, "
                        f"got {type(module).__name__}")
    if rank is not None and energy is not None:
        raise ValueError("dln.torch.collapse: give rank or energy, not both")
    if energy is not None and (isinstance(energy, bool) or not isinstance(energy, (int, float))
                               or not 0 < energy <= 1):
        raise ValueError(f"dln.torch.collapse: energy must be in (0, 1], got {energy!r}")
    if isinstance(rank, dict):
        for k, r in rank.items():
            if not _is_int(r) or r < 1:
                raise ValueError(f"dln.torch.collapse: rank['{k}'] must be an integer >= 1, "
                                 f"got {r!r}")
        linear = [n for n, m in _layers(module) if isinstance(m, (LinearProduct, nn.Linear))]
        for k in rank:
            if k not in linear:
                raise ValueError(f"dln.torch.collapse: rank names no Linear layer: '{k}' "
                                 f"(Linear layers: {', '.join(map(repr, linear))})")
    elif rank is not None and (not _is_int(rank) or rank < 1):
        raise ValueError(f"dln.torch.collapse: rank must be None, an integer >= 1 or a dict "
                         f"{{layer name: integer >= 1}}, got {rank!r}")
    rows = []

    def visit(m, name):
        if isinstance(m, (LinearProduct, ConvProduct)) or type(m) in (nn.Linear, nn.Conv2d):
            r = rank.get(name) if isinstance(rank, dict) else rank
            new, row = _collapse_layer(m, name, r, energy, factored)
            rows.append(row)
            return new
        return None

    result = _replace(copy.deepcopy(module), visit)
    return (result, rows) if report else result


def _layers(module):
    """(name, layer) of the products and plain Linear / Conv2d layers, not descending into
    products (their factors are not layers of their own)."""
    out = []

    def visit(m, name):  # returns the layer itself: setattr(parent, name, m) changes nothing
        if isinstance(m, (LinearProduct, ConvProduct)) or type(m) in (nn.Linear, nn.Conv2d):
            out.append((name, m))
            return m
        return None

    _replace(module, visit)
    return out


def _collapse_layer(m, name, rank, energy, factored):
    conv = isinstance(m, (ConvProduct, nn.Conv2d))
    W, b = _conv_product64(m) if conv else _linear_product64(m)
    dtype, device = _first_weight(m).dtype, _first_weight(m).device
    d_out, d_in = W.shape[0], math.prod(W.shape[1:])
    nb = 0 if b is None else b.numel()
    s = _singular_values(W)
    full = min(d_out, d_in)
    row = {"name": name, "kind": "conv2d" if conv else "linear", "shape": (d_out, d_in),
           "full_rank": full, "rank_kept": full, "energy_kept": 1.0,
           "params_expanded": count_parameters(m), "params_dense": d_out * d_in + nb,
           "params_kept": d_out * d_in + nb, "effective_rank": effective_rank(W)}
    kw = {"dtype": dtype, "device": device}
    if conv:
        f = m.factors[0] if isinstance(m, ConvProduct) else m
        new = skip_init(nn.Conv2d, f.in_channels, W.shape[0], f.kernel_size, stride=f.stride,
                        padding=f.padding, dilation=f.dilation, groups=f.groups,
                        bias=b is not None, padding_mode=f.padding_mode, **kw)
    else:
        new = skip_init(nn.Linear, d_in, d_out, bias=b is not None, **kw)
    r = None if (conv or (rank is None and energy is None)) else _rank_for(s * s, rank, energy)
    with torch.no_grad():
        if b is not None:
            new.bias.copy_(b)
        if r is None or r >= full:
            new.weight.copy_(W)
            return new, row
        U, S, Vh = torch.linalg.svd(W, full_matrices=False)
        row.update(rank_kept=r, energy_kept=float((S[:r] ** 2).sum() / (S ** 2).sum()),
                   params_kept=r * (d_out + d_in - r) + nb)
        if not factored:
            new.weight.copy_((U[:, :r] * S[:r]) @ Vh[:r])
            return new, row
        root = S[:r].sqrt()  # W_r = (U_r sqrt(S_r)) (sqrt(S_r) V_r^T)
        first = skip_init(nn.Linear, d_in, r, bias=False, **kw)
        second = skip_init(nn.Linear, r, d_out, bias=b is not None, **kw)
        first.weight.copy_(root[:, None] * Vh[:r])
        second.weight.copy_(U[:, :r] * root)
        if b is not None:
            second.bias.copy_(b)
        return LinearProduct([first, second]), row
