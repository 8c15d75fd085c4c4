"""One finetuning run: LoRA / LoRA-SAM / LoRA-oBAR / LoRA-nBAR (or full finetuning) on a task.

A lean training loop (the Hugging Face Trainer path is in :mod:`lorabar.integrations.hf` and is
tested to match it): AdamW with linear LR decay, fixed seeds and a deterministic data order per
seed, dynamic padding, optional bf16 autocast (parameters stay fp32, so BAR's rescaling is not
rounded away), balancedness of every LoRA pair logged every ``log_every`` steps, step times, and
dev/test metrics at the end.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, fields

import torch

from .. import BAR, SAM, balancedness, find_lora_pairs
from .data import TASKS, Example, load_split
from .metrics import compute_metrics
from .results import environment

METHODS = ("lora", "sam", "obar", "nbar", "full")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run (recorded in its result file)."""

    task: str = "sst2"
    method: str = "lora"
    seed: int = 13
    steps: int = 300
    lr: float = 1e-3
    batch_size: int = 16
    max_length: int = 128
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    rho: float = 0.05
    mu0: float = 1.0
    schedule: str = "cosine"
    bf16: bool = False
    model: str = "minilm"
    pooling: str = "mean"
    targets: str = "qv"
    lora_r: int = 8
    lora_alpha: int = 16
    setting: str = "fewshot"
    data_dir: str | None = field(default=None, compare=False)
    log_every: int = 25
    eval_batch_size: int = 64
    threads: int = 0
    max_eval: int = 0
    sam_perturbation: str = "sync"   # under torchrun: "sync" or "per_rank" (lorabar.distributed)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"Invalid task: {self.task!r} (expected one of {sorted(TASKS)})")
        if self.method not in METHODS:
            raise ValueError(f"Invalid method: {self.method!r} (expected one of {METHODS})")
        for name in ("steps", "batch_size", "max_length", "log_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"Invalid {name}: {getattr(self, name)!r} (expected >= 1)")
        for name in ("lr", "rho", "mu0", "weight_decay"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"Invalid {name}: {v!r} (expected a finite value >= 0)")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"Invalid warmup_ratio: {self.warmup_ratio!r} (expected in [0, 1))")
        if self.schedule not in ("constant", "linear", "cosine"):
            raise ValueError(f"Invalid schedule: {self.schedule!r}")
        if self.sam_perturbation not in ("sync", "per_rank"):
            raise ValueError(f"Invalid sam_perturbation: {self.sam_perturbation!r} "
                             "(expected 'sync' or 'per_rank')")
        if self.method in ("obar", "nbar") and self.mu0 * self.lr >= 1:
            raise ValueError(f"Invalid mu0: {self.mu0} (mu0 * lr = {self.mu0 * self.lr:g} must be < 1)")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def key(self) -> dict:
        """The settings that identify the run (what the grid hashes; data_dir/threads excluded)."""
        d = asdict(self)
        for k in ("data_dir", "threads", "log_every", "eval_batch_size"):
            d.pop(k)
        if self.method != "sam":
            d.pop("rho")
        if self.method != "sam" or self.sam_perturbation == "sync":
            d.pop("sam_perturbation")
        if self.method not in ("obar", "nbar"):
            d.pop("mu0")
            d.pop("schedule")
        return d


