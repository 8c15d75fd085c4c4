"""The engine (lorabar.harness.run.engine): one run from a config to a record, through the CLI too;
precisions; real MiniLM runs; every registry method in the harness."""

from __future__ import annotations

import json

import pytest

from lorabar.cli import main
from lorabar.harness.run.config import EncoderConfig as RunConfig
from lorabar.harness.run.engine import RECORD_KEYS, run


RESULT_KEYS = set(RECORD_KEYS)


@pytest.mark.data
def test_tiny_run_and_cli(tmp_path, data_dir):
    out = tmp_path / "run.json"
    assert (
        main(
            [
                "finetune",
                "--task",
                "rte",
                "--method",
                "nbar",
                "--model",
                "tiny",
                "--steps",
                "4",
                "--mu0",
                "50",
                "--data-dir",
                data_dir,
                "--max-eval",
                "32",
                "--log-every",
                "2",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert RESULT_KEYS <= set(result)
    assert result["balancedness"]["steps"] == [0, 2, 3]
    assert len(result["balancedness"]["abs_B"][0]) == result["train"]["lora_pairs"] == 4
    import torch

    assert result["environment"]["versions"]["torch"] == torch.__version__  # what ran, not a pin
    assert result["runtime"]["device"] == "cpu"
    assert result["runtime"]["precision"] in ("fp32", "bf16")
    assert 0 <= result["metrics"]["test"]["accuracy"] <= 1
    # --max-eval: a seeded, class-stratified subset (the dev file is sorted by label)
    assert result["train"]["n_dev"] == result["train"]["n_test"] == 32
    assert result["majority_class"]["dev"]["accuracy"] == pytest.approx(0.5)


@pytest.mark.data
def test_precision_and_fp16_gradscaler_path(data_dir, monkeypatch):
    """fp16 + GradScaler trains on the CPU (torch.amp.GradScaler("cpu")), and auto resolves to
    fp32 on a CPU without native bf16."""
    monkeypatch.setenv("LORABAR_NATIVE_BF16", "0")
    base = dict(task="sst2", model="tiny", steps=3, max_eval=16, data_dir=data_dir, log_every=1)
    auto = run(RunConfig(method="nbar", mu0=50.0, **base), progress=False)
    assert auto["runtime"]["precision"] == "fp32" and not auto["runtime"]["grad_scaler"]
    fp16 = run(RunConfig(method="sam", precision="fp16", **base), progress=False)
    assert fp16["runtime"]["precision"] == "fp16" and fp16["runtime"]["grad_scaler"]
    assert len(fp16["balancedness"]["steps"]) == 3
    # gradient gaps are logged unscaled: the fp32 run's first gap (same init and batch) matches
    fp32 = run(RunConfig(method="sam", precision="fp32", **base), progress=False)
    g16, g32 = fp16["balancedness"]["grad_gap"][0], fp32["balancedness"]["grad_gap"][0]
    assert g16 == pytest.approx(g32, rel=0.05, abs=1e-6)


@pytest.mark.data
@pytest.mark.real
@pytest.mark.parametrize("method", ["lora", "sam", "obar", "nbar"])
def test_real_minilm_8_steps(method, data_dir):
    # one of the four fits the probe head on the real features (it costs a pass over train)
    cfg = RunConfig(
        task="sst2",
        method=method,
        steps=8,
        lr=1e-3,
        mu0=50.0,
        precision="auto",
        data_dir=data_dir,
        max_eval=128,
        log_every=2,
        head="probe" if method == "sam" else "linear",
    )
    result = run(cfg, progress=False)
    assert RESULT_KEYS <= set(result)
    acc = result["metrics"]["test"]["accuracy"]
    assert 0.45 <= acc <= 1.0  # 8 steps: near chance or better, never degenerate
    assert result["train"]["lora_pairs"] == 12 and result["train"]["n_train"] == 1024
    assert result["train"]["n_dev"] == result["train"]["n_test"] == 128
    if method == "sam":  # MiniLM, LoRA r=8 on query/value, probe head: only the factors train
        assert result["train"]["trainable_params"] == result["sam"]["perturbed_params"] == 73728
        assert result["train"]["probe"]["train_accuracy"] > 0.7
    assert result["balancedness"]["mean_abs_B"][0] == pytest.approx(1.333, abs=0.02)
    if method in ("obar", "nbar"):  # mu0 * lr = 0.05 per step: BAR visibly moves |B|
        assert result["final_mean_abs_B"] < 0.95 * result["balancedness"]["mean_abs_B"][0]


@pytest.mark.data
def test_sbar_loraplus_flatlora_in_the_harness(tmp_path, data_dir):
    """The three methods of the beyond-the-paper issue are registry entries: each writes a
    record through the one engine; same seed = same start, so step 0's loss is LoRA's (Flat-LoRA's
    sigma ramps from 0), and each then departs from LoRA in its own way."""
    base = dict(
        task="sst2",
        model="tiny",
        steps=4,
        max_eval=16,
        data_dir=data_dir,
        precision="fp32",
        log_every=1,
        lr=1e-2,
    )
    lora = run(RunConfig(method="lora", **base), progress=False)
    records = {}
    for method, extra in (("sbar", {"rho": 0.5}), ("loraplus", {}), ("flatlora", {"rho": 0.5})):
        out = tmp_path / f"{method}.json"
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**base, **extra}.items()]
        assert main(["finetune", "--method", method, *flags, "--out", str(out), "--quiet"]) == 0
        records[method] = r = json.loads(out.read_text())
        assert RESULT_KEYS <= set(r)
        assert r["train"]["losses"][0] == pytest.approx(lora["train"]["losses"][0])
        if method != "sbar":  # sBAR's rescaling leaves the function (and 4 steps' losses) alone
            assert r["train"]["losses"] != lora["train"]["losses"]
    lora_numel = 2 * 2 * (8 * 32 + 32 * 8)
    assert records["loraplus"]["loraplus"] == {"ratio": 16.0, "lr_B_params": lora_numel // 2}
    assert records["flatlora"]["flatlora"] == {
        "rho": 0.5,
        "layers": 4,
        "perturbed_params": 4 * 32 * 32,
    }
    assert records["sbar"]["config"]["rho"] == 0.5
    # sBAR acts on balancedness, LoRA+ and Flat-LoRA leave it to the optimizer
    assert records["sbar"]["final_mean_abs_B"] != lora["final_mean_abs_B"]
    with pytest.raises(ValueError, match=r"--method sbar needs --rho > 0"):
        RunConfig(method="sbar", rho=0.0, **base)
    with pytest.raises(ValueError, match=r"Invalid loraplus_ratio: 0"):
        RunConfig(method="loraplus", loraplus_ratio=0, **base)
