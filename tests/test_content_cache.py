"""lorabar.harness.tasks.content_cache: a content-addressed store that never decides a number --
a missing, foreign, damaged or unwritable entry is recomputed."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lorabar.harness.tasks.content_cache import cache_folder, cached, content_hash


def _entry(value: float = 1.0):
    return {"x": torch.full((2, 3), value), "i": torch.arange(4)}, {"note": "ok", "v": 0.1}


def test_a_stored_entry_is_read_back_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path))
    first, source = cached("kind", "k" * 64, _entry)
    assert source == "computed"
    again, source = cached("kind", "k" * 64, lambda: pytest.fail("the cache was not read"))
    assert source == "cache" and again[1] == first[1]
    assert all(torch.equal(again[0][k], first[0][k]) for k in first[0])
    assert (tmp_path / "kind" / f"{'k' * 64}.safetensors").is_file()
    assert not list((tmp_path / "kind").glob(".*tmp"))  # the temporary file was renamed


def test_off_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LORABAR_CACHE", "off")
    assert cache_folder("kind") is None
    assert cached("kind", "a" * 64, _entry)[1] == "computed"
    assert cached("kind", "a" * 64, _entry)[1] == "computed"


def test_a_damaged_foreign_or_tampered_file_is_recomputed(tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path))
    key = "k" * 64
    path = tmp_path / "kind" / f"{key}.safetensors"
    path.parent.mkdir()
    path.write_bytes(b"not a safetensors file")
    assert cached("kind", key, _entry)[1] == "computed"
    assert cached("kind", key, _entry)[1] == "cache"
    save_file(_entry()[0], str(path), metadata={"key": "another"})  # written for another key
    assert cached("kind", key, _entry)[1] == "computed"
    stored = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    stored["x"][0, 0] = 5.0  # the right key, the wrong numbers (a damaged file)
    save_file(stored, str(path), metadata=meta)
    (x, _), source = cached("kind", key, lambda: _entry(2.0))
    assert source == "computed" and torch.equal(x["x"], torch.full((2, 3), 2.0))


def test_an_unwritable_cache_costs_time_never_a_result(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a file where the folder should be")
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path / "file"))
    (x, info), source = cached("kind", "b" * 64, _entry)
    assert source == "computed" and info == {"note": "ok", "v": 0.1}


def test_content_hash_separates_parts():
    assert content_hash("ab", "c") != content_hash("a", "bc")
    assert content_hash(b"x", {"a": 1}) == content_hash(b"x", {"a": 1})
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_in_a_cache_file_are_recomputed_never_trusted(tmp_path_factory, junk):
    folder = tmp_path_factory.mktemp("c")
    before = os.environ.get("LORABAR_CACHE")
    os.environ["LORABAR_CACHE"] = str(folder)
    try:
        key = "a" * 64
        cache_folder("kind").mkdir(parents=True, exist_ok=True)
        (cache_folder("kind") / f"{key}.safetensors").write_bytes(junk)
        (x, _), source = cached("kind", key, lambda: _entry(3.0))
        assert source == "computed" and torch.equal(x["x"], torch.full((2, 3), 3.0))
    finally:
        if before is None:
            os.environ.pop("LORABAR_CACHE")
        else:
            os.environ["LORABAR_CACHE"] = before


def test_off_never_makes_a_folder_named_off(tmp_path, monkeypatch):
    """The converted SmolLM2 checkpoint goes to a folder of the process, removed at exit."""
    from lorabar._io import cache_root
    from lorabar.harness.models.causal_lm import cache_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORABAR_CACHE", "off")
    assert cache_root() is None
    folder = cache_dir()
    assert folder.is_dir() and folder.name.startswith("lorabar-uncached-")
    assert tmp_path not in folder.parents and cache_dir() == folder
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and cache_root() == tmp_path / "c"
    assert not (tmp_path / "off").exists()


def _write_and_read(folder: str, worker: int) -> list:
    import time

    os.environ["LORABAR_CACHE"] = folder

    def slow():
        time.sleep(0.05)  # writers overlap
        return {"x": torch.arange(100_000, dtype=torch.float64)}, {"worker": "any"}

    out = []
    for _ in range(5):
        (tensors, info), source = cached("kind", "c" * 64, slow)
        out.append((float(tensors["x"].sum()), info, source))
    return out


def test_parallel_workers_share_an_entry_safely(tmp_path):
    """Workers computing and reading one entry at once: every read is whole (atomic renames)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = [r for rs in pool.map(_write_and_read, [str(tmp_path)] * 3, range(3)) for r in rs]
    assert {(total, info["worker"]) for total, info, _ in results} == {(4999950000.0, "any")}
    assert any(source == "cache" for *_, source in results)
    assert [p.name for p in (tmp_path / "kind").iterdir()] == [f"{'c' * 64}.safetensors"]
