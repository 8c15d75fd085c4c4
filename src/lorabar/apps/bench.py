"""``lorabar bench``: per-iteration time of LoRA, LoRA+nBAR, LoRA+oBAR and LoRA-SAM (paper
Tables 2, 7 and 9), interleaved in one run, in fp32 / bf16 / fp16 (+GradScaler), on an
architecture built from its config with random weights (nothing is downloaded).

Architectures (``ARCHS``; the paper's sizes, override any with ``layers``/``hidden``/``heads``/
``ffn``/``vocab`` for a small CPU run):

| name | config | LoRA targets |
|---|---|---|
| ``opt-1.3b`` | OPT: hidden 2048, 24 layers, 32 heads, FFN 8192, vocab 50272 | q, v |
| ``roberta-large`` | RoBERTa: hidden 1024, 24 layers, 16 heads, FFN 4096, vocab 50265 | q, v |
| ``gpt2-medium`` | GPT-2: hidden 1024, 24 layers, 16 heads, FFN 4096, vocab 50257 | c_attn |
| ``smollm2-135m`` | Llama: hidden 576, 30 layers, 9 heads (3 KV), FFN 1536, vocab 49152 | q, v |

(q, v: ``q_proj``/``v_proj``, RoBERTa's ``query``/``value``; GPT-2's ``c_attn`` is the fused
q/k/v projection.)

One step = forward + backward + optimizer step on a fixed random batch (causal LMs: LM loss;
RoBERTa: 2-class sequence classification), taken by the method registry's stepper
(`lorabar.harness.run.methods`, the same step the harness trains with); SAM = two
forward/backward passes.  Each round times
one step of every (method, precision) cell in turn, so drifting machine load hits all cells alike;
the table reports medians and ratios to LoRA in the same precision, plus the paper's comparison
(SAM in fp32 against LoRA in fp16).  On CUDA each step is bracketed by ``synchronize()``.

``bar_cost`` times BAR alone (the hook, without the step) against the number of pairs.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .. import BAR, FactorPair, find_lora_pairs
from .. import _validate as _v
from ..harness.run.config import EncoderConfig
from ..harness.run.methods import StepContext, check_bar_rate, make_stepper
from ..harness.run.runtime import Runtime, resolve_device
from .archs import ARCHS, AVAILABLE, BENCH_METHODS, BENCH_PRECISIONS

__all__ = ["ARCHS", "BenchConfig", "bar_cost", "build_bench_model", "markdown", "run_bench"]


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark; ``None`` sizes keep the architecture's own."""

    arch: str = "opt-1.3b"
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    ffn: int | None = None
    vocab: int | None = None
    batch_size: int = 4
    seq_len: int = 64
    lora_r: int = 8
    lora_alpha: int = 16
    methods: tuple[str, ...] = BENCH_METHODS
    precisions: tuple[str, ...] = BENCH_PRECISIONS
    repeats: int = 10
    warmup: int = 2
    device: str = "auto"
    seed: int = 0
    mu0: float = 1.0
    rho: float = 0.05
    lr: float = 1e-5

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"Invalid arch: {self.arch!r} (expected one of {sorted(ARCHS)})")
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "precisions", tuple(self.precisions))
        bad = [m for m in self.methods if m not in AVAILABLE]
        if bad or not self.methods:
            raise ValueError(
                f"Invalid methods: {list(self.methods)} (expected some of {AVAILABLE})"
            )
        bad = [p for p in self.precisions if p not in BENCH_PRECISIONS]
        if bad or not self.precisions:
            raise ValueError(
                f"Invalid precisions: {list(self.precisions)} (expected some of {BENCH_PRECISIONS})"
            )
        for name in ("batch_size", "seq_len", "lora_r", "repeats"):
            _v.integer(name, getattr(self, name), 1, flag=_v.flag_of(name))
        for name in ("layers", "hidden", "heads", "ffn", "vocab"):
            if getattr(self, name) is not None:
                _v.integer(name, getattr(self, name), 1, flag=_v.flag_of(name))
        sizes = self.sizes()
        if sizes["hidden"] % sizes["heads"]:
            raise ValueError(
                f"Invalid heads: hidden {sizes['hidden']} is not divisible by "
                f"{sizes['heads']} heads"
            )
        check_bar_rate(self.mu0, self.lr)

    def sizes(self) -> dict[str, int]:
        """The architecture's sizes after the overrides."""
        base = dict(ARCHS[self.arch][1])
        for k in base:
            v = getattr(self, k)
            if v is not None:
                base[k] = v
        return base


