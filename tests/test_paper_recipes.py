"""The paper's own protocols as `lorabar compare` recipes (grids/paper/): each plans with
a tiny stand-in model (so a recipe cannot rot), and without its weights says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorabar.cli import main
from conftest import one_error_line
from conftest import DATA

ROOT = Path(__file__).resolve().parents[1] / "grids" / "paper"
# recipe -> (methods flag, seeds, stand-in model, tuning runs: the paper's grid over our tasks)
RECIPES = {
    "table1_roberta_prompt": (None, "13,21,42", "tiny-mlm", 294),  # 6 x (1 + 3 x (1 + 3 + 12))
    # 6 tasks x (zero-shot at each of 3 batch sizes + 9 batch x lr x (1 + 3 + 16) + 9 prefix)
    "table3_opt_prompt": (None, "13,21,42", "tiny", 1152),
    "table4_roberta_glue": ("lora,obar,nbar", "13,21,42", "tiny", 65),  # 5 tasks x (1 + 12)
    "table4_roberta_glue_qqp": ("lora,obar,nbar", "13,21", "tiny", 5),  # 1 + 2 x 2
    "table5_gpt2_webnlg": ("lora,obar,nbar", "13,21,42", "tiny", 21),  # 1 + 2 x 10
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A working folder holding what the recipes read besides the staged data: a data folder
    with small local ReCoRD and SQuAD copies (a GPU user's hub data) and a GLUE-format QQP, and
    Table 4's MNLI adapter (a real one, saved by a tiny ``lorabar finetune``)."""
    from test_qa_data import record_row, squad_row, write_jsonl

    work = tmp_path_factory.mktemp("recipes")
    root = work / "data"
    root.mkdir()
    for child in Path(DATA).iterdir():
        (root / child.name).symlink_to(child.resolve())
    for part, rows in (("train", range(30)), ("validation", range(30, 40))):
        write_jsonl(root / "squad" / f"{part}.jsonl", [squad_row(i) for i in rows])
        write_jsonl(root / "record" / f"{part}.jsonl", [record_row(i) for i in rows])
    (root / "qqp").unlink()
    (root / "qqp" / "glue").mkdir(parents=True)
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    for part, n in (("train", 40), ("dev", 10)):
        (root / "qqp" / "glue" / f"{part}.tsv").write_text(
            header
            + "".join(
                f"{i}\t{2 * i}\t{2 * i + 1}\tHow is {i}?\tWhat is {i}?\t{i % 2}\n" for i in range(n)
            )
        )
    adapter = work / "results" / "paper" / "table4" / "mnli-lora"
    assert (
        main(
            [
                "finetune",
                "--model",
                "tiny",
                "--task",
                "mnli",
                "--steps",
                "1",
                "--head",
                "linear",
                "--max-eval",
                "8",
                "--data-dir",
                str(DATA),
                "--quiet",
                "--precision",
                "fp32",
                "--out",
                str(work / "mnli.json"),
                "--save-adapter",
                str(adapter),
            ]
        )
        == 0
    )
    return work


@pytest.fixture
def in_env(env, monkeypatch):
    """Run inside ``env`` (the recipes name Table 4's MNLI adapter relative to it), with the
    GLUE-size check off for the small QQP stand-in."""
    import dataclasses

    from lorabar.harness.tasks import data_folder as data

    monkeypatch.chdir(env)
    monkeypatch.setitem(data.TASKS, "qqp", dataclasses.replace(data.TASKS["qqp"], glue_sizes=None))
    return env


def _argv(name: str, env: Path, out: Path) -> list[str]:
    methods, seeds = RECIPES[name][:2]
    return [
        "compare",
        "--grid",
        str(ROOT / f"{name}.toml"),
        "--seeds",
        seeds,
        "--out",
        str(out),
        "--data-dir",
        str(env / "data"),
        "--dry-run",
        *(["--methods", methods] if methods else []),
    ]


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_plans_with_a_stand_in_model(in_env, tmp_path, capsys, name):
    *_, stand_in, runs = RECIPES[name]
    assert (
        main([*_argv(name, in_env, tmp_path / "out"), "--model", stand_in, "--step-time", "0.1"])
        == 0
    )
    out = capsys.readouterr().out
    assert f"stage 1 (tuning, seed 13): {runs} runs, {runs} to do" in out
    assert "estimate" in out and not (tmp_path / "out" / "runs").exists()


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_without_its_weights_says_so_in_one_line(in_env, tmp_path, capsys, name):
    assert main(_argv(name, in_env, tmp_path / "out")) == 2
    err = one_error_line(capsys)
    assert "is not a local folder and not in the Hugging Face cache" in err
