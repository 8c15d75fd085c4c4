"""ReCoRD and SQuAD for causal LMs (paper Table 3; MeZO's tasks and templates).

Neither is staged in this project's data folder; a GPU user has them from the Hugging Face hub.
The readers take, in this order:

1. a local copy under ``<data-dir>/squad/`` or ``<data-dir>/record/``, either in the hub's row
   format (JSON lines, one example per line, as ``Dataset.to_json`` writes) or in the dataset's
   official format (SQuAD v1.1's ``{"data": [...]}`` JSON; SuperGLUE ReCoRD's JSON lines with
   ``passage.entities`` spans and ``qas``).  File names: ``train.json[l]`` and
   ``validation.json[l]`` (also the official ``train-v1.1.json`` / ``dev-v1.1.json``, ReCoRD's
   ``val.jsonl``);
2. otherwise the hub (``rajpurkar/squad``; ``aps/super_glue``, config ``record``), whose cached
   Arrow files are recorded as the run's data files (their SHA-256 is in the run's identity).

Splits, as MeZO samples them: ``train`` and ``dev`` both come from the dataset's training set,
disjoint (``dev`` is a fixed pool of 1000 examples of a seed-0 shuffle, ``train`` the rest; the
harness then draws ``n_train`` / ``n_dev`` from them), ``test`` is the validation set.

Templates (MeZO ``templates.py``): ReCoRD (``ReCoRDTemplateGPT3``): the passage with each
``"@highlight\\n"`` replaced by ``"- "``, then ``"\\n-"``; the candidates are ``" " + query`` with
``@placeholder`` replaced by each entity; every answer entity counts as correct.  SQuAD:
``"Title: {title}\\nContext: {context}\\nQuestion: {question}\\nAnswer:"`` -> ``" {answer}\\n"``,
scored by token F1 (the official SQuAD v1.1 normalization; the best over the gold answers).
"""

from __future__ import annotations

import collections
import json
import random
import re
import string
from dataclasses import dataclass
from pathlib import Path

from .data_folder import DataError, note_read, read_data_text, resolve_data_dir
from .jsonl import jsonl_rows

__all__ = [
    "DEV_POOL",
    "QAExample",
    "exact_match",
    "load_qa_rows",
    "record_example",
    "squad_f1",
    "squad_prompt",
]

DEV_POOL = 1000
HUB = {"squad": ("rajpurkar/squad", None), "record": ("aps/super_glue", "record")}
FILES = {
    "train": ("train.jsonl", "train.json", "train-v1.1.json"),
    "validation": ("validation.jsonl", "validation.json", "dev-v1.1.json", "val.jsonl"),
}


@dataclass(frozen=True)
class QAExample:
    """A SQuAD question: the answer texts in the dataset's order (the first is trained on)."""

    title: str
    context: str
    question: str
    answers: tuple[str, ...]


def squad_prompt(e: QAExample) -> str:
    """MeZO's SQuAD prompt; the model continues it with ``" {answer}\\n"``."""
    return f"Title: {e.title}\nContext: {e.context}\nQuestion: {e.question.strip()}\nAnswer:"


def record_example(row: dict):
    """A hub-format ReCoRD row as a `PromptExample` (the
    first answer entity is the training label; ``correct`` lists every answer entity)."""
    from .lm_prompt_tasks import PromptExample

    passage = row["passage"].replace("@highlight\n", "- ")
    entities = list(row["entities"])
    correct = tuple(i for i, e in enumerate(entities) if e in set(row["answers"]))
    if not correct:
        raise ValueError("no answer is among the entities")
    candidates = tuple(" " + row["query"].replace("@placeholder", e) for e in entities)
    return PromptExample(f"{passage}\n-", candidates, correct[0], correct)


