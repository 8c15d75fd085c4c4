import copy
import math
import warnings

import pytest
import torch

import lorabar
from conftest import loss_of, make_batch, make_peft_model


def trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


def direct_sam_grads(model, batch, rho, adaptive=False):
    """Paper Alg. 1 lines 4-6 written out: the gradient at w + rho T^2 g / |T g|."""
    params = trainable(model)
    grads = torch.autograd.grad(loss_of(model, batch), params)
    with torch.no_grad():
        t = [p.abs() if adaptive else torch.ones_like(p) for p in params]
        norm = math.sqrt(sum(((ti * g) ** 2).sum().item() for ti, g in zip(t, grads)))
        saved = [p.clone() for p in params]
        for p, ti, g in zip(params, t, grads):
            p.add_(rho * ti * ti * g / norm)
    grads2 = torch.autograd.grad(loss_of(model, batch), params)
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)
    return grads2


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("base", ["sgd", "adamw"])
def test_equals_direct_algorithm_1(adaptive, base):
    cls, kw = {"sgd": (torch.optim.SGD, {"lr": 0.1}), "adamw": (torch.optim.AdamW, {"lr": 0.02})}[
        base
    ]
    m1, m2 = make_peft_model(), make_peft_model()
    sam = lorabar.SAM(trainable(m1), cls, rho=0.2, adaptive=adaptive, **kw)
    ref_opt = cls(trainable(m2), **kw)
    for t in range(4):
        batch = make_batch(t)
        loss_of(m1, batch).backward()
        sam.first_step(zero_grad=True)
        loss_of(m1, batch).backward()
        sam.second_step(zero_grad=True)
        for p, g in zip(trainable(m2), direct_sam_grads(m2, batch, 0.2, adaptive)):
            p.grad = g
        ref_opt.step()
        ref_opt.zero_grad()
        for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
    moved = make_peft_model()
    assert not torch.equal(next(iter(trainable(m1))), next(iter(trainable(moved))))


def test_step_closure_and_restore_exact():
    model = make_peft_model()
    sam = lorabar.SAM(trainable(model), torch.optim.SGD, rho=0.5, lr=0.0)
    before = [p.clone() for p in trainable(model)]
    batch = make_batch(0)
    loss_of(model, batch).backward()
    loss = sam.step(lambda: loss_of(model, batch).backward() or torch.tensor(1.0))
    assert loss.item() == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, trainable(model)))  # lr=0: exact restore


def test_zero_gradient_norm_no_perturbation():
    model = make_peft_model()
    sam = lorabar.SAM(trainable(model), torch.optim.SGD, rho=0.5, lr=0.1)
    for p in trainable(model):
        p.grad = torch.zeros_like(p)
    before = [p.clone() for p in trainable(model)]
    sam.first_step()
    assert all(torch.equal(a, b) for a, b in zip(before, trainable(model)))
    sam.second_step()
    assert all(torch.isfinite(p).all() for p in trainable(model))


