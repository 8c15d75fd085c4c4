"""lorabar.harness.execute: where a grid's runs run.  A comparison on a real local Ray instance
and on submitit's local executor (the SLURM path) equals the same comparison on this machine run
for run: the same identities (result file names), the same metrics to the bit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lorabar.cli import main
from lorabar.harness.execute.choice import ExecutorConfig
from conftest import one_error_line
from conftest import own_data_args, synthetic_files

GRID = """[base]
model = "tiny"
steps = 3
[[variant]]
method = "lora"
lr = 1e-3
[[variant]]
method = "obar"
lr = 1e-3
mu0 = 10.0
"""


def _runs(out: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))}


def _compare(tmp_path: Path, name: str, *extra: str) -> dict[str, dict]:
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    out = tmp_path / name
    assert (
        main(
            [
                "compare",
                "--grid",
                str(grid),
                *own_data_args(paths),
                "--seeds",
                "13,21",
                "--threads",
                "1",
                "--out",
                str(out),
                *extra,
            ]
        )
        == 0
    )
    return _runs(out)


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory):
    return _compare(tmp_path_factory.mktemp("local"), "L")


def _same_runs(local: dict, other: dict) -> None:
    assert len(local) == 4 and sorted(other) == sorted(local)  # 2 tuning + 2 seed-stage runs
    for name, record in local.items():
        assert other[name]["identity"] == record["identity"], name
        assert other[name]["metrics"] == record["metrics"], name
        assert other[name]["balancedness"] == record["balancedness"], name


def test_ray_reproduces_the_local_comparison_run_for_run(tmp_path, local_runs, capsys):
    ray = pytest.importorskip("ray", reason="the cluster extra: pip install 'lorabar[cluster]'")
    runs = _compare(tmp_path, "R", "--executor", "ray")
    _same_runs(local_runs, runs)
    assert not ray.is_initialized()  # the local instance this grid started is stopped


def test_slurm_job_array_reproduces_the_local_comparison_run_for_run(tmp_path, local_runs):
    pytest.importorskip("submitit", reason="the cluster extra: pip install 'lorabar[cluster]'")
    runs = _compare(
        tmp_path,
        "S",
        "--executor",
        "slurm",
        "--slurm-cluster",
        "local",
        "--time-min",
        "10",
        "--jobs",
        "2",
    )
    _same_runs(local_runs, runs)
    logs = list((tmp_path / "S" / "slurm").glob("*_log.out"))
    assert len(logs) == 4  # one array task per run, its log beside the results


def test_a_rerun_on_another_executor_runs_nothing(tmp_path, local_runs, capsys):
    """Runs are idempotent by identity: the folder a local comparison filled is complete for a
    Ray or SLURM one (and the other way round)."""
    _compare(tmp_path, "L")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "L" / "runs").glob("*.json")}
    capsys.readouterr()
    _compare(tmp_path, "L", "--executor", "slurm", "--slurm-cluster", "local")
    assert "0 runs ran now" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert not (tmp_path / "L" / "slurm").exists()  # nothing was submitted


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--executor", "ray", "--slurm-cluster", "local"],
            r"Invalid --slurm-cluster: only --exec",
        ),
        (["--address", "auto"], r"Invalid --address: only --executor ray reads it"),
        (  # the executor's flags are checked before the comparison's
            ["--address", "auto", "--seeds", "13,13"],
            r"Invalid --address: only --executor ray reads it",
        ),
        (
            ["--executor", "ray", "--partition", "gpu"],
            r"Invalid --partition: only --executor slurm",
        ),
        (["--gpus-per-run", "1"], r"Invalid --cpus-per-run/--gpus-per-run: a local grid"),
        (
            ["--executor", "slurm", "--time-min", "0"],
            r"Invalid --time-min: 0 \(expected a positive",
        ),
        (["--executor", "ray", "--retries", "-1"], r"Invalid --retries: -1"),
    ],
)
def test_executor_flags_are_checked_before_anything_runs(tmp_path, capsys, argv, message):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    assert (
        main(
            [
                "compare",
                "--grid",
                str(grid),
                *own_data_args(paths),
                "--out",
                str(tmp_path / "o"),
                *argv,
            ]
        )
        == 2
    )
    import re

    assert re.search(message, one_error_line(capsys))
    assert not (tmp_path / "o").exists()


def test_executor_config_refuses_what_it_cannot_mean():
    with pytest.raises(ValueError, match=r"Invalid --executor: 'dask'"):
        ExecutorConfig("dask")
    with pytest.raises(ValueError, match=r"Invalid --jobs: 0"):
        ExecutorConfig(jobs=0)
    with pytest.raises(ValueError, match=r"Invalid --slurm-cluster: only --executor slurm"):
        ExecutorConfig("ray", slurm_cluster="local")
    assert (
        ExecutorConfig("slurm", jobs=4)
        .build("o", threads=2)
        .describe()
        .endswith("2 CPU, 0 GPU, 60 min per run")
    )


def test_grid_takes_the_executor_flags_too(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(
        '[base]\nmodel = "tiny"\nsteps = 2\nmax_eval = 8\ntask = "custom"\n'
        '[[variant]]\nmethod = "lora"\n'
    )
    assert (
        main(
            [
                "grid",
                str(grid),
                "--out",
                str(tmp_path / "o"),
                "--executor",
                "ray",
                "--time-min",
                "5",
            ]
        )
        == 2
    )
    assert "Invalid --time-min: only --executor slurm reads it" in one_error_line(capsys)
    shutil.rmtree(tmp_path / "o", ignore_errors=True)
