"""Benchmark: BAR's and SAM's cost on PEFT-LoRA BERT models built from a config (no download).

For 12, 96 and 384 LoRA pairs (r=8 on q/v, or on all six projections of a layer) it prints
  - the base step time (AdamW, forward + backward + step, batch 8 x seq 32, fp32),
  - BAR's added time per step and per pair (the hook alone, timed in isolation),
  - one torch._foreach_norm over the same tensors BAR reads or writes (nBAR: g_x, g_y, x, y);
    BAR's target is <= 1.3x of it.  BAR itself is one norm pass over (g_x, g_y) plus one
    multiply pass over (x, y) plus a handful of O(1) ops, so the ratio to a norm over the
    gradients alone is also printed (its floor is ~2x),
  - the number of aten ops one BAR step dispatches (flat in the number of pairs = multi-tensor),
  - LoRA+nBAR / LoRA and SAM / LoRA step-time ratios, measured interleaved, each step taken by
    the method registry's stepper (lorabar.harness.run.methods: the step the harness trains with).

    python benchmarks/bench_core.py [--repeats 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import lorabar
from lorabar.harness.run.config import EncoderConfig
from lorabar.harness.run.methods import StepContext, make_stepper
from lorabar.harness.run.runtime import Runtime

SIZES = {  # pairs -> (layers, target modules, hidden)
    12: (6, ["query", "value"], 128),
    96: (
        16,
        ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"],
        64,
    ),
    384: (
        64,
        ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"],
        64,
    ),
}


def build(n_pairs: int):
    from peft import LoraConfig, get_peft_model
    from transformers import BertConfig, BertForSequenceClassification

    layers, targets, hidden = SIZES[n_pairs]
    cfg = BertConfig(
        vocab_size=1000,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = get_peft_model(
        BertForSequenceClassification(cfg), LoraConfig(r=8, lora_alpha=16, target_modules=targets)
    )
    pairs = lorabar.find_lora_pairs(model)
    assert len(pairs) == n_pairs, len(pairs)
    return model, pairs


def timeit(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def count_ops(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    # top-level aten ops only (children of a foreach op are not separate launches)
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None)


def steppers(method: str, model, pairs, batch):
    """One training step of ``method`` as the harness takes it (the registry's stepper, fp32)."""
    ctx = StepContext(
        model=model,
        params=[p for p in model.parameters() if p.requires_grad],
        pairs=pairs,
        loss_fn=lambda b: model(**b).loss,
        runtime=Runtime.resolve("cpu", "fp32"),
        config=EncoderConfig(
            method=method, lr=1e-4, rho=0.05, mu0=1.0, schedule="constant", steps=1, seed=0
        ),
    )
    step = make_stepper(ctx).step
    return lambda: step(batch)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, fp32, batch 8 x seq 32, "
        f"median of {args.repeats}"
    )
    hdr = (
        "pairs",
        "base ms",
        "BAR us",
        "us/pair",
        "norm(all) us",
        "BAR/norm(all)",
        "norm(g) us",
        "BAR/norm(g)",
        "BAR aten ops",
        "nBAR/LoRA",
        "SAM/LoRA",
    )
    print(" | ".join(hdr))
    for n_pairs in SIZES:
        model, pairs = build(n_pairs)
        ids = torch.randint(0, 1000, (8, 32))
        labels = torch.randint(0, 2, (8,))
        batch = {"input_ids": ids, "labels": labels}
        step_lora, step_bar, step_sam = (
            steppers(m, model, pairs, batch) for m in ("lora", "nbar", "sam")
        )

        # interleave the three to share drift in machine load
        t = {"lora": [], "bar": [], "sam": []}
        for fn in (step_lora, step_bar, step_sam):
            fn()
        for _ in range(args.repeats):
            for name, fn in (("lora", step_lora), ("bar", step_bar), ("sam", step_sam)):
                t0 = time.perf_counter()
                fn()
                t[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in t.items()}

        model(**batch).loss.backward()  # leave gradients in place for the isolated timings
        probe = lorabar.BAR(pairs, mode="nbar", mu0=1.0)
        lrs = [1e-4] * len(pairs)
        bar_t = timeit(lambda: probe.apply(lrs), args.repeats * 20)
        grads = [p.x.grad for p in pairs] + [p.y.grad for p in pairs]
        every = grads + [p.x for p in pairs] + [p.y for p in pairs]
        norm_all = timeit(lambda: torch._foreach_norm(every), args.repeats * 20)
        norm_g = timeit(lambda: torch._foreach_norm(grads), args.repeats * 20)
        ops = count_ops(lambda: probe.apply(lrs))
        row = (
            n_pairs,
            f"{1e3 * med['lora']:.1f}",
            f"{1e6 * bar_t:.0f}",
            f"{1e6 * bar_t / n_pairs:.2f}",
            f"{1e6 * norm_all:.0f}",
            f"{bar_t / norm_all:.2f}",
            f"{1e6 * norm_g:.0f}",
            f"{bar_t / norm_g:.2f}",
            ops,
            f"{med['bar'] / med['lora']:.3f}",
            f"{med['sam'] / med['lora']:.3f}",
        )
        print(" | ".join(str(c) for c in row), flush=True)


if __name__ == "__main__":
    main()
