"""dln.torch: overparameterize / collapse of torch.nn networks (Sections 3.2 and 4.4 of the notes)."""
import re

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import dln.torch as dt  # noqa: E402

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}
INITS = ["identity", "factors", "product"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


def maxdiff(a, b):
    return (a - b).abs().max().item()


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- expand then collapse: the same function ---------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("width", [None, 9])
def test_linear_round_trip(width, bias, depth, init, dtype):
    layer = nn.Linear(7, 5, bias=bias).to(dtype)
    x = torch.randn(11, 7, dtype=dtype)
    expanded = dt.overparameterize(layer, depth=depth, width=width, init=init, generator=gen())
    assert isinstance(expanded, dt.LinearProduct) and len(expanded.factors) == depth
    h = 5 if width is None else width
    assert [tuple(f.weight.shape) for f in expanded.factors] == \
        [(h, 7)] + [(h, h)] * (depth - 2) + [(5, h)]
    assert all(f.weight.dtype == dtype for f in expanded.factors)
    assert [f.bias is not None for f in expanded.factors] == [False] * (depth - 1) + [bias]
    if bias:
        assert torch.equal(expanded.factors[-1].bias, layer.bias)
    collapsed = dt.collapse(expanded)
    assert type(collapsed) is nn.Linear and collapsed.weight.dtype == dtype
    with torch.no_grad():
        y = expanded(x)
        assert maxdiff(collapsed(x), y) <= TOL[dtype]
        if init == "identity":
            assert maxdiff(y, layer(x)) <= TOL[dtype]
            assert torch.allclose(dt.end_to_end_weight(expanded), layer.weight, atol=TOL[dtype])


CONVS = [dict(padding=1), dict(padding="same"), dict(padding="valid"),
         dict(padding=1, padding_mode="reflect"), dict(padding=2, padding_mode="circular"),
         dict(padding="same", padding_mode="replicate"), dict(stride=2, padding=1),
         dict(dilation=2, padding="same"), dict(groups=2, padding=1),
         dict(groups=2, stride=2, dilation=2, padding=2, padding_mode="reflect")]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("conv", CONVS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_conv_round_trip(conv, bias, depth, init, dtype):
    layer = nn.Conv2d(4, 6, 3, bias=bias, **conv).to(dtype)
    x = torch.randn(2, 4, 9, 9, dtype=dtype)
    expanded = dt.overparameterize(layer, depth=depth, conv=True, conv_rate=2, init=init,
                                   generator=gen())
    assert isinstance(expanded, dt.ConvProduct) and len(expanded.factors) == depth
    first = expanded.factors[0]
    assert (first.out_channels, first.kernel_size, first.padding, first.padding_mode,
            first.groups) == (12, layer.kernel_size, layer.padding, layer.padding_mode,
                              layer.groups)
    assert all(f.kernel_size == (1, 1) and f.groups == layer.groups
               for f in expanded.factors[1:])
    collapsed = dt.collapse(expanded)
    assert type(collapsed) is nn.Conv2d and collapsed.weight.shape == layer.weight.shape
    assert (collapsed.stride, collapsed.padding, collapsed.dilation, collapsed.padding_mode) == \
        (layer.stride, layer.padding, layer.dilation, layer.padding_mode)
    with torch.no_grad():
        y = expanded(x)
        assert maxdiff(collapsed(x), y) <= TOL[dtype]
        if init == "identity":
            assert maxdiff(y, layer(x)) <= TOL[dtype]


@pytest.mark.parametrize("mode", ["circular", "reflect"])
def test_plain_conv_with_padding_mode_collapses_exactly(mode):
    layer = nn.Conv2d(3, 5, 3, padding=1, padding_mode=mode).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    collapsed = dt.collapse(layer)
    assert collapsed.padding_mode == mode
    assert torch.equal(collapsed(x), layer(x))


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding="same", padding_mode="reflect"),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 12), nn.ReLU(),
                         nn.Linear(12, 3)).double()


