"""The hostile inputs of issue 27, one test each: a one-line error (exit 2, nothing written) or
the right result.  Each of these lost data, gave a silently wrong result or a traceback before
the plan-then-run commands and the output guard (lorabar.guard)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import lorabar
from lorabar.cli import main
from lorabar.harness.tasks import data_folder as D
from conftest import one_error_line
from conftest import own_data_args, synthetic_files

FT = [
    "finetune",
    "--model",
    "tiny",
    "--steps",
    "2",
    "--max-eval",
    "16",
    "--threads",
    "1",
    "--quiet",
]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _sft(folder: Path, rows: list[dict]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    argv = []
    for split in ("train", "dev", "test"):
        path = folder / f"{split}.jsonl"
        path.write_text("".join(json.dumps({**r, "split": split}) + "\n" for r in rows))
        argv += [f"--{split}", str(path)]
    return argv + ["--prompt-column", "prompt", "--completion-column", "completion"]


# ----------------------------------------------------------------------------- lost data
@pytest.mark.parametrize("command", ["finetune", "finetune-lm"])
def test_out_over_the_training_file_is_refused(tmp_path, capsys, monkeypatch, command):
    import lorabar.harness.run.engine as E

    monkeypatch.setattr(E, "run", lambda *a, **k: pytest.fail("ran before the plan was checked"))
    if command == "finetune":
        paths = synthetic_files(tmp_path / "d")
        argv = ["finetune", "--model", "tiny", *own_data_args(paths)]
    else:
        argv = [
            "finetune-lm",
            "--model",
            "tiny",
            *_sft(tmp_path / "d", [{"prompt": "p", "completion": " c"}] * 4),
        ]
    train = tmp_path / "d" / "train.jsonl"
    before = train.read_bytes()
    assert main([*argv, "--out", str(train)]) == 2
    assert "is an input of this command (--train)" in one_error_line(capsys)
    assert train.read_bytes() == before


@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_users_csv_beside_a_report_survives(tmp_path, capsys, command):
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    out = tmp_path / "C"
    cmp_ = [
        "compare",
        "--model",
        "tiny",
        *own_data_args(paths),
        "--methods",
        "lora",
        "--seeds",
        "13,21",
        "--steps",
        "2",
        "--out",
        str(out),
    ]
    assert main(cmp_) == 0
    capsys.readouterr()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "budget.csv").write_text("item,eur\nGPU,100\n")
    argv = (
        ["report", str(out), "--out", str(mine)]
        if command == "report"
        else [*cmp_, "--report", str(mine)]
    )
    assert main(argv) == 2
    err = one_error_line(capsys)
    flag = "--out" if command == "report" else "--report"
    assert f"Invalid {flag}:" in err and "not a folder lorabar wrote" in err
    assert (mine / "budget.csv").read_text() == "item,eur\nGPU,100\n"
    # a user's file inside a report folder lorabar owns is kept when it is rewritten
    (out / "report" / "budget.csv").write_text("mine")
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "budget.csv").read_text() == "mine"


def test_out_and_save_adapter_on_one_path_are_refused_before_training(
    tmp_path, capsys, monkeypatch
):
    import lorabar.harness.run.engine as E

    monkeypatch.setattr(E, "run", lambda *a, **k: pytest.fail("trained before the check"))
    paths = synthetic_files(tmp_path / "d")
    x = tmp_path / "X"
    assert (
        main(
            [
                "finetune",
                "--model",
                "tiny",
                *own_data_args(paths),
                "--out",
                str(x),
                "--save-adapter",
                str(x),
            ]
        )
        == 2
    )
    assert "is also --save-adapter" in one_error_line(capsys) and not x.exists()


# ----------------------------------------------------------------------------- roles
def test_swapped_roles_are_other_runs(tmp_path):
    from lorabar.harness.run.config import config_from
    from lorabar.harness.plan.grid import identity_of

    paths = synthetic_files(tmp_path / "d")
    base = {"model": "tiny", "text_column": "text", "label_column": "label", "threads": 1}
    ids = {}
    for name, (tr, dv, te) in {
        "as given": ("train", "dev", "test"),
        "dev<->test": ("train", "test", "dev"),
        "train<->test": ("test", "dev", "train"),
    }.items():
        cfg = config_from(
            {**base, "train": str(paths[tr]), "dev": str(paths[dv]), "test": str(paths[te])}
        )
        ids[name] = identity_of(cfg)
    assert len({json.dumps(i, sort_keys=True) for i in ids.values()}) == 3


@pytest.mark.parametrize("copy", [False, True])
def test_test_equal_to_train_is_refused(tmp_path, capsys, copy):
    paths = synthetic_files(tmp_path / "d")
    test = paths["train"]
    if copy:
        test = tmp_path / "copy.jsonl"
        test.write_bytes(paths["train"].read_bytes())
    argv = [*FT, *own_data_args({**paths, "test": test}), "--out", str(tmp_path / "r.json")]
    assert main(argv) == 2
    err = one_error_line(capsys)
    assert ("has the same content as --train" if copy else "is --train") in err
    assert not (tmp_path / "r.json").exists()


def test_rows_shared_with_train_are_counted(tmp_path, capsys):
    paths = synthetic_files(tmp_path / "d")
    rows = paths["test"].read_text().splitlines(keepends=True)
    train = paths["train"].read_text().splitlines(keepends=True)
    paths["test"].write_text("".join(train[:5] + rows[5:]))
    out = tmp_path / "r.json"
    assert main([*FT, *own_data_args(paths), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    record = json.loads(out.read_text())
    assert record["train"]["shared_with_train"]["test"] >= 5
    assert "test examples have the text of a train example" in captured.err


def test_two_datasets_in_one_out_are_two_tasks(tmp_path, capsys):
    a = synthetic_files(tmp_path / "a", n=(32, 16, 16))
    b = synthetic_files(tmp_path / "b", n=(32, 16, 16))
    b["train"].write_text(b["train"].read_text().replace("apple", "melon"))
    out = tmp_path / "C"
    for paths in (a, b):
        assert (
            main(
                [
                    "compare",
                    "--model",
                    "tiny",
                    *own_data_args(paths),
                    "--methods",
                    "lora,obar",
                    "--seeds",
                    "13,21",
                    "--steps",
                    "2",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    paired = (out / "paired.csv").read_text().splitlines()
    tasks = {line.split(",")[0] for line in paired[1:] if not line.startswith("average")}
    assert len(tasks) == 2 and all(t.startswith("train-") for t in tasks)
    assert all(",2," in line for line in paired[1:])  # n = 2 seeds each, never pooled to 4


# ----------------------------------------------------------------------------- prompt head
PROMPT = ["finetune", "--model", "tiny-mlm", "--head", "prompt", "--steps", "1"]


@pytest.mark.parametrize(
    "template, verbalizer, extra, message",
    [
        ("It was {mask} .", "fruit=a,metal=b", [], r"0 \{text\}"),
        (
            "{sentence} It was {mask} .",
            "fruit=a,metal=b",
            [],
            r"unknown placeholder\(s\) \['sentence'\]",
        ),
        (
            "{text} It was {mask} .",
            "fruit=a,metal=b",
            ["--text-pair-column", "text2"],
            r"no \{text_pair\} but the examples are pairs",
        ),
        (
            "{text} {text_pair} {mask}",
            "fruit=a,metal=b",
            [],
            r"reads \{text_pair\} but the examples",
        ),
        ("{text} It was {mask} .", "fruit=a,fruit=b", [], r"label 'fruit' is named twice"),
        ("{text} {mask} {mask}", "fruit=a,metal=b", [], r"has 2 \{mask\}"),
        (
            "{text!r} It was {mask} .",
            "fruit=a,metal=b",
            [],
            r"writes \{text!r\}; placeholders are bare",
        ),
        ("{text:>3} It was {mask} .", "fruit=a,metal=b", [], r"writes \{text:>3\}"),
    ],
)
def test_prompt_templates_are_validated(tmp_path, capsys, template, verbalizer, extra, message):
    import re

    paths = synthetic_files(tmp_path / "d")
    assert (
        main(
            [
                *PROMPT,
                *own_data_args(paths),
                *extra,
                "--template",
                template,
                "--verbalizer",
                verbalizer,
            ]
        )
        == 2
    )
    assert re.search(message, one_error_line(capsys))


def test_truncation_keeps_the_template_and_the_mask():
    from lorabar.harness.tasks.mlm_prompt import PromptEncoder, TinyTokenizer

    tok = TinyTokenizer()
    text = " ".join(f"w{i}" for i in range(50))
    enc = PromptEncoder(tok, "{text} It was {mask} .", {"0": "bad", "1": "good"}, ("0", "1"), 16)
    ids = enc.encode(text, None)["input_ids"]
    tail = tok.encode("It was") + [tok.mask_token_id] + tok.encode(".") + [tok.sep_token_id]
    assert len(ids) == 16 and ids[-len(tail) :] == tail  # the text's end was cut, not the template
    assert ids[1:3] == tok.encode("w0 w1")
    lmbff = PromptEncoder(
        tok, "*cls**sent_0*_It_was*mask*.*sep+*", {"0": "bad", "1": "good"}, ("0", "1"), 16
    )
    assert lmbff.encode(text, None)["input_ids"][-len(tail) :] == tail
    with pytest.raises(ValueError, match=r"--max-length: 4 tokens, but the template .* takes 6"):
        PromptEncoder(
            tok, "{mask} It was {text} indeed", {"0": "bad", "1": "good"}, ("0", "1"), 4
        ).encode(text, None)


def test_literal_braces_render_alike_on_every_path():
    """{{note}} is the text {note} whether or not the input is truncated; a literal {{mask}} is
    text, not a second mask (the hostile round's two renderers disagreed)."""
    from lorabar.harness.tasks.mlm_prompt import PromptEncoder, TinyTokenizer

    tok = TinyTokenizer()
    template = "Literal {{mask}} {{note}} {text} It was {mask} ."
    short = PromptEncoder(tok, template, {"0": "bad", "1": "good"}, ("0", "1"), 64)
    ids = short.encode("w0 w1", None)["input_ids"]
    assert ids == [
        tok.cls_token_id,
        *tok.encode("Literal {mask} {note} w0 w1 It was"),
        tok.mask_token_id,
        *tok.encode("."),
        tok.sep_token_id,
    ]
    long_text = " ".join(f"w{i}" for i in range(40))
    cut = PromptEncoder(tok, template, {"0": "bad", "1": "good"}, ("0", "1"), 24)
    got = cut.encode(long_text, None)["input_ids"]
    assert len(got) == 24 and got[1 : 1 + len(tok.encode("Literal {mask} {note}"))] == tok.encode(
        "Literal {mask} {note}"
    )


def test_a_data_row_holding_the_mask_token_is_blamed_at_its_file_and_line(tmp_path):
    from lorabar.harness.tasks.data_folder import DataError, Example
    from lorabar.harness.tasks.mlm_prompt import PromptEncoder, TinyTokenizer
    from lorabar.harness.tasks.own_data import load_user_data

    tok = TinyTokenizer()
    enc = PromptEncoder(tok, "{text} It was {mask} .", {"0": "bad", "1": "good"}, ("0", "1"), 64)
    rows = [
        {"text": "fine", "label": "0"},
        {"text": "ok", "label": "1"},
        {"text": f"a {tok.mask_token} b", "label": "1"},
    ]
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_user_data(
        *(tmp_path / f"{s}.jsonl" for s in ("train", "dev", "test")),
        text_column="text",
        label_column="label",
    )
    with pytest.raises(
        DataError,
        match=rf"^{re.escape(str(tmp_path))}/train.jsonl:3: the text "
        r"holds the mask token '<mask>'",
    ):
        enc.encode_all(data.splits["train"])
    with pytest.raises(DataError, match=r"^example 2 of the split: the text holds the mask"):
        enc.encode_all([Example("fine", None, 0), Example(f"a {tok.mask_token} b", None, 1)])


def test_a_template_longer_than_max_length_exits_2(tmp_path, capsys):
    paths = synthetic_files(tmp_path / "d")
    assert (
        main(
            [
                *PROMPT,
                *own_data_args(paths),
                "--template",
                "{mask} : this one is about {text}",
                "--verbalizer",
                "fruit=a,metal=b",
                "--max-length",
                "3",
            ]
        )
        == 2
    )
    assert "but the template" in one_error_line(capsys)


# ----------------------------------------------------------------------------- labels, columns
def test_labels_1_and_1_0_are_one_class_when_asked_and_refused_otherwise(tmp_path):
    from lorabar.harness.tasks.data_folder import DataError
    from lorabar.harness.tasks.own_data import load_user_data

    rows = [("a b", "1"), ("c d", "1.0"), ("e f", "0"), ("g h", "0.0")]
    csv_ = tmp_path / "t.csv"
    csv_.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": float(y)}) + "\n" for t, y in rows))
    for path in (csv_, jsonl):
        own = load_user_data(
            path, path, path, text_column="text", label_column="label", numeric_labels=True
        )
        assert own.task.labels == ("0", "1")
        assert [e.label for e in own.splits["train"]] == [1, 1, 0, 0]
    with pytest.raises(
        DataError,
        match=r"t.csv:3: label '1.0' and .*t.csv:2: label '1' are one "
        r"number \(1\); .* --numeric-labels",
    ):
        load_user_data(csv_, csv_, csv_, text_column="text", label_column="label")
    # the JSON file writes 1.0 and 1.0: one spelling, one class, no flag needed
    assert load_user_data(
        jsonl, jsonl, jsonl, text_column="text", label_column="label"
    ).task.labels == ("0", "1")


@pytest.mark.parametrize("a, b", [("1.1", "1.10"), ("01", "1"), ("2", "2e0")])
def test_two_spellings_of_one_number_are_not_silently_one_class(tmp_path, capsys, a, b):
    """The hostile round's case: 1.1, 1.10 and 2 were trained as two classes."""
    train = tmp_path / "train.csv"
    train.write_text(f"text,label\nx y,{a}\nz w,{b}\nu v,7\n")
    dev, test = tmp_path / "dev.csv", tmp_path / "test.csv"
    dev.write_text(f"text,label\nq r,{a}\n")
    test.write_text("text,label\ns t,7\n")
    argv = [
        *FT,
        "--train",
        str(train),
        "--dev",
        str(dev),
        "--test",
        str(test),
        "--text-column",
        "text",
        "--label-column",
        "label",
        "--out",
        str(tmp_path / "o.json"),
    ]
    assert main(argv) == 2
    err = one_error_line(capsys)
    assert f"train.csv:3: label '{b}' and " in err and f"train.csv:2: label '{a}'" in err
    assert not (tmp_path / "o.json").exists()
    assert main([*argv, "--numeric-labels"]) == 0  # asked for: one class


def test_text_column_equal_to_label_column_is_refused(tmp_path, capsys):
    paths = synthetic_files(tmp_path / "d")
    argv = [a if a != "text" else "label" for a in own_data_args(paths)]
    assert main([*FT, *argv]) == 2
    assert "Invalid --label-column: 'label' is also --text-column" in one_error_line(capsys)


@pytest.mark.parametrize("label", [[1], {"a": 1}, True])
def test_a_non_scalar_label_names_its_line(tmp_path, label):
    from lorabar.harness.tasks.own_data import load_user_data

    path = tmp_path / "t.jsonl"
    path.write_text(
        json.dumps({"text": "a", "label": 0})
        + "\n"
        + json.dumps({"text": "b", "label": label})
        + "\n"
    )
    with pytest.raises(D.DataError, match=r"t.jsonl:2: label column 'label' holds"):
        load_user_data(path, path, path, text_column="text", label_column="label")


def test_regression_labels_are_strict_decimals(tmp_path):
    from lorabar.harness.tasks.own_data import load_user_data

    path = tmp_path / "t.csv"
    for bad in ("nan", "inf", "1_000", "0x10"):
        path.write_text(f"text,label\na,1.5\nb,{bad}\n")
        with pytest.raises(D.DataError, match=r"t.csv:3: label .* not a finite decimal"):
            load_user_data(
                path, path, path, text_column="text", label_column="label", task_type="regression"
            )


# ----------------------------------------------------------------------------- finetune-lm
def test_finetune_lm_keeps_the_prompt_and_counts_truncations(tmp_path, capsys):
    long = " " + "answer " * 40
    rows = [
        {"prompt": f"question {i} ?", "completion": long if i < 2 else " yes"} for i in range(6)
    ]
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "finetune-lm",
                "--model",
                "tiny",
                *_sft(tmp_path, rows),
                "--steps",
                "1",
                "--max-length",
                "40",
                "--batch-size",
                "2",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    assert record["train"]["truncated_completions"] == {"train": 2, "dev": 2, "test": 2}
    assert "truncated_completions" in capsys.readouterr().out

    from lorabar.harness.run.config import config_from
    from lorabar.harness.tasks.lm_tasks import SFTTask

    cfg = config_from(
        {
            "model": "tiny",
            "max_length": 40,
            **{k: str(tmp_path / f"{k}.jsonl") for k in ("train", "dev", "test")},
            "prompt_column": "prompt",
            "completion_column": "completion",
        },
        "lm",
    )
    task = SFTTask(cfg)
    encoded = task._encode_split("train", task.train)
    prompt = [2 + b % 290 for b in "question 0 ?".encode()]
    first = next(ids for (ids, _), row in zip(encoded, task.train) if row[0] == "question 0 ?")
    assert first[: len(prompt)] == prompt and len(first) == 40  # the prompt whole, the end cut


def test_finetune_lm_refuses_a_prompt_longer_than_max_length(tmp_path, capsys):
    rows = [{"prompt": "a rather long prompt", "completion": " c"}] * 4
    assert (
        main(
            [
                "finetune-lm",
                "--model",
                "tiny",
                *_sft(tmp_path, rows),
                "--steps",
                "1",
                "--max-length",
                "5",
            ]
        )
        == 2
    )
    assert "train.jsonl:1: the prompt alone is 20 tokens, --max-length is 5" in one_error_line(
        capsys
    )


# ----------------------------------------------------------------------------- compare options
def _cmp(tmp_path, *extra) -> list[str]:
    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    return [
        "compare",
        "--model",
        "tiny",
        *own_data_args(paths),
        "--seeds",
        "13,21",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "C"),
        *extra,
    ]


