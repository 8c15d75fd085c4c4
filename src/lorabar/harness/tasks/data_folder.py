"""Tasks and data loading from a local data directory (MeZO k-shot splits and full GLUE).

The data directory is given by ``--data-dir`` or the environment variable ``LORABAR_DATA_DIR``
(here: ``../shared/data``; see its ``SOURCES.md``).  Layouts read:

    few-shot:  <dir>/<folder>/k-shot-1k-test/<TASK>/512-<seed>/{train,dev,test}.{tsv,csv}
    full GLUE: <dir>/<folder>/glue/{train,dev}.tsv   (GLUE dev -- MNLI: dev_mismatched.tsv,
               App. D.4 -- is the test set; a seeded 10% of train, <= 1000 rows, is dev)

Every file is read as strict UTF-8 (a leading BOM is dropped): an undecodable byte is a
`DataError` naming ``file:line`` and the byte, never a silent fallback to another encoding.
Quirks handled (SOURCES.md): SNLI/MNLI rows carry one to five annotator labels after the sentence
columns, then the gold label (SNLI: 11, 14 or 15 fields under an 11-field header; MNLI 12 or 16),
so every field after the sentences must be a label (an annotator's may be empty) -- a tab inside a
sentence is caught there; MRPC files start with a BOM and contain unbalanced quotes; TREC/SST-5
are headerless CSV; one CoLA test line holds two rows glued together; the GLUE MRPC train file
misses one pair (rebuilt from ``msr_paraphrase_train.txt`` minus ``dev_ids.tsv``).

Every file a loader reads goes through `read_data_text()`, which notes it for
`recording()` (a run's identity hashes exactly the files its task read).

A `Task` turns rows into `Example` s; a prompt-based variant plugs in by giving the
task a ``formatter`` (example -> texts), which the causal-LM harness uses.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .example import Example

__all__ = ["DATA_ENV", "DataError", "Example", "SEEDS", "TASKS", "Task", "check_classes",
           "load_split", "note_read", "read_data_text", "recording", "resolve_data_dir",
           "split_path", "subset"]

DATA_ENV = "LORABAR_DATA_DIR"
SEEDS = (13, 21, 42, 87, 100)
SPLITS = ("train", "dev", "test")


class DataError(ValueError):
    """A data file is missing or malformed (the message names the file and line)."""


@dataclass(frozen=True)
class Task:
    """One task: where its files are, how to read a row, its labels and metrics.

    ``row`` maps a list of fields to ``(text_a, text_b, raw_label)``; ``labels`` lists the raw
    label strings in class order (empty for regression); ``metrics`` the metrics, the primary
    (dev selection, verdicts) first -- the paper's App. D.4 rule: accuracy for every task but
    CoLA (Matthews) and STS-B (Pearson; MNLI's would be mismatched accuracy on full GLUE); ``columns`` is the (min, max) number of
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
        Task("sst2", "sst2", "SST-2", "tsv", True, _cols(0, label=1), ("0", "1"), glue=True,
             sizes=(1024, 1024, 872), glue_sizes=(67349, 872)),
        Task("sst5", "sst5", "sst-5", "csv", False, _cols(1, label=0), ("0", "1", "2", "3", "4"),
             sizes=(2560, 2560, 1000)),
        Task("trec", "trec", "trec", "csv", False, _cols(1, label=0), tuple("012345"),
             sizes=(2646, 2243, 500)),
        Task("rte", "rte", "RTE", "tsv", True, _cols(1, 2), ("entailment", "not_entailment"),
             glue=True, columns=(4, 4), sizes=(1024, 1024, 277), glue_sizes=(2490, 277)),
        Task("snli", "snli", "SNLI", "tsv", True, _cols(7, 8),
             ("entailment", "neutral", "contradiction"), columns=(11, 15),
             sizes=(1536, 1536, 1000), labels_from=9),
        Task("mnli", "mnli", "MNLI", "tsv", True, _cols(8, 9),
             ("entailment", "neutral", "contradiction"), test_file="test_matched",
             dev_file="dev_matched", columns=(12, 16), sizes=(1536, 1536, 1000), labels_from=10,
             glue=True, glue_sizes=(392702, 9832), glue_test="dev_mismatched"),
        Task("mrpc", "mrpc", "MRPC", "tsv", True, _cols(3, 4, label=0), ("0", "1"),
             metrics=("accuracy", "f1"), glue=True, columns=(5, 5),
             sizes=(1024, 1024, 408), glue_sizes=(3668, 408)),
        Task("cola", "cola", "CoLA", "tsv", False, _cols(3, label=1), ("0", "1"),
             metrics=("mcc", "accuracy"), glue=True, columns=(4, 4), sizes=(1024, 1024, 1000),
             glue_sizes=(8551, 1043)),
        Task("qnli", "qnli", "QNLI", "tsv", True, _cols(1, 2), ("entailment", "not_entailment"),
             columns=(4, 4), sizes=(1024, 1024, 1000)),
        Task("qqp", "qqp", "QQP", "tsv", True, _cols(3, 4, label=5), ("0", "1"),
             metrics=("accuracy", "f1"), columns=(6, 6), sizes=(1024, 1024, 1000), glue=True,
             glue_sizes=(363846, 40430)),
        Task("stsb", "stsb", "STS-B", "tsv", True, _cols(7, 8), (),
             metrics=("pearson", "spearman"), glue=True, columns=(10, 10),
             sizes=(1024, 1024, 1000), glue_sizes=(5749, 1500)),
    )
}


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """The data directory from the argument or ``$LORABAR_DATA_DIR``; a clear error otherwise."""
    value = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    if value is None:
        raise FileNotFoundError(
            f"No data directory: pass --data-dir DIR or set {DATA_ENV}=DIR, where DIR holds the "
            "task folders (e.g. DIR/sst2/k-shot-1k-test/SST-2/512-13/train.tsv); in this "
            "project's workspace that is ../shared/data"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"Data directory {str(path)!r} does not exist (from --data-dir or ${DATA_ENV})")
    return path


