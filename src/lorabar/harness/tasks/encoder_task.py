"""The encoder task adapter: classification / regression with a pooled linear head.

Splits from `lorabar.harness.tasks.data_folder` (MeZO k=512 few-shot or full GLUE), tokenized once,
collated with dynamic padding; the model is `lorabar.harness.models.encoder_model.build_model()`
(MiniLM by default) with LoRA on the chosen targets, or without adapters for full finetuning.

Heads: ``probe`` (default) fits a logistic-regression head (ridge regression, its penalty chosen
by leave-one-out, for regression) on the frozen pretrained features of the train split and
freezes it, so only the LoRA factors adapt -- the stand-in for a pretrained verbalizer, since the
MiniLM wheel has no MLM head (the paper finetunes RoBERTa through prompts and its MLM head).
``linear`` trains a fresh head with the adapters (the practical setting).  ``label_noise = P``
flips a seeded fraction P of the train labels to another class (dev and test untouched).
``max_eval`` evaluates a seeded, class-stratified subset of dev and test.
"""

from __future__ import annotations

import torch

from .content_cache import code_hash
from .data_folder import TASKS, Example, check_classes, load_split, split_path, subset
from .task_metrics import compute_metrics
from .token_cache import cached_splits, splits_key, tokenizer_fingerprint

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
            [[1] * len(it["input_ids"]) + [0] * (n - len(it["input_ids"])) for it in items]
        )
        dtype = torch.float32 if isinstance(labels[0], float) else torch.long
        batch["labels"] = torch.tensor(labels, dtype=dtype)
        return batch


def fit_probe(x, y, regression: bool):
    """``(weight, bias, info)`` of a linear head on features ``x`` (n, d) for labels ``y``.

    Classification: logistic regression (sklearn's default L2 penalty, C = 1); a binary fit's
    single row becomes two rows whose logit difference is sklearn's logit.  Regression: ridge
    regression, the penalty chosen by leave-one-out over 1e-3 .. 1e3 (RidgeCV): the plain
    least-squares fit of MiniLM's mean-pooled features is so ill-conditioned (|w| ~ 4e8 on
    STS-B) that the training-time dropout before the head turns an MSE of 1.1 into 48.
    """
    import numpy as np

    if regression:
        from sklearn.linear_model import RidgeCV

        reg = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x, y.astype(float))
        fit = float(np.corrcoef(reg.predict(x), y)[0, 1])
        return (
            reg.coef_[None, :],
            np.atleast_1d(reg.intercept_),
            {"kind": "ridge", "alpha": float(reg.alpha_), "train_pearson": fit},
        )
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000).fit(x, y)
    weight, bias = clf.coef_, clf.intercept_
    if weight.shape[0] == 1:  # binary: sklearn keeps one row (logit of class 1)
        weight = np.vstack([-weight / 2, weight / 2])
        bias = np.concatenate([-bias / 2, bias / 2])
    return weight, bias, {"kind": "logistic regression", "train_accuracy": float(clf.score(x, y))}


