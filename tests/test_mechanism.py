"""lorabar.harness.report.mechanism: balancedness relative to the baseline, paired over seeds, with
n and a 95% interval -- final, over the trajectory, per layer."""

from __future__ import annotations

import pytest

from lorabar.harness.report.mechanism import layer_rows, paired_rows
from conftest import as_runs, fake_record


def _runs():
    runs = []
    for seed, shrink in ((13, 0.9), (21, 0.8), (42, 0.85)):
        lora = fake_record("sst2", "lora", seed, 0.8, 0.8, 100, b=2.0)
        sam = fake_record("sst2", "sam", seed, 0.8, 0.8, 100, b=2.0 * shrink)
        for r, k in ((lora, 1.0), (sam, shrink)):
            r["balancedness"]["mean_abs_B"] = [1.0, 2.0 * k]
            r["balancedness"]["abs_B"] = [[1, 1, 1], [2.0 * k, 2.0, 2.0 * k]]
        runs += [lora, sam]
    return runs


def _selected():
    from lorabar.harness.report import select

    chosen = select(as_runs(_runs()))
    return chosen, sorted(chosen)


def test_final_trajectory_and_layers_are_paired_over_seeds():
    rows = paired_rows(*_selected())
    final = next(r for r in rows if r[2] == "final")
    assert final[:4] == ["sst2", "LoRA-SAM", "final", "3"]
    assert float(final[4]) == pytest.approx(-15.0)  # -10, -20, -15 %
    assert float(final[5]) < -15.0 < float(final[6]) < 0  # the interval excludes 0
    traj = next(r for r in rows if r[2] == "trajectory")
    assert float(traj[4]) == pytest.approx(-7.5)  # step 0 equal, the last -15 % on average
    layers = layer_rows(*_selected())
    assert [r[4] for r in layers[1:]] == ["-15.00", "0.00", "-15.00"]
