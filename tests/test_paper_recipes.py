"""The paper's own protocols as `lorabar compare` recipes (experiments/paper/): each plans with
a tiny stand-in model (so a recipe cannot rot), and without its weights says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorabar.cli import main
from test_bad_input import _err
from test_experiments import DATA

ROOT = Path(__file__).resolve().parents[1] / "experiments" / "paper"
# recipe -> (methods flag, stand-in model, tuning runs: the paper's grid over our tasks)
RECIPES = {
    "table1_roberta_prompt": (None, "tiny-mlm", 294),   # 6 tasks x (1 + 3 lr x (1 + 3 + 12))
    "table3_opt_prompt": (None, "tiny", 732),           # 4 tasks x (1 + 9 x (1 + 3 + 16))
    "table4_roberta_glue": ("lora,obar,nbar", "tiny", 65),  # 5 tasks x (1 + 12)
    "table5_gpt2_webnlg": ("lora,obar,nbar", "tiny", 21),   # 1 + 2 x 10
}


def _argv(name: str, tmp_path: Path) -> list[str]:
    methods = RECIPES[name][0]
    return ["compare", "--grid", str(ROOT / f"{name}.toml"), "--seeds", "13,21,42", "--out",
            str(tmp_path / "out"), "--data-dir", str(DATA), "--dry-run",
            *(["--methods", methods] if methods else [])]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_plans_with_a_stand_in_model(tmp_path, capsys, name):
    _, stand_in, runs = RECIPES[name]
    assert main([*_argv(name, tmp_path), "--model", stand_in, "--step-time", "0.1"]) == 0
    out = capsys.readouterr().out
    assert f"stage 1 (tuning, seed 13): {runs} runs, {runs} to do" in out
    assert "estimate" in out and not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_without_its_weights_says_so_in_one_line(tmp_path, capsys, name):
    assert main(_argv(name, tmp_path)) == 2
    err = _err(capsys)
    assert "is not a local folder and not in the Hugging Face cache" in err
