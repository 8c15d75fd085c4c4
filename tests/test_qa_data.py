"""ReCoRD and SQuAD (paper Table 3): the readers (both file formats, hostile rows, property-based
round trips), MeZO's templates, the SQuAD metric, ragged candidate scoring, and runs of both tasks
and of prefix tuning through the engine."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from conftest import squad_row, write_jsonl
from lorabar.harness.run.config import LMConfig
from lorabar.harness.tasks.data_folder import DataError, recording
from lorabar.harness.run.engine import run
from lorabar.harness.tasks.lm_tasks import ragged_cross_entropy
from lorabar.harness.tasks.qa_data import (
    DEV_POOL,
    exact_match,
    load_qa_rows,
    record_example,
    squad_f1,
    squad_prompt,
)


def record_row(i: int) -> dict:
    return {
        "passage": f"Story {i}.\n@highlight\nAlice met Bob",
        "query": "@placeholder met Bob",
        "entities": ["Alice", "Bob"],
        "answers": ["Alice"],
        "idx": {"passage": i, "query": i},
    }


def official_squad(rows: list[dict]) -> dict:
    return {
        "version": "1.1",
        "data": [
            {
                "title": r["title"],
                "paragraphs": [
                    {
                        "context": r["context"],
                        "qas": [
                            {
                                "id": r["id"],
                                "question": r["question"],
                                "answers": [
                                    {"text": t, "answer_start": 0} for t in r["answers"]["text"]
                                ],
                            }
                        ],
                    }
                ],
            }
            for r in rows
        ],
    }


@pytest.fixture
def qa_dir(tmp_path):
    write_jsonl(tmp_path / "squad" / "train.jsonl", [squad_row(i) for i in range(40)])
    write_jsonl(tmp_path / "squad" / "validation.jsonl", [squad_row(i) for i in range(40, 52)])
    write_jsonl(tmp_path / "record" / "train.jsonl", [record_row(i) for i in range(40)])
    write_jsonl(tmp_path / "record" / "val.jsonl", [record_row(i) for i in range(40, 50)])
    return tmp_path


def test_templates_are_mezos():
    e = record_example(record_row(0))
    assert e.context == "Story 0.\n- Alice met Bob\n-"
    assert e.candidates == (" Alice met Bob", " Bob met Bob") and e.label == 0 and e.correct == (0,)
    assert e.is_correct(0) and not e.is_correct(1)
    two = record_example({**record_row(0), "answers": ["Bob", "Alice"]})
    assert two.correct == (0, 1) and two.label == 0 and two.is_correct(1)
    (q,) = load_qa_rows_from([squad_row(3)])
    assert squad_prompt(q) == (
        "Title: Super_Bowl_50\nContext: The Denver Broncos won game 3.\n"
        "Question: Who won game 3?\nAnswer:"
    )


def load_qa_rows_from(rows):
    from lorabar.harness.tasks.qa_data import _check_row  # the row check the readers share

    return [_check_row("squad", r) for r in rows]


def test_squad_metric_is_the_official_one():
    assert squad_f1("the Denver Broncos!", ("Denver Broncos",)) == 1.0
    assert exact_match("The denver broncos.", ["Denver Broncos"]) == 1.0
    assert squad_f1("Broncos", ("Denver Broncos",)) == pytest.approx(2 / 3)
    assert squad_f1("Panthers", ("Denver Broncos", "Carolina Panthers")) == pytest.approx(2 / 3)
    assert squad_f1("", ("x",)) == 0.0 and exact_match("Broncos", ["Denver Broncos"]) == 0.0


def test_splits_are_disjoint_and_test_is_validation(qa_dir):
    for task in ("squad", "record"):
        train, dev, test = (load_qa_rows(task, s, qa_dir) for s in ("train", "dev", "test"))
        assert len(train) + len(dev) == 40 and len(dev) == min(DEV_POOL, 20)
        key = (lambda e: e.question) if task == "squad" else (lambda e: e.context)
        assert not {key(e) for e in train} & {key(e) for e in dev}
        assert len(test) == (12 if task == "squad" else 10)


def test_official_formats_read_as_the_hub_rows(tmp_path):
    rows = [squad_row(i) for i in range(6)]
    (tmp_path / "squad").mkdir()
    (tmp_path / "squad" / "dev-v1.1.json").write_text(json.dumps(official_squad(rows)))
    assert load_qa_rows("squad", "test", tmp_path) == load_qa_rows_from(rows)
    text = "Story.\n@highlight\nAlice met Bob"
    official = {
        "idx": 0,
        "passage": {
            "text": text,
            "entities": [
                {"start": 18, "end": 22},
                {"start": 28, "end": 30},
                {"start": 18, "end": 22},
            ],
        },
        "qas": [
            {
                "idx": 0,
                "query": "@placeholder met Bob",
                "answers": [{"start": 18, "end": 22, "text": "Alice"}],
            }
        ],
    }
    write_jsonl(tmp_path / "record" / "val.jsonl", [official])
    hub = {
        "passage": text,
        "query": "@placeholder met Bob",
        "entities": ["Alice", "Bob"],
        "answers": ["Alice"],
    }
    assert load_qa_rows("record", "test", tmp_path) == [record_example(hub)]


@pytest.mark.parametrize(
    "task,row,match",
    [
        ("squad", {**squad_row(0), "answers": {"text": []}}, "at least one non-empty answer"),
        ("squad", {**squad_row(0), "context": None}, "must be strings"),
        ("record", {**record_row(0), "answers": ["Carol"]}, "no answer is among the entities"),
        ("record", {**record_row(0), "query": "Alice met Bob"}, "no @placeholder"),
        ("record", {**record_row(0), "entities": []}, "at least one string"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, task, row, match):
    name = "validation.jsonl"
    write_jsonl(tmp_path / task / name, [squad_row(1) if task == "squad" else record_row(1), row])
    with pytest.raises(DataError, match=rf"{name}:2: not a {task} example \(.*{match}"):
        load_qa_rows(task, "test", tmp_path)


def test_malformed_files_and_missing_data(tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError(
            "Couldn't reach 'aps/super_glue' on the Hub (LocalEntryNotFoundError)"
        )

    monkeypatch.setattr(datasets, "load_dataset", offline)  # as here: no hub
    (tmp_path / "squad").mkdir()
    (tmp_path / "squad" / "validation.jsonl").write_text('{"id": 1}\n{oops\n')
    with pytest.raises(DataError, match=r"validation.jsonl:2: not a JSON object"):
        load_qa_rows("squad", "test", tmp_path)
    (tmp_path / "squad" / "validation.json").write_text("[]")
    with pytest.raises(DataError, match="several validation files"):
        load_qa_rows("squad", "test", tmp_path)
    with pytest.raises(
        DataError, match=r"record: no local copy .* the hub dataset 'aps/super_glue'"
    ):
        load_qa_rows("record", "train", tmp_path)  # one clear line
    with pytest.raises(ValueError, match="Invalid split: 'valid'"):
        load_qa_rows("squad", "valid", tmp_path)


def test_files_read_are_recorded_for_the_identity(qa_dir):
    with recording() as files:
        load_qa_rows("squad", "train", qa_dir)
    assert [f.name for f in files] == ["train.jsonl"]


texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(texts, texts, texts, st.lists(texts.filter(str.strip), min_size=1, max_size=3)),
        min_size=1,
        max_size=6,
    )
)
def test_any_squad_rows_round_trip_in_both_formats(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("squad")
    hub = [
        {"id": str(i), "title": t, "context": c, "question": q, "answers": {"text": a}}
        for i, (t, c, q, a) in enumerate(rows)
    ]
    write_jsonl(folder / "a" / "squad" / "validation.jsonl", hub)
    (folder / "b" / "squad").mkdir(parents=True)
    (folder / "b" / "squad" / "validation.json").write_text(json.dumps(official_squad(hub)))
    want = load_qa_rows_from(hub)
    assert load_qa_rows("squad", "test", folder / "a") == want
    assert load_qa_rows("squad", "test", folder / "b") == want
    assert [e.answers for e in want] == [tuple(a) for *_, a in rows]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(texts.filter(lambda s: "@placeholder" not in s), min_size=1, max_size=5, unique=True),
    st.data(),
)
def test_any_record_row_renders_one_candidate_per_entity(entities, data):
    answers = data.draw(st.lists(st.sampled_from(entities), min_size=1, max_size=3))
    e = record_example(
        {"passage": "P", "query": "Q @placeholder.", "entities": entities, "answers": answers}
    )
    assert e.candidates == tuple(f" Q {x}." for x in entities)
    assert {entities[i] for i in e.correct} == set(answers) and e.label == min(e.correct)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=6), st.data())
def test_ragged_cross_entropy_is_the_mean_of_per_example_ones(counts, data):
    labels = [data.draw(st.integers(0, c - 1)) for c in counts]
    scores = torch.randn(sum(counts), generator=torch.Generator().manual_seed(sum(counts)))
    got = ragged_cross_entropy(scores, counts, torch.tensor(labels))
    want = torch.stack(
        [F.cross_entropy(s[None], torch.tensor([y])) for s, y in zip(scores.split(counts), labels)]
    ).mean()
    assert torch.allclose(got, want)
    if len(set(counts)) == 1:
        assert torch.allclose(
            got, F.cross_entropy(scores.view(len(counts), -1), torch.tensor(labels))
        )


@pytest.mark.parametrize("method", ["lora", "sam"])
def test_record_with_ragged_candidates_trains_through_the_engine(qa_dir, method):
    rows = [record_row(i) for i in range(12)]
    rows[1] = {**rows[1], "entities": ["Alice", "Bob", "Carol"], "answers": ["Carol"]}
    write_jsonl(qa_dir / "record" / "train.jsonl", rows)
    cfg = LMConfig(
        task="record",
        model="tiny",
        method=method,
        steps=3,
        batch_size=4,
        precision="fp32",
        data_dir=str(qa_dir),
        threads=1,
        lr=1e-2,
    )
    r = run(cfg, progress=False)
    assert 0.0 <= r["metrics"]["test"]["accuracy"] <= 1.0 and r["train"]["n_train"] == 6
    assert r["primary_metric"] == "accuracy" and all(
        map(torch.isfinite, map(torch.tensor, r["train"]["losses"]))
    )


def test_prefix_tuning_trains_only_the_prefixes(monkeypatch):
    from lorabar.harness.run import engine

    seen = {}
    real = engine.make_stepper

    def spy(ctx):
        seen["params"] = [p.detach().clone() for p in ctx.params]
        seen["ctx"] = ctx
        return real(ctx)

    monkeypatch.setattr(engine, "make_stepper", spy)
    cfg = LMConfig(
        task="synthetic",
        model="tiny",
        method="prefix",
        steps=3,
        lr=3e-2,
        batch_size=8,
        n_dev=16,
        n_test=16,
        precision="fp32",
        threads=1,
        num_virtual_tokens=4,
    )
    r = run(cfg, progress=False)
    # 4 tokens x 2 layers x (key, value) x (2 kv heads x 8 dims): PEFT's prefix embedding alone
    assert r["train"]["trainable_params"] == 4 * 2 * 2 * 16 and r["train"]["lora_pairs"] == 0
    (before,) = seen["params"]
    (after,) = seen["ctx"].params
    assert not torch.equal(before, after)  # the prefixes moved
    assert r["config"]["num_virtual_tokens"] == 4 and "mu0" not in r["identity"]["config"]


def test_prefix_is_refused_for_encoders():
    from lorabar.harness.run.config import EncoderConfig

    with pytest.raises(ValueError, match="Invalid method: 'prefix'"):
        EncoderConfig(method="prefix", model="tiny")


def test_without_a_local_copy_the_hub_rows_are_read(tmp_path, monkeypatch):
    """As a GPU user has it: no DATA/squad, the hub's dataset (here a datasets.Dataset saved to
    disk and loaded back, so that it has Arrow cache files) -- read, checked, and its files
    recorded for the run's identity."""
    import datasets

    saved = tmp_path / "hub"
    datasets.Dataset.from_list([squad_row(i) for i in range(5)]).save_to_disk(str(saved))
    asked = []

    def hub(name, config=None, split=None):
        asked.append((name, config, split))
        return datasets.load_from_disk(str(saved))

    monkeypatch.setattr(datasets, "load_dataset", hub)
    (tmp_path / "data").mkdir()
    with recording() as files:
        rows = load_qa_rows("squad", "test", tmp_path / "data")
    assert asked == [("rajpurkar/squad", None, "validation")]
    assert rows == load_qa_rows_from([squad_row(i) for i in range(5)])
    assert files and all(f.suffix == ".arrow" for f in files)


def test_official_files_name_the_bad_question_or_line(tmp_path):
    rows = [squad_row(0), {**squad_row(1), "answers": {"text": []}}]
    (tmp_path / "squad").mkdir()
    (tmp_path / "squad" / "dev-v1.1.json").write_text(json.dumps(official_squad(rows)))
    with pytest.raises(
        DataError,
        match=r"dev-v1.1.json \(question 'q1'\): not a squad example "
        r"\(answers.text must list",
    ):
        load_qa_rows("squad", "test", tmp_path)
    (tmp_path / "squad" / "dev-v1.1.json").write_text(json.dumps({"data": [{"title": "T"}]}))
    with pytest.raises(DataError, match=r"not SQuAD's official format \(missing 'paragraphs'\)"):
        load_qa_rows("squad", "test", tmp_path)
    write_jsonl(tmp_path / "record" / "val.jsonl", [{"passage": {"text": "x"}, "qas": []}])
    with pytest.raises(DataError, match=r"val.jsonl:1: not a record example \(missing 'entities'"):
        load_qa_rows("record", "test", tmp_path)