def _toml(tmp_path, text: str) -> str:
    path = tmp_path / "g.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "toml, message",
    [
        (
            '[[variant]]\nmethod = "lora"\nseed = [13, 99]\n',
            r"variant\[0\].seed = \[13, 99\]; the seeds of a comparison come from --seeds alone",
        ),
        (
            '[gird]\nlr = [1e-3, 3e-3]\n[[variant]]\nmethod = "lora"\n',
            r"unknown sections \['gird'\]",
        ),
        ('[grid]\nlr = []\n[[variant]]\nmethod = "lora"\n', r"grid.lr is an empty list"),
        ('[[variant]]\nmethod = "lora"\nmu = [1.0]\n', r"variant\[0\].mu is not a setting"),
    ],
)
def test_compare_grids_are_validated_like_grid(tmp_path, capsys, toml, message):
    import re

    assert main(_cmp(tmp_path, "--grid", _toml(tmp_path, toml), "--dry-run")) == 2
    assert re.search(message, one_error_line(capsys))
    assert not (tmp_path / "C").exists()


def test_compare_tasks_without_grid_is_refused(tmp_path, capsys):
    assert main(_cmp(tmp_path, "--tasks", "sst2")) == 2
    assert "Invalid --tasks: it picks tasks of a --grid TOML" in one_error_line(capsys)


