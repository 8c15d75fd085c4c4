"""The registries drive what a user reads: --help, errors, the report; --help needs no torch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lorabar.cli import build_parser, main
from lorabar.harness.run.registry import METHODS, methods_for


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
    for flag, choices in (
        ("--schedule", "constant | linear | cosine"),
        ("--precision", "fp32 | bf16 | fp16"),
    ):
        assert flag in text and choices in text
    if kind == "encoder":
        assert "probe (fitted" in text and "mean | cls" in text


def test_every_trained_method_names_a_builder_that_imports():
    import importlib

    for name, entry in METHODS.items():
        assert (entry.builder is not None) == entry.trains, name
        if isinstance(entry.builder, str):
            module, function = entry.builder.split(":")
            assert callable(getattr(importlib.import_module(module), function)), name
    from lorabar.harness.run import methods

    assert not hasattr(methods, "BUILDERS")  # one entry per method, no second table


def test_loraplus_reads_what_the_rescaling_on_top_reads():
    from lorabar.harness.run.registry import LORAPLUS_BARS

    assert LORAPLUS_BARS == ("none", "obar", "nbar", "sbar")
    for bar in LORAPLUS_BARS[1:]:
        assert METHODS["loraplus"].reads({"bar": bar}) == (
            "loraplus_ratio",
            "bar",
            *METHODS[bar].hparams,
        )


def test_an_unknown_name_lists_what_exists():
    from lorabar.harness.run.config import EncoderConfig, LMConfig

    with pytest.raises(
        ValueError,
        match=r"Invalid method: 'lorra' \(expected one of \['zeroshot', "
        r"'lora', 'sam', .*'full'\]\)",
    ):
        EncoderConfig(method="lorra")
    with pytest.raises(ValueError, match=r"expected one of \[.*'flatlora', 'prefix'\]\)"):
        LMConfig(method="full")  # full finetuning is an encoder method
    with pytest.raises(
        ValueError, match=r"Invalid pooling: 'max' \(expected one of \['mean', 'cls'\]"
    ):
        EncoderConfig(pooling="max")


@pytest.mark.data
def test_the_task_adapters_follow_the_contract():
    from lorabar.harness.run.config import EncoderConfig, LMConfig
    from lorabar.harness.run.task_of import make_task
    from lorabar.harness.tasks.contract import TaskAdapter

    for cfg in (EncoderConfig(model="tiny", data_dir=_data()), LMConfig(task="synthetic")):
        assert isinstance(make_task(cfg), TaskAdapter)


def _data() -> str:
    from conftest import DATA

    return str(DATA)


@pytest.mark.parametrize(
    "code",
    [
        "import lorabar.cli as c; c.build_parser()",
        "import lorabar.cli as c; c.build_parser().parse_args(['finetune', '--steps', '3'])",
        "import lorabar, lorabar.toy.figures",
        "import lorabar.harness.run.config, lorabar.harness.report",
    ],
)
def test_help_configs_reports_and_the_toy_lab_import_no_torch(code):
    out = subprocess.run(
        [sys.executable, "-c", code + "; import sys; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_the_lazy_namespace_resolves_every_name():
    import lorabar

    for name in lorabar.__all__:
        assert getattr(lorabar, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lorabar.nope  # noqa: B018


def test_what_a_method_reads_is_stated_once():
    """Method.reads: the run key, dev selection's columns and the seed stage's grid agree, for
    LoRA+ with BAR on top too (a seed-stage grid once lost its bar, mu0 and schedule)."""
    from lorabar.harness.compare import CompareConfig, seeds_grid
    from lorabar.harness.run.config import EncoderConfig
    from lorabar.harness.run.registry import METHODS
    from lorabar.harness.report.naming import hparams_text

    plus = METHODS["loraplus"]
    assert plus.reads({"bar": "none"}) == ("loraplus_ratio",)
    assert plus.reads({"bar": "obar"}) == ("loraplus_ratio", "bar", "mu0", "schedule")
    assert plus.reads({"bar": "sbar"}) == ("loraplus_ratio", "bar", "rho")
    assert METHODS["sam"].reads({}) == ("rho", "sam_perturbation")
    cfg = EncoderConfig(method="loraplus", bar="nbar", mu0=2.0, schedule="linear", rho=0.3)
    key = cfg.key()
    assert {k for k in ("bar", "mu0", "schedule", "rho", "loraplus_ratio") if k in key} == {
        "bar",
        "mu0",
        "schedule",
        "loraplus_ratio",
    }
    assert plus.reads(cfg) == plus.reads(dataclasses.asdict(cfg))
    config = {**key, "task": "sst2", "method": "loraplus", "seed": 13}
    from lorabar.harness.run.result import RunRecord

    run = RunRecord.of(
        {
            "config": config,
            "primary_metric": "accuracy",
            "metrics": {"dev": {"accuracy": 0.5}, "test": {"accuracy": 0.5}},
            "identity": {"config": key},
            "key": key,
        },
        "r.json",
    )
    assert "bar=nbar, mu0=2.0, schedule=linear" in hparams_text(run)
    (variant,) = seeds_grid(
        CompareConfig(out="x", methods=("lora", "loraplus"), base={"task": "sst2"}), [run]
    )["variant"]
    assert {k: variant[k] for k in ("bar", "mu0", "schedule")} == {
        "bar": "nbar",
        "mu0": 2.0,
        "schedule": "linear",
    }


def test_a_runs_settings_reach_its_stepper_from_the_config():
    """StepContext holds the run's config, not copies of its fields: each builder's objects get
    the config's values (none of them a default) -- a context field of its own would differ."""
    from conftest import loss_of, make_peft_model

    import lorabar
    from lorabar.harness.run.config import EncoderConfig
    from lorabar.harness.run.methods import StepContext, make_stepper
    from lorabar.harness.run.runtime import Runtime

    model = make_peft_model()
    params = [p for p in model.parameters() if p.requires_grad]

    def stepper(**settings):
        cfg = EncoderConfig(lr=3e-4, weight_decay=0.02, steps=7, seed=21, **settings)
        return make_stepper(
            StepContext(
                model=model,
                params=params,
                pairs=lorabar.find_lora_pairs(model),
                loss_fn=lambda b: loss_of(model, b),
                runtime=Runtime.resolve("cpu", "fp32"),
                config=cfg,
            )
        )

    sam = stepper(method="sam", rho=0.2, sam_perturbation="per_rank")
    assert sam.info["sam"]["rho"] == 0.2 and sam.info["sam"]["perturbation"] == "per_rank"
    assert (sam.optimizer.defaults["lr"], sam.optimizer.defaults["weight_decay"]) == (3e-4, 0.02)
    plus = stepper(method="loraplus", bar="obar", mu0=3.0, schedule="linear", loraplus_ratio=4.0)
    assert plus.info["loraplus"]["ratio"] == 4.0
    assert plus.info["loraplus"]["bar"] == {"mode": "obar", "mu0": 3.0, "schedule": "linear"}
    flat = stepper(method="flatlora", rho=0.3)
    assert flat.flat.total_steps == 7 and flat.info["flatlora"]["rho"] == 0.3  # the run's steps
    with pytest.raises(TypeError, match=r"Invalid config: dict \(a run config"):
        StepContext(
            model=model,
            params=params,
            pairs=[],
            loss_fn=None,
            runtime=Runtime.resolve("cpu", "fp32"),
            config={"lr": 1e-3},
        )


