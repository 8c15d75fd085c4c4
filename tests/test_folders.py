"""lorabar.folders: a folder's manifest and the files under it.  Named cases, then properties:
any manifest content is read without an exception and never names a path outside its folder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lorabar.folders import (
    LEGACY_MANIFESTS,
    MANIFEST,
    files_under,
    manifest_text,
    read_folder_manifest,
)

NAMES = st.sampled_from(
    [
        "a.csv",
        "portable/a.json",
        "..",
        "../x",
        "/etc/passwd",
        "",
        ".",
        "a//b",
        "a/./b",
        "x\\y",
        "ok/deep/file.png",
    ]
) | st.text(max_size=10)
CONTENT = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["report", "adapter", "figures", "folder", "nope", 3, None]),
            "files": st.lists(NAMES, max_size=4) | st.integers(),
            "sha256": st.dictionaries(NAMES, st.text(max_size=4) | st.integers(), max_size=2),
        }
    ),
    st.lists(NAMES, max_size=3),
    st.text(max_size=20),
    st.integers(),
)


def test_a_manifest_names_its_kind_and_every_file_by_relative_path(tmp_path):
    (tmp_path / MANIFEST).write_text(manifest_text("adapter", ["b", "portable/a"], {"b": "0" * 64}))
    m = read_folder_manifest(tmp_path)
    assert m.kind == "adapter" and m.files == {"b", "portable/a"} and m.sha256 == {"b": "0" * 64}
    assert m.owns("portable/a") and not m.owns("portable/mine.txt")


def test_an_older_report_manifest_is_a_list_and_a_whole_folder_listed_owns_its_files(tmp_path):
    (tmp_path / LEGACY_MANIFESTS[0]).write_text('["report.md", "figs"]')
    m = read_folder_manifest(tmp_path)
    assert m.kind == "report" and m.owns("figs/a.png") and not m.owns("notes.md")


def test_files_under_lists_files_links_and_empty_folders_never_followed(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    (tmp_path / MANIFEST).write_text("{}")
    assert files_under(tmp_path) == ["a/b/f.txt", "empty", "link"]


@settings(max_examples=200, deadline=None)
@given(CONTENT, st.sampled_from([MANIFEST, *LEGACY_MANIFESTS]))
def test_any_manifest_is_read_safely(content, name):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / name).write_text(json.dumps(content))
        m = read_folder_manifest(folder)
        if m is None:
            return
        assert m.kind in (None, "report", "adapter", "figures", "folder")
        for rel in m.files:
            inside = (folder / rel).resolve()
            assert folder.resolve() in inside.parents, rel
        assert set(m.sha256) <= m.files