@pytest.mark.parametrize("command", ["compare", "grid"])
def test_jobs_0_is_a_usage_error(tmp_path, capsys, command):
    argv = (
        _cmp(tmp_path, "--jobs", "0")
        if command == "compare"
        else [
            "grid",
            _toml(tmp_path, '[[variant]]\nmethod = "lora"\n'),
            "--out",
            str(tmp_path / "o"),
            "--jobs",
            "0",
        ]
    )
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err


def test_compare_refusals_name_its_own_options(tmp_path, capsys):
    argv = _cmp(tmp_path, "--methods", "lora")
    assert main(argv) == 0
    capsys.readouterr()
    # the same --out with other settings: no --allow-mixed (compare has none) in the message
    argv2 = [a if a != "2" else "3" for a in argv]
    assert main(argv2) == 2
    err = one_error_line(capsys)
    assert "not comparable" in err and "--allow-mixed" not in err
    assert "give each comparison its own --out" in err


# ----------------------------------------------------------------------------- resumed state
def _bar_setup(**kw):
    from conftest import loss_of, make_batch, make_peft_model

    model = make_peft_model()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    bar = lorabar.BAR(lorabar.find_lora_pairs(model), mode="nbar", mu0=1.0, **kw)
    bar.attach(opt)
    for step in range(3):
        loss_of(model, make_batch(step)).backward()
        opt.step()
        opt.zero_grad()
    return model, opt, bar