_RECORDERS: list[list[Path]] = []


@contextlib.contextmanager
def recording():
    """``with recording() as files:`` -- ``files`` lists every data file read inside the block
    (resolved paths, in the order first read)."""
    files: list[Path] = []
    _RECORDERS.append(files)
    try:
        yield files
    finally:
        _RECORDERS.remove(files)


def note_read(path: str | os.PathLike) -> None:
    """Record that ``path`` was read (for `recording()`); `read_data_text()` does it for
    text files, binary readers (Parquet, Arrow) call this."""
    resolved = Path(path).resolve()
    for files in _RECORDERS:
        if resolved not in files:
            files.append(resolved)


def read_data_text(path: str | os.PathLike) -> str:
    """The text of a data file, strictly UTF-8 (a leading BOM is dropped); an undecodable byte
    raises `DataError` naming ``file:line``, the column and the byte."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror})") from None
    note_read(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(f"{path}:{line}: not valid UTF-8: byte 0x{raw[err.start]:02x} at column "
                        f"{column} (data files must be UTF-8; convert it, e.g. with iconv)") from None
    return text[1:] if text.startswith("\ufeff") else text


_GLUED = re.compile(r"^(.*[.?!\"')])([A-Za-z][A-Za-z0-9_-]*)$")


def csv_records(path: Path, *, delimiter: str = ",", quoting: int = csv.QUOTE_MINIMAL,
                multiline: bool = False):
    """``(line number, fields)`` of every record of a delimited text file, strictly: a malformed
    quote raises `DataError` naming ``file:line`` (every file is read as strict UTF-8 by
    `read_data_text()`).  A quoted field may hold newlines only with ``multiline`` (the
    user's own files, where review texts have them; in the staged files a field over lines is an
    unterminated quote).  Fields of any size are read."""
    reader = csv.reader(io.StringIO(read_data_text(path), newline=""), delimiter=delimiter,
                        quoting=quoting, strict=True)
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # the module's default refuses a field over 128 KiB
    try:
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise DataError(f"{path}:{start}: malformed CSV ({err}); an unterminated "
                                "quote?") from None
            if not multiline and reader.line_num != start and any("\n" in f or "\r" in f
                                                                  for f in fields):
                raise DataError(f"{path}:{start}: unterminated quote: the field runs over lines "
                                f"{start}-{reader.line_num}")
            yield start, fields
    finally:
        csv.field_size_limit(limit)


def _rows(task: Task, path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of every data row, strictly: an unterminated quote (CSV), a
    wrong number of fields, or a file without data rows raises `DataError` naming
    ``file:line``."""
    if task.ext == "csv":
        records = csv_records(path)
    else:
        records = csv_records(path, delimiter="\t", quoting=csv.QUOTE_NONE)
    lo, hi = task.columns
    rows = []
    for start, fields in records:
        if task.header and start == 1:
            continue
        if not fields or all(not f for f in fields):
            continue
        if task.name == "cola" and len(fields) == 7:
            # Two rows glued together: "...sentence.<source>\t<label>\t<mark>\t<sentence>"
            m = _GLUED.match(fields[3])
            if m is None:
                raise DataError(f"{path}:{start}: malformed CoLA row with 7 fields: {fields!r}")
            rows.append((start, fields[:3] + [m.group(1)]))
            rows.append((start, [m.group(2)] + fields[4:]))
            continue
        if not lo <= len(fields) <= hi:
            expected = str(lo) if lo == hi else f"{lo}-{hi}"
            raise DataError(f"{path}:{start}: malformed row for task {task.name!r}: "
                            f"{len(fields)} fields (expected {expected})")
        rows.append((start, fields))
    if not rows:
        raise DataError(f"{path}: no data rows (the file is empty or holds only a header)")
    return rows


