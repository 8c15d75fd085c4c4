"""`lorabar inspect`: per-layer balancedness of a saved PEFT adapter, read from its files, and
--rebalance, which keeps the model's outputs and balances every pair."""

import json

import pytest
import torch

import lorabar
from lorabar.cli import main
from lorabar.integrations.adapter import inspect_adapter
from conftest import SimpleNet, make_batch, make_peft_model


@pytest.fixture
def saved(tmp_path):
    model = make_peft_model(0, dtype=torch.float32)
    with torch.no_grad():  # make the pairs unequal in a known way
        for i, pair in enumerate(lorabar.find_lora_pairs(model)):
            if not pair.x.any():  # PEFT initializes the Embedding's A to zero
                pair.x.normal_(0.0, 0.5)
            pair.x.mul_(1.0 + i)
            pair.y.mul_(3.0)
    folder = tmp_path / "adapter"
    model.save_pretrained(folder)
    return model, folder


def _fresh_base():
    torch.manual_seed(0)  # make_peft_model(0) built SimpleNet under this seed
    return SimpleNet().float()


def test_reports_B_from_the_saved_factors(saved, tmp_path, capsys):
    model, folder = saved
    want = {
        p.name.removesuffix("[default]"): 0.5 * (p.x.norm().item() ** 2 - p.y.norm().item() ** 2)
        for p in lorabar.find_lora_pairs(model)
    }
    out = tmp_path / "rep.json"
    png = tmp_path / "rep.png"
    assert main(["inspect", str(folder), "--json", str(out), "--png", str(png)]) == 0
    report = json.loads(out.read_text())
    got = {layer["name"]: layer["B"] for layer in report["layers"]}
    assert set(got) == set(want) and len(got) == 2  # the Embedding and the Linear pair
    for name, b in want.items():
        assert got[name] == pytest.approx(b, rel=1e-5)
    bs = [abs(layer["B"]) for layer in report["layers"]]
    assert bs == sorted(bs, reverse=True)  # most unbalanced first
    assert set(report["layers"][0]) == {"name", "norm_A", "norm_B", "B"}
    assert report["r"] == 4 and png.stat().st_size > 5_000
    printed = capsys.readouterr().out
    assert "2 LoRA pairs" in printed and "base_model.model.lin" in printed


def test_rebalance_keeps_outputs_and_balances_every_pair(saved, tmp_path):
    model, folder = saved
    out = tmp_path / "balanced"
    assert main(["inspect", str(folder), "--rebalance", str(out)]) == 0
    rebalanced = inspect_adapter(out)
    assert max(abs(layer["B"]) for layer in rebalanced["layers"]) < 1e-5
    assert min(abs(layer["B"]) for layer in inspect_adapter(folder)["layers"]) > 1.0
    for layer in rebalanced["layers"]:
        assert layer["norm_A"] == pytest.approx(layer["norm_B"], rel=1e-6)
    from peft import PeftModel

    ids, _ = make_batch(3)
    before = PeftModel.from_pretrained(_fresh_base(), folder).eval()(ids)
    after = PeftModel.from_pretrained(_fresh_base(), out).eval()(ids)
    torch.testing.assert_close(before, model.eval()(ids), rtol=0, atol=1e-6)  # the base matches
    torch.testing.assert_close(after, before, rtol=0, atol=1e-4)
    assert (out / "adapter_config.json").read_text() == (folder / "adapter_config.json").read_text()


def test_zero_factor_is_left_alone_and_errors(tmp_path, capsys):
    model = make_peft_model(0, dtype=torch.float32, randomize_b=False)  # B = 0: LoRA's init
    folder = tmp_path / "fresh"
    model.save_pretrained(folder)
    assert main(["inspect", str(folder), "--rebalance", str(tmp_path / "o")]) == 0
    assert "left alone (a zero factor cannot be balanced)" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match=r"has no adapter_config.json"):
        inspect_adapter(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"Invalid ADAPTER: .*missing' does not exist"):
        inspect_adapter(tmp_path / "missing")
    (tmp_path / "weights.bin").write_bytes(b"x")  # a file where a folder is wanted: said so
    with pytest.raises(ValueError, match=r"weights.bin' is a file, not an adapter folder"):
        inspect_adapter(tmp_path / "weights.bin")
    assert main(["inspect", str(folder), "--rebalance", str(folder)]) == 2
    assert "the adapter folder itself" in capsys.readouterr().err


def _rewrite(folder, change_tensors=None, change_config=None):
    from safetensors.torch import load_file, save_file

    path = folder / "adapter_model.safetensors"
    tensors = load_file(str(path))
    if change_tensors:
        change_tensors(tensors)
    save_file(tensors, str(path))
    if change_config:
        cfg = json.loads((folder / "adapter_config.json").read_text())
        change_config(cfg)
        (folder / "adapter_config.json").write_text(json.dumps(cfg))


def _first_b(tensors):
    return next(k for k in sorted(tensors) if k.endswith("lora_B.weight"))


@pytest.mark.parametrize(
    "case, message",
    [
        ("rank", r"has rank \d+ but adapter_config.json says r = 3"),
        ("shape", r"the factors cannot multiply"),
    ],
)
def test_an_adapter_whose_factors_do_not_fit_is_refused(saved, tmp_path, capsys, case, message):
    """The hostile round's case: inspected and even "rebalanced (outputs unchanged)"."""
    import re

    _, folder = saved
    if case == "rank":
        _rewrite(folder, change_config=lambda c: c.update(r=3, rank_pattern={}))
    else:

        def drop_a_column(t):
            key = _first_b(t)
            t[key] = t[key][:, :-1].contiguous()

        _rewrite(folder, change_tensors=drop_a_column)
    with pytest.raises(ValueError, match=message):
        inspect_adapter(folder)
    out = tmp_path / "balanced"
    assert main(["inspect", str(folder), "--rebalance", str(out)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()
