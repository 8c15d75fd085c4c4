import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lorabar.cli import main
from lorabar.apps.demo import DemoConfig


def test_demo_prints_every_method(capsys, monkeypatch):
    monkeypatch.delenv("LORABAR_DATA_DIR", raising=False)
    assert main(["demo", "--steps", "12", "--synthetic"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()[2:]]
    assert [row[0] for row in lines] == ["lora", "sam", "obar", "nbar"]  # PAPER_METHODS
    for row in lines:
        values = [float(v) for v in row[1:]]
        assert len(values) == 5 and all(v == v for v in values)  # finite numbers, no NaN
    start = {row[0]: float(row[3]) for row in lines}
    end = {row[0]: float(row[4]) for row in lines}
    assert len(set(start.values())) == 1  # same initialization for every method
    assert end["obar"] < end["lora"]


def test_demo_config_validation():
    with pytest.raises(ValueError, match=r"Invalid steps: 0"):
        DemoConfig(steps=0)
    with pytest.raises(ValueError, match=r"Invalid mu0: -1"):
        DemoConfig(mu0=-1)


def test_demo_without_data_explains(capsys, monkeypatch):
    monkeypatch.delenv("LORABAR_DATA_DIR", raising=False)
    assert main(["demo", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "pass --data-dir DIR or set LORABAR_DATA_DIR=DIR" in out and "lora " in out


def test_the_real_demos_defaults_are_the_apps():
    """`lorabar demo`'s --real-steps/--max-eval defaults are what the README's plan states."""
    from lorabar.apps.demo import REAL_MAX_EVAL, REAL_STEPS
    from lorabar.cli.main import build_parser

    args = build_parser().parse_args(["demo"])
    assert (args.real_steps, args.max_eval) == (REAL_STEPS, REAL_MAX_EVAL)


def test_cli_error_is_clean(capsys):
    assert main(["demo", "--steps", "0", "--synthetic"]) == 2
    assert "lorabar: error: Invalid steps: 0" in capsys.readouterr().err


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-(10**6), 10**6), max_size=6), st.sampled_from(["", " "]))
def test_comma_lists_read_back_what_was_written(values, pad):
    from lorabar.cli.args import comma_list

    text = ",".join(f"{pad}{v}{pad}" for v in values)
    if len(set(values)) < len(values):  # an item named twice means nothing twice
        with pytest.raises(ValueError, match=r"Invalid --seeds: .* more than once"):
            comma_list(text, "--seeds", int)
        return
    assert comma_list(text, "--seeds", int) == tuple(values)
    assert comma_list(text + ",", "--seeds", float) == tuple(float(v) for v in values)
    if any(v < 0 for v in values):
        with pytest.raises(
            ValueError,
            match=r"Invalid --seeds: .* \(expected comma-separated "
            r"integers >= 0\)",
        ):
            comma_list(text, "--seeds", int, low=0)


@pytest.mark.parametrize(
    "argv,match",
    [
        (
            ["toy", "fig1", "--noise", "0.1,x", "--out", "o"],
            r"Invalid --noise: '0.1,x' \(expected "
            r"comma-separated numbers >= 0\)",
        ),
        (
            ["compare", "--seeds", "13,a", "--out", "o"],
            r"Invalid --seeds: '13,a' \(expected "
            r"comma-separated integers\)",
        ),
        (
            ["bench", "--bar-pairs", "0", "--out", "o"],
            r"Invalid --bar-pairs: '0' \(expected "
            r"comma-separated integers >= 1\)",
        ),
    ],
)
def test_every_comma_flag_fails_the_same_way(tmp_path, capsys, monkeypatch, argv, match):
    import re

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and not (tmp_path / "o").exists()


def test_every_flag_of_every_subcommand_has_help():
    """`lorabar <command> --help` explains every argument (the config flags take their help
    from beside their fields, lorabar.harness.run.config)."""
    import argparse

    from lorabar.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = {
        name: [
            a.option_strings[0] if a.option_strings else a.dest
            for a in parser._actions
            if not a.help
        ]
        for name, parser in sub.choices.items()
    }
    assert {name: flags for name, flags in missing.items() if flags} == {}


def test_python_dash_m_lorabar_is_the_command_and_the_version_is_the_changelogs():
    import re
    import subprocess
    import sys
    from importlib.metadata import version
    from pathlib import Path

    out = subprocess.run(
        [sys.executable, "-m", "lorabar", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == f"lorabar {version('lorabar')}"
    changes = (Path(__file__).resolve().parents[1] / "docs" / "changes.md").read_text()
    newest = re.search(r"^## (\d+\.\d+)", changes, re.M).group(1)
    assert version("lorabar").startswith(newest + ".")  # one version: the docs name it too
    import lorabar

    assert lorabar.__version__ == version("lorabar")  # the package says the same (was 0.1.0)


def test_quiet_silences_the_libraries_but_not_lorabar():
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    from lorabar.cli.args import quiet_libraries

    names = ("transformers", "huggingface_hub", "peft", "accelerate", "datasets")
    levels = {n: logging.getLogger(n).level for n in names}
    verbosity = hf_logging.get_verbosity()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn_explicit(
            "chatter", FutureWarning, "m.py", 1, module="transformers.modeling_utils"
        )
        warnings.warn_explicit("ours", UserWarning, "m.py", 1, module="lorabar.harness.run.runtime")
    assert [str(w.message) for w in seen] == ["ours"]
    try:
        assert logging.getLogger("transformers").getEffectiveLevel() == logging.ERROR
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        hf_logging.set_verbosity(verbosity)
