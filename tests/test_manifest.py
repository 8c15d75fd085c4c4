"""lorabar.harness.plan.manifest: a results folder says which commands made it, from which
grids, where its report is, whether it is current, and which code revisions its runs ran."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lorabar.cli import main
from lorabar.harness.plan.manifest import (
    RESULTS_MANIFEST,
    Manifest,
    read_manifest,
    record_command,
    revisions_of,
)
from conftest import own_data_args, synthetic_files

TEXT = st.text(min_size=1, max_size=12).filter(str.strip)


@st.composite
def manifests(draw) -> Manifest:
    status = draw(st.sampled_from(["current", "superseded", "invalid"]))
    return Manifest(
        commands=tuple(draw(st.lists(TEXT, max_size=3))),
        grids=tuple(draw(st.lists(TEXT, max_size=3))),
        report=draw(st.none() | TEXT),
        status=status,
        superseded_by=draw(TEXT) if status == "superseded" else None,
        reason=None if status == "current" else draw(TEXT),
        revisions=tuple(draw(st.lists(TEXT, max_size=3))),
    )


@given(manifests())
def test_a_manifest_round_trips_through_its_file(tmp_path_factory, manifest):
    folder = tmp_path_factory.mktemp("m")
    (folder / RESULTS_MANIFEST).write_text(json.dumps(manifest.to_json()))
    assert read_manifest(folder) == manifest


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "commands",
                "grids",
                "report",
                "status",
                "reason",
                "superseded_by",
                "revisions",
                "colour",
            ]
        ),
        JSON,
    )
    | JSON
)
def test_any_json_is_a_manifest_or_one_error_naming_the_file(data):
    try:
        Manifest.from_json(data, "R/manifest.json")
    except ValueError as err:
        assert str(err).startswith("Invalid manifest R/manifest.json")


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"status": "stale"}, r"status = 'stale' \(expected one of \['current', 'superseded'"),
        ({"status": "superseded", "reason": "r"}, r"superseded_by goes with status 'superseded'"),
        ({"status": "invalid"}, r"status 'invalid' needs a reason"),
        ({"grids": "g.toml"}, r"grids = 'g.toml' \(expected a list of non-empty strings\)"),
        ({"owner": "me"}, r"unknown keys \['owner'\]"),
    ],
)
def test_a_bad_manifest_is_named(tmp_path, edit, message):
    (tmp_path / RESULTS_MANIFEST).write_text(json.dumps({"commands": ["c"], **edit}))
    with pytest.raises(ValueError, match=message):
        read_manifest(tmp_path)


def test_revisions_are_ordered_by_their_first_run():
    runs = [
        {"environment": {"git_revision": rev, "created": when}}
        for rev, when in [
            ("b", "2026-01-03"),
            ("a", "2026-01-01"),
            ("b", "2026-01-02"),
            ("c", "2026-01-05"),
        ]
    ] + [{"config": {}}]
    assert revisions_of(runs) == ("a", "b", "c")


def test_compare_records_its_command_and_report_states_the_status(tmp_path, capsys):
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    out = tmp_path / "C"
    argv = [
        "compare",
        "--model",
        "tiny",
        *own_data_args(paths),
        "--methods",
        "lora,obar",
        "--lr",
        "0.001",
        "--mu0",
        "1",
        "--seeds",
        "13,21",
        "--steps",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    manifest = read_manifest(out)
    # recorded as typed, absolute paths relative to where it ran: no machine's folders
    assert manifest.commands == (
        "lorabar " + " ".join(os.path.relpath(a) if os.path.isabs(a) else a for a in argv),
    )
    assert not any(word.startswith("/") for word in manifest.commands[0].split())
    assert manifest.report == str(out / "report") and manifest.status == "current"
    assert len(manifest.revisions) == 1  # every run at this checkout's revision
    report = (out / "report" / "report.md").read_text().splitlines()
    end = report[report.index("<summary>Provenance</summary>") :]  # folded, at the end
    assert end[2].startswith("Status: current; code revisions")
    assert end[4] == f"Made by `{manifest.commands[0]}`."
    assert not any(line.startswith("Status:") for line in report[:4])  # current: not on top
    # the maintainer marks it superseded (by hand, in an editor: the file's kind header stays);
    # a rerun keeps that and the report says so
    data = json.loads((out / RESULTS_MANIFEST).read_text())
    assert data["lorabar"]["kind"] == "manifest"
    data |= {
        "status": "superseded",
        "superseded_by": "results/new",
        "reason": "the probe head changed",
    }
    (out / RESULTS_MANIFEST).write_text(json.dumps(data))
    assert main(argv) == 0
    assert read_manifest(out).status == "superseded"
    assert (
        (out / "report" / "report.md")
        .read_text()
        .splitlines()[2]
        .startswith("Status: superseded by results/new: the probe head changed")
    )  # on top when not current
    assert (
        "Status: superseded by results/new: the probe head changed"
        in (out / "report" / "report.md").read_text()
    )
    assert "is marked superseded" in capsys.readouterr().out


def test_a_foreign_manifest_file_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "C").mkdir()
    (tmp_path / "C" / RESULTS_MANIFEST).write_text('{"mine": true}')
    with pytest.raises(ValueError, match=r"Invalid manifest .*: unknown keys \['mine'\]"):
        record_command(tmp_path / "C", "lorabar grid g.toml")
    assert (tmp_path / "C" / RESULTS_MANIFEST).read_text() == '{"mine": true}'


def test_reuse_references_another_folders_runs_instead_of_copying(tmp_path, capsys):
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    argv = [
        "compare",
        "--model",
        "tiny",
        *own_data_args(paths),
        "--methods",
        "lora,obar",
        "--lr",
        "0.001",
        "--mu0",
        "1",
        "--seeds",
        "13,21",
        "--steps",
        "2",
    ]
    assert main([*argv, "--out", str(tmp_path / "A")]) == 0
    assert main([*argv, "--out", str(tmp_path / "B"), "--reuse", str(tmp_path / "A")]) == 0
    assert "0 runs ran now" in capsys.readouterr().out
    assert not list((tmp_path / "B" / "runs").glob("*.json"))  # referenced, not copied
    refs = read_manifest(tmp_path / "B").reuses
    assert len(refs) == 4 and all(r.startswith("../A/runs/") for r in refs)
    assert (tmp_path / "B" / "report" / "paired.csv").read_text() == (
        tmp_path / "A" / "report" / "paired.csv"
    ).read_text()


@pytest.mark.parametrize(
    "target, message",
    [
        ("missing", r"Invalid --reuse: '.*missing' is not a results folder \(no runs/\)"),
        ("file.txt", r"Invalid --reuse: .* is not a results folder \(no runs/\)"),
    ],
)
def test_a_reuse_that_is_no_results_folder_is_refused(tmp_path, capsys, target, message):
    import re

    (tmp_path / "file.txt").mkdir()
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    assert (
        main(
            [
                "compare",
                "--model",
                "tiny",
                *own_data_args(paths),
                "--out",
                str(tmp_path / "C"),
                "--reuse",
                str(tmp_path / target),
            ]
        )
        == 2
    )
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "C").exists()
