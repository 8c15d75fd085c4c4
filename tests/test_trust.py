"""Results you can trust: a run's identity, a report's inputs, and the files around them.

One test per case of issue 19 (each failed on the code before it): run identity and resume,
what `report` reads and pairs, strict data files, the SmolLM2 cache, `inspect` never touching a
file it was not asked to write, and grid processes (lock, workers, full disk, Ctrl-C)."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import lorabar.harness.execute.grid_runner as X
import lorabar.harness.plan.grid as G
from lorabar.cli import main
from lorabar.harness.tasks import data_folder as D
from lorabar.harness.run.config import EncoderConfig
from lorabar.harness.run.identity import run_id
from conftest import one_error_line
from conftest import DATA, fake_record

TINY = (
    '[base]\nmodel = "tiny"\nsteps = 2\nmax_eval = 8\ntask = "sst2"\n[[variant]]\nmethod = "lora"\n'
)


def _quiet(*_):
    pass


def _data_copy(tmp_path: Path, *, flip: bool = False) -> Path:
    """A data folder with SST-2's seed-13 split; ``flip`` swaps every train label."""
    src = DATA / "sst2" / "k-shot-1k-test" / "SST-2" / "512-13"
    dst = tmp_path / "data" / "sst2" / "k-shot-1k-test" / "SST-2" / "512-13"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        shutil.copy(f, dst / f.name)
    if flip:
        lines = (dst / "train.tsv").read_text().splitlines()
        flipped = [lines[0]] + [
            line[:-1] + ("1" if line.endswith("0") else "0") for line in lines[1:]
        ]
        (dst / "train.tsv").write_text("\n".join(flipped) + "\n")
    return tmp_path / "data"


# ----------------------------------------------------------------------------- run identity
@pytest.mark.data
def test_grid_redoes_a_run_whose_data_changed(tmp_path):
    grid = G.load_grid(_write(tmp_path / "g.toml", TINY))
    altered = _data_copy(tmp_path, flip=True)
    out = tmp_path / "o"
    assert X.run_grid(grid, out, data_dir=str(altered), log=_quiet)["done"] == 1
    counts = X.run_grid(grid, out, data_dir=str(DATA), log=_quiet)
    assert counts["skipped"] == 0 and counts["done"] == 1  # not "1 already done"
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert len(records) == 2
    digests = {r["identity"]["data"]["sst2/k-shot-1k-test/SST-2/512-13/train.tsv"] for r in records}
    assert len(digests) == 2
    # the same content under another folder name is the same run
    same = _data_copy(tmp_path / "b")
    assert X.run_grid(grid, out, data_dir=str(same), log=_quiet)["skipped"] == 1


@pytest.mark.data
def test_identity_holds_the_resolved_precision_and_eval_batch(monkeypatch):
    cfg = EncoderConfig(model="tiny", precision="auto", data_dir=str(DATA), threads=1)
    monkeypatch.setenv("LORABAR_NATIVE_BF16", "1")
    bf16 = G.identity_of(cfg)
    monkeypatch.setenv("LORABAR_NATIVE_BF16", "0")
    fp32 = G.identity_of(cfg)
    assert (bf16["precision"], fp32["precision"]) == ("bf16", "fp32")
    assert run_id(bf16) != run_id(fp32)
    # asking for fp32 explicitly is the same run as auto resolving to fp32
    explicit = G.identity_of(
        EncoderConfig(model="tiny", precision="fp32", data_dir=str(DATA), threads=1)
    )
    assert explicit == fp32
    other = EncoderConfig(
        model="tiny", precision="fp32", data_dir=str(DATA), threads=1, eval_batch_size=8
    )
    assert run_id(G.identity_of(other)) != run_id(fp32)
    two = EncoderConfig(model="tiny", precision="fp32", data_dir=str(DATA), threads=2)
    assert G.identity_of(two)["threads"] == 2 and run_id(G.identity_of(two)) != run_id(fp32)


