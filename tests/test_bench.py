"""`lorabar bench`: configs, the four architectures built from configs, the interleaved timer,
BAR's own cost, the markdown/JSON output."""

from __future__ import annotations

import json

import pytest

from lorabar.bench import ARCHS, BenchConfig, bar_cost, build_model, markdown, run_bench

TINY = dict(layers=2, hidden=32, heads=4, ffn=64, vocab=97, batch_size=2, seq_len=8,
            repeats=2, warmup=1)


def test_config_validation():
    with pytest.raises(ValueError, match="Invalid arch: 'opt-7b'"):
        BenchConfig(arch="opt-7b")
    with pytest.raises(ValueError, match="Invalid methods: \\['adam'\\]"):
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


@pytest.mark.parametrize("arch, pairs_per_layer", [("opt-1.3b", 2), ("roberta-large", 2),
                                                   ("gpt2-medium", 1), ("smollm2-135m", 2)])
def test_architectures_built_from_config(arch, pairs_per_layer):
    import lorabar

    model, kind = build_model(BenchConfig(arch=arch, **TINY))
    assert len(lorabar.find_lora_pairs(model)) == 2 * pairs_per_layer
    assert kind == ("classifier" if arch == "roberta-large" else "causal")
    conf = model.base_model.model.config
    assert conf.vocab_size == 97 and conf.num_hidden_layers == 2


def test_run_bench_times_every_cell_interleaved():
    cfg = BenchConfig(arch="gpt2-medium", methods=("lora", "nbar", "sam"),
                      precisions=("fp32", "bf16", "fp16"), **TINY)
    rec = run_bench(cfg)
    cells = [(r["method"], r["precision"]) for r in rec["rows"]]
    assert len(cells) == 9 and len(set(cells)) == 9
    for r in rec["rows"]:
        assert len(r["times_s"]) == 2 and all(t > 0 for t in r["times_s"])
        if r["method"] == "lora":
            assert r["ratio_to_lora"] == 1.0
    assert set(rec["fp16_final_scale"]) == {"lora/fp16", "nbar/fp16", "sam/fp16"}
    text = markdown(rec)
    assert "| fp16 | sam |" in text and "SAM fp32 / LoRA fp16" in text
    assert "gpt2-medium" in text


def test_bar_cost_rows():
    rows = bar_cost([2, 8], dim=16, rank=2, repeats=3)
    assert [(r.pairs, r.mode) for r in rows] == [(2, "nbar"), (2, "obar"), (8, "nbar"), (8, "obar")]
    assert all(r.bar_us > 0 and r.us_per_pair == pytest.approx(r.bar_us / r.pairs) for r in rows)
    assert "| 8 | obar |" in markdown({"config": BenchConfig(**TINY).__dict__, "sizes": {
        "hidden": 32, "layers": 2, "heads": 4, "ffn": 64, "vocab": 97}, "device": "cpu",
        "total_params": 1, "lora_pairs": 4, "trainable_params": 8, "rows": []}, rows)


def test_cli_bench_writes_json_and_markdown(tmp_path, capsys):
    from lorabar.cli import main

    args = ["bench", "--arch", "opt-1.3b", "--layers", "1", "--hidden", "32", "--heads", "4",
            "--ffn", "64", "--vocab", "50", "--batch-size", "2", "--seq-len", "8", "--repeats", "1",
            "--warmup", "0", "--precisions", "fp32,fp16", "--bar-pairs", "2", "--quiet",
            "--out", str(tmp_path)]
    assert main(args) == 0
    rec = json.loads((tmp_path / "bench_opt-1.3b_cpu.json").read_text())
    assert rec["sizes"]["hidden"] == 32 and len(rec["rows"]) == 8
    assert rec["bar_cost"][0]["pairs"] == 2 and "git_revision" in json.dumps(rec["environment"])
    md = (tmp_path / "bench_opt-1.3b_cpu.md").read_text()
    assert "SAM fp32 / LoRA fp16" in md
    assert md in capsys.readouterr().out