class EncoderTask:
    """Adapter for
    [`lorabar.harness.run.config.EncoderConfig`][lorabar.harness.run.config.EncoderConfig] runs (see
    the engine)."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.task, self.splits = _task_and_splits(cfg)
        self.primary_metric = self.task.primary_metric
        from .own_data import count_shared

        # dev/test examples whose text is also a train example's (recorded and printed)
        self.shared = {
            s: count_shared(self.splits[s], self.splits["train"]) for s in ("dev", "test")
        }
        if cfg.max_eval:
            for s in ("dev", "test"):
                ex = self.splits[s]
                labels = None if self.task.is_regression else [e.label for e in ex]
                self.splits[s] = subset(ex, cfg.max_eval, seed=0, labels=labels)
        self.flipped = 0
        if cfg.label_noise:
            self.splits["train"], self.flipped = flip_labels(
                self.splits["train"], cfg.label_noise, self.task.num_labels, seed=cfg.seed
            )
        self.sizes = {s: len(v) for s, v in self.splits.items()}
        self.n_train = self.sizes["train"]

        self.data: dict = {}
        self.probe: dict | None = None
        self.features_from: str | None = None  # the probe's features: "cache" or "computed"
        self.fit_from: str | None = None  # the probe's fit: "cache" or "computed"
        self.tokens_from: str | None = None  # the tokenized splits: "cache", "computed", ...
        self.head_info: dict | None = None
        self._pad = 0

    def build_model(self, method):
        from ..models.encoder_model import build_model

        cfg = self.cfg
        if cfg.head == "prompt":
            return self._build_prompt_model(method)
        model, tokenizer = build_model(
            cfg.model,
            self.task.num_labels,
            method="lora" if method.adapters else "full",
            lora_r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            targets=cfg.targets,
            pooling=cfg.pooling,
            train_head=cfg.head == "linear",
        )
        if cfg.init_adapter is not None:
            from ..models.encoder_model import load_init

            load_init(model, cfg.init_adapter)
        enc = _Encoder(tokenizer, cfg.max_length)
        fingerprint = "hashed words 1" if tokenizer is None else tokenizer_fingerprint(tokenizer)
        self._tokenize(fingerprint, {"max_length": cfg.max_length}, enc.encode)
        return model

    def _tokenize(self, fingerprint: str | None, settings: dict, encode) -> None:
        """``self.data``: every split's items (``encode(examples)``) and labels, through the
        token cache (`lorabar.harness.tasks.token_cache`)."""
        settings = {**settings, "code": code_hash(encode)}  # the encoder's module
        key = None if fingerprint is None else splits_key(fingerprint, settings, self.splits)
        items, self.tokens_from = cached_splits(
            key, lambda: {s: encode(ex) for s, ex in self.splits.items()}
        )
        self.data = {s: (items[s], [e.label for e in ex]) for s, ex in self.splits.items()}

    def _build_prompt_model(self, method):
        """``--head prompt``: the masked LM scores the verbalizer words at the template's mask
        ([`lorabar.harness.tasks.mlm_prompt`][lorabar.harness.tasks.mlm_prompt]); only the LoRA
        factors adapt."""
        from peft import LoraConfig, get_peft_model

        from ..models.encoder_model import LORA_TARGETS
        from .mlm_prompt import PromptClassifier, PromptEncoder, build_prompt_model
        from .mlm_templates import MEZO_TEMPLATES, parse_verbalizer

        cfg = self.cfg
        if cfg.template is not None:
            template, words = cfg.template, parse_verbalizer(cfg.verbalizer)
        else:
            template, words = MEZO_TEMPLATES[cfg.task]
        mlm, tok = build_prompt_model(
            cfg.model,
            lora_r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            targets=LORA_TARGETS[cfg.targets],
            adapters=False,
        )
        enc = PromptEncoder(tok, template, words, self.task.labels, cfg.max_length)
        self.head_info = {"kind": "prompt", "template": template, "verbalizer": words}
        self._pad = tok.pad_token_id
        self._tokenize(
            tokenizer_fingerprint(tok),
            {
                "max_length": cfg.max_length,
                "template": template,
                "verbalizer": words,
                "labels": list(self.task.labels),
            },
            enc.encode_all,
        )
        model = PromptClassifier(mlm, enc.label_ids)
        if not method.adapters:
            return model
        return get_peft_model(
            model,
            LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=0.0,
                target_modules=LORA_TARGETS[cfg.targets],
            ),
        )

    def _collate(self, items: list[dict], labels: list) -> dict:
        if self.cfg.head != "prompt":
            return _Encoder.collate(items, labels)
        n = max(len(it["input_ids"]) for it in items)
        pad = self._pad
        return {
            "input_ids": torch.tensor(
                [it["input_ids"] + [pad] * (n - len(it["input_ids"])) for it in items]
            ),
            "attention_mask": torch.tensor(
                [[1] * len(it["input_ids"]) + [0] * (n - len(it["input_ids"])) for it in items]
            ),
            "mask_pos": torch.tensor([it["mask_pos"] for it in items]),
            "labels": torch.tensor(labels, dtype=torch.long),
        }

    @torch.no_grad()
    def prepare(self, model, runtime) -> None:
        """``head = "probe"``: fit the head on the frozen features of the train split (the LoRA
        adapters are the identity at initialization), then keep it frozen.  (``prompt``: the
        pretrained MLM head is the head; nothing to fit.)"""
        if self.cfg.head != "probe":
            return
        import numpy as np

        from .feature_cache import cached_features, cached_fit, feature_key, fit_key

        net = model.get_base_model() if hasattr(model, "get_base_model") else model
        encoded, labels = self.data["train"]

        def compute() -> torch.Tensor:
            model.eval()
            feats = []
            for i in range(0, len(encoded), self.cfg.eval_batch_size):
                batch = _Encoder.collate(
                    encoded[i : i + self.cfg.eval_batch_size],
                    labels[i : i + self.cfg.eval_batch_size],
                )
                batch.pop("labels")
                with runtime.autocast():
                    feats.append(net.features(**runtime.to_device(batch)).float().cpu())
            model.train()
            return torch.cat(feats)

        key = feature_key(
            net,
            encoded,
            settings={
                "batch": self.cfg.eval_batch_size,
                "pooling": self.cfg.pooling,
                "dtype": str(runtime.dtype),
                "device": runtime.device.type,
                "code": code_hash(type(net)),
            },
        )
        regression = self.task.is_regression

        def fit():
            feats, self.features_from = cached_features(key, compute)
            return fit_probe(feats.double().numpy(), np.asarray(labels), regression)

        (weight, bias, self.probe), self.fit_from = cached_fit(
            fit_key(key, labels, regression=regression, code=code_hash(fit_probe)), fit
        )
        head = net.head
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))
        head.requires_grad_(False)

    def train_info(self) -> dict:
        """What the adapter adds to the record's ``train``."""
        info: dict = {
            "head": self.cfg.head,
            "label_noise_flipped": self.flipped,
            "shared_with_train": self.shared,
            "tokens": self.tokens_from,
        }
        if self.probe is not None:
            info["probe"] = {**self.probe, "features": self.features_from, "fit": self.fit_from}
        return info

    def batch(self, idx: list[int]) -> dict:
        x, y = self.data["train"]
        return self._collate([x[i] for i in idx], [y[i] for i in idx])

    @staticmethod
    def loss(model, batch: dict) -> torch.Tensor:
        return model(**batch).loss

    @torch.no_grad()
    def evaluate(self, model, split: str, runtime) -> dict:
        encoded, labels = self.data[split]
        size = self.cfg.eval_batch_size
        preds = []
        for i in range(0, len(encoded), size):
            batch = self._collate(encoded[i : i + size], labels[i : i + size])
            batch.pop("labels")
            with runtime.autocast():
                logits = model(**runtime.to_device(batch)).logits.float()
            preds.extend(
                logits.squeeze(-1).tolist()
                if self.task.is_regression
                else logits.argmax(-1).tolist()
            )
        return compute_metrics(self.task, preds, labels)

    def majority(self) -> dict | None:
        """Every split's metrics when predicting the most frequent training label (ties: the
        lowest id); ``None`` for regression."""
        if self.task.is_regression:
            return None
        top = majority_label(self.data["train"][1])
        return {
            s: compute_metrics(self.task, [top] * len(self.data[s][1]), self.data[s][1])
            for s in ("dev", "test")
        }


