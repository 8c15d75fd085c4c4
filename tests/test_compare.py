"""lorabar.harness.compare: plan -> execute -> report.  (The protocols are in test_protocol.py,
own files in test_own_data.py, the executors in test_execute.py, the dry run's estimate in
test_estimate.py.)"""

from __future__ import annotations

import json

from conftest import own_data_args, synthetic_files

from lorabar.cli import main

GRID = """[base]
model = "tiny"
steps = 3
[[variant]]
method = "lora"
lr = [1e-3, 3e-3]
"""


def _lrs(out):
    return sorted(
        json.loads(p.read_text())["config"]["lr"]
        for p in (out / "runs").glob("*.json")
        if json.loads(p.read_text())["config"]["seed"] == 13
    )


def test_widen_edges_tries_the_next_value_until_the_limit(tmp_path, capsys):
    """On this toy task dev accuracy grows with lr up to 0.027: the choice stays at the top
    edge, so --widen-edges 2 adds 0.009 then 0.027 (the grid's x3 step), runs the seed stage at
    0.027 and still flags it; without the flag the edge is only flagged."""
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    base = [
        "compare",
        "--grid",
        str(grid),
        *own_data_args(paths),
        "--seeds",
        "13,21",
        "--threads",
        "1",
    ]
    assert main([*base, "--out", str(tmp_path / "A")]) == 0
    assert _lrs(tmp_path / "A") == [1e-3, 3e-3]
    assert (
        "edge of the grid: train-c909fb / LoRA: lr = 0.003 is the largest of 0.001, 0.003 "
        "tried; next: 0.009" in capsys.readouterr().out.splitlines()
    )
    assert main([*base, "--out", str(tmp_path / "B"), "--widen-edges", "2"]) == 0
    assert _lrs(tmp_path / "B") == [1e-3, 3e-3, 9e-3, 2.7e-2]
    out = capsys.readouterr().out
    assert (
        "edge of the grid: train-c909fb / LoRA: lr = 0.027 is the largest of 0.001, 0.003, "
        "0.009, 0.027 tried; next: 0.081" in out.splitlines()
    )
    seeds = [json.loads(p.read_text())["config"] for p in (tmp_path / "B" / "runs").glob("*.json")]
    assert [c["lr"] for c in seeds if c["seed"] == 21] == [2.7e-2]


def test_widen_edges_is_checked_before_anything_runs(tmp_path, capsys):
    from conftest import one_error_line

    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    assert (
        main(
            [
                "compare",
                "--model",
                "tiny",
                *own_data_args(paths),
                "--widen-edges",
                "-1",
                "--out",
                str(tmp_path / "C"),
            ]
        )
        == 2
    )
    assert "Invalid --widen-edges: -1 (expected an integer >= 0)" in one_error_line(capsys)
    assert not (tmp_path / "C").exists()