def _examples(task: Task, path: Path) -> list[Example]:
    if not path.is_file():
        raise DataError(f"Missing data file {str(path)!r} for task {task.name!r}")
    out = []
    for lineno, fields in _rows(task, path):
        try:
            a, b, raw = task.row(fields)
        except IndexError:
            raise DataError(
                f"{path}:{lineno}: malformed row for task {task.name!r}: {len(fields)} fields"
            ) from None
        raw = raw.strip()
        if task.labels_from is not None:
            _check_label_fields(task, path, lineno, fields)
        if task.is_regression:
            try:
                label: int | float = float(raw)
            except ValueError:
                raise DataError(f"{path}:{lineno}: score {raw!r} is not a number") from None
        else:
            if raw not in task.labels:
                raise DataError(
                    f"{path}:{lineno}: label {raw!r} is not one of {list(task.labels)} "
                    f"(task {task.name!r})"
                )
            label = task.labels.index(raw)
        out.append(Example(a.strip(), b.strip() if b is not None else None, label,
                           f"{path}:{lineno}"))
    return out


def _check_label_fields(task: Task, path: Path, lineno: int, fields: list[str]) -> None:
    last = len(fields) - 1
    for i in range(task.labels_from, len(fields)):
        value = fields[i].strip()
        if value in task.labels or (value == "" and i < last):
            continue
        what = "the gold label" if i == last else "an annotator label (or empty)"
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise DataError(f"{path}:{lineno}: field {i + 1} of {len(fields)} is {shown!r} where "
                        f"{what} belongs, one of {list(task.labels)}: a tab inside a sentence?")


def check_classes(path: str | os.PathLike, labels, task: str | None = None) -> None:
    """A classification train split needs at least two classes (else `DataError`); the one
    statement of it, for the staged tasks and your own data (``task`` None)."""
    present = sorted(set(labels), key=str)
    if len(present) < 2:
        of = f" of task {task!r}" if task else ""
        raise DataError(f"{path}: the train split{of} holds only class "
                        f"{present[0] if present else None!r} ({len(labels)} examples); a "
                        "classification task needs at least two classes")


def _check_size(path: Path, examples: list, expected: int, what: str) -> None:
    if len(examples) != expected:
        raise DataError(f"{path}: {len(examples)} examples, but the {what} holds {expected} "
                        "(SOURCES.md): a truncated or altered file?")


def fewshot_dir(task: Task, data_dir: Path, seed: int) -> Path:
    return data_dir / task.folder / "k-shot-1k-test" / task.fewshot_dir / f"512-{seed}"


def split_path(task: str | Task, split: str, *, data_dir: str | os.PathLike | None = None,
               seed: int = 13, setting: str = "fewshot") -> Path:
    """The file `load_split()` reads ``split`` from (for messages; the full-GLUE train and
    dev both come from ``glue/train.tsv``, MRPC's from ``msr_paraphrase_train.txt``)."""
    task = TASKS[task] if isinstance(task, str) else task
    root = resolve_data_dir(data_dir)
    if setting == "fewshot":
        name = {"train": "train", "dev": task.dev_file, "test": task.test_file}[split]
        return fewshot_dir(task, root, seed) / f"{name}.{task.ext}"
    glue = root / task.folder / "glue"
    if split == "test":
        return glue / f"{task.glue_test}.tsv"
    return glue / ("msr_paraphrase_train.txt" if task.name == "mrpc" else "train.tsv")


