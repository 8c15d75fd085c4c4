"""Scoring and decoding on a causal LM, shared by the LM task adapters (`lm_tasks`): prompt and
completion pairs tokenized with a target mask (`encode_pairs()`, `collate()`), a completion's
mean token log-probability (`sequence_scores()`, `candidate_scores()`), training as
classification over ragged candidate sets (`ragged_cross_entropy()`), the LM loss on the target
tokens (`lm_loss()`), and greedy or beam-search generation (`generate()`)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = [
    "candidate_scores",
    "collate",
    "encode_pairs",
    "generate",
    "lm_loss",
    "ragged_cross_entropy",
    "sequence_scores",
    "token_logprobs",
]


# ----------------------------------------------------------------------------- tokenization
def encode_pairs(tok, pairs: list[tuple[str, str]], max_length: int, eos: bool = False):
    """Token ids of context + target and a mask of the target tokens, left-truncated."""
    out = []
    for ctx, tgt in pairs:
        if tok is None:  # tiny test models: bytes as tokens
            c = [2 + b % 290 for b in ctx.encode()][-max_length:]
            t = [2 + b % 290 for b in tgt.encode()] + ([1] if eos else [])
        else:
            c = tok(ctx, add_special_tokens=False)["input_ids"]
            t = tok(tgt, add_special_tokens=False)["input_ids"] + (
                [tok.eos_token_id] if eos else []
            )
        ids = (c + t)[-max_length:]
        mask = ([0] * len(c) + [1] * len(t))[-max_length:]
        out.append((ids, mask))
    return out


def collate(encoded, pad_id: int = 0) -> dict:
    n = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), n), pad_id)
    target = torch.zeros((len(encoded), n), dtype=torch.bool)
    attention = torch.zeros((len(encoded), n), dtype=torch.long)
    for i, (ids, mask) in enumerate(encoded):  # right padding
        input_ids[i, : len(ids)] = torch.tensor(ids)
        target[i, : len(ids)] = torch.tensor(mask, dtype=torch.bool)
        attention[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "target": target}


def token_logprobs(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of each next token and the mask of target positions (shifted)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    nxt = batch["input_ids"][:, 1:]
    return logp.gather(-1, nxt.unsqueeze(-1)).squeeze(-1), batch["target"][:, 1:]


def sequence_scores(model, batch: dict) -> torch.Tensor:
    """Mean log-probability of each sequence's target tokens, shape ``(sequences,)``."""
    tok_lp, mask = token_logprobs(model, batch)
    return (tok_lp * mask).sum(-1) / mask.sum(-1).clamp_min(1)


def candidate_scores(model, batch: dict, n_candidates: int) -> torch.Tensor:
    """Mean log-probability per candidate token, shape ``(examples, candidates)``."""
    return sequence_scores(model, batch).view(-1, n_candidates)


def ragged_cross_entropy(scores: torch.Tensor, counts: list[int], labels) -> torch.Tensor:
    """Mean cross-entropy over examples whose candidates (``counts[i]`` of them, consecutive in
    ``scores``) differ in number; equals ``F.cross_entropy`` on the stacked scores when every
    count is the same (a test checks it)."""
    losses = [torch.logsumexp(s, 0) - s[y] for s, y in zip(scores.split(counts), labels)]
    return torch.stack(losses).mean()


def lm_loss(model, batch: dict, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy on the target tokens only."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    mask = batch["target"][:, 1:]
    return F.cross_entropy(
        logits[:, :-1][mask].float(),
        batch["input_ids"][:, 1:][mask],
        label_smoothing=label_smoothing,
    )


@torch.no_grad()
def generate(model, tok, prompts: list[str], cfg, runtime) -> list[str]:
    """Greedy or beam-search continuations of ``prompts`` (``cfg``: ``eval_batch_size``,
    ``max_new_tokens``, ``num_beams``, ``length_penalty``); the tokenizer pads on the left for
    the duration and gets its padding side back."""
    side, tok.padding_side = tok.padding_side, "left"
    hyps: list[str] = []
    try:
        for i in range(0, len(prompts), cfg.eval_batch_size):
            enc = tok(
                prompts[i : i + cfg.eval_batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
            with runtime.autocast():
                out = model.generate(
                    **runtime.to_device(dict(enc)),
                    max_new_tokens=cfg.max_new_tokens,
                    num_beams=cfg.num_beams,
                    length_penalty=cfg.length_penalty,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                )
            hyps += [
                t.strip()
                for t in tok.batch_decode(
                    out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
                )
            ]
    finally:
        tok.padding_side = side
    return hyps
