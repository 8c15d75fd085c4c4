"""The prompt templates and verbalizers of ``--head prompt`` (torch-free: configs check them).

Built in: MeZO's ``medium_models/run_fewshot.sh`` (princeton-nlp/MeZO) for the few-shot tasks,
copied verbatim in LM-BFF notation; see :mod:`lorabar.experiments.prompt` for the notation.
STS-B has none there (LM-BFF treats it as regression between two words), so it is not offered.
"""

from __future__ import annotations

__all__ = ["MEZO_TEMPLATES", "parse_verbalizer"]

# task -> (template, {raw label: word}), verbatim from MeZO's medium_models/run_fewshot.sh
MEZO_TEMPLATES: dict[str, tuple[str, dict[str, str]]] = {
    "sst2": ("*cls**sent_0*_It_was*mask*.*sep+*", {"0": "terrible", "1": "great"}),
    "sst5": ("*cls**sent_0*_It_was*mask*.*sep+*",
             {"0": "terrible", "1": "bad", "2": "okay", "3": "good", "4": "great"}),
    "qqp": ("*cls**sent_0**mask*,*+sentl_1**sep+*", {"0": "No", "1": "Yes"}),
    "qnli": ("*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
             {"not_entailment": "No", "entailment": "Yes"}),
    "mnli": ("*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
             {"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"}),
    "snli": ("*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
             {"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"}),
    "trec": ("*cls**mask*:*+sent_0**sep+*",
             {"0": "Description", "1": "Entity", "2": "Expression", "3": "Human", "4": "Location",
              "5": "Number"}),
    "cola": ("*cls**sent_0*_This_is*mask*.*sep+*", {"0": "incorrect", "1": "correct"}),
    "mrpc": ("*cls**sent_0**mask*,*+sentl_1**sep+*", {"0": "No", "1": "Yes"}),
    "rte": ("*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
            {"not_entailment": "No", "entailment": "Yes"}),
}


def parse_verbalizer(text: str) -> dict[str, str]:
    """``"0=terrible,1=great"`` -> ``{"0": "terrible", "1": "great"}``."""
    out = {}
    for item in text.split(","):
        label, sep, word = item.partition("=")
        if not sep or not label.strip() or not word.strip():
            raise ValueError(f"Invalid verbalizer: {text!r} (expected label=word pairs "
                             "separated by commas, e.g. 0=terrible,1=great)")
        out[label.strip()] = word.strip()
    return out


