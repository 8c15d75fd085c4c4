"""From the user's own data and model to a verdict: own files, --save-adapter, the prompt head
for masked LMs, and `lorabar compare` (issue 22)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from lorabar.cli import main
from lorabar.harness.tasks import data_folder as D
from lorabar.harness.tasks.own_data import load_user_data
from conftest import one_error_line
from conftest import DATA
from conftest import own_data_args, synthetic_files


# ----------------------------------------------------------------------------- your own data
@pytest.mark.parametrize("fmt", ["csv", "parquet", "disk"])
def test_every_format_reads_the_same_examples(tmp_path, fmt):
    want = load_user_data(
        **{s: p for s, p in synthetic_files(tmp_path / "j").items()},
        text_column="text",
        label_column="label",
    )
    got = load_user_data(
        **{s: p for s, p in synthetic_files(tmp_path / fmt, fmt).items()},
        text_column="text",
        label_column="label",
    )
    assert got.splits == want.splits and got.task.labels == ("fruit", "metal")


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda rows: rows[2].update(label="veggie"),
            r"dev.jsonl:3: label 'veggie' is not one of "
            r"the train split's labels \['fruit', 'metal'\]",
        ),
        (lambda rows: rows[4].pop("text"), r"dev.jsonl:5: no column 'text'"),
        (
            lambda rows: rows[0].update(text=""),
            r"dev.jsonl:1: column 'text' holds '', expected text",
        ),
    ],
)
def test_own_data_errors_name_file_and_line(tmp_path, capsys, edit, message):
    paths = synthetic_files(tmp_path)
    rows = [json.loads(line) for line in paths["dev"].read_text().splitlines()]
    edit(rows)
    paths["dev"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(D.DataError, match=message):
        load_user_data(**paths, text_column="text", label_column="label")
    assert (
        main(
            [
                "finetune",
                "--model",
                "tiny",
                *own_data_args(paths),
                "--out",
                str(tmp_path / "r.json"),
            ]
        )
        == 2
    )
    assert "dev.jsonl:" in one_error_line(capsys) and not (tmp_path / "r.json").exists()


def test_own_data_refuses_mixed_label_types_and_unknown_formats(tmp_path):
    paths = synthetic_files(tmp_path)
    rows = [json.loads(line) for line in paths["train"].read_text().splitlines()]
    rows[0]["label"] = 3
    paths["train"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        D.DataError, match=r"train.jsonl: label column 'label' mixes numbers and strings"
    ):
        load_user_data(**paths, text_column="text", label_column="label")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(D.DataError, match=r"t.xlsx: unknown format '.xlsx'"):
        load_user_data(
            tmp_path / "t.xlsx",
            paths["dev"],
            paths["test"],
            text_column="text",
            label_column="label",
        )


def test_own_data_content_is_the_identity_not_the_path(tmp_path):
    from lorabar.harness.run.config import config_from
    from lorabar.harness.plan.grid import identity_of

    a = synthetic_files(tmp_path / "a")
    b = synthetic_files(tmp_path / "b")  # the same content elsewhere
    base = {"model": "tiny", "text_column": "text", "label_column": "label", "threads": 1}
    ia = identity_of(config_from({**base, **{k: str(v) for k, v in a.items()}}))
    ib = identity_of(config_from({**base, **{k: str(v) for k, v in b.items()}}))
    assert ia == ib and set(ia["data"]) == {"train", "dev", "test"}  # by role
    b["train"].write_text(b["train"].read_text().replace("apple", "melon"))
    ib2 = identity_of(config_from({**base, **{k: str(v) for k, v in b.items()}}))
    assert ib2["data"]["train"] != ia["data"]["train"]
    assert ib2["data"]["dev"] == ia["data"]["dev"]


# ----------------------------------------------------------------------------- --save-adapter
def test_save_adapter_loads_back_with_the_same_test_metric(tmp_path):
    from lorabar.harness.models.encoder_model import SequenceClassifier, _tiny_encoder, load_trained
    from lorabar.integrations.adapter import inspect_adapter

    paths = synthetic_files(tmp_path)
    out, ad = tmp_path / "r.json", tmp_path / "A"
    assert (
        main(
            [
                "finetune",
                "--model",
                "tiny",
                *own_data_args(paths),
                "--method",
                "obar",
                "--steps",
                "20",
                "--lr",
                "0.01",
                "--quiet",
                "--save-adapter",
                str(ad),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    assert len(inspect_adapter(ad)["layers"]) == record["train"]["lora_pairs"] == 4
    torch.manual_seed(record["config"]["seed"])  # the engine's seed before building the model
    base = SequenceClassifier(_tiny_encoder(), 2, pooling=record["config"]["pooling"])
    model = load_trained(base, str(ad))
    from lorabar.harness.run.config import config_from
    from lorabar.harness.tasks.encoder_task import EncoderTask
    from lorabar.harness.run.runtime import Runtime
    from lorabar.harness.run.registry import METHODS

    task = EncoderTask(config_from({**record["config"], "data_dir": None}))
    task.build_model(METHODS["lora"])  # tokenizes the splits (the model it builds is not used)
    runtime = Runtime.resolve(record["runtime"]["device"], record["runtime"]["precision"])
    assert task.evaluate(model, "test", runtime) == record["metrics"]["test"]


def test_save_adapter_refuses_an_existing_folder_before_training(tmp_path, capsys, monkeypatch):
    paths = synthetic_files(tmp_path)
    ad = tmp_path / "A"
    ad.mkdir()
    (ad / "mine.txt").write_text("keep")
    import lorabar.harness.run.engine as E

    monkeypatch.setattr(E, "run", lambda *a, **k: pytest.fail("trained before the check"))
    assert (
        main(["finetune", "--model", "tiny", *own_data_args(paths), "--save-adapter", str(ad)]) == 2
    )
    assert "exists, is not empty and is not a folder lorabar wrote" in one_error_line(capsys)
    assert [p.name for p in ad.iterdir()] == ["mine.txt"]


@pytest.mark.real
def test_minilm_adapter_on_own_files_has_twelve_pairs(tmp_path):
    paths = synthetic_files(tmp_path)
    ad = tmp_path / "A"
    assert (
        main(
            [
                "finetune",
                *own_data_args(paths),
                "--method",
                "obar",
                "--steps",
                "3",
                "--max-eval",
                "32",
                "--save-adapter",
                str(ad),
                "--out",
                str(tmp_path / "r.json"),
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["inspect", str(ad), "--json", str(tmp_path / "i.json")]) == 0
    assert len(json.loads((tmp_path / "i.json").read_text())["layers"]) == 12


# ----------------------------------------------------------------------------- prompt heads
@pytest.mark.data
def test_prompt_head_on_a_staged_task_with_mezos_template(tmp_path):
    out = tmp_path / "p.json"
    assert (
        main(
            [
                "finetune",
                "--task",
                "sst2",
                "--model",
                "tiny-mlm",
                "--head",
                "prompt",
                "--steps",
                "2",
                "--max-eval",
                "32",
                "--out",
                str(out),
                "--data-dir",
                str(DATA),
                "--quiet",
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    assert record["config"]["head"] == "prompt" and record["identity"]["config"]["head"] == "prompt"
    assert record["train"]["trainable_params"] > 0  # the LoRA factors only (the MLM is frozen)


def test_prompt_head_learns_a_synthetic_task_far_above_chance(tmp_path):
    paths = synthetic_files(tmp_path, n=(256, 64, 128))
    out = tmp_path / "p.json"
    assert (
        main(
            [
                "finetune",
                "--model",
                "tiny-mlm",
                "--head",
                "prompt",
                *own_data_args(paths),
                "--template",
                "{text} It was {mask} .",
                "--verbalizer",
                "fruit=bad,metal=good",
                "--steps",
                "150",
                "--lr",
                "0.01",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["metrics"]["test"]["accuracy"] >= 0.9  # chance: 0.5


def test_mezo_templates_render_like_lm_bff():
    from lorabar.harness.tasks.mlm_prompt import PromptEncoder, TinyTokenizer
    from lorabar.harness.tasks.mlm_templates import MEZO_TEMPLATES

    tok = TinyTokenizer()
    template, words = MEZO_TEMPLATES["snli"]
    enc = PromptEncoder(tok, template, words, ("entailment", "neutral", "contradiction"), 128)
    got = enc.encode("A man sleeps.", "He rests")["input_ids"]
    # *cls* *sent-_0* (the last token dropped) ? *mask* , *+sentl_1* (first letter lowered) *sep+*
    want = (
        [tok.cls_token_id]
        + tok.encode("A man sleeps.")[:-1]
        + tok.encode("?")
        + [tok.mask_token_id]
        + tok.encode(",")
        + tok.encode(" he rests")
        + [tok.sep_token_id]
    )
    assert got == want
    assert set(MEZO_TEMPLATES) == {
        "sst2",
        "sst5",
        "qqp",
        "qnli",
        "mnli",
        "snli",
        "trec",
        "cola",
        "mrpc",
        "rte",
    }


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--head", "prompt", "--task", "stsb"], r"no built-in template for task 'stsb'"),
        (
            ["--head", "prompt", "--template", "{text} x"],
            r"give --template and --verbalizer together",
        ),
        (["--template", "{text} {mask}", "--verbalizer", "0=a,1=b"], r"go with --head prompt"),
    ],
)
def test_prompt_head_errors(capsys, argv, message):
    import re

    assert main(["finetune", "--model", "tiny-mlm", *argv]) == 2
    assert re.search(message, one_error_line(capsys))


# ----------------------------------------------------------------------------- compare
def test_compare_on_own_files_then_resumes_with_nothing_to_do(tmp_path, capsys):
    paths = synthetic_files(tmp_path)
    argv = [
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
        "--max-eval",
        "32",
        "--out",
        str(tmp_path / "C"),
    ]
    assert main(argv) == 0
    paired = (tmp_path / "C" / "paired.csv").read_text()
    import re

    assert re.search(r"^train-[0-9a-f]{6},LoRA-oBAR,2,", paired, re.M)  # named from its data
    assert (tmp_path / "C" / "paired.csv").read_bytes() == (
        tmp_path / "C" / "report" / "paired.csv"
    ).read_bytes()  # the report's, byte for byte
    runs = sorted(p.name for p in (tmp_path / "C" / "runs").glob("*.json"))
    capsys.readouterr()
    assert main(argv) == 0
    assert "compare: 0 runs ran now" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "C" / "runs").glob("*.json")) == runs
    assert main([*argv, "--dry-run"]) == 0
    assert "0 to do" in capsys.readouterr().out


def test_compare_fixes_a_setting_given_as_a_flag():
    from lorabar.harness.compare import CompareConfig, tuning_grid

    cc = CompareConfig(out="x", methods=("lora", "sam"), seeds=(13,), base={"rho": 0.05})
    variants = {v["method"]: v for v in tuning_grid(cc)["variant"]}
    assert variants["lora"]["lr"] == [1e-3, 3e-3] and "rho" not in variants["sam"]
    with pytest.raises(ValueError, match=r"Invalid --baseline: 'sam' is not among --methods"):
        CompareConfig(out="x", methods=("lora", "obar"), baseline="sam")


# ----------------------------------------------------------------------------- finetune-lm SFT
def _sft_files(folder: Path) -> list[str]:
    r = random.Random(0)
    for split, n in (("train", 64), ("dev", 16), ("test", 16)):
        rows = []
        for _ in range(n):
            a, b = r.randrange(10), r.randrange(10)
            rows.append({"prompt": f"add {a} and {b} =", "completion": f" {a + b}"})
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    return [
        "--train",
        str(folder / "train.jsonl"),
        "--dev",
        str(folder / "dev.jsonl"),
        "--test",
        str(folder / "test.jsonl"),
        "--prompt-column",
        "prompt",
        "--completion-column",
        "completion",
    ]


def test_finetune_lm_on_own_prompt_completion_pairs(tmp_path):
    files = _sft_files(tmp_path)
    nll = {}
    for method in ("zeroshot", "lora"):
        out = tmp_path / f"{method}.json"
        assert (
            main(
                [
                    "finetune-lm",
                    "--model",
                    "tiny",
                    *files,
                    "--method",
                    method,
                    "--steps",
                    "30",
                    "--lr",
                    "0.01",
                    "--quiet",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        record = json.loads(out.read_text())
        assert record["primary_metric"] == "neg_nll"
        nll[method] = record["metrics"]["test"]["nll"]
        assert record["metrics"]["test"]["neg_nll"] == -nll[method]
    assert nll["lora"] < nll["zeroshot"]  # the completion's likelihood rose


def test_finetune_lm_own_data_errors(tmp_path, capsys):
    files = _sft_files(tmp_path)
    assert main(["finetune-lm", "--model", "tiny", *files, "--metric", "bleu"]) == 2
    assert "model 'tiny' has no tokenizer" in one_error_line(capsys)
    assert main(["finetune-lm", "--model", "tiny", *files[:6]]) == 2
    assert "needs --prompt-column, --completion-column" in one_error_line(capsys)