def majority_label(labels: list[int]) -> int:
    """The most frequent label; ties go to the lowest id."""
    return max(sorted(set(labels)), key=labels.count)


def flip_labels(
    examples: list[Example], fraction: float, num_labels: int, *, seed: int
) -> tuple[list[Example], int]:
    """Flip ``round(fraction * n)`` seeded labels to a uniformly drawn other class; returns the
    new list and the number flipped."""
    import dataclasses
    import random

    rng = random.Random(f"label-noise/{seed}")
    n_flip = round(fraction * len(examples))
    chosen = set(rng.sample(range(len(examples)), n_flip))
    out = []
    for i, e in enumerate(examples):
        if i in chosen:
            other = rng.choice([k for k in range(num_labels) if k != e.label])
            e = dataclasses.replace(e, label=other)
        out.append(e)
    return out, n_flip


def _task_and_splits(cfg) -> tuple:
    """The task and its train/dev/test examples: your own files (``task = "custom"``, checked
    the same way) or the data folder's task, its train split checked for two classes before any
    model loads (a probe needs them)."""
    if cfg.task == "custom":
        from .own_data import load_user_data

        own = load_user_data(
            cfg.train,
            cfg.dev,
            cfg.test,
            text_column=cfg.text_column,
            label_column=cfg.label_column,
            text_pair_column=cfg.text_pair_column,
            task_type=cfg.task_type,
            numeric_labels=cfg.numeric_labels,
        )
        return own.task, dict(own.splits)
    task = TASKS[cfg.task]
    where = {"data_dir": cfg.data_dir, "seed": cfg.seed, "setting": cfg.setting}
    splits = {s: load_split(task, s, **where) for s in ("train", "dev", "test")}
    if not task.is_regression:
        check_classes(
            split_path(task, "train", **where), [e.label for e in splits["train"]], cfg.task
        )
    return task, splits
