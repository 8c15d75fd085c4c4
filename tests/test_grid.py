"""Grids (lorabar.harness.plan.grid, lorabar.harness.execute.grid_runner): expansion, and a resume
after an interruption that loses no finished run."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorabar.harness.execute.grid_runner import run_grid
from lorabar.harness.plan.grid import expand, is_done, result_path


def _grid(data_dir):
    return {
        "base": {"task": "sst2", "model": "tiny", "steps": 2, "max_eval": 16},
        "grid": {"seed": [13, 21]},
        "variant": [{"method": "lora"}, {"method": "obar", "mu0": [10.0, 100.0]}],
    }


@pytest.mark.data
def test_grid_expand_and_resume(tmp_path, data_dir):
    grid = _grid(data_dir)
    configs = expand(grid, data_dir=data_dir)
    assert len(configs) == 6 and len({result_path(tmp_path, c) for c in configs}) == 6
    calls = []

    def interrupted(cfg, path, *args):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the session ends in the middle of the grid
        calls.append(path)
        from lorabar.harness.execute.local import run_one

        return run_one(cfg, path, *args)

    with pytest.raises(KeyboardInterrupt):
        run_grid(grid, tmp_path, data_dir=data_dir, runner=interrupted, log=lambda *_: None)
    assert len(calls) == 2 and all(is_done(Path(p)) for p in calls)
    (tmp_path / "runs" / ".half-written.json.tmp").write_text("{")  # a partial write
    lines, events = [], []
    counts = run_grid(grid, tmp_path, data_dir=data_dir, log=lines.append, events=events.append)
    assert counts == {"total": 6, "skipped": 2, "done": 4, "failed": 0}
    # typed progress: what compare counts, with the line lorabar grid prints for each
    assert [e.kind for e in events] == ["plan", "done", "done", "done", "done"]
    assert [e.message for e in events] == lines and lines[0].endswith(
        "2 already done, 4 to run (1 job)"
    )
    assert all(e.path.is_file() and e.path.name in e.message for e in events[1:])
    assert run_grid(grid, tmp_path, data_dir=data_dir, log=lambda *_: None)["skipped"] == 6
    assert not (tmp_path / ".lorabar-grid.lock").exists()  # a clean finish leaves no lock file
    with pytest.raises(ValueError, match=r"Invalid grid: unknown settings \['lrr'\]"):
        expand({"variant": [{"method": "lora", "lrr": 1}]})


def test_the_grid_lock_is_exclusive_removed_at_the_end_and_taken_over_when_stale(tmp_path):
    from lorabar.harness.execute.grid_runner import GridLock

    lock = tmp_path / ".lorabar-grid.lock"
    with GridLock(tmp_path):
        assert lock.read_text() == str(__import__("os").getpid())
        with pytest.raises(ValueError, match=r"is in use by another lorabar grid \(pid \d+\)"):
            GridLock(tmp_path).__enter__()
    assert not lock.exists()
    lock.write_text("12345")  # left by a grid killed with SIGKILL: nobody holds it
    with GridLock(tmp_path):
        assert lock.read_text() != "12345"
    assert not lock.exists()
