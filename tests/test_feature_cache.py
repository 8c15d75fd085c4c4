"""lorabar.harness.tasks.feature_cache: the probe head's frozen features and its fit, computed
once per model, inputs, labels and numerics, reused by the other runs of a comparison -- bit for
bit."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import synthetic_files
from lorabar.harness.run.config import EncoderConfig
from lorabar.harness.run.engine import run
from lorabar.harness.tasks.feature_cache import cached_fit, fit_key


def _cfg(paths, method: str, **kw) -> EncoderConfig:
    return EncoderConfig(
        task="custom",
        model="tiny",
        method=method,
        steps=3,
        lr=1e-2,
        precision="fp32",
        train=str(paths["train"]),
        dev=str(paths["dev"]),
        test=str(paths["test"]),
        text_column="text",
        label_column="label",
        threads=1,
        **kw,
    )


def _probe(record) -> dict:
    return record["train"]["probe"]


def test_the_second_method_reads_the_firsts_probe_and_ends_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path / "cache"))
    paths = synthetic_files(tmp_path / "d", n=(48, 16, 16))
    first = run(_cfg(paths, "lora"), progress=False)
    second = run(_cfg(paths, "nbar", mu0=5.0), progress=False)
    assert (_probe(first)["features"], _probe(first)["fit"]) == ("computed", "computed")
    assert (_probe(second)["features"], _probe(second)["fit"]) == (None, "cache")
    monkeypatch.setenv("LORABAR_CACHE", "off")
    fresh = run(_cfg(paths, "nbar", mu0=5.0), progress=False)
    assert (_probe(fresh)["features"], _probe(fresh)["fit"]) == ("computed", "computed")
    for key in ("metrics", "final_mean_abs_B"):
        assert fresh[key] == second[key]  # the cache changes no number
    assert fresh["balancedness"]["abs_B"] == second["balancedness"]["abs_B"]
    assert {k: v for k, v in _probe(fresh).items() if k not in ("features", "fit")} == {
        k: v for k, v in _probe(second).items() if k not in ("features", "fit")
    }
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path / "cache"))
    other = run(_cfg(paths, "lora", eval_batch_size=8), progress=False)
    assert _probe(other)["features"] == "computed"  # other padding: another key
    noisy = run(_cfg(paths, "lora", label_noise=0.25), progress=False)
    # other labels: the same features, another fit
    assert (_probe(noisy)["features"], _probe(noisy)["fit"]) == ("cache", "computed")


def test_a_fit_is_keyed_by_its_labels_kind_and_code():
    base = fit_key("f" * 64, [0, 1, 1], regression=False, code="c")
    assert base == fit_key("f" * 64, [0, 1, 1], regression=False, code="c")
    assert base != fit_key("f" * 64, [0, 1, 0], regression=False, code="c")
    assert base != fit_key("e" * 64, [0, 1, 1], regression=False, code="c")
    assert base != fit_key("f" * 64, [0, 1, 1], regression=True, code="c")
    assert base != fit_key("f" * 64, [0, 1, 1], regression=False, code="d")


def test_a_cached_fit_returns_what_the_fit_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path))
    w, b = np.array([[0.1, -1 / 3]]), np.array([2 / 7])
    info = {"kind": "ridge", "alpha": 0.001, "train_pearson": 0.987654321}
    fitted, source = cached_fit("k" * 64, lambda: (w, b, info))
    again, hit = cached_fit("k" * 64, lambda: pytest.fail("the cache was not read"))
    assert (source, hit) == ("computed", "cache")
    for one in (fitted, again):
        assert np.array_equal(one[0], w) and np.array_equal(one[1], b) and one[2] == info
        assert one[0].dtype == np.float64