# ----------------------------------------------------------------------------- a new method
@pytest.fixture
def penalty_method():
    """The development guide's worked example: LoRA plus the explicit balancedness penalty of
    the paper's Sec. 5.2, its strength read from ``mu0`` -- one entry and one builder."""
    import dataclasses

    import lorabar
    from lorabar.harness.run.methods import METHODS, Method, adamw_stepper, register_method

    def build(ctx):
        def loss_fn(batch):
            return ctx.loss_fn(batch) + lorabar.balance_penalty(ctx.pairs, ctx.config.mu0)

        return adamw_stepper(dataclasses.replace(ctx, loss_fn=loss_fn))

    register_method(
        Method(
            "penalty",
            "LoRA+penalty",
            "LoRA + the explicit balancedness penalty (--mu0 its strength)",
            hparams=("mu0",),
            tune={"mu0": [1e-3, 1e-1]},
            builder=build,
        )
    )
    yield METHODS["penalty"]
    del METHODS["penalty"]


def test_a_new_method_is_one_entry(tmp_path, penalty_method):
    from conftest import own_data_args, synthetic_files
    from lorabar.harness.run.config import EncoderConfig

    a, b = (EncoderConfig(method="penalty", mu0=m, model="tiny") for m in (1e-3, 1e-1))
    assert a.key() != b.key()  # what it reads is part of the run's identity
    assert EncoderConfig(method="lora", mu0=1e-3).key() == EncoderConfig(method="lora").key()
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
                "lora,penalty",
                "--lr",
                "0.01",
                "--seeds",
                "13,21",
                "--steps",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    tuned = {
        r["config"]["mu0"]
        for r in runs
        if r["config"]["method"] == "penalty" and r["config"]["seed"] == 13
    }
    assert tuned == {1e-3, 1e-1}  # its registry grid, tuned on dev
    chosen = {
        r["config"]["mu0"]
        for r in runs
        if r["config"]["method"] == "penalty" and r["config"]["seed"] == 21
    }
    assert len(chosen) == 1 and chosen <= tuned  # the seed stage runs the dev-chosen setting
    selection = (out / "report" / "selection.csv").read_text()
    row = next(line for line in selection.splitlines() if ",LoRA+penalty," in line)
    assert f"mu0={chosen.pop():g}" in row  # the report names the setting it read


