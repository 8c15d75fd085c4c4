"""BAR and SAM inside the user's own training: exact resume (Trainer, plain loop, Accelerate),
true metrics, PEFT variants, LoRA+, TRL, and misuse refused (issue 20; each failed before)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

import lorabar
from lorabar.harness.models.encoder_model import build_model
from lorabar.integrations.hf import BARCallback, SAMTrainer
from test_hf import _model

N, SEQ = 16, 6


def _dataset():
    g = torch.Generator().manual_seed(1)
    batch = {
        "input_ids": torch.randint(1, 999, (N, SEQ), generator=g),
        "token_type_ids": torch.zeros(N, SEQ, dtype=torch.long),
        "attention_mask": torch.ones(N, SEQ, dtype=torch.long),
        "labels": torch.randint(0, 2, (N,), generator=g),
    }
    return [{k: v[i] for k, v in batch.items()} for i in range(N)]


def _args(out, steps=8, save_steps=0, **kw):
    from transformers import TrainingArguments

    save = (
        dict(save_strategy="steps", save_steps=save_steps)
        if save_steps
        else dict(save_strategy="no")
    )
    return TrainingArguments(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        learning_rate=1e-2,
        weight_decay=0.0,
        lr_scheduler_type="linear",
        report_to=[],
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=0,
        logging_strategy="steps",
        logging_steps=2,
        **save,
        **kw,
    )


def _lora(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def _assert_bitwise(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff == 0.0, f"max |diff| {diff}"


BAR_KW = {"nbar": {"mu0": 5.0}, "obar": {"mu0": 5.0}, "sbar": {"rho": 5.0}}


# ----------------------------------------------------------------------------- exact resume
@pytest.mark.parametrize("mode", ["nbar", "obar", "sbar"])
def test_trainer_resume_with_bar_callback_is_exact(tmp_path, mode):
    from transformers import Trainer

    whole = _model()
    cb = BARCallback(mode=mode, **BAR_KW[mode])
    Trainer(
        model=whole, args=_args(tmp_path / "a"), train_dataset=_dataset(), callbacks=[cb]
    ).train()
    first = _model()
    Trainer(
        model=first,
        args=_args(tmp_path / "b", steps=8, save_steps=4),
        train_dataset=_dataset(),
        callbacks=[BARCallback(mode=mode, **BAR_KW[mode])],
    ).train()
    resumed = _model()  # a fresh process: a new model, a new callback
    cb2 = BARCallback(mode=mode, **BAR_KW[mode])
    trainer = Trainer(
        model=resumed,
        args=_args(tmp_path / "b", steps=8, save_steps=4),
        train_dataset=_dataset(),
        callbacks=[cb2],
    )
    trainer.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-4"))
    _assert_bitwise(_lora(whole), _lora(resumed))
    assert cb2.bar.step == cb.bar.step == 8
    logged = {h["step"]: h["bar/step"] for h in trainer.state.log_history if "bar/step" in h}
    assert logged[6] == 6 and logged[8] == 8  # t continues from the checkpoint


def test_trainer_resume_without_bar_state_is_refused(tmp_path):
    from transformers import Trainer

    Trainer(model=_model(), args=_args(tmp_path, save_steps=4), train_dataset=_dataset()).train()
    trainer = Trainer(
        model=_model(),
        args=_args(tmp_path, save_steps=4),
        train_dataset=_dataset(),
        callbacks=[BARCallback(mode="nbar", mu0=5.0)],
    )
    with pytest.raises(RuntimeError, match=r"without BAR's state .* restart at t = 0"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))


def test_sam_trainer_resume_is_exact(tmp_path):
    def run(out, resume=None, steps_saved=0):
        model = _model()
        sam = lorabar.SAM(
            [p for p in model.parameters() if p.requires_grad],
            torch.optim.AdamW,
            rho=0.05,
            lr=1e-2,
            weight_decay=0.0,
        )
        trainer = SAMTrainer(
            model=model, args=_args(out, save_steps=steps_saved), train_dataset=_dataset(), sam=sam
        )
        trainer.train(resume_from_checkpoint=resume)
        return model, sam, trainer

    whole, sam, trainer = run(tmp_path / "a")
    run(tmp_path / "b", steps_saved=4)
    resumed, _, _ = run(tmp_path / "b", resume=str(tmp_path / "b" / "checkpoint-4"), steps_saved=4)
    _assert_bitwise(_lora(whole), _lora(resumed))
    # SAM's param groups are the ones the Trainer's scheduler decays (were stale before)
    assert sam.param_groups[0]["lr"] == trainer.optimizer.param_groups[0]["lr"] == 0.0


def _plain_loop(model, opt, bar, steps, start=0):
    data = _dataset()
    for step in range(start, steps):
        batch = {
            k: torch.stack([d[k] for d in data[(4 * step) % N : (4 * step) % N + 4]])
            for k in data[0]
        }
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()


@pytest.mark.data
@pytest.mark.parametrize("mode", ["nbar", "obar", "sbar"])
def test_plain_loop_resume_with_bar_state_dict_is_exact(tmp_path, mode):
    def build():
        model = _model()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        pairs = lorabar.find_lora_pairs(model)
        bar = (
            lorabar.SBAR(pairs, **BAR_KW[mode])
            if mode == "sbar"
            else lorabar.BAR(pairs, mode=mode, schedule="cosine", total_steps=8, **BAR_KW[mode])
        )
        bar.attach(opt)
        return model, opt, bar

    whole, opt, bar = build()
    _plain_loop(whole, opt, bar, 8)
    first, opt1, bar1 = build()
    _plain_loop(first, opt1, bar1, 4)
    torch.save(
        {"model": first.state_dict(), "optimizer": opt1.state_dict(), "bar": bar1.state_dict()},
        tmp_path / "ckpt.pt",
    )
    resumed, opt2, bar2 = build()  # the README's recipe
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    bar2.load_state_dict(ckpt["bar"])
    _plain_loop(resumed, opt2, bar2, 8, start=4)
    _assert_bitwise(_lora(whole), _lora(resumed))


def test_accelerate_checkpointing_carries_bar(tmp_path):
    from accelerate import Accelerator

    def build():
        accelerator = Accelerator(cpu=True)
        model = _model()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        model, opt = accelerator.prepare(model, opt)
        bar = lorabar.BAR(
            lorabar.find_lora_pairs(model), mode="nbar", mu0=5.0, schedule="cosine", total_steps=8
        )
        bar.attach(opt.optimizer)
        accelerator.register_for_checkpointing(bar)
        return accelerator, model, opt, bar

    acc, whole, opt, bar = build()
    _plain_loop(whole, opt, bar, 8)
    acc1, first, opt1, bar1 = build()
    _plain_loop(first, opt1, bar1, 4)
    acc1.save_state(str(tmp_path / "state"))
    acc2, resumed, opt2, bar2 = build()
    acc2.load_state(str(tmp_path / "state"))
    assert bar2.step == 4
    _plain_loop(resumed, opt2, bar2, 8, start=4)
    _assert_bitwise(_lora(whole), _lora(resumed))


# ----------------------------------------------------------------------------- what is measured
def _two_adapters(tmp_path):
    """The training adapter 'default' and a second one loaded trainable but not active, with much
    larger factors."""
    from peft import PeftModel

    donor = _model(seed=1)
    with torch.no_grad():
        for n, p in donor.named_parameters():
            if "lora_" in n:
                p.normal_(0.0, 3.0)
    donor.save_pretrained(tmp_path / "other")
    model = _model()
    assert isinstance(model, PeftModel)
    model.load_adapter(str(tmp_path / "other"), adapter_name="other", is_trainable=True)
    assert model.active_adapters == ["default"]
    return model


def test_an_inactive_adapter_is_neither_measured_nor_rescaled(tmp_path):
    from transformers import Trainer

    model = _two_adapters(tmp_path)
    pairs = lorabar.find_lora_pairs(model)
    assert {p.adapter for p in pairs} == {"default"}
    other = {n: p.detach().clone() for n, p in model.named_parameters() if ".other." in n}
    cb = BARCallback(mode="obar", mu0=5.0)
    trainer = Trainer(
        model=model, args=_args(tmp_path / "t", steps=2), train_dataset=_dataset(), callbacks=[cb]
    )
    trainer.train()
    logged = [h["bar/mean_abs_B"] for h in trainer.state.log_history if "bar/mean_abs_B" in h]
    active = lorabar.balancedness(lorabar.find_lora_pairs(model, adapters=["default"]))
    assert logged[-1] == active.mean_abs_B.item()
    for n, p in model.named_parameters():
        if n in other:
            assert torch.equal(p, other[n]), n  # not rescaled


def test_adalora_and_merged_adapters_are_refused():
    from peft import AdaLoraConfig, get_peft_model

    torch.manual_seed(0)
    base, _ = build_model("tiny", 2, method="full")
    ada = get_peft_model(base, AdaLoraConfig(target_modules=["query", "value"], total_step=10))
    with pytest.raises(ValueError, match=r"AdaLoRA layer.* not the two-factor"):
        lorabar.find_lora_pairs(ada)
    model = _model()
    model.merge_adapter()
    with pytest.raises(ValueError, match=r"merged into its base weight.*unmerge_adapter"):
        lorabar.find_lora_pairs(model)
    model.unmerge_adapter()
    assert lorabar.find_lora_pairs(model)


def test_bar_metrics_reach_a_callback_listed_before_it(tmp_path):
    from transformers import Trainer, TrainerCallback

    class Recorder(TrainerCallback):  # stands for TensorBoard/W&B: it only reads the logs
        seen: list = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.seen.append(dict(logs or {}))

    from lorabar.integrations.hf import add_callback_first

    recorder, bar = Recorder(), BARCallback(mode="nbar", mu0=5.0)
    trainer = Trainer(
        model=_model(),
        args=_args(tmp_path, steps=4),
        train_dataset=_dataset(),
        callbacks=[recorder, bar],
    )
    order = [type(c).__name__ for c in trainer.callback_handler.callbacks]
    add_callback_first(trainer, bar)  # the Trainer's own remove/add: the others keep their order
    assert [type(c).__name__ for c in trainer.callback_handler.callbacks] == ["BARCallback"] + [
        n for n in order if n != "BARCallback"
    ]
    trainer.train()
    train_logs = [log for log in recorder.seen if "loss" in log]
    assert train_logs and all("bar/mean_abs_B" in log for log in train_logs)


def test_without_add_callback_first_a_callback_before_it_misses_bar_logs(tmp_path):
    """The documented order: the Trainer calls callbacks in order, so one listed before
    BARCallback (as every report_to integration is) sees the logs before bar/* is added; the
    Trainer's log_history has them either way."""
    from transformers import Trainer, TrainerCallback

    class Recorder(TrainerCallback):
        seen: list = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.seen.append(dict(logs or {}))

    recorder = Recorder()
    trainer = Trainer(
        model=_model(),
        args=_args(tmp_path, steps=4),
        train_dataset=_dataset(),
        callbacks=[recorder, BARCallback(mode="nbar", mu0=5.0)],
    )
    trainer.train()
    assert not any("bar/mean_abs_B" in log for log in recorder.seen)
    assert all("bar/mean_abs_B" in h for h in trainer.state.log_history if "loss" in h)


# ----------------------------------------------------------------------------- LoRA+
def test_bar_on_loraplus_optimizer_matches_a_float64_reference():
    from peft.optimizers import create_loraplus_optimizer

    model = _model().double()
    opt = create_loraplus_optimizer(model, torch.optim.SGD, lr=1e-2, loraplus_lr_ratio=16.0)
    pairs = lorabar.find_lora_pairs(model)
    bar = lorabar.BAR(pairs, mode="obar", mu0=2.0)
    bar.attach(opt)
    batch = {k: torch.stack([d[k] for d in _dataset()[:4]]) for k in _dataset()[0]}
    model(**batch).loss.backward()
    before = [
        (p.x.detach().clone(), p.y.detach().clone(), p.x.grad.clone(), p.y.grad.clone())
        for p in pairs
    ]
    opt.step()
    eta = math.sqrt(1e-2 * 16e-2)  # the pair's rate: the geometric mean of lr_A and lr_B
    for pair, (x, y, gx, gy) in zip(pairs, before):
        c = 2.0 * eta
        sx, sy = (1 - c, 1 + c) if x.norm() >= y.norm() else (1 + c, 1 - c)
        want_x = x * sx - 1e-2 * gx  # SGD after the rescaling; lr_B = 16 lr_A
        want_y = y * sy - 16e-2 * gy
        assert torch.equal(pair.x.detach(), want_x) and torch.equal(pair.y.detach(), want_y)


@pytest.mark.data
def test_finetune_loraplus_with_bar(tmp_path, capsys):
    import json

    from lorabar.cli import main
    from conftest import DATA

    out = tmp_path / "r.json"
    assert (
        main(
            [
                "finetune",
                "--model",
                "tiny",
                "--method",
                "loraplus",
                "--bar",
                "obar",
                "--mu0",
                "1",
                "--schedule",
                "cosine",
                "--steps",
                "3",
                "--max-eval",
                "8",
                "--data-dir",
                str(DATA),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    assert record["loraplus"]["bar"] == {"mode": "obar", "mu0": 1.0, "schedule": "cosine"}
    assert record["identity"]["config"]["bar"] == "obar"
    from lorabar.harness.run.config import EncoderConfig

    with pytest.raises(
        ValueError,
        match=r"Invalid bar: 'obar' \(--bar combines BAR with "
        r"--method loraplus",
    ):
        EncoderConfig(method="lora", bar="obar")


# ----------------------------------------------------------------------------- TRL
def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
        )
    )


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(64)}, unk_token="t1"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="t0", unk_token="t1", eos_token="t2"
    )


def _sft(out, cls=None, model=None, **kw):
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    g = torch.Generator().manual_seed(0)
    data = Dataset.from_dict(
        {"input_ids": [torch.randint(3, 64, (12,), generator=g).tolist() for _ in range(8)]}
    )
    args = SFTConfig(
        output_dir=str(out),
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    extra = (
        {}
        if model is not None
        else {"peft_config": LoraConfig(r=4, target_modules=["q_proj", "v_proj"])}
    )
    return (cls or SFTTrainer)(
        model=model if model is not None else _tiny_llama(),
        args=args,
        train_dataset=data,
        processing_class=_tokenizer(),
        **extra,
        **kw,
    )


def test_trl_sft_with_bar_callback_and_with_sam(tmp_path):
    from peft import LoraConfig, get_peft_model

    from lorabar.integrations.trl import SAMSFTTrainer

    cb = BARCallback(mode="nbar", mu0=5.0)
    plain = _sft(tmp_path / "bar", callbacks=[cb])  # BAR in one line
    plain.train()
    assert cb.bar.step == 3 and any("bar/mean_abs_B" in h for h in plain.state.log_history)
    tokens = [h["num_tokens"] for h in plain.state.log_history if "num_tokens" in h]

    model = get_peft_model(_tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    sam = lorabar.SAM(
        [p for p in model.parameters() if p.requires_grad], torch.optim.AdamW, rho=0.05, lr=1e-2
    )
    trainer = _sft(tmp_path / "sam", cls=SAMSFTTrainer, model=model, sam=sam)
    trainer.train()
    sam_tokens = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
    assert tokens and sam_tokens == tokens  # counted once per step, not twice
    assert sam.param_groups[0]["lr"] == trainer.optimizer.param_groups[0]["lr"]
    assert any("sam/perturbation_norm" in h for h in trainer.state.log_history)


# ----------------------------------------------------------------------------- misuse
def test_a_second_bar_over_the_same_pairs_is_refused(peft_model):
    pairs = lorabar.find_lora_pairs(peft_model)
    opt = torch.optim.SGD(peft_model.parameters(), lr=1e-2)
    first = lorabar.BAR(pairs, mu0=1.0)
    handle = first.attach(opt)
    with pytest.raises(ValueError, match=r"already handled by another BAR attached to this SGD"):
        lorabar.BAR(pairs, mode="obar", mu0=1.0).attach(opt)
    handle.remove()  # once detached, another BAR may take them
    lorabar.BAR(pairs, mode="obar", mu0=1.0).attach(opt)


def test_factors_sharing_storage_are_refused():
    w = torch.randn(8)
    with pytest.raises(ValueError, match=r"x and y share storage"):
        lorabar.FactorPair(x=w[:4], y=w[2:6], name="p")
    lorabar.FactorPair(x=w[:4], y=w[4:], name="disjoint views are fine")
    a, b = torch.randn(2, 3), torch.randn(3, 2)
    p1 = lorabar.FactorPair(x=a, y=b, name="p1")
    p2 = lorabar.FactorPair(x=a.view(3, 2).t(), y=torch.randn(3, 2), name="p2")
    with pytest.raises(ValueError, match=r"a factor of 'p2' shares storage with a factor of 'p1'"):
        lorabar.BAR([p1, p2])


@pytest.mark.parametrize("rho", [-0.1, float("nan"), float("inf")])
def test_sam_refuses_a_bad_group_rho(rho):
    a, b = nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(3))
    with pytest.raises(ValueError, match=r"Invalid rho: .* in param group 1"):
        lorabar.SAM([{"params": [a]}, {"params": [b], "rho": rho}], torch.optim.SGD, lr=0.1)
    sam = lorabar.SAM([a], torch.optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match=r"Invalid rho: .* in param group 1"):
        sam.add_param_group({"params": [b], "rho": rho})


def test_perturbed_params_counts_only_perturbed_groups():
    from lorabar.harness.run.config import EncoderConfig
    from lorabar.harness.run.methods import StepContext, make_stepper
    from lorabar.harness.run.runtime import Runtime

    model = _model()
    params = [p for p in model.parameters() if p.requires_grad]
    info = {}
    for rho in (0.0, 0.05):
        ctx = StepContext(
            model=model,
            params=params,
            pairs=lorabar.find_lora_pairs(model),
            loss_fn=lambda b: model(**b).loss,
            runtime=Runtime.resolve("cpu", "fp32"),
            config=EncoderConfig(method="sam", lr=1e-2, steps=2, rho=rho),
        )
        info[rho] = make_stepper(ctx).info["sam"]
    assert info[0.0]["perturbed_params"] == 0
    assert info[0.05]["perturbed_params"] > 0


def test_a_large_bar_rate_warns_once(peft_model):
    from conftest import loss_of, make_batch

    bar = lorabar.BAR(lorabar.find_lora_pairs(peft_model), mode="obar", mu0=999.0)
    opt = torch.optim.SGD(peft_model.parameters(), lr=1e-3)
    bar.attach(opt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            loss_of(peft_model, make_batch()).backward()
            opt.step()
            opt.zero_grad()
    rate = [w for w in caught if "exceeds 0.1" in str(w.message)]
    assert len(rate) == 1 and issubclass(rate[0].category, RuntimeWarning)


def test_deepspeed_optimizers_are_refused_at_attach_time():
    from lorabar.integrations.hf import unwrap_optimizer

    inner = torch.optim.SGD([nn.Parameter(torch.randn(2))], lr=0.1)
    ZeRO = type(
        "DeepSpeedZeroOptimizer", (), {"__module__": "deepspeed.runtime.zero.stage_1_and_2"}
    )
    zero = ZeRO()
    zero.optimizer = inner
    Wrapper = type("DeepSpeedOptimizerWrapper", (), {"__module__": "accelerate.utils.deepspeed"})
    wrapped = Wrapper()
    wrapped.optimizer = zero
    with pytest.raises(TypeError, match=r"DeepSpeed's .* silent no-op"):
        unwrap_optimizer(wrapped)


def test_version_flag(capsys):
    from importlib.metadata import version

    from lorabar.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"lorabar {version('lorabar')}"


def test_bar_metrics_reach_tensorboard(tmp_path):
    """report_to=["tensorboard"] works after the README's set-up (the hf extra installs it), and
    BARCallback's bar/* values reach its event files once it is first."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import Trainer, TrainingArguments

    from lorabar.integrations.hf import add_callback_first

    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to=["tensorboard"],
        use_cpu=True,
        logging_steps=2,
        save_strategy="no",
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    bar = BARCallback(mode="nbar", mu0=5.0)
    trainer = Trainer(model=_model(), args=args, train_dataset=_dataset(), callbacks=[bar])
    add_callback_first(trainer, bar)
    trainer.train()
    events = EventAccumulator(str(next(tmp_path.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    steps = [e.step for e in events.Scalars("train/bar/mean_abs_B")]
    assert steps == [2, 4, 4]  # the logging steps, then the end-of-training summary