class _Encoder:
    """Tokenizes once; collates with dynamic padding.  Tiny models get hashed word ids."""

    def __init__(self, tokenizer, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def encode(self, examples: list[Example]) -> list[dict]:
        if self.tokenizer is None:
            out = []
            for e in examples:
                words = (e.text_a + " [SEP] " + (e.text_b or "")).split()[: self.max_length]
                ids = [1 + (sum(map(ord, w)) * 2654435761) % 998 for w in words] or [1]
                out.append({"input_ids": ids, "token_type_ids": [0] * len(ids)})
            return out
        a = [e.text_a for e in examples]
        b = [e.text_b for e in examples] if examples and examples[0].text_b is not None else None
        enc = self.tokenizer(a, b, truncation=True, max_length=self.max_length)
        keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
        return [{k: enc[k][i] for k in keys} for i in range(len(examples))]

    @staticmethod
    def collate(items: list[dict], labels: list) -> dict:
        n = max(len(it["input_ids"]) for it in items)
        batch = {}
        for key in items[0]:
            batch[key] = torch.tensor([it[key] + [0] * (n - len(it[key])) for it in items])
        batch["attention_mask"] = torch.tensor(
            [[1] * len(it["input_ids"]) + [0] * (n - len(it["input_ids"])) for it in items])
        dtype = torch.float32 if isinstance(labels[0], float) else torch.long
        batch["labels"] = torch.tensor(labels, dtype=dtype)
        return batch


def _lr_lambda(cfg: RunConfig):
    warm = int(cfg.warmup_ratio * cfg.steps)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (cfg.steps - step) / max(1, cfg.steps - warm))

    return f


@torch.no_grad()
def evaluate(model, encoded: list[dict], labels: list, task, cfg: RunConfig) -> dict:
    model.eval()
    preds = []
    for i in range(0, len(encoded), cfg.eval_batch_size):
        batch = _Encoder.collate(encoded[i : i + cfg.eval_batch_size],
                                 labels[i : i + cfg.eval_batch_size])
        batch.pop("labels")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(**batch).logits.float()
        preds.extend(logits.squeeze(-1).tolist() if task.is_regression else logits.argmax(-1).tolist())
    model.train()
    return compute_metrics(task, preds, labels)


def run(cfg: RunConfig, *, progress: bool = True) -> dict | None:
    """Train and evaluate one configuration; return the result record (see ``lorabar finetune``).

    Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DDP, each rank trains on its
    share of every global batch, and only rank 0 evaluates and returns the record (others: None).
    """
    from .launch import barrier, init_from_env, shard

    dist_info = init_from_env()
    task = TASKS[cfg.task]
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.perf_counter()
    splits = {s: load_split(task, s, data_dir=cfg.data_dir, seed=cfg.seed, setting=cfg.setting)
              for s in ("train", "dev", "test")}
    if cfg.max_eval:
        splits["dev"] = splits["dev"][: cfg.max_eval]
        splits["test"] = splits["test"][: cfg.max_eval]
    torch.manual_seed(cfg.seed)
    from .model import build_model

    model, tokenizer = build_model(cfg.model, task.num_labels, method=cfg.method,
                                   lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                   targets=cfg.targets, pooling=cfg.pooling)
    model.train()
    enc = _Encoder(tokenizer, cfg.max_length)
    data = {s: (enc.encode(ex), [e.label for e in ex]) for s, ex in splits.items()}
    pairs = find_lora_pairs(model) if cfg.method != "full" else []
    gen = torch.Generator().manual_seed(cfg.seed)
    train_x, train_y = data["train"]
    order: list[int] = []

    def next_batch() -> dict:
        nonlocal order
        if len(order) < cfg.batch_size:
            order = order + torch.randperm(len(train_x), generator=gen).tolist()
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        idx = shard(idx, dist_info)
        return _Encoder.collate([train_x[i] for i in idx], [train_y[i] for i in idx])

    t_train = time.perf_counter()
    trained = model
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model)
    losses, step_times, log = train_loop(trained, cfg, pairs, next_batch,
                                         progress=progress and dist_info.is_main)
    params = [p for p in model.parameters() if p.requires_grad]
    train_s = time.perf_counter() - t_train
    if not dist_info.is_main:
        barrier(dist_info)
        return None
    t_eval = time.perf_counter()
    metrics = {s: evaluate(model, *data[s], task, cfg) for s in ("dev", "test")}
    eval_s = time.perf_counter() - t_eval
    final_b = balancedness(pairs).as_dict()["mean_abs_B"] if pairs else None
    majority = None
    if not task.is_regression:  # predict the most frequent training label everywhere
        top = max(set(train_y), key=train_y.count)
        majority = {s: compute_metrics(task, [top] * len(data[s][1]), data[s][1])
                    for s in ("dev", "test")}
    record = {
        "config": asdict(cfg),
        "key": cfg.key(),
        "metrics": metrics,
        "primary_metric": task.primary_metric,
        "majority_class": majority,
        "train": {"loss_first10": statistics.fmean(losses[:10]),
                  "loss_last10": statistics.fmean(losses[-10:]),
                  "n_train": len(train_x), "n_dev": len(data["dev"][0]),
                  "n_test": len(data["test"][0]), "trainable_params": sum(p.numel() for p in params),
                  "lora_pairs": len(pairs)},
        "final_mean_abs_B": final_b,
        "timing": {"step_time_median_s": statistics.median(step_times),
                   "step_time_mean_s": statistics.fmean(step_times),
                   "train_s": train_s, "eval_s": eval_s,
                   "total_s": time.perf_counter() - t_start},
        "balancedness": log,
        "distributed": {"world_size": dist_info.world,
                        "backend": "gloo" if dist_info.enabled else None},
        "environment": environment(),
    }
    barrier(dist_info)  # the other ranks wait for rank 0's evaluation before leaving
    return record