# ----------------------------------------------------------------------------- metrics
def _normalize(text: str) -> str:
    """SQuAD v1.1's answer normalization: lower case, no punctuation, no articles, one space."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _f1(prediction: str, gold: str) -> float:
    pred, ref = _normalize(prediction).split(), _normalize(gold).split()
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if not pred or not ref:
        return float(pred == ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, answers: tuple[str, ...] | list[str]) -> float:
    """Token F1 of ``prediction`` against the best of ``answers`` (SQuAD v1.1's evaluate)."""
    return max(_f1(prediction, a) for a in answers)


def exact_match(prediction: str, answers: tuple[str, ...] | list[str]) -> float:
    """1.0 if ``prediction`` equals an answer after normalization."""
    return float(any(_normalize(prediction) == _normalize(a) for a in answers))


# ----------------------------------------------------------------------------- readers
def _official_squad(data: dict) -> list[dict]:
    rows = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                rows.append(
                    {
                        "id": qa["id"],
                        "title": article["title"],
                        "context": para["context"],
                        "question": qa["question"],
                        "answers": {"text": [a["text"] for a in qa["answers"]]},
                    }
                )
    return rows


def _official_record(row: dict) -> list[dict]:
    text = row["passage"]["text"]
    entities = sorted({text[e["start"] : e["end"] + 1] for e in row["passage"]["entities"]})
    return [
        {
            "passage": text,
            "query": qa["query"],
            "entities": entities,
            "answers": sorted({a["text"] for a in qa["answers"]}),
        }
        for qa in row["qas"]
    ]


def _check_row(task: str, row: dict) -> dict:
    """The fields the task reads, type-checked (``ValueError`` says which is wrong)."""
    if task == "squad":
        answers = row["answers"]["text"] if isinstance(row.get("answers"), dict) else None
        fields = {k: row.get(k) for k in ("title", "context", "question")}
        if any(not isinstance(v, str) for v in fields.values()):
            raise ValueError("title, context and question must be strings")
        if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            raise ValueError("answers.text must list at least one non-empty answer")
        return QAExample(answers=tuple(answers), **fields)
    if not isinstance(row.get("passage"), str) or not isinstance(row.get("query"), str):
        raise ValueError("passage and query must be strings")
    if "@placeholder" not in row["query"]:
        raise ValueError("the query has no @placeholder")
    if not row.get("entities") or not all(isinstance(e, str) for e in row["entities"]):
        raise ValueError("entities must list at least one string")
    if not isinstance(row.get("answers"), list):
        raise ValueError("answers must be a list of strings")
    return record_example(row)


def _parse(task: str, path: Path) -> list:
    text = read_data_text(path)
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and "data" in whole and task == "squad":
        try:
            lines = [(f"{path} (question {r['id']!r})", r) for r in _official_squad(whole)]
        except (KeyError, TypeError) as err:
            raise DataError(f"{path}: not SQuAD's official format (missing {err})") from None
    else:
        lines = []
        for n, row in jsonl_rows(text, path):
            official = task == "record" and isinstance(row.get("passage"), dict)
            try:
                rows = _official_record(row) if official else [row]
            except (KeyError, TypeError, AttributeError) as err:
                raise DataError(f"{path}:{n}: not a {task} example (missing {err})") from None
            lines += [(f"{path}:{n}", r) for r in rows]
    out = []
    for where, row in lines:
        try:
            out.append(_check_row(task, row))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise DataError(f"{where}: not a {task} example ({err})") from None
    if not out:
        raise DataError(f"{path}: no examples (the file is empty)")
    return out


def _hub(task: str, part: str, local: Path) -> list:
    name, config = HUB[task]
    try:
        import datasets

        ds = datasets.load_dataset(name, config, split=part)
    except Exception as err:  # noqa: BLE001 -- offline, missing package, unknown name: one message
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(
            f"{task}: no local copy ({local}/{{{','.join(FILES[part])}}}) and the "
            f"hub dataset {name!r} could not be loaded ({first})"
        ) from None
    for f in ds.cache_files:
        note_read(f["filename"])
    out = []
    for n, row in enumerate(ds, start=1):
        try:
            out.append(_check_row(task, dict(row)))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise DataError(f"{name}[{part}] row {n}: not a {task} example ({err})") from None
    return out


def load_qa_rows(task: str, split: str, data_dir=None) -> list:
    """``train`` / ``dev`` / ``test`` of ``task`` (``"squad"``: `QAExample`;
    ``"record"``: rendered ``PromptExample``) -- see the module docstring for where from."""
    if task not in HUB:
        raise ValueError(f"Invalid task: {task!r} (expected one of {sorted(HUB)})")
    if split not in ("train", "dev", "test"):
        raise ValueError(f"Invalid split: {split!r} (expected 'train', 'dev' or 'test')")
    part = "validation" if split == "test" else "train"
    try:
        local = resolve_data_dir(data_dir) / task
    except FileNotFoundError:
        local = Path(f"<data-dir>/{task}")
    found = [local / f for f in FILES[part] if (local / f).is_file()]
    if len(found) > 1:
        raise DataError(
            f"{task}: several {part} files in {local} ({[p.name for p in found]}); keep one"
        )
    rows = _parse(task, found[0]) if found else _hub(task, part, local)
    if split == "test":
        return rows
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    pool = min(DEV_POOL, len(rows) // 2)
    keep = sorted(order[:pool]) if split == "dev" else sorted(order[pool:])
    return [rows[i] for i in keep]
