"""Tiny models and data for the examples, built from configs (nothing is downloaded); pass
``--model`` to an example for a real checkpoint instead."""

from __future__ import annotations

import argparse

import torch


def common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--threads`` and ``--verbose``, which every example takes."""
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (default 1: on a shared or small machine more threads "
        "are often slower for models this size; 0: torch's default)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show third-party warnings and weight-loading progress bars",
    )
    return parser


def setup(args: argparse.Namespace) -> None:
    """Threads as asked; third-party warnings and loading bars off unless ``--verbose``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.verbose:
        import warnings

        import transformers

        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings(
            "ignore", category=UserWarning, module="(transformers|peft|trl|accelerate|torch)"
        )
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()


def tiny_classifier(model: str | None = None, num_labels: int = 2):
    """A BERT classifier: ``model`` (a local folder or hub id), else a 2-layer one from a config."""
    from transformers import (
        AutoModelForSequenceClassification,
        BertConfig,
        BertForSequenceClassification,
    )

    if model:
        return AutoModelForSequenceClassification.from_pretrained(model, num_labels=num_labels)
    torch.manual_seed(0)
    return BertForSequenceClassification(
        BertConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=num_labels,
        )
    )


def with_lora(model, targets=("query", "value")):
    """LoRA r=8, alpha=16 on ``targets`` (PEFT), the classifier head trained too."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(
        model,
        LoraConfig(
            r=8, lora_alpha=16, target_modules=list(targets), modules_to_save=["classifier"]
        ),
    )


def token_batches(n: int = 64, seq: int = 8, vocab: int = 100, seed: int = 0) -> list[dict]:
    """A learnable two-class task: the label is whether token 7 appears."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(8, vocab, (n, seq), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    ids[labels == 1, 0] = 7
    return [
        {
            "input_ids": ids[i],
            "attention_mask": torch.ones(seq, dtype=torch.long),
            "labels": labels[i],
        }
        for i in range(n)
    ]
