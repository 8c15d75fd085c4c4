"""``lorabar inspect``: per-layer balancedness of a saved PEFT LoRA adapter; ``--rebalance``."""

from __future__ import annotations

import argparse

from .args import add_symlink_flag, nonnegative


def add_parser(sub) -> None:
    ins = sub.add_parser(
        "inspect",
        help="per-layer balancedness of a saved PEFT LoRA adapter "
        "(no base model needed); --rebalance writes an equivalent balanced one",
    )
    ins.add_argument(
        "adapter",
        help="folder with adapter_config.json and "
        "adapter_model.safetensors (model.save_pretrained)",
    )
    ins.add_argument("--json", default=None, help="write the per-layer report as JSON")
    ins.add_argument("--png", default=None, help="write a per-layer bar chart of B")
    ins.add_argument(
        "--rebalance",
        default=None,
        metavar="OUT_DIR",
        help="write the adapter with every pair rescaled to |A| = |B|",
    )
    ins.add_argument(
        "--force", action="store_true", help="--rebalance may replace an existing, non-empty folder"
    )
    ins.add_argument("--top", type=nonnegative, default=20, help="layers to print (0: all)")
    add_symlink_flag(ins)
    ins.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..guard import Input, Output, check_plan, write_json
    from ..integrations.adapter import (
        check_rebalance_out,
        inspect_adapter,
        plot_layers,
        rebalance_adapter,
    )

    outputs = [Output("--json", args.json, "layers"), Output("--png", args.png, "png")]
    if args.rebalance:
        check_rebalance_out(Path(args.adapter), Path(args.rebalance), force=args.force)
        if not args.force:
            outputs.append(Output("--rebalance", args.rebalance, "adapter"))
    check_plan([Input("ADAPTER", args.adapter)], outputs, allow_symlink=args.allow_symlink)
    report = inspect_adapter(args.adapter)
    layers = report["layers"]
    shown = layers if args.top == 0 else layers[: args.top]
    width = max(len("layer"), *(len(layer["name"]) for layer in shown))
    print(
        f"{args.adapter}: {len(layers)} LoRA pairs (r={report['r']}, "
        f"alpha={report['lora_alpha']}); mean |B| {report['mean_abs_B']:.4g}, "
        f"max |B| {report['max_abs_B']:.4g}; most unbalanced first"
    )
    print(f"{'layer'.ljust(width)}  {'|A|':>10}  {'|B|':>10}  {'B=(|A|²-|B|²)/2':>16}")
    for layer in shown:
        print(
            f"{layer['name'].ljust(width)}  {layer['norm_A']:10.4g}  {layer['norm_B']:10.4g}  "
            f"{layer['B']:16.4g}"
        )
    if len(shown) < len(layers):
        print(f"... {len(layers) - len(shown)} more (--top 0 shows all)")
    if args.json:
        write_json(outputs[0], report, allow_symlink=args.allow_symlink)
        print(f"wrote {args.json}")
    if args.png:
        print(f"wrote {plot_layers(report, args.png)}")
    if args.rebalance:
        done = rebalance_adapter(args.adapter, args.rebalance, force=args.force)
        print(
            f"wrote {args.rebalance}: {done['rebalanced']} pairs rescaled to |A| = |B| "
            "(the model's outputs are unchanged)"
        )
        for name in done["left_alone"]:
            print(f"  left alone (a zero factor cannot be balanced): {name}")
    return 0
