"""Flat-LoRA's random weight perturbation (lorabar.flat): the filter-wise scale, the cosine
ramp, exact restoration, the gradient taken at the perturbed weights, errors."""

import math

import pytest
import torch

import lorabar
from lorabar.flat import FlatLayer, FlatLoRA
from conftest import loss_of, make_batch, make_peft_model


def _layer(seed=0, out=64, inp=32, r=4, scaling=2.0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=g) * torch.linspace(0.1, 3.0, out)[:, None]
    a = torch.nn.Parameter(torch.randn(r, inp, generator=g))
    b = torch.nn.Parameter(torch.randn(out, r, generator=g) * 0.1)
    return FlatLayer(w, a, b, scaling, "l")


def test_noise_is_filter_wise_scaled_and_ramps_up_with_cosine():
    layer = _layer()
    w0 = layer.weight.clone()
    flat = FlatLoRA([layer], rho=0.05, total_steps=100, seed=3)
    assert flat.factor(0) == 0.0 and flat.factor(50) == pytest.approx(0.5)
    assert flat.factor(100) == pytest.approx(1.0)
    with flat.perturbed():  # step 0: sigma = 0, nothing moves
        assert torch.equal(layer.weight, w0)
    flat.step = 100
    merged = w0 + 2.0 * layer.B.detach() @ layer.A.detach()
    sigma = 0.05 / math.sqrt(32) * merged.norm(dim=1)  # one scale per output row
    draws = []
    for _ in range(200):
        flat.perturb()
        draws.append(layer.weight - w0)
        flat.restore()
    eps = torch.stack(draws)  # (200, out, in)
    measured = eps.std(dim=(0, 2))
    torch.testing.assert_close(measured, sigma, rtol=0.05, atol=0)
    assert abs(float(eps.mean())) < 3 * float(sigma.max()) / math.sqrt(eps.numel())
    assert not torch.equal(draws[0], draws[1])  # a fresh draw every step
    # restored up to one rounding per step
    torch.testing.assert_close(layer.weight, w0, rtol=0, atol=1e-5)


def test_same_seed_same_draws_and_state_dict_resumes():
    a, b = _layer(), _layer()
    fa = FlatLoRA([a], rho=0.1, total_steps=10, seed=7)
    fb = FlatLoRA([b], rho=0.1, total_steps=10, seed=7)
    fa.step = fb.step = 5
    fa.perturb()
    fb.perturb()
    assert torch.equal(a.weight, b.weight)
    fa.restore()
    fb.restore()
    state = fa.state_dict()
    fa.perturb()
    first = a.weight.clone()
    fa.restore()
    fc = FlatLoRA([_layer()], rho=0.1, total_steps=10, seed=99)
    fc.load_state_dict(state)
    fc.perturb()
    assert fc.step == 5  # the same draw (the base weights differ by one rounding)
    torch.testing.assert_close(fc.layers[0].weight, first, rtol=0, atol=1e-5)
    fc.restore()


def test_gradient_is_taken_at_the_perturbed_weights_on_a_peft_model():
    model = make_peft_model(0, dtype=torch.float32)
    flat = FlatLoRA.from_peft(model, rho=0.5, total_steps=2, seed=0)
    assert [layer.name for layer in flat.layers] == ["base_model.model.lin[default]"]  # Linear only
    flat.step = 2  # full sigma
    batch = make_batch(0)
    base = flat.layers[0].weight
    w0 = base.detach().clone()
    with flat.perturbed():
        perturbed_w = base.detach().clone()
        loss_of(model, batch).backward()
    got = [p.grad.clone() for p in lorabar.find_lora_pairs(model)[1].tensors]
    # the same gradient by hand: load the perturbed weight, backward, compare
    model.zero_grad()
    with torch.no_grad():
        base.copy_(perturbed_w)
    loss_of(model, batch).backward()
    want = [p.grad for p in lorabar.find_lora_pairs(model)[1].tensors]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-7)
    assert not torch.equal(perturbed_w, w0)


def test_invalid_flat_arguments():
    with pytest.raises(ValueError, match=r"Invalid rho: -1"):
        FlatLoRA([_layer()], rho=-1, total_steps=10)
    with pytest.raises(ValueError, match=r"Invalid total_steps: 0"):
        FlatLoRA([_layer()], rho=0.1, total_steps=0)
    with pytest.raises(ValueError, match=r"Invalid layers: empty"):
        FlatLoRA([], rho=0.1, total_steps=1)
    with pytest.raises(ValueError, match=r"do not fit W \+ s B A"):
        FlatLayer(torch.zeros(3, 4), torch.zeros(2, 4), torch.zeros(3, 3), 1.0)
    flat = FlatLoRA([_layer()], rho=0.1, total_steps=1)
    with pytest.raises(RuntimeError, match=r"restore called without perturb"):
        flat.restore()
    flat.perturb()
    with pytest.raises(RuntimeError, match=r"perturb called twice"):
        flat.perturb()
    with pytest.raises(ValueError, match=r"No trainable LoRA Linear layers"):
        FlatLoRA.from_peft(torch.nn.Linear(2, 2), rho=0.1, total_steps=1)
