"""WebNLG 2017 (paper Table 5): parse the official XML, linearize triples, score BLEU.

Files: ``<data-dir>/webnlg2017/webnlg_challenge_2017/{train,dev}/<k>triples/*.xml`` and
``test/testdata_with_lex.xml`` (every test input with all its references).  A test input is
*seen* when its category occurs in the training data (971 inputs) and *unseen* otherwise (891).
Inputs are linearized as ``subject : property : object`` triples joined by `` | `` with
underscores turned into spaces, the format of the LoRA / prefix-tuning GPT-2 NLG pipelines.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .data_folder import DataError, read_data_text, resolve_data_dir

__all__ = ["WebNLGEntry", "bleu", "linearize", "load_webnlg"]

ROOT = Path("webnlg2017") / "webnlg_challenge_2017"


@dataclass(frozen=True)
class WebNLGEntry:
    eid: str
    category: str
    triples: tuple[tuple[str, str, str], ...]
    references: tuple[str, ...]
    seen: bool | None = None  # test only: category present in train


def _parse(path: Path) -> list[WebNLGEntry]:
    text = read_data_text(path)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise DataError(f"{path}: malformed XML ({err})") from None
    out = []
    for entry in root.iter("entry"):
        triples = []
        for t in entry.iter("mtriple"):
            parts = [p.strip() for p in (t.text or "").split("|")]
            if len(parts) != 3:
                raise DataError(f"{path}: entry {entry.get('eid')}: bad triple {t.text!r}")
            triples.append(tuple(parts))
        refs = tuple(
            (lex.text or "").strip() for lex in entry.iter("lex") if (lex.text or "").strip()
        )
        out.append(
            WebNLGEntry(entry.get("eid", ""), entry.get("category", ""), tuple(triples), refs)
        )
    return out


def load_webnlg(split: str, *, data_dir=None) -> list[WebNLGEntry]:
    """``split`` in ``train``, ``dev``, ``test`` (test entries carry ``seen``)."""
    root = resolve_data_dir(data_dir) / ROOT
    if split in ("train", "dev"):
        folder = root / split
        files = sorted(folder.glob("*triples/*.xml"))
        if not files:
            raise DataError(
                f"Missing WebNLG {split} files under {str(folder)!r} (<k>triples/*.xml)"
            )
        return [e for f in files for e in _parse(f)]
    if split == "test":
        path = root / "test" / "testdata_with_lex.xml"
        if not path.is_file():
            raise DataError(f"Missing WebNLG test file {str(path)!r}")
        seen_categories = {e.category for e in load_webnlg("train", data_dir=data_dir)}
        return [
            WebNLGEntry(e.eid, e.category, e.triples, e.references, e.category in seen_categories)
            for e in _parse(path)
        ]
    raise ValueError(f"Invalid split: {split!r} (expected 'train', 'dev' or 'test')")


def linearize(entry: WebNLGEntry) -> str:
    return " | ".join(
        " : ".join(part.replace("_", " ").strip('"') for part in t) for t in entry.triples
    )


def bleu(hypotheses: list[str], references: list[tuple[str, ...]]) -> float:
    """Corpus BLEU (sacrebleu, default 13a tokenization) against all references of each input."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} inputs")
    width = max(len(r) for r in references)
    streams = [[r[i] if i < len(r) else None for r in references] for i in range(width)]
    return float(sacrebleu.corpus_bleu(hypotheses, streams).score)
