"""Causal-LM task adapters: prompt-based few-shot classification (Table 3) and WebNLG (Table 5).

Prompt tasks (``sst2``, ``rte``, ``cb``, ``copa``, ``record``, and ``synthetic``, a generated
copy task for tests): every candidate completion is scored by its mean token log-probability given
the
context; training is cross-entropy over the candidates' scores ("train as classification",
MeZO).  ``webnlg``: LM loss on the target text only (with label smoothing), decoding greedy or
with beam search, BLEU (sacrebleu) against all references, over all / seen / unseen test inputs.
``squad``: the LM loss on the answer, greedy generations scored by token F1
(`SquadTask`).  Methods: LoRA adapters or PEFT prefix tuning (`peft_model()`).
CPU budgets use documented subsets (``n_train``, ``n_dev``, ``n_test``).  The training loop is
the engine's (`lorabar.harness.run.engine`).
"""

from __future__ import annotations

import abc
import math

import torch
from torch.nn import functional as F

from .data_folder import DataError, subset
from .lm_scoring import (
    candidate_scores,
    collate,
    encode_pairs,
    generate,
    lm_loss,
    ragged_cross_entropy,
    sequence_scores,
    token_logprobs,
)

__all__ = [
    "PromptTask",
    "SFTTask",
    "SquadTask",
    "WebNLGTask",
    "candidate_scores",
    "generate",
    "lm_loss",
    "peft_model",
    "ragged_cross_entropy",
    "sequence_scores",
]


def peft_model(base, adapter: str, cfg):
    """``base`` with LoRA (r, alpha from ``cfg``, on the attention's query/value projections) or
    with PEFT prefix tuning (``cfg.num_virtual_tokens`` trained key/value prefixes per layer,
    Li & Liang 2021; PEFT's default: the prefixes are embeddings, no reparametrizing MLP)."""
    from peft import LoraConfig, PrefixTuningConfig, get_peft_model

    from ..models.causal_lm import causal_lora_targets

    if adapter == "prefix":
        return get_peft_model(
            base,
            PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=cfg.num_virtual_tokens),
        )
    return get_peft_model(
        base,
        LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=0.0,
            target_modules=causal_lora_targets(base),
        ),
    )


