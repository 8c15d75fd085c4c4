import pytest
import torch
from torch import nn

import lorabar
from conftest import SimpleNet


def test_factor_pair_validation():
    a, b = torch.zeros(4, 6), torch.zeros(5, 4)
    pair = lorabar.FactorPair(x=a, y=b, name="l0")
    assert pair.tensors == (a, b)
    with pytest.raises(TypeError, match=r"Invalid x: expected a torch.Tensor, got list"):
        lorabar.FactorPair(x=[1.0], y=b)
    with pytest.raises(ValueError, match=r"mismatched ranks, x.shape\[0\]=4 but y.shape\[1\]=3"):
        lorabar.FactorPair(x=a, y=torch.zeros(5, 3), name="bad")
    with pytest.raises(ValueError, match=r"x and y are the same tensor"):
        lorabar.FactorPair(x=a, y=a)
    with pytest.raises(TypeError, match=r"Invalid name: ''"):
        lorabar.FactorPair(x=a, y=b, name="")
    # Vectors (the paper's toy problems) have no rank dimension to check.
    lorabar.FactorPair(x=torch.zeros(3), y=torch.zeros(5))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        return self.lin(self.conv(x).mean((2, 3)))


def test_discovery_linear_embedding_two_adapters_dora():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(SimpleNet(), LoraConfig(r=4, target_modules=["emb", "lin"]))
    model.add_adapter("dora", LoraConfig(r=2, target_modules=["lin"], use_dora=True))
    # Only the active adapter is trainable.
    names = [p.name for p in lorabar.find_lora_pairs(model)]
    assert names == ["base_model.model.emb[default]", "base_model.model.lin[default]"]
    model.base_model.set_adapter(["default", "dora"])
    pairs = lorabar.find_lora_pairs(model)
    assert [p.name for p in pairs] == [
        "base_model.model.emb[default]",
        "base_model.model.lin[default]",
        "base_model.model.lin[dora]",
    ]
    lin = model.base_model.model.lin
    emb = model.base_model.model.emb
    assert pairs[0].x is emb.lora_embedding_A["default"]
    assert pairs[0].y is emb.lora_embedding_B["default"]
    assert pairs[1].x is lin.lora_A["default"].weight and pairs[1].y is lin.lora_B["default"].weight
    assert pairs[2].x is lin.lora_A["dora"].weight and pairs[2].adapter == "dora"
    magnitude = lin.lora_magnitude_vector["dora"].weight
    assert magnitude.requires_grad
    assert all(magnitude is not t for p in pairs for t in p.tensors)
    assert [p.name for p in lorabar.find_lora_pairs(model, adapters=["dora"])] == [
        "base_model.model.lin[dora]"
    ]
    # Deterministic: a second model built the same way (other weights) gives the same names in
    # the same order, and its pairs are its own tensors.
    torch.manual_seed(1)
    other = get_peft_model(SimpleNet(), LoraConfig(r=4, target_modules=["emb", "lin"]))
    other.add_adapter("dora", LoraConfig(r=2, target_modules=["lin"], use_dora=True))
    other.base_model.set_adapter(["default", "dora"])
    again = lorabar.find_lora_pairs(other)
    assert [p.name for p in again] == [p.name for p in pairs]
    mine = {id(t) for t in other.parameters()}
    assert all(id(t) in mine for p in again for t in p.tensors)
    assert not torch.equal(again[1].x, pairs[1].x)


def test_discovery_conv():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(ConvNet(), LoraConfig(r=2, target_modules=["conv"]))
    (pair,) = lorabar.find_lora_pairs(model)
    assert pair.x.shape == (2, 2, 3, 3) and pair.y.shape == (4, 2, 1, 1)


def test_no_pairs_message():
    with pytest.raises(
        ValueError,
        match=r"No trainable LoRA factor pairs found in SimpleNet: "
        r"searched 0 peft LoraLayer.*lorabar.FactorPair\(x=\.\.\., y=\.\.\., "
        r"name=\.\.\.\)",
    ):
        lorabar.find_lora_pairs(SimpleNet())


def test_no_name_matching():
    """A plain module whose parameters are *named* like LoRA factors is not a pair."""

    class Impostor(nn.Module):
        def __init__(self):
            super().__init__()
            self.lora_A = nn.ModuleDict({"default": nn.Linear(3, 2)})
            self.lora_B = nn.ModuleDict({"default": nn.Linear(2, 3)})

    with pytest.raises(ValueError, match="searched 0 peft LoraLayer"):
        lorabar.find_lora_pairs(Impostor())


def test_frozen_adapter_skipped(peft_model):
    for p in peft_model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match=r"searched 2 peft LoraLayer modules"):
        lorabar.find_lora_pairs(peft_model)


def test_model_type_error():
    with pytest.raises(TypeError, match=r"Invalid model: expected a torch.nn.Module, got dict"):
        lorabar.find_lora_pairs({})