def test_m_sharpness():
    batch = make_batch(3, n=8)
    # m = 1 is plain SAM, bit for bit.
    m1, m2 = make_peft_model(), make_peft_model()
    s1 = lorabar.SAM(trainable(m1), torch.optim.AdamW, rho=0.1, lr=0.02)
    s2 = lorabar.SAM(trainable(m2), torch.optim.AdamW, rho=0.1, lr=0.02)
    for _ in range(2):
        loss = lorabar.sam_step(s1, lambda b: loss_of(m1, b), batch, m=1)
        loss_of(m2, batch).backward()
        s2.first_step(zero_grad=True)
        loss_of(m2, batch).backward()
        s2.second_step(zero_grad=True)
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    assert loss.dtype == torch.float32 and loss.requires_grad is False
    # m = 2: the mean of per-chunk SAM gradients (paper eq. (38)).
    m3, m4 = make_peft_model(), make_peft_model()
    s3 = lorabar.SAM(trainable(m3), torch.optim.SGD, rho=0.1, lr=0.1)
    lorabar.sam_step(s3, lambda b: loss_of(m3, b), batch, m=2)
    halves = [(batch[0][:4], batch[1][:4]), (batch[0][4:], batch[1][4:])]
    g = [direct_sam_grads(m4, h, 0.1) for h in halves]
    with torch.no_grad():
        for p, ga, gb in zip(trainable(m4), *g):
            p.sub_(0.1 * (ga + gb) / 2)
    for a, b in zip(m3.parameters(), m4.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
    assert not all(torch.equal(a, b) for a, b in zip(m3.parameters(), m1.parameters()))


def test_gradient_accumulation_equals_big_batch():
    big = make_batch(5, n=16)
    micro = [(big[0][i : i + 4], big[1][i : i + 4]) for i in range(0, 16, 4)]
    m1, m2 = make_peft_model(), make_peft_model()
    s1 = lorabar.SAM(trainable(m1), torch.optim.AdamW, rho=0.1, lr=0.02)
    s2 = lorabar.SAM(trainable(m2), torch.optim.AdamW, rho=0.1, lr=0.02)
    for _ in range(3):
        for mb in micro:
            (loss_of(m1, mb) / 4).backward()
        s1.first_step(zero_grad=True)
        for mb in micro:
            (loss_of(m1, mb) / 4).backward()
        s1.second_step(zero_grad=True)
        loss_of(m2, big).backward()
        s2.first_step(zero_grad=True)
        loss_of(m2, big).backward()
        s2.second_step(zero_grad=True)
    for a, b in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


def _train(precision, steps=5):
    model = make_peft_model(dtype=torch.float32)
    sam = lorabar.SAM(trainable(model), torch.optim.AdamW, rho=0.05, lr=0.01)
    scaler = torch.amp.GradScaler("cpu") if precision == "fp16" else None
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    start = [p.clone() for p in trainable(model)]

    def loss_fn(batch):
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            return loss_of(model, batch)

    for t in range(steps):
        lorabar.sam_step(sam, loss_fn, make_batch(t, n=16), scaler=scaler)
        if scaler is not None:
            scaler.update()
    return [p.detach() - s for p, s in zip(trainable(model), start)], model


@pytest.mark.parametrize("precision, tol", [("fp16", 0.01), ("bf16", 0.2)])
def test_mixed_precision_agrees_with_fp32(precision, tol):
    """Relative error of the total parameter change after 5 SAM steps vs fp32.

    Measured: 0.0013 (fp16 + GradScaler) and 0.073 (bf16, 8-bit mantissa in the forward); the
    tolerances leave about 3-8x margin.
    """
    ref, _ = _train("fp32")
    got, model = _train(precision)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    num = math.sqrt(sum(((a - b) ** 2).sum().item() for a, b in zip(got, ref)))
    den = math.sqrt(sum((b**2).sum().item() for b in ref))
    assert den > 0 and num / den < tol


@pytest.mark.parametrize("bad_pass", [1, 2])
def test_fp16_inf_in_either_pass_skips_whole_step(bad_pass):
    model = make_peft_model(dtype=torch.float32)
    sam = lorabar.SAM(trainable(model), torch.optim.AdamW, rho=0.05, lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    before = copy.deepcopy(model.state_dict())
    batch = make_batch(0)
    for pass_ in (1, 2):
        with torch.autocast("cpu", dtype=torch.float16):
            scaler.scale(loss_of(model, batch)).backward()
        if pass_ == bad_pass:
            trainable(model)[0].grad[0, 0] = float("inf")
        if pass_ == 1:
            sam.first_step(zero_grad=True)
    sam.second_step(zero_grad=True, scaler=scaler)
    scaler.update()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(sam.base_optimizer.state) == 0  # AdamW never stepped
    assert scaler.get_scale() == 2.0**11
    # The next clean step goes through.
    lorabar.sam_step(sam, lambda b: loss_of(model, b), batch, scaler=scaler)
    assert len(sam.base_optimizer.state) > 0


def test_state_dict_includes_base_state_and_round_trips():
    def build():
        m = make_peft_model()
        return m, lorabar.SAM(trainable(m), torch.optim.AdamW, rho=0.1, lr=0.02)

    m1, s1 = build()
    for t in range(2):
        lorabar.sam_step(s1, lambda b: loss_of(m1, b), make_batch(t))
    sd = copy.deepcopy(s1.state_dict())
    assert "exp_avg" in sd["state"][0] and sd["param_groups"][0]["rho"] == 0.1
    m2, s2 = build()
    m2.load_state_dict(m1.state_dict())
    s2.load_state_dict(sd)
    assert s2.param_groups is s2.base_optimizer.param_groups
    for t in range(2, 4):
        for m, s in ((m1, s1), (m2, s2)):
            lorabar.sam_step(s, lambda b: loss_of(m, b), make_batch(t))
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))