@pytest.mark.parametrize(
    "other, message",
    [
        (
            {"schedule": "linear", "total_steps": 10},
            r"schedule='cosine' but this BAR has schedule='linear'",
        ),
        (
            {"schedule": "cosine", "total_steps": 20},
            r"total_steps=10 but this BAR has total_steps=20",
        ),
    ],
)
def test_bar_state_from_another_schedule_is_refused(other, message):
    _, _, bar = _bar_setup(schedule="cosine", total_steps=10)
    model, _, _ = _bar_setup(schedule="cosine", total_steps=10)
    fresh = lorabar.BAR(lorabar.find_lora_pairs(model), mode="nbar", mu0=1.0, **other)
    with pytest.raises(ValueError, match=message):
        fresh.load_state_dict(bar.state_dict())


def test_bar_state_ahead_of_the_optimizer_is_refused():
    _, _, bar = _bar_setup(schedule="cosine", total_steps=10)
    state = {**bar.state_dict(), "step": 7}
    model, opt, fresh = _bar_setup(schedule="cosine", total_steps=10)
    with pytest.raises(ValueError, match=r"step=7 is ahead of the optimizer's 3 steps"):
        fresh.load_state_dict(state)  # attached: checked at once
    detached = lorabar.BAR(
        lorabar.find_lora_pairs(model), mode="nbar", mu0=1.0, schedule="cosine", total_steps=10
    )
    detached.load_state_dict(state)
    fresh._handle.remove()
    with pytest.raises(ValueError, match=r"ahead of the optimizer's 3 steps"):
        detached.attach(opt)  # else at attach


