"""Starting the LoRA factors from a saved adapter (Hu et al.'s MNLI start for RTE, MRPC, STS-B):
the factors load exactly, the head starts fresh, a different adapter is refused, and the
adapter is part of the run's identity and of its plan's inputs."""

from __future__ import annotations

import pytest
import torch

from lorabar.cli import main
from lorabar.harness.run.config import EncoderConfig
from lorabar.harness.run.identity import run_identity
from lorabar.harness.models.encoder_model import build_model, load_init
from lorabar.harness.plan.inputs import run_inputs
from conftest import DATA


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    folder = tmp_path_factory.mktemp("init") / "mnli-lora"
    assert (
        main(
            [
                "finetune",
                "--model",
                "tiny",
                "--task",
                "mnli",
                "--steps",
                "2",
                "--head",
                "linear",
                "--max-eval",
                "8",
                "--data-dir",
                str(DATA),
                "--quiet",
                "--lr",
                "1e-2",
                "--precision",
                "fp32",
                "--out",
                str(folder.parent / "mnli.json"),
                "--save-adapter",
                str(folder),
            ]
        )
        == 0
    )
    return folder


def lora_state(model) -> dict:
    from peft import get_peft_model_state_dict

    return {k: v.clone() for k, v in get_peft_model_state_dict(model).items() if "head" not in k}


@pytest.mark.data
def test_factors_load_exactly_and_the_head_stays_fresh(adapter):
    from safetensors.torch import load_file

    saved = load_file(str(adapter / "lorabar" / "adapter_model.safetensors"))  # the whole model's
    torch.manual_seed(0)
    model, _ = build_model("tiny", 2, method="lora", train_head=True)  # RTE: 2 labels, MNLI 3
    head = model.get_base_model().head.weight.detach().clone()
    before = lora_state(model)
    assert load_init(model, str(adapter)) == len(before) == 8  # 2 layers x (q, v) x (A, B)
    after = lora_state(model)
    for key, value in after.items():
        assert torch.equal(value, saved[key])
    moved_b = [k for k in after if k.endswith("lora_B.weight")]  # B starts at 0: trained, moved
    assert len(moved_b) == 4 and all(not torch.equal(after[k], before[k]) for k in moved_b)
    assert torch.equal(model.get_base_model().head.weight, head)


@pytest.mark.data
def test_a_peft_folder_keyed_to_the_encoder_starts_a_run_too(adapter, tmp_path):
    """DIR itself (the encoder's PEFT folder) and what inspect --rebalance writes from it load
    into the model's own keys; a rebalanced start is the same product of factors."""
    from safetensors.torch import load_file

    assert main(["inspect", str(adapter), "--rebalance", str(tmp_path / "reb")]) == 0
    saved = load_file(str(tmp_path / "reb" / "adapter_model.safetensors"))
    model, _ = build_model("tiny", 2, method="lora", train_head=True)
    assert load_init(model, str(tmp_path / "reb")) == 8
    for key, value in lora_state(model).items():
        assert torch.equal(value, saved[key.replace("model.encoder.", "model.", 1)])


@pytest.mark.data
def test_another_rank_or_targets_is_refused(adapter):
    model, _ = build_model("tiny", 2, method="lora", lora_r=4)
    with pytest.raises(ValueError, match="holds other LoRA layers than this run's"):
        load_init(model, str(adapter))
    model, _ = build_model("tiny", 2, method="lora", targets="all")
    with pytest.raises(ValueError, match="holds other LoRA layers"):
        load_init(model, str(adapter))
    with pytest.raises(ValueError, match="is not an adapter folder saved by --save-adapter"):
        load_init(model, str(adapter.parent))


@pytest.mark.data
def test_the_adapter_is_in_the_identity_and_the_plan(adapter, tmp_path):
    cfg = EncoderConfig(
        task="rte", model="tiny", head="linear", data_dir=str(DATA), init_adapter=str(adapter)
    )
    ident = run_identity(cfg, device="cpu", precision="fp32", threads=1)
    plain = run_identity(
        EncoderConfig(task="rte", model="tiny", head="linear", data_dir=str(DATA)),
        device="cpu",
        precision="fp32",
        threads=1,
    )
    assert "init_adapter" not in ident["config"] and len(ident["init"]) == 64
    assert "init" not in plain and {k: v for k, v in ident.items() if k != "init"} == plain
    assert ("--init-adapter", str(adapter)) in [(i.flag, str(i.path)) for i in run_inputs(cfg)]
    missing = EncoderConfig(
        task="rte", model="tiny", data_dir=str(DATA), init_adapter=str(tmp_path / "nope")
    )
    with pytest.raises(ValueError, match="Invalid --init-adapter: .* is not a folder"):
        run_identity(missing, device="cpu", precision="fp32", threads=1)


def test_an_init_adapter_needs_a_lora_method():
    with pytest.raises(ValueError, match="Invalid init_adapter: method 'full' trains no LoRA"):
        EncoderConfig(task="rte", model="tiny", method="full", init_adapter="x")
    with pytest.raises(ValueError, match="Invalid init_adapter: --head prompt"):
        EncoderConfig(task="rte", model="tiny-mlm", head="prompt", init_adapter="x")


@pytest.mark.data
def test_a_run_from_the_adapter_trains(adapter, tmp_path):
    out = tmp_path / "rte.json"
    assert (
        main(
            [
                "finetune",
                "--model",
                "tiny",
                "--task",
                "rte",
                "--steps",
                "2",
                "--head",
                "linear",
                "--max-eval",
                "8",
                "--data-dir",
                str(DATA),
                "--quiet",
                "--precision",
                "fp32",
                "--init-adapter",
                str(adapter),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    import json

    record = json.loads(out.read_text())
    assert record["identity"]["init"] and record["config"]["init_adapter"] == str(adapter)