def build_bench_model(cfg: BenchConfig) -> tuple[torch.nn.Module, str]:
    """A random-init model of ``cfg.arch`` with PEFT LoRA on its attention targets."""
    from peft import LoraConfig, get_peft_model

    family, _, targets = ARCHS[cfg.arch]
    model, kind = _random_model(family, cfg.sizes())
    # GPT-2's c_attn is a Conv1D (fan_in_fan_out); its fused q/k/v projection is one LoRA pair.
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=0.0,
        target_modules=targets,
        fan_in_fan_out=family == "gpt2",
    )
    return get_peft_model(model, lora), kind


def _random_model(family: str, s: dict[str, int]) -> tuple[torch.nn.Module, str]:
    """A random-init transformers model of ``family`` with the sizes ``s``, and its kind."""
    import transformers as tf

    if family == "opt":
        conf = tf.OPTConfig(
            hidden_size=s["hidden"],
            num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"],
            ffn_dim=s["ffn"],
            vocab_size=s["vocab"],
            word_embed_proj_dim=s["hidden"],
            max_position_embeddings=2048,
        )
        model, kind = tf.OPTForCausalLM(conf), "causal"
    elif family == "gpt2":
        conf = tf.GPT2Config(
            n_embd=s["hidden"],
            n_layer=s["layers"],
            n_head=s["heads"],
            n_inner=s["ffn"],
            vocab_size=s["vocab"],
            n_positions=1024,
        )
        model, kind = tf.GPT2LMHeadModel(conf), "causal"
    elif family == "llama":
        kv = 3 if s["heads"] % 3 == 0 else s["heads"]
        conf = tf.LlamaConfig(
            hidden_size=s["hidden"],
            num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"],
            num_key_value_heads=kv,
            intermediate_size=s["ffn"],
            vocab_size=s["vocab"],
            tie_word_embeddings=True,
        )
        model, kind = tf.LlamaForCausalLM(conf), "causal"
    else:
        conf = tf.RobertaConfig(
            hidden_size=s["hidden"],
            num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"],
            intermediate_size=s["ffn"],
            vocab_size=s["vocab"],
            max_position_embeddings=514,
            type_vocab_size=1,
            num_labels=2,
        )
        model, kind = tf.RobertaForSequenceClassification(conf), "classifier"
    return model, kind


def _random_batch(cfg: BenchConfig, kind: str, device) -> dict:
    """A seeded random token batch; LM loss for causal models, 2-class labels otherwise."""
    g = torch.Generator().manual_seed(cfg.seed)
    ids = torch.randint(0, cfg.sizes()["vocab"], (cfg.batch_size, cfg.seq_len), generator=g)
    ids = ids.to(device)
    if kind == "causal":
        return {"input_ids": ids, "labels": ids}
    return {
        "input_ids": ids,
        "labels": torch.randint(0, 2, (cfg.batch_size,), generator=g).to(device),
    }


def _rows(times: dict[tuple[str, str], list[float]]) -> list[dict[str, Any]]:
    """Per (method, precision) cell: median, mean, min, every time, and the ratio to LoRA."""
    rows = []
    for (method, precision), ts in times.items():
        lora = times.get(("lora", precision))
        med = statistics.median(ts)
        rows.append(
            {
                "method": method,
                "precision": precision,
                "median_s": med,
                "mean_s": statistics.fmean(ts),
                "min_s": min(ts),
                "times_s": ts,
                "ratio_to_lora": med / statistics.median(lora) if lora else None,
            }
        )
    return rows


