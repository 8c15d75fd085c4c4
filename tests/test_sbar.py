"""sBAR (SAM-matched BAR): SBAR(pairs, rho=...) against a written-out float64
reference, its first-order match to SAM's drift of B, kernels, sharding-free edge cases, errors."""

import copy
import math

import pytest
import torch

import lorabar
from lorabar.functional import sbar_coefficients
from conftest import loss_of, make_batch, make_peft_model


def reference_c(x, y, gx, gy, lr, rho, gnorm=None):
    """c = clamp(eta rho (|g_x|^2 - |g_y|^2) / (|g| (|x|^2 + |y|^2)), -1/2, 1/2), by hand."""
    gx2 = float((gx.double() ** 2).sum())
    gy2 = float((gy.double() ** 2).sum())
    x2 = float((x.double() ** 2).sum())
    y2 = float((y.double() ** 2).sum())
    g = math.sqrt(gx2 + gy2) if gnorm is None else gnorm
    if g == 0 or x2 + y2 == 0:
        return 0.0
    return max(-0.5, min(0.5, lr * rho * (gx2 - gy2) / (g * (x2 + y2))))


def _pairs(n=3, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    pairs = []
    for i in range(n):
        x = torch.nn.Parameter(torch.randn(4, 6, generator=gen, dtype=dtype))
        y = torch.nn.Parameter(torch.randn(5, 4, generator=gen, dtype=dtype) * (0.5 + i))
        x.grad = torch.randn(4, 6, generator=gen, dtype=dtype) * (1 + i)
        y.grad = torch.randn(5, 4, generator=gen, dtype=dtype)
        pairs.append(lorabar.FactorPair(x=x, y=y, name=f"p{i}"))
    return pairs


def test_sgd_step_matches_the_written_out_update():
    """The issue's check: (1 + c) x - eta g_x and (1 - c) y - eta g_y to 1e-12 (float64, SGD)."""
    pairs = _pairs()
    before = [
        (p.x.detach().clone(), p.y.detach().clone(), p.x.grad.clone(), p.y.grad.clone())
        for p in pairs
    ]
    lr, rho = 0.05, 0.2
    opt = torch.optim.SGD([t for p in pairs for t in p.tensors], lr=lr)
    bar = lorabar.SBAR(pairs, rho=rho)
    bar.attach(opt)
    opt.step()
    for p, (x, y, gx, gy) in zip(pairs, before, strict=True):
        c = reference_c(x, y, gx, gy, lr, rho)
        assert c != 0.0
        torch.testing.assert_close(p.x.detach(), (1 + c) * x - lr * gx, rtol=0, atol=1e-12)
        torch.testing.assert_close(p.y.detach(), (1 - c) * y - lr * gy, rtol=0, atol=1e-12)
    assert bar.step == 1


def test_global_norm_and_first_order_drift_of_B():
    pairs = _pairs()
    x0 = [(p.x.detach().clone(), p.y.detach().clone()) for p in pairs]
    g = math.sqrt(sum(float((t.grad**2).sum()) for p in pairs for t in p.tensors))
    lr, rho = 1e-4, 0.1
    lorabar.SBAR(pairs, rho=rho, norm="global").apply(lr)
    for p, (x, y) in zip(pairs, x0, strict=True):
        c = reference_c(x, y, p.x.grad, p.y.grad, lr, rho, gnorm=g)
        torch.testing.assert_close(p.x.detach(), (1 + c) * x, rtol=0, atol=1e-13)
        # the change of B = (|x|^2 - |y|^2)/2 is eta rho (|g_x|^2 - |g_y|^2)/|g| to first order
        x1, y1 = p.x.detach(), p.y.detach()
        dB = 0.5 * (float((x1**2).sum() - (y1**2).sum()) - float((x**2).sum() - (y**2).sum()))
        drift = lr * rho * float((p.x.grad**2).sum() - (p.y.grad**2).sum()) / g
        assert dB == pytest.approx(drift, rel=1e-3)


@pytest.mark.parametrize("norm", ["pair", "global"])
def test_foreach_equals_loop(norm):
    a, b = _pairs(4, seed=1), _pairs(4, seed=1)
    for pairs, foreach in ((a, True), (b, False)):
        lorabar.SBAR(pairs, rho=0.1, norm=norm, foreach=foreach).apply(0.1)
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p.x, q.x, rtol=0, atol=1e-15)
        torch.testing.assert_close(p.y, q.y, rtol=0, atol=1e-15)


