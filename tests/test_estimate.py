"""lorabar.harness.plan.estimate: the dry run's wall-time model, computed by hand here, and
measured costs that come from finished runs before any probe run."""

from __future__ import annotations

import json

import pytest

from lorabar.harness.plan.estimate import Costs, RunShape, duration, measure_costs, wall_estimate

COSTS = Costs(step_s=0.2, warm_s=1.0, cold_s=5.0, source="given")


def test_one_worker_pays_the_cold_cost_once_per_task_and_seed():
    runs = [
        RunShape(10, 1, ("sst2", 13)),
        RunShape(10, 2, ("sst2", 13)),
        RunShape(10, 0, ("sst2", 13)),
    ]  # LoRA, SAM (2x per step), zero-shot (no steps)
    # steps 2 + 4 + 0, warm 3 x 1, one cold start (+4)
    assert wall_estimate(runs, COSTS, 1) == pytest.approx(6 + 3 + 4)
    two_groups = [*runs, RunShape(10, 1, ("rte", 13))]
    assert wall_estimate(two_groups, COSTS, 1) == pytest.approx(8 + 4 + 2 * 4)


def test_workers_share_the_work_and_each_starts_cold():
    runs = [RunShape(10, 1, ("sst2", 13))] * 4
    assert wall_estimate(runs, COSTS, 2) == pytest.approx((8 + 4 + 2 * 4) / 2)
    assert wall_estimate(runs[:1], COSTS, 4) == pytest.approx(2 + 1 + 4)  # one run, one worker
    assert wall_estimate([], COSTS, 2) == 0.0


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError, match=r"Invalid jobs: 0"):
        wall_estimate([RunShape(1, 1, ())], COSTS, 0)
    with pytest.raises(ValueError, match=r"negative seconds"):
        Costs(-1.0, 0.0, 0.0, "given")


def test_finished_runs_give_the_costs_without_a_probe_run(tmp_path):
    files = []
    for i, (method, step) in enumerate([("lora", 0.2), ("sam", 0.4), ("nbar", 0.21)]):
        path = tmp_path / f"{i}.json"
        path.write_text(
            json.dumps(
                {
                    "config": {"method": method},
                    "timing": {"step_time_median_s": step, "total_s": 10 + i, "train_s": 6},
                }
            )
        )
        files.append(path)
    (tmp_path / "bad.json").write_text("{not json")
    files.append(tmp_path / "bad.json")
    costs = measure_costs(
        files,
        None,
        lambda m: 2 if m == "sam" else 1,
        log=lambda _: pytest.fail("a probe run was started"),
    )
    assert (costs.step_s, costs.warm_s, costs.cold_s, costs.source) == (
        0.2,
        5.0,
        5.0,
        "finished runs",
    )


def test_an_estimate_is_given_in_the_unit_a_reader_plans_with():
    assert [duration(s) for s in (4.2, 119, 174.6, 7199, 7200, 41000)] == [
        "4 s",
        "119 s",
        "3 min",
        "120 min",
        "2.00 h",
        "11.39 h",
    ]