def test_trainer_resume_with_other_max_steps_is_refused(tmp_path):
    from transformers import Trainer

    from test_user_loops import _args, _dataset
    from test_hf import _model
    from lorabar.integrations.hf import BARCallback

    Trainer(
        model=_model(),
        args=_args(tmp_path, save_steps=4),
        train_dataset=_dataset(),
        callbacks=[BARCallback(mode="nbar", mu0=5.0)],
    ).train()
    trainer = Trainer(
        model=_model(),
        args=_args(tmp_path, steps=12, save_steps=4),
        train_dataset=_dataset(),
        callbacks=[BARCallback(mode="nbar", mu0=5.0)],
    )
    with pytest.raises(ValueError, match=r"total_steps=8 but this BAR has total_steps=12"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))


# ----------------------------------------------------------------------------- SAM
def test_sam_moves_fp16_weights_under_a_loss_scaled_gradient():
    w = torch.nn.Parameter(torch.ones(64, dtype=torch.float16))
    sam = lorabar.SAM([w], torch.optim.SGD, rho=0.05, lr=0.1)
    w.grad = torch.full((64,), 6e4, dtype=torch.float16)  # |g| ~ 4.8e5: rho/|g| ~ 1e-7
    before = w.detach().clone()
    sam.first_step()
    moved = (w.detach().float() - before.float()).norm().item()
    assert moved > 0.04  # rho = 0.05, rounded to fp16 around 1.0
    assert sam.perturbation_norm.item() == pytest.approx(moved, rel=1e-6)
    sam.unperturb()
    assert torch.equal(w.detach(), before)