def test_zero_and_nonfinite_gradients_leave_the_pair_alone_and_clamp_holds():
    pairs = _pairs(3)
    pairs[0].x.grad.zero_()
    pairs[0].y.grad.zero_()
    pairs[1].x.grad[0, 0] = float("nan")
    before = [(p.x.detach().clone(), p.y.detach().clone()) for p in pairs]
    lorabar.SBAR(pairs, rho=1e6).apply(1.0)  # huge rate: clamped at 1/2
    for p, (x, y) in zip(pairs[:2], before[:2], strict=True):
        assert torch.equal(p.x, x) and torch.equal(p.y, y)
    p, (x, y) = pairs[2], before[2]
    ratio = float(p.x.detach().norm() / x.norm())
    assert ratio in (pytest.approx(1.5), pytest.approx(0.5))
    assert float(p.y.detach().norm() / y.norm()) == pytest.approx(2.0 - ratio)
    # all-zero stats: no division by zero
    stats = torch.zeros(8, dtype=torch.float64)
    assert torch.equal(sbar_coefficients(stats, 0.1), torch.zeros(2, dtype=torch.float64))


def test_on_a_peft_model_with_adamw_grad_accumulation_and_float32():
    torch.manual_seed(0)
    model = make_peft_model()
    twin = copy.deepcopy(model)
    pairs = lorabar.find_lora_pairs(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    bar = lorabar.SBAR(pairs, rho=0.5)
    bar.attach(opt)
    for step in range(3):
        for k in range(2):  # two micro-batches, one step: BAR runs once
            loss_of(model, make_batch(10 * step + k)).backward()
        opt.step()
        opt.zero_grad()
    assert bar.step == 3
    b0 = float(lorabar.balancedness(lorabar.find_lora_pairs(twin)).mean_abs_B)
    b1 = float(lorabar.balancedness(pairs).mean_abs_B)
    assert math.isfinite(b1) and b1 != b0
    state = bar.state_dict()
    assert state == {
        "step": 3,
        "mode": "sbar",
        "rho": 0.5,
        "norm": "pair",
        "pairs": [p.name for p in pairs],
        "pair_shapes": [[list(p.x.shape), list(p.y.shape)] for p in pairs],
    }
    # a state saved by lorabar 0.1 (it carried BAR's unused mu0) still loads
    lorabar.SBAR(pairs, rho=0.5).load_state_dict({**state, "mu0": 0.5})
    other = lorabar.SBAR(pairs, rho=0.3)
    with pytest.raises(ValueError, match=r"Invalid state_dict: rho=0.5 but this BAR has rho=0.3"):
        other.load_state_dict(state)
    assert "mode='sbar', rho=0.5" in repr(bar)


def test_invalid_sbar_arguments():
    pairs = _pairs(1)
    with pytest.raises(ValueError, match=r"mode='sbar' needs rho"):
        lorabar.SBAR(pairs)
    with pytest.raises(ValueError, match=r"Invalid rho: -0.1 \(expected a finite value > 0\)"):
        lorabar.SBAR(pairs, rho=-0.1)
    with pytest.raises(ValueError, match=r"only lorabar.SBAR reads rho"):
        lorabar.BAR(pairs, mode="nbar", rho=0.1)
    with pytest.raises(ValueError, match=r"Invalid norm: 'global' \(only lorabar.SBAR reads norm"):
        lorabar.BAR(pairs, mode="obar", norm="global")
    with pytest.raises(ValueError, match=r"Invalid norm: 'layer'"):
        lorabar.SBAR(pairs, rho=0.1, norm="layer")
    with pytest.raises(ValueError, match=r"Invalid lr: nan for pair 'p0'"):
        lorabar.SBAR(pairs, rho=0.1).apply(float("nan"))


def test_bar_mode_sbar_is_deprecated_and_reads_only_what_sbar_reads():
    pairs = _pairs(1)
    with pytest.warns(FutureWarning, match=r"BAR\(mode='sbar'\) is deprecated .* lorabar.SBAR"):
        bar = lorabar.BAR(pairs, mode="sbar", rho=0.5, norm="global")
    assert isinstance(bar, lorabar.SBAR) and bar.state_dict()["norm"] == "global"
    for args, kwargs, named in (
        ((), {"mu0": 1.0}, "mu0"),
        ((1.0, "cosine"), {}, "mu0, schedule"),
        ((), {"total_steps": 10, "schedule": "linear"}, "schedule, total_steps"),
    ):
        with pytest.raises(
            ValueError,
            match=rf"Invalid arguments for mode='sbar': {named} "
            r"\(nBAR/oBAR settings\)",
        ):
            lorabar.BAR(pairs, "sbar", *args, rho=0.5, **kwargs)