def test_sgd_on_expanded_cnn_then_collapse():
    model = small_cnn()
    x, labels = torch.randn(16, 1, 16, 16, dtype=torch.float64), torch.randint(0, 3, (16,))
    expanded = dt.overparameterize(model, depth=3, conv=True, conv_rate=2, init="identity")
    with torch.no_grad():
        assert maxdiff(expanded(x), model(x)) <= 1e-10
    opt = torch.optim.SGD(expanded.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(expanded(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    collapsed = dt.collapse(expanded)
    assert [type(m) for m in collapsed] == [type(m) for m in model]
    assert dt.count_parameters(collapsed) == dt.count_parameters(model)
    with torch.no_grad():
        assert maxdiff(collapsed(x), expanded(x)) <= 1e-10
        assert maxdiff(collapsed(x), model(x)) > 1e-3  # it did train


# ---- Eq. 4: one SGD step on the factors is the preconditioned end-to-end step --------------------


def test_sgd_step_on_factors_follows_eq4():
    g = gen(3)
    x = torch.randn(20, 6, dtype=torch.float64, generator=g)
    target = torch.randn(20, 4, dtype=torch.float64, generator=g)
    base = dt.overparameterize(nn.Linear(6, 4).double(), depth=2, width=5, init="product",
                               generator=g)
    loss = lambda out: ((out - target) ** 2).mean()  # noqa: E731
    W1, W2 = (f.weight.detach().clone() for f in base.factors)
    W = W2 @ W1
    plain = dt.collapse(base)
    loss(plain(x)).backward()
    G = plain.weight.grad
    preconditioned = W2 @ W2.T @ G + G @ W1.T @ W1  # Eq. 4, n = 2
    residuals = []
    etas = [1e-2, 5e-3, 2.5e-3, 1.25e-3]
    for eta in etas:
        model = dt.overparameterize(base, depth=1)  # a copy
        opt = torch.optim.SGD(model.parameters(), lr=eta)
        loss(model(x)).backward()
        opt.step()
        W_new = dt.end_to_end_weight(model)
        residuals.append(torch.linalg.norm(W_new - (W - eta * preconditioned)).item())
    over_eta2 = [r / e ** 2 for r, e in zip(residuals, etas)]
    assert max(over_eta2) / min(over_eta2) <= 1.5
    over_eta = [r / e for r, e in zip(residuals, etas)]
    assert all(b < 0.6 * a for a, b in zip(over_eta, over_eta[1:]))  # -> 0 like eta
    assert over_eta[-1] < 1e-2 * torch.linalg.norm(preconditioned).item()


# ---- truncation (Section 4.4) ----------------------------------------------------------------------


def test_truncation():
    layer = nn.Linear(12, 9).double()
    x = torch.randn(5, 12, dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    for r in (9, 100):  # full rank: lossless, the dense weight unchanged
        full = dt.collapse(layer, rank=r)
        assert maxdiff(full(x), layer(x)) <= 1e-12
        assert torch.equal(full.weight, layer.weight)
    assert maxdiff(dt.collapse(layer, energy=1.0)(x), layer(x)) <= 1e-12
    for r in (1, 3, 8):
        cut, report = dt.collapse(layer, rank=r, report=True)
        Wr = cut.weight.detach()
        assert torch.linalg.matrix_rank(Wr).item() == r
        assert torch.allclose(Wr, (U[:, :r] * S[:r]) @ Vh[:r], atol=1e-12)  # Eckart-Young
        err2 = torch.linalg.norm(Wr - layer.weight.detach()) ** 2
        assert err2.item() == pytest.approx((S[r:] ** 2).sum().item(), rel=1e-10)
        factored, rep_f = dt.collapse(layer, rank=r, factored=True, report=True)
        assert isinstance(factored, dt.LinearProduct)
        assert [f.weight.shape[0] for f in factored.factors] == [r, 9]
        assert maxdiff(factored(x), cut(x)) <= 1e-12
        (row,) = report
        assert row == rep_f[0]
        assert (row["name"], row["kind"], row["shape"], row["full_rank"], row["rank_kept"]) == \
            ("", "linear", (9, 12), 9, r)
        assert row["params_kept"] == r * (9 + 12 - r) + 9
        assert row["params_dense"] == row["params_expanded"] == 9 * 12 + 9
        assert row["energy_kept"] == pytest.approx(((S[:r] ** 2).sum() / (S ** 2).sum()).item())
    share = torch.cumsum(S ** 2, 0) / (S ** 2).sum()
    want = int((share < 0.9).sum().item()) + 1
    cut, (row,) = dt.collapse(layer, energy=0.9, report=True)
    assert row["rank_kept"] == want and row["energy_kept"] >= 0.9
    assert want == 1 or share[want - 2] < 0.9
    assert torch.linalg.matrix_rank(cut.weight.detach()).item() == want


def test_truncation_by_name_on_expanded_model():
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 6)).double()
    expanded = dt.overparameterize(model, depth=3, init="product", generator=gen())
    cut, report = dt.collapse(expanded, rank={"0": 2}, report=True)
    assert [r["name"] for r in report] == ["0", "2"]
    assert [r["rank_kept"] for r in report] == [2, 6]
    assert report[0]["params_expanded"] == 10 * 8 + 8 * 8 + 8 * 8 + 8
    assert torch.linalg.matrix_rank(cut[0].weight.detach()).item() == 2
    full = dt.collapse(expanded)
    assert torch.equal(cut[2].weight, full[2].weight)
    assert dt.effective_rank(torch.eye(4)) == pytest.approx(4.0)
    assert dt.effective_rank(torch.diag(torch.tensor([1.0, 0.0, 0.0]))) == pytest.approx(1.0)
    assert dt.effective_rank(torch.zeros(3, 3)) == 0.0


# ---- parameter counts ------------------------------------------------------------------------------


class MnistCnn(nn.Module):  # the TensorFlow tutorial CNN used in Arora et al. 2018, Figure 1 right
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(7 * 7 * 64, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def test_parameter_counts_of_the_mnist_cnn():
    model = MnistCnn()
    dense = (1 * 32 * 25 + 32) + (32 * 64 * 25 + 64) + (3136 * 512 + 512) + (512 * 10 + 10)
    over = dense + 512 * 512 + 10 * 10  # a width-out_features factor before each dense layer
    assert (dense, over) == (1_663_370, 1_925_614)
    expanded = dt.overparameterize(model, depth=2)
    assert dt.count_parameters(model) == dense
    assert dt.count_parameters(expanded) == over
    assert round(100 * (over / dense - 1), 2) == 15.77
    assert [tuple(f.weight.shape) for f in expanded.fc1.factors] == [(512, 3136), (512, 512)]
    assert dt.count_parameters(dt.collapse(expanded)) == dense


# ---- errors, untouched inputs, shared and nested modules -------------------------------------------


def raises(exc, message, fn, *args, **kwargs):
    with pytest.raises(exc, match="^" + re.escape(message) + "$"):
        fn(*args, **kwargs)


@pytest.mark.filterwarnings("ignore:Lazy modules")
def test_errors():
    lin, op, co = nn.Linear(3, 10), dt.overparameterize, dt.collapse
    P = "dln.torch.overparameterize: "
    raises(TypeError, P + "module must be a torch.nn.Module, got int", op, 3)
    raises(ValueError, P + "depth must be an integer >= 1, got 0", op, lin, depth=0)
    raises(ValueError, P + "depth must be an integer >= 1, got 2.0", op, lin, depth=2.0)
    raises(ValueError, P + "width must be None or an integer >= 1, got 0", op, lin, width=0)
    raises(ValueError, P + "conv_rate must be an integer >= 1, got 0", op, lin, conv_rate=0)
    raises(ValueError, P + "init must be 'identity', 'factors', 'product' or a callable, "
           "got 'orthogonal'", op, lin, init="orthogonal")
    raises(TypeError, P + "generator must be a torch.Generator or None, got int", op, lin,
           generator=0)
    raises(ValueError, P + "init='identity' needs width >= out_features (layer 'fc1': "
           "width 4 < 10)", op, nn.ModuleDict({"fc1": lin}), width=4)
    raises(ValueError, P + "init='identity' needs width >= out_features (layer '<root>': "
           "width 4 < 10)", op, lin, width=4)
    raises(ValueError, P + "layer '1' is an uninitialized lazy module (LazyLinear); run one "
           "forward pass first", op, nn.Sequential(lin, nn.LazyLinear(4)))
    C = "dln.torch.collapse: "
    raises(TypeError, C + "module must be a torch.nn.Module, got str", co, "x")
    raises(ValueError, C + "give rank or energy, not both", co, lin, rank=2, energy=0.5)
    for bad in (0, -1, 1.5):
        raises(ValueError, C + "rank must be None, an integer >= 1 or a dict {layer name: "
               f"integer >= 1}}, got {bad!r}", co, lin, rank=bad)
    for bad in (0, 1.5, -0.1):
        raises(ValueError, C + f"energy must be in (0, 1], got {bad!r}", co, lin, energy=bad)
    raises(ValueError, C + "rank['0'] must be an integer >= 1, got 0", co,
           nn.Sequential(lin), rank={"0": 0})
    expanded = dt.overparameterize(nn.Sequential(lin, nn.ReLU(), nn.Linear(10, 2)))
    raises(ValueError, C + "rank names no Linear layer: '0.factors.0' (Linear layers: '0', "
           "'2')", co, expanded, rank={"0.factors.0": 1})
    raises(ValueError, C + "rank names no Linear layer: '1' (Linear layers: '0', '2')", co,
           expanded, rank={"1": 1})
    raises(TypeError, "dln.torch.end_to_end_weight: expected a LinearProduct, ConvProduct, "
           "nn.Linear or nn.Conv2d, got ReLU", dt.end_to_end_weight, nn.ReLU())


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(5, 5)
        self.blocks = nn.ModuleList([self.shared, nn.Sequential(nn.Linear(5, 5), nn.Tanh())])
        self.heads = nn.ModuleDict({"a": nn.Linear(5, 3), "b": self.shared})
        self.conv = nn.Conv2d(1, 1, 1)
        self.special = nn.modules.linear.NonDynamicallyQuantizableLinear(5, 5)  # a subclass

    def forward(self, x):
        for b in self.blocks:
            x = torch.tanh(b(x))
        x = self.special(self.heads["b"](x))
        return self.heads["a"](x) + self.conv(x[:, None, None, :3]).flatten(1)


def test_inputs_untouched_and_nested_shared_modules():
    model = Nested().double()
    x = torch.randn(4, 5, dtype=torch.float64)
    before = state(model)
    expanded = dt.overparameterize(model, depth=3, width=7)
    assert same_state(state(model), before) and type(model.shared) is nn.Linear
    assert isinstance(expanded.shared, dt.LinearProduct)
    assert expanded.blocks[0] is expanded.shared is expanded.heads["b"]
    assert isinstance(expanded.blocks[1][0], dt.LinearProduct)
    assert type(expanded.conv) is nn.Conv2d  # conv=False
    assert type(expanded.special) is nn.modules.linear.NonDynamicallyQuantizableLinear
    with torch.no_grad():
        assert maxdiff(expanded(x), model(x)) <= 1e-10
    before_expanded = state(expanded)
    collapsed, report = dt.collapse(expanded, rank=2, report=True)
    assert same_state(state(expanded), before_expanded)
    assert [r["name"] for r in report] == ["shared", "blocks.1.0", "heads.a", "conv"]
    assert collapsed.blocks[0] is collapsed.shared is collapsed.heads["b"]
    assert torch.equal(collapsed.special.weight, model.special.weight)  # subclass: left alone
    assert [r["rank_kept"] for r in report] == [2, 2, 2, 1]
    full = dt.collapse(expanded)
    assert dt.count_parameters(full) == dt.count_parameters(model)
    with torch.no_grad():
        assert maxdiff(full(x), expanded(x)) <= 1e-10


def test_depth_one_copy_generator_and_callable_init():
    model = nn.Sequential(nn.Linear(4, 3))
    copy1 = dt.overparameterize(model, depth=1)
    assert copy1 is not model and copy1[0] is not model[0] and type(copy1[0]) is nn.Linear
    a = dt.overparameterize(model, init="product", generator=gen(5))
    b = dt.overparameterize(model, init="product", generator=gen(5))
    assert same_state(state(a), state(b))
    calls = []
    c = dt.overparameterize(model, depth=3, width=6,
                            init=lambda w: calls.append(w.shape) or nn.init.trunc_normal_(
                                w, std=0.1, a=-0.2, b=0.2))
    assert calls == [(6, 4), (6, 6), (3, 6)]
    again = dt.overparameterize(c, depth=2)  # products are not expanded again
    assert [type(f) for f in again[0].factors] == [nn.Linear] * 3
    assert all(f.weight.abs().max() <= 0.2 for f in c[0].factors)
    assert torch.equal(c[0].factors[-1].bias, model[0].bias)


def test_import_dln_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, dln; assert 'torch' not in sys.modules; import dln.torch; "
            "import torch; assert dln.torch.torch is torch and hasattr(torch, 'nn')")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": ":".join(
        p for p in sys.path if p)})
