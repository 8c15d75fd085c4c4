"""The engine: ``run(config) -> record`` for every task kind, method and device.

One loop, read top to bottom:

```
runtime  = resolve device and precision (auto: bf16 only where the hardware has it)
task     = TASKS[kind](config)         load the splits (the task adapter)
seed; model = task.build_model(method)  LoRA adapters unless the method trains everything
stepper  = METHODS[method].build(...)  AdamW, AdamW + BAR hook, SAM (sam_step/ddp_sam_step)
for step in range(steps):              batches in a fixed order per seed, sharded per rank
    loss = stepper.step(batch, observe)   observe: |B| and the gradient gap every log_every
    lr_scheduler.step()
evaluate dev and test (rank 0), the majority-class reference, one record
```

A task adapter (`lorabar.harness.tasks.encoder_task.EncoderTask`,
`lorabar.harness.tasks.lm_tasks.PromptTask`, `lorabar.harness.tasks.lm_tasks.WebNLGTask`) has
``primary_metric``, ``sizes``, ``n_train``, ``build_model(method)``, ``batch(indices)``,
``loss(model, batch)``, ``evaluate(model, split, runtime)``, ``majority()``,
``prepare(model, runtime)`` (run once on the device before training: the probe head is fitted
there) and ``train_info()`` (added to the record's ``train``).

The record (one schema for every task; `RECORD_KEYS`): ``config``, ``key``, ``identity``
(everything that changes the result:
[`lorabar.harness.run.identity`][lorabar.harness.run.identity]), ``kind``,
``metrics`` (dev/test), ``primary_metric``, ``majority_class``, ``train`` (first/last losses,
split sizes, trainable parameters, LoRA pairs, the adapter's info), ``final_mean_abs_B``,
``timing``, ``balancedness`` (per-pair |B| and gradient gap over steps), ``runtime`` (resolved
device and precision, device name), ``distributed``, ``environment`` (versions, git revision,
hardware),
and what the method adds (``sam``: rho and the perturbed parameter count).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch

from ... import balancedness, find_lora_pairs
from .config import RunConfig
from ..tasks.data_folder import recording
from ..._io import progress_bar
from .identity import run_identity
from .methods import METHODS, StepContext, make_stepper
from .task_of import make_task
from .records import environment
from .runtime import Runtime

__all__ = ["RECORD_KEYS", "lr_lambda", "make_task", "run", "run_to_file"]

RECORD_KEYS = (
    "config",
    "key",
    "identity",
    "kind",
    "metrics",
    "primary_metric",
    "majority_class",
    "train",
    "final_mean_abs_B",
    "timing",
    "balancedness",
    "runtime",
    "distributed",
    "environment",
)


def lr_lambda(steps: int, warmup_ratio: float = 0.0):
    """Linear warm-up over ``warmup_ratio * steps`` steps, then linear decay to 0."""
    warm = int(warmup_ratio * steps)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (steps - step) / max(1, steps - warm))

    return f


class _BalancednessLog:
    """|B| of every pair and the gradient gap ``|g_x|^2 - |g_y|^2`` every ``every`` steps."""

    def __init__(self, pairs: list, every: int, steps: int) -> None:
        self.pairs, self.every, self.steps = pairs, every, steps
        self.data = {
            "steps": [],
            "mean_abs_B": [],
            "abs_B": [],
            "grad_gap": [],
            "names": [p.name for p in pairs],
        }

    def observer(self, step: int):
        if not self.pairs or (step % self.every and step != self.steps - 1):
            return None

        def observe(grad_scale: float) -> None:  # .grad holds grad_scale * the gradient
            stats = balancedness(self.pairs).as_dict()  # a host sync: only every `every` steps
            self.data["steps"].append(step)
            self.data["mean_abs_B"].append(stats["mean_abs_B"])
            self.data["abs_B"].append([abs(p["B"]) for p in stats["pairs"]])
            self.data["grad_gap"].append(
                [
                    None
                    if p["grad_gap"] is None  # no gradient
                    else p["grad_gap"] / grad_scale**2
                    for p in stats["pairs"]
                ]
            )

        return observe


@dataclass
class _Training:
    """What the training loop leaves for the record."""

    losses: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # what the method adds to the record
    seconds: float = 0.0


def run(
    cfg: RunConfig,
    *,
    progress: bool = True,
    expect: dict | None = None,
    save_adapter: str | None = None,
) -> dict | None:
    """Train and evaluate one configuration; return its result record.

    ``save_adapter``: a folder (new or empty) to write the trained adapter to, in PEFT's format,
    with the frozen head and the run's record beside it (`save_trained()`).

    ``expect``: the identity a caller (the grid) computed for this run beforehand; a run whose
    identity differs when it starts (its data or model files changed meanwhile) raises
    ``ValueError`` before training.

    Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DDP (NCCL on CUDA, one GPU
    per rank; gloo on the CPU), each rank trains on its share of every global batch, and only
    rank 0 evaluates and returns the record (the other ranks return ``None``).
    """
    from .launch import barrier

    method = METHODS[cfg.method]
    runtime, dist = _start(cfg, progress)
    t_start = time.perf_counter()
    task, identity = _load_task(cfg, runtime, expect)
    torch.manual_seed(cfg.seed)
    model = task.build_model(method).to(runtime.device)
    task.prepare(model, runtime)  # e.g. fit a probe head on the frozen features
    model.train()
    pairs = find_lora_pairs(model) if method.adapters else []
    log = _BalancednessLog(pairs, cfg.log_every or max(1, cfg.steps // 50), cfg.steps)
    training = (
        _train(cfg, task, model, pairs, runtime, dist, log, progress)
        if method.trains
        else _Training()
    )
    if not dist.is_main:
        barrier(dist)
        return None
    metrics, eval_s = _evaluate(task, model, runtime)
    timing = {"eval_s": eval_s, "total_s": time.perf_counter() - t_start}
    state = (model, pairs, metrics, training, log)
    record = _record(cfg, identity, task, *state, runtime, dist, timing)
    if save_adapter is not None:
        _save(model, save_adapter, record, task)
    barrier(dist)  # the other ranks wait for rank 0's evaluation before leaving
    return record


def _evaluate(task, model, runtime) -> tuple[dict, float]:
    """``({"dev": metrics, "test": metrics}, seconds)``, the model in eval mode meanwhile."""
    t_eval = time.perf_counter()
    model.eval()
    metrics = {s: task.evaluate(model, s, runtime) for s in ("dev", "test")}
    model.train()
    return metrics, time.perf_counter() - t_eval


def _start(cfg: RunConfig, progress: bool):
    """Resolve device and precision, join the process group (under torchrun), set threads."""
    from .launch import init_from_env, local_rank

    if not progress:  # quiet: no "Loading weights" bars from transformers either
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    from .records import git_revision

    git_revision()  # the revision of the code this process loaded, before anything is edited
    runtime = Runtime.resolve(cfg.device, cfg.precision, local_rank=local_rank())
    if runtime.device.type == "cuda":
        torch.cuda.set_device(runtime.device)
    dist = init_from_env(runtime.device.type)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return runtime, dist


def _load_task(cfg: RunConfig, runtime: Runtime, expect: dict | None):
    """The task adapter (its data loaded, the files read recorded) and the run's identity."""
    with recording() as data_files:
        task = make_task(cfg)
    identity = run_identity(
        cfg,
        device=runtime.device.type,
        precision=runtime.precision,
        threads=torch.get_num_threads(),
        data_files=data_files,
    )
    if expect is not None and identity != expect:
        changed = sorted(k for k in identity if identity[k] != expect.get(k))
        raise ValueError(
            f"the run's {', '.join(changed)} changed between the grid's check and "
            "its start (a data or model file was modified?); rerun the grid"
        )
    return task, identity


