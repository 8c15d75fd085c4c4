"""Dev selection (lorabar.harness.report.select_with_ties): ties follow the written rule --
the task's other dev metrics, then the smaller hyperparameters -- never the order of the files;
every tie is listed in report.md; a staged task's primary metric is the task's (App. D.4)."""

from __future__ import annotations

import json

from lorabar.harness.report import TIE_RULE, render, select_with_ties
from conftest import as_runs, fake_record

from lorabar.harness.run.result import MethodUnit


def _runs(order):
    runs = [fake_record("sst2", "sam", 13, 0.80, 0.70 + i / 100, 100) for i in range(3)]
    for r, rho in zip(runs, (0.1, 0.01, 0.05)):
        r["config"]["rho"] = rho
        r["identity"]["config"]["rho"] = rho
    return [runs[i] for i in order]


def test_a_tie_is_broken_by_the_rule_not_the_file_order():
    for order in ((0, 1, 2), (2, 1, 0), (1, 2, 0)):
        chosen, ties = select_with_ties(as_runs(_runs(order)))
        assert chosen[("sst2", MethodUnit("sam"))][0]["config"]["rho"] == 0.01  # the smallest rho
        assert len(ties) == 1 and ties[0]["by"] == "smaller hyperparameters"
        assert len(ties[0]["settings"]) == 3


def test_a_tie_is_broken_first_by_the_other_dev_metrics():
    runs = _runs((0, 1, 2))
    for r, f1 in zip(runs, (0.9, 0.7, 0.8)):
        r["metrics"]["dev"]["f1"] = f1
    chosen, ties = select_with_ties(as_runs(runs))
    assert (
        chosen[("sst2", MethodUnit("sam"))][0]["config"]["rho"] == 0.1
        and ties[0]["by"] == "other dev metrics"
    )


def test_report_lists_every_tie_with_the_rule(tmp_path):
    from lorabar.harness.run.records import with_digest

    runs = _runs((0, 1, 2)) + [fake_record("sst2", "lora", 13, 0.8, 0.7, 100)]
    for i, r in enumerate(runs):
        (tmp_path / f"r{i}.json").write_text(json.dumps(with_digest(r)))
    render(tmp_path, out=tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Ties on dev (1)" in md and TIE_RULE in md and "rho=0.01** (by smaller" in md


def test_mrpc_is_selected_and_reported_by_accuracy(tmp_path):
    from lorabar.harness.report import load
    from lorabar.harness.run.records import with_digest

    r = fake_record("mrpc", "lora", 13, 0.8, 0.7, 100)
    r["primary_metric"] = "f1"  # as an older lorabar recorded it
    r["metrics"] = {s: {"f1": 0.81, "accuracy": 0.72} for s in ("dev", "test")}
    (tmp_path / "r.json").write_text(json.dumps(with_digest(r)))
    assert load(tmp_path)[0][0]["primary_metric"] == "accuracy"
