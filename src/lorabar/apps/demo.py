"""``lorabar demo``: LoRA vs LoRA-SAM vs LoRA-oBAR vs LoRA-nBAR.

With the data folder, a short real comparison on MiniLM + few-shot SST-2 through the engine
([`lorabar.harness.run.engine.run()`][lorabar.harness.run.engine.run]).  Without it, a tiny
synthetic problem, stepped by the
method registry's steppers (`lorabar.harness.run.methods`):

The frozen base is a random MLP; the target is the same MLP with a low-rank change to its hidden
layers plus label noise, so LoRA (PEFT, r=4 on the hidden layers) can fit it.  Every method starts
from the same initialization and sees the same batches.  Prints per method: final train loss
(mean of the last 20 steps), held-out loss, mean |B| over LoRA pairs (start -> end) and the median
wall time of one training step.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from .. import _validate as _v
from .. import balancedness, find_lora_pairs
from ..harness.run.config import EncoderConfig
from ..harness.run.methods import StepContext, check_bar_rate, make_stepper
from ..harness.run.registry import PAPER_METHODS
from ..harness.run.runtime import PRECISIONS, Runtime

DEMO_METHODS = PAPER_METHODS


@dataclass(frozen=True)
class DemoConfig:
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-2
    mu0: float = 2.0
    rho: float = 0.05
    noise: float = 0.5
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    threads: int = 1  # torch threads (the synthetic demo's MLP is tiny: 1 is fastest)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "threads"):
            _v.integer(name, getattr(self, name), 1, flag=_v.flag_of(name))
        for name in ("lr", "mu0", "rho", "noise"):
            _v.number(name, getattr(self, name), flag=_v.flag_of(name))
        if self.precision not in PRECISIONS:
            raise _v.choice("precision", self.precision, PRECISIONS)
        check_bar_rate(self.mu0, self.lr)


class _MLP(nn.Module):
    def __init__(self, d_in: int = 32, hidden: int = 128, d_out: int = 4) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, hidden)
        self.h1 = nn.Linear(hidden, hidden)
        self.h2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.inp(x))
        x = torch.tanh(self.h1(x))
        x = torch.tanh(self.h2(x))
        return self.out(x)


def _data(cfg: DemoConfig) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], tuple]:
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    base = _MLP()
    teacher = _MLP()
    teacher.load_state_dict(base.state_dict())
    with torch.no_grad():
        for layer in (teacher.h1, teacher.h2):
            u = torch.randn(layer.out_features, 2, generator=gen)
            v = torch.randn(2, layer.in_features, generator=gen)
            layer.weight.add_(0.3 * u @ v / layer.in_features**0.5)
    x = torch.randn(4096, 32, generator=gen)
    with torch.no_grad():
        y = teacher(x) + cfg.noise * torch.randn(4096, 4, generator=gen)
    return base, (x[:3072], y[:3072]), (x[3072:], y[3072:])


def run_method(method: str, cfg: DemoConfig, runtime: Runtime | None = None) -> dict:
    from peft import LoraConfig, get_peft_model

    runtime = runtime or Runtime.resolve(cfg.device, cfg.precision)
    base, (xtr, ytr), (xte, yte) = _data(cfg)
    torch.manual_seed(cfg.seed + 1)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["h1", "h2"]))
    model.to(runtime.device)
    xtr, ytr, xte, yte = runtime.to_device([xtr, ytr, xte, yte])
    pairs = find_lora_pairs(model)
    loss_fn = nn.MSELoss()
    ctx = StepContext(
        model=model,
        params=[p for p in model.parameters() if p.requires_grad],
        pairs=pairs,
        loss_fn=lambda b: loss_fn(model(b[0]).float(), b[1]),
        runtime=runtime,
        config=EncoderConfig(  # the demo's settings as a run's
            method=method,
            lr=cfg.lr,
            steps=cfg.steps,
            rho=cfg.rho,
            mu0=cfg.mu0,
            schedule="cosine",
            seed=cfg.seed,
        ),
    )
    stepper = make_stepper(ctx)
    b0 = balancedness(pairs).mean_abs_B.item()
    order = torch.Generator().manual_seed(cfg.seed + 2)
    losses, times = [], []
    for _ in range(cfg.steps):
        idx = torch.randint(0, xtr.shape[0], (cfg.batch_size,), generator=order).to(xtr.device)
        batch = (xtr[idx], ytr[idx])
        runtime.synchronize()
        start = time.perf_counter()
        loss = stepper.step(batch)
        runtime.synchronize()
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    with torch.no_grad(), runtime.autocast():
        test = loss_fn(model(xte).float(), yte).item()
    return {
        "method": method,
        "train_loss": statistics.fmean(losses[-20:]),
        "test_loss": test,
        "mean_abs_B_start": b0,
        "mean_abs_B_end": balancedness(pairs).mean_abs_B.item(),
        "step_ms": 1e3 * statistics.median(times),
    }


# The trainable-head setting with the hyperparameters chosen on SST-2 dev (docs/results/tuning.md;
# SAM's rho, on the LoRA factors only: docs/results/practical); the demo only shortens the run.
REAL = {
    "lora": {},
    "sam": {"rho": 0.05},
    "obar": {"mu0": 1.0, "schedule": "cosine"},
    "nbar": {"mu0": 1.0, "schedule": "cosine"},
}
REAL_BASE = {"lr": 1e-3, "targets": "qv", "pooling": "cls", "head": "linear", "seed": 13}
# 20 steps and 128 stratified dev/test examples per method: the whole demo in under a minute in
# fp32 on a 2-core CPU (docs/guides/performance.md).  Past ~15 s of imports and the first
# forward, it is training (a SAM step costs two) and evaluation, so these two numbers set it.
REAL_STEPS = 20
REAL_MAX_EVAL = 128


def real_plan(steps: int = REAL_STEPS, task: str = "sst2", max_eval: int = REAL_MAX_EVAL) -> str:
    """What the real comparison runs (the README's demo block is this text; a test checks it)."""
    lines = [
        f"lorabar demo: MiniLM-L6 + LoRA r=8 on {task} (k=512, seed {REAL_BASE['seed']}), "
        f"{steps} steps per method, AdamW lr {REAL_BASE['lr']:g}, trainable linear head,",
        f"  evaluated on {'all' if not max_eval else max_eval} stratified dev/test "
        "examples; device and precision auto",
        "",
    ]
    for method, extra in REAL.items():
        settings = ", ".join(f"{k}={v}" for k, v in extra.items()) or "-"
        lines.append(f"  {method:<5} {settings}")
    return "\n".join(lines)


def real_comparison(
    data_dir: str,
    steps: int = REAL_STEPS,
    task: str = "sst2",
    seed: int = 13,
    *,
    device: str = "auto",
    precision: str = "auto",
    max_eval: int = REAL_MAX_EVAL,
    threads: int = 0,
) -> list[dict]:
    """A short real comparison on MiniLM: every method for ``steps`` steps on a few-shot task,
    evaluated on a stratified ``max_eval``-example subset of dev and test (0: all), with
    ``threads`` torch threads (0: torch's default)."""
    from ..harness.run.config import EncoderConfig
    from ..harness.run.engine import run

    rows, runtime = [], None
    base = {**REAL_BASE, "seed": seed}
    for method, extra in REAL.items():
        cfg = EncoderConfig(
            task=task,
            method=method,
            steps=steps,
            data_dir=data_dir,
            device=device,
            precision=precision,
            max_eval=max_eval,
            threads=threads,
            log_every=max(1, steps // 4),
            **base,
            **extra,
        )
        if runtime is None:
            resolved = Runtime.resolve(device, precision)
            print(
                f"lorabar demo (real): MiniLM-L6 + LoRA r=8 on {task} (k=512, seed {seed}), "
                f"{steps} steps, batch 16, AdamW lr 1e-3, {resolved.device} "
                f"{resolved.precision} (device/precision {device}/{precision}); "
                f"{'all' if not max_eval else max_eval} dev/test examples; data from {data_dir}"
            )
        r = run(cfg, progress=True)
        runtime = r["runtime"]
        m = r["primary_metric"]
        rows.append(
            {
                "method": method,
                "dev": r["metrics"]["dev"][m],
                "test": r["metrics"]["test"][m],
                "mean_abs_B": r["final_mean_abs_B"],
                "step_ms": 1e3 * r["timing"]["step_time_median_s"],
                "settings": extra,
            }
        )
    _print_real(rows, steps)
    return rows


def _print_real(rows: list[dict], steps: int) -> None:
    """The real comparison's table: dev and test x100, the final mean |B|, the step time."""
    print(f"{'method':<6} {'dev':>6} {'test':>6} {'mean|B| end':>12} {'step ms':>8}  settings")
    for r in rows:
        print(
            f"{r['method']:<6} {100 * r['dev']:>6.1f} {100 * r['test']:>6.1f} "
            f"{r['mean_abs_B']:>12.3f} {r['step_ms']:>8.0f}  {r['settings'] or ''}"
        )
    print(
        f"(mean |B| starts at 1.333; {steps} steps is a smoke test: the measured table is in "
        "docs/results/)"
    )


def run_demo(cfg: DemoConfig | None = None, methods: tuple[str, ...] = DEMO_METHODS) -> list[dict]:
    cfg = cfg or DemoConfig()
    torch.set_num_threads(cfg.threads)
    runtime = Runtime.resolve(cfg.device, cfg.precision)
    print(
        f"lorabar demo: PEFT LoRA r=4 on a frozen random MLP, AdamW lr={cfg.lr}, "
        f"{cfg.steps} steps, batch {cfg.batch_size}, label noise {cfg.noise}; "
        f"nbar/obar mu0={cfg.mu0} (cosine), sam rho={cfg.rho}; {runtime.device} {runtime.precision}"
    )
    rows = [run_method(m, cfg, runtime) for m in methods]
    print(
        f"{'method':<6} {'train loss':>10} {'test loss':>10} {'mean|B| start':>14} "
        f"{'mean|B| end':>12} {'step ms':>8}"
    )
    for r in rows:
        print(
            f"{r['method']:<6} {r['train_loss']:>10.4f} {r['test_loss']:>10.4f} "
            f"{r['mean_abs_B_start']:>14.4f} {r['mean_abs_B_end']:>12.4f} {r['step_ms']:>8.2f}"
        )
    return rows