def _batches(cfg: RunConfig, task, runtime: Runtime, dist):
    """Training batches in a fixed order per seed (a reshuffle per pass), this rank's share."""
    from .launch import shard

    gen = torch.Generator().manual_seed(cfg.seed)
    order: list[int] = []
    while True:
        if len(order) < cfg.batch_size:
            order = order + torch.randperm(task.n_train, generator=gen).tolist()
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        yield runtime.to_device(task.batch(shard(idx, dist)))


def _train(
    cfg: RunConfig,
    task,
    model,
    pairs,
    runtime: Runtime,
    dist,
    log: _BalancednessLog,
    progress: bool,
) -> _Training:
    """``cfg.steps`` steps of the method's stepper, the lr decayed by `lr_lambda()`."""
    t_train = time.perf_counter()
    trained = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        trained = DistributedDataParallel(model, device_ids=ids)
    ctx = StepContext(
        model=trained,
        params=[p for p in model.parameters() if p.requires_grad],
        pairs=pairs,
        loss_fn=lambda batch: task.loss(trained, batch),
        runtime=runtime,
        config=cfg,
    )
    stepper = make_stepper(ctx)
    sched = torch.optim.lr_scheduler.LambdaLR(
        stepper.optimizer, lr_lambda(cfg.steps, cfg.warmup_ratio)
    )
    out = _Training(info=stepper.info)
    batches = _batches(cfg, task, runtime, dist)
    bar = progress_bar(
        cfg.steps, f"{cfg.task}/{cfg.method}/s{cfg.seed}", enabled=progress and dist.is_main
    )
    for step in range(cfg.steps):
        batch = next(batches)
        runtime.synchronize()
        t0 = time.perf_counter()
        loss = stepper.step(batch, log.observer(step))
        sched.step()
        runtime.synchronize()
        out.step_times.append(time.perf_counter() - t0)
        out.losses.append(loss.item())
        if not math.isfinite(out.losses[-1]):
            lr = stepper.optimizer.param_groups[0]["lr"]
            raise FloatingPointError(
                f"loss became {out.losses[-1]} at step {step} (lr {lr:.3g}); lower --lr, or "
                "check that every example keeps its target within --max-length"
            )
        # the running mean of the last 10 steps, current at every line the bar shows
        bar.set_postfix(loss=f"{statistics.fmean(out.losses[-10:]):.3f}", refresh=False)
        bar.update(1)
    bar.close()
    out.seconds = time.perf_counter() - t_train
    return out


