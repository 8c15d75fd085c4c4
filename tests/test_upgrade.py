"""lorabar upgrade (lorabar.harness.report.upgrade, lorabar.cli.upgrade): files an older lorabar
wrote are checked, then stamped and signed; an altered result is never signed; nothing else is
touched; --check writes nothing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import fake_record

from lorabar.cli.main import main
from lorabar.filekinds import DIGEST, digest_ok, header_kind
from lorabar.guard import Output, OutputError, check_plan, is_kind


def _older(tmp_path):
    """A results folder as a lorabar from before kinds and digests left it."""
    folder = tmp_path / "old"
    (folder / "runs").mkdir(parents=True)
    runs = []
    for seed in (13, 21):
        record = {
            k: v for k, v in fake_record("sst2", "lora", seed, 0.8, 0.7, 10).items() if k != DIGEST
        }
        from lorabar.harness.run.identity import run_id

        path = folder / "runs" / f"{run_id(record['identity'])}.json"
        path.write_text(json.dumps(record))
        runs.append(path)
    (folder / "manifest.json").write_text(
        json.dumps({"commands": ["lorabar grid x"], "status": "current"})
    )
    (tmp_path / "layers.json").write_text(
        json.dumps(
            {  # as `lorabar inspect --json` wrote it
                "adapter": "a",
                "peft_type": "LORA",
                "r": 8,
                "lora_alpha": 16,
                "mean_abs_B": 0.5,
                "max_abs_B": 0.5,
                "layers": [{"name": "q", "norm_A": 1.0, "norm_B": 0.0, "B": 0.5}],
            }
        )
    )
    (folder / ".lorabar-compare.json").write_text(
        json.dumps({"generator": "lorabar compare", "protocol": "own-lr", "baseline": "lora"})
    )
    (folder / "paired.csv").write_bytes(b"task,method,diff\r\nsst2,obar,0.1\r\n")
    (folder / "runs" / "sst2_obar_s13_0123456789.error.json").write_text(
        json.dumps(
            {
                "config": {"task": "sst2", "method": "obar", "seed": 13},
                "error": "RuntimeError()",
                "traceback": "...",
            }
        )
    )
    (folder / "mine").mkdir()
    (folder / "mine" / "notes.json").write_text('{"mine": true}')
    return folder, runs


def test_a_folder_of_results_without_digests_says_how_to_bring_it_forward(tmp_path, capsys):
    folder, _ = _older(tmp_path)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"No result file in '{folder}' can be trusted: 2 carry no digest" in err
    assert f"`lorabar upgrade {folder}`" in err and len(err.strip().splitlines()) == 1


def test_upgrade_checks_then_stamps_and_signs(tmp_path, capsys):
    folder, runs = _older(tmp_path)
    layers = tmp_path / "layers.json"  # `lorabar inspect --json` output, from before kinds
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert main(["upgrade", "--check", str(folder), str(layers)]) == 1  # would bring 7 forward
    assert "7 to bring forward, 0 left alone" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    with pytest.raises(OutputError, match=r"bring it forward with `lorabar upgrade"):
        check_plan([], [Output("--out", runs[0], "result")])
    assert main(["upgrade", str(folder), str(layers)]) == 0
    assert "7 brought forward" in capsys.readouterr().out
    for path in runs:
        data = json.loads(path.read_text())
        assert header_kind(data) == "result" and digest_ok(data)
    for path, kind in (
        (folder / "manifest.json", "manifest"),
        (layers, "layers"),
        (folder / ".lorabar-compare.json", "compare"),
        (folder / "paired.csv", "paired"),
        (folder / "runs" / "sst2_obar_s13_0123456789.error.json", "error"),
    ):
        assert is_kind(path, kind), path
    assert (folder / "paired.csv").read_bytes() == b"task,method,diff\r\nsst2,obar,0.1\r\n"
    assert (folder / "mine" / "notes.json").read_text() == '{"mine": true}'  # not lorabar's
    (folder / "layers.json").write_bytes(layers.read_bytes())  # says it is no result: skipped
    assert main(["report", str(folder)]) == 0
    assert main(["upgrade", "--check", str(folder)]) == 0  # nothing left to do
    assert "0 to bring forward" in capsys.readouterr().out


def test_an_altered_or_incomplete_result_is_never_signed(tmp_path, capsys):
    folder, runs = _older(tmp_path)
    signed = fake_record("sst2", "obar", 13, 0.8, 0.7, 10)
    edited = folder / "edited.json"
    edited.write_text(
        json.dumps({**signed, "metrics": {"dev": {"accuracy": 1.0}, "test": {"accuracy": 1.0}}})
    )
    runs[1].write_text(json.dumps({"config": {"task": "sst2"}, "metrics": {}}))
    before = {p: p.read_bytes() for p in (edited, runs[1])}
    assert main(["upgrade", str(folder)]) == 1
    out = capsys.readouterr()
    assert f"{edited}: altered: its content does not match its digest; left alone" in out.err
    assert f"{runs[1]}: not signed: no recorded identity" in out.err
    assert "5 brought forward, 2 left alone" in out.out
    assert {p: p.read_bytes() for p in (edited, runs[1])} == before


def test_a_path_that_does_not_exist_is_one_line(tmp_path, capsys):
    assert main(["upgrade", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_look_alikes_edits_and_links_are_left_alone(tmp_path, capsys):
    folder, runs = _older(tmp_path)
    assert main(["upgrade", str(folder)]) == 0
    capsys.readouterr()
    mine = tmp_path / "mine"
    mine.mkdir()
    shapes = {
        "layers.json": {"layers": ["my"], "mean_abs_B": "my own"},
        "my.error.json": {"config": {"a": 1}, "traceback": "log"},
        "sst2_lora_s0.json": {
            "config": {"task": "sst2", "method": "lora", "seed": 0},
            "metrics": {"dev": {"acc": 1}, "test": {"acc": 1}},
            "key": "k",
            "identity": 5,
            "primary_metric": "acc",
        },
        "listed.json": {
            "config": {"task": "sst2", "method": "lora", "seed": 0},
            "metrics": {"dev": {}, "test": {}},
            "key": "k",
            "identity": {},
            "primary_metric": ["acc"],
        },
    }
    for name, data in shapes.items():
        (mine / name).write_text(json.dumps(data))
    before = {p: p.read_bytes() for p in mine.iterdir()}
    assert main(["upgrade", str(mine)]) == 1  # two results not signed, the rest not lorabar's
    out = capsys.readouterr()
    assert "identity is int, expected an object" in out.err
    assert "primary_metric is list, expected a string" in out.err
    assert {p: p.read_bytes() for p in mine.iterdir()} == before
    with (folder / "paired.csv").open("a") as f:  # the user's annotation, after lorabar wrote it
        f.write("# mine\n")
    signed = json.loads(runs[0].read_text())
    runs[0].write_text(
        json.dumps({**signed, "metrics": {"dev": {"accuracy": 1.0}, "test": {"accuracy": 1.0}}})
    )
    assert main(["upgrade", "--check", str(folder)]) == 1
    out = capsys.readouterr()
    assert f"{folder / 'paired.csv'}: edited since lorabar wrote it" in out.err
    assert f"{runs[0]}: altered: its content does not match its digest" in out.err
    link = tmp_path / "link.json"
    link.symlink_to(runs[1])
    assert main(["upgrade", str(runs[1]), str(link)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the property
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "config",
                    "metrics",
                    "layers",
                    "lorabar",
                    "mean_abs_B",
                    "commands",
                    "status",
                    "digest",
                    "identity",
                    "traceback",
                    "generator",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)
NAMES = st.sampled_from(
    [
        "a.json",
        "manifest.json",
        ".lorabar-compare.json",
        "paired.csv",
        "runs/sst2_lora_s13_0123456789.json",
        "runs/sst2_lora_s13_0123456789.error.json",
    ]
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(NAMES, VALUES, min_size=1, max_size=4))
def test_any_folder_is_planned_or_refused_in_one_line_and_nothing_is_written(files):
    """Whatever a folder holds, planning reads it without writing, refuses in one line (a
    ValueError naming the file) or plans only what it checked: a result only if complete."""
    from lorabar.harness.report.load import BadResultError, check_content
    from lorabar.harness.report.upgrade import plan_upgrade

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, value in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(
                "task,method,x\n" if name.endswith(".csv") else json.dumps(value)
            )
        before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
        try:
            steps = plan_upgrade([root])
        except ValueError as err:
            assert str(root) in str(err) and "\n" not in str(err)
            steps = []
        assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
        for step in steps:
            if step.kind == "result":
                try:
                    check_content(step.path)
                except BadResultError:
                    pytest.fail(f"{step.path} planned for signing but incomplete")
