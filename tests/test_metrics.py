import math

import pytest
import torch

import lorabar
from conftest import loss_of, make_batch


def test_values_and_grads(peft_model):
    pairs = lorabar.find_lora_pairs(peft_model)
    stats = lorabar.balancedness(pairs)
    assert stats.names == tuple(p.name for p in pairs)
    for i, p in enumerate(pairs):
        assert stats.x_sq[i].item() == pytest.approx(p.x.pow(2).sum().item(), rel=1e-12)
        expected = 0.5 * (p.x.pow(2).sum() - p.y.pow(2).sum()).item()
        assert stats.B[i].item() == pytest.approx(expected, rel=1e-12)
    assert torch.isnan(stats.grad_gap).all()  # no gradients yet
    loss_of(peft_model, make_batch(0)).backward()
    pairs[0].x.grad = None
    stats = lorabar.balancedness(pairs)
    assert math.isnan(stats.grad_x_sq[0].item())
    lin = pairs[1]
    gap = lin.x.grad.pow(2).sum() - lin.y.grad.pow(2).sum()
    assert stats.grad_gap[1].item() == pytest.approx(gap.item(), rel=1e-12)
    assert stats.mean_abs_B.item() == pytest.approx(stats.B.abs().mean().item())
    d = stats.as_dict()
    assert d["max_abs_B"] == pytest.approx(stats.B.abs().max().item())
    assert d["pairs"][0]["grad_gap"] is None
    assert d["pairs"][1]["grad_gap"] == pytest.approx(gap.item())


def test_foreach_equals_loop(peft_model):
    pairs = lorabar.find_lora_pairs(peft_model)
    loss_of(peft_model, make_batch(1)).backward()
    a = lorabar.balancedness(pairs, foreach=True)
    b = lorabar.balancedness(pairs, foreach=False)
    for f in ("x_sq", "y_sq", "grad_x_sq", "grad_y_sq"):
        torch.testing.assert_close(getattr(a, f), getattr(b, f), rtol=1e-14, atol=0)


def test_low_precision_reduced_in_fp32():
    x = torch.full((4096,), 1.0, dtype=torch.bfloat16)  # |x|^2 = 4096 is exact in fp32
    pair = lorabar.FactorPair(x=x, y=torch.zeros(3, dtype=torch.bfloat16))
    stats = lorabar.balancedness([pair])
    assert stats.x_sq.dtype == torch.float32 and stats.x_sq.item() == 4096.0


def test_errors():
    with pytest.raises(ValueError, match=r"Invalid pairs: empty"):
        lorabar.balancedness([])


def test_balance_penalty(peft_model):
    pairs = lorabar.find_lora_pairs(peft_model)
    value = lorabar.balance_penalty(pairs, 0.5)
    expected = sum(abs(p.x.pow(2).sum() - p.y.pow(2).sum()) for p in pairs) * 0.5
    assert value.item() == pytest.approx(expected.item(), rel=1e-12)
    value.backward()
    p = pairs[1]
    sign = torch.sign(p.x.pow(2).sum() - p.y.pow(2).sum())
    torch.testing.assert_close(p.x.grad, 0.5 * 2 * sign * p.x.detach())
    torch.testing.assert_close(p.y.grad, -0.5 * 2 * sign * p.y.detach())
    with pytest.raises(ValueError, match=r"Invalid alpha: -1"):
        lorabar.balance_penalty(pairs, -1)
    with pytest.raises(TypeError, match=r"Invalid alpha: inf"):
        lorabar.balance_penalty(pairs, float("inf"))
