"""lorabar.harness.tasks.feature_cache: the probe head's frozen features, computed once per
model, inputs and numerics, reused by the other runs of a comparison -- bit for bit."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import synthetic_files
from lorabar.harness.run.config import EncoderConfig
from lorabar.harness.run.engine import run
from lorabar.harness.tasks.feature_cache import cache_folder, cached_features


def _cfg(paths, method: str, **kw) -> EncoderConfig:
    return EncoderConfig(task="custom", model="tiny", method=method, steps=3, lr=1e-2,
                         precision="fp32", train=str(paths["train"]), dev=str(paths["dev"]),
                         test=str(paths["test"]), text_column="text", label_column="label",
                         threads=1, **kw)


def test_the_second_method_reads_the_firsts_features_and_ends_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path / "cache"))
    paths = synthetic_files(tmp_path / "d", n=(48, 16, 16))
    first = run(_cfg(paths, "lora"), progress=False)
    second = run(_cfg(paths, "nbar", mu0=5.0), progress=False)
    assert first["train"]["probe"]["features"] == "computed"
    assert second["train"]["probe"]["features"] == "cache"
    monkeypatch.setenv("LORABAR_CACHE", "off")
    fresh = run(_cfg(paths, "nbar", mu0=5.0), progress=False)
    assert fresh["train"]["probe"]["features"] == "computed"
    for key in ("metrics", "final_mean_abs_B"):
        assert fresh[key] == second[key]  # the cache changes no number
    assert fresh["balancedness"]["abs_B"] == second["balancedness"]["abs_B"]
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path / "cache"))
    other = run(_cfg(paths, "lora", eval_batch_size=8), progress=False)
    assert other["train"]["probe"]["features"] == "computed"  # other padding: another key


def test_a_damaged_or_foreign_cache_file_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path))
    key = "k" * 64
    (cache_folder()).mkdir(parents=True)
    (cache_folder() / f"{key}.safetensors").write_bytes(b"not a safetensors file")
    x, source = cached_features(key, lambda: torch.ones(2, 3))
    assert source == "computed" and torch.equal(x, torch.ones(2, 3))
    y, source = cached_features(key, lambda: pytest.fail("the cache was not read"))
    assert source == "cache" and torch.equal(y, torch.ones(2, 3))
    from safetensors.torch import save_file

    save_file({"features": torch.zeros(2, 3)}, str(cache_folder() / f"{key}.safetensors"),
              metadata={"key": "another"})
    z, source = cached_features(key, lambda: torch.full((2, 3), 2.0))
    assert source == "computed" and torch.equal(z, torch.full((2, 3), 2.0))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_in_a_cache_file_are_recomputed_never_trusted(tmp_path_factory, junk):
    folder = tmp_path_factory.mktemp("c")
    before = os.environ.get("LORABAR_CACHE")
    os.environ["LORABAR_CACHE"] = str(folder)
    try:
        key = "a" * 64
        cache_folder().mkdir(parents=True, exist_ok=True)
        (cache_folder() / f"{key}.safetensors").write_bytes(junk)
        x, source = cached_features(key, lambda: torch.arange(6.0).reshape(2, 3))
        assert source == "computed" and torch.equal(x, torch.arange(6.0).reshape(2, 3))
    finally:
        if before is None:
            os.environ.pop("LORABAR_CACHE")
        else:
            os.environ["LORABAR_CACHE"] = before
