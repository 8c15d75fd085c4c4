"""The Hugging Face Trainer path matches the engine's steppers on a tiny model; Trainer logs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lorabar
from lorabar.harness.run.engine import lr_lambda
from lorabar.harness.run.config import EncoderConfig
from lorabar.harness.run.methods import StepContext, make_stepper
from lorabar.harness.models.encoder_model import build_model
from lorabar.harness.run.runtime import Runtime

N, SEQ, STEPS = 8, 6, 5


def _model(seed: int = 0):
    torch.manual_seed(seed)
    model, _ = build_model("tiny", 2, method="lora", targets="qv")
    for m in model.modules():  # no dropout: both paths must see the same function
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    return {
        "input_ids": torch.randint(1, 999, (N, SEQ), generator=g),
        "token_type_ids": torch.zeros(N, SEQ, dtype=torch.long),
        "attention_mask": torch.ones(N, SEQ, dtype=torch.long),
        "labels": torch.randint(0, 2, (N,), generator=g),
    }


def _trainer(model, tmp_path, cls=None, logging_steps=0, **kwargs):
    from transformers import Trainer, TrainingArguments

    batch = _batch()
    dataset = [{k: v[i] for k, v in batch.items()} for i in range(N)]
    logging = (
        dict(logging_strategy="steps", logging_steps=logging_steps)
        if logging_steps
        else dict(logging_strategy="no")
    )
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=N,
        learning_rate=1e-2,
        weight_decay=0.0,
        max_grad_norm=0.0,
        lr_scheduler_type="linear",
        warmup_steps=0,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=0,
        **logging,
    )
    return (cls or Trainer)(model=model, args=args, train_dataset=dataset, **kwargs)


def _harness(method, rho=0.05, mu0=1.0, schedule="cosine"):
    """STEPS steps of the engine's stepper for ``method`` (fp32, linear LR decay)."""
    model = _model()
    ctx = StepContext(
        model=model,
        params=[p for p in model.parameters() if p.requires_grad],
        pairs=lorabar.find_lora_pairs(model),
        loss_fn=lambda b: model(**b).loss,
        runtime=Runtime.resolve("cpu", "fp32"),
        config=EncoderConfig(
            method=method, lr=1e-2, steps=STEPS, rho=rho, mu0=mu0, schedule=schedule
        ),
    )
    stepper = make_stepper(ctx)
    sched = torch.optim.lr_scheduler.LambdaLR(stepper.optimizer, lr_lambda(STEPS))
    batch = _batch()
    for _ in range(STEPS):
        stepper.step(dict(batch))
        sched.step()
    return model


def _assert_same(a, b, atol=1e-6):
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=atol, msg=name)


@pytest.mark.parametrize("mode", ["nbar", "obar", "sbar"])
def test_callback_on_trainer_built_optimizer(mode, tmp_path):
    from lorabar.integrations.hf import BARCallback

    model = _model()
    kw = {"rho": 5.0} if mode == "sbar" else {"mu0": 20.0, "schedule": "cosine"}
    cb = BARCallback(mode=mode, log_every=1, **kw)
    _trainer(model, tmp_path, callbacks=[cb]).train()
    assert cb.bar.step == STEPS and [h["step"] for h in cb.history] == list(range(1, STEPS + 1))
    assert not cb.bar.attached  # removed at the end of training
    _assert_same(model, _harness(mode, mu0=20.0, schedule="cosine", rho=kw.get("rho", 0.05)))
    if mode == "sbar":  # and the rescaling is not a no-op at this rho
        assert any(
            not torch.allclose(p, q, rtol=1e-4, atol=1e-6)
            for p, q in zip(model.parameters(), _harness("lora").parameters())
        )
    assert not torch.equal(
        model.base_model.model.encoder.encoder.layer[0]
        .attention.self.query.lora_A["default"]
        .weight,
        _model()
        .base_model.model.encoder.encoder.layer[0]
        .attention.self.query.lora_A["default"]
        .weight,
    )


