from __future__ import annotations

import pytest
import torch
from torch import nn

import lorabar


class SimpleNet(nn.Module):
    """Embedding -> Linear -> Linear head; LoRA targets are the embedding and `lin`."""

    def __init__(self, vocab: int = 12, dim: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.lin = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.lin(self.emb(ids))).mean(1))


def make_peft_model(seed: int = 0, *, dtype: torch.dtype = torch.float64, randomize_b: bool = True):
    """A tiny PEFT model (LoRA on Embedding + Linear) with random B so nothing starts at zero."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = get_peft_model(
        SimpleNet(), LoraConfig(r=4, lora_alpha=8, target_modules=["emb", "lin"])
    ).to(dtype)
    if randomize_b:
        with torch.no_grad():
            for pair in lorabar.find_lora_pairs(model):
                pair.y.normal_(0, 0.5)
    return model


def make_batch(seed: int = 0, n: int = 8, seq: int = 5, vocab: int = 12, classes: int = 3):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n, seq), generator=g), torch.randint(0, classes, (n,), generator=g)


def loss_of(model, batch):
    ids, labels = batch
    logits = model(ids)
    return nn.functional.cross_entropy(logits.float(), labels)


@pytest.fixture
def peft_model():
    return make_peft_model()
