"""The ``lorabar`` command line."""

from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    import os

    from .apps.demo import DemoConfig, main, real_comparison
    from .experiments.data import DATA_ENV

    data_dir = args.data_dir or os.environ.get(DATA_ENV)
    if not args.synthetic:
        if data_dir and os.path.isdir(data_dir):
            real_comparison(data_dir, steps=args.real_steps, device=args.device,
                            precision=args.precision, max_eval=args.max_eval)
            return 0
        print(f"lorabar demo: no data directory, so running the synthetic demo instead. For the real "
              f"comparison on MiniLM + SST-2 pass --data-dir DIR or set {DATA_ENV}=DIR, where DIR "
              "holds sst2/k-shot-1k-test/SST-2/512-13/ (here: ../shared/data).\n")
    main(DemoConfig(steps=args.steps, seed=args.seed, mu0=args.mu0, rho=args.rho, lr=args.lr,
                    device=args.device, precision=args.precision))
    return 0


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def _toy(args: argparse.Namespace) -> int:
    from ._io import progress_bar
    from .guard import Output, add_to_manifest, check_plan
    from .toy.figures import run
    from .toy.simulate import ToyConfig, compiled

    out = Output("--out", args.out, "figures")
    check_plan([], [out], allow_symlink=args.allow_symlink)
    cfg = ToyConfig(steps=args.steps, seeds=args.seeds, noise_levels=args.noise, eta=args.eta,
                    m=args.m)
    if not compiled():
        print("lorabar toy: numba is not installed, the simulator runs as plain Python (slow); "
              "pip install 'lorabar[toy]'", file=sys.stderr)
    bar = progress_bar(cfg.steps, f"toy {args.figure}", enabled=not args.quiet, unit="step",
                       leave=True)

    def progress(stage: str, done: int, total: int) -> None:
        bar.update(done - bar.n)

    written = run(args.figure, cfg, args.out, fig2b_noise=args.fig2b_noise, progress=progress)
    bar.close()
    from pathlib import Path

    add_to_manifest(out, [p.name for p in Path(args.out).iterdir() if not p.name.startswith(".")])
    for path in written["figures"]:
        print(path)
    if written["seconds"] is not None:
        print(f"simulation: {written['seconds']:.2f} s for {cfg.steps} steps")
    return 0


