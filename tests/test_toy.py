"""The theory lab: the simulator equals the core library, and the paper's claims hold.

Claims use the paper's own setting (eta = 1e-4, T = 1e5, x0 = [0.2, -0.1, 0.3], y0 = -3 x0;
rho 0.1 / 0.2) and 3 seeds: the compiled simulator runs the whole grid in about a second.
Measured values are quoted next to each assertion.
"""

import json

import numpy as np
import pytest
import torch

import lorabar
from lorabar.cli import main
from lorabar.toy import ToyConfig, fig4_loss, fig4_trajectories, simulate

A = torch.diag(torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64))
SCALE = torch.tensor([1.0, 0.8, 0.5], dtype=torch.float64)[:, None]


def _torch_loss(problem, x, y, sample, level):
    """Loss on one noise sample (9 standard normals) for NOP / OP, in torch."""
    if problem == "nop":
        target = A + level * SCALE * sample.reshape(3, 3)
        return (torch.outer(x, y) - target).pow(2).sum()
    return (x @ y - (0.5 + level * sample[0])).pow(2)


def _torch_run(problem, method, noise, steps, cfg, level):
    x = torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64, requires_grad=True)
    y = (-3 * x.detach()).clone().requires_grad_(True)
    pair = lorabar.FactorPair(x=x, y=y, name=problem)
    rho = cfg.rho[problem]
    if method in ("sam", "sam_m"):
        opt = lorabar.SAM([x, y], torch.optim.SGD, rho=rho, lr=cfg.eta)
    else:
        opt = torch.optim.SGD([x, y], lr=cfg.eta)
    if method in ("nbar", "obar"):
        lorabar.BAR([pair], mode=method, mu0=cfg.mu0[problem]).attach(opt)
    if method == "sbar":
        lorabar.SBAR([pair], rho=rho).attach(opt)
    for t in range(steps):
        if method == "sam_m":
            batch = torch.from_numpy(noise[0, t, : cfg.m])

            def loss_fn(chunk):
                return torch.stack([_torch_loss(problem, x, y, s, level) for s in chunk]).mean()

            lorabar.sam_step(opt, loss_fn, batch, m=cfg.m)
            continue
        sample = torch.from_numpy(noise[0, t, 0])
        loss = _torch_loss(problem, x, y, sample, level)
        if method == "explicit":
            loss = loss + lorabar.balance_penalty([pair], cfg.lam[problem])
        loss.backward()
        if method == "sam":
            opt.first_step(zero_grad=True)
            _torch_loss(problem, x, y, sample, level).backward()
            opt.second_step(zero_grad=True)
        else:
            opt.step()
            opt.zero_grad()
    return x.detach().numpy(), y.detach().numpy()