def load_split(
    task: str | Task,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 13,
    setting: str = "fewshot",
) -> list[Example]:
    """Load ``split`` (``train``/``dev``/``test``) of ``task``.

    ``setting="fewshot"`` reads the MeZO k=512 split of ``seed``; ``"full"`` the GLUE training set
    (dev held out from train with ``seed``, GLUE dev as test).
    """
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"Invalid task: {task!r} (expected one of {sorted(TASKS)})")
        task = TASKS[task]
    if split not in SPLITS:
        raise ValueError(f"Invalid split: {split!r} (expected one of {SPLITS})")
    root = resolve_data_dir(data_dir)
    if setting == "fewshot":
        if seed not in SEEDS:
            raise ValueError(f"Invalid seed: {seed!r} (the k-shot splits exist for {SEEDS})")
        folder = fewshot_dir(task, root, seed)
        if not folder.is_dir():
            raise DataError(
                f"Missing few-shot folder {str(folder)!r} for task {task.name!r}: expected "
                f"<data-dir>/{task.folder}/k-shot-1k-test/{task.fewshot_dir}/512-{seed}/"
            )
        name = {"train": "train", "dev": task.dev_file, "test": task.test_file}[split]
        path = folder / f"{name}.{task.ext}"
        examples = _examples(task, path)
        if task.sizes is not None:
            _check_size(path, examples, task.sizes[SPLITS.index(split)], "k=512 split")
        return examples
    if setting == "full":
        if not task.glue:
            raise ValueError(
                f"Invalid setting: 'full' for task {task.name!r} (full training data is staged "
                f"only for {sorted(t for t, v in TASKS.items() if v.glue)})"
            )
        glue = root / task.folder / "glue"
        if split == "test":
            test = glue / f"{task.glue_test}.tsv"
            examples = _examples(task, test)
            if task.glue_sizes is not None:
                _check_size(test, examples, task.glue_sizes[1], "GLUE dev set")
            return examples
        train = _full_train(task, glue)
        if task.glue_sizes is not None:
            _check_size(glue / "train.tsv", train, task.glue_sizes[0], "GLUE training set")
        rng = random.Random(seed)
        order = list(range(len(train)))
        rng.shuffle(order)
        n_dev = min(1000, len(train) // 10)
        keep = order[:n_dev] if split == "dev" else order[n_dev:]
        return [train[i] for i in sorted(keep)]
    raise ValueError(f"Invalid setting: {setting!r} (expected 'fewshot' or 'full')")


def _full_train(task: Task, glue: Path) -> list[Example]:
    if task.name != "mrpc":
        return _examples(task, glue / "train.tsv")
    # GLUE's MRPC train = msr_paraphrase_train.txt minus the pairs in dev_ids.tsv (3,668 rows).
    dev_ids = set()
    for line in read_data_text(glue / "dev_ids.tsv").splitlines():
        parts = line.strip().split("\t")
        if len(parts) >= 2:
            dev_ids.add((parts[0], parts[1]))
    examples = []
    for lineno, fields in _rows(task, glue / "msr_paraphrase_train.txt"):
        if (fields[1], fields[2]) in dev_ids:
            continue
        if fields[0] not in task.labels:
            raise DataError(f"{glue / 'msr_paraphrase_train.txt'}:{lineno}: bad label {fields[0]!r}")
        examples.append(Example(fields[3].strip(), fields[4].strip(), task.labels.index(fields[0])))
    return examples


def subset(items: list, n: int, *, seed: int = 0, labels: list | None = None) -> list:
    """At most ``n`` of ``items`` (0: all), drawn with ``random.Random(seed)``.

    With ``labels`` (class ids, one per item) the draw is stratified: each class keeps its share
    of ``n`` (largest remainders), so a split sorted by label still gives every class, in
    proportion; the result keeps the file order.  Float labels (regression) and ``labels=None``
    give ``random.Random(seed).sample(items, n)`` (a uniform draw, in draw order).
    """
    if n < 0:
        raise ValueError(f"Invalid subset size: {n} (expected >= 0; 0 keeps all)")
    if not n or n >= len(items):
        return list(items)
    rng = random.Random(seed)
    if labels is None or any(isinstance(y, float) for y in labels):
        return rng.sample(items, n)
    groups: dict = {}
    for i, y in enumerate(labels):
        groups.setdefault(y, []).append(i)
    keys = sorted(groups)
    exact = {k: n * len(groups[k]) / len(items) for k in keys}
    quota = {k: int(exact[k]) for k in keys}
    for k in sorted(keys, key=lambda k: (quota[k] - exact[k], k))[: n - sum(quota.values())]:
        quota[k] += 1
    chosen = [i for k in keys for i in rng.sample(groups[k], quota[k])]
    return [items[i] for i in sorted(chosen)]
