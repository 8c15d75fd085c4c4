"""What the subcommands share: the config flags (one per config field, help beside it),
the comma-list and positive-integer types, the symlink flag, the version."""

from __future__ import annotations

import argparse

DATA_HELP = "data folder (default: $LORABAR_DATA_DIR), e.g. ../shared/data"

HELP = {
    "model": "encoder: 'minilm' (default), 'tiny', or a HF path/id; lm: 'smollm2' (default), "
             "'tiny', or a HF path/id",
    "sam_perturbation": "under torchrun: 'sync' (SAM on the global batch) or 'per_rank' "
                        "(m-sharpness, m = world size)",
    "device": "auto (CUDA if available, else CPU) | cpu | cuda | cuda:N",
    "precision": "auto (bf16 where the hardware does it natively, fp16+GradScaler on CUDA "
                 "without bf16, else fp32) | fp32 | bf16 | fp16; parameters stay fp32",
    "targets": "LoRA targets: qv (query, value) | all (every linear layer)",
    "bar": "with --method loraplus: BAR on top, none | obar | nbar | sbar (each pair's rate is "
           "sqrt(lr_A lr_B); obar/nbar read --mu0/--schedule, sbar --rho)",
    "setting": "fewshot (k=512 splits) | full (GLUE)",
    "schedule": "BAR's alpha_t schedule: constant | linear | cosine",
    "head": "probe (fitted on frozen features, then frozen: only LoRA adapts) | linear "
            "(trained with the adapters)",
    "pooling": "mean | cls",
    "max_eval": "evaluate on a seeded, class-stratified subset of this many dev/test examples "
                "(0: all)",
    "n_train": "training examples (0: all)",
    "train": "your own data: the train file (.csv .tsv .jsonl .json .parquet or a "
             "datasets.save_to_disk folder); with --dev, --test, --text-column, --label-column "
             "(task 'custom')",
    "dev": "your own data: the dev file (selection)",
    "test": "your own data: the test file (reporting)",
    "text_column": "your own data: the column with the text",
    "text_pair_column": "your own data: the column with the second text of a pair",
    "label_column": "your own data: the label column (classes: strings or integers)",
    "task_type": "your own data: classification | regression",
    "prompt_column": "your own data (finetune-lm): the prompt column; the loss is on the "
                     "completion only",
    "completion_column": "your own data (finetune-lm): the completion column",
    "metric": "your own data (finetune-lm): nll (per completion token) | bleu (of generations)",
}


def config_help(kind: str) -> dict[str, str]:
    """Help for the config flags of ``kind``; the task and method lists come from the registry."""
    from ..experiments.config import CONFIGS
    from ..experiments.registry import METHODS, methods_for

    methods = "; ".join(f"{m}: {METHODS[m].description}" for m in methods_for(kind))
    return {**HELP, "task": " | ".join(CONFIGS[kind].TASKS), "method": methods}


def add_config_args(p: argparse.ArgumentParser, kind: str, skip: tuple[str, ...] = ()) -> None:
    """One flag per config field (``--batch-size`` for ``batch_size``), defaults from the config."""
    import dataclasses

    from ..experiments.config import CONFIGS

    helps = config_help(kind)
    for f in dataclasses.fields(CONFIGS[kind]):
        if f.name == "data_dir" or f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind_of = type(f.default) if f.default is not None else str
        text = helps.get(f.name)
        # default None: a flag not given leaves the config's own default (and lets --train
        # choose the task "custom" when --task is not given)
        p.add_argument(flag, dest=f.name, type=kind_of, default=None,
                       help=f"{text + ' ' if text else ''}(default: {f.default})")


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lorabar")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown (not installed)"


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


KINDS = {str: "names", int: "integers", float: "numbers"}


def comma_list(text: str, flag: str, kind: type = str, *, low: float | None = None) -> tuple:
    """The one parser of comma-separated flags (``--seeds 13,21``, ``--methods lora,sam``,
    ``--noise 0.1,1``): the values of ``kind`` (empty items dropped), each ``>= low`` when
    given; anything else is one ``ValueError`` naming the flag (exit status 2)."""
    what = KINDS[kind] + ("" if low is None else f" >= {low:g}")
    try:
        values = tuple(kind(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        values = None
    if values is None or (low is not None and any(v < low for v in values)):
        raise ValueError(f"Invalid {flag}: {text!r} (expected comma-separated {what})")
    return values


def add_symlink_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-symlink", dest="allow_symlink", action="store_true",
                   help="an output path may be a symbolic link (written through); refused "
                        "otherwise")