@pytest.mark.parametrize("trainer", ["hf", "trl"])
def test_sam_trainers_log_the_first_pass_loss(tmp_path, trainer):
    if trainer == "hf":
        from test_hf import _model, _trainer
        from transformers import Trainer
        from lorabar.integrations.hf import SAMTrainer as Cls

        def build(cls, model, **kw):
            return _trainer(model, tmp_path / cls.__name__, cls=cls, logging_steps=1, **kw)

        make, plain_cls = _model, Trainer
    else:
        from peft import LoraConfig, get_peft_model
        from trl import SFTTrainer

        from lorabar.integrations.trl import SAMSFTTrainer as Cls
        from test_user_loops import _sft, _tiny_llama

        def make():
            torch.manual_seed(0)
            return get_peft_model(
                _tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
            )

        def build(cls, model, **kw):
            return _sft(tmp_path / cls.__name__, cls=cls, model=model, **kw)

        plain_cls = SFTTrainer
    plain = build(plain_cls, make())
    plain.train()
    model = make()
    sam = lorabar.SAM(
        [p for p in model.parameters() if p.requires_grad], torch.optim.AdamW, rho=0.5, lr=1e-2
    )
    with_sam = build(Cls, model, sam=sam)
    with_sam.train()
    first = [h["loss"] for h in plain.state.log_history if "loss" in h][0]
    first_sam = [h["loss"] for h in with_sam.state.log_history if "loss" in h][0]
    assert first_sam == pytest.approx(first, rel=1e-5)  # the same start, the same batch


