"""lorabar.harness.tasks.token_cache: tokenized splits computed once per tokenizer, settings and
texts, stored as flat columns that unpack to exactly the items the encoder made."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import synthetic_files
from lorabar.harness.run.config import EncoderConfig
from lorabar.harness.run.engine import run
from lorabar.harness.tasks.data_folder import Example
from lorabar.harness.tasks.token_cache import (
    cached_splits,
    pack,
    splits_key,
    tokenizer_fingerprint,
    unpack,
)

ids = st.lists(st.integers(0, 2**40), max_size=12)
# an encoder gives every item of a split the same fields in the same order
items_of = st.lists(st.tuples(ids, ids, st.integers(-5, 2**31)), max_size=9).map(
    lambda rows: [{"input_ids": a, "token_type_ids": b, "mask_pos": m} for a, b, m in rows]
)


@settings(max_examples=80, deadline=None)
@given(items_of)
def test_unpack_is_packs_exact_inverse(items):
    columns, fields = pack(items, "train")
    back = unpack(columns, "train", fields)
    assert back == items
    assert all(list(a) == list(b) for a, b in zip(back, items, strict=True))  # field order


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["train", "dev", "test"]), items_of, min_size=1))
def test_every_split_comes_back_from_the_store(tmp_path_factory, splits):
    before = os.environ.get("LORABAR_CACHE")
    os.environ["LORABAR_CACHE"] = str(tmp_path_factory.mktemp("c"))
    try:
        made, source = cached_splits("k" * 64, lambda: splits)
        read, hit = cached_splits("k" * 64, lambda: pytest.fail("the cache was not read"))
        assert (source, hit) == ("computed", "cache") and made == read == splits
    finally:
        if before is None:
            os.environ.pop("LORABAR_CACHE")
        else:
            os.environ["LORABAR_CACHE"] = before


def test_the_key_follows_texts_order_settings_and_tokenizer():
    a = [Example("a b", None, 0), Example("c", "d", 1)]
    key = splits_key("tok", {"max_length": 8}, {"train": a})
    assert key == splits_key("tok", {"max_length": 8}, {"train": list(a)})
    assert key != splits_key("tok", {"max_length": 8}, {"train": a[::-1]})
    assert key != splits_key("tok", {"max_length": 9}, {"train": a})
    assert key != splits_key("tok2", {"max_length": 8}, {"train": a})
    assert key != splits_key("tok", {"max_length": 8}, {"dev": a})
    assert key != splits_key(
        "tok", {"max_length": 8}, {"train": [Example("a b", "", 0), Example("c", "d", 1)]}
    )
    assert key == splits_key(
        "tok", {"max_length": 8}, {"train": [Example("a b", None, 1), Example("c", "d", 0)]}
    )


def test_a_tokenizer_without_a_fingerprint_is_not_cached():
    assert tokenizer_fingerprint(object()) is None
    out, source = cached_splits(None, lambda: {"train": []})
    assert source == "not cached" and out == {"train": []}


def _cfg(paths, **kw) -> EncoderConfig:
    return EncoderConfig(
        task="custom",
        method="lora",
        steps=2,
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


@pytest.mark.parametrize(
    "extra",
    [
        {"model": "tiny"},
        {
            "model": "tiny-mlm",
            "head": "prompt",
            "template": "{text} It was {mask} .",
            "verbalizer": "fruit=good,metal=bad",
        },
    ],
)
def test_a_run_reading_cached_tokens_is_the_same_run(tmp_path, monkeypatch, extra):
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path / "cache"))
    paths = synthetic_files(tmp_path / "d", n=(24, 8, 8))
    first = run(_cfg(paths, **extra), progress=False)
    second = run(_cfg(paths, **extra), progress=False)
    monkeypatch.setenv("LORABAR_CACHE", "off")
    fresh = run(_cfg(paths, **extra), progress=False)
    assert [r["train"]["tokens"] for r in (first, second, fresh)] == [
        "computed",
        "cache",
        "computed",
    ]
    for key in ("metrics", "final_mean_abs_B"):
        assert first[key] == second[key] == fresh[key]
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path / "cache"))
    longer = run(_cfg(paths, max_length=16, **extra), progress=False)
    assert longer["train"]["tokens"] == "computed"  # another setting: another key


@pytest.mark.real
def test_minilms_fast_tokenizer_has_a_fingerprint():
    from transformers import AutoTokenizer

    from lorabar.harness.models.encoder_model import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    first = tokenizer_fingerprint(tok)
    assert first is not None and first == tokenizer_fingerprint(
        AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    )
    tok.add_tokens(["lorabarword"])
    assert tokenizer_fingerprint(tok) != first  # the vocabulary is part of it


@pytest.mark.real
def test_the_fingerprint_does_not_change_when_the_tokenizer_is_used():
    """A call sets the backend's truncation and padding; the same tokenizer keeps its key."""
    from transformers import AutoTokenizer

    from lorabar.harness.models.encoder_model import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    before = tokenizer_fingerprint(tok)
    tok(["a b c"], truncation=True, max_length=4, padding="max_length")
    assert tokenizer_fingerprint(tok) == before
