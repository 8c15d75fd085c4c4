"""Prompt heads for masked LMs (``--head prompt``): the paper's Table 1 protocol.

The input is rendered into a template with one mask token; the class scores are the pretrained
MLM head's logits of the verbalizer words at the mask, so only the LoRA factors adapt (the paper
finetunes RoBERTa-large this way, after LM-BFF / MeZO).

Built-in templates and verbalizers: MeZO's ``medium_models/run_fewshot.sh`` for the few-shot
tasks, copied verbatim in LM-BFF notation (``*cls*``, ``*mask*``, ``*sep+*``; ``*sent_0*`` the
first text, ``*sent-_0*`` it without its last token, ``*+sentl_1*`` the second text with its first
letter lower-cased and a leading space; other parts are literal text with ``_`` for a space).
Verbalizer words are encoded with a leading space and must be single tokens.  A template of your
own: ``--template "{text} It was {mask} ."`` (``{text_pair}`` for pairs) and
``--verbalizer "0=terrible,1=great"`` (label=word; labels as in the data).

``model="tiny-mlm"``: a random-init 2-layer RoBERTa masked LM from a config, with a word-level
hashing tokenizer (`TinyTokenizer`), for tests.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .mlm_templates import MEZO_TEMPLATES, parse_verbalizer

__all__ = [
    "MEZO_TEMPLATES",
    "PromptClassifier",
    "PromptEncoder",
    "TinyTokenizer",
    "build_prompt_model",
    "parse_verbalizer",
]


class TinyTokenizer:
    """Word-level hashing for ``tiny-mlm``: ids 0 pad, 1 ``<s>``, 2 ``</s>``, 3 ``<mask>``, words
    ``4 + hash % (vocab - 4)`` (a fixed hash, the same in every process)."""

    pad_token_id, cls_token_id, sep_token_id, mask_token_id = 0, 1, 2, 3
    mask_token = "<mask>"

    def __init__(self, vocab: int = 1000) -> None:
        self.vocab = vocab
        # what its output depends on (this module's code is part of the token cache's key)
        self.fingerprint = f"TinyTokenizer(vocab={vocab})"

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids = []
        for word in re.findall(r"<mask>|\w+|[^\w\s]", text):
            if word == self.mask_token:
                ids.append(self.mask_token_id)
            else:
                ids.append(4 + (sum(ord(c) * 31**i for i, c in enumerate(word)) % (self.vocab - 4)))
        return [self.cls_token_id, *ids, self.sep_token_id] if add_special_tokens else ids


class PromptEncoder:
    """Renders examples into a template and finds the mask; maps labels to verbalizer tokens."""

    def __init__(
        self,
        tokenizer,
        template: str,
        verbalizer: dict[str, str],
        labels: tuple[str, ...],
        max_length: int,
    ) -> None:
        self.tok, self.template, self.max_length = tokenizer, template, max_length
        missing = [label for label in labels if label not in verbalizer]
        extra = sorted(label for label in verbalizer if label not in labels)
        if missing or extra:
            raise ValueError(
                f"Invalid --verbalizer: it must name every label exactly once; "
                f"labels {list(labels)}, "
                + (f"no word for {missing}" if missing else f"unknown labels {extra}")
            )
        self.label_ids = []
        for label in labels:
            ids = tokenizer.encode(" " + verbalizer[label], add_special_tokens=False)
            if len(ids) != 1:
                raise ValueError(
                    f"Invalid --verbalizer: {verbalizer[label]!r} is {len(ids)} "
                    "tokens for this tokenizer (a label word must be one token)"
                )
            self.label_ids.append(ids[0])
        if len(set(self.label_ids)) != len(self.label_ids):
            raise ValueError(f"Invalid verbalizer: two label words share a token ({verbalizer})")

    def _segments(self, a: str, b: str | None) -> list[tuple[bool, list[int]]]:
        """The rendered input as ``(is the user's text, token ids)`` segments, in order."""
        if "{" in self.template:  # your own template: {text}, {text_pair}, {mask}
            return self._own_segments(a, b)
        tok, out = self.tok, []
        for part in self.template.split("*"):
            if not part:
                continue
            if part == "cls":
                out.append((False, [tok.cls_token_id]))
            elif part == "mask":
                out.append((False, [tok.mask_token_id]))
            elif part in ("sep", "sep+"):
                out.append((False, [tok.sep_token_id]))
            elif re.fullmatch(r"\+?sent(-|l)?_[01]", part):
                text = a if part.endswith("0") else b
                if text is None:
                    raise ValueError(
                        f"Invalid template: {self.template!r} reads a second text, "
                        "but the task has one"
                    )
                if "l_" in part:
                    text = text[:1].lower() + text[1:]
                if part.startswith("+"):
                    text = " " + text
                enc = tok.encode(text, add_special_tokens=False)
                out.append((True, enc[:-1] if "-_" in part else enc))
            else:
                out.append((False, tok.encode(part.replace("_", " "), add_special_tokens=False)))
        return out

    def _own_segments(self, a: str, b: str | None) -> list[tuple[bool, list[int]]]:
        import string

        tok = self.tok
        out: list[tuple[bool, list[int]]] = [(False, [tok.cls_token_id])]
        for literal, name, _, _ in string.Formatter().parse(self.template):
            if literal:
                out.append((False, tok.encode(literal, add_special_tokens=False)))
            if name == "mask":
                out.append((False, [tok.mask_token_id]))
            elif name in ("text", "text_pair"):
                text = a if name == "text" else b
                out.append((True, tok.encode(text or "", add_special_tokens=False)))
        return out + [(False, [tok.sep_token_id])]

    def encode_all(self, examples: list) -> list[dict]:
        """`encode()` of every example (``text_a``, ``text_b``); an example whose text holds
        the mask token itself is refused at its ``file:line`` (the template is not at fault)."""
        from .data_folder import DataError

        mask = self.tok.mask_token
        for i, e in enumerate(examples, start=1):
            for text in (e.text_a, e.text_b or ""):
                if mask and mask in text:
                    where = getattr(e, "where", "") or f"example {i} of the split"
                    raise DataError(
                        f"{where}: the text holds the mask token {mask!r} "
                        f"({text[:60]!r}); a prompt has one mask, the template's: "
                        "remove it from the data"
                    )
        return [self.encode(e.text_a, e.text_b) for e in examples]

    def _rendered(self, a: str, b: str | None) -> str:
        """The template with the texts and the mask token in, read by the one parser every
        path uses (``{{``/``}}`` are literal braces, a literal ``{{mask}}`` is text)."""
        import string

        values = {"mask": self.tok.mask_token, "text": a, "text_pair": b or ""}
        return "".join(
            literal + (values[name] if name is not None else "")
            for literal, name, _, _ in string.Formatter().parse(self.template)
        )

    def encode(self, a: str, b: str | None) -> dict:
        """Token ids and the mask's position.  An input over ``max_length`` loses the end of the
        user's text (the longest text first), never a word of the template or the mask; a
        template that does not fit alone is refused (``ValueError`` naming both lengths)."""
        if "{" in self.template:  # the whole string, as the tokenizer reads it (spaces, BPE)
            ids = self.tok.encode(self._rendered(a, b), add_special_tokens=True)
            if len(ids) > self.max_length:
                ids = self._truncated(self._segments(a, b))
        else:
            segments = self._segments(a, b)
            ids = [t for _, part in segments for t in part]
            if len(ids) > self.max_length:
                ids = self._truncated(segments)
        if ids.count(self.tok.mask_token_id) != 1:
            raise ValueError(
                f"Invalid template: {self.template!r} gives "
                f"{ids.count(self.tok.mask_token_id)} mask tokens (expected one)"
            )
        return {"input_ids": ids, "mask_pos": ids.index(self.tok.mask_token_id)}

    def _truncated(self, segments: list[tuple[bool, list[int]]]) -> list[int]:
        fixed = sum(len(p) for is_text, p in segments if not is_text)
        if fixed >= self.max_length:
            raise ValueError(
                f"Invalid --max-length: {self.max_length} tokens, but the template "
                f"{self.template!r} alone takes {fixed}; raise --max-length or "
                "shorten the template"
            )
        texts = [list(p) for is_text, p in segments if is_text]
        over = fixed + sum(map(len, texts)) - self.max_length
        while over > 0:  # one token at a time from the end of the longest text
            longest = max(range(len(texts)), key=lambda i: len(texts[i]))
            texts[longest].pop()
            over -= 1
        it = iter(texts)
        return [t for is_text, p in segments for t in (next(it) if is_text else p)]


class PromptClassifier(nn.Module):
    """A masked LM whose class scores are its MLM logits of the label words at the mask."""

    def __init__(self, mlm: nn.Module, label_ids: list[int]) -> None:
        super().__init__()
        self.mlm = mlm
        self.register_buffer("label_ids", torch.tensor(label_ids), persistent=False)
        self.num_labels = len(label_ids)

    def forward(self, input_ids, attention_mask, mask_pos, labels=None, **_):
        from transformers.modeling_outputs import SequenceClassifierOutput

        hidden = self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits
        at_mask = hidden[torch.arange(hidden.shape[0], device=hidden.device), mask_pos]
        logits = at_mask[:, self.label_ids].float()
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _tiny_mlm():
    from transformers import RobertaConfig, RobertaForMaskedLM

    cfg = RobertaConfig(
        vocab_size=1000,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=260,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        type_vocab_size=1,
    )
    return RobertaForMaskedLM(cfg), TinyTokenizer(cfg.vocab_size)


def build_prompt_model(
    model: str, *, lora_r: int, lora_alpha: int, targets: list[str], adapters: bool = True
):
    """``(masked LM, tokenizer)`` with LoRA on ``targets``; refuses a model without a pretrained
    MLM head (its words' logits would be random)."""
    if model == "tiny-mlm":
        mlm, tok = _tiny_mlm()
    else:
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        from ..models.encoder_model import resolve_model_path

        path = resolve_model_path(model)
        mlm, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
        fresh = [
            k
            for k in info.get("missing_keys", [])
            if "lm_head" in k or "cls." in k or "predictions" in k
        ]
        if fresh:
            raise ValueError(
                f"Invalid --head prompt: {model!r} has no pretrained MLM head "
                f"({len(fresh)} head weights would be random, e.g. {fresh[0]!r}); "
                "use a masked LM (e.g. roberta-large) or --head probe"
            )
        tok = AutoTokenizer.from_pretrained(path)
        if tok.mask_token_id is None:
            raise ValueError(f"Invalid --head prompt: {model!r}'s tokenizer has no mask token")
    if not adapters:
        return mlm, tok
    from peft import LoraConfig, get_peft_model

    return get_peft_model(
        mlm, LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=targets)
    ), tok