def run_bench(
    cfg: BenchConfig,
    *,
    log: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Measure every (method, precision) cell; returns the result record (see `markdown()`).

    ``clock`` is the timer (a fake one in tests)."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    model, kind = build_bench_model(cfg)
    model.to(device).train()
    build_s = time.perf_counter() - t0
    pairs = find_lora_pairs(model)
    params = [p for p in model.parameters() if p.requires_grad]
    batch = _random_batch(cfg, kind, device)

    # One stepper (optimizer, BAR hook or SAM, GradScaler) per cell, all over the same parameters.
    steppers = {}
    for precision in cfg.precisions:
        runtime = Runtime.resolve(str(device), precision)
        for method in cfg.methods:
            ctx = StepContext(
                model=model,
                params=params,
                pairs=pairs,
                loss_fn=lambda b: model(**b).loss,
                runtime=runtime,
                config=EncoderConfig(  # timed steps: a constant rate, no horizon
                    method=method,
                    lr=cfg.lr,
                    rho=cfg.rho,
                    mu0=cfg.mu0,
                    schedule="constant",
                    steps=1,
                    seed=cfg.seed,
                ),
            )
            steppers[(method, precision)] = make_stepper(ctx)
    times = _timed(cfg, steppers, batch, Runtime(device, "fp32").synchronize, clock, log)
    return {
        "config": asdict(cfg),
        "sizes": cfg.sizes(),
        "lora_pairs": len(pairs),
        "trainable_params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in model.parameters()),
        "build_s": build_s,
        "rows": _rows(times),
        "device": _device_name(device),
        "threads": torch.get_num_threads(),
        # a scale that fell during the run means skipped (cheaper) fp16 steps: check it
        "fp16_final_scale": {
            f"{m}/{p}": st.scaler.get_scale()
            for (m, p), st in steppers.items()
            if st.scaler is not None
        },
    }


def _timed(
    cfg: BenchConfig,
    steppers: dict,
    batch: dict,
    sync: Callable[[], None],
    clock: Callable[[], float],
    log: Callable[[str], None] | None,
) -> dict:
    """``{cell: step times}``: ``cfg.warmup`` untimed rounds, then ``cfg.repeats`` timed ones,
    each stepping every cell once (round-robin: drifting machine load hits every cell alike)."""
    cells = list(steppers)
    times: dict[tuple[str, str], list[float]] = {k: [] for k in cells}
    for _ in range(cfg.warmup):
        for key in cells:
            steppers[key].step(batch)
    for r in range(cfg.repeats):
        for key in cells:
            sync()
            t = clock()
            steppers[key].step(batch)
            sync()
            times[key].append(clock() - t)
        if log is not None:
            log(f"round {r + 1}/{cfg.repeats}")
    return times


def _device_name(device: torch.device) -> str:
    name = Runtime(device, "fp32").describe()["device_name"]
    if device.type == "cuda":
        return name
    return f"cpu ({name}, {torch.get_num_threads()} threads)"


# ----------------------------------------------------------------------------- BAR alone
@dataclass(frozen=True)
class BarCostRow:
    pairs: int
    mode: str
    bar_us: float
    us_per_pair: float
    foreach_norm_us: float = field(default=math.nan)


def bar_cost(
    pair_counts: Sequence[int] = (12, 48, 192, 768),
    *,
    dim: int = 1024,
    rank: int = 8,
    device: str = "auto",
    repeats: int = 50,
    modes: Sequence[str] = ("nbar", "obar"),
    clock: Callable[[], float] = time.perf_counter,
) -> list[BarCostRow]:
    """Median time of one BAR application (hook only) on ``n`` pairs of ``(r x d, d x r)`` factors
    with gradients, and of one ``torch._foreach_norm`` over the gradients for scale
    (``clock``: the timer, a fake one in tests)."""
    dev = resolve_device(device)
    sync = Runtime(dev, "fp32").synchronize
    rows = []
    for n in pair_counts:
        pairs = []
        for i in range(n):
            x = torch.nn.Parameter(torch.randn(rank, dim, device=dev) * 0.1)
            y = torch.nn.Parameter(torch.randn(dim, rank, device=dev) * 0.1)
            x.grad, y.grad = torch.randn_like(x), torch.randn_like(y)
            pairs.append(FactorPair(x=x, y=y, name=f"pair{i}"))
        grads = [t.grad for p in pairs for t in p.tensors]

        def timed(fn: Callable[[], None]) -> float:
            for _ in range(3):
                fn()
            ts = []
            for _ in range(repeats):
                sync()
                t = clock()
                fn()
                sync()
                ts.append(clock() - t)
            return statistics.median(ts) * 1e6

        norm_us = timed(lambda: torch._foreach_norm(grads))
        for mode in modes:
            bar = BAR(pairs, mode=mode, mu0=1e-6)  # tiny: the factors hardly change
            us = timed(lambda bar=bar: bar.apply(1.0))
            rows.append(BarCostRow(n, mode, us, us / n, norm_us))
    return rows


# ----------------------------------------------------------------------------- report
def markdown(record: dict[str, Any], bar_rows: Sequence[BarCostRow] = ()) -> str:
    """The record as markdown: step times and ratios per precision, the paper's SAM-fp32 vs
    LoRA-fp16 comparison, and BAR's own cost."""
    c, s = record["config"], record["sizes"]
    lines = [
        f"# lorabar bench: {c['arch']} on {record['device']}",
        "",
        f"Random-init {c['arch']} architecture: hidden {s['hidden']}, {s['layers']} layers, "
        f"{s['heads']} heads, FFN {s['ffn']}, vocab {s['vocab']} "
        f"({record['total_params'] / 1e6:.1f}M parameters); LoRA r={c['lora_r']}, "
        f"alpha={c['lora_alpha']} on {', '.join(ARCHS[c['arch']][2])}: "
        f"{record['lora_pairs']} pairs, "
        f"{record['trainable_params']:,} trainable.  Batch {c['batch_size']} x "
        f"{c['seq_len']} tokens; median of {c['repeats']} interleaved rounds after {c['warmup']} "
        f"warm-up rounds; fp16 = autocast + GradScaler, bf16 = autocast (parameters fp32).",
        "",
        "| precision | method | median s/step | ratio to LoRA (same precision) |",
        "|---|---|---|---|",
    ]
    for r in record["rows"]:
        ratio = "" if r["ratio_to_lora"] is None else f"{r['ratio_to_lora']:.3f}"
        lines.append(f"| {r['precision']} | {r['method']} | {r['median_s']:.4f} | {ratio} |")
    fell = {k: v for k, v in record.get("fp16_final_scale", {}).items() if v < 2.0**16}
    if fell:
        lines += ["", f"fp16 loss scale fell below 65536 (skipped steps) in: {fell}."]
    by = {(r["method"], r["precision"]): r["median_s"] for r in record["rows"]}
    if ("sam", "fp32") in by and ("lora", "fp16") in by:
        lines += [
            "",
            "Paper's comparison (SAM had to run in FP32, LoRA in FP16): SAM fp32 / LoRA "
            f"fp16 = {by[('sam', 'fp32')] / by[('lora', 'fp16')]:.2f}x.",
        ]
    if bar_rows:
        lines += [
            "",
            "BAR alone (one hook call, no optimizer step), median:",
            "",
            "| pairs | mode | BAR µs | µs per pair | foreach_norm(grads) µs |",
            "|---|---|---|---|---|",
        ]
        for b in bar_rows:
            lines.append(
                f"| {b.pairs} | {b.mode} | {b.bar_us:.1f} | {b.us_per_pair:.2f} | "
                f"{b.foreach_norm_us:.1f} |"
            )
    return "\n".join(lines) + "\n"
