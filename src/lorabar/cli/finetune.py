"""``lorabar finetune`` (an encoder) and ``lorabar finetune-lm`` (a causal LM): one run, one result
JSON."""

from __future__ import annotations

import argparse
import sys

from .args import DATA_HELP, add_config_args, add_symlink_flag, quiet_libraries


def add_parser(sub) -> None:
    ft = sub.add_parser("finetune", help="one encoder finetuning run; writes a result JSON")
    add_config_args(ft, "encoder")
    ft.add_argument("--data-dir", dest="data_dir", default=None, help=DATA_HELP)
    ft.add_argument("--out", default=None, help="result JSON path")
    ft.add_argument(
        "--save-adapter",
        dest="save_adapter",
        default=None,
        metavar="DIR",
        help="write the trained adapter (PEFT format) and the frozen head to DIR",
    )
    ft.add_argument(
        "--quiet", action="store_true", help="no progress bar, no warnings of transformers/PEFT"
    )
    add_symlink_flag(ft)
    ft.set_defaults(func=run, on_interrupt=interrupted)

    lm = sub.add_parser(
        "finetune-lm",
        help="one causal-LM run (prompt tasks, ReCoRD, SQuAD, "
        "WebNLG or your own prompt/completion data)",
    )
    add_config_args(lm, "lm")
    lm.add_argument("--data-dir", dest="data_dir", default=None, help=DATA_HELP)
    lm.add_argument("--out", default=None, help="result JSON path")
    lm.add_argument(
        "--save-adapter",
        dest="save_adapter",
        default=None,
        metavar="DIR",
        help="write the trained adapter (PEFT format) to DIR",
    )
    lm.add_argument(
        "--quiet", action="store_true", help="no progress bar, no warnings of transformers/PEFT"
    )
    add_symlink_flag(lm)
    lm.set_defaults(func=run_lm, on_interrupt=interrupted)


def run(args: argparse.Namespace, kind: str = "encoder") -> int:
    import json

    from ..harness.run.config import CONFIGS, config_from
    from ..harness.run.engine import run as run_config
    from ..harness.plan.grid import identity_of
    from ..harness.plan.inputs import run_inputs
    from ..guard import Output, check_plan, write_json

    names = set(CONFIGS[kind].field_names())
    cfg = config_from({k: v for k, v in vars(args).items() if k in names and v is not None}, kind)
    out = Output("--out", args.out, "result")
    outputs = [out]
    if args.save_adapter:
        from ..harness.run.registry import METHODS

        if METHODS[cfg.method].adapter == "none" or not METHODS[cfg.method].trains:
            raise ValueError(f"Invalid --save-adapter: method {cfg.method!r} trains no adapter")
        outputs.append(Output("--save-adapter", args.save_adapter, "adapter"))
    # the plan, before any model loads: inputs by role, outputs, the run's identity
    check_plan(run_inputs(cfg), outputs, allow_symlink=args.allow_symlink)
    identity_of(cfg)
    if args.quiet:
        quiet_libraries()
    result = run_config(cfg, progress=not args.quiet, save_adapter=args.save_adapter)
    if result is None:  # torchrun: a rank other than 0 (rank 0 writes and prints)
        return 0
    if args.out:
        write_json(out, result, allow_symlink=args.allow_symlink)  # stamped and signed
    m, step = result["metrics"], result["timing"]["step_time_median_s"]
    summary = {
        "task": cfg.task,
        "method": cfg.method,
        "seed": cfg.seed,
        "dev": m["dev"],
        "test": m["test"],
        "final_mean_abs_B": result["final_mean_abs_B"],
        "step_time_median_s": None if step is None else round(step, 4),
        "device": result["runtime"]["device"],
        "precision": result["runtime"]["precision"],
    }
    for key in ("shared_with_train", "truncated_completions"):
        counts = result["train"].get(key) or {}
        if any(counts.values()):
            summary[key] = counts
    print(json.dumps(summary, default=str))
    shared = result["train"].get("shared_with_train") or {}
    for split, n in shared.items():
        if n:
            print(
                f"lorabar: note: {n} {split} examples have the text of a train example "
                "(recorded as train.shared_with_train)",
                file=sys.stderr,
            )
    return 0


def run_lm(args: argparse.Namespace) -> int:
    return run(args, "lm")


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted finetune kept: nothing (its files are written at the end, atomically;
    `main` prints it, exit 130)."""
    return "nothing written"
