"""lorabar.harness.run.result: a result as read back -- `RunRecord` (typed fields beside the
file's own, nothing added to them) and `MethodUnit` (a method in its context, never a string
parsed back)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import fake_record
from hypothesis import given
from hypothesis import strategies as st

from lorabar.harness.report.load import load
from lorabar.harness.report.naming import cells, label_of
from lorabar.harness.run.records import with_digest
from lorabar.harness.run.result import MethodUnit, RunRecord

NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@given(method=NAMES, context=st.lists(st.text(max_size=8), max_size=3), other=NAMES)
def test_a_unit_keeps_its_method_and_context_apart(method, context, other):
    """Whatever the names hold (brackets, commas), the method is never parsed back from text."""
    unit = MethodUnit(method, tuple(context))
    assert unit.method == method and unit.context == tuple(context)
    assert str(unit) == method + (f" [{', '.join(context)}]" if context else "")
    paired_with = unit.of(other)
    assert (paired_with.method, paired_with.context) == (other, unit.context)
    assert hash(unit) == hash(MethodUnit(method, tuple(context)))


def test_a_unit_is_labelled_and_celled_by_its_method():
    unit = MethodUnit("nbar", ("fp32", "300"))
    assert label_of(unit) == "LoRA-nBAR [fp32, 300]" and label_of("sam") == "LoRA-SAM"
    assert cells(unit) == ["LoRA-nBAR", "fp32", "300"]
    with pytest.raises(ValueError, match=r"Invalid method unit: method ''"):
        MethodUnit("")


def _folder(tmp_path, task="sst2"):
    record = fake_record(task, "lora", 13, 0.8, 0.7, 10)
    (tmp_path / "r.json").write_text(json.dumps(record))
    return record


def test_reading_adds_nothing_to_the_files_fields(tmp_path):
    written = _folder(tmp_path)
    (record,) = load(tmp_path)[0]
    assert isinstance(record, RunRecord) and dict(record.data) == written
    assert sorted(record) == sorted(written)  # the file's keys, and no private one beside them
    assert record.path == str(tmp_path / "r.json") and record.unit == MethodUnit("lora")
    with pytest.raises(TypeError):
        record["_path"] = "x"  # read-only: a record is never tagged in flight
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.path = "x"


def test_a_task_of_your_own_data_is_named_and_keeps_its_recorded_name(tmp_path):
    record = fake_record("sst2", "lora", 13, 0.8, 0.7, 10)
    record["config"]["task"] = "custom"
    record["config"]["train"] = "/data/train.jsonl"
    (tmp_path / "r.json").write_text(json.dumps(with_digest(record)))
    (read,) = load(tmp_path)[0]
    assert read.recorded_task == "custom" and read.data["config"]["task"] == "custom"
    assert read["config"]["task"] != "custom" and read.config["task"].startswith("train")


def test_a_record_reads_the_files_keys_and_no_other():
    planned = RunRecord.of({"identity": {}, "config": {"task": "sst2", "method": "lora"}}, "p")
    assert list(planned) == ["identity", "config"] and "primary_metric" not in planned
    with pytest.raises(KeyError):
        planned["primary_metric"]


def test_in_context_gives_a_new_record_and_leaves_the_old_one():
    record = RunRecord.of(fake_record("sst2", "sam", 13, 0.8, 0.7, 10), "r.json")
    mixed = record.in_context(("fp32",), ("precision",))
    assert mixed.unit == MethodUnit("sam", ("fp32",)) and mixed.context_columns == ("precision",)
    assert record.unit == MethodUnit("sam") and record.context_columns == ()
    assert mixed.data is record.data
