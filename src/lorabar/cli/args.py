"""What the subcommands share: the config flags (one per config field, its help beside the field),
the comma-list and positive-integer types, the symlink flag, the version."""

from __future__ import annotations

import argparse

DATA_HELP = "data folder (default: $LORABAR_DATA_DIR), e.g. ../shared/data"


def config_help(kind: str) -> dict[str, str]:
    """Help for the config flags of ``kind``: each field's own (beside it in
    [`lorabar.harness.run.config`][lorabar.harness.run.config]); the task and method lists come from
    the registry."""
    import dataclasses

    from ..harness.run.config import CONFIGS, help_of
    from ..harness.run.registry import METHODS, methods_for

    cls = CONFIGS[kind]
    helps = {f.name: text for f in dataclasses.fields(cls) if (text := help_of(cls, f.name))}
    methods = "; ".join(f"{m}: {METHODS[m].description}" for m in methods_for(kind))
    return {**helps, "task": " | ".join(cls.TASKS), "method": methods}


def field_help(name: str) -> str:
    """The help of a shared config field
    ([`lorabar.harness.run.config.RunConfig`][lorabar.harness.run.config.RunConfig])."""
    from ..harness.run.config import RunConfig, help_of

    return help_of(RunConfig, name) or ""


def add_config_args(p: argparse.ArgumentParser, kind: str, skip: tuple[str, ...] = ()) -> None:
    """One flag per config field (``--batch-size`` for ``batch_size``), defaults from the config."""
    import dataclasses

    from ..harness.run.config import CONFIGS

    helps = config_help(kind)
    for f in dataclasses.fields(CONFIGS[kind]):
        if f.name == "data_dir" or f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind_of = type(f.default) if f.default is not None else str
        text = helps.get(f.name)
        # default None: a flag not given leaves the config's own default (and lets --train
        # choose the task "custom" when --task is not given)
        if kind_of is bool:  # a switch: given means True
            p.add_argument(
                flag, dest=f.name, action="store_const", const=True, default=None, help=text
            )
            continue
        p.add_argument(
            flag,
            dest=f.name,
            type=kind_of,
            default=None,
            help=f"{text + ' ' if text else ''}(default: {f.default})",
        )


def version() -> str:
    """``lorabar.__version__``: the installed distribution's version."""
    import lorabar

    return lorabar.__version__


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def nonnegative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


LIST_KINDS = {str: "names", int: "integers", float: "numbers"}


def comma_list(text: str, flag: str, kind: type = str, *, low: float | None = None) -> tuple:
    """The one parser of comma-separated flags (``--seeds 13,21``, ``--methods lora,sam``,
    ``--noise 0.1,1``): the values of ``kind`` (empty items dropped), each ``>= low`` when
    given; anything else is one ``ValueError`` naming the flag (exit status 2)."""
    what = LIST_KINDS[kind] + ("" if low is None else f" >= {low:g}")
    try:
        values = tuple(kind(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        values = None
    if values is None or (low is not None and any(v < low for v in values)):
        raise ValueError(f"Invalid {flag}: {text!r} (expected comma-separated {what})")
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"Invalid {flag}: {text!r} names {', '.join(twice)} more than once")
    return values


def add_symlink_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-symlink",
        dest="allow_symlink",
        action="store_true",
        help="an output path may be a symbolic link (written through); refused otherwise",
    )


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    """``--executor`` and the flags of the executors that read them (see
    [`ExecutorConfig`][lorabar.harness.execute.choice.ExecutorConfig])."""
    g = p.add_argument_group("where the runs run")
    g.add_argument(
        "--executor",
        default="local",
        choices=["local", "ray", "slurm"],
        help="local: --jobs processes here (default); ray: each run a Ray task "
        "(--address, else a local Ray instance); slurm: a submitit job array",
    )
    g.add_argument(
        "--address",
        default=None,
        help="ray: a running cluster ('auto', 'ray://host:10001'); default: start a local instance",
    )
    g.add_argument(
        "--cpus-per-run",
        dest="cpus_per_run",
        type=positive,
        default=None,
        help="ray, slurm: CPUs each run asks for (default: its --threads)",
    )
    g.add_argument(
        "--gpus-per-run",
        dest="gpus_per_run",
        type=int,
        default=0,
        help="ray, slurm: GPUs each run asks for (default: 0)",
    )
    g.add_argument("--partition", default=None, help="slurm: the partition")
    g.add_argument(
        "--time-min",
        dest="time_min",
        type=int,
        default=60,
        help="slurm: minutes each run may take (default: %(default)s)",
    )
    g.add_argument(
        "--slurm-cluster",
        dest="slurm_cluster",
        default=None,
        choices=["slurm", "local"],
        help="slurm: 'local' runs the job array as processes here (testing)",
    )
    g.add_argument(
        "--retries",
        type=int,
        default=1,
        help="ray: retries of a run whose worker died (default: %(default)s)",
    )


def executor_config(args: argparse.Namespace):
    """The [`ExecutorConfig`][lorabar.harness.execute.choice.ExecutorConfig] the flags ask for
    (checked:
    a flag of another executor is refused)."""
    from ..harness.execute.choice import ExecutorConfig

    return ExecutorConfig(
        args.executor,
        args.jobs,
        args.address,
        args.cpus_per_run or 0,
        args.gpus_per_run,
        args.partition,
        args.time_min,
        args.slurm_cluster,
        args.retries,
    )


def quiet_libraries() -> None:
    """The libraries' own chatter off (every command's default; ``--verbose`` keeps it):
    transformers' and the hub's logging below errors, their weight-loading and download progress
    bars, and their Python warnings -- while lorabar's own warnings (a slow emulated bf16, a
    skipped file) still show.  Through the environment too, so that worker processes (Ray,
    submitit, torchrun) and a transformers imported later are quiet without importing it now."""
    import logging
    import os
    import sys
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("transformers", "huggingface_hub", "peft", "accelerate", "datasets", "trl"):
        logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=rf"{name}(\..*)?$")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
