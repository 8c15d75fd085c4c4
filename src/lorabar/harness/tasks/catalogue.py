"""The task catalogue: every staged task (the MeZO k-shot splits and full GLUE) -- where its
files are, how a row is read, its labels, its metrics (the primary one first: App. D.4's rule)
and its sizes; a prompt-based variant plugs in through a ``formatter``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .example import Example

__all__ = ["SEEDS", "SPLITS", "TASKS", "Task"]

SEEDS = (13, 21, 42, 87, 100)
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Task:
    """One task: where its files are, how to read a row, its labels and metrics.

    ``row`` maps a list of fields to ``(text_a, text_b, raw_label)``; ``labels`` lists the raw
    label strings in class order (empty for regression); ``metrics`` the metrics, the primary
    (dev selection, verdicts) first -- the paper's App. D.4 rule: accuracy for every task but
    CoLA (Matthews) and STS-B (Pearson; MNLI's would be mismatched accuracy on full GLUE);
    ``columns`` is the (min, max) number of
    fields of a labelled row; ``sizes`` the rows per k=512 split (train, dev, test) and
    ``glue_sizes`` the GLUE train and dev rows, as SOURCES.md gives them (checked on load);
    ``labels_from`` (SNLI/MNLI) the first field after the sentence columns: every field from there
    on must be a label (an annotator label may be empty; the last, the gold label, may not).
    """

    name: str
    folder: str
    fewshot_dir: str
    ext: str
    header: bool
    row: Callable[[list[str]], tuple[str, str | None, str]]
    labels: tuple[str, ...]
    metrics: tuple[str, ...] = ("accuracy",)
    glue: bool = False
    test_file: str = "test"
    dev_file: str = "dev"
    formatter: Callable[[Example], tuple[str, str | None]] | None = field(default=None)
    columns: tuple[int, int] = (2, 2)
    sizes: tuple[int, int, int] | None = None
    glue_sizes: tuple[int, int] | None = None
    labels_from: int | None = None
    glue_test: str = "dev"

    @property
    def num_labels(self) -> int:
        return len(self.labels) if self.labels else 1

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]


def _cols(*idx: int, label: int = -1):
    def row(f: list[str]) -> tuple[str, str | None, str]:
        texts = [f[i] for i in idx]
        return texts[0], (texts[1] if len(texts) > 1 else None), f[label]

    return row


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "sst2",
            "sst2",
            "SST-2",
            "tsv",
            True,
            _cols(0, label=1),
            ("0", "1"),
            glue=True,
            sizes=(1024, 1024, 872),
            glue_sizes=(67349, 872),
        ),
        Task(
            "sst5",
            "sst5",
            "sst-5",
            "csv",
            False,
            _cols(1, label=0),
            ("0", "1", "2", "3", "4"),
            sizes=(2560, 2560, 1000),
        ),
        Task(
            "trec",
            "trec",
            "trec",
            "csv",
            False,
            _cols(1, label=0),
            tuple("012345"),
            sizes=(2646, 2243, 500),
        ),
        Task(
            "rte",
            "rte",
            "RTE",
            "tsv",
            True,
            _cols(1, 2),
            ("entailment", "not_entailment"),
            glue=True,
            columns=(4, 4),
            sizes=(1024, 1024, 277),
            glue_sizes=(2490, 277),
        ),
        Task(
            "snli",
            "snli",
            "SNLI",
            "tsv",
            True,
            _cols(7, 8),
            ("entailment", "neutral", "contradiction"),
            columns=(11, 15),
            sizes=(1536, 1536, 1000),
            labels_from=9,
        ),
        Task(
            "mnli",
            "mnli",
            "MNLI",
            "tsv",
            True,
            _cols(8, 9),
            ("entailment", "neutral", "contradiction"),
            test_file="test_matched",
            dev_file="dev_matched",
            columns=(12, 16),
            sizes=(1536, 1536, 1000),
            labels_from=10,
            glue=True,
            glue_sizes=(392702, 9832),
            glue_test="dev_mismatched",
        ),
        Task(
            "mrpc",
            "mrpc",
            "MRPC",
            "tsv",
            True,
            _cols(3, 4, label=0),
            ("0", "1"),
            metrics=("accuracy", "f1"),
            glue=True,
            columns=(5, 5),
            sizes=(1024, 1024, 408),
            glue_sizes=(3668, 408),
        ),
        Task(
            "cola",
            "cola",
            "CoLA",
            "tsv",
            False,
            _cols(3, label=1),
            ("0", "1"),
            metrics=("mcc", "accuracy"),
            glue=True,
            columns=(4, 4),
            sizes=(1024, 1024, 1000),
            glue_sizes=(8551, 1043),
        ),
        Task(
            "qnli",
            "qnli",
            "QNLI",
            "tsv",
            True,
            _cols(1, 2),
            ("entailment", "not_entailment"),
            columns=(4, 4),
            sizes=(1024, 1024, 1000),
        ),
        Task(
            "qqp",
            "qqp",
            "QQP",
            "tsv",
            True,
            _cols(3, 4, label=5),
            ("0", "1"),
            metrics=("accuracy", "f1"),
            columns=(6, 6),
            sizes=(1024, 1024, 1000),
            glue=True,
            glue_sizes=(363846, 40430),
        ),
        Task(
            "stsb",
            "stsb",
            "STS-B",
            "tsv",
            True,
            _cols(7, 8),
            (),
            metrics=("pearson", "spearman"),
            glue=True,
            columns=(10, 10),
            sizes=(1024, 1024, 1000),
            glue_sizes=(5749, 1500),
        ),
    )
}
