"""`lorabar bench`: configs, the four architectures built from configs, the interleaved timer,
BAR's own cost, the markdown/JSON output."""

from __future__ import annotations

import json

import pytest

from lorabar.apps.bench import ARCHS, BenchConfig, bar_cost, build_bench_model, markdown, run_bench

TINY = dict(
    layers=2, hidden=32, heads=4, ffn=64, vocab=97, batch_size=2, seq_len=8, repeats=2, warmup=1
)


def test_config_validation():
    with pytest.raises(ValueError, match="Invalid arch: 'opt-7b'"):
        BenchConfig(arch="opt-7b")
    with pytest.raises(
        ValueError,
        match="Invalid methods: \\['adam'\\] \\(expected some of "
        "\\('lora', 'sam', 'obar', 'nbar', 'sbar'",
    ):
        BenchConfig(methods=("adam",))
    with pytest.raises(ValueError, match="Invalid precisions: \\['fp8'\\]"):
        BenchConfig(precisions=("fp8",))
    with pytest.raises(ValueError, match="hidden 30 is not divisible by 4 heads"):
        BenchConfig(hidden=30, heads=4)
    with pytest.raises(ValueError, match="Invalid repeats: 0"):
        BenchConfig(repeats=0)


def test_every_architecture_is_covered_below():
    assert set(ARCHS) == {"opt-1.3b", "roberta-large", "gpt2-medium", "smollm2-135m"}


def test_paper_sizes_are_the_defaults():
    s = BenchConfig(arch="opt-1.3b").sizes()
    assert s == dict(hidden=2048, layers=24, heads=32, ffn=8192, vocab=50272)
    assert BenchConfig(arch="opt-1.3b", layers=2).sizes()["layers"] == 2


@pytest.mark.parametrize(
    "arch, pairs_per_layer",
    [("opt-1.3b", 2), ("roberta-large", 2), ("gpt2-medium", 1), ("smollm2-135m", 2)],
)
def test_architectures_built_from_config(arch, pairs_per_layer):
    import lorabar

    model, kind = build_bench_model(BenchConfig(arch=arch, **TINY))
    assert len(lorabar.find_lora_pairs(model)) == 2 * pairs_per_layer
    assert kind == ("classifier" if arch == "roberta-large" else "causal")
    conf = model.base_model.model.config
    assert conf.vocab_size == 97 and conf.num_hidden_layers == 2


def _fake_clock(durations: list[float]):
    """A timer whose k-th timed interval (start, end call pairs) lasts ``durations[k]``."""
    values, now = [], 100.0
    for d in durations:
        values += [now, now + d]
        now += d + 1.0
    it = iter(values)
    return lambda: next(it)


def test_run_bench_times_every_cell_interleaved():
    cfg = BenchConfig(
        arch="gpt2-medium",
        methods=("lora", "nbar", "sam"),
        precisions=("fp32", "fp16"),
        **{**TINY, "repeats": 3},
    )
    cells = [(m, p) for p in cfg.precisions for m in cfg.methods]
    # round r, cell c lasts (c + 1) * (1, 2, 10)[r]: with round-robin timing every cell's median
    # is its round-2 value; timing one cell's repeats back to back would give other medians
    durations = [(c + 1) * (1.0, 2.0, 10.0)[r] for r in range(3) for c in range(len(cells))]
    rec = run_bench(cfg, clock=_fake_clock(durations))
    assert [(r["method"], r["precision"]) for r in rec["rows"]] == cells
    for c, row in enumerate(rec["rows"]):
        assert row["times_s"] == [(c + 1) * 1.0, (c + 1) * 2.0, (c + 1) * 10.0]
        assert row["median_s"] == 2.0 * (c + 1)
        lora = cells.index(("lora", row["precision"]))
        assert row["ratio_to_lora"] == pytest.approx((c + 1) / (lora + 1))
    assert set(rec["fp16_final_scale"]) == {"lora/fp16", "nbar/fp16", "sam/fp16"}
    text = markdown(rec)
    assert "| fp16 | sam | 12.0000 | 1.500 |" in text
    # the paper's comparison: SAM fp32 (cell 2) / LoRA fp16 (cell 3) = 6 / 8
    assert "SAM fp32 / LoRA fp16 = 0.75x" in text and "gpt2-medium" in text


def test_bench_steps_through_the_method_registry(monkeypatch):
    """bench times the engine's steppers: one per (method, precision) cell, over one model."""
    import lorabar.apps.bench as bench
    from lorabar.harness.run import methods

    built = []
    real = methods.make_stepper

    def spy(ctx):
        built.append((ctx.config.method, ctx.runtime.precision))
        return real(ctx)

    monkeypatch.setattr(bench, "make_stepper", spy)
    run_bench(
        BenchConfig(
            arch="opt-1.3b",
            methods=("lora", "obar"),
            precisions=("fp32", "fp16"),
            **{**TINY, "repeats": 1},
        )
    )
    assert built == [("lora", "fp32"), ("obar", "fp32"), ("lora", "fp16"), ("obar", "fp16")]
    built.clear()  # the beyond-the-paper methods are cells too
    rec = run_bench(
        BenchConfig(
            arch="opt-1.3b",
            methods=("lora", "sbar", "loraplus", "flatlora"),
            precisions=("fp32",),
            **{**TINY, "repeats": 1},
        )
    )
    assert built == [(m, "fp32") for m in ("lora", "sbar", "loraplus", "flatlora")]
    assert all(r["median_s"] > 0 for r in rec["rows"])


def test_bar_cost_rows():
    # every timed call lasts exactly 2 microseconds on the fake clock
    n_calls = 2 * (3 * 3) * 2  # per pair count: (norm + 2 modes) x 3 repeats, start and end
    rows = bar_cost([2, 8], dim=16, rank=2, repeats=3, clock=_fake_clock([2e-6] * n_calls))
    assert [(r.pairs, r.mode) for r in rows] == [(2, "nbar"), (2, "obar"), (8, "nbar"), (8, "obar")]
    for r in rows:
        assert r.bar_us == pytest.approx(2.0) and r.foreach_norm_us == pytest.approx(2.0)
        assert r.us_per_pair == pytest.approx(2.0 / r.pairs)
    assert "| 8 | obar | 2.0 | 0.25 | 2.0 |" in markdown(
        {
            "config": BenchConfig(**TINY).__dict__,
            "sizes": {"hidden": 32, "layers": 2, "heads": 4, "ffn": 64, "vocab": 97},
            "device": "cpu",
            "total_params": 1,
            "lora_pairs": 4,
            "trainable_params": 8,
            "rows": [],
        },
        rows,
    )


def test_cli_bench_writes_json_and_markdown(tmp_path, capsys):
    from lorabar.cli import main

    args = [
        "bench",
        "--arch",
        "opt-1.3b",
        "--layers",
        "1",
        "--hidden",
        "32",
        "--heads",
        "4",
        "--ffn",
        "64",
        "--vocab",
        "50",
        "--batch-size",
        "2",
        "--seq-len",
        "8",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--precisions",
        "fp32,fp16",
        "--bar-pairs",
        "2",
        "--quiet",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    rec = json.loads((tmp_path / "bench_opt-1.3b_cpu.json").read_text())
    assert rec["sizes"]["hidden"] == 32 and len(rec["rows"]) == 8
    assert rec["bar_cost"][0]["pairs"] == 2 and "git_revision" in json.dumps(rec["environment"])
    md = (tmp_path / "bench_opt-1.3b_cpu.md").read_text()
    assert "SAM fp32 / LoRA fp16" in md
    assert md in capsys.readouterr().out