def test_identity_hashes_the_model_weights(tmp_path):
    from lorabar.harness.run.identity import model_identity

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"a" * 100)
    (folder / "config.json").write_text("{}")
    (folder / "README.md").write_text("docs do not change the model")
    first = model_identity(str(folder))
    assert set(first["files"]) == {"model.safetensors", "config.json"}
    (folder / "model.safetensors").write_bytes(b"b" * 100)
    assert model_identity(str(folder)) != first


@pytest.mark.data
def test_grid_moves_aside_a_file_whose_content_is_another_run(tmp_path, capsys):
    grid = G.load_grid(_write(tmp_path / "g.toml", TINY + "[grid]\nseed = [13, 21]\n"))
    out = tmp_path / "o"
    X.run_grid(grid, out, data_dir=str(DATA), log=_quiet)
    runs = {json.loads(p.read_text())["config"]["seed"]: p for p in (out / "runs").glob("*.json")}
    runs[13].write_text(runs[21].read_text())  # a seed-21 record under seed 13's name
    lines = []
    counts = X.run_grid(grid, out, data_dir=str(DATA), log=lines.append)
    assert counts["skipped"] == 1 and counts["done"] == 1
    aside = [line for line in lines if "moved" in line]
    assert len(aside) == 1 and runs[13].name in aside[0] and "seed 21" in aside[0]
    assert (out / "aside" / runs[13].name).is_file()
    assert json.loads(runs[13].read_text())["config"]["seed"] == 13
    # report refuses a misnamed file instead of counting seed 21 twice
    shutil.copy(runs[21], out / "runs" / runs[13].name)
    assert main(["report", str(out), "--out", str(tmp_path / "rep")]) == 2
    err = one_error_line(capsys)
    assert runs[13].name in err and "not the run its name says" in err


# ----------------------------------------------------------------------------- report
def _folder(tmp_path: Path, runs: list[dict], name: str = "res") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    for r in runs:
        (folder / f"{run_id(r['identity'])}.json").write_text(json.dumps(r))
    return folder


def _two_methods(**kw) -> list[dict]:
    return [
        fake_record("sst2", m, s, 0.8, 0.8 + 0.01 * s / 13 + (0.02 if m == "sam" else 0), 100, **kw)
        for m in ("lora", "sam")
        for s in (13, 21)
    ]


def test_report_reads_only_the_folder_and_its_runs(tmp_path, capsys):
    folder = _folder(tmp_path, [], "o")
    runs = _folder(
        tmp_path,
        [fake_record("sst2", "lora", s, 0.8, t, 100) for s, t in ((13, 0.2), (21, 0.4))],
        "o/runs",
    )
    backup = runs / "backup"
    backup.mkdir()
    for p in runs.glob("*.json"):
        shutil.copy(p, backup / p.name)
    assert main(["report", str(folder), "--out", str(tmp_path / "rep")]) == 0
    table = (tmp_path / "rep" / "table1.csv").read_text()
    assert "30.0 ± 14.1 (2)" in table  # the two runs, not four
    assert main(["report", str(folder), "--out", str(tmp_path / "rep"), "--recursive"]) == 2
    assert "hold the same run" in one_error_line(capsys)


@pytest.mark.parametrize(
    "field, values",
    [("model", ("minilm", "other")), ("steps", (300, 30)), ("precision", ("fp32", "bf16"))],
)
def test_report_refuses_to_pair_different_runs(tmp_path, capsys, field, values):
    runs = _two_methods(**{field: values[0]})
    runs += [fake_record("sst2", "sam", s, 0.8, 0.1, 100, **{field: values[1]}) for s in (13, 21)]
    folder = _folder(tmp_path, runs)
    assert main(["report", str(folder), "--out", str(tmp_path / "rep")]) == 2
    err = one_error_line(capsys)
    assert "not comparable" in err and field in err and err.count(".json") == 2
    assert not (tmp_path / "rep").exists()
    assert main(["report", str(folder), "--out", str(tmp_path / "rep"), "--allow-mixed"]) == 0
    header = (tmp_path / "rep" / "table1.csv").read_text().splitlines()[0]
    assert header.startswith("method,model,steps,precision")
    paired = (tmp_path / "rep" / "paired.csv").read_text().splitlines()
    # SAM of the odd context has no LoRA of its own context: it is not paired with the other
    assert len(paired) == 3  # header, sst2, the average over tasks
    at = paired[0].split(",").index("mean_diff")
    assert all(row.split(",")[at : at + 3] == ["2.00", "2.00", "2.00"] for row in paired[1:])
    assert all(row.split(",")[at + 3] == "better" for row in paired[1:])  # +2 on both seeds
    column = paired[0].split(",").index(field)
    assert {row.split(",")[column].split("@")[0] for row in paired[1:]} == {str(values[0])}
    # |B| is paired the same way: within a context, its values in their own columns
    balance = (tmp_path / "rep" / "balancedness_paired.csv").read_text().splitlines()
    assert balance[0].startswith("task,method,model,steps,precision,measure")
    assert {row.split(",")[1] for row in balance[1:]} == {"LoRA-SAM"}


