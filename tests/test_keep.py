"""compare --save-adapters (lorabar.harness.keep): each method's adapter at its dev-chosen
setting, run again through the engine, named by task, method and setting, with the command that
reproduces it in the report -- a command that parses back to the same config."""

from __future__ import annotations

import shlex

import pytest
from conftest import own_data_args, synthetic_files

from lorabar.cli.main import build_parser, main


def _compare(tmp_path, *extra):
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    out = tmp_path / "C"
    argv = [
        "compare",
        "--model",
        "tiny",
        *own_data_args(paths),
        "--methods",
        "lora,obar",
        "--lr",
        "0.001",
        "--mu0",
        "1",
        "--seeds",
        "13,21",
        "--steps",
        "2",
        "--threads",
        "1",
        "--out",
        str(out),
        *extra,
    ]
    return main(argv), out


def _config_of(command: str):
    """The config the printed command builds, as `lorabar finetune` builds it."""
    from lorabar.harness.run.config import CONFIGS, config_from

    args = build_parser().parse_args(shlex.split(command)[1:])
    names = set(CONFIGS["encoder"].field_names())
    return config_from({k: v for k, v in vars(args).items() if k in names and v is not None})


def test_the_chosen_adapters_are_kept_with_their_commands(tmp_path, capsys):
    import json

    from lorabar.harness.report.load import load

    code, out = _compare(tmp_path, "--save-adapters", str(tmp_path / "A"))
    assert code == 0, capsys.readouterr().err
    kept = sorted(p.name for p in (tmp_path / "A").iterdir() if not p.name.startswith("."))
    task = next(p.name for p in (tmp_path / "A").iterdir()).split("_")[0]  # named by content
    assert kept == [
        f"{task}_lora_lr=0.001_s13",
        f"{task}_obar_lr=0.001_mu0=1.0_schedule=cosine_s13",
    ]
    for name in kept:
        assert (tmp_path / "A" / name / "adapter_config.json").is_file()
    md = (out / "report" / "report.md").read_text()
    assert "## Kept adapters (2: each method's dev-chosen setting)" in md
    lines = [line for line in md.splitlines() if line.startswith(f"- `{task}_")]
    assert len(lines) == 2 and "not bit-identical" not in md  # the same metrics again
    records, _ = load(out)
    for line in lines:
        name, command = line.split("`")[1], line.split("`")[3]
        assert command.endswith(f"--save-adapter {tmp_path / 'A' / name}")
        cfg = _config_of(command)
        run = next(
            r for r in records if r["config"]["method"] == cfg.method and r["config"]["seed"] == 13
        )
        saved = json.loads((tmp_path / "A" / name / "lorabar" / "lorabar_run.json").read_text())
        assert saved["record"]["identity"] == run["identity"]  # the recorded run, again
        assert cfg.key() == run["identity"]["config"]


def test_every_seed_keeps_one_per_seed_and_needs_save_adapters(tmp_path, capsys):
    code, _ = _compare(tmp_path, "--save-adapters", str(tmp_path / "A"), "--every-seed")
    assert code == 0
    assert len([p for p in (tmp_path / "A").iterdir() if not p.name.startswith(".")]) == 4
    with pytest.raises(ValueError, match=r"Invalid --every-seed: .* --save-adapters DIR"):
        from lorabar.harness.compare import CompareConfig

        CompareConfig(out=str(tmp_path / "X"), every_seed=True)
