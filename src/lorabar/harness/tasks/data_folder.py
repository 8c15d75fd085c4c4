"""Loading the staged tasks' data from a local data directory (MeZO k-shot splits and full GLUE);
the tasks themselves are the catalogue ([`catalogue`][lorabar.harness.tasks.catalogue]), reading
a file and noting it, [`provenance`][lorabar.harness.tasks.provenance].

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
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
from pathlib import Path

from .catalogue import SEEDS, SPLITS, TASKS, Task
from .example import Example
from .provenance import DATA_ENV, DataError, note_read, read_data_text, recording, resolve_data_dir

# the names below are defined in .catalogue and .provenance; they are re-exported here, where
# the readers have always found them
__all__ = [
    "DATA_ENV",
    "DataError",
    "Example",
    "SEEDS",
    "SPLITS",
    "TASKS",
    "Task",
    "check_classes",
    "csv_records",
    "load_split",
    "note_read",
    "read_data_text",
    "recording",
    "resolve_data_dir",
    "split_path",
    "subset",
]


_GLUED = re.compile(r"^(.*[.?!\"')])([A-Za-z][A-Za-z0-9_-]*)$")


def csv_records(
    path: Path, *, delimiter: str = ",", quoting: int = csv.QUOTE_MINIMAL, multiline: bool = False
):
    """``(line number, fields)`` of every record of a delimited text file, strictly: a malformed
    quote raises `DataError` naming ``file:line`` (every file is read as strict UTF-8 by
    `read_data_text()`).  A quoted field may hold newlines only with ``multiline`` (the
    user's own files, where review texts have them; in the staged files a field over lines is an
    unterminated quote).  Fields of any size are read."""
    reader = csv.reader(
        io.StringIO(read_data_text(path), newline=""),
        delimiter=delimiter,
        quoting=quoting,
        strict=True,
    )
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
                raise DataError(
                    f"{path}:{start}: malformed CSV ({err}); an unterminated quote?"
                ) from None
            if (
                not multiline
                and reader.line_num != start
                and any("\n" in f or "\r" in f for f in fields)
            ):
                raise DataError(
                    f"{path}:{start}: unterminated quote: the field runs over lines "
                    f"{start}-{reader.line_num}"
                )
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
            raise DataError(
                f"{path}:{start}: malformed row for task {task.name!r}: "
                f"{len(fields)} fields (expected {expected})"
            )
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
        out.append(
            Example(a.strip(), b.strip() if b is not None else None, label, f"{path}:{lineno}")
        )
    return out


def _check_label_fields(task: Task, path: Path, lineno: int, fields: list[str]) -> None:
    last = len(fields) - 1
    for i in range(task.labels_from, len(fields)):
        value = fields[i].strip()
        if value in task.labels or (value == "" and i < last):
            continue
        what = "the gold label" if i == last else "an annotator label (or empty)"
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise DataError(
            f"{path}:{lineno}: field {i + 1} of {len(fields)} is {shown!r} where "
            f"{what} belongs, one of {list(task.labels)}: a tab inside a sentence?"
        )


def check_classes(path: str | os.PathLike, labels, task: str | None = None) -> None:
    """A classification train split needs at least two classes (else `DataError`); the one
    statement of it, for the staged tasks and your own data (``task`` None)."""
    present = sorted(set(labels), key=str)
    if len(present) < 2:
        of = f" of task {task!r}" if task else ""
        raise DataError(
            f"{path}: the train split{of} holds only class "
            f"{present[0] if present else None!r} ({len(labels)} examples); a "
            "classification task needs at least two classes"
        )


def _check_size(path: Path, examples: list, expected: int, what: str) -> None:
    if len(examples) != expected:
        raise DataError(
            f"{path}: {len(examples)} examples, but the {what} holds {expected} "
            "(SOURCES.md): a truncated or altered file?"
        )


def fewshot_dir(task: Task, data_dir: Path, seed: int) -> Path:
    return data_dir / task.folder / "k-shot-1k-test" / task.fewshot_dir / f"512-{seed}"


def split_path(
    task: str | Task,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 13,
    setting: str = "fewshot",
) -> Path:
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
            raise DataError(
                f"{glue / 'msr_paraphrase_train.txt'}:{lineno}: bad label {fields[0]!r}"
            )
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