def train_loop(model, cfg, pairs: list, next_batch, *, progress: bool = False, loss_fn=None):
    """The harness's training loop: ``cfg.steps`` steps of ``cfg.method`` on ``next_batch()``.

    AdamW (no weight decay by default) with linear decay to 0 after ``warmup_ratio``; BAR attached
    as a step pre-hook; SAM as first_step / second_step.  Returns ``(losses, step_times, log)``
    where ``log`` holds |B| and the gradient gap of every pair every ``log_every`` steps.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.method == "sam":
        opt = SAM(params, torch.optim.AdamW, rho=cfg.rho, lr=cfg.lr, weight_decay=cfg.weight_decay)
        base = opt.base_optimizer
    else:
        opt = base = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(base, _lr_lambda(cfg))
    if cfg.method in ("obar", "nbar"):
        BAR(pairs, mode=cfg.method, mu0=cfg.mu0, schedule=cfg.schedule,
            total_steps=cfg.steps).attach(base)

    def loss_of(batch: dict) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            return loss_fn(batch) if loss_fn is not None else model(**batch).loss

    # Under DDP, SAM's first pass all-reduces ("sync": SAM on the global batch) or not
    # ("per_rank": m-sharpness with m = world size); see lorabar.distributed.
    per_rank = (cfg.method == "sam" and hasattr(model, "no_sync")
                and getattr(cfg, "sam_perturbation", "sync") == "per_rank")
    first_pass = model.no_sync if per_rank else contextlib.nullcontext
    log = {"steps": [], "mean_abs_B": [], "abs_B": [], "grad_gap": [],
           "names": [p.name for p in pairs]}
    losses, step_times = [], []
    bar = _progress(cfg, progress)
    for step in range(cfg.steps):
        batch = next_batch()
        t0 = time.perf_counter()
        with first_pass():  # DDP reads the sync flag in forward: both stay inside
            loss = loss_of(batch)
            loss.backward()
        if pairs and (step % cfg.log_every == 0 or step == cfg.steps - 1):
            stats = balancedness(pairs).as_dict()
            log["steps"].append(step)
            log["mean_abs_B"].append(stats["mean_abs_B"])
            log["abs_B"].append([abs(p["B"]) for p in stats["pairs"]])
            log["grad_gap"].append([p["grad_gap"] for p in stats["pairs"]])
        if cfg.method == "sam":
            opt.first_step(zero_grad=True)
            loss_of(batch).backward()
            opt.second_step(zero_grad=True)
        else:
            opt.step()
            opt.zero_grad(set_to_none=True)
        sched.step()
        step_times.append(time.perf_counter() - t0)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"loss became {losses[-1]} at step {step}")
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{statistics.fmean(losses[-10:]):.3f}")
    bar.close()
    return losses, step_times, log


def _progress(cfg: RunConfig, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=cfg.steps, desc=f"{cfg.task}/{cfg.method}/s{cfg.seed}", disable=not enabled,
                leave=False)
