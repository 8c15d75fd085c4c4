"""lorabar.guard: the one output guard.  Named cases, then a property: for generated layouts of
inputs and outputs (equal, nested, symlinked, existing user files and folders, files that look
like lorabar's, folders of every kind, a user's files inside listed subfolders), the guard either
refuses with an OutputError naming the flag or the write goes through -- and no file the user
had is ever changed or removed.  Removing the kind checks makes the property fail (shown)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lorabar import guard, publish
from lorabar.filekinds import header_kind, unstamped
from lorabar.folders import manifest_text
from lorabar.guard import (
    MANIFEST,
    Input,
    Output,
    OutputError,
    check_output,
    check_plan,
    owned_files,
    write_json,
    write_text,
)
from lorabar.publish import merge_folder, publish_folder, staging

RESULT = {"config": {"task": "sst2"}, "metrics": {"dev": {}, "test": {}}}


def test_an_output_equal_to_an_input_is_refused(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("{}\n")
    with pytest.raises(
        OutputError,
        match=r"Invalid --out: .* is an input of this command "
        r"\(--train\)",
    ):
        check_plan([Input("--train", data)], [Output("--out", data, "result")])
    link = tmp_path / "alias.json"
    link.symlink_to(data)
    with pytest.raises(OutputError, match=r"is an input of this command"):
        check_plan([Input("--train", data)], [Output("--out", link, "result")], allow_symlink=True)


def test_an_output_inside_an_input_folder_or_another_output_is_refused(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(OutputError, match=r"inside .*an input folder of this command \(--model\)"):
        check_plan(
            [Input("--model", tmp_path / "ds")],
            [Output("--out", tmp_path / "ds" / "r.json", "result")],
        )
    with pytest.raises(
        OutputError,
        match=r"is inside --save-adapter .* a folder lorabar "
        r"replaces whole",
    ):
        check_plan(
            [],
            [
                Output("--out", tmp_path / "A" / "r.json", "result"),
                Output("--save-adapter", tmp_path / "A", "adapter"),
            ],
        )
    with pytest.raises(OutputError, match=r"is also --save-adapter"):
        check_plan(
            [],
            [
                Output("--out", tmp_path / "X", "result"),
                Output("--save-adapter", tmp_path / "X", "adapter"),
            ],
        )
    # a report inside a comparison's folder is what compare writes: allowed
    check_plan(
        [],
        [
            Output("--out", tmp_path / "C", "folder"),
            Output("--report", tmp_path / "C" / "report", "report"),
        ],
    )


def test_a_folder_replaced_whole_may_not_hold_an_input(tmp_path):
    (tmp_path / "runs").mkdir()
    run = tmp_path / "runs" / "r.json"
    run.write_text(json.dumps(RESULT))
    with pytest.raises(OutputError, match=r"would be replaced whole, and it holds"):
        check_plan([Input("DIR", run)], [Output("--out", tmp_path, "report")])


def test_existing_files_are_replaced_only_when_they_are_lorabars_of_that_kind(tmp_path):
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": true}')
    with pytest.raises(OutputError, match=r"exists and is not a lorabar run result"):
        write_json(Output("--out", mine, "result"), RESULT)
    assert mine.read_text() == '{"mine": true}'
    ours = tmp_path / "r.json"
    write_json(Output("--out", ours, "result"), RESULT)
    write_json(Output("--out", ours, "result"), {**RESULT, "x": 1})  # lorabar's: replaced
    assert json.loads(ours.read_text())["x"] == 1
    with pytest.raises(OutputError, match=r"not a figure lorabar drew"):
        check_plan([], [Output("--png", ours, "png")])
    with pytest.raises(OutputError, match=r"not a lorabar adapter report"):  # another kind
        check_plan([], [Output("--json", ours, "layers")])


def test_a_file_is_known_by_what_it_says_not_by_its_shape(tmp_path):
    shaped = tmp_path / "mine.json"  # a user's JSON with a config object and metrics
    shaped.write_text(json.dumps(RESULT))
    with pytest.raises(
        OutputError,
        match=r"not a lorabar run result; .*if an older lorabar "
        r"wrote it, bring it forward with `lorabar upgrade",
    ):
        check_plan([], [Output("--out", shaped, "result")])
    assert json.loads(shaped.read_text()) == RESULT
    ours = tmp_path / "ours.json"
    write_json(Output("--out", ours, "result"), RESULT)
    data = json.loads(ours.read_text())
    assert header_kind(data) == "result" and next(iter(data)) == "lorabar"
    assert unstamped({k: v for k, v in data.items() if k != "digest"}) == RESULT
    edited = {**data, "metrics": {"dev": {"acc": 1}}}  # the header still says result: replaced
    ours.write_text(json.dumps(edited))
    check_plan([], [Output("--out", ours, "result")])
    fake = tmp_path / "fake.json"  # a header of another kind
    fake.write_text(json.dumps({"lorabar": {"kind": "layers"}, **RESULT}))
    with pytest.raises(
        OutputError,
        match=r"not a lorabar run result; lorabar replaces only its "
        r"own files of that kind; give a new path",
    ):
        check_plan([], [Output("--out", fake, "result")])


def test_a_csv_is_lorabars_while_its_folder_lists_its_sha256(tmp_path):
    mine = tmp_path / "paired.csv"
    mine.write_text("task,method,my own table\n")
    with pytest.raises(OutputError, match=r"not a lorabar paired-differences table"):
        check_plan([], [Output("--out", mine, "paired")])
    out = tmp_path / "C" / "paired.csv"
    out.parent.mkdir()
    write_text(Output("--out", out, "paired"), "task,method\r\nsst2,obar\r\n")
    assert out.read_bytes() == b"task,method\r\nsst2,obar\r\n"
    check_plan([], [Output("--out", out, "paired")])  # listed with its sha256: lorabar's
    out.write_text("task,method,edited\n")
    with pytest.raises(OutputError, match=r"not a lorabar paired-differences table"):
        check_plan([], [Output("--out", out, "paired")])


@pytest.mark.parametrize(
    "had,kind",
    [
        ("adapter", "report"),
        ("report", "adapter"),
        ("figures", "report"),
        ("report", "folder"),
        ("adapter", "figures"),
        ("folder", "adapter"),
    ],
)
def test_a_folder_is_written_only_as_the_kind_its_manifest_names(tmp_path, had, kind):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.csv").write_text("x")
    (folder / MANIFEST).write_text(manifest_text(had, ["a.csv"]))
    with pytest.raises(
        OutputError,
        match=rf"is a lorabar {had if had != 'folder' else 'results'}"
        r" folder, not a lorabar",
    ):
        check_plan([], [Output("--out", folder, kind)])
    if kind in ("report", "adapter"):  # not even when the caller forces its way in
        with staging(Output("--out", folder, kind)) as tmp:
            (tmp / "b.csv").write_text("y")
            with pytest.raises(OutputError, match="not a lorabar"):
                publish_folder(tmp, Output("--out", folder, kind), force=True)
    assert (folder / "a.csv").read_text() == "x"


def _publish(out: Path, files: dict[str, str], kind: str = "adapter") -> list[str]:
    with staging(Output("--out", out, kind)) as tmp:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
        return publish_folder(tmp, Output("--out", out, kind))


def test_a_users_file_inside_a_listed_subfolder_is_kept(tmp_path):
    out = tmp_path / "ad"
    assert _publish(out, {"a.bin": "1", "portable/config.json": "1"}) == [
        "a.bin",
        "portable/config.json",
    ]
    assert owned_files(out) == {MANIFEST, "a.bin", "portable/config.json"}
    (out / "portable" / "notes.txt").write_text("mine")
    (out / "portable" / "empty").mkdir()
    _publish(out, {"a.bin": "2", "portable/config.json": "2"})
    assert (out / "portable" / "notes.txt").read_text() == "mine"
    assert (out / "portable" / "empty").is_dir()
    assert (out / "portable" / "config.json").read_text() == "2"
    # an older manifest listed the subfolder whole: its files lorabar writes again are replaced,
    # the others kept
    (out / MANIFEST).write_text(
        json.dumps({"generator": "lorabar", "kind": "adapter", "files": ["a.bin", "portable"]})
    )
    _publish(out, {"a.bin": "3", "portable/config.json": "3"})
    assert (out / "portable" / "notes.txt").read_text() == "mine"
    assert (out / "portable" / "config.json").read_text() == "3"


def test_a_users_file_a_new_folder_would_replace_is_refused(tmp_path):
    out = tmp_path / "rep"
    _publish(out, {"report.md": "r"}, "report")
    (out / "table1.csv").write_text("mine")  # not listed: the user's
    with pytest.raises(
        OutputError,
        match=r"holds 'table1.csv', which lorabar did not write, "
        r"and the new folder has a file of that name",
    ):
        _publish(out, {"report.md": "r2", "table1.csv": "t"}, "report")
    assert (out / "table1.csv").read_text() == "mine" and (out / "report.md").read_text() == "r"


def test_a_figures_folder_gains_files_and_keeps_the_users(tmp_path):
    out = Output("--out", tmp_path / "figs", "figures")

    def merge(**files):
        with staging(out) as tmp:
            for name, text in files.items():
                (tmp / name).write_text(text)
            return merge_folder(tmp, out)

    merge(**{"fig1.png": "1"})
    (tmp_path / "figs" / "fig2.png").write_text("mine")
    merge(**{"fig1.png": "2"})
    assert (tmp_path / "figs" / "fig1.png").read_text() == "2"
    with pytest.raises(
        OutputError,
        match=r"holds 'fig2.png' \(or a file where its folder "
        r"goes\), which lorabar did not write",
    ):
        merge(**{"fig1.png": "3", "fig2.png": "3"})
    assert (tmp_path / "figs" / "fig1.png").read_text() == "2"
    assert owned_files(tmp_path / "figs") == {MANIFEST, "fig1.png"}


def test_a_listed_file_turned_into_a_users_folder_is_refused_not_emptied(tmp_path):
    out = tmp_path / "ad"
    _publish(out, {"portable/head.json": "1"})
    (out / "portable" / "head.json").unlink()
    (out / "portable" / "head.json").mkdir()
    (out / "portable" / "head.json" / "notes.txt").write_text("mine")
    with pytest.raises(
        OutputError,
        match=r"holds 'portable/head.json/notes.txt', which lorabar "
        r"did not write",
    ):
        _publish(out, {"portable/head.json": "2"})
    assert (out / "portable" / "head.json" / "notes.txt").read_text() == "mine"


def test_a_subfolder_that_cannot_be_read_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    _publish(out, {"a.csv": "1"}, "report")

    def unreadable(folder):
        if Path(folder) == out:
            raise PermissionError(13, "Permission denied", str(out / "private"))
        return real(folder)

    real = publish.files_under
    monkeypatch.setattr(publish, "files_under", unreadable)
    with pytest.raises(
        OutputError,
        match=r"holds '.*private', which cannot be read \(Permission "
        r"denied\): what it holds could not be carried over",
    ):
        _publish(out, {"a.csv": "2"}, "report")
    assert (out / "a.csv").read_text() == "1"


def test_a_figures_merge_checks_every_file_before_moving_one(tmp_path):
    out = Output("--out", tmp_path / "figs", "figures")
    with staging(out) as tmp:
        for name in ("a.json", "b.png"):
            (tmp / name).write_text("1")
        merge_folder(tmp, out)
    (tmp_path / "figs" / "b.png").unlink()
    (tmp_path / "figs" / "b.png").mkdir()  # a listed file is now the user's folder
    (tmp_path / "figs" / "b.png" / "mine.txt").write_text("mine")
    with staging(out) as tmp:
        for name in ("a.json", "b.png"):
            (tmp / name).write_text("2")
        with pytest.raises(OutputError, match=r"holds 'b.png'"):
            merge_folder(tmp, out)
    assert (tmp_path / "figs" / "a.json").read_text() == "1"  # nothing moved
    assert (tmp_path / "figs" / "b.png" / "mine.txt").read_text() == "mine"


def test_a_manifest_cannot_name_a_path_outside_its_folder(tmp_path):
    for bad in ("../elsewhere.txt", "/etc/passwd", "a/../../b", "", "a//b"):
        (tmp_path / MANIFEST).write_text(json.dumps({"kind": "report", "files": [bad]}))
        assert owned_files(tmp_path) is None, bad


# ----------------------------------------------------------------------------- the property
KINDS = ("result", "layers", "manifest", "paired", "png", "report", "adapter", "figures", "folder")
# where an output can be put, relative to a fixed layout of user files and folders
PLACES = (
    "new.json",
    "newdir",
    "user.json",
    "userdir",
    "userdir/inner.json",
    "userdir/sub",
    "data/train.jsonl",
    "data/out.json",
    "data",
    "link.json",
    "linkdir",
    "user.json/x",
    "like_result.json",
    "like_layers.json",
    "like_manifest.json",
    "like.csv",
    "lorabar_report",
    "lorabar_report/a.csv",
    "lorabar_adapter",
    "lorabar_adapter/portable",
    "legacy_adapter",
    "lorabar_figures",
    "results",
    "results/paired.csv",
    ".",
)
# the files of the layout lorabar wrote, with the output that may replace them (its folder and
# kind); every other file is the user's, and these are too for a write of another kind
OURS = {
    "lorabar_report/a.csv": ("lorabar_report", "report"),
    "lorabar_adapter/a.csv": ("lorabar_adapter", "adapter"),
    "lorabar_adapter/portable/a.csv": ("lorabar_adapter", "adapter"),
    "legacy_adapter/portable/a.csv": ("legacy_adapter", "adapter"),
    "lorabar_figures/a.csv": ("lorabar_figures", "figures"),
    "results/paired.csv": ("results", "folder"),
}


def _folder(root: Path, name: str, kind: str, listed: list[str], files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / name / rel).write_text(text)
    sha = {f: guard._sha256(root / name / f) for f in listed} if kind == "folder" else None
    (root / name / MANIFEST).write_text(manifest_text(kind, listed, sha))


def _layout(root: Path) -> None:
    (root / "user.json").write_text('{"user": 1}')
    (root / "like_result.json").write_text(json.dumps(RESULT))  # shaped like lorabar's files
    (root / "like_layers.json").write_text('{"layers": [], "mean_abs_B": 0}')
    (root / "like_manifest.json").write_text('{"commands": [], "status": "current"}')
    (root / "like.csv").write_text("task,method,my own\n")
    (root / "userdir" / "sub").mkdir(parents=True)
    (root / "userdir" / "inner.json").write_text('{"inner": 1}')
    (root / "userdir" / "sub" / "deep.txt").write_text("deep")
    (root / "data").mkdir()
    (root / "data" / "train.jsonl").write_text('{"text": "a"}\n')
    (root / "link.json").symlink_to(root / "user.json")
    (root / "linkdir").symlink_to(root / "userdir")
    _folder(
        root,
        "lorabar_report",
        "report",
        ["a.csv"],
        {"a.csv": "x", "notes.md": "the user's notes beside a report"},
    )
    _folder(
        root,
        "lorabar_adapter",
        "adapter",
        ["a.csv", "portable/a.csv"],
        {"a.csv": "x", "portable/a.csv": "x", "portable/notes.txt": "mine, in a listed subfolder"},
    )
    _folder(
        root,
        "legacy_adapter",
        "adapter",
        ["portable"],  # an older manifest: a whole folder
        {"portable/a.csv": "x", "portable/mine.txt": "mine"},
    )
    (root / "legacy_adapter" / MANIFEST).write_text(
        json.dumps({"kind": "adapter", "files": ["portable"]})
    )
    _folder(root, "lorabar_figures", "figures", ["a.csv"], {"a.csv": "x", "mine.csv": "mine"})
    _folder(
        root,
        "results",
        "folder",
        ["paired.csv"],
        {"paired.csv": "task,method\n", "manifest.json": '{"mine": true}'},
    )


def _user_files(root: Path, outputs) -> dict[str, bytes]:
    """Every file but the manifests and those of lorabar's that ``outputs`` may replace."""
    mine = {
        rel
        for rel, (folder, kind) in OURS.items()
        if (folder, kind) in outputs or (rel, "paired") in outputs
    }
    return {
        rel: p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not p.is_symlink()
        and p.name != MANIFEST
        and (rel := p.relative_to(root).as_posix()) not in mine
    }