def test_register_method_refuses_what_it_cannot_mean(penalty_method):
    from lorabar.harness.run.methods import Method, adamw_stepper, register_method

    with pytest.raises(ValueError, match=r"'penalty' is already registered"):
        register_method(penalty_method)
    with pytest.raises(ValueError, match=r"hparams \['gamma'\] are not config fields"):
        register_method(Method("g", "G", "g", hparams=("gamma",), builder=adamw_stepper))
    with pytest.raises(ValueError, match=r"a method that trains needs a builder"):
        Method("h", "H", "h")


def test_every_metric_a_task_records_is_declared_once():
    """The metrics' one declaration: what tables scale by, what selection maximizes."""
    import re

    from lorabar.harness.report.naming import metric_scale
    from lorabar.harness.run.registry import METRICS, metric

    from lorabar.harness.tasks.catalogue import TASKS

    root = Path(__file__).resolve().parents[1]
    # what the tasks say they record: the catalogue's metrics, every primary_metric a task
    # sets, and the keys of every metric dict a task returns ({"name": value, ...})
    recorded = {m for t in TASKS.values() for m in t.metrics}
    for p in (root / "src" / "lorabar" / "harness" / "tasks").glob("*.py"):
        text = p.read_text()
        recorded |= set(re.findall(r'primary_metric\s*=\s*"(\w+)"', text))
        recorded |= set(re.findall(r'"(\w+)" if cfg\.metric', text))
        for name, body in re.findall(r"\n\s*def (\w+)\((.*?)(?=\n\s*def |\Z)", text, re.S):
            if re.search(r"metric|evaluat|score", name):  # the functions that compute metrics
                for block in re.findall(r"(?:return|result =) \{(.*?)\}", body, re.S):
                    recorded |= set(re.findall(r'"(\w+)":', block))
    for path in root.glob("results/*/runs/*.json"):  # and what the committed runs recorded
        recorded |= set(json.loads(path.read_text())["metrics"]["test"])
    recorded -= {"examples", "input", "question", "output"}  # sample outputs beside the metrics
    assert {"accuracy", "bleu", "f1", "neg_nll"} <= recorded
    assert recorded - set(METRICS) == set(), recorded - set(METRICS)
    assert metric_scale("accuracy") == 100 and metric_scale("bleu") == metric_scale("nll") == 1
    assert metric("neg_nll").higher and not metric("nll").higher
    with pytest.raises(ValueError, match=r"Invalid metric: 'acc' \(expected one of"):
        metric("acc")
