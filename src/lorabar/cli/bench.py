"""``lorabar bench``: step times of LoRA, nBAR, oBAR and SAM per precision on a random-init
architecture."""

from __future__ import annotations

import argparse

from .args import add_symlink_flag, comma_list, field_help


def add_parser(sub) -> None:
    from ..apps.archs import ARCHS, AVAILABLE, BENCH_METHODS, BENCH_PRECISIONS

    bench = sub.add_parser(
        "bench",
        help="step time of LoRA / nBAR / oBAR / SAM in fp32 / bf16 / "
        "fp16 on a random-init architecture (paper Tables 2, 7, 9)",
    )
    _model_args(bench, ARCHS)
    bench.add_argument(
        "--methods",
        default=",".join(BENCH_METHODS),
        help="comma-separated, from " + ",".join(AVAILABLE),
    )
    bench.add_argument(
        "--precisions",
        default=",".join(BENCH_PRECISIONS),
        help="comma-separated, of " + " | ".join(BENCH_PRECISIONS) + " (default: %(default)s)",
    )
    _timing_args(bench)
    bench.add_argument("--out", default=None, help="folder for bench_<arch>_<device>.json/.md")
    bench.add_argument("--quiet", action="store_true", help="no progress output")
    add_symlink_flag(bench)
    bench.set_defaults(func=run)


def _model_args(bench: argparse.ArgumentParser, archs) -> None:
    """The architecture (and its overrides for small CPU runs) and the batch's shape."""
    bench.add_argument("--arch", default="opt-1.3b", help=" | ".join(archs))
    for name in ("layers", "hidden", "heads", "ffn", "vocab"):
        bench.add_argument(
            f"--{name}",
            type=int,
            default=None,
            help=f"override the architecture's {name} (small CPU runs)",
        )
    bench.add_argument(
        "--batch-size",
        dest="batch_size",
        type=int,
        default=4,
        help="examples per step (default: %(default)s)",
    )
    bench.add_argument(
        "--seq-len",
        dest="seq_len",
        type=int,
        default=64,
        help="tokens per example (default: %(default)s)",
    )
    bench.add_argument(
        "--lora-r", dest="lora_r", type=int, default=8, help="LoRA rank (default: %(default)s)"
    )


def _timing_args(bench: argparse.ArgumentParser) -> None:
    """How the timing runs: rounds, warmup, device, threads, and BAR alone."""
    bench.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="interleaved timing rounds, the median reported (default: %(default)s)",
    )
    bench.add_argument(
        "--warmup", type=int, default=2, help="untimed rounds first (default: %(default)s)"
    )
    bench.add_argument("--device", default="auto", help=field_help("device"))
    bench.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    bench.add_argument(
        "--bar-pairs",
        dest="bar_pairs",
        default="12,48,192,768",
        help="also time BAR alone on these numbers of pairs ('' to skip)",
    )


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from ..guard import Output, check_plan
    from ..publish import merge_folder, staging
    from ..apps.bench import BenchConfig, bar_cost, markdown, run_bench
    from ..harness.run.runtime import resolve_device

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg = BenchConfig(
        arch=args.arch,
        layers=args.layers,
        hidden=args.hidden,
        heads=args.heads,
        ffn=args.ffn,
        vocab=args.vocab,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        methods=comma_list(args.methods, "--methods"),
        precisions=comma_list(args.precisions, "--precisions"),
        repeats=args.repeats,
        warmup=args.warmup,
        device=args.device,
        lora_r=args.lora_r,
    )
    counts = comma_list(args.bar_pairs, "--bar-pairs", int, low=1)  # before the benchmark runs
    device = resolve_device(args.device)
    out = Output("--out", args.out, "figures")
    check_plan([], [out], allow_symlink=args.allow_symlink)
    record = run_bench(cfg, log=None if args.quiet else print)
    bar_rows = []
    if counts:
        bar_rows = bar_cost(counts, dim=cfg.sizes()["hidden"], rank=cfg.lora_r, device=str(device))
        record["bar_cost"] = [dataclasses.asdict(b) for b in bar_rows]
    from ..harness.run.records import environment

    record["environment"] = environment()
    text = markdown(record, bar_rows)
    print(text)
    if args.out:
        stem = f"bench_{cfg.arch}_{device.type}"
        with staging(out) as tmp:
            (tmp / f"{stem}.json").write_text(json.dumps(record, indent=1, default=float))
            (tmp / f"{stem}.md").write_text(text)
            merge_folder(tmp, out, allow_symlink=args.allow_symlink)
        print(f"wrote {Path(args.out) / stem}.json and .md")
    return 0