def _write(out: Output, allow: bool) -> None:
    path = Path(out.path)
    if out.kind in ("result", "layers", "manifest"):
        write_json(out, {"written": out.kind}, allow_symlink=allow)
    elif out.kind in ("paired", "png"):
        write_text(out, "task,method\n", allow_symlink=allow)
    elif out.kind in ("report", "adapter"):
        check_output(out, allow_symlink=allow)
        path = path.resolve() if allow else path  # what the command writes through the link
        _publish(path, {"a.csv": "new", "portable/a.csv": "new"}, out.kind)
    elif out.kind == "figures":
        with staging(out) as tmp:
            (tmp / "a.csv").write_text("new")
            merge_folder(tmp, out, allow_symlink=allow)
    else:  # a results folder: lorabar writes its own files into it
        check_output(out, allow_symlink=allow)
        write_json(Output(out.flag, path / "runs" / "r.json", "result"), RESULT)
        write_text(Output(out.flag, path / "paired.csv", "paired"), "task,method\n")


def _lost(outputs, inputs, allow) -> list[str]:
    """Run the plan on a fresh layout; the user's files changed or lost (the test's verdict)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _layout(root)
        before = _user_files(root, outputs)
        plan = [Output(f"--o{i}", root / place, kind) for i, (place, kind) in enumerate(outputs)]
        try:
            check_plan(
                [Input(f"--i{i}", root / p) for i, p in enumerate(inputs)],
                plan,
                allow_symlink=allow,
            )
            for out in plan:
                _write(out, allow)
        except OutputError as err:
            assert str(err).startswith("Invalid --o"), err
        after = _user_files(root, outputs)
        assert os.path.islink(root / "link.json") and os.path.islink(root / "linkdir")
        return [name for name, content in before.items() if after.get(name) != content]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    outputs=st.lists(
        st.tuples(st.sampled_from(PLACES), st.sampled_from(KINDS)), min_size=1, max_size=3
    ),
    inputs=st.lists(
        st.sampled_from(
            ["data/train.jsonl", "data", "userdir", "user.json", "lorabar_report/a.csv"]
        ),
        max_size=2,
    ),
    allow=st.booleans(),
)
@example(outputs=[("lorabar_report", "report")], inputs=[], allow=False)
@example(outputs=[("linkdir", "figures")], inputs=[], allow=True)
@example(outputs=[("data/out.json", "result")], inputs=["data"], allow=False)
@example(outputs=[("like_result.json", "result")], inputs=[], allow=False)
@example(outputs=[("lorabar_adapter", "report")], inputs=[], allow=False)
@example(outputs=[("legacy_adapter", "adapter")], inputs=[], allow=False)
def test_no_layout_loses_a_users_file(outputs, inputs, allow):
    lost = _lost(outputs, inputs, allow)
    assert not lost, f"{lost} changed or lost: {outputs} {inputs}"


# every way the kind checks guard a file, and the layout that loses one without them
WITHOUT_KINDS = [
    ([("like_result.json", "result")], "like_result.json"),
    ([("like.csv", "paired")], "like.csv"),
    ([("like_layers.json", "layers")], "like_layers.json"),
    ([("lorabar_adapter", "report")], "lorabar_adapter/a.csv"),
    ([("lorabar_report", "adapter")], "lorabar_report/a.csv"),
    ([("lorabar_adapter", "figures")], "lorabar_adapter/a.csv"),
    ([("results", "report")], "results/paired.csv"),
]


@pytest.mark.parametrize("outputs,victim", WITHOUT_KINDS)
def test_the_property_fails_when_the_kind_check_is_removed(monkeypatch, outputs, victim):
    assert _lost(outputs, [], False) == []
    monkeypatch.setattr(guard, "is_kind", lambda path, kind: True)  # a file by its name only
    monkeypatch.setattr(guard, "check_folder_kind", lambda out, p: None)  # any manifest will do
    real = guard.read_folder_manifest
    monkeypatch.setattr(guard, "read_folder_manifest", lambda folder: _as_any_kind(real(folder)))
    monkeypatch.setattr(publish, "check_folder_kind", lambda out, p: None)
    assert victim in _lost(outputs, [], False)


def _as_any_kind(manifest):
    """A manifest read as if its kind were every kind (the check removed)."""
    if manifest is None:
        return None

    class Any(str):
        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

        __hash__ = str.__hash__

    return type(manifest)(Any(manifest.kind or ""), manifest.files, manifest.sha256, manifest.name)


def test_a_file_where_a_results_folder_writes_its_runs_is_refused_before_anything(tmp_path, capsys):
    from conftest import own_data_args, synthetic_files

    from lorabar.cli.main import main

    paths = synthetic_files(tmp_path / "d", n=(16, 8, 8))
    out = tmp_path / "C"
    out.mkdir()
    (out / "runs").write_text("my notes, not a folder")
    assert (
        main(
            [
                "compare",
                "--model",
                "tiny",
                *own_data_args(paths),
                "--methods",
                "lora",
                "--lr",
                "0.001",
                "--seeds",
                "13",
                "--steps",
                "1",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "runs' is a file (give a folder)" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["runs"]  # nothing written
