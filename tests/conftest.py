from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path

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
    return torch.randint(0, vocab, (n, seq), generator=g), torch.randint(
        0, classes, (n,), generator=g
    )


def loss_of(model, batch):
    ids, labels = batch
    logits = model(ids)
    return nn.functional.cross_entropy(logits.float(), labels)


@pytest.fixture
def peft_model():
    return make_peft_model()


# ----------------------------------------------------------------------------- shared helpers
# the probe-feature cache of this test session (never the user's ~/.cache), for subprocesses too;
# set where pytest starts, so that pytest-xdist's workers inherit (and share) one
os.environ.setdefault("LORABAR_CACHE", tempfile.mkdtemp(prefix="lorabar-cache-"))
if os.environ.get("PYTEST_XDIST_WORKER"):  # one torch thread per worker (./scripts/run-tests -n)
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # and in the processes a test starts

FILLER = "the a of to in is on at by with from".split()
# the data folder: $LORABAR_DATA_DIR, else ../shared/data beside the repository
DATA = Path(
    os.environ.get("LORABAR_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def synthetic_files(folder: Path, fmt: str = "jsonl", n=(128, 64, 64)) -> dict[str, Path]:
    """A two-class task a tiny model can learn: one keyword per class among filler words."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for (split, size), seed in zip(zip(("train", "dev", "test"), n), (1, 2, 3)):
        r = random.Random(seed)
        rows = []
        for i in range(size):
            word = r.choice(["apple", "pear", "plum"] if i % 2 == 0 else ["stone", "rock", "iron"])
            words = [r.choice(FILLER) for _ in range(r.randrange(3, 7))]
            words.insert(r.randrange(len(words) + 1), word)
            rows.append({"text": " ".join(words), "label": "fruit" if i % 2 == 0 else "metal"})
        path = folder / f"{split}.{fmt}"
        if fmt == "jsonl":
            path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        elif fmt == "csv":
            path.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows))
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), path)
        elif fmt == "disk":
            from datasets import Dataset

            path = folder / split
            Dataset.from_list(rows).save_to_disk(str(path))
        paths[split] = path
    return paths


def own_data_args(paths: dict[str, Path]) -> list[str]:
    return [
        "--train",
        str(paths["train"]),
        "--dev",
        str(paths["dev"]),
        "--test",
        str(paths["test"]),
        "--text-column",
        "text",
        "--label-column",
        "label",
    ]


def fake_record(
    task,
    method,
    seed,
    dev,
    test,
    step_ms,
    setting=None,
    b=1.0,
    *,
    precision="fp32",
    model="minilm",
    steps=300,
    data="d",
):
    """A signed result record, as a finished run writes it, with the given metrics."""
    from lorabar.harness.run.config import EncoderConfig

    cfg = EncoderConfig(task=task, method=method, seed=seed, lr=setting or 1e-3, steps=steps)
    names = [f"encoder.layer.{i}.attention.self.query[default]" for i in range(3)]
    from dataclasses import asdict

    identity = {
        "config": cfg.key(),
        "device": "cpu",
        "precision": precision,
        "threads": 1,
        "data": {f"{task}/512-{seed}/train.tsv": data * 64},
        "model": {"name": model, "files": {"model.safetensors": "m" * 64}},
    }
    from lorabar.harness.run.records import with_digest

    return with_digest(
        {
            "config": asdict(cfg),
            "key": cfg.key(),
            "identity": identity,
            "primary_metric": "accuracy",
            "metrics": {"dev": {"accuracy": dev}, "test": {"accuracy": test}},
            "majority_class": {"dev": {"accuracy": 0.5}, "test": {"accuracy": 0.51}},
            "final_mean_abs_B": b,
            "timing": {"step_time_median_s": step_ms / 1000},
            "balancedness": {"steps": [0, 10], "names": names, "abs_B": [[1, 1, 1], [b, b, b]]},
        }
    )


def as_runs(records) -> list:
    """Result records (`fake_record`'s dicts) as a report reads them: `RunRecord`s, each named
    by its place (`lorabar.harness.report.load.record_of`)."""
    from lorabar.harness.report.load import record_of

    return [record_of(r, f"r{i}.json") for i, r in enumerate(records)]


def squad_row(i: int, answer: str = "Denver Broncos") -> dict:
    return {
        "id": f"q{i}",
        "title": "Super_Bowl_50",
        "context": f"The {answer} won game {i}.",
        "question": f"Who won game {i}?",
        "answers": {"text": [answer, answer.lower()], "answer_start": [4, 4]},
    }


def write_jsonl(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory):
    """SmolLM2 converted from its GGUF once per test run (~30 s) into a cache folder of its own:
    the folder, the model and tokenizer, and three ``torch.rand`` draws taken right after the
    converting load under seed 0.  Its users are all in test_lm.py: ./scripts/run-tests
    distributes whole files (``--dist loadfile``), so one pytest-xdist worker converts."""
    from types import SimpleNamespace

    from lorabar.harness.models.causal_lm import load_causal_lm

    cache = tmp_path_factory.mktemp("smollm2-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORABAR_CACHE", str(cache))
        torch.manual_seed(0)
        model, tokenizer = load_causal_lm("smollm2")  # converts
        after_converting = torch.rand(3)
    return SimpleNamespace(
        cache=cache, model=model, tokenizer=tokenizer, after_converting=after_converting
    )


@pytest.fixture(scope="session")
def data_dir():
    """The shared data folder as a string (tests that use it are marked ``data``)."""
    assert DATA.is_dir(), f"tests need the shared data folder at {DATA} (or $LORABAR_DATA_DIR)"
    return str(DATA)
