"""Reports (lorabar.harness.report) on fixture records: tables, dev selection, paired differences on
common seeds, every metric of multi-metric tasks, and the paired-settings script."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lorabar.harness.report import render, select, tables
from conftest import as_runs, fake_record

from lorabar.harness.run.result import MethodUnit


def test_report_on_fixture_results(tmp_path):
    runs = [
        fake_record("sst2", "lora", 13, 0.80, 0.78, 100),
        fake_record("sst2", "lora", 21, 0.82, 0.80, 100),
        # a worse-on-dev setting that is better on test must not be chosen
        fake_record("sst2", "lora", 13, 0.70, 0.95, 100, setting=3e-4),
        fake_record("sst2", "sam", 13, 0.83, 0.81, 210, b=0.9),
        fake_record("sst2", "nbar", 13, 0.84, 0.82, 103, b=0.5),
    ]
    for i, r in enumerate(runs):
        (tmp_path / f"r{i}.json").write_text(json.dumps(r))
    chosen = select(as_runs(json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))))
    assert {r["config"]["seed"] for r in chosen[("sst2", MethodUnit("lora"))]} == {13, 21}
    t = tables(as_runs(json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))))
    assert t["table1"][1][:2] == ["LoRA", "79.0 ± 1.4 (2)"]
    assert t["table1"][-1][:2] == ["majority class", "51.0"]
    assert t["runtime"][1] == ["sst2", "1.00x (100 ms)", "2.10x (210 ms)", "1.03x (103 ms)"]
    written = render(tmp_path, out=tmp_path / "rep")
    names = {p.name for p in written}
    assert {"table1.csv", "runtime.csv", "report.md", "fig3_sst2.png"} <= names
    assert "LoRA-nBAR" in (tmp_path / "rep" / "report.md").read_text()
    with pytest.raises(ValueError, match=r"No result files"):
        render(tmp_path / "rep")


def test_paired_differences_and_selection_on_common_seeds():
    from lorabar.harness.report import paired

    runs = []
    lora = {13: 0.80, 21: 0.82, 42: 0.78, 87: 0.81, 100: 0.79}
    sam = {13: 0.81, 21: 0.84, 42: 0.79, 87: 0.83, 100: 0.80}  # +1, +2, +1, +2, +1
    for seed in lora:
        runs.append(fake_record("sst2", "lora", seed, 0.8, lora[seed], 100))
        runs.append(fake_record("sst2", "sam", seed, 0.8, sam[seed], 200))
        runs.append(
            fake_record("sst2", "nbar", seed, 0.8, lora[seed] + (0.01 if seed % 2 else -0.01), 100)
        )
    # a setting tried on the tuning seed only, better there on dev: chosen, though n = 1
    runs.append(fake_record("trec", "lora", 13, 0.9, 0.9, 100))
    runs.append(fake_record("trec", "lora", 13, 0.7, 0.5, 100, setting=3e-4))
    for seed in (21, 42):  # more seeds of the worse setting do not change the choice
        runs.append(fake_record("trec", "lora", seed, 0.95, 0.5, 100, setting=3e-4))
    runs = as_runs(runs)
    rows = {(r[0], r[1]): r for r in paired(runs)}
    n, mean, lo, hi, verdict = rows[("sst2", "LoRA-SAM")][2:7]
    # mean 1.4, sd 0.5477, t(0.975, 4) = 2.7764: half-width 0.680
    assert (n, mean, lo, hi, verdict) == ("5", "1.40", "0.72", "2.08", "better")
    assert rows[("sst2", "LoRA-nBAR")][6] == "inconclusive"  # +0.2 [-1.16, 1.56]: cannot tell
    assert select(runs)[("trec", MethodUnit("lora"))][0]["config"]["lr"] == 1e-3


def test_paired_settings_script_pairs_two_fixed_settings(tmp_path):
    """scripts/paired_settings.py: b - a per task over the common seeds, then the per-seed
    mean over tasks; a method or setting outside --a/--b is ignored."""
    import subprocess

    a = {13: 0.80, 21: 0.82, 42: 0.78, 87: 0.81, 100: 0.79}
    diff = {13: 0.01, 21: 0.02, 42: 0.01, 87: 0.02, 100: 0.01}  # as in the paired test above
    runs = [fake_record("sst2", "lora", s, 0.8, a[s], 100) for s in a]
    runs += [fake_record("sst2", "lora", s, 0.8, a[s] + diff[s], 100, setting=3e-3) for s in a]
    runs += [fake_record("sst2", "lora", s, 0.8, 0.0, 100, setting=1e-2) for s in (13, 21)]
    runs += [fake_record("sst2", "sam", s, 0.8, 0.0, 100, setting=3e-3) for s in a]
    runs += [
        fake_record("trec", "lora", 13, 0.9, 0.90, 100),
        fake_record("trec", "lora", 21, 0.9, 0.90, 100),
    ]
    for i, r in enumerate(runs):
        (tmp_path / f"r{i}.json").write_text(json.dumps(r))
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "paired_settings.py"),
            str(tmp_path),
            "--method",
            "lora",
            "--a",
            "lr=0.001",
            "--b",
            "lr=0.003",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # mean 1.4, sd 0.5477, t(0.975, 4) = 2.7764: half-width 0.680; trec has no lr 3e-3 run
    assert "sst2     n=5  +1.40 [+0.72, +2.08]" in out
    assert "trec" not in out
    assert "average (1 tasks) n=5  +1.40 [+0.72, +2.08]" in out
    ambiguous = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "paired_settings.py"),
            str(tmp_path),
            "--method",
            "lora",
            "--a",
            "lr=0.001",
            "--b",
            "seed=13",
        ],
        capture_output=True,
        text=True,
    )
    assert ambiguous.returncode != 0 and "Ambiguous --b seed=13" in ambiguous.stderr


def test_report_lists_every_metric_of_multi_metric_tasks(tmp_path):
    """STS-B: Pearson is primary (selection, paired), Spearman is reported beside it."""
    runs = []
    for seed, (p, s) in {13: (0.80, 0.70), 21: (0.84, 0.74)}.items():
        for method, shift in (("lora", 0.0), ("obar", 0.01)):
            r = fake_record("stsb", method, seed, 0.8, p + shift, 100)
            r["primary_metric"] = "pearson"
            r["metrics"] = {
                split: {"pearson": p + shift, "spearman": s + shift} for split in ("dev", "test")
            }
            r.pop("majority_class")
            runs.append(r)
    rows = tables(as_runs(runs))["metrics"]
    assert rows[0] == ["task", "method", "metric", "test", "dev"]
    assert ["stsb", "LoRA", "spearman", "72.0 ± 2.8 (2)", "72.0 ± 2.8 (2)"] in rows
    assert ["stsb", "LoRA-oBAR", "pearson", "83.0 ± 2.8 (2)", "83.0 ± 2.8 (2)"] in rows
    from lorabar.harness.run.records import with_digest

    for i, r in enumerate(runs):
        (tmp_path / f"r{i}.json").write_text(json.dumps(with_digest(r)))
    render(tmp_path, out=tmp_path / "rep")
    assert "spearman" in (tmp_path / "rep" / "metrics.csv").read_text()
    assert "## Every metric" in (tmp_path / "rep" / "report.md").read_text()
    assert "metrics" not in tables(as_runs([fake_record("sst2", "lora", 13, 0.8, 0.8, 100)]))


def test_report_names_every_missing_baseline_and_reference_at_once(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for i, r in enumerate(
        [
            fake_record("sst2", "lora", 13, 0.8, 0.8, 10),
            fake_record("sst2", "nbar", 13, 0.8, 0.8, 10),
        ]
    ):
        (runs / f"r{i}.json").write_text(json.dumps(r))
    with pytest.raises(
        ValueError,
        match=r"Invalid --baseline 'sam' and --reference 'obar': not "
        r"a method of these runs \(present: lora, nbar\)",
    ):
        render(tmp_path, out=tmp_path / "rep", baseline="sam", reference_method="obar")
    with pytest.raises(
        ValueError,
        match=r"--baseline 'LoRA' \('LoRA' is a label, give the "
        r"method's name\)",
    ):
        render(tmp_path, out=tmp_path / "rep", baseline="LoRA")


def test_report_leads_with_a_forest_plot_of_the_paired_differences(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for i, (task, method, seed, acc) in enumerate(
        [
            (t, m, s, 0.8 + 0.01 * s / 100 + (0.02 if m == "nbar" else 0))
            for t in ("sst2", "rte")
            for m in ("lora", "nbar")
            for s in (13, 21, 42)
        ]
    ):
        (runs / f"r{i}.json").write_text(json.dumps(fake_record(task, method, seed, acc, acc, 10)))
    render(tmp_path, out=tmp_path / "rep")
    png = tmp_path / "rep" / "paired.png"
    assert png.read_bytes().startswith(b"\x89PNG")
    md = (tmp_path / "rep" / "report.md").read_text().splitlines()
    assert md[2] == "![Paired differences to LoRA](paired.png)"


@pytest.mark.data
def test_the_paper_gains_are_the_papers_table_1():
    """PAPER_GAINS (the crosses on paired.png) against the paper's own Table 1 text."""
    import re

    from lorabar.harness.report.paper_gains import PAPER_GAINS

    paper = next((Path(__file__).resolve().parents[2] / "shared" / "paper").glob("*.txt"))
    table = paper.read_text().split("Table 1: Few shot learning on RoBERTa")[1]
    table = table.split("Zero-Shot")[0]
    means = {
        row.split("\t")[0]: [float(v) for v in re.findall(r"(\d+\.\d)(?: ±|\s*$)", row)]
        for row in table.strip().splitlines()[2:]
    }
    tasks = ["sst2", "sst5", "snli", "mnli", "rte", "trec", "average"]
    for method, name in (("sam", "LoRA-SAM"), ("obar", "LoRA-oBAR"), ("nbar", "LoRA-nBAR")):
        gains = [round(m - base, 1) for m, base in zip(means[name], means["LoRA"])]
        assert gains == [PAPER_GAINS[(method, t)] for t in tasks], method


def test_a_baseline_that_trains_nothing_is_one_line(tmp_path, capsys):
    """The hostile round's IndexError in the |B| table: refused before anything is written."""
    from conftest import one_error_line

    from lorabar.cli import main

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "rep"
    assert (
        main(
            [
                "report",
                str(root / "results" / "faithful"),
                "--out",
                str(out),
                "--baseline",
                "zeroshot",
            ]
        )
        == 2
    )
    assert "Invalid --baseline 'zeroshot': it trains nothing" in one_error_line(capsys)
    assert not out.exists()
