"""examples/: every script runs as a user runs it (a fresh interpreter, tiny models)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CASES = {
    "plain_loop.py": (["--steps", "6"], "LoRA + nBAR"),
    "hf_trainer.py": (["--steps", "20"], "step 20: loss"),
    "trl_sft.py": (["--steps", "5"], "SFT with oBAR: 5 BAR steps"),
    "accelerate_loop.py": (["--steps", "6"], "6 steps, BAR step 6"),
    "own_data_compare.py": (["--steps", "3"], "compare: "),
}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")) == sorted(
        CASES
    )


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script, tmp_path):
    argv, expect = CASES[script]
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert expect in done.stdout, done.stdout[-2000:]
    # quiet by default: no third-party warnings or weight-loading bars (--verbose shows them)
    assert "Warning" not in done.stderr and "Loading" not in done.stderr, done.stderr[-2000:]
