"""Whether a model can be loaded here without a download: built in, a local folder, or a hub id
whose files are already in the Hugging Face cache (checked before a comparison runs)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUILTIN_MODELS", "check_model_available"]

BUILTIN_MODELS = ("minilm", "smollm2", "tiny", "tiny-mlm")


def check_model_available(model: str) -> None:
    """Raise ``ValueError`` (one line, before anything runs) unless ``model`` is built in, a local
    folder, or a hub id whose files are in the Hugging Face cache (nothing is downloaded)."""
    if model in BUILTIN_MODELS or Path(model).expanduser().is_dir():
        return
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except Exception:  # noqa: BLE001 - an id the hub library refuses is not available either
        cached = None
    if not isinstance(cached, str):
        raise ValueError(
            f"Invalid model: {model!r} is not a local folder and not in the Hugging "
            "Face cache, and nothing is downloaded here; fetch it on a connected "
            f"machine (huggingface-cli download {model}) or pass --model PATH"
        )
