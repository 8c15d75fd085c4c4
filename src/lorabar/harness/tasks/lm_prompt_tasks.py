"""Prompt-based few-shot tasks for causal LMs (paper Table 3; MeZO's OPT templates).

Each task renders an example into a *context* and a list of *candidate* completions; the model
scores a candidate by the mean log-probability of its tokens given the context, predicts the best
one, and is trained "as classification": cross-entropy over the candidates' scores (MeZO
``--train_as_classification``).  Templates (from MeZO's ``templates.py`` as described in its
paper and ``../shared/FEWSHOT_PROTOCOL.md``):

    SST-2: "{sentence} It was"                          -> " terrible" | " great"
    RTE:   "{premise}\\nDoes this mean that \\"{hypothesis}\\" is true? Yes or No?\\n"
                                                         -> "Yes" | "No"   (0 = entailment = Yes)
    CB:    "Suppose {premise} Can we infer that \\"{hypothesis}\\"? Yes, No, or Maybe?\\n"
                                                         -> "Yes" | "No" | "Maybe"
    COPA:  "{premise without final period} so|because"  -> " {choice1}" | " {choice2}"
           (effect -> "so", cause -> "because"; a choice's first word is lower-cased unless "I")

    ReCoRD: "{passage, @highlight -> '- '}\\n-"        -> " {query, @placeholder -> entity}" for
           each entity (any answer entity is correct; `lorabar.harness.tasks.qa_data`)

Data: SST-2 and RTE from the MeZO k-shot splits (`lorabar.harness.tasks.data_folder`); CB and COPA
from ``<data-dir>/{cb,copa}/FewGLUE_32dev/`` (32 train, 32 dev32, and the full SuperGLUE
validation set used as test).
"""

from __future__ import annotations

from dataclasses import dataclass

from .data_folder import DataError, load_split, read_data_text, resolve_data_dir
from .jsonl import jsonl_rows

__all__ = ["PROMPT_TASKS", "PromptExample", "load_prompt_split", "render_prompt"]

PROMPT_TASKS = ("sst2", "rte", "cb", "copa", "synthetic")  # + "record" (qa_data)
SYNTHETIC_SIZES = {"train": 256, "dev": 64, "test": 128}
CB_LABELS = ("entailment", "contradiction", "neutral")


@dataclass(frozen=True)
class PromptExample:
    """A context, its candidate completions and the index of the correct one (``label``, the
    training target); ``correct``: every correct index where there are several (ReCoRD's
    answer entities; empty: ``label`` alone)."""

    context: str
    candidates: tuple[str, ...]
    label: int
    correct: tuple[int, ...] = ()

    def is_correct(self, prediction: int) -> bool:
        return prediction in (self.correct or (self.label,))


def _lower_first(text: str) -> str:
    word, _, rest = text.partition(" ")
    return text if word == "I" else word[:1].lower() + word[1:] + ((" " + rest) if rest else "")


def render_prompt(task: str, fields: dict) -> PromptExample:
    """Render one raw example (a dict of the dataset's fields) with the task's template."""
    if task == "sst2":
        return PromptExample(
            f"{fields['sentence']} It was", (" terrible", " great"), fields["label"]
        )
    if task == "rte":
        ctx = (
            f'{fields["premise"]}\nDoes this mean that "{fields["hypothesis"]}" is true? '
            "Yes or No?\n"
        )
        return PromptExample(ctx, ("Yes", "No"), fields["label"])
    if task == "cb":
        ctx = (
            f'Suppose {fields["premise"]} Can we infer that "{fields["hypothesis"]}"? '
            "Yes, No, or Maybe?\n"
        )
        return PromptExample(ctx, ("Yes", "No", "Maybe"), fields["label"])
    if task == "copa":
        premise = fields["premise"].rstrip()
        premise = premise[:-1] if premise.endswith(".") else premise
        joiner = "so" if fields["question"] == "effect" else "because"
        choices = tuple(" " + _lower_first(fields[k]) for k in ("choice1", "choice2"))
        return PromptExample(f"{premise} {joiner}", choices, fields["label"])
    raise ValueError(f"Invalid task: {task!r} (expected one of {PROMPT_TASKS})")


def _jsonl(path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"Missing data file {str(path)!r}")
    rows = [row for _, row in jsonl_rows(read_data_text(path), path)]
    if not rows:
        raise DataError(f"{path}: no examples (the file is empty)")
    return rows


def synthetic_split(split: str, seed: int = 13) -> list[PromptExample]:
    """A generated copy task that needs no data: the context repeats one letter of ``"ab"`` with
    a random length and filler, the candidates are ``" a"`` and ``" b"``, the label is the
    letter (so chance is 50%).  For checking that a model learns through the harness.
    """
    if split not in SYNTHETIC_SIZES:
        raise ValueError(f"Invalid split: {split!r} (expected 'train', 'dev' or 'test')")
    import random

    rng = random.Random(f"synthetic/{split}/{seed if split == 'train' else 0}")
    out = []
    for _ in range(SYNTHETIC_SIZES[split]):
        label = rng.randrange(2)
        letter = "ab"[label]
        filler = "".join(rng.choice("xyz") for _ in range(rng.randrange(1, 4)))
        out.append(
            PromptExample(
                f"{filler} {letter * rng.randrange(3, 7)} {filler} =", (" a", " b"), label
            )
        )
    return out


def load_prompt_split(
    task: str, split: str, *, data_dir=None, seed: int = 13
) -> list[PromptExample]:
    """``train`` / ``dev`` / ``test`` of a prompt task, rendered."""
    if task == "synthetic":
        return synthetic_split(split, seed)
    if task in ("sst2", "rte"):
        out = []
        for e in load_split(task, split, data_dir=data_dir, seed=seed):
            fields = (
                {"sentence": e.text_a}
                if task == "sst2"
                else {"premise": e.text_a, "hypothesis": e.text_b}
            )
            out.append(render_prompt(task, {**fields, "label": int(e.label)}))
        return out
    if task in ("cb", "copa"):
        file = {"train": "train.jsonl", "dev": "dev32.jsonl", "test": "val.jsonl"}.get(split)
        if file is None:
            raise ValueError(f"Invalid split: {split!r} (expected 'train', 'dev' or 'test')")
        rows = _jsonl(resolve_data_dir(data_dir) / task / "FewGLUE_32dev" / file)
        out = []
        for r in rows:
            if task == "cb":
                r = {**r, "label": CB_LABELS.index(r["label"])}
            out.append(render_prompt(task, r))
        return out
    raise ValueError(f"Invalid task: {task!r} (expected one of {PROMPT_TASKS})")