# ----------------------------------------------------------------------------- run files
def test_a_hand_edited_run_file_is_left_out_as_altered(tmp_path, capsys):
    from conftest import fake_record
    from test_trust import _folder

    runs = [fake_record("sst2", m, s, 0.8, 0.8, 100) for m in ("lora", "sam") for s in (13, 21)]
    folder = _folder(tmp_path, runs)
    edited = sorted(folder.glob("sst2_sam_*.json"))[0]
    record = json.loads(edited.read_text())
    record["metrics"]["test"]["accuracy"] = 0.99  # the identity untouched
    edited.write_text(json.dumps(record))
    assert main(["report", str(folder), "--out", str(tmp_path / "rep")]) == 0
    assert f"{edited}: altered: its content does not match its digest" in one_error_line(capsys)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "3 runs" in md and "altered" in md


# ----------------------------------------------------------------------------- tracebacks
@pytest.fixture
def saved_adapter(tmp_path):
    from peft import LoraConfig, get_peft_model

    from conftest import SimpleNet

    folder = tmp_path / "ad"
    get_peft_model(SimpleNet(), LoraConfig(r=2, target_modules=["lin"])).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", r"not a readable .safetensors file"),
        ("config-list", r"a JSON list, expected an object"),
        ("config-str", r"a JSON str, expected an object"),
        ("bin-pickle", r"not a state dict of tensors|not a readable .bin file"),
    ],
)
def test_inspect_on_damaged_adapters_is_one_line(saved_adapter, capsys, damage, message):
    import re

    weights = saved_adapter / "adapter_model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage.startswith("config"):
        (saved_adapter / "adapter_config.json").write_text(
            '["r", 8]' if damage == "config-list" else '"lora"'
        )
    else:
        weights.unlink()
        torch.save({"a": [1, 2, 3]}, saved_adapter / "adapter_model.bin")
    assert main(["inspect", str(saved_adapter)]) == 2
    err = one_error_line(capsys)
    assert re.search(message, err) and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_nan_loss_is_one_line_and_exit_1(tmp_path, capsys):
    paths = synthetic_files(tmp_path / "d")
    out = tmp_path / "r.json"
    assert (
        main([*FT, *own_data_args(paths), "--head", "linear", "--lr", "1e30", "--out", str(out)])
        == 1
    )
    err = one_error_line(capsys)
    assert "loss became nan at step" in err and "lower --lr" in err and not out.exists()


