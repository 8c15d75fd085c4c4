"""``lorabar bench``'s architectures and choices (torch-free: ``--help`` lists them)."""

from __future__ import annotations

__all__ = ["ARCHS", "AVAILABLE", "BENCH_METHODS", "BENCH_PRECISIONS"]

from ..harness.run.registry import PAPER_METHODS

BENCH_METHODS = PAPER_METHODS  # the default: the paper's Tables 2, 7, 9
AVAILABLE = BENCH_METHODS + ("sbar", "loraplus", "flatlora")  # --methods may add these
BENCH_PRECISIONS = ("fp32", "bf16", "fp16")

# name -> (family, paper-size config, LoRA targets)
ARCHS: dict[str, tuple[str, dict[str, int], list[str]]] = {
    "opt-1.3b": (
        "opt",
        dict(hidden=2048, layers=24, heads=32, ffn=8192, vocab=50272),
        ["q_proj", "v_proj"],
    ),
    "roberta-large": (
        "roberta",
        dict(hidden=1024, layers=24, heads=16, ffn=4096, vocab=50265),
        ["query", "value"],
    ),
    "gpt2-medium": (
        "gpt2",
        dict(hidden=1024, layers=24, heads=16, ffn=4096, vocab=50257),
        ["c_attn"],
    ),
    "smollm2-135m": (
        "llama",
        dict(hidden=576, layers=30, heads=9, ffn=1536, vocab=49152),
        ["q_proj", "v_proj"],
    ),
}
