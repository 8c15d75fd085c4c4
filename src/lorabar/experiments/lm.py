"""Causal-LM runs: prompt-based few-shot classification (Table 3) and WebNLG generation (Table 5).

Prompt tasks (``sst2``, ``rte``, ``cb``, ``copa``): every candidate completion is scored by its
mean token log-probability given the context; training is cross-entropy over the candidates'
scores ("train as classification", MeZO).  ``webnlg``: LM loss on the target text only (with label
smoothing), decoding greedy or with beam search, BLEU (sacrebleu) against all references, over
all / seen / unseen test inputs.  CPU budgets use documented subsets (``n_train``, ``n_test``).
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch.nn import functional as F

from .. import find_lora_pairs
from .results import environment
from .runner import METHODS, train_loop

LM_TASKS = ("sst2", "rte", "cb", "copa", "webnlg")
# "zeroshot": the pretrained model with its (zero-effect) LoRA adapters, evaluated untrained.
LM_METHODS = tuple(m for m in METHODS if m != "full") + ("zeroshot",)


@dataclass(frozen=True)
class LMRunConfig:
    """One causal-LM run (``kind = "lm"`` in a grid); ``n_*`` = 0 uses the whole split."""

    task: str = "cb"
    method: str = "lora"
    seed: int = 13
    steps: int = 100
    lr: float = 1e-4
    batch_size: int = 8
    rho: float = 0.05
    mu0: float = 1.0
    schedule: str = "cosine"
    bf16: bool = False
    model: str = "smollm2"
    lora_r: int = 8
    lora_alpha: int = 16
    label_smoothing: float = 0.0
    n_train: int = 0            # 0: the whole split
    n_test: int = 0
    n_dev: int = 200
    max_length: int = 256
    max_new_tokens: int = 64
    num_beams: int = 1
    length_penalty: float = 0.8
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    log_every: int = 25
    threads: int = 0
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if self.task not in LM_TASKS:
            raise ValueError(f"Invalid task: {self.task!r} (expected one of {LM_TASKS})")
        if self.method not in LM_METHODS:
            raise ValueError(f"Invalid method: {self.method!r} (expected one of {LM_METHODS})")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"Invalid label_smoothing: {self.label_smoothing!r}")
        if self.method in ("obar", "nbar") and self.mu0 * self.lr >= 1:
            raise ValueError(f"Invalid mu0: {self.mu0} (mu0 * lr must be < 1)")

    def key(self) -> dict:
        d = asdict(self)
        for k in ("data_dir", "threads", "log_every"):
            d.pop(k)
        return d


# ----------------------------------------------------------------------------- tokenization
def _encode_pairs(tok, pairs: list[tuple[str, str]], max_length: int, eos: bool = False):
    """Token ids of context + target and a mask of the target tokens, left-truncated."""
    out = []
    for ctx, tgt in pairs:
        if tok is None:  # tiny test models: bytes as tokens
            c = [2 + b % 290 for b in ctx.encode()][-max_length:]
            t = [2 + b % 290 for b in tgt.encode()] + ([1] if eos else [])
        else:
            c = tok(ctx, add_special_tokens=False)["input_ids"]
            t = tok(tgt, add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if eos else [])
        ids = (c + t)[-max_length:]
        mask = ([0] * len(c) + [1] * len(t))[-max_length:]
        out.append((ids, mask))
    return out


def _collate(encoded, pad_id: int = 0) -> dict:
    n = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), n), pad_id)
    target = torch.zeros((len(encoded), n), dtype=torch.bool)
    attention = torch.zeros((len(encoded), n), dtype=torch.long)
    for i, (ids, mask) in enumerate(encoded):  # right padding
        input_ids[i, : len(ids)] = torch.tensor(ids)
        target[i, : len(ids)] = torch.tensor(mask, dtype=torch.bool)
        attention[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "target": target}


def _token_logprobs(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of each next token and the mask of target positions (shifted)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    nxt = batch["input_ids"][:, 1:]
    return logp.gather(-1, nxt.unsqueeze(-1)).squeeze(-1), batch["target"][:, 1:]


def candidate_scores(model, batch: dict, n_candidates: int) -> torch.Tensor:
    """Mean log-probability per candidate token, shape ``(examples, candidates)``."""
    tok_lp, mask = _token_logprobs(model, batch)
    per_seq = (tok_lp * mask).sum(-1) / mask.sum(-1).clamp_min(1)
    return per_seq.view(-1, n_candidates)


def lm_loss(model, batch: dict, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy on the target tokens only."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    mask = batch["target"][:, 1:]
    return F.cross_entropy(logits[:, :-1][mask].float(), batch["input_ids"][:, 1:][mask],
                           label_smoothing=label_smoothing)


# ----------------------------------------------------------------------------- run
def _subset(items: list, n: int, seed: int) -> list:
    if not n or n >= len(items):
        return items
    return random.Random(seed).sample(items, n)


def run_lm(cfg: LMRunConfig, *, progress: bool = True) -> dict:
    """Train and evaluate one causal-LM configuration; return its result record."""
    from peft import LoraConfig, get_peft_model

    from .causal import causal_lora_targets, load_causal_lm

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    base, tok = load_causal_lm(cfg.model)
    model = get_peft_model(base, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                            lora_dropout=0.0,
                                            target_modules=causal_lora_targets(base)))
    model.train()
    pairs = find_lora_pairs(model)
    pad = 0 if tok is None else tok.pad_token_id
    gen = torch.Generator().manual_seed(cfg.seed)

    if cfg.task == "webnlg":
        from .webnlg import linearize, load_webnlg

        train = _subset(load_webnlg("train", data_dir=cfg.data_dir), cfg.n_train, cfg.seed)
        dev = _subset(load_webnlg("dev", data_dir=cfg.data_dir), cfg.n_dev, 0)
        test = _subset(load_webnlg("test", data_dir=cfg.data_dir), cfg.n_test, 0)
        items = [(linearize(e) + " =", " " + r) for e in train for r in e.references[:1]]
        encoded = _encode_pairs(tok, items, cfg.max_length, eos=True)

        def loss_fn(batch):
            return lm_loss(model, batch, cfg.label_smoothing)

        def make_batch(idx):
            return _collate([encoded[i] for i in idx], pad)
    else:
        from .prompts import load_prompt_split

        train = _subset(load_prompt_split(cfg.task, "train", data_dir=cfg.data_dir, seed=cfg.seed),
                        cfg.n_train, cfg.seed)
        dev = _subset(load_prompt_split(cfg.task, "dev", data_dir=cfg.data_dir, seed=cfg.seed),
                      cfg.n_dev, 0)
        test = _subset(load_prompt_split(cfg.task, "test", data_dir=cfg.data_dir, seed=cfg.seed),
                       cfg.n_test, 0)
        n_cand = len(train[0].candidates)
        encoded = [_encode_pairs(tok, [(e.context, c) for c in e.candidates], cfg.max_length)
                   for e in train]

        def make_batch(idx):
            batch = _collate([x for i in idx for x in encoded[i]], pad)
            batch["labels"] = torch.tensor([train[i].label for i in idx])
            return batch

        def loss_fn(batch):
            scores = candidate_scores(model, batch, n_cand)
            return F.cross_entropy(scores, batch["labels"])

    order: list[int] = []

    def next_batch():
        nonlocal order
        if len(order) < cfg.batch_size:
            order += torch.randperm(len(encoded), generator=gen).tolist()
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        return make_batch(idx)

    t_train = time.perf_counter()
    if cfg.method == "zeroshot":
        losses, step_times, log = [], [], {}
    else:
        losses, step_times, log = train_loop(model, cfg, pairs, next_batch, progress=progress,
                                             loss_fn=loss_fn)
    train_s = time.perf_counter() - t_train
    t_eval = time.perf_counter()
    model.eval()
    evaluate = ((lambda split: _eval_webnlg(model, tok, split, cfg)) if cfg.task == "webnlg"
                else (lambda split: _eval_prompts(model, tok, split, cfg, pad)))
    metrics = {"dev": evaluate(dev), "test": evaluate(test)}
    model.train()
    eval_s = time.perf_counter() - t_eval
    from .. import balancedness

    majority = None
    if cfg.task != "webnlg":  # the most frequent training label (ties: lowest id) everywhere
        labels = [e.label for e in train]
        top = max(sorted(set(labels)), key=labels.count)
        majority = {name: {"accuracy": sum(e.label == top for e in split) / len(split)}
                    for name, split in (("dev", dev), ("test", test))}
    return {
        "config": asdict(cfg), "key": cfg.key(), "metrics": metrics,
        "primary_metric": "bleu" if cfg.task == "webnlg" else "accuracy",
        "majority_class": majority,
        "train": {"loss_first10": statistics.fmean(losses[:10]) if losses else None,
                  "loss_last10": statistics.fmean(losses[-10:]) if losses else None,
                  "n_train": len(train),
                  "n_dev": len(dev), "n_test": len(test), "lora_pairs": len(pairs)},
        "final_mean_abs_B": balancedness(pairs).as_dict()["mean_abs_B"],
        "timing": {"step_time_median_s": statistics.median(step_times) if step_times else None,
                   "train_s": train_s,
                   "eval_s": eval_s, "total_s": time.perf_counter() - t_start},
        "balancedness": log, "environment": environment(),
    }


@torch.no_grad()
def _eval_prompts(model, tok, test, cfg, pad) -> dict:
    correct = 0
    for i in range(0, len(test), cfg.batch_size):
        chunk = test[i : i + cfg.batch_size]
        n_cand = len(chunk[0].candidates)
        enc = [x for e in chunk
               for x in _encode_pairs(tok, [(e.context, c) for c in e.candidates], cfg.max_length)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            scores = candidate_scores(model, _collate(enc, pad), n_cand)
        correct += sum(int(p == e.label) for p, e in zip(scores.argmax(-1).tolist(), chunk))
    return {"accuracy": correct / len(test)}


@torch.no_grad()
def _eval_webnlg(model, tok, test, cfg) -> dict:
    from .webnlg import bleu, linearize

    if tok is None:
        raise ValueError("WebNLG evaluation needs a tokenizer (not the tiny model)")
    hyps = []
    tok.padding_side = "left"
    for i in range(0, len(test), cfg.batch_size):
        chunk = test[i : i + cfg.batch_size]
        enc = tok([linearize(e) + " =" for e in chunk], return_tensors="pt", padding=True,
                  add_special_tokens=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            out = model.generate(**enc, max_new_tokens=cfg.max_new_tokens, num_beams=cfg.num_beams,
                                 length_penalty=cfg.length_penalty, do_sample=False,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        hyps += [t.strip() for t in tok.batch_decode(out[:, enc["input_ids"].shape[1]:],
                                                     skip_special_tokens=True)]
    tok.padding_side = "right"
    refs = [e.references for e in test]
    result = {"bleu": bleu(hyps, refs)}
    for name, want in (("bleu_seen", True), ("bleu_unseen", False)):
        idx = [i for i, e in enumerate(test) if e.seen is want]
        result[name] = bleu([hyps[i] for i in idx], [refs[i] for i in idx]) if idx else math.nan
    result["examples"] = [{"input": linearize(test[i]), "output": hyps[i]}
                          for i in range(min(3, len(test)))]
    return result