# ----------------------------------------------------------------------------- wrong refusals
def test_quoted_newlines_and_large_fields_are_read(tmp_path):
    from lorabar.harness.tasks.own_data import read_rows

    big = "x" * 200_000
    path = tmp_path / "reviews.csv"
    path.write_text(f'text,label\n"line one\nline two",1\n{big},0\nplain,1\n')
    rows = read_rows(path)
    assert [(n, r["text"]) for n, r in rows] == [(2, "line one\nline two"), (4, big), (5, "plain")]


def test_a_datasetdict_folder_names_its_splits(tmp_path):
    from datasets import Dataset, DatasetDict

    from lorabar.harness.tasks.own_data import read_rows

    DatasetDict(
        {
            "train": Dataset.from_list([{"text": "a", "label": 0}]),
            "test": Dataset.from_list([{"text": "b", "label": 1}]),
        }
    ).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(D.DataError, match=r"a DatasetDict folder with splits \['train', 'test'\]"):
        read_rows(tmp_path / "dd")


def test_exit_codes_come_from_one_table():
    from lorabar.cli import exit_code
    from lorabar.guard import OutputError

    assert exit_code(D.DataError("x")) == exit_code(OutputError("x")) == 2
    assert exit_code(FloatingPointError("x")) == exit_code(RuntimeError("x")) == 1
    assert exit_code(KeyError("x")) is None  # a bug: its traceback is shown


@pytest.mark.parametrize("command", ["grid", "compare"])
def test_a_malformed_own_file_stops_the_plan_before_any_run(tmp_path, capsys, command):
    paths = synthetic_files(tmp_path / "d")
    lines = paths["dev"].read_text().splitlines(keepends=True)
    paths["dev"].write_text("".join(lines[:3] + ["{not json\n"] + lines[3:]))
    if command == "grid":
        settings = "".join(
            f'{k} = "{v}"\n'
            for k, v in {
                "model": "tiny",
                "train": paths["train"],
                "dev": paths["dev"],
                "test": paths["test"],
                "text_column": "text",
                "label_column": "label",
            }.items()
        )
        argv = [
            "grid",
            _toml(tmp_path, f'[base]\n{settings}[[variant]]\nmethod = "lora"\n'),
            "--out",
            str(tmp_path / "C"),
        ]
    else:
        argv = _cmp(tmp_path / "x")[:1] + [
            "--model",
            "tiny",
            *own_data_args(paths),
            "--out",
            str(tmp_path / "C"),
        ]
    assert main(argv) == 2
    assert "dev.jsonl:4: not a JSON object" in one_error_line(capsys)
    assert not (tmp_path / "C").exists()


@pytest.mark.parametrize("split", ["train", "test"])
def test_constant_regression_labels_are_refused_naming_the_file(tmp_path, split):
    """The hostile round's NaN metrics and numpy warnings: one DataError instead."""
    from lorabar.harness.tasks.data_folder import DataError
    from lorabar.harness.tasks.own_data import load_user_data

    paths = {}
    for name in ("train", "dev", "test"):
        labels = [0.5] * 4 if name == split else [0.1, 0.7, 0.3, 0.9]
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(
            "text,y\n" + "".join(f"t{i} {name},{y}\n" for i, y in enumerate(labels))
        )
    with pytest.raises(DataError, match=rf"{split}.csv: every regression label is 0.5; "):
        load_user_data(
            paths["train"],
            paths["dev"],
            paths["test"],
            text_column="text",
            label_column="y",
            task_type="regression",
        )