# ----------------------------------------------------------------------------- adapters
class _LMTask(abc.ABC):
    """What prompt and WebNLG adapters share: the causal LM with LoRA on its attention."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.tok = None
        self.pad = 0

    def build_model(self, method):
        from ..models.causal_lm import load_causal_lm

        if method.adapter == "none":
            raise ValueError(f"Invalid method: {method.name!r} is not available for causal LMs")
        base, self.tok = load_causal_lm(self.cfg.model)
        self.pad = 0 if self.tok is None else self.tok.pad_token_id
        model = peft_model(base, method.adapter, self.cfg)
        self._encode()
        return model

    def prepare(self, model, runtime) -> None:
        """Nothing to fit before training (the LM's own head scores the candidates)."""

    def train_info(self) -> dict:
        return {}

    @abc.abstractmethod
    def _encode(self) -> None:
        """Tokenize the training split once the tokenizer is loaded (per task)."""


class PromptTask(_LMTask):
    """Adapter for prompt tasks: candidates scored by mean token log-probability."""

    primary_metric = "accuracy"

    def __init__(self, cfg) -> None:
        from .lm_prompt_tasks import load_prompt_split
        from .qa_data import load_qa_rows

        super().__init__(cfg)

        def split(name: str, n: int, seed: int):
            if cfg.task == "record":  # MeZO's ReCoRD (qa_data): one candidate per entity
                rows = load_qa_rows("record", name, cfg.data_dir)
            else:
                rows = load_prompt_split(cfg.task, name, data_dir=cfg.data_dir, seed=cfg.seed)
            return subset(rows, n, seed=seed)

        self.train = split("train", cfg.n_train, cfg.seed)
        self.splits = {"dev": split("dev", cfg.n_dev, 0), "test": split("test", cfg.n_test, 0)}
        self.sizes = {"train": len(self.train), **{k: len(v) for k, v in self.splits.items()}}
        self.n_train = len(self.train)
        counts = {len(e.candidates) for e in self.train}
        self.n_cand = counts.pop() if len(counts) == 1 else None  # None: ragged (ReCoRD)

    def _encode(self) -> None:
        self.encoded = [
            encode_pairs(self.tok, [(e.context, c) for c in e.candidates], self.cfg.max_length)
            for e in self.train
        ]

    def batch(self, idx: list[int]) -> dict:
        batch = collate([x for i in idx for x in self.encoded[i]], self.pad)
        batch["labels"] = torch.tensor([self.train[i].label for i in idx])
        if self.n_cand is None:
            batch["counts"] = torch.tensor([len(self.train[i].candidates) for i in idx])
        return batch

    def loss(self, model, batch: dict) -> torch.Tensor:
        if self.n_cand is not None:  # as many candidates everywhere (every task but ReCoRD)
            return F.cross_entropy(candidate_scores(model, batch, self.n_cand), batch["labels"])
        # ReCoRD: the candidates' counts split the scores (one host read of B ints a step)
        return ragged_cross_entropy(
            sequence_scores(model, batch), batch["counts"].tolist(), batch["labels"]
        )

    @torch.no_grad()
    def evaluate(self, model, split: str, runtime) -> dict:
        rows = self.splits[split]
        size = self.cfg.eval_batch_size
        correct = 0
        for i in range(0, len(rows), size):
            chunk = rows[i : i + size]
            enc = [
                x
                for e in chunk
                for x in encode_pairs(
                    self.tok, [(e.context, c) for c in e.candidates], self.cfg.max_length
                )
            ]
            with runtime.autocast():
                scores = sequence_scores(model, runtime.to_device(collate(enc, self.pad)))
            parts = scores.float().cpu().split([len(e.candidates) for e in chunk])
            correct += sum(e.is_correct(int(p.argmax())) for p, e in zip(parts, chunk))
        return {"accuracy": correct / len(rows)}

    def majority(self) -> dict:
        from .encoder_task import majority_label

        top = majority_label([e.label for e in self.train])
        return {
            name: {"accuracy": sum(e.label == top for e in rows) / len(rows)}
            for name, rows in self.splits.items()
        }


class _TargetLMTask(_LMTask):
    """Tasks trained with the LM loss on a target text (``self.encoded``: ids and target mask)."""

    def batch(self, idx: list[int]) -> dict:
        return collate([self.encoded[i] for i in idx], self.pad)

    def loss(self, model, batch: dict) -> torch.Tensor:
        return lm_loss(model, batch, self.cfg.label_smoothing)


class WebNLGTask(_TargetLMTask):
    """Adapter for WebNLG 2017: LM loss on the target text, BLEU on generations."""

    primary_metric = "bleu"

    def __init__(self, cfg) -> None:
        from .webnlg import load_webnlg

        super().__init__(cfg)
        train = subset(load_webnlg("train", data_dir=cfg.data_dir), cfg.n_train, seed=cfg.seed)
        self.train = [e for e in train if e.references]  # one training item per entry
        self.splits = {
            s: subset(load_webnlg(s, data_dir=cfg.data_dir), n, seed=0)
            for s, n in (("dev", cfg.n_dev), ("test", cfg.n_test))
        }
        self.sizes = {"train": len(self.train), **{k: len(v) for k, v in self.splits.items()}}
        self.n_train = len(self.train)

    def _encode(self) -> None:
        from .webnlg import linearize

        items = [(linearize(e) + " =", " " + e.references[0]) for e in self.train]
        self.encoded = encode_pairs(self.tok, items, self.cfg.max_length, eos=True)

    @torch.no_grad()
    def evaluate(self, model, split: str, runtime) -> dict:
        from .webnlg import bleu, linearize

        if self.tok is None:
            raise ValueError("WebNLG evaluation needs a tokenizer (not the tiny model)")
        rows = self.splits[split]
        hyps = self._generate(model, rows, runtime)
        refs = [e.references for e in rows]
        result = {"bleu": bleu(hyps, refs)}
        for name, want in (("bleu_seen", True), ("bleu_unseen", False)):
            idx = [i for i, e in enumerate(rows) if e.seen is want]
            result[name] = bleu([hyps[i] for i in idx], [refs[i] for i in idx]) if idx else math.nan
        result["examples"] = [
            {"input": linearize(rows[i]), "output": hyps[i]} for i in range(min(3, len(rows)))
        ]
        return result

    def _generate(self, model, rows, runtime) -> list[str]:
        """Greedy or beam generations for ``rows`` (the tokenizer already pads on the left)."""
        from .webnlg import linearize

        return generate(model, self.tok, [linearize(e) + " =" for e in rows], self.cfg, runtime)

    def majority(self) -> None:
        return None


class SquadTask(_TargetLMTask):
    """SQuAD (paper Table 3, MeZO's protocol): the LM loss on ``" {answer}\\n"`` after MeZO's
    prompt (`lorabar.harness.tasks.qa_data.squad_prompt()`, the first gold answer); greedy
    generations (``max_new_tokens``) cut at their first newline, scored by token F1 (primary)
    and exact match against every gold answer."""

    primary_metric = "f1"

    def __init__(self, cfg) -> None:
        from .qa_data import load_qa_rows

        super().__init__(cfg)
        self.train = subset(
            load_qa_rows("squad", "train", cfg.data_dir), cfg.n_train, seed=cfg.seed
        )
        self.splits = {
            s: subset(load_qa_rows("squad", s, cfg.data_dir), n, seed=0)
            for s, n in (("dev", cfg.n_dev), ("test", cfg.n_test))
        }
        self.sizes = {"train": len(self.train), **{k: len(v) for k, v in self.splits.items()}}
        self.n_train = len(self.train)

    def _encode(self) -> None:
        from .qa_data import squad_prompt

        self.encoded = encode_pairs(
            self.tok,
            [(squad_prompt(e), f" {e.answers[0]}\n") for e in self.train],
            self.cfg.max_length,
        )

    @torch.no_grad()
    def evaluate(self, model, split: str, runtime) -> dict:
        from .qa_data import exact_match, squad_f1, squad_prompt

        if self.tok is None:
            raise ValueError(
                "SQuAD evaluation generates text: it needs a tokenizer (not the tiny model)"
            )
        rows = self.splits[split]
        hyps = [
            h.strip().split("\n")[0].strip()
            for h in generate(model, self.tok, [squad_prompt(e) for e in rows], self.cfg, runtime)
        ]
        return {
            "f1": sum(squad_f1(h, e.answers) for h, e in zip(hyps, rows)) / len(rows),
            "exact_match": sum(exact_match(h, e.answers) for h, e in zip(hyps, rows)) / len(rows),
            "examples": [
                {"question": rows[i].question, "output": hyps[i]} for i in range(min(3, len(rows)))
            ],
        }

    def majority(self) -> None:
        return None


class SFTTask(_TargetLMTask):
    """Your own prompt/completion data (task ``custom``): the LM loss on the completion tokens
    only.  Metrics: the mean negative log-likelihood per completion token (``nll``; the primary
    metric is ``neg_nll = -nll``, so that dev selection, which maximizes, prefers the lower NLL),
    and with ``metric = "bleu"`` the BLEU of greedy (or beam) generations against the completions
    (primary ``bleu``)."""

    def __init__(self, cfg) -> None:
        from .own_data import read_rows, text_field

        super().__init__(cfg)
        pairs, self.where = {}, {}
        for split in ("train", "dev", "test"):
            path = getattr(cfg, split)
            rows = read_rows(path)
            pairs[split] = [
                (
                    text_field(path, n, row, cfg.prompt_column),
                    text_field(path, n, row, cfg.completion_column, strip=False),
                )
                for n, row in rows
            ]
            self.where[split] = {}
            for pair, (n, _) in zip(pairs[split], rows):
                self.where[split].setdefault(pair, f"{path}:{n}")
        self.train = subset(pairs["train"], cfg.n_train, seed=cfg.seed)
        self.splits = {
            s: subset(pairs[s], n, seed=0) for s, n in (("dev", cfg.n_dev), ("test", cfg.n_test))
        }
        self.truncated: dict[str, int] = {}
        self.sizes = {"train": len(self.train), **{k: len(v) for k, v in self.splits.items()}}
        self.n_train = len(self.train)
        self.primary_metric = "bleu" if cfg.metric == "bleu" else "neg_nll"

    def _encode(self) -> None:
        self.encoded = self._encode_split("train", self.train)
        self.encoded_eval = {s: self._encode_split(s, rows) for s, rows in self.splits.items()}

    def _encode_split(self, split: str, rows: list[tuple[str, str]]) -> list:
        """Prompt + completion ids, the completion's end cut to fit ``max_length`` (never the
        prompt: one that does not fit alone is refused naming its line); counted per split."""
        out, cut = [], 0
        for (ids, mask), row in zip(encode_pairs(self.tok, rows, 10**9, eos=True), rows):
            n_prompt = len(ids) - sum(mask)
            if n_prompt >= self.cfg.max_length:
                raise DataError(
                    f"{self.where[split][row]}: the prompt alone is {n_prompt} tokens, "
                    f"--max-length is {self.cfg.max_length} (no completion token "
                    "would fit); raise --max-length or shorten the prompt"
                )
            if len(ids) > self.cfg.max_length:
                ids, mask, cut = ids[: self.cfg.max_length], mask[: self.cfg.max_length], cut + 1
            out.append((ids, mask))
        self.truncated[split] = cut
        return out

    def train_info(self) -> dict:
        return {**super().train_info(), "truncated_completions": dict(self.truncated)}

    @torch.no_grad()
    def evaluate(self, model, split: str, runtime) -> dict:
        rows, size = self.splits[split], self.cfg.eval_batch_size
        encoded = self.encoded_eval[split]
        total, count = 0.0, 0
        for i in range(0, len(encoded), size):
            batch = runtime.to_device(collate(encoded[i : i + size], self.pad))
            with runtime.autocast():
                tok_lp, mask = token_logprobs(model, batch)
            total -= float((tok_lp * mask).sum())
            count += int(mask.sum())
        nll = total / max(1, count)
        result = {"neg_nll": -nll, "nll": nll}
        if self.cfg.metric == "bleu":
            from .webnlg import bleu

            hyps = generate(model, self.tok, [p for p, _ in rows], self.cfg, runtime)
            result = {"bleu": bleu(hyps, [(c.strip(),) for _, c in rows]), **result}
        return result

    def majority(self) -> None:
        return None