@pytest.mark.parametrize(
    "flag, value, hint",
    [
        ("--baseline", "sam", "present: lora"),
        ("--baseline", "LoRA", "is a label"),
        ("--reference", "obar", "present: lora"),
    ],
)
def test_report_refuses_a_baseline_that_is_absent(tmp_path, capsys, flag, value, hint):
    folder = _folder(tmp_path, [fake_record("sst2", "lora", s, 0.8, 0.8, 100) for s in (13, 21)])
    assert main(["report", str(folder), "--out", str(tmp_path / "rep"), flag, value]) == 2
    err = one_error_line(capsys)
    assert f"Invalid {flag} {value!r}" in err and hint in err
    assert not (tmp_path / "rep").exists()


def test_report_never_selects_a_nan_metric(tmp_path, capsys):
    good = [fake_record("stsb", "lora", s, 0.5, 0.6, 100) for s in (13, 21)]
    nan = [fake_record("stsb", "lora", s, math.nan, math.nan, 100, setting=3e-4) for s in (13, 21)]
    for order in (good + nan, nan + good):
        shutil.rmtree(tmp_path / "res", ignore_errors=True)
        folder = _folder(tmp_path, order)
        assert main(["report", str(folder), "--out", str(tmp_path / "rep")]) == 0
        err = capsys.readouterr().err
        assert err.count("failed run (non-finite metric)") == 2
        assert "60.0 ± 0.0 (2)" in (tmp_path / "rep" / "table1.csv").read_text()
        md = (tmp_path / "rep" / "report.md").read_text()
        assert "## Failed runs (2" in md and "nan" in md.lower()


