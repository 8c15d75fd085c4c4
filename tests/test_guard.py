"""lorabar.guard: the one output guard.  Named cases, then a property: for generated layouts of
inputs and outputs (equal, nested, symlinked, existing user files and folders), the guard either
refuses with an OutputError naming the flag or the write goes through -- and no file the user
had is ever changed or removed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lorabar.guard import (MANIFEST, Input, Output, OutputError, check_plan, owned_files,
                           publish_folder, write_json)

RESULT = {"config": {"task": "sst2"}, "metrics": {"dev": {}, "test": {}}}


def test_an_output_equal_to_an_input_is_refused(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("{}\n")
    with pytest.raises(OutputError, match=r"Invalid --out: .* is an input of this command "
                                          r"\(--train\)"):
        check_plan([Input("--train", data)], [Output("--out", data, "result")])
    link = tmp_path / "alias.json"
    link.symlink_to(data)
    with pytest.raises(OutputError, match=r"is an input of this command"):
        check_plan([Input("--train", data)], [Output("--out", link, "result")],
                   allow_symlink=True)


def test_an_output_inside_an_input_folder_or_another_output_is_refused(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(OutputError, match=r"inside .*an input folder of this command \(--model\)"):
        check_plan([Input("--model", tmp_path / "ds")], [Output("--out", tmp_path / "ds" / "r.json",
                                                                "result")])
    with pytest.raises(OutputError, match=r"is inside --save-adapter .* a folder lorabar "
                                          r"replaces whole"):
        check_plan([], [Output("--out", tmp_path / "A" / "r.json", "result"),
                        Output("--save-adapter", tmp_path / "A", "adapter")])
    with pytest.raises(OutputError, match=r"is also --save-adapter"):
        check_plan([], [Output("--out", tmp_path / "X", "result"),
                        Output("--save-adapter", tmp_path / "X", "adapter")])
    # a report inside a comparison's folder is what compare writes: allowed
    check_plan([], [Output("--out", tmp_path / "C", "folder"),
                    Output("--report", tmp_path / "C" / "report", "report")])


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


def test_symlinks_are_refused_unless_allowed(tmp_path):
    target = tmp_path / "t.json"
    link = tmp_path / "l.json"
    link.symlink_to(target)
    with pytest.raises(OutputError, match=r"is a symbolic link .* pass --allow-symlink"):
        check_plan([], [Output("--out", link, "result")])
    write_json(Output("--out", link, "result"), RESULT, allow_symlink=True)
    assert link.is_symlink() and json.loads(target.read_text()) == RESULT


def test_a_report_folder_keeps_the_users_files_and_removes_only_its_own(tmp_path):
    out = tmp_path / "rep"

    def publish(*names):
        tmp = Path(tempfile.mkdtemp(dir=tmp_path))
        for n in names:
            (tmp / n).write_text(n)
        publish_folder(tmp, Output("--out", out, "report"))

    publish("a.csv", "b.csv")
    (out / "budget.csv").write_text("mine")
    publish("a.csv")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a.csv", "budget.csv"]
    assert owned_files(out) == {MANIFEST, "a.csv"}
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("keep")
    with pytest.raises(OutputError, match=r"not a folder lorabar wrote"):
        check_plan([], [Output("--out", user, "report")])


def test_a_manifest_cannot_name_a_path_outside_its_folder(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"files": ["../elsewhere.txt"]}))
    assert owned_files(tmp_path) is None


# ----------------------------------------------------------------------------- the property
KINDS = ("result", "report", "adapter", "figures", "folder")
# where an output can be put, relative to a fixed layout of user files and folders
PLACES = ("new.json", "newdir", "user.json", "userdir", "userdir/inner.json", "userdir/sub",
          "data/train.jsonl", "data/out.json", "data", "link.json", "linkdir", "user.json/x",
          "lorabar_report", "lorabar_report/a.csv", ".")


def _layout(root: Path) -> None:
    (root / "user.json").write_text('{"user": 1}')
    (root / "userdir").mkdir()
    (root / "userdir" / "inner.json").write_text('{"inner": 1}')
    (root / "userdir" / "sub").mkdir()
    (root / "userdir" / "sub" / "deep.txt").write_text("deep")
    (root / "data").mkdir()
    (root / "data" / "train.jsonl").write_text('{"text": "a"}\n')
    (root / "link.json").symlink_to(root / "user.json")
    (root / "linkdir").symlink_to(root / "userdir")
    rep = root / "lorabar_report"
    rep.mkdir()
    (rep / "a.csv").write_text("x")
    (rep / "notes.md").write_text("the user's notes beside a report")
    (rep / MANIFEST).write_text(json.dumps({"files": ["a.csv"]}))


def _user_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != MANIFEST
            and not (p.parent.name == "lorabar_report" and p.name == "a.csv")}


def _write(out: Output, allow: bool) -> None:
    path = Path(out.path)
    if out.kind == "result":
        write_json(out, RESULT, allow_symlink=allow)
    elif out.kind in ("report", "adapter"):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent))
        (tmp / "a.csv").write_text("new")
        publish_folder(tmp, out)
    else:  # figures / folder: lorabar writes its own file name into it
        path.mkdir(parents=True, exist_ok=True)
        (path / ".lorabar-probe-written").write_text("x")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outputs=st.lists(st.tuples(st.sampled_from(PLACES), st.sampled_from(KINDS)),
                        min_size=1, max_size=3),
       inputs=st.lists(st.sampled_from(["data/train.jsonl", "data", "userdir", "user.json",
                                        "lorabar_report/a.csv"]), max_size=2),
       allow=st.booleans())
@example(outputs=[("lorabar_report", "report")], inputs=[], allow=False)
@example(outputs=[("linkdir", "figures")], inputs=[], allow=True)
@example(outputs=[("data/out.json", "result")], inputs=["data"], allow=False)
def test_no_layout_loses_a_users_file(outputs, inputs, allow):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _layout(root)
        before = _user_files(root)
        plan = [Output(f"--o{i}", root / place, kind) for i, (place, kind) in enumerate(outputs)]
        try:
            check_plan([Input(f"--i{i}", root / p) for i, p in enumerate(inputs)], plan,
                       allow_symlink=allow)
            for out in plan:
                _write(out, allow)
        except OutputError as err:
            assert str(err).startswith("Invalid --o"), err
        after = _user_files(root)
        for name, content in before.items():
            assert after.get(name) == content, f"{name} changed or lost: {outputs} {inputs}"
        assert os.path.islink(root / "link.json") and os.path.islink(root / "linkdir")
