"""Bad input: one clear line naming the file or flag, exit code 2, nothing written, and before
any expensive work.  One test per row of the README's "Bad input" table."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch

import lorabar
from lorabar.cli import main
from lorabar.harness.tasks import data_folder as D
from conftest import DATA as _DATA
from conftest import one_error_line

DATA = str(_DATA)


# ----------------------------------------------------------------------------- grids
@pytest.mark.parametrize("text", ["", "# only a comment\n", "[base]\nsteps = 3\n"])
def test_empty_grid_is_an_error(tmp_path, capsys, text):
    grid = tmp_path / "g.toml"
    grid.write_text(text)
    assert main(["grid", str(grid), "--out", str(tmp_path / "o"), "--data-dir", DATA]) == 2
    err = one_error_line(capsys)
    assert str(grid) in err and "nothing to run" in err
    assert not (tmp_path / "o").exists()


def test_grid_syntax_error_names_the_file(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text("[grid]\nseed = [13, 21\n")
    assert main(["grid", str(grid), "--out", str(tmp_path / "o")]) == 2
    err = one_error_line(capsys)
    assert str(grid) in err and "TOML syntax error" in err


def test_grid_only_matching_nothing(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('[base]\nmodel = "tiny"\n[[variant]]\nmethod = "lora"\n')
    assert main(["grid", str(grid), "--out", str(tmp_path / "o"), "--only", "method=lorra"]) == 2
    assert "no run of this grid has method='lorra'" in one_error_line(capsys)


@pytest.mark.data
def test_grid_ctrl_c_keeps_finished_runs(tmp_path, capsys, monkeypatch):
    import lorabar.harness.execute.grid_runner as G
    from lorabar.harness.execute.local import run_one

    grid = tmp_path / "g.toml"
    grid.write_text(
        '[base]\nmodel = "tiny"\nsteps = 2\nmax_eval = 8\n'
        '[[variant]]\nmethod = ["lora", "obar"]\nmu0 = 10.0\n'
    )
    calls = []

    def runner(cfg, path, *args):
        if calls:
            raise KeyboardInterrupt
        calls.append(path)
        return run_one(cfg, path, *args)

    real = G.run_grid
    monkeypatch.setattr(
        G, "run_grid", lambda *a, **k: real(*a, **k, runner=runner, log=lambda *_: None)
    )
    code = main(["grid", str(grid), "--out", str(tmp_path / "o"), "--data-dir", DATA])
    assert code == 130
    err = one_error_line(capsys)
    assert "interrupted; 1 finished runs kept" in err and "rerun" in err
    assert [p.name for p in (tmp_path / "o" / "runs").glob("*.json")] == [Path(calls[0]).name]


# ----------------------------------------------------------------------------- data files
def _copy_split(tmp_path: Path, task: str) -> Path:
    t = D.TASKS[task]
    src = D.fewshot_dir(t, Path(DATA), 13)
    dst = D.fewshot_dir(t, tmp_path, 13)
    shutil.copytree(src, dst)
    return dst


@pytest.mark.data
def test_unterminated_quote_in_csv(tmp_path, capsys):
    folder = _copy_split(tmp_path, "sst5")
    train = folder / "train.csv"
    lines = train.read_text().splitlines(keepends=True)
    lines.insert(10, '2,"this review never closes its quote\n')  # line 11
    train.write_text("".join(lines))
    with pytest.raises(D.DataError, match=r"train.csv:11: .*unterminated quote"):
        D.load_split("sst5", "train", data_dir=tmp_path)
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "finetune",
                "--task",
                "sst5",
                "--model",
                "tiny",
                "--steps",
                "1",
                "--data-dir",
                str(tmp_path),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 2
    )
    assert "train.csv:11:" in one_error_line(capsys) and not out.exists()


@pytest.mark.data
def test_unterminated_quote_at_end_of_file(tmp_path):
    folder = _copy_split(tmp_path, "trec")
    train = folder / "train.csv"
    n = len(train.read_text().splitlines())
    train.write_text(train.read_text() + '1,"never closed\n')
    with pytest.raises(D.DataError, match=rf"train.csv:{n + 1}: .*unterminated quote"):
        D.load_split("trec", "train", data_dir=tmp_path)


@pytest.mark.data
@pytest.mark.parametrize("content", ["", "sentence\tlabel\n"])
def test_empty_or_header_only_split(tmp_path, content):
    folder = _copy_split(tmp_path, "sst2")
    (folder / "train.tsv").write_text(content)
    with pytest.raises(D.DataError, match=r"train.tsv: no data rows"):
        D.load_split("sst2", "train", data_dir=tmp_path)


@pytest.mark.data
def test_wrong_column_count_and_row_count(tmp_path):
    folder = _copy_split(tmp_path, "qqp")
    dev = folder / "dev.tsv"
    lines = dev.read_text().splitlines(keepends=True)
    good = lines[:]
    lines[5] = lines[5].rstrip("\n") + "\textra\n"
    dev.write_text("".join(lines))
    with pytest.raises(
        D.DataError,
        match=r"dev.tsv:6: malformed row for task 'qqp': 7 fields "
        r"\(expected 6\)",
    ):
        D.load_split("qqp", "dev", data_dir=tmp_path)
    dev.write_text("".join(good[:-1]))  # one row short
    with pytest.raises(
        D.DataError,
        match=r"dev.tsv: 1023 examples, but the k=512 split holds "
        r"1024",
    ):
        D.load_split("qqp", "dev", data_dir=tmp_path)


# ----------------------------------------------------------------------------- report
def _result_files(tmp_path) -> Path:
    from conftest import fake_record

    folder = tmp_path / "runs"
    folder.mkdir()
    for i, (seed, test) in enumerate(((13, 0.8), (21, 0.82), (42, 0.84))):
        (folder / f"r{i}.json").write_text(
            json.dumps(fake_record("sst2", "lora", seed, 0.8, test, 100))
        )
    return folder


def test_report_refuses_a_corrupt_result(tmp_path, capsys):
    folder = _result_files(tmp_path)
    bad = folder / "r2.json"
    bad.write_text(bad.read_text()[:200])  # a truncated write
    assert main(["report", str(folder), "--out", str(tmp_path / "rep")]) == 2
    err = one_error_line(capsys)
    assert str(bad) in err and "--skip-bad" in err
    assert not (tmp_path / "rep").exists()
    assert main(["report", str(folder), "--out", str(tmp_path / "rep"), "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert f"skipped {bad}" in captured.err
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "2 runs" in md and "Skipped files (1" in md and str(bad) in md


def test_report_refuses_a_result_without_key(tmp_path, capsys):
    folder = _result_files(tmp_path)
    r = json.loads((folder / "r0.json").read_text())
    del r["key"]
    (folder / "r0.json").write_text(json.dumps(r))
    assert main(["report", str(folder)]) == 2
    assert "r0.json: not a complete result: missing key" in one_error_line(capsys)


# ----------------------------------------------------------------------------- flags
@pytest.mark.parametrize(
    "argv, flag",
    [
        (["finetune-lm", "--steps=-2"], "--steps"),
        (["finetune-lm", "--batch-size", "0"], "--batch-size"),
        (["finetune", "--max-eval", "-5"], "--max-eval"),
        (["finetune", "--lora-r", "0"], "--lora-r"),
        (["finetune", "--mu0", "2000", "--method", "nbar"], "mu0 * lr"),
        (["finetune", "--precision", "fp8"], "precision"),
        (["finetune", "--device", "gpu"], "device"),
    ],
)
def test_flags_are_range_checked(tmp_path, capsys, argv, flag):
    out = tmp_path / "r.json"
    assert main(argv + ["--model", "tiny", "--data-dir", DATA, "--out", str(out), "--quiet"]) == 2
    err = one_error_line(capsys)
    assert err.startswith("lorabar: error: Invalid") and flag in err
    assert not out.exists()


@pytest.mark.data
@pytest.mark.parametrize("where", ["dir", "under_file", "unwritable"])
def test_bad_out_fails_before_training(tmp_path, capsys, where):
    target = {
        "dir": tmp_path,
        "under_file": tmp_path / "file.txt" / "r.json",
        "unwritable": Path("/proc/lorabar/r.json"),
    }[where]
    (tmp_path / "file.txt").write_text("x")
    start = time.perf_counter()
    assert (
        main(
            [
                "finetune",
                "--task",
                "sst2",
                "--steps",
                "300",
                "--data-dir",
                DATA,
                "--out",
                str(target),
                "--quiet",
            ]
        )
        == 2
    )
    assert time.perf_counter() - start < 10
    err = one_error_line(capsys)
    assert "Invalid --out" in err and str(target) in err


def test_bad_out_for_folders_and_bench_args(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    for argv in (
        ["grid", "grids/table1.toml"],
        ["report", str(tmp_path)],
        ["toy", "fig1"],
        ["bench", "--arch", "opt-1.3b"],
    ):
        assert main(argv + ["--out", str(tmp_path / "file.txt")]) == 2, argv
        assert "is a file (give a folder)" in one_error_line(capsys)
    start = time.perf_counter()
    assert main(["bench", "--bar-pairs", "x", "--out", str(tmp_path / "b")]) == 2
    assert time.perf_counter() - start < 10
    assert "Invalid --bar-pairs: 'x'" in one_error_line(capsys)
    assert not (tmp_path / "b").exists()


# ----------------------------------------------------------------------------- BAR and SAM
def _pairs(seed=0, n=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for i in range(n):
        x = torch.nn.Parameter(torch.randn(2, 5, generator=g, dtype=dtype))
        y = torch.nn.Parameter(torch.randn(4, 2, generator=g, dtype=dtype) * 0.5)
        x.grad = torch.randn(2, 5, generator=g, dtype=dtype)
        y.grad = torch.randn(4, 2, generator=g, dtype=dtype)
        pairs.append(lorabar.FactorPair(x=x, y=y, name=f"p{i}"))
    return pairs


@pytest.mark.parametrize("mode", ["nbar", "obar"])
@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_bar_leaves_a_pair_with_a_nonfinite_gradient_alone(mode, foreach, bad):
    pairs, ref = _pairs(), _pairs()
    pairs[1].y.grad[0, 0] = bad
    before = [(p.x.detach().clone(), p.y.detach().clone()) for p in pairs]
    bar = lorabar.BAR(pairs, mode=mode, mu0=0.1, foreach=foreach)
    lorabar.BAR(ref, mode=mode, mu0=0.1, foreach=foreach).apply(1.0)
    bar.apply(1.0)
    assert torch.equal(pairs[1].x, before[1][0]) and torch.equal(pairs[1].y, before[1][1])
    for i in (0, 2):  # the others are rescaled exactly as without the bad pair
        assert not torch.equal(pairs[i].x, before[i][0])
        assert torch.equal(pairs[i].x, ref[i].x) and torch.equal(pairs[i].y, ref[i].y)
    assert bar.step == 1


def test_sam_nonfinite_first_pass_perturbs_nothing():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    v = torch.nn.Parameter(torch.tensor([3.0]))
    sam = lorabar.SAM([w, v], torch.optim.SGD, rho=0.5, lr=0.1)
    w.grad = torch.tensor([float("nan"), 1.0])
    v.grad = torch.tensor([2.0])
    sam.first_step(zero_grad=True)
    assert torch.equal(w.detach(), torch.tensor([1.0, 2.0])) and torch.equal(
        v.detach(), torch.tensor([3.0])
    )
    assert sam.perturbation_norm.item() == 0.0
    w.grad, v.grad = torch.tensor([1.0, 1.0]), torch.tensor([1.0])  # the second pass
    sam.second_step()  # restores (a no-op here) and steps
    assert torch.allclose(w.detach(), torch.tensor([0.9, 1.9]))


def test_sam_without_gradients_says_so():
    w = torch.nn.Parameter(torch.ones(2))
    sam = lorabar.SAM([w], torch.optim.SGD, lr=0.1)
    with pytest.raises(
        RuntimeError,
        match=r"no parameter has a gradient; run the first forward "
        r"and backward pass",
    ):
        sam.first_step()


@pytest.mark.parametrize("state", ["garbage", None, [1, 2]])
def test_bar_load_state_dict_checks_its_argument(state):
    bar = lorabar.BAR(_pairs(), mode="nbar")
    with pytest.raises(
        TypeError,
        match=r"Invalid state_dict: a \w+ \(expected the dict that "
        r"BAR.state_dict\(\) returns\)",
    ):
        bar.load_state_dict(state)


# ------------------------------------------------------------------------ flags say what they mean
def _own(tmp_path):
    from conftest import own_data_args, synthetic_files

    return own_data_args(synthetic_files(tmp_path / "d", n=(32, 16, 16)))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["finetune", "--model", "tiny", "--out", ""], r"Invalid --out: an empty value"),
        (
            ["finetune", "--model", "tiny", "--out=", "--steps", "1"],
            r"Invalid --out: an empty value",
        ),
        (["report", " "], r"Invalid DIR: an empty value"),
        (
            ["compare", "--model", "tiny", "--methods", "lora,sam,lora", "--out", "C"],
            r"Invalid --methods: 'lora,sam,lora' names lora more than once",
        ),
        (
            ["compare", "--model", "tiny", "--seeds", "13,13", "--out", "C"],
            r"Invalid --seeds: '13,13' names 13 more than once",
        ),
    ],
)
def test_a_flag_that_cannot_mean_anything_is_refused(tmp_path, capsys, monkeypatch, argv, message):
    import re

    monkeypatch.chdir(tmp_path)
    own = _own(tmp_path) if argv[0] != "report" else []
    assert main([*argv, *own]) == 2
    assert re.search(message, one_error_line(capsys))
    assert sorted(p.name for p in tmp_path.iterdir()) == (["d"] if own else [])  # nothing written


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "x", "--top", "-1"],
        ["grid", "g.toml", "--out", "o", "--executor", "ray", "--cpus-per-run", "0"],
    ],
)
def test_out_of_range_counts_are_refused_by_the_parser(argv):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2


def test_a_test_file_that_is_the_dev_file_is_refused(tmp_path, capsys):
    own = _own(tmp_path)
    own[own.index("--test") + 1] = own[own.index("--dev") + 1]
    assert main(["finetune", "--model", "tiny", *own, "--out", str(tmp_path / "o.json")]) == 2
    assert "Invalid --test:" in (err := one_error_line(capsys)) and "is --dev" in err
    assert not (tmp_path / "o.json").exists()


def test_a_variant_does_not_replace_the_base_method(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('[base]\nmethod = "lora"\nmodel = "tiny"\n[[variant]]\nmethod = "sam"\n')
    assert main(["grid", str(grid), "--out", str(tmp_path / "o")]) == 2
    assert "variant[0].method = 'sam' replaces base.method = 'lora'" in one_error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_only_compares_numbers_by_value():
    from lorabar.harness.plan.grid import plan_configs

    grid = {"base": {"model": "tiny"}, "variant": [{"method": "lora", "lr": [1e-3, 3e-3]}]}
    assert [c.lr for c in plan_configs(grid, only={"lr": "1e-3"})] == [1e-3]
    assert [c.lr for c in plan_configs(grid, only={"lr": "0.0030"})] == [3e-3]
    with pytest.raises(ValueError, match=r"no run of this grid has lr='1e-2'"):
        plan_configs(grid, only={"lr": "1e-2"})


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "{file}"], r"Invalid DIR: '.*x.csv' is a file, not a folder of result files"),
        (
            ["grid", "{folder}", "--out", "{folder}/o"],
            r"Invalid grid config: '.*' is a folder, not a "
            r"grid TOML",
        ),
        (["inspect", "{file}"], r"Invalid ADAPTER: '.*x.csv' is a file, not an adapter folder"),
    ],
)
def test_a_path_of_the_wrong_kind_is_named_as_such(tmp_path, capsys, argv, message):
    """Not "not found" for a path that exists, and not --out blamed for DIR."""
    import re

    (tmp_path / "x.csv").write_text("a,b\n")
    argv = [a.format(file=tmp_path / "x.csv", folder=tmp_path) for a in argv]
    assert main(argv) == 2
    assert re.search(message, one_error_line(capsys))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]
