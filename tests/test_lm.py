"""Causal-LM pieces: WebNLG, BLEU, templates, candidate scoring, and runs through the engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from conftest import squad_row, write_jsonl
from lorabar.harness.tasks.data_folder import DATA_ENV
from lorabar.harness.run.config import LMConfig
from lorabar.harness.run.engine import RECORD_KEYS, run
from lorabar.harness.tasks.lm_scoring import candidate_scores, collate, encode_pairs
from lorabar.harness.tasks.lm_prompt_tasks import load_prompt_split, render_prompt
from lorabar.harness.tasks.webnlg import bleu, linearize, load_webnlg

DATA = str(os.environ.get(DATA_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.mark.data
def test_webnlg_counts_match_sources():
    counts = {}
    for split in ("train", "dev", "test"):
        entries = load_webnlg(split, data_dir=DATA)
        counts[split] = (
            len(entries),
            sum(len(e.references) for e in entries),
            len({e.category for e in entries}),
        )
    assert counts == {"train": (6940, 18102, 10), "dev": (872, 2268, 10), "test": (1862, 4928, 15)}
    test = load_webnlg("test", data_dir=DATA)
    assert sum(e.seen for e in test) == 971 and sum(not e.seen for e in test) == 891
    assert linearize(test[0]) == "Abilene Regional Airport : cityServed : Abilene, Texas"


def test_bleu_hand_case():
    assert bleu(["the cat sat on the mat"], [("the cat sat on the mat",)]) == pytest.approx(100.0)
    assert bleu(["a dog"], [("the cat sat on the mat",)]) == 0.0
    # A second, unequal reference list length is allowed; the matching reference counts.
    assert bleu(
        ["the cat sat on the mat", "hello there my friend"],
        [("the cat sat on the mat",), ("x y z", "hello there my friend")],
    ) == pytest.approx(100.0)


@pytest.mark.data
def test_templates():
    assert (
        render_prompt("sst2", {"sentence": "great fun .", "label": 1}).context
        == "great fun . It was"
    )
    rte = render_prompt("rte", {"premise": "P.", "hypothesis": "H.", "label": 0})
    assert rte.context == 'P.\nDoes this mean that "H." is true? Yes or No?\n'
    assert rte.candidates == ("Yes", "No")
    cb = render_prompt("cb", {"premise": "P.", "hypothesis": "H", "label": 2})
    assert cb.context.endswith('Can we infer that "H"? Yes, No, or Maybe?\n') and cb.label == 2
    copa = render_prompt(
        "copa",
        {
            "premise": "The man turned on the faucet.",
            "question": "effect",
            "choice1": "The toilet filled.",
            "choice2": "I ran.",
            "label": 1,
        },
    )
    assert copa.context == "The man turned on the faucet so"
    assert copa.candidates == (" the toilet filled.", " I ran.")
    assert (
        render_prompt(
            "copa",
            {"premise": "X.", "question": "cause", "choice1": "A", "choice2": "B", "label": 0},
        ).context
        == "X because"
    )
    sizes = {
        t: [len(load_prompt_split(t, s, data_dir=DATA)) for s in ("train", "dev", "test")]
        for t in ("cb", "copa")
    }
    assert sizes == {"cb": [32, 32, 56], "copa": [32, 32, 100]}


def test_candidate_scoring_on_tiny_lm():
    from lorabar.harness.models.causal_lm import load_causal_lm

    torch.manual_seed(0)
    model, _ = load_causal_lm("tiny")
    model.eval()
    enc = encode_pairs(None, [("abc", "de"), ("abc", "fgh")], 64)
    batch = collate(enc)
    scores = candidate_scores(model, batch, 2)
    # Reference: mean log-probability of the candidate tokens, one sequence at a time.
    for j, (ids, mask) in enumerate(enc):
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
        tgt = [logp[i - 1, ids[i]] for i in range(1, len(ids)) if mask[i]]
        assert scores[0, j].item() == pytest.approx(torch.stack(tgt).mean().item(), rel=1e-5)


@pytest.mark.data
@pytest.mark.parametrize("task, method", [("cb", "nbar"), ("copa", "sam")])
def test_end_to_end_tiny(task, method):
    r = run(
        LMConfig(
            task=task,
            method=method,
            model="tiny",
            steps=3,
            batch_size=4,
            n_test=8,
            n_dev=8,
            data_dir=DATA,
            mu0=50.0,
            log_every=1,
        ),
        progress=False,
    )
    assert set(RECORD_KEYS) <= set(r)  # one record schema for every task kind
    assert r["train"]["trainable_params"] > 0 and r["timing"]["step_time_mean_s"] > 0
    assert r["distributed"]["world_size"] == 1 and r["runtime"]["device"] == "cpu"
    assert 0.0 <= r["metrics"]["test"]["accuracy"] <= 1.0 and "accuracy" in r["metrics"]["dev"]
    assert r["balancedness"]["steps"] == [0, 1, 2] and r["train"]["lora_pairs"] == 4
    assert 0.0 < r["majority_class"]["test"]["accuracy"] <= 1.0


@pytest.mark.real
def test_gguf_loader_real(smollm2, monkeypatch):
    from lorabar.harness.models.causal_lm import load_causal_lm

    monkeypatch.setenv("LORABAR_CACHE", str(smollm2.cache))
    # the fixture converted under seed 0 and drew right after: converting must not touch the
    # global RNG, so that it draws as a load from the cache does
    torch.manual_seed(0)
    load_causal_lm("smollm2")
    assert torch.equal(smollm2.after_converting, torch.rand(3))
    assert (smollm2.cache / "smollm2-135m-instruct" / "model.safetensors").is_file()
    model, tok = smollm2.model, smollm2.tokenizer
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    ids = tok("The capital of France is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0])


@pytest.mark.real
@pytest.mark.parametrize("method", ["lora", "prefix"])
def test_squad_generates_and_scores_on_smollm2(tmp_path, method, smollm2, monkeypatch):
    """lorabar.harness.tasks.qa_data on the real model: SQuAD rows generate and score."""
    monkeypatch.setenv("LORABAR_CACHE", str(smollm2.cache))  # converted once per test run
    write_jsonl(tmp_path / "squad" / "train.jsonl", [squad_row(i) for i in range(40)])
    write_jsonl(tmp_path / "squad" / "validation.jsonl", [squad_row(i) for i in range(40, 52)])
    cfg = LMConfig(
        task="squad",
        method=method,
        steps=2,
        batch_size=2,
        n_train=4,
        n_dev=2,
        n_test=3,
        max_new_tokens=6,
        eval_batch_size=3,
        max_length=96,
        lr=1e-4 if method == "lora" else 1e-2,
        precision="fp32",
        threads=1,
        data_dir=str(tmp_path),
    )
    r = run(cfg, progress=False)
    test = r["metrics"]["test"]
    assert r["primary_metric"] == "f1" and 0.0 <= test["exact_match"] <= test["f1"] <= 1.0
    assert len(test["examples"]) == 3 and all("\n" not in x["output"] for x in test["examples"])
    assert r["train"]["lora_pairs"] == (0 if method == "prefix" else 60)


@pytest.mark.data
def test_lm_grid_and_cli(tmp_path, capsys):
    from lorabar.cli import main
    from lorabar.harness.execute.grid_runner import run_grid

    grid = {
        "base": {
            "kind": "lm",
            "task": "copa",
            "model": "tiny",
            "steps": 2,
            "batch_size": 4,
            "n_dev": 4,
            "n_test": 4,
            "data_dir": DATA,
        },
        "variant": [{"method": ["lora", "obar", "zeroshot"], "mu0": 10.0}],
    }
    assert run_grid(grid, tmp_path, log=lambda *_: None, only={"method": "zeroshot"}) == {
        "total": 1,
        "skipped": 0,
        "done": 1,
        "failed": 0,
    }
    assert run_grid(grid, tmp_path, log=lambda *_: None) == {
        "total": 3,
        "skipped": 1,
        "done": 2,
        "failed": 0,
    }
    with pytest.raises(ValueError, match="Invalid filter: 'colour'"):
        run_grid(grid, tmp_path, log=lambda *_: None, only={"colour": "red"})
    from lorabar.harness.report import render

    render(tmp_path, out=tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| zero-shot " in md and "| LoRA-oBAR " in md
    assert (
        main(
            [
                "finetune-lm",
                "--task",
                "cb",
                "--model",
                "tiny",
                "--steps",
                "2",
                "--n-dev",
                "4",
                "--n-test",
                "4",
                "--data-dir",
                DATA,
                "--quiet",
                "--precision",
                "fp32",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert '"task": "cb"' in out and '"precision": "fp32"' in out


def test_report_webnlg_bleu_is_not_rescaled():
    from lorabar.harness.report import tables

    def rec(method, seed, bleu):
        return {
            "config": {"task": "webnlg", "method": method, "seed": seed, "lr": 5e-4, "steps": 2},
            "key": {"task": "webnlg", "method": method, "lr": 5e-4, "seed": seed},
            "primary_metric": "bleu",
            "final_mean_abs_B": 1.0,
            "metrics": {
                "dev": {"bleu": bleu},
                "test": {"bleu": bleu, "bleu_seen": bleu + 10, "bleu_unseen": bleu - 10},
            },
            "timing": {"step_time_median_s": 1.0},
        }

    from conftest import as_runs

    t = tables(as_runs([rec("lora", 13, 30.0), rec("lora", 21, 32.0), rec("obar", 13, 20.0)]))
    assert t["table1"][1][1] == "31.0 ± 1.4 (2)"
    assert t["webnlg"][1] == [
        "LoRA",
        "31.00 ± 1.41 (2)",
        "41.00 ± 1.41 (2)",
        "21.00 ± 1.41 (2)",
        "31.00 ± 1.41 (2)",
    ]


def test_lm_harness_learns_a_synthetic_prompt_task():
    """The causal-LM path learns: LoRA on a random tiny Llama, 40 steps of the generated copy
    task (the answer is the letter the context repeats; chance is 50%)."""
    base = dict(task="synthetic", model="tiny", batch_size=8, lr=1e-2, n_dev=0, log_every=10)
    untrained = run(LMConfig(method="zeroshot", **base), progress=False)
    assert untrained["metrics"]["test"]["accuracy"] < 0.7
    for method in ("lora", "sam", "obar"):
        r = run(LMConfig(method=method, steps=40, mu0=10.0, rho=0.01, **base), progress=False)
        assert r["metrics"]["test"]["accuracy"] >= 0.9, (method, r["metrics"])
        assert r["train"]["loss_last10"] < r["train"]["loss_first10"]
        assert r["train"]["n_test"] == 128 and r["majority_class"]["test"]["accuracy"] < 0.65
