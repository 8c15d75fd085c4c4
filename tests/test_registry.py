"""The registries drive what a user reads: --help, errors, the report; --help needs no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lorabar.cli import build_parser
from lorabar.experiments.registry import METHODS, methods_for


def _help(*argv: str) -> str:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--help"])
    return ""


@pytest.mark.parametrize("command, kind", [("finetune", "encoder"), ("finetune-lm", "lm")])
def test_every_method_of_the_registry_is_in_help(capsys, monkeypatch, command, kind):
    monkeypatch.setenv("COLUMNS", "10000")  # no line wrapping inside the descriptions
    _help(command)
    text = " ".join(capsys.readouterr().out.split())
    for name in methods_for(kind):
        assert f"{name}: {' '.join(METHODS[name].description.split())}" in text
    for flag, choices in (("--schedule", "constant | linear | cosine"),
                          ("--precision", "fp32 | bf16 | fp16")):
        assert flag in text and choices in text
    if kind == "encoder":
        assert "probe (fitted" in text and "mean | cls" in text


def test_every_trained_method_has_a_builder():
    from lorabar.experiments.methods import BUILDERS

    assert set(BUILDERS) == {m for m, entry in METHODS.items() if entry.trains}


def test_an_unknown_name_lists_what_exists():
    from lorabar.experiments.config import EncoderConfig, LMConfig

    with pytest.raises(ValueError, match=r"Invalid method: 'lorra' \(expected one of \['zeroshot', "
                                         r"'lora', 'sam', .*'full'\]\)"):
        EncoderConfig(method="lorra")
    with pytest.raises(ValueError, match=r"expected one of \[.*'flatlora', 'prefix'\]\)"):
        LMConfig(method="full")  # full finetuning is an encoder method
    with pytest.raises(ValueError, match=r"Invalid pooling: 'max' \(expected one of \['mean', 'cls'\]"):
        EncoderConfig(pooling="max")


def test_the_task_adapters_follow_the_contract():
    from lorabar.experiments.config import EncoderConfig, LMConfig
    from lorabar.experiments.tasks import TaskAdapter, make_task

    for cfg in (EncoderConfig(model="tiny", data_dir=_data()), LMConfig(task="synthetic")):
        assert isinstance(make_task(cfg), TaskAdapter)


def _data() -> str:
    from test_experiments import DATA

    return str(DATA)


@pytest.mark.parametrize("code", [
    "import lorabar.cli as c; c.build_parser()",
    "import lorabar.cli as c; c.build_parser().parse_args(['finetune', '--steps', '3'])",
    "import lorabar, lorabar.toy.figures",
    "import lorabar.experiments.config, lorabar.experiments.report",
])
def test_help_configs_reports_and_the_toy_lab_import_no_torch(code):
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_lazy_namespace_resolves_every_name():
    import lorabar

    for name in lorabar.__all__:
        assert getattr(lorabar, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lorabar.nope  # noqa: B018
