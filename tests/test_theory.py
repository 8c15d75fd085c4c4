"""Theory sanity on a tiny scale-invariant problem (paper eq. (11), NOP, x, y in R^3).

f(x, y) = |x y^T - (A + s N)|^2 with fresh Gaussian noise N every step, x0 = [0.2, -0.1, 0.3],
y0 = -3 x0 (B0 = -0.56), eta = 1e-3, T = 3000.
"""

import pytest
import torch

import lorabar

A = torch.diag(torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64))
SCALE = torch.tensor([1.0, 0.8, 0.5], dtype=torch.float64)[:, None]
ETA, T, NOISE = 1e-3, 3000, 1.0


def run(method, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64, requires_grad=True)
    y = (-3 * x.detach()).clone().requires_grad_(True)
    pair = lorabar.FactorPair(x=x, y=y, name="nop")
    if method == "sam":
        opt = lorabar.SAM([x, y], torch.optim.SGD, rho=0.1, lr=ETA)
    else:
        opt = torch.optim.SGD([x, y], lr=ETA)
    if method in ("nbar", "obar"):
        lorabar.BAR([pair], mode=method, mu0=5.0).attach(opt)
    b0 = lorabar.balancedness([pair]).B.item()
    max_g_sq = 0.0
    for _ in range(T):
        target = A + NOISE * SCALE * torch.randn(3, 3, generator=gen, dtype=torch.float64)
        loss_fn = lambda: (torch.outer(x, y) - target).pow(2).sum()  # noqa: E731
        loss_fn().backward()
        max_g_sq = max(max_g_sq, x.grad.pow(2).sum().item() + y.grad.pow(2).sum().item())
        if method == "sam":
            opt.first_step(zero_grad=True)
            loss_fn().backward()
            opt.second_step(zero_grad=True)
        else:
            opt.step()
            opt.zero_grad()
    return b0, lorabar.balancedness([pair]).B.item(), max_g_sq


def test_sgd_keeps_balancedness_within_eta_squared_T():
    # B_{t+1} - B_t = eta^2 (|g_x|^2 - |g_y|^2) / 2 exactly for NOP (the O(eta) term cancels,
    # Thm. 1), so |B_T - B_0| <= eta^2 T max|g|^2 / 2.
    b0, bt, g_sq = run("sgd")
    assert abs(bt - b0) <= 0.5 * ETA**2 * T * g_sq
    assert abs(bt - b0) < 0.05 * abs(b0)


@pytest.mark.parametrize("method", ["sam", "obar", "nbar"])
def test_sam_and_bar_shrink_balancedness(method):
    b0, bt_sgd, _ = run("sgd")
    _, bt, _ = run(method)
    # Measured |B_T| (|B_0| = 0.56, seed 0): sgd 0.548, sam 0.108, obar 0.0008, nbar 0.018.
    assert abs(bt) < 0.5 * abs(bt_sgd)