def test_lr_scheduler_on_base_optimizer():
    model = make_peft_model(dtype=torch.float32)
    sam = lorabar.SAM(trainable(model), torch.optim.AdamW, rho=0.05, lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(sam.base_optimizer, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in range(2):
            lorabar.sam_step(sam, lambda b: loss_of(model, b), make_batch(t))
            sched.step()
    assert sam.param_groups[0]["lr"] == pytest.approx(0.0025)


def test_invalid_arguments(peft_model):
    params = trainable(peft_model)
    with pytest.raises(ValueError, match=r"Invalid rho: -0.1 \(expected a finite value >= 0\)"):
        lorabar.SAM(params, torch.optim.SGD, rho=-0.1, lr=0.1)
    with pytest.raises(TypeError, match=r"Invalid rho: '0.1'"):
        lorabar.SAM(params, torch.optim.SGD, rho="0.1", lr=0.1)
    with pytest.raises(TypeError, match=r"Invalid adaptive: 1"):
        lorabar.SAM(params, torch.optim.SGD, adaptive=1, lr=0.1)
    with pytest.raises(TypeError, match=r"Invalid base_optimizer: .*pass the class"):
        lorabar.SAM(params, torch.optim.SGD(params, lr=0.1), lr=0.1)
    sam = lorabar.SAM(params, torch.optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match=r"Invalid m: 0 \(expected an int >= 1\)"):
        lorabar.sam_step(sam, lambda b: loss_of(peft_model, b), make_batch(0), m=0)
    with pytest.raises(ValueError, match=r"Invalid m: 9 \(larger than the batch size 8\)"):
        lorabar.sam_step(sam, lambda b: loss_of(peft_model, b), make_batch(0), m=9)
    with pytest.raises(TypeError, match=r"Invalid batch: cannot split a str"):
        lorabar.sam_step(sam, lambda b: 0, "abc", m=1)
    with pytest.raises(RuntimeError, match=r"second_step\(\) called without first_step\(\)"):
        sam.second_step()
    with pytest.raises(ValueError, match=r"Invalid closure: None"):
        sam.step()


@pytest.mark.parametrize("adaptive", [False, True])
def test_perturbation_norm_is_the_norm_of_e(adaptive):
    model = make_peft_model()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": params[:2], "rho": 0.3}, {"params": params[2:]}]  # per-group rho
    sam = lorabar.SAM(groups, torch.optim.SGD, rho=0.1, adaptive=adaptive, lr=0.1)
    assert sam.perturbation_norm is None
    before = [p.detach().clone() for p in params]
    loss_of(model, make_batch()).backward()
    sam.first_step()
    moved = math.sqrt(
        sum(((p.double() - b.double()) ** 2).sum().item() for p, b in zip(params, before))
    )
    assert sam.perturbation_norm.item() == pytest.approx(moved, rel=1e-6)  # an fp32 reduction
    sam.second_step(zero_grad=True)
    plain = lorabar.SAM(params, torch.optim.SGD, rho=0.1, lr=0.1)
    loss_of(model, make_batch()).backward()
    plain.first_step()
    assert plain.perturbation_norm.item() == pytest.approx(0.1)  # |e| = rho
    plain.second_step(zero_grad=True)


def test_sam_step_after_first_backward_sees_first_pass_gradients():
    model = make_peft_model()
    params = [p for p in model.parameters() if p.requires_grad]
    batch = make_batch()
    loss_of(model, batch).backward()
    expected = [p.grad.clone() for p in params]
    model.zero_grad()
    sam = lorabar.SAM(params, torch.optim.SGD, rho=0.1, lr=0.1)
    seen = []
    lorabar.sam_step(
        sam,
        lambda b: loss_of(model, b),
        batch,
        after_first_backward=lambda: seen.append([p.grad.clone() for p in params]),
    )
    assert len(seen) == 1
    for g, e in zip(seen[0], expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0)


def test_rho_zero_group_is_stepped_but_never_perturbed():
    """LoRA-SAM with a trainable head: the head's group (rho = 0) does not move in first_step
    and its gradient does not count in |g|."""
    model = make_peft_model()
    model.base_model.model.head.requires_grad_(True)  # a trainable head beside the adapters
    pairs = lorabar.find_lora_pairs(model)
    factors = {id(t) for p in pairs for t in p.tensors}
    params = [p for p in model.parameters() if p.requires_grad]
    head = [p for p in params if id(p) not in factors]
    lora = [p for p in params if id(p) in factors]
    assert head and lora
    sam = lorabar.SAM(
        [{"params": lora}, {"params": head, "rho": 0.0}], torch.optim.SGD, rho=0.3, lr=0.1
    )
    loss_of(model, make_batch()).backward()
    g = [p.grad.clone() for p in lora]
    norm = math.sqrt(sum((t.double() ** 2).sum().item() for t in g))
    before_lora = [p.detach().clone() for p in lora]
    before_head = [p.detach().clone() for p in head]
    sam.first_step()
    for p, b in zip(head, before_head):
        assert torch.equal(p, b)
    for p, b, gi in zip(lora, before_lora, g):  # e = rho g / |g_lora|, the head left out
        torch.testing.assert_close(p - b, 0.3 * gi / norm, rtol=1e-9, atol=1e-12)
    sam.second_step()
    assert not torch.equal(head[0], before_head[0])  # ... but stepped


@pytest.mark.parametrize(
    "bad, what",
    [
        (lambda loss: None, r"returned NoneType None"),
        (lambda loss: float(loss.detach()), r"returned float"),
        (lambda loss: loss.detach(), r"returned a tensor of shape \(\) without a gradient"),
        (lambda loss: loss.expand(3), r"returned a tensor of shape \(3,\)"),
    ],
)
def test_sam_step_names_a_loss_fn_that_returns_no_loss(bad, what):
    """The hostile round's AttributeError: one TypeError saying what loss_fn returned; when the
    second pass fails the weights are back at w, not left at w + e."""
    w = torch.nn.Parameter(torch.ones(3))
    opt = lorabar.SAM([w], torch.optim.SGD, rho=0.1, lr=0.1)
    x = torch.randn(4, 3)
    with pytest.raises(TypeError, match=rf"Invalid loss_fn: it {what}"):
        lorabar.sam_step(opt, lambda b: bad((b @ w).mean()), x)
    calls = []

    def second_fails(b):
        calls.append(1)
        loss = (b @ w).mean()
        return loss if len(calls) == 1 else bad(loss)

    with pytest.raises(TypeError, match=r"Invalid loss_fn"):
        lorabar.sam_step(opt, second_fails, x)
    assert torch.equal(w.detach(), torch.ones(3))  # unperturbed, no step taken