@pytest.mark.parametrize("problem", ["nop", "op"])
@pytest.mark.parametrize("method", ["sgd", "sam", "sam_m", "nbar", "obar", "explicit", "sbar"])
def test_simulator_equals_core_library(problem, method):
    """One source of truth: the simulator's steps are lorabar.SAM / BAR / sam_step / penalty."""
    steps = 6
    # Large eta, mu0 and lam so that every term moves the iterate visibly in 6 steps.
    cfg = ToyConfig(
        steps=steps,
        seeds=1,
        noise_levels=(1.0,),
        eta=0.05,
        points=steps,
        m=2,
        mu0={"nop": 4.0, "op": 4.0},
        lam={"nop": 0.5, "op": 0.5},
    )
    noise = np.random.default_rng(7).standard_normal((1, steps, 2, 9))
    res = simulate(cfg, problems=(problem,), methods=(method,), noise=noise)
    x, y = _torch_run(problem, method, noise, steps, cfg, 1.0)
    np.testing.assert_allclose(res.x[0], x, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(res.y[0], y, rtol=1e-11, atol=1e-13)
    assert not np.allclose(res.x[0], [0.2, -0.1, 0.3])


@pytest.fixture(scope="module")
def grid():
    return simulate(ToyConfig())


def _final(res, problem, method, a):
    return res.abs_B[res.select(problem, method, a), -1].mean()


LEVELS = ToyConfig().noise_levels


@pytest.mark.parametrize("problem", ["nop", "op"])
def test_sgd_and_sngd_keep_balancedness(grid, problem):
    """Thm. 1 and its SNGD extension: B_{t+1} - B_t = eta^2 (|g_x|^2 - |g_y|^2) / 2 for SGD and
    the same over |g|^2 for SNGD (the O(eta) terms cancel), so the drift is bounded by eta^2/2
    times the recorded sums; SNGD's is also <= eta^2 T / 2.  Measured drift: SGD 5e-5 (alpha=0.1)
    to 0.015 (alpha=2), SNGD <= 4.4e-4, i.e. <= 2.7% of |B0| = 0.56."""
    eta, steps = grid.config.eta, grid.config.steps
    for a in LEVELS:
        for method, bound in (("sgd", grid.gap_sum), ("sngd", grid.gap_norm_sum)):
            idx = grid.select(problem, method, a)
            drift = np.abs(grid.abs_B[idx, -1] - grid.abs_B[idx, 0])
            assert np.all(drift <= 0.5 * eta**2 * bound[idx] * (1 + 1e-6) + 1e-12)
            assert np.all(drift < 0.03 * grid.abs_B[idx, 0])
        assert np.all(grid.gap_norm_sum[grid.select(problem, "sngd", a)] <= steps)


@pytest.mark.parametrize("problem", ["nop", "op"])
def test_sam_shrinks_balancedness_more_with_more_noise(grid, problem):
    """Thms. 2 and 3: SAM's |B_T| < SGD's, and it is smaller at larger noise."""
    sam = [_final(grid, problem, "sam", a) for a in LEVELS]
    sgd = [_final(grid, problem, "sgd", a) for a in LEVELS]
    assert all(s < 0.6 * g for s, g in zip(sam, sgd))  # measured ratio <= 0.57 (nop, alpha=0.1)
    assert all(b <= a * (1 + 1e-9) + 1e-12 for a, b in zip(sam, sam[1:]))  # monotone in alpha
    assert sam[0] > sam[1] > sam[2]  # strictly where |B| is not already ~0


def test_op_sam_drives_balancedness_to_zero(grid):
    """Thm. 3: measured |B_T| / |B0| = 0.092, 0.0052, 2e-5, 0 for alpha = 0.1, 0.5, 1, 2."""
    b0 = grid.abs_B[0, 0]
    ratios = [_final(grid, "op", "sam", a) / b0 for a in LEVELS]
    assert ratios[0] < 0.15 and all(r < 0.01 for r in ratios[1:])


def test_nop_sam_ends_near_the_corollary_1_threshold(grid):
    """Corollary 1: SAM's |B_T| over the time-averaged threshold B̄ (Fig. 2(a)'s dotted lines).

    Measured |B_T| / mean(B̄) = 0.91, 0.57, 0.53 for alpha = 0.1, 0.5, 1 (over the second half of
    the run: 1.14, 0.50, 0.44): the same order of magnitude, not an exact match.  At alpha = 2 SAM
    (rho = 0.1) collapses to the saddle x = y = 0, where B = 0 trivially, so it is excluded.
    """
    for a in LEVELS[:3]:
        idx = grid.select("nop", "sam", a)
        ratio = grid.abs_B[idx, -1].mean() / grid.threshold[idx].mean()
        assert 0.4 < ratio < 1.2
    idx = grid.select("nop", "sam", 2.0)
    assert np.linalg.norm(grid.x[idx], axis=1).max() < 1e-3  # the collapse, stated in the docs


def test_m_sharpness_regularizes_at_least_as_strongly():
    """Appendix C.3: with the same 4-sample minibatch, per-sample perturbations (m = 4) shrink
    |B| at least as much as one perturbation (measured NOP alpha=0.5: 0.112 vs 0.186)."""
    res = simulate(ToyConfig(), methods=("sam", "sam_m"), batch={"sam": 4})
    for problem in ("nop", "op"):
        for a in LEVELS:
            assert _final(res, problem, "sam_m", a) <= _final(res, problem, "sam", a) + 1e-12


def test_fig2b_nbar_tracks_sam_and_obar_shrinks(grid):
    """Fig. 2(b) at alpha = 1: nBAR (mu0 = 0.3) stays within a factor 1.45 of SAM's |B_t| over the
    whole run (measured max ratio 1.447); oBAR and the explicit regularizer drive |B| to ~0."""
    sam = grid.abs_B[grid.select("nop", "sam", 1.0)].mean(0)
    nbar = grid.abs_B[grid.select("nop", "nbar", 1.0)].mean(0)
    assert np.max(np.maximum(nbar / sam, sam / nbar)) < 1.6
    for problem in ("nop", "op"):
        for a in LEVELS:
            for method in ("obar", "explicit"):
                assert _final(grid, problem, method, a) < 0.01 * grid.abs_B[0, 0]


def test_sbar_is_data_responsive_like_sam(grid):
    """sBAR (rho = SAM's): on NOP its final |B_T| decreases with the noise level, as SAM's does,
    and is within a factor 2 of SAM's at alpha = 0.1, 0.5, 1 (nBAR's fixed rate is blind to the
    noise: its |B_T| barely changes with alpha).  Measured values in the README's theory lab."""
    sbar = [_final(grid, "nop", "sbar", a) for a in LEVELS[:3]]
    sam = [_final(grid, "nop", "sam", a) for a in LEVELS[:3]]
    assert sbar[0] > sbar[1] > sbar[2]
    for a, b in zip(sbar, sam):
        assert 0.5 < a / b < 2.0
    nbar = [_final(grid, "nop", "nbar", a) for a in LEVELS[:3]]
    assert max(nbar) / min(nbar) < 1.1 < sbar[0] / sbar[2]


def test_cli_fig2_summary_has_sbar_meeting_the_target(tmp_path):
    """`lorabar toy fig2 --out D` writes D/summary.json with nop.sbar: final |B_T| decreasing in
    the noise level and within a factor 2 of SAM's at 0.1, 0.5, 1 (the paper's T = 1e5)."""
    assert main(["toy", "fig2", "--out", str(tmp_path), "--quiet"]) == 0
    nop = json.loads((tmp_path / "summary.json").read_text())["nop"]
    sbar = [nop["sbar"][a]["B_final"] for a in ("0.1", "0.5", "1")]
    sam = [nop["sam"][a]["B_final"] for a in ("0.1", "0.5", "1")]
    assert sbar[0] > sbar[1] > sbar[2]
    assert all(0.5 < s / m < 2.0 for s, m in zip(sbar, sam))


def test_fig4_hard_constraint_traps_regularization_does_not():
    paths = fig4_trajectories()
    saddle_loss = fig4_loss(0.0, 0.0)  # 0.75
    hard = paths["hard_constraint"][-1]
    assert np.abs(hard).max() < 1e-6 and fig4_loss(*hard) == pytest.approx(saddle_loss)
    for name in ("gd", "obar"):
        assert fig4_loss(*paths[name][-1]) < 1e-6  # reached a minimizer x y = 0.005
    gap = lambda p: abs(abs(p[0]) - abs(p[1]))  # noqa: E731
    assert gap(paths["obar"][-1]) < 1e-4 < 0.01 < gap(paths["gd"][-1])  # oBAR's is balanced
    # Too strong a regularizer behaves like the constraint.
    assert np.abs(fig4_trajectories(mu0=100.0)["obar"][-1]).max() < 1e-6
    with pytest.raises(ValueError, match=r"Invalid mu0: 1000000.0 \(oBAR needs 0 < mu0 \* eta < 1"):
        fig4_trajectories(mu0=1e6)


def test_cli_writes_figures_data_and_summary(tmp_path, capsys):
    assert (
        main(["toy", "all", "--out", str(tmp_path), "--steps", "3000", "--seeds", "2", "--quiet"])
        == 0
    )
    for name in ("fig1_nop", "fig1_op", "fig2a", "fig2b", "fig4"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert "config" in data or "settings" in data
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"nop", "op"}
    for problem, by_method in summary.items():
        assert set(by_method) == {"sgd", "sngd", "sam", "sam_m", "nbar", "obar", "explicit", "sbar"}
        for by_noise in by_method.values():
            assert list(by_noise) == ["0.1", "0.5", "1", "2"]
            for entry in by_noise.values():
                assert set(entry) == {"B0", "B_final", "B_threshold"}
                assert entry["B0"] == pytest.approx(0.56)
                assert (entry["B_threshold"] is None) == (problem == "op")
    curves = json.loads((tmp_path / "fig1_nop.json").read_text())
    assert len(curves["steps"]) == 1001 and len(curves["curves"]["sam/0.5"]["abs_B"]) == 1001
    assert "simulation:" in capsys.readouterr().out


def test_config_validation():
    with pytest.raises(ValueError, match=r"Invalid steps: 0"):
        ToyConfig(steps=0)
    with pytest.raises(ValueError, match=r"Invalid noise_levels: \(-1.0,\)"):
        ToyConfig(noise_levels=(-1.0,))
    with pytest.raises(ValueError, match=r"Invalid mu0: .* mu0 \* eta < 1"):
        ToyConfig(mu0={"nop": 1e5, "op": 1.0})
    with pytest.raises(ValueError, match=r"Invalid method: 'adam'"):
        simulate(ToyConfig(steps=10), methods=("adam",))
    with pytest.raises(ValueError, match=r"Invalid noise: shape \(1, 5, 1, 9\)"):
        simulate(ToyConfig(steps=10, seeds=1), noise=np.zeros((1, 5, 1, 9)))
    for chunk in (0, -5):  # steps per compiled call: never none, never a silent empty run
        with pytest.raises(ValueError, match=rf"Invalid chunk: {chunk}"):
            simulate(ToyConfig(steps=10, seeds=1), chunk=chunk)