def test_report_replaces_its_folder_whole(tmp_path, monkeypatch):
    folder = _folder(tmp_path, _two_methods())
    rep = tmp_path / "rep"
    assert main(["report", str(folder), "--out", str(rep)]) == 0
    manifest = rep / ".lorabar-manifest.json"
    owned = json.loads(manifest.read_text())
    owned["files"] += ["metrics.csv", "fig3_mrpc.png"]  # an earlier report's, since removed
    manifest.write_text(json.dumps(owned))
    (rep / "metrics.csv").write_text("a task since removed\n")
    (rep / "fig3_mrpc.png").write_bytes(b"old")
    (rep / "README.md").write_text("notes beside the report")
    assert main(["report", str(folder), "--out", str(rep)]) == 0
    names = {p.name for p in rep.iterdir()}
    assert "metrics.csv" not in names and "fig3_mrpc.png" not in names
    assert (rep / "README.md").read_text() == "notes beside the report"
    before = {p.name: p.read_bytes() for p in rep.iterdir() if p.is_file()}

    import lorabar.harness.report as R
    from lorabar.harness.report import write

    def disk_full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(write, "fig3", disk_full)  # the last thing the report writes
    with pytest.raises(OSError):
        R.render(folder, out=rep)
    assert {p.name: p.read_bytes() for p in rep.iterdir() if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_report_refuses_an_out_folder_that_is_not_a_report(tmp_path, capsys):
    folder = _folder(tmp_path, _two_methods())
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    assert main(["report", str(folder), "--out", str(mine)]) == 2
    assert "is not a folder lorabar wrote" in one_error_line(capsys)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


# ----------------------------------------------------------------------------- data
@pytest.mark.data
def test_a_non_utf8_byte_names_file_line_and_byte(tmp_path, capsys):
    data = _data_copy(tmp_path)
    train = data / "sst2" / "k-shot-1k-test" / "SST-2" / "512-13" / "train.tsv"
    raw = train.read_bytes().split(b"\n")
    raw[5] = raw[5].replace(b" ", b" caf\xe9 ", 1)
    train.write_bytes(b"\n".join(raw))
    with pytest.raises(D.DataError, match=r"train.tsv:6: not valid UTF-8: byte 0xe9 at column"):
        D.load_split("sst2", "train", data_dir=data)
    assert main(["finetune", "--model", "tiny", "--data-dir", str(data), "--steps", "1"]) == 2
    assert "train.tsv:6: not valid UTF-8" in one_error_line(capsys)


@pytest.mark.data
def test_real_snli_rows_of_11_14_and_15_fields_load():
    train = DATA / "snli" / "k-shot-1k-test" / "SNLI" / "512-13" / "train.tsv"
    counts = {len(line.split("\t")) for line in train.read_text().splitlines()}
    assert counts == {11, 14, 15}
    assert len(D.load_split("snli", "train", data_dir=DATA)) == 1536


@pytest.mark.data
def test_a_tab_inside_an_snli_sentence_is_caught(tmp_path):
    src = DATA / "snli" / "k-shot-1k-test" / "SNLI" / "512-13"
    dst = tmp_path / "snli" / "k-shot-1k-test" / "SNLI" / "512-13"
    shutil.copytree(src, dst)
    lines = (dst / "train.tsv").read_text().split("\n")
    fields = lines[3].split("\t")
    fields[7] = fields[7].replace(" ", "\t", 1)  # a stray tab inside the premise
    lines[3] = "\t".join(fields)
    (dst / "train.tsv").write_text("\n".join(lines))
    with pytest.raises(
        D.DataError,
        match=r"train.tsv:4: field 10 of \d+ is '.+' where an "
        r"annotator label \(or empty\) belongs",
    ):
        D.load_split("snli", "train", data_dir=tmp_path)


@pytest.mark.data
def test_a_one_class_train_split_fails_before_the_model_loads(tmp_path, capsys, monkeypatch):
    data = _data_copy(tmp_path)
    train = data / "sst2" / "k-shot-1k-test" / "SST-2" / "512-13" / "train.tsv"
    lines = train.read_text().splitlines()
    train.write_text("\n".join([lines[0]] + [line[:-1] + "1" for line in lines[1:]]) + "\n")
    import lorabar.harness.models.encoder_model as M

    monkeypatch.setattr(M, "build_model", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(["finetune", "--data-dir", str(data), "--steps", "1"]) == 2
    err = one_error_line(capsys)
    assert str(train) in err and "only class 1" in err


# ----------------------------------------------------------------------------- model cache
@pytest.fixture
def fake_smollm2(tmp_path, monkeypatch):
    """The SmolLM2 conversion with a stand-in GGUF and converter (a real one takes ~30 s)."""
    import lorabar.harness.models.causal_lm as C

    gguf = tmp_path / "wheel" / C.GGUF_NAME
    gguf.parent.mkdir()
    gguf.write_bytes(b"gguf" * 1000)
    calls = []

    def convert(source, out):
        calls.append(out)
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(bytes(range(256)) * 400)

    monkeypatch.setattr(C, "smollm2_gguf", lambda: gguf)
    monkeypatch.setattr(C, "_convert", convert)
    monkeypatch.setenv("LORABAR_CACHE", str(tmp_path / "cache"))
    return C, calls, tmp_path / "cache"


@pytest.mark.parametrize("damage", ["zeros", "truncate", "no_config", "no_digest"])
def test_a_damaged_model_cache_is_converted_again(fake_smollm2, capsys, damage):
    C, calls, cache = fake_smollm2
    out = Path(C._smollm2_path())
    assert len(calls) == 1 and (out / C.DIGEST_NAME).is_file()
    assert C._smollm2_path() == str(out) and len(calls) == 1  # valid: used as is
    weights = out / "model.safetensors"
    good = weights.read_bytes()
    if damage == "zeros":
        with open(weights, "r+b") as f:
            f.seek(1000)
            f.write(b"\0" * 20000)
    elif damage == "truncate":
        weights.write_bytes(good[:5000])
    elif damage == "no_config":
        (out / "config.json").unlink()
    else:
        (out / C.DIGEST_NAME).unlink()
    capsys.readouterr()
    assert C._smollm2_path() == str(out) and len(calls) == 2
    assert "is not usable" in capsys.readouterr().err
    assert weights.read_bytes() == good
    assert [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_conversion_leaves_no_temporary_folder(fake_smollm2, monkeypatch):
    C, _, cache = fake_smollm2

    def broken(source, out):
        (out / "model.safetensors").write_bytes(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(C, "_convert", broken)
    with pytest.raises(OSError):
        C._smollm2_path()
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".smollm2.lock")] == []


def test_an_unwritable_cache_fails_before_converting(fake_smollm2, monkeypatch):
    C, calls, cache = fake_smollm2
    blocker = cache.parent / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LORABAR_CACHE", str(blocker / "cache"))
    with pytest.raises(ValueError, match=r"Invalid \$LORABAR_CACHE: .* is under .*a-file"):
        C._smollm2_path()
    assert calls == []


# ----------------------------------------------------------------------------- inspect
@pytest.fixture
def adapter(tmp_path):
    from conftest import make_peft_model

    model = make_peft_model(0, dtype=torch.float32)
    folder = tmp_path / "ad"
    model.save_pretrained(folder)
    return model, folder


def _snapshot(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("flag, name", [("--json", "adapter_config.json"), ("--png", "b.png")])
def test_inspect_refuses_to_write_inside_the_adapter(adapter, capsys, flag, name):
    _, folder = adapter
    before = _snapshot(folder)
    assert main(["inspect", str(folder), flag, str(folder / name)]) == 2
    err = one_error_line(capsys)
    assert "an input folder of this command (ADAPTER)" in err or "not a lorabar" in err
    assert _snapshot(folder) == before


def test_inspect_rebalance_refuses_an_existing_folder_unless_forced(adapter, tmp_path, capsys):
    _, folder = adapter
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    assert main(["inspect", str(folder), "--rebalance", str(other)]) == 2
    assert "is not a folder lorabar wrote" in one_error_line(capsys)
    assert (other / "mine.txt").is_file()
    assert main(["inspect", str(folder), "--rebalance", str(other), "--force"]) == 0
    # --force writes into it; the user's own file survives
    assert (other / "adapter_model.safetensors").is_file() and (other / "mine.txt").exists()
    assert main(["inspect", str(folder), "--rebalance", str(other)]) == 0  # now lorabar's


def test_inspect_refuses_a_non_finite_factor(adapter, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    _, folder = adapter
    weights = folder / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    key = next(k for k in tensors if k.endswith("lin.lora_A.weight"))
    tensors[key][0, 0] = float("nan")
    save_file(tensors, str(weights))
    assert main(["inspect", str(folder), "--rebalance", str(tmp_path / "out")]) == 2
    err = one_error_line(capsys)
    assert "non-finite factor" in err and "lin" in err
    assert not (tmp_path / "out").exists()


def test_inspect_refuses_several_adapters_in_one_folder(adapter, capsys):
    model, folder = adapter
    from peft import LoraConfig

    model.add_adapter("second", LoraConfig(r=2, target_modules=["lin"]))
    model.save_pretrained(folder)
    assert (folder / "second" / "adapter_config.json").is_file()
    assert main(["inspect", str(folder)]) == 2
    err = one_error_line(capsys)
    assert "several adapters" in err and "second" in err
    assert main(["inspect", str(folder / "second")]) == 0


# ----------------------------------------------------------------------------- processes
@pytest.mark.data
def test_a_second_grid_on_the_same_folder_exits_at_once(tmp_path, capsys):
    grid = _write(tmp_path / "g.toml", TINY)
    with X.GridLock(tmp_path / "o"):
        t0 = time.perf_counter()
        assert main(["grid", str(grid), "--out", str(tmp_path / "o"), "--data-dir", str(DATA)]) == 2
        assert time.perf_counter() - t0 < 5
    err = one_error_line(capsys)
    assert f"in use by another lorabar grid (pid {os.getpid()})" in err
    assert not list((tmp_path / "o").glob("runs/*.json"))


def test_workers_die_with_the_grid(tmp_path):
    """A grid's worker (initialized as the grid does) is killed when the grid is SIGKILLed."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(f"""
        import multiprocessing, os, time
        from concurrent.futures import ProcessPoolExecutor
        from lorabar.harness.execute.local import die_with_parent

        def work(path):
            open(path, "w").write(str(os.getpid()))
            time.sleep(60)
            open(path + ".late", "w").write("written after the grid died")

        if __name__ == "__main__":
            pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=die_with_parent, initargs=(os.getpid(),))
            pool.submit(work, {str(tmp_path / "worker")!r})
            time.sleep(60)
    """)
    )
    parent = subprocess.Popen([sys.executable, str(script)])
    pid_file = tmp_path / "worker"
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        _reap(worker)
        time.sleep(0.05)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its grid")
    assert not (tmp_path / "worker.late").exists()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def test_a_run_does_not_write_after_its_grid_is_gone(tmp_path, monkeypatch):
    import lorabar.harness.run.engine as E

    monkeypatch.setattr(E, "run", lambda cfg, **k: {"metrics": {}})
    path = tmp_path / "r.json"
    with pytest.raises(RuntimeError, match="is gone"):
        E.run_to_file(EncoderConfig(model="tiny"), str(path), parent=os.getppid() + 1)
    assert not path.exists()


@pytest.mark.data
def test_a_full_disk_stops_the_grid_cleanly(tmp_path, capsys, monkeypatch):
    grid = _write(tmp_path / "g.toml", TINY + "[grid]\nseed = [13, 21, 42]\n")
    calls = []

    def runner(cfg, path, *args):
        calls.append(path)
        raise OSError(errno.ENOSPC, "No space left on device", path)

    def no_space(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    real = X.run_grid
    monkeypatch.setattr(X, "write_json", no_space)  # the error file cannot be written
    monkeypatch.setattr(X, "run_grid", lambda *a, **k: real(*a, **k, runner=runner))
    assert main(["grid", str(grid), "--out", str(tmp_path / "o"), "--data-dir", str(DATA)]) == 1
    captured = capsys.readouterr()
    assert len(calls) == 1  # stopped after the first full-disk failure
    assert "Traceback" not in captured.out + captured.err
    assert "stopping: the disk is full" in captured.out
    assert "could not write" in captured.out
    assert captured.err.strip().startswith("lorabar grid: stopped early: disk full")


@pytest.mark.parametrize("command", ["finetune", "finetune-lm"])
def test_ctrl_c_in_finetune_writes_nothing(tmp_path, capsys, monkeypatch, command):
    import lorabar.harness.run.engine as E

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(E, "run", interrupted)
    out = tmp_path / "r.json"
    rows = "".join(
        json.dumps({"text": f"t {i}", "label": i % 2, "prompt": f"p {i}", "completion": f" c {i}"})
        + "\n"
        for i in range(8)
    )
    own = []
    for split in ("train", "dev", "test"):
        first = rows[: rows.index("\n") + 1]
        (tmp_path / f"{split}.jsonl").write_text(rows if split == "train" else first * len(split))
        own += [f"--{split}", str(tmp_path / f"{split}.jsonl")]
    cols = (
        ["--text-column", "text", "--label-column", "label"]
        if command == "finetune"
        else ["--prompt-column", "prompt", "--completion-column", "completion"]
    )
    assert main([command, "--model", "tiny", *own, *cols, "--out", str(out)]) == 130
    assert one_error_line(capsys) == f"lorabar {command}: interrupted; nothing written"
    assert not out.exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- committed results
ROOT = Path(__file__).resolve().parents[1]
COMMITTED = [
    ("faithful", "faithful"),
    ("faithful_lr3e-3", "faithful_lr3e-3"),
    ("glue", "glue"),
    ("lora_lr", "lora_lr"),
    ("noise", "noise"),
    ("practical_sam", "practical"),
    ("faithful_1000", "faithful_1000"),
    ("faithful_paper_lr", "faithful_paper_lr"),
]


@pytest.mark.parametrize("results, docs", COMMITTED)
def test_committed_results_report_as_committed(tmp_path, results, docs):
    """The re-keyed results reproduce every committed table byte for byte."""
    from lorabar.harness.report import render

    render(ROOT / "results" / results, out=tmp_path / "rep", baseline="lora")
    committed = sorted((ROOT / "docs" / "results" / docs).glob("*.csv"))
    assert committed
    for path in committed:
        assert (tmp_path / "rep" / path.name).read_bytes() == path.read_bytes(), path.name
    assert (tmp_path / "rep" / "report.md").read_text() == (
        ROOT / "docs" / "results" / docs / "report.md"
    ).read_text()


@pytest.mark.data
@pytest.mark.real
def test_committed_grids_resume_with_nothing_to_run(capsys, monkeypatch):
    """The committed runs' identities still match what the code computes (a change to what
    identifies a run would make every committed grid run again).  They ran where `auto` meant
    bf16, with 1 thread per run: the test resolves the same way on any CPU (nothing runs)."""
    monkeypatch.setenv("LORABAR_NATIVE_BF16", "1")
    assert (
        main(
            [
                "compare",
                "--grid",
                str(ROOT / "grids" / "lora_lr.toml"),
                "--seeds",
                "13,21,42,87,100",
                "--out",
                str(ROOT / "results" / "lora_lr"),
                "--data-dir",
                str(DATA),
                "--jobs",
                "2",
                "--threads",
                "1",
                "--dry-run",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "16 runs, 0 to do" in out and "stage 2 (seeds [13, 21, 42, 87, 100]): 0 to do" in out


def test_every_results_page_is_re_rendered_or_says_why_not():
    """Every page under docs/results/ is re-rendered from committed records by a test (a
    report.md above, a `lorabar bench` page below) or says, first thing under its title, that
    it is written by hand or measured, and why."""
    reports = {docs for _, docs in COMMITTED}
    for page in sorted((ROOT / "docs" / "results").rglob("*.md")):
        rel = page.relative_to(ROOT / "docs" / "results")
        if page.name == "report.md":
            assert rel.parent.name in reports, f"{rel}: no test re-renders it"
        elif page.with_suffix(".json").is_file():
            assert page.stem.startswith(("bench_", "bar_cost")), rel
        else:
            note = page.read_text().split("<summary>How this page is made</summary>\n\n")[-1]
            assert note.startswith(("Written by hand, not re-rendered:", "Not re-rendered:")), (
                f"{rel}: its closing note does not say why it is not re-rendered"
            )


@pytest.mark.parametrize(
    "page",
    sorted(
        p.relative_to(ROOT)
        for p in (ROOT / "docs" / "results").rglob("*.json")
        if p.stem.startswith(("bench_", "bar_cost"))
    ),
)
def test_committed_bench_pages_render_from_their_records(page):
    from lorabar.apps.bench import BarCostRow, markdown

    record = json.loads((ROOT / page).read_text())
    rows = [BarCostRow(**b) for b in record.get("bar_cost", [])]
    assert markdown(record, rows) == (ROOT / page).with_suffix(".md").read_text()


def test_every_results_folder_has_a_manifest():
    """Each committed results folder says which commands made it, its grids, its report and
    whether it is current (lorabar.harness.plan.manifest); the references resolve."""
    from lorabar.harness.plan.manifest import read_manifest, reused_files

    folders = [p.parent for p in (ROOT / "results").rglob("runs")] + [
        p.parent for p in (ROOT / "results" / "invalid").glob("*/*.json")
    ]
    for folder in sorted(set(folders)):
        manifest = read_manifest(folder)
        assert manifest is not None and manifest.commands, folder
        assert all(path.is_file() for path in reused_files(folder).values())
        if manifest.report:
            assert (ROOT / manifest.report).is_dir(), (folder, manifest.report)