def _finetune(args: argparse.Namespace, kind: str = "encoder") -> int:
    import json

    from .experiments.config import CONFIGS, config_from
    from .experiments.engine import run
    from .experiments.grid import identity_of
    from .experiments.plan import run_inputs
    from .guard import Output, check_plan, write_json

    names = set(CONFIGS[kind].field_names())
    cfg = config_from({k: v for k, v in vars(args).items() if k in names and v is not None}, kind)
    out = Output("--out", args.out, "result")
    outputs = [out]
    if args.save_adapter:
        from .experiments.registry import METHODS

        if METHODS[cfg.method].adapter == "none" or not METHODS[cfg.method].trains:
            raise ValueError(f"Invalid --save-adapter: method {cfg.method!r} trains no adapter")
        outputs.append(Output("--save-adapter", args.save_adapter, "adapter"))
    # the plan, before any model loads: inputs by role, outputs, the run's identity
    check_plan(run_inputs(cfg), outputs, allow_symlink=args.allow_symlink)
    identity_of(cfg)
    try:
        result = run(cfg, progress=not args.quiet, save_adapter=args.save_adapter)
    except KeyboardInterrupt:
        print(f"lorabar {'finetune-lm' if kind == 'lm' else 'finetune'}: interrupted; nothing "
              "written", file=sys.stderr)
        return 130
    if result is None:  # torchrun: a rank other than 0 (rank 0 writes and prints)
        return 0
    if args.out:
        from .experiments.results import with_digest

        write_json(out, with_digest(result), allow_symlink=args.allow_symlink)
    m, step = result["metrics"], result["timing"]["step_time_median_s"]
    summary = {"task": cfg.task, "method": cfg.method, "seed": cfg.seed, "dev": m["dev"],
               "test": m["test"], "final_mean_abs_B": result["final_mean_abs_B"],
               "step_time_median_s": None if step is None else round(step, 4),
               "device": result["runtime"]["device"], "precision": result["runtime"]["precision"]}
    for key in ("shared_with_train", "truncated_completions"):
        counts = result["train"].get(key) or {}
        if any(counts.values()):
            summary[key] = counts
    print(json.dumps(summary, default=str))
    shared = result["train"].get("shared_with_train") or {}
    for split, n in shared.items():
        if n:
            print(f"lorabar: note: {n} {split} examples have the text of a train example "
                  "(recorded as train.shared_with_train)", file=sys.stderr)
    return 0


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"Invalid {flag}: {text!r} (expected comma-separated integers)") from None


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .experiments.compare import (CompareConfig, compare, grid_methods, main_settings,
                                      tuning_grid)
    from .experiments.grid import expand
    from .experiments.plan import plan_inputs
    from .guard import Input, Output, check_plan

    if args.methods is not None:
        methods = tuple(m for m in args.methods.split(",") if m)
    elif args.grid:
        methods = grid_methods(args.grid)
    else:
        methods = ("lora", "sam", "obar", "nbar")
    tasks = tuple(t for t in args.tasks.split(",") if t) if args.tasks else None
    cc = CompareConfig(out=args.out, methods=methods, seeds=_ints(args.seeds, "--seeds"),
                       base=main_settings(args, "encoder"), grid=args.grid,
                       baseline=args.baseline, report=args.report, tasks=tasks,
                       protocol=args.protocol)
    configs = expand(tuning_grid(cc), data_dir=args.data_dir)  # every stage-1 run, validated
    inputs = plan_inputs(configs)
    if args.grid:
        inputs.append(Input("--grid", args.grid))
    report = Output("--report", args.report, "report") if args.report else \
        Output("--out", Path(args.out) / "report", "report")
    check_plan(inputs, [Output("--out", args.out, "folder"), report,
                        Output("--out", Path(args.out) / "paired.csv", "paired")],
               allow_symlink=args.allow_symlink)
    try:
        compare(cc, dry_run=args.dry_run, jobs=args.jobs, threads=args.threads,
                data_dir=args.data_dir, step_time=args.step_time)
    except KeyboardInterrupt:
        print(f"lorabar compare: interrupted; finished runs are kept in {args.out}; rerun the "
              "same command to resume", file=sys.stderr)
        return 130
    return 0


def _finetune_lm(args: argparse.Namespace) -> int:
    return _finetune(args, "lm")