def test_attach_with_user_optimizer(tmp_path):
    from transformers import get_linear_schedule_with_warmup

    model = _model()
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0
    )
    sched = get_linear_schedule_with_warmup(opt, 0, STEPS)
    bar = lorabar.BAR(
        lorabar.find_lora_pairs(model), mode="nbar", mu0=20.0, schedule="cosine", total_steps=STEPS
    )
    bar.attach(opt)
    _trainer(model, tmp_path, optimizers=(opt, sched)).train()
    assert bar.step == STEPS
    _assert_same(model, _harness("nbar", mu0=20.0, schedule="cosine"))


def test_sam_trainer_matches_harness(tmp_path):
    from lorabar.integrations.hf import SAMTrainer

    model = _model()
    # LoRA-SAM as the harness does it: the LoRA factors perturbed, the head only stepped
    factors = {id(t) for pair in lorabar.find_lora_pairs(model) for t in pair.tensors}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if id(p) in factors]},
        {"params": [p for p in params if id(p) not in factors], "rho": 0.0},
    ]
    sam = lorabar.SAM(groups, torch.optim.AdamW, rho=0.05, lr=1e-2, weight_decay=0.0)
    _trainer(model, tmp_path, cls=SAMTrainer, sam=sam).train()
    # The Trainer shuffles the (single) batch, so sums run in another order; Adam's first steps
    # amplify that for entries whose gradient is ~eps (measured max difference 9e-6, lr = 1e-2).
    _assert_same(model, _harness("sam", rho=0.05), atol=1e-4)
    lora_only = _harness("lora")
    diff = max(
        (p - q).abs().max().item() for p, q in zip(model.parameters(), lora_only.parameters())
    )
    assert diff > 1e-3  # SAM is not plain LoRA


def test_sam_trainer_rejects_other_optimizer(tmp_path):
    from lorabar.integrations.hf import SAMTrainer

    model = _model()
    params = [p for p in model.parameters() if p.requires_grad]
    sam = lorabar.SAM(params, torch.optim.AdamW, lr=1e-2)
    with pytest.raises(ValueError, match=r"pass \(sam.base_optimizer, scheduler\)"):
        _trainer(
            model,
            tmp_path,
            cls=SAMTrainer,
            sam=sam,
            optimizers=(torch.optim.SGD(params, lr=0.1), None),
        )


class _Recorder:
    """Stands in for a report_to integration: keeps what on_log hands it."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Recorder(TrainerCallback):
            def __init__(self):
                self.seen = []

            def on_log(self, args, state, control, logs=None, **kwargs):
                self.seen.append(dict(logs or {}))

        return Recorder()


def test_bar_callback_writes_into_trainer_logs(tmp_path):
    from lorabar.integrations.hf import BARCallback, add_callback_first

    model = _model()
    recorder = _Recorder()
    cb = BARCallback(mode="obar", mu0=20.0, log_every=0)
    trainer = _trainer(model, tmp_path, logging_steps=2, callbacks=[recorder, cb])
    add_callback_first(trainer, cb)  # before the integrations, which on_log reaches in order
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in logged] == [2, 4]
    assert [h["bar/step"] for h in logged] == [2, 4]
    # the end-of-training summary is logged after the last (5th) step: it holds the final |B|
    summary = trainer.state.log_history[-1]
    final = lorabar.balancedness(lorabar.find_lora_pairs(model))
    assert "train_runtime" in summary and summary["bar/step"] == STEPS
    assert summary["bar/mean_abs_B"] == pytest.approx(final.mean_abs_B.item())
    assert summary["bar/max_abs_B"] == pytest.approx(final.max_abs_B.item())
    assert logged[0]["bar/mean_abs_B"] > logged[1]["bar/mean_abs_B"] > summary["bar/mean_abs_B"]
    assert [r["bar/step"] for r in recorder.seen if "loss" in r] == [2, 4]


def test_sam_trainer_logs_perturbation_norm(tmp_path):
    from lorabar.integrations.hf import SAMTrainer

    model = _model()
    sam = lorabar.SAM(
        [p for p in model.parameters() if p.requires_grad],
        torch.optim.AdamW,
        rho=0.05,
        lr=1e-2,
        weight_decay=0.0,
    )
    trainer = _trainer(model, tmp_path, cls=SAMTrainer, sam=sam, logging_steps=1)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == STEPS
    # plain SAM moves by exactly rho whenever the gradient is nonzero
    assert all(h["sam/perturbation_norm"] == pytest.approx(0.05, rel=1e-5) for h in logged)