def _save(model, folder: str, record: dict, task) -> None:
    """``--save-adapter``: the adapter, named after its base model, with its model card."""
    from ..models.encoder_model import resolve_model_path, save_trained
    from .adapter_card import base_model_name, model_card

    labels = getattr(getattr(task, "task", None), "labels", None)
    given = record["config"]["model"]
    base = None if given == "tiny" else base_model_name(given, resolve_model_path(given))
    save_trained(
        model,
        folder,
        record,
        head_info=getattr(task, "head_info", None),
        labels=labels,
        base=base,
        card=lambda portable: model_card(record, base=base, labels=labels, portable=portable),
    )


def _record(
    cfg: RunConfig,
    identity: dict,
    task,
    model,
    pairs,
    metrics: dict,
    training: _Training,
    log: _BalancednessLog,
    runtime: Runtime,
    dist,
    timing: dict,
) -> dict:
    """The run's record (`RECORD_KEYS`)."""

    def mean(xs: list[float]) -> float | None:
        return statistics.fmean(xs) if xs else None

    losses, step_times = training.losses, training.step_times
    params = [p for p in model.parameters() if p.requires_grad]
    return {
        "config": asdict(cfg),
        "key": cfg.key(),
        "identity": identity,
        "kind": cfg.kind,
        "metrics": metrics,
        "primary_metric": task.primary_metric,
        "majority_class": task.majority(),
        "train": {
            "loss_first10": mean(losses[:10]),
            "loss_last10": mean(losses[-10:]),
            "losses": [round(v, 6) for v in losses],
            "n_train": task.sizes["train"],
            "n_dev": task.sizes["dev"],
            "n_test": task.sizes["test"],
            "trainable_params": sum(p.numel() for p in params),
            "lora_pairs": len(pairs),
            **task.train_info(),
        },
        "final_mean_abs_B": balancedness(pairs).as_dict()["mean_abs_B"] if pairs else None,
        "timing": {
            "step_time_median_s": statistics.median(step_times) if step_times else None,
            "step_time_mean_s": mean(step_times),
            "train_s": training.seconds,
            "eval_s": timing["eval_s"],
            "total_s": timing["total_s"],
        },
        "balancedness": log.data,
        "runtime": runtime.describe(),
        "distributed": {"world_size": dist.world, "backend": dist.backend},
        "environment": environment(),
        **training.info,
    }


def run_to_file(
    cfg: RunConfig,
    path: str,
    *,
    progress: bool = False,
    expect: dict | None = None,
    parent: int | None = None,
) -> str:
    """Run ``cfg`` and write its record atomically to ``path`` (rank 0 only).

    ``expect``: see `run()`; ``parent``: the pid of the grid that asked for the run -- if it
    is gone when the run ends, nothing is written (``RuntimeError``)."""
    import os

    record = run(cfg, progress=progress, expect=expect)
    if parent is not None and os.getppid() != parent:
        raise RuntimeError(f"the grid (pid {parent}) is gone; {path} not written")
    if record is not None:
        from ...guard import Output, write_json

        write_json(Output("--out", path, "result"), record)  # stamped and signed
    return path
