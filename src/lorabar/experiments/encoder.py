"""The encoder task adapter: classification / regression with a pooled linear head.

Splits from :mod:`lorabar.experiments.data` (MeZO k=512 few-shot or full GLUE), tokenized once,
collated with dynamic padding; the model is :func:`lorabar.experiments.model.build_model`
(MiniLM by default) with LoRA on the chosen targets, or without adapters for full finetuning.
``max_eval`` evaluates a seeded, class-stratified subset of dev and test.
"""

from __future__ import annotations

import torch

from .data import TASKS, Example, load_split, subset
from .metrics import compute_metrics

__all__ = ["EncoderTask"]


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


class EncoderTask:
    """Adapter for :class:`lorabar.experiments.config.EncoderConfig` runs (see the engine)."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.task = TASKS[cfg.task]
        self.primary_metric = self.task.primary_metric
        self.splits = {s: load_split(self.task, s, data_dir=cfg.data_dir, seed=cfg.seed,
                                     setting=cfg.setting) for s in ("train", "dev", "test")}
        if cfg.max_eval:
            for s in ("dev", "test"):
                ex = self.splits[s]
                labels = None if self.task.is_regression else [e.label for e in ex]
                self.splits[s] = subset(ex, cfg.max_eval, seed=0, labels=labels)
        self.sizes = {s: len(v) for s, v in self.splits.items()}
        self.n_train = self.sizes["train"]
        self.data: dict = {}

    def build_model(self, method):
        from .model import build_model

        cfg = self.cfg
        model, tokenizer = build_model(cfg.model, self.task.num_labels,
                                       method="lora" if method.adapters else "full",
                                       lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                       targets=cfg.targets, pooling=cfg.pooling)
        enc = _Encoder(tokenizer, cfg.max_length)
        self.data = {s: (enc.encode(ex), [e.label for e in ex]) for s, ex in self.splits.items()}
        return model

    def batch(self, idx: list[int]) -> dict:
        x, y = self.data["train"]
        return _Encoder.collate([x[i] for i in idx], [y[i] for i in idx])

    @staticmethod
    def loss(model, batch: dict) -> torch.Tensor:
        return model(**batch).loss

    @torch.no_grad()
    def evaluate(self, model, split: str, runtime) -> dict:
        encoded, labels = self.data[split]
        size = self.cfg.eval_batch_size
        preds = []
        for i in range(0, len(encoded), size):
            batch = _Encoder.collate(encoded[i : i + size], labels[i : i + size])
            batch.pop("labels")
            with runtime.autocast():
                logits = model(**runtime.to_device(batch)).logits.float()
            preds.extend(logits.squeeze(-1).tolist() if self.task.is_regression
                         else logits.argmax(-1).tolist())
        return compute_metrics(self.task, preds, labels)

    def majority(self) -> dict | None:
        """Every split's metrics when predicting the most frequent training label (ties: the
        lowest id); ``None`` for regression."""
        if self.task.is_regression:
            return None
        top = majority_label(self.data["train"][1])
        return {s: compute_metrics(self.task, [top] * len(self.data[s][1]), self.data[s][1])
                for s in ("dev", "test")}


def majority_label(labels: list[int]) -> int:
    """The most frequent label; ties go to the lowest id."""
    return max(sorted(set(labels)), key=labels.count)