def _grid(args: argparse.Namespace) -> int:
    import signal

    from .experiments.grid import is_done, load_grid, plan_configs, run_grid
    from .experiments.plan import plan_inputs
    from .guard import Input, Output, check_plan

    only = {}
    for item in args.only:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"Invalid --only: {item!r} (expected KEY=VALUE, e.g. method=lora)")
        only[key] = value
    grid = load_grid(args.config)
    configs = plan_configs(grid, data_dir=args.data_dir, only=only)  # every run, validated
    out = Output("--out", args.out, "folder")
    check_plan([Input("CONFIG", args.config)], [out], allow_symlink=args.allow_symlink)
    check_plan(plan_inputs(configs), [out], allow_symlink=args.allow_symlink)

    def terminate(signum, frame):  # SIGTERM: stop like Ctrl-C (workers are killed with us)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        result = run_grid(grid, args.out, jobs=args.jobs, data_dir=args.data_dir,
                          threads=args.threads, only=only)
    except KeyboardInterrupt:
        from pathlib import Path

        done = sum(is_done(p) for p in (Path(args.out) / "runs").glob("*.json"))
        print(f"lorabar grid: interrupted; {done} finished runs kept in {args.out}; rerun the "
              "same command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"grid: {result}")
    if "stopped" in result:
        print(f"lorabar grid: stopped early: {result['stopped']}", file=sys.stderr)
    return 1 if result["failed"] else 0


def _inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .guard import Input, Output, check_plan, write_json
    from .integrations.adapter import (check_rebalance_out, inspect_adapter, plot_layers,
                                       rebalance_adapter)

    outputs = [Output("--json", args.json, "layers"), Output("--png", args.png, "png")]
    if args.rebalance:
        check_rebalance_out(Path(args.adapter), Path(args.rebalance), force=args.force)
        if not args.force:
            outputs.append(Output("--rebalance", args.rebalance, "adapter"))
    check_plan([Input("ADAPTER", args.adapter)], outputs, allow_symlink=args.allow_symlink)
    report = inspect_adapter(args.adapter)
    layers = report["layers"]
    shown = layers if args.top == 0 else layers[: args.top]
    width = max(len("layer"), *(len(l["name"]) for l in shown))
    print(f"{args.adapter}: {len(layers)} LoRA pairs (r={report['r']}, "
          f"alpha={report['lora_alpha']}); mean |B| {report['mean_abs_B']:.4g}, "
          f"max |B| {report['max_abs_B']:.4g}; most unbalanced first")
    print(f"{'layer'.ljust(width)}  {'|A|':>10}  {'|B|':>10}  {'B=(|A|²-|B|²)/2':>16}")
    for l in shown:
        print(f"{l['name'].ljust(width)}  {l['norm_A']:10.4g}  {l['norm_B']:10.4g}  {l['B']:16.4g}")
    if len(shown) < len(layers):
        print(f"... {len(layers) - len(shown)} more (--top 0 shows all)")
    if args.json:
        write_json(outputs[0], report, allow_symlink=args.allow_symlink)
        print(f"wrote {args.json}")
    if args.png:
        print(f"wrote {plot_layers(report, args.png)}")
    if args.rebalance:
        done = rebalance_adapter(args.adapter, args.rebalance, force=args.force)
        print(f"wrote {args.rebalance}: {done['rebalanced']} pairs rescaled to |A| = |B| "
              "(the model's outputs are unchanged)")
        for name in done["left_alone"]:
            print(f"  left alone (a zero factor cannot be balanced): {name}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .experiments.report import render
    from .guard import Output, check_output

    check_output(Output("--out", args.out or Path(args.dir) / "report", "report"))

    def warn(message: str) -> None:
        print(f"lorabar report: {message}", file=sys.stderr)

    for path in render(args.dir, out=args.out, reference_method=args.reference,
                       skip_bad=args.skip_bad, warn=warn, baseline=args.baseline,
                       recursive=args.recursive, allow_mixed=args.allow_mixed):
        print(path)
    return 0


def _bench(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from ._io import write_json_atomic, write_text_atomic
    from .guard import Output, add_to_manifest, check_plan
    from .apps.bench import BenchConfig, bar_cost, markdown, run_bench
    from .experiments.runtime import resolve_device

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg = BenchConfig(arch=args.arch, layers=args.layers, hidden=args.hidden, heads=args.heads,
                      ffn=args.ffn, vocab=args.vocab, batch_size=args.batch_size,
                      seq_len=args.seq_len, methods=tuple(args.methods.split(",")),
                      precisions=tuple(args.precisions.split(",")), repeats=args.repeats,
                      warmup=args.warmup, device=args.device, lora_r=args.lora_r)
    counts = []
    if args.bar_pairs:  # parsed before the benchmark runs
        try:
            counts = [int(n) for n in args.bar_pairs.split(",")]
            if any(n < 1 for n in counts):
                raise ValueError
        except ValueError:
            raise ValueError(f"Invalid --bar-pairs: {args.bar_pairs!r} (expected comma-separated "
                             "positive integers, or '' to skip)") from None
    device = resolve_device(args.device)
    check_plan([], [Output("--out", args.out, "figures")], allow_symlink=args.allow_symlink)
    record = run_bench(cfg, log=None if args.quiet else print)
    bar_rows = []
    if counts:
        bar_rows = bar_cost(counts, dim=cfg.sizes()["hidden"], rank=cfg.lora_r, device=str(device))
        record["bar_cost"] = [dataclasses.asdict(b) for b in bar_rows]
    from .experiments.results import environment

    record["environment"] = environment()
    text = markdown(record, bar_rows)
    print(text)
    if args.out:
        out = Path(args.out)
        stem = f"bench_{cfg.arch}_{device.type}"
        write_json_atomic(out / f"{stem}.json", record)
        write_text_atomic(out / f"{stem}.md", text)
        add_to_manifest(Output("--out", args.out, "figures"), [f"{stem}.json", f"{stem}.md"])
        print(f"wrote {out / stem}.json and .md")
    return 0


_HELP = {
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


def _config_help(kind: str) -> dict[str, str]:
    """Help for the config flags of ``kind``; the task and method lists come from the registry."""
    from .experiments.config import CONFIGS
    from .experiments.registry import METHODS, methods_for

    methods = "; ".join(f"{m}: {METHODS[m].description}" for m in methods_for(kind))
    return {**_HELP, "task": " | ".join(CONFIGS[kind].TASKS), "method": methods}


def _add_config_args(p: argparse.ArgumentParser, kind: str, skip: tuple[str, ...] = ()) -> None:
    """One flag per config field (``--batch-size`` for ``batch_size``), defaults from the config."""
    import dataclasses

    from .experiments.config import CONFIGS

    helps = _config_help(kind)
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lorabar")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown (not installed)"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_symlink_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-symlink", dest="allow_symlink", action="store_true",
                   help="an output path may be a symbolic link (written through); refused "
                        "otherwise")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lorabar", description=__doc__)
    parser.add_argument("--version", action="version", version=f"lorabar {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="LoRA vs SAM vs oBAR vs nBAR: MiniLM on few-shot SST-2 "
                          "when the data folder is found, else (or --synthetic) a tiny synthetic "
                          "problem")
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--lr", type=float, default=1e-2)
    demo.add_argument("--mu0", type=float, default=2.0)
    demo.add_argument("--rho", type=float, default=0.05)
    demo.add_argument("--data-dir", dest="data_dir", default=None,
                      help="data folder for the real MiniLM comparison (default: $LORABAR_DATA_DIR)")
    demo.add_argument("--real-steps", dest="real_steps", type=int, default=60)
    demo.add_argument("--max-eval", dest="max_eval", type=int, default=256,
                      help="real comparison: stratified dev/test subset size (0: all)")
    demo.add_argument("--device", default="auto", help=_HELP["device"])
    demo.add_argument("--precision", default="auto", help=_HELP["precision"])
    demo.add_argument("--synthetic", action="store_true", help="the synthetic demo even with data")
    demo.set_defaults(func=_demo)

    toy = sub.add_parser("toy", help="the paper's toy problems: Figs. 1, 2, 4 and summary.json")
    toy.add_argument("figure", choices=("fig1", "fig2", "fig4", "all"))
    toy.add_argument("--out", required=True, help="output folder")
    toy.add_argument("--seeds", type=int, default=3)
    toy.add_argument("--steps", type=int, default=100_000, help="iterations T (paper: 1e5)")
    toy.add_argument("--eta", type=float, default=1e-4, help="step size (paper: 1e-4)")
    toy.add_argument("--noise", type=_floats, default=(0.1, 0.5, 1.0, 2.0),
                     help="noise levels alpha, comma-separated (the paper does not print its own)")
    toy.add_argument("--m", type=int, default=4, help="m for SAM with m-sharpness")
    toy.add_argument("--fig2b-noise", type=float, default=1.0, help="noise level of Fig. 2(b)")
    toy.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_symlink_flag(toy)
    toy.set_defaults(func=_toy)

    data_help = "data folder (default: $LORABAR_DATA_DIR), e.g. ../shared/data"
    ft = sub.add_parser("finetune", help="one encoder finetuning run; writes a result JSON")
    _add_config_args(ft, "encoder")
    ft.add_argument("--data-dir", dest="data_dir", default=None, help=data_help)
    ft.add_argument("--out", default=None, help="result JSON path")
    ft.add_argument("--save-adapter", dest="save_adapter", default=None, metavar="DIR",
                    help="write the trained adapter (PEFT format) and the frozen head to DIR")
    ft.add_argument("--quiet", action="store_true")
    _add_symlink_flag(ft)
    ft.set_defaults(func=_finetune)

    lm = sub.add_parser("finetune-lm", help="one causal-LM run (prompt tasks or WebNLG)")
    _add_config_args(lm, "lm")
    lm.add_argument("--data-dir", dest="data_dir", default=None, help=data_help)
    lm.add_argument("--out", default=None)
    lm.add_argument("--save-adapter", dest="save_adapter", default=None, metavar="DIR",
                    help="write the trained adapter (PEFT format) to DIR")
    lm.add_argument("--quiet", action="store_true")
    _add_symlink_flag(lm)
    lm.set_defaults(func=_finetune_lm)

    from .apps.archs import ARCHS, AVAILABLE, METHODS, PRECISIONS

    bench = sub.add_parser("bench", help="step time of LoRA / nBAR / oBAR / SAM in fp32 / bf16 / "
                           "fp16 on a random-init architecture (paper Tables 2, 7, 9)")
    bench.add_argument("--arch", default="opt-1.3b", help=" | ".join(ARCHS))
    for name in ("layers", "hidden", "heads", "ffn", "vocab"):
        bench.add_argument(f"--{name}", type=int, default=None,
                           help=f"override the architecture's {name} (small CPU runs)")
    bench.add_argument("--batch-size", dest="batch_size", type=int, default=4)
    bench.add_argument("--seq-len", dest="seq_len", type=int, default=64)
    bench.add_argument("--lora-r", dest="lora_r", type=int, default=8)
    bench.add_argument("--methods", default=",".join(METHODS),
                       help="comma-separated, from " + ",".join(AVAILABLE))
    bench.add_argument("--precisions", default=",".join(PRECISIONS))
    bench.add_argument("--repeats", type=int, default=10)
    bench.add_argument("--warmup", type=int, default=2)
    bench.add_argument("--device", default="auto", help=_HELP["device"])
    bench.add_argument("--threads", type=int, default=0)
    bench.add_argument("--bar-pairs", dest="bar_pairs", default="12,48,192,768",
                       help="also time BAR alone on these numbers of pairs ('' to skip)")
    bench.add_argument("--out", default=None, help="folder for bench_<arch>_<device>.json/.md")
    bench.add_argument("--quiet", action="store_true")
    _add_symlink_flag(bench)
    bench.set_defaults(func=_bench)

    cmp_ = sub.add_parser("compare", help="does a method help? tune on dev (one seed), run the "
                          "dev-chosen settings on every seed, report paired 95%% intervals "
                          "against a baseline (resumable)")
    cmp_.add_argument("--methods", default=None,
                      help="comma-separated methods (default: those of --grid, else "
                           "lora,sam,obar,nbar)")
    cmp_.add_argument("--tasks", default=None,
                      help="with --grid: only these of its tasks (comma-separated)")
    cmp_.add_argument("--seeds", default="13,21,42,87,100",
                      help="comma-separated seeds; the first one tunes (default: %(default)s)")
    cmp_.add_argument("--grid", default=None, metavar="TOML",
                      help="the tuning grid (default: each method's grid in the registry; a "
                           "setting given as a flag is fixed, not tuned)")
    cmp_.add_argument("--baseline", default="lora", help="paired differences against this method")
    from .experiments.protocol import PROTOCOLS

    cmp_.add_argument("--protocol", default="own-lr", choices=list(PROTOCOLS),
                      help="; ".join(f"{k}: {v}" for k, v in PROTOCOLS.items())
                      + " (default: %(default)s)")
    cmp_.add_argument("--out", required=True, help="folder: runs/, report/, paired.csv")
    cmp_.add_argument("--report", default=None, help="report folder (default: OUT/report)")
    cmp_.add_argument("--dry-run", dest="dry_run", action="store_true",
                      help="print the plan and a time estimate; run nothing")
    cmp_.add_argument("--step-time", dest="step_time", type=float, default=None, metavar="S",
                      help="with --dry-run: estimate with S seconds per LoRA step (e.g. measured "
                           "on the GPU that will run it) instead of measuring here")
    cmp_.add_argument("--jobs", type=_positive, default=1, help="parallel runs")
    _add_symlink_flag(cmp_)
    cmp_.add_argument("--threads", type=int, default=0)
    cmp_.add_argument("--data-dir", dest="data_dir", default=None, help=data_help)
    _add_config_args(cmp_, "encoder", skip=("method", "seed", "threads"))
    cmp_.set_defaults(func=_compare)

    grid = sub.add_parser("grid", help="run a TOML grid of finetuning runs (resumable)")
    grid.add_argument("config")
    grid.add_argument("--out", required=True)
    grid.add_argument("--jobs", type=_positive, default=1,
                      help="parallel runs (threads split evenly)")
    _add_symlink_flag(grid)
    grid.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                      help="run only the matching configurations (repeatable), e.g. method=zeroshot")
    grid.add_argument("--threads", type=int, default=0,
                      help="torch threads per run (default: CPU count / jobs)")
    grid.add_argument("--data-dir", dest="data_dir", default=None, help=data_help)
    grid.set_defaults(func=_grid)

    ins = sub.add_parser("inspect", help="per-layer balancedness of a saved PEFT LoRA adapter "
                         "(no base model needed); --rebalance writes an equivalent balanced one")
    ins.add_argument("adapter", help="folder with adapter_config.json and "
                     "adapter_model.safetensors (model.save_pretrained)")
    ins.add_argument("--json", default=None, help="write the per-layer report as JSON")
    ins.add_argument("--png", default=None, help="write a per-layer bar chart of B")
    ins.add_argument("--rebalance", default=None, metavar="OUT_DIR",
                     help="write the adapter with every pair rescaled to |A| = |B|")
    ins.add_argument("--force", action="store_true",
                     help="--rebalance may replace an existing, non-empty folder")
    ins.add_argument("--top", type=int, default=20, help="layers to print (0: all)")
    _add_symlink_flag(ins)
    ins.set_defaults(func=_inspect)

    rep = sub.add_parser("report", help="tables and figures from a folder of result files")
    rep.add_argument("dir")
    rep.add_argument("--out", default=None, help="output folder (default: DIR/report)")
    rep.add_argument("--reference", default="lora", help="method runtimes are normalized to")
    rep.add_argument("--baseline", default="lora",
                     help="paired differences (paired.csv) are taken against this method")
    rep.add_argument("--skip-bad", dest="skip_bad", action="store_true",
                     help="leave out result files that do not parse or lack required keys "
                          "(listed on stderr and in report.md) instead of stopping")
    rep.add_argument("--recursive", action="store_true",
                     help="read result files in every subfolder of DIR too (default: DIR/*.json "
                          "and DIR/runs/*.json only)")
    rep.add_argument("--allow-mixed", dest="allow_mixed", action="store_true",
                     help="report runs of different models, steps, precisions ... side by side "
                          "(each its own row, with model, steps and precision columns; never "
                          "paired across them) instead of refusing")
    rep.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    import signal

    if argv is None and hasattr(signal, "SIGPIPE"):  # `lorabar inspect A | head`: no traceback
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as err:  # noqa: BLE001 - one line for every error (EXIT_CODES)
        code = exit_code(err)
        if code is None:
            raise
        print(f"lorabar: error: {err}", file=sys.stderr)
        return code


# What an error means, and so the exit status: bad input (a flag, a file, a TOML key: nothing
# ran or was written) is 2; a failure while running (a NaN loss, a failed run, a full disk) is
# 1.  Checked in order; an error of no listed type is a bug: its traceback is shown.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (FileNotFoundError, 2),
    (ValueError, 2),                 # DataError, OutputError, a bad flag or TOML key
    (FloatingPointError, 1),         # a non-finite loss
    (RuntimeError, 1),               # a failed run of a grid or comparison
    (OSError, 1),                    # the disk, a permission
)


def exit_code(err: BaseException) -> int | None:
    """The exit status of ``err`` (:data:`EXIT_CODES`), or ``None`` for a bug."""
    for kind, code in EXIT_CODES:
        if isinstance(err, kind):
            return code
    return None


if __name__ == "__main__":
    raise SystemExit(main())
