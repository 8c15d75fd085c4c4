"""The prompt templates and verbalizers of ``--head prompt`` (torch-free: configs check them).

Built in: MeZO's ``medium_models/run_fewshot.sh`` (princeton-nlp/MeZO) for the few-shot tasks,
copied verbatim in LM-BFF notation; see
[`lorabar.harness.tasks.mlm_prompt`][lorabar.harness.tasks.mlm_prompt] for the notation.
STS-B has none there (LM-BFF treats it as regression between two words), so it is not offered.
"""

from __future__ import annotations

import string

__all__ = ["MEZO_TEMPLATES", "PLACEHOLDERS", "check_template", "parse_verbalizer"]

PLACEHOLDERS = ("text", "text_pair", "mask")

# task -> (template, {raw label: word}), verbatim from MeZO's medium_models/run_fewshot.sh
MEZO_TEMPLATES: dict[str, tuple[str, dict[str, str]]] = {
    "sst2": ("*cls**sent_0*_It_was*mask*.*sep+*", {"0": "terrible", "1": "great"}),
    "sst5": (
        "*cls**sent_0*_It_was*mask*.*sep+*",
        {"0": "terrible", "1": "bad", "2": "okay", "3": "good", "4": "great"},
    ),
    "qqp": ("*cls**sent_0**mask*,*+sentl_1**sep+*", {"0": "No", "1": "Yes"}),
    "qnli": (
        "*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
        {"not_entailment": "No", "entailment": "Yes"},
    ),
    "mnli": (
        "*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
        {"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"},
    ),
    "snli": (
        "*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
        {"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"},
    ),
    "trec": (
        "*cls**mask*:*+sent_0**sep+*",
        {
            "0": "Description",
            "1": "Entity",
            "2": "Expression",
            "3": "Human",
            "4": "Location",
            "5": "Number",
        },
    ),
    "cola": ("*cls**sent_0*_This_is*mask*.*sep+*", {"0": "incorrect", "1": "correct"}),
    "mrpc": ("*cls**sent_0**mask*,*+sentl_1**sep+*", {"0": "No", "1": "Yes"}),
    "rte": (
        "*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
        {"not_entailment": "No", "entailment": "Yes"},
    ),
}


def parse_verbalizer(text: str) -> dict[str, str]:
    """``"0=terrible,1=great"`` -> ``{"0": "terrible", "1": "great"}``; a label named twice, or
    one word given to two labels, is refused."""
    out: dict[str, str] = {}
    for item in text.split(","):
        label, sep, word = item.partition("=")
        if not sep or not label.strip() or not word.strip():
            raise ValueError(
                f"Invalid --verbalizer: {text!r} (expected label=word pairs "
                "separated by commas, e.g. 0=terrible,1=great)"
            )
        label, word = label.strip(), word.strip()
        if label in out:
            raise ValueError(
                f"Invalid --verbalizer: label {label!r} is named twice "
                f"({out[label]!r} and {word!r}); give each label one word"
            )
        if word in out.values():
            raise ValueError(f"Invalid --verbalizer: the word {word!r} is given to two labels")
        out[label] = word
    return out


def template_fields(template: str) -> list[str]:
    """The placeholders of a ``{...}`` template, in order (``{{``/``}}`` are literal braces);
    a conversion or format spec (``{text!r}``, ``{text:>3}``) is refused: the template is not
    Python formatting, and such a placeholder never received the text."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(
            f"Invalid --template: {template!r}: {err} (write a literal brace as {{{{ or }}}})"
        ) from None
    for _, name, spec, conv in parsed:
        if name is not None and (spec or conv):
            raise ValueError(
                f"Invalid --template: {template!r} writes {{{name}"
                f"{'!' + conv if conv else ''}{':' + spec if spec else ''}}}; "
                "placeholders are bare: {text}, {text_pair}, {mask}"
            )
    return [name for _, name, _, _ in parsed if name is not None]


def check_template(template: str, *, pair: bool) -> None:
    """A ``{...}`` template of your own: exactly one ``{mask}``, ``{text}`` present,
    ``{text_pair}`` present if and only if the examples are pairs (``pair``), no other
    placeholder.  (LM-BFF templates, the built-in ones, are checked when they are rendered.)"""
    names = template_fields(template)
    unknown = sorted({n for n in names if n not in PLACEHOLDERS})
    if unknown:
        raise ValueError(
            f"Invalid --template: unknown placeholder(s) {unknown} in {template!r} "
            "(expected {text}, {text_pair} and {mask})"
        )
    if names.count("mask") != 1:
        raise ValueError(
            f"Invalid --template: {template!r} has {names.count('mask')} {{mask}} "
            "(expected exactly one)"
        )
    if names.count("text") != 1:
        raise ValueError(
            f"Invalid --template: {template!r} has {names.count('text')} {{text}} "
            "(expected exactly one: the example's text)"
        )
    if pair and names.count("text_pair") != 1:
        raise ValueError(
            f"Invalid --template: {template!r} has no {{text_pair}} but the "
            "examples are pairs (--text-pair-column or a pair task); add it once"
        )
    if not pair and "text_pair" in names:
        raise ValueError(
            f"Invalid --template: {template!r} reads {{text_pair}} but the examples "
            "have one text (give --text-pair-column)"
        )
