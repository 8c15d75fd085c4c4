"""lorabar._threads: OpenMP's wait policy chosen from the load before torch starts its pool."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lorabar._threads import BUSY_LOAD, choose_wait_policy


@pytest.mark.parametrize(
    "load, want", [(0.0, None), (BUSY_LOAD - 0.01, None), (BUSY_LOAD, "PASSIVE"), (3.2, "PASSIVE")]
)
def test_passive_waiting_on_a_busy_machine_only(monkeypatch, load, want):
    monkeypatch.setattr("os.getloadavg", lambda: (load, load, load))
    env: dict = {}
    said = choose_wait_policy(env)
    assert env.get("OMP_WAIT_POLICY") == want and f"load {load:.2f}" in said


def test_a_policy_the_user_set_is_kept(monkeypatch):
    monkeypatch.setattr("os.getloadavg", lambda: (5.0, 5.0, 5.0))
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert choose_wait_policy(env) == "ACTIVE (set by you)" and env["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_command_line_sets_it_before_torch_starts_and_the_run_records_it(tmp_path):
    """In a fresh interpreter (torch not yet imported): a busy machine gets PASSIVE, and the
    run's record says which policy its threads ran with."""
    code = (
        "import os, sys, json\n"
        "os.getloadavg = lambda: (2.0, 2.0, 2.0)\n"
        "from lorabar.cli import main\n"
        "code = main(['demo', '--synthetic', '--steps', '2'])\n"
        "import torch\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"},
    )
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.strip().splitlines()[-1] == "PASSIVE 0"
    from lorabar.harness.run.runtime import Runtime

    assert "omp_wait_policy" in Runtime.resolve("cpu", "fp32").describe()
