"""lorabar.harness.plan.protocol: how compare tunes.  By default no method is compared at a
learning rate that was not tuned for it; the cheaper baseline-lr protocol is an explicit option;
which protocol ran is printed, recorded and in the report's first lines."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from lorabar.cli import main
from lorabar.harness.compare import CompareConfig, tuning_grid
from lorabar.harness.plan.grid import expand
from lorabar.harness.run.registry import METHODS
from conftest import one_error_line
from conftest import own_data_args, synthetic_files


@pytest.mark.parametrize(
    "methods",
    [("lora", "sam", "obar", "nbar"), ("lora", "loraplus", "flatlora", "sbar", "zeroshot")],
)
def test_the_default_plan_tunes_every_method_over_the_baselines_lrs(tmp_path, methods):
    cc = CompareConfig(out=str(tmp_path), methods=methods, base={"task": "sst2"})
    lrs = defaultdict(set)
    for cfg in expand(tuning_grid(cc)):
        lrs[cfg.method].add(cfg.lr)
    baseline = set(METHODS["lora"].tune["lr"])
    assert len(baseline) >= 2
    for method in methods:
        if METHODS[method].trains:
            assert lrs[method] == baseline, method  # tuned at every lr LoRA is tuned at
    # a learning rate given on the command line is fixed for every method alike
    fixed = CompareConfig(out=str(tmp_path), methods=methods, base={"task": "sst2", "lr": 2e-3})
    assert {c.lr for c in expand(tuning_grid(fixed))} == {2e-3}


def test_an_unknown_protocol_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Invalid protocol: 'fast'"):
        CompareConfig(out=str(tmp_path), protocol="fast")


def test_baseline_lr_protocol_tunes_the_others_at_the_baselines_choice(tmp_path, capsys):
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    out = tmp_path / "C"
    argv = [
        "compare",
        "--model",
        "tiny",
        *own_data_args(paths),
        "--methods",
        "lora,obar",
        "--seeds",
        "13,21",
        "--steps",
        "2",
        "--out",
        str(out),
        "--protocol",
        "baseline-lr",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Protocol 'baseline-lr' (baseline lora)" in printed
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    lora_lrs = {r["config"]["lr"] for r in runs if r["config"]["method"] == "lora"}
    obar_lrs = {r["config"]["lr"] for r in runs if r["config"]["method"] == "obar"}
    assert lora_lrs == set(METHODS["lora"].tune["lr"]) and len(obar_lrs) == 1
    assert obar_lrs <= lora_lrs
    seeds = {(r["config"]["method"], r["config"]["seed"]) for r in runs}
    assert {("lora", 21), ("obar", 21)} <= seeds
    md = (out / "report" / "report.md").read_text().splitlines()
    assert md[0] == f"# Report: {out.name}"
    assert md[2].startswith("Protocol 'baseline-lr' (baseline lora)")
    end = md[md.index("<summary>Provenance</summary>") :]  # who made it: folded, at the end
    assert end[2].startswith("Status: current") and end[4].startswith("Made by `lorabar compare")
    # another protocol into the same --out is refused before anything runs
    assert main([*argv[:-1], "own-lr"]) == 2
    assert "holds a comparison with protocol 'baseline-lr'" in one_error_line(capsys)


def test_the_default_protocol_is_printed_and_in_the_report(tmp_path, capsys):
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    out = tmp_path / "C"
    assert (
        main(
            [
                "compare",
                "--model",
                "tiny",
                *own_data_args(paths),
                "--methods",
                "lora,sam",
                "--seeds",
                "13,21",
                "--steps",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "Protocol 'own-lr' (baseline lora)" in capsys.readouterr().out
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    sam_tuned = {
        r["config"]["lr"]
        for r in runs
        if r["config"]["method"] == "sam" and r["config"]["seed"] == 13
    }
    assert sam_tuned == set(METHODS["lora"].tune["lr"])
    assert "Protocol 'own-lr'" in (out / "report" / "report.md").read_text()


def test_the_seed_stage_keeps_a_setting_a_variant_gave_one_method(tmp_path):
    """Table 4's recipe gives BAR weight decay 0 on CoLA and RTE (App. D.4), LoRA 0.1: the seed
    stage runs each method with its own."""
    from lorabar.harness.compare import seeds_grid
    from conftest import as_runs, fake_record

    grid = tmp_path / "g.toml"
    grid.write_text(
        '[base]\nweight_decay = 0.1\n[grid]\ntask = ["sst2"]\n'
        '[[variant]]\nmethod = "lora"\n'
        '[[variant]]\nmethod = "obar"\nweight_decay = 0.0\n'
    )
    runs = [fake_record("sst2", m, 13, 0.8, 0.8, 100) for m in ("lora", "obar")]
    runs[0]["config"]["weight_decay"] = 0.1
    runs[1]["config"]["weight_decay"] = 0.0
    cc = CompareConfig(
        out=str(tmp_path / "C"), methods=("lora", "obar"), seeds=(13, 21), grid=str(grid)
    )
    variants = {v["method"]: v for v in seeds_grid(cc, as_runs(runs))["variant"]}
    assert variants["obar"]["weight_decay"] == 0.0 and variants["lora"]["weight_decay"] == 0.1


def test_settings_from_runs_another_folders_dev_choices_under_new_settings(tmp_path, capsys):
    """The label-noise study's protocol: nothing is tuned in OUT; every method runs the setting
    chosen on dev in DIR, with the settings given on top (label noise), on every seed."""
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    clean, noisy = tmp_path / "clean", tmp_path / "noisy"
    common = ["--model", "tiny", *own_data_args(paths), "--methods", "lora,obar", "--steps", "2"]
    assert main(["compare", *common, "--seeds", "13,21", "--out", str(clean)]) == 0
    chosen = {}
    for p in (clean / "runs").glob("*.json"):
        r = json.loads(p.read_text())
        if r["config"]["seed"] == 21:  # only the dev-chosen settings ran on seed 21
            chosen[r["config"]["method"]] = (r["config"]["lr"], r["config"]["mu0"])
    capsys.readouterr()
    argv = [
        "compare",
        *common,
        "--seeds",
        "13,21,42",
        "--settings-from",
        str(clean),
        "--label-noise",
        "0.3",
        "--out",
        str(noisy),
    ]
    assert main([*argv, "--dry-run"]) == 0
    assert "at the settings chosen in" in capsys.readouterr().out
    assert main(argv) == 0
    runs = [json.loads(p.read_text()) for p in (noisy / "runs").glob("*.json")]
    assert len(runs) == 2 * 3 and {r["config"]["label_noise"] for r in runs} == {0.3}
    assert {r["config"]["method"]: (r["config"]["lr"], r["config"]["mu0"]) for r in runs} == chosen
    assert json.loads((noisy / ".lorabar-compare.json").read_text())["settings_from"] == str(clean)
    md = (noisy / "report" / "report.md").read_text().splitlines()
    assert md[2].startswith("Protocol 'settings-from' (baseline lora): nothing is tuned here")
    with pytest.raises(ValueError, match=r"Invalid --settings-from: .* is not a folder"):
        CompareConfig(out=str(noisy), protocol="settings-from", settings_from=str(tmp_path / "x"))
    with pytest.raises(
        ValueError,
        match=r"the protocol 'settings-from' and --settings-from DIR "
        r"go together",
    ):
        CompareConfig(out=str(noisy), protocol="settings-from")


def test_settings_from_a_folder_of_other_tasks_is_refused_before_anything_is_written(
    tmp_path, capsys
):
    """The hostile round's case: "No result files" after a manifest was written."""
    from pathlib import Path

    noise = Path(__file__).resolve().parents[1] / "results" / "noise"  # SST-2 and SNLI runs
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    out = tmp_path / "C"
    assert (
        main(
            [
                "compare",
                "--model",
                "tiny",
                *own_data_args(paths),
                "--settings-from",
                str(noise),
                "--seeds",
                "13,21",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "holds no dev-chosen setting for this comparison's tasks" in one_error_line(capsys)
    assert not out.exists()
