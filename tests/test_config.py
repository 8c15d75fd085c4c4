"""Run configs (lorabar.harness.run.config): validation with the flag in the message, and the run
key
that follows the method registry."""

from __future__ import annotations

import pytest

from lorabar.harness.run.config import EncoderConfig as RunConfig


def test_run_config_validation():
    from lorabar.harness.run.config import LMConfig, config_from

    with pytest.raises(ValueError, match=r"Invalid method: 'adam'"):
        RunConfig(method="adam")
    with pytest.raises(
        ValueError,
        match=r"Invalid method: 'zeroshot' on an encoder evaluates "
        r"the probe head alone; it needs --head probe",
    ):
        RunConfig(method="zeroshot", head="linear")
    with pytest.raises(ValueError, match=r"Invalid head: 'mlp' \(--head expects"):
        RunConfig(head="mlp")
    with pytest.raises(ValueError, match=r"Invalid label_noise: 1.5 \(--label-noise expects"):
        RunConfig(label_noise=1.5)
    with pytest.raises(ValueError, match=r"Invalid label_noise: task 'stsb' is a regression"):
        RunConfig(task="stsb", label_noise=0.1)
    with pytest.raises(ValueError, match=r"Invalid method: 'full'"):
        LMConfig(method="full")
    with pytest.raises(ValueError, match=r"Invalid task: 'imdb'"):
        RunConfig(task="imdb")
    with pytest.raises(ValueError, match=r"Invalid mu0: 2000.0 \(mu0 \* lr = 2 must be < 1\)"):
        RunConfig(method="nbar", mu0=2000.0, lr=1e-3)
    with pytest.raises(ValueError, match=r"Invalid mu0: 2000.0 \(mu0 \* lr = 2 must be < 1\)"):
        LMConfig(method="obar", mu0=2000.0, lr=1e-3)  # one rule, stated once, for every kind
    with pytest.raises(ValueError, match=r"Invalid lr: -1 \(--lr expects a finite number >= 0\)"):
        RunConfig(lr=-1)
    with pytest.raises(ValueError, match=r"Invalid steps: -2 \(--steps expects an integer >= 1\)"):
        LMConfig(steps=-2)
    with pytest.raises(ValueError, match=r"Invalid batch_size: 0 \(--batch-size expects"):
        LMConfig(batch_size=0)
    with pytest.raises(
        ValueError, match=r"Invalid max_eval: -5 \(--max-eval expects an integer >= 0"
    ):
        RunConfig(max_eval=-5)
    with pytest.raises(ValueError, match=r"Invalid lora_r: 0 \(--lora-r expects"):
        RunConfig(lora_r=0)
    with pytest.raises(ValueError, match=r"Invalid device: 'gpu' \(expected auto \| cpu"):
        RunConfig(device="gpu")
    with pytest.raises(ValueError, match=r"Invalid precision: 'fp8'"):
        RunConfig(precision="fp8")
    with pytest.raises(TypeError, match=r"use EncoderConfig or LMConfig"):
        from lorabar.harness.run.config import RunConfig as Shared

        Shared()
    # the 0.1 spelling bf16 = true was removed in 0.2 (README "Changes"); it says what replaced it
    with pytest.raises(
        ValueError,
        match=r"'bf16' was removed in lorabar 0.2; write "
        r"precision = \"bf16\"",
    ):
        config_from({"bf16": True})


def test_run_keys_follow_the_method_registry():
    from lorabar.harness.run.config import LMConfig

    lora = RunConfig(method="lora", rho=0.3, mu0=7.0)
    assert not {"rho", "mu0", "schedule", "device", "threads", "data_dir"} & set(lora.key())
    assert lora.key() == RunConfig(method="lora", device="cpu", threads=3).key()
    assert RunConfig(method="sam", rho=0.3).key()["rho"] == 0.3
    assert RunConfig(method="obar", mu0=7.0).key()["mu0"] == 7.0
    # causal-LM runs too (they used to keep rho/mu0 for lora, so equal runs hashed apart)
    assert LMConfig(method="lora", rho=0.3).key() == LMConfig(method="lora").key()
    zs = LMConfig(method="zeroshot", lr=0.5, steps=7).key()
    assert zs == LMConfig(method="zeroshot").key() and "lr" not in zs
    # the requested precision is not the identity; the resolved one is (tests/test_identity.py)
    assert RunConfig(precision="bf16").key() == RunConfig(precision="auto").key()
    assert RunConfig(eval_batch_size=8).key() != RunConfig(eval_batch_size=64).key()
